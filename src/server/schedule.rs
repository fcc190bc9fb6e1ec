//! Scheduled closes: one task sleeps until each `close_at` / `close_every` time, opens the
//! `refuse_for` window, then tells every connection at once over a watch channel (each
//! connection holds only a receiver, no timer of its own for this).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::state::Shared;
use crate::scenario::Behaviour;

/// The close times after the server's start, in order, each once: `close_at` merged with the
/// multiples of `close_every` (endless when `close_every` is set).
#[derive(Debug, Clone)]
pub(super) struct CloseTimes {
    /// `close_at`, sorted latest first (popped from the end).
    at: Vec<Duration>,
    every: Option<Duration>,
    next_every: Duration,
    last: Option<Duration>,
}

impl CloseTimes {
    pub(super) fn new(b: &Behaviour) -> Self {
        let mut at = b.close_at.clone();
        at.sort_unstable_by(|a, b| b.cmp(a));
        let every = b.close_every.filter(|d| !d.is_zero());
        Self {
            at,
            every,
            next_every: every.unwrap_or_default(),
            last: None,
        }
    }
}

impl Iterator for CloseTimes {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let from_at = self.at.last().copied();
            let from_every = self.every.map(|_| self.next_every);
            let next = match (from_at, from_every) {
                (None, None) => return None,
                (Some(a), Some(e)) => a.min(e),
                (Some(a), None) => a,
                (None, Some(e)) => e,
            };
            if from_at == Some(next) {
                self.at.pop();
            }
            if let Some(every) = self.every
                && from_every == Some(next)
            {
                self.next_every += every;
            }
            if self.last.is_none_or(|last| next > last) {
                self.last = Some(next);
                return Some(next);
            }
        }
    }
}

/// Runs the schedule until it ends or the server shuts down.
pub(super) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let refuse_for = shared.behaviour.refuse_for;
    for at in CloseTimes::new(&shared.behaviour) {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(shared.started + at) => {}
        }
        if !refuse_for.is_zero() {
            // Open the window before closing, so that clients reconnecting at once are refused.
            let until = shared.started.elapsed() + refuse_for;
            shared
                .refuse_until_us
                .fetch_max(until.as_micros() as u64, Relaxed);
        }
        tracing::debug!(at = ?at, "closing every connection");
        shared.closes.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn merges_at_and_every_in_order_once() {
        let b = Behaviour {
            close_every: Some(ms(100)),
            close_at: vec![ms(250), ms(50), ms(200), ms(50)],
            ..Behaviour::default()
        };
        let times: Vec<_> = CloseTimes::new(&b).take(6).collect();
        assert_eq!(times, [ms(50), ms(100), ms(200), ms(250), ms(300), ms(400)]);
    }

    #[test]
    fn at_only_ends_and_nothing_is_empty() {
        let b = Behaviour {
            close_at: vec![ms(20), ms(10)],
            ..Behaviour::default()
        };
        assert_eq!(CloseTimes::new(&b).collect::<Vec<_>>(), [ms(10), ms(20)]);
        assert_eq!(CloseTimes::new(&Behaviour::default()).next(), None);
        let zero = Behaviour {
            close_every: Some(Duration::ZERO),
            ..Behaviour::default()
        };
        assert_eq!(CloseTimes::new(&zero).next(), None);
    }
}
