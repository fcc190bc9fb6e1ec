//! The pending table of one connection: requests waiting for their correlated reply, plus a
//! short memory of resolved ones so a reply after the deadline is `late` and a second reply
//! is `duplicate`. Allocates nothing until the first request; bounded by the timeouts.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Reply;
use crate::metrics::event::micros;
use crate::metrics::requests::RequestOutcome;

/// How many resolved requests are remembered for late/duplicate classification.
const RECENT: usize = 64;
/// Marks a remembered seq as timed out (otherwise it was answered).
const TIMED_OUT: u64 = 1 << 63;

/// An outcome noted for requests.csv: the request, how it ended, and for an answer its rtt and
/// corrected rtt in µs.
pub type Noted = (u64, RequestOutcome, Option<(u64, Option<u64>)>);

/// A request waiting for its reply.
#[derive(Debug)]
struct Waiting {
    seq: u64,
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
    recent: VecDeque<u64>,
    /// Outcomes not yet handed to requests.csv (only when it is written).
    log: Option<Vec<Noted>>,
}

impl Pending {
    /// A table that also notes each request's outcome, for requests.csv.
    pub fn logging(on: bool) -> Self {
        Self {
            log: on.then(Vec::new),
            ..Self::default()
        }
    }

    fn note(&mut self, seq: u64, outcome: RequestOutcome, rtt: Option<(u64, Option<u64>)>) {
        if let Some(log) = &mut self.log {
            log.push((seq, outcome, rtt));
        }
    }

    /// Outcomes noted since the last call.
    pub fn take_log(&mut self) -> Vec<Noted> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Notes requests that leave without an outcome of their own (unfinished at a stop).
    pub fn note_all(&mut self, seqs: impl Iterator<Item = u64>, outcome: RequestOutcome) {
        if self.log.is_some() {
            for seq in seqs {
                self.note(seq, outcome, None);
            }
        }
    }
    /// A request sent at `sent` by step `step`; `due` is when it was meant to go, under an
    /// open rate.
    pub fn insert(
        &mut self,
        seq: u64,
        step: u16,
        sent: Instant,
        due: Option<Instant>,
        text: Option<Utf8Bytes>,
    ) {
        self.waiting.push_back(Waiting {
            seq,
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
        if let Some(i) = self.waiting.iter().position(|w| w.seq == seq) {
            let (stream, failed) = match judge(self.waiting[i].step) {
                Judged::Part => {
                    // The first one's time is kept for the answer.
                    self.waiting[i].first.get_or_insert(now);
                    return Reply::Part;
                }
                Judged::Answer { stream, failed } => (stream, failed),
            };
            let w = self.waiting.remove(i).expect("index from position");
            self.remember(seq);
            let since = |t: Instant| now.saturating_duration_since(t).as_micros() as u64;
            let rtt_us = since(w.sent);
            let corrected_us = w.due.map(|due| since(due.min(w.sent)));
            let outcome = if failed {
                RequestOutcome::CheckFailed
            } else {
                RequestOutcome::Answered
            };
            self.note(seq, outcome, Some((rtt_us, corrected_us)));
            return Reply::Answered {
                rtt_us,
                corrected_us: corrected_us.map(micros),
                // A stream whose first reply is its last: both times are the same.
                first_us: stream.then(|| micros(w.first.map_or(rtt_us, |f| since(w.sent) - since(f)))),
                failed,
            };
        }
        match self.recent.iter().position(|r| *r & !TIMED_OUT == seq) {
            Some(i) if self.recent[i] & TIMED_OUT != 0 => {
                // Counted once: the request stays a timeout, this reply is late; a further
                // reply to it is a duplicate.
                self.recent[i] = seq;
                self.note(seq, RequestOutcome::Late, None);
                Reply::Late
            }
            Some(_) => Reply::Duplicate,
            None => Reply::Unmatched,
        }
    }

    /// Removes requests whose deadline has passed at `now`; returns how many.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> u32 {
        let mut n = 0;
        while let Some(&Waiting { seq, sent, .. }) = self.waiting.front() {
            if sent + timeout > now {
                break;
            }
            self.waiting.pop_front();
            self.remember(seq | TIMED_OUT);
            self.note(seq, RequestOutcome::Timeout, None);
            n += 1;
        }
        n
    }

    /// Whether `seq` is still waiting.
    pub fn contains(&self, seq: u64) -> bool {
        self.waiting.iter().any(|w| w.seq == seq)
    }

    /// Empties the table, handing over the requests that carry their text (for replay);
    /// returns them and the number of the others, which end as `rest` (lost, unfinished).
    pub fn take_for_replay(&mut self, rest: RequestOutcome) -> (Vec<Kept>, u32) {
        let mut replay = Vec::new();
        let mut count = 0;
        // Their seqs are kept only for requests.csv.
        let mut others = Vec::new();
        let logging = self.log.is_some();
        for Waiting { seq, text, step, .. } in self.waiting.drain(..) {
            match text {
                Some(text) => replay.push(Kept { seq, step, text }),
                None => {
                    count += 1;
                    if logging {
                        others.push(seq);
                    }
                }
            }
        }
        self.recent.clear();
        self.note_all(others.into_iter(), rest);
        (replay, count)
    }

    fn remember(&mut self, tagged: u64) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(tagged);
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
        p.insert(1, 0, t0, None, None);
        p.insert(2, 0, t0, None, None);
        p.insert(3, 0, t0, None, Some("three".into()));
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
        assert_eq!(p.expire(t0 + T - Duration::from_millis(1), T), 0);
        assert_eq!(p.expire(t0 + T, T), 1);
        assert_eq!(p.resolve(2, t0 + T * 2, |_| Judged::PLAIN), Reply::Late);
        assert_eq!(
            p.resolve(2, t0 + T * 2, |_| Judged::PLAIN),
            Reply::Duplicate,
            "a late reply is counted once"
        );
        assert!(p.is_empty());
    }

    #[test]
    fn memory_of_resolved_requests_is_bounded() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        for seq in 0..1000 {
            p.insert(seq, 0, t0, None, None);
            p.resolve(seq, t0, |_| Judged::PLAIN);
        }
        assert_eq!(p.recent.len(), RECENT);
        assert_eq!(p.resolve(0, t0, |_| Judged::PLAIN), Reply::Unmatched);
        assert_eq!(p.resolve(999, t0, |_| Judged::PLAIN), Reply::Duplicate);
    }
}
