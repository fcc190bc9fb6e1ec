//! The collector: the single owner of all measurements. Clients send events one way over a
//! bounded channel; the collector folds them into `Totals` and, once a second on the run's
//! timeline, emits a `Sample` (cumulative counts, the second's deltas and rtt percentiles).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::event::Event;
use super::histogram::Latency;
use super::totals::{Counts, Totals};

/// Events buffered between clients and the collector before senders wait.
const CHANNEL_CAPACITY: usize = 65_536;
const BATCH: usize = 1024;

/// The clients' end of the event channel.
#[derive(Clone)]
pub struct EventTx(mpsc::Sender<Event>);

impl EventTx {
    /// Reports an event. Waits only if the collector is a full channel behind.
    pub async fn send(&self, event: Event) {
        // The collector outlives every client; a closed channel means the run is over.
        let _ = self.0.send(event).await;
    }
}

pub struct EventRx(mpsc::Receiver<Event>);

pub fn channel() -> (EventTx, EventRx) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    (EventTx(tx), EventRx(rx))
}

/// One second (or the last, partial second) of the run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Time since the run started, at the end of this window.
    pub elapsed: Duration,
    /// Length of the window (one second, or less for the last one).
    pub window: Duration,
    /// Cumulative counts at the end of the window.
    pub total: Counts,
    /// What happened within the window.
    pub delta: Counts,
    /// rtt of the replies answered within the window.
    pub rtt: Latency,
}

/// Runs until every `EventTx` is dropped; returns the run's totals. Samples go to `samples`.
pub async fn collect(mut rx: EventRx, start: Instant, samples: mpsc::UnboundedSender<Sample>) -> Totals {
    let mut totals = Totals::default();
    let mut window_rtt = Latency::new();
    let mut last = (Counts::default(), Duration::ZERO);
    let mut ticker = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut buf = Vec::with_capacity(BATCH);
    let emit =
        |totals: &Totals, window_rtt: &mut Latency, last: &mut (Counts, Duration), elapsed: Duration| {
            let sample = Sample {
                elapsed,
                window: elapsed.saturating_sub(last.1),
                total: totals.counts,
                delta: totals.counts - last.0,
                rtt: window_rtt.clone(),
            };
            *last = (totals.counts, elapsed);
            window_rtt.reset();
            let _ = samples.send(sample);
        };
    loop {
        tokio::select! {
            biased;
            n = rx.0.recv_many(&mut buf, BATCH) => {
                if n == 0 {
                    emit(&totals, &mut window_rtt, &mut last, start.elapsed());
                    return totals;
                }
                for event in buf.drain(..) {
                    if let Some(rtt_us) = totals.apply(event) {
                        window_rtt.record_us(rtt_us);
                    }
                }
            }
            at = ticker.tick() => emit(&totals, &mut window_rtt, &mut last, at - start),
        }
    }
}
