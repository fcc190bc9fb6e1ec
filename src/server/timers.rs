//! A connection's own clock: when to push next and when to ping, and whether a ping went
//! unanswered too long. One deadline at a time, so a connection needs a single timer.

use tokio::time::{Duration, Instant};

use crate::scenario::{Behaviour, Protocol};

/// What is due when the connection's timer fires.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Due {
    /// No frame came back within `ping_timeout` of a ping: close the connection.
    pub idle: bool,
    /// Push this seq now.
    pub push: Option<u64>,
    /// Send a ping now.
    pub ping: bool,
}

pub(super) struct Timers<'a> {
    behaviour: &'a Behaviour,
    push_every: Option<Duration>,
    next_push: Instant,
    /// The last seq used (sent or skipped).
    seq: u64,
    ping_every: Option<Duration>,
    next_ping: Instant,
    /// Set by the first unanswered ping; cleared by any frame from the client.
    answer_due: Option<Instant>,
    /// Whether a ping wants an answer (STOMP's heart-beat, an EOL, wants none).
    wants_answer: bool,
}

impl<'a> Timers<'a> {
    /// The clock of a connection upgraded at `since` that resumes pushes after `resume_from`.
    pub(super) fn new(behaviour: &'a Behaviour, since: Instant, resume_from: Option<u64>) -> Self {
        let push_every = behaviour.push_every.filter(|d| !d.is_zero());
        let ping_every = behaviour.ping_interval();
        Self {
            behaviour,
            push_every,
            next_push: since + push_every.unwrap_or_default(),
            seq: resume_from.unwrap_or(0),
            ping_every,
            next_ping: since + ping_every.unwrap_or_default(),
            answer_due: None,
            wants_answer: behaviour.protocol != Some(Protocol::Stomp),
        }
    }

    /// When the timer should fire next; `None` when nothing is ever due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let push = self.push_every.map(|_| self.next_push);
        let ping = self.ping_every.map(|_| match self.answer_due {
            Some(due) => due.min(self.next_ping),
            None => self.next_ping,
        });
        match (push, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A frame came from the client: any pending ping counts as answered. (The timer is not
    /// moved: when it fires early it finds nothing due and is set again.)
    pub(super) fn heard(&mut self) {
        self.answer_due = None;
    }

    /// What is due at `now`; advances the clock past it.
    pub(super) fn fire(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        if self.answer_due.is_some_and(|at| now >= at) {
            due.idle = true;
            return due;
        }
        if let Some(every) = self.push_every
            && now >= self.next_push
        {
            self.seq += 1;
            if !self.behaviour.push_skip.contains(&self.seq) {
                due.push = Some(self.seq);
            }
            self.next_push += every;
            if self.next_push <= now {
                // Fell behind (a slow client): carry on from now rather than burst.
                self.next_push = now + every;
            }
        }
        if let Some(every) = self.ping_every
            && now >= self.next_ping
        {
            due.ping = true;
            if self.wants_answer {
                self.answer_due.get_or_insert(now + self.behaviour.ping_timeout);
            }
            self.next_ping = now + every;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pushes_count_from_one_skipping_and_resuming() {
        let b = Behaviour {
            push_every: Some(ms(100)),
            push_skip: vec![2, 4, 9],
            ..Behaviour::default()
        };
        let t0 = Instant::now();
        let mut t = Timers::new(&b, t0, None);
        assert_eq!(t.deadline(), Some(t0 + ms(100)));
        assert_eq!(t.fire(t0 + ms(50)), Due::default(), "nothing due early");
        let seqs: Vec<_> = (1..=6).map(|i| t.fire(t0 + ms(100 * i)).push).collect();
        assert_eq!(seqs, [Some(1), None, Some(3), None, Some(5), Some(6)]);
        let mut resumed = Timers::new(&b, t0, Some(7));
        assert_eq!(resumed.fire(t0 + ms(100)).push, Some(8));
        assert_eq!(resumed.fire(t0 + ms(200)).push, None, "9 is skipped");
        assert_eq!(resumed.fire(t0 + ms(300)).push, Some(10));
    }

    #[test]
    fn an_unanswered_ping_makes_the_connection_idle() {
        let b = Behaviour {
            ping_every: Some(ms(100)),
            ping_timeout: ms(250),
            ..Behaviour::default()
        };
        let t0 = Instant::now();
        let mut t = Timers::new(&b, t0, None);
        assert!(t.fire(t0 + ms(100)).ping);
        t.heard();
        assert!(t.fire(t0 + ms(200)).ping, "answered: ping again");
        assert_eq!(t.deadline(), Some(t0 + ms(300)));
        assert!(t.fire(t0 + ms(300)).ping, "unanswered, not yet idle");
        assert_eq!(t.deadline(), Some(t0 + ms(400)));
        assert!(t.fire(t0 + ms(400)).ping);
        assert_eq!(
            t.deadline(),
            Some(t0 + ms(450)),
            "250 ms after the first unanswered ping"
        );
        assert!(t.fire(t0 + ms(450)).idle);
        assert_eq!(Timers::new(&Behaviour::default(), t0, None).deadline(), None);
    }

    #[test]
    fn a_stomp_heart_beat_wants_no_answer() {
        let b = Behaviour {
            protocol: Some(Protocol::Stomp),
            ping_every: Some(ms(100)),
            ping_timeout: ms(150),
            ..Behaviour::default()
        };
        let t0 = Instant::now();
        let mut t = Timers::new(&b, t0, None);
        for i in 1..=5 {
            let due = t.fire(t0 + ms(100 * i));
            assert!(due.ping && !due.idle, "beat {i}: {due:?}");
            assert_eq!(t.deadline(), Some(t0 + ms(100 * (i + 1))));
        }
    }
}
