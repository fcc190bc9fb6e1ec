//! The pending table of one connection: requests waiting for their correlated reply, and a
//! ledger of what became of every request the connection sent, so that a reply after the
//! deadline is `late` (once), a second reply is a `duplicate`, and an id that was never one of
//! its requests is `unmatched`, however many requests came between. Allocates nothing until
//! the first request; the waiting ones are bounded by the timeouts and `max_in_flight`, the
//! ledger by two bits a request at worst and a few words in the common cases.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::ledger::{Ledger, Mark};
use crate::metrics::Reply;
use crate::metrics::event::Name;
use crate::metrics::event::micros;
use crate::metrics::requests::RequestOutcome;

/// An outcome noted for requests.csv: the request, its step's name, how it ended, and for an
/// answer its rtt and corrected rtt in µs.
pub type Noted = (u64, Name, RequestOutcome, Option<(u64, Option<u64>)>);

/// A request waiting for its reply.
#[derive(Debug)]
struct Waiting {
    seq: u64,
    /// Its step's name (0: none).
    name: Name,
    sent: Instant,
    /// When it was due, under an open rate (for the corrected rtt).
    due: Option<Instant>,
    text: Option<Utf8Bytes>,
    /// The step that sent it (its checks, whether replies come as a stream).
    step: u16,
    /// A stream's first reply.
    first: Option<Instant>,
}

/// What a reply is to the request it carries the id of, judged by the step that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// A reply of a stream before its last.
    Part,
    /// The answer (a stream's last reply); `failed` when it failed one of the step's checks.
    Answer { stream: bool, failed: bool },
}

impl Judged {
    /// The one reply of a plain request, with nothing to check.
    pub const PLAIN: Judged = Judged::Answer {
        stream: false,
        failed: false,
    };
}

/// A request kept to be sent again after a reconnect (`replay_in_flight`).
#[derive(Debug, Clone)]
pub struct Kept {
    pub seq: u64,
    pub step: u16,
    pub text: Utf8Bytes,
}

#[derive(Debug, Default)]
pub struct Pending {
    /// In send order; deadlines are `sent + timeout`, so also in deadline order. The text is
    /// kept only when requests are replayed after a drop.
    waiting: VecDeque<Waiting>,
    ledger: Ledger,
    /// Past the highest request number so far.
    next: u64,
    /// Outcomes not yet handed to requests.csv (only when it is written).
    log: Option<Vec<Noted>>,
}

impl Pending {
    /// A table that also notes each request's outcome when `logging` (for requests.csv), and
    /// remembers each request's step name when the plan has `names` of them (for the late
    /// replies' names).
    pub fn new(logging: bool, names: usize) -> Self {
        Self {
            log: logging.then(Vec::new),
            ledger: if names > 0 {
                Ledger::with_names(names)
            } else {
                Ledger::default()
            },
            ..Self::default()
        }
    }

    fn note(&mut self, (seq, name): (u64, Name), outcome: RequestOutcome, rtt: Option<(u64, Option<u64>)>) {
        if let Some(log) = &mut self.log {
            log.push((seq, name, outcome, rtt));
        }
    }

    /// Outcomes noted since the last call.
    pub fn take_log(&mut self) -> Vec<Noted> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Notes requests that leave without an outcome of their own (unfinished at a stop).
    pub fn note_all(&mut self, seqs: impl Iterator<Item = (u64, Name)>, outcome: RequestOutcome) {
        if self.log.is_some() {
            for seq in seqs {
                self.note(seq, outcome, None);
            }
        }
    }
    /// A request sent at `sent` by step `step` (named `name`); `due` is when it was meant to
    /// go, under an open rate.
    pub fn insert(
        &mut self,
        seq: u64,
        (step, name): (u16, Name),
        sent: Instant,
        due: Option<Instant>,
        text: Option<Utf8Bytes>,
    ) {
        debug_assert!(
            self.waiting.back().is_none_or(|w| w.seq < seq),
            "requests wait in the order of their numbers"
        );
        self.ledger.set_named(seq, Mark::Waiting, name);
        self.next = self.next.max(seq + 1);
        self.waiting.push_back(Waiting {
            seq,
            name,
            sent,
            due,
            text,
            step,
            first: None,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// The earliest deadline, if anything is waiting.
    pub fn next_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.waiting.front().map(|w| w.sent + timeout)
    }

    /// Classifies a reply carrying request `seq`, received at `now`. While the request waits,
    /// `judge` says, from the step that sent it, what the reply is to it (one lookup per
    /// reply, whatever the step asks of it).
    pub fn resolve(&mut self, seq: u64, now: Instant, judge: impl FnOnce(u16) -> Judged) -> Reply {
        if let Some(i) = self.find(seq) {
            let (stream, failed) = match judge(self.waiting[i].step) {
                Judged::Part => {
                    // The first one's time is kept for the answer.
                    self.waiting[i].first.get_or_insert(now);
                    return Reply::Part;
                }
                Judged::Answer { stream, failed } => (stream, failed),
            };
            let w = self.waiting.remove(i).expect("index from position");
            self.ledger.set(seq, Mark::Settled);
            if i == 0 {
                self.seal();
            }
            let since = |t: Instant| now.saturating_duration_since(t).as_micros() as u64;
            let rtt_us = since(w.sent);
            let corrected_us = w.due.map(|due| since(due.min(w.sent)));
            let outcome = if failed {
                RequestOutcome::CheckFailed
            } else {
                RequestOutcome::Answered
            };
            self.note((seq, w.name), outcome, Some((rtt_us, corrected_us)));
            return Reply::Answered {
                rtt_us,
                corrected_us: corrected_us.map(micros),
                // A stream whose first reply is its last: both times are the same.
                first_us: stream.then(|| micros(w.first.map_or(rtt_us, |f| since(w.sent) - since(f)))),
                failed,
                name: w.name,
            };
        }
        match self.ledger.get(seq) {
            Mark::TimedOut => {
                // Counted once: the request stays a timeout, this reply is late; a further
                // reply to it is a duplicate.
                let name = self.ledger.name(seq);
                self.ledger.set(seq, Mark::Settled);
                self.note((seq, name), RequestOutcome::Late, None);
                Reply::Late { name }
            }
            Mark::Settled => Reply::Duplicate,
            // Never one of this connection's requests (another send's id, or a request of an
            // earlier connection of this client).
            Mark::Other | Mark::Waiting => Reply::Unmatched,
        }
    }

    /// Times out the requests whose deadline has passed, the oldest first, as long as they
    /// have the same step name: how many, and that name. Called until it finds none.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> (u32, Name) {
        let mut n = 0;
        let name = self.waiting.front().map_or(0, |w| w.name);
        while let Some(&Waiting {
            seq,
            sent,
            name: this,
            ..
        }) = self.waiting.front()
        {
            if sent + timeout > now || this != name {
                break;
            }
            self.waiting.pop_front();
            self.ledger.set(seq, Mark::TimedOut);
            self.note((seq, this), RequestOutcome::Timeout, None);
            n += 1;
        }
        if n > 0 {
            self.seal();
        }
        (n, name)
    }

    /// The requests waiting that will not be replayed, by step name (named steps only): their
    /// names' share of what a drop loses or a stop leaves unfinished.
    pub fn named(&self) -> Vec<(Name, u32)> {
        let mut tally: Vec<(Name, u32)> = Vec::new();
        for w in self.waiting.iter().filter(|w| w.name != 0 && w.text.is_none()) {
            match tally.iter_mut().find(|(name, _)| *name == w.name) {
                Some((_, n)) => *n += 1,
                None => tally.push((w.name, 1)),
            }
        }
        tally
    }

    /// Whether `seq` is still waiting.
    pub fn contains(&self, seq: u64) -> bool {
        self.find(seq).is_some()
    }

    /// Where request `seq` waits: the table is in send order, which is the order of the
    /// numbers (replays of a previous connection's requests go out first, in order).
    fn find(&self, seq: u64) -> Option<usize> {
        self.waiting.binary_search_by_key(&seq, |w| w.seq).ok()
    }

    /// Empties the table, handing over the requests that carry their text (for replay);
    /// returns them and the number of the others, which end as `rest` (lost, unfinished).
    pub fn take_for_replay(&mut self, rest: RequestOutcome) -> (Vec<Kept>, u32) {
        let mut replay = Vec::new();
        let mut count = 0;
        // Their seqs are kept only for requests.csv.
        let mut others = Vec::new();
        let logging = self.log.is_some();
        for Waiting {
            seq,
            text,
            step,
            name,
            ..
        } in self.waiting.drain(..)
        {
            match text {
                Some(text) => replay.push(Kept { seq, step, text }),
                None => {
                    count += 1;
                    if logging {
                        others.push((seq, name));
                    }
                }
            }
        }
        self.note_all(others.into_iter(), rest);
        (replay, count)
    }

    /// Every request before the oldest one waiting has an outcome.
    fn seal(&mut self) {
        let below = self.waiting.front().map_or(self.next, |w| w.seq);
        self.ledger.seal_below(below);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);

    #[test]
    fn out_of_order_late_duplicate_unmatched() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(1, (0, 0), t0, None, None);
        p.insert(2, (0, 0), t0, None, None);
        p.insert(3, (0, 0), t0, None, Some("three".into()));
        assert!(matches!(
            p.resolve(3, t0 + Duration::from_millis(5), |_| Judged::PLAIN),
            Reply::Answered {
                rtt_us: 5000,
                corrected_us: None,
                ..
            }
        ));
        assert!(matches!(
            p.resolve(1, t0 + Duration::from_millis(7), |_| Judged::PLAIN),
            Reply::Answered {
                rtt_us: 7000,
                corrected_us: None,
                ..
            }
        ));
        assert_eq!(p.resolve(1, t0, |_| Judged::PLAIN), Reply::Duplicate);
        assert_eq!(p.resolve(99, t0, |_| Judged::PLAIN), Reply::Unmatched);
        assert_eq!(p.next_deadline(T), Some(t0 + T));
        assert_eq!(p.expire(t0 + T - Duration::from_millis(1), T).0, 0);
        assert_eq!(p.expire(t0 + T, T).0, 1);
        assert_eq!(
            p.resolve(2, t0 + T * 2, |_| Judged::PLAIN),
            Reply::Late { name: 0 }
        );
        assert_eq!(
            p.resolve(2, t0 + T * 2, |_| Judged::PLAIN),
            Reply::Duplicate,
            "a late reply is counted once"
        );
        assert!(p.is_empty());
    }

    /// Field finding 3 (issue 19): only the last 64 resolved ids were remembered, so at 1.3 s
    /// late with a request every 2 ms, late replies were counted as unmatched.
    #[test]
    fn field_03_every_late_reply_is_late_whatever_the_rate() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        // 10 000 requests, every third one an answer, the rest time out; other sends between.
        for seq in (0..30_000).step_by(3) {
            p.insert(seq, (0, 0), t0, None, None);
            if seq % 9 == 0 {
                assert!(matches!(
                    p.resolve(seq, t0, |_| Judged::PLAIN),
                    Reply::Answered { .. }
                ));
            }
        }
        assert_eq!(p.expire(t0 + T, T).0, 10_000 - 3_334);
        for seq in (0..30_000).step_by(3) {
            let first = p.resolve(seq, t0 + T * 2, |_| Judged::PLAIN);
            let expected = if seq % 9 == 0 {
                Reply::Duplicate
            } else {
                Reply::Late { name: 0 }
            };
            assert_eq!(first, expected, "seq {seq}");
            assert_eq!(
                p.resolve(seq, t0, |_| Judged::PLAIN),
                Reply::Duplicate,
                "seq {seq}"
            );
        }
        // Ids that were never requests of this connection.
        for seq in [1, 2, 29_999, 30_001, 10_000_000] {
            assert_eq!(
                p.resolve(seq, t0, |_| Judged::PLAIN),
                Reply::Unmatched,
                "seq {seq}"
            );
        }
        // Two bits a number at most, whatever the pattern (this one does not repeat in a word).
        assert!(
            p.ledger.bytes() <= (30_000 / 2048 + 1) * (16 + 512),
            "{} bytes",
            p.ledger.bytes()
        );
    }

    /// A server that answers nothing for a long time, or everything in order: a few runs.
    #[test]
    fn the_ledger_stays_small_in_the_common_cases() {
        let t0 = Instant::now();
        let mut silent = Pending::default();
        let mut healthy = Pending::default();
        for seq in 1_000..300_000 {
            silent.insert(seq, (0, 0), t0, None, None);
            silent.expire(t0 + T, T);
            healthy.insert(seq, (0, 0), t0, None, None);
            healthy.resolve(seq, t0, |_| Judged::PLAIN);
        }
        // A word per 2 048 requests, and the chunk still open.
        assert!(
            silent.ledger.bytes() < 16 * 500 + 2 * 512,
            "{}",
            silent.ledger.bytes()
        );
        assert!(
            healthy.ledger.bytes() < 16 * 500 + 2 * 512,
            "{}",
            healthy.ledger.bytes()
        );
        assert_eq!(
            silent.resolve(1_000, t0, |_| Judged::PLAIN),
            Reply::Late { name: 0 }
        );
        assert_eq!(healthy.resolve(1_000, t0, |_| Judged::PLAIN), Reply::Duplicate);
        assert_eq!(healthy.resolve(999, t0, |_| Judged::PLAIN), Reply::Unmatched);
    }
}
