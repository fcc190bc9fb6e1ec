//! The collector: the single owner of all measurements. Clients send events one way over a
//! bounded channel; the collector folds them into `Totals`, tracks recovery after chaos, and
//! emits `Output`s: once a second on the run's timeline a `Sample` (cumulative counts, the
//! second's deltas and rtt), and a `ConnectionRow` for every connection event.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

use super::event::Event;
use super::histogram::Latency;
use super::recovery::{Recovery, Tracker};
use super::totals::{Counts, Totals};
use crate::scenario::RecoveryRule;
use crate::scenario::threshold::Threshold;

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

    /// Reports an event without waiting (a task sends it when the channel is full): for a
    /// rare event whose wait would make every client's task larger.
    pub fn report(&self, event: Event) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.0.try_send(event) {
            let tx = self.0.clone();
            tokio::spawn(async move {
                let _ = tx.send(event).await;
            });
        }
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
    /// Chaos actions on during the window or fired within it ("net_latency#0 reset#2").
    pub chaos: String,
}

/// One connection event, for connections.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRow {
    pub elapsed: Duration,
    /// None for chaos rows.
    pub client: Option<u32>,
    /// open | reconnect | connect_failed | drop | close | gave_up | chaos | chaos_end
    pub event: &'static str,
    pub attempt: u32,
    /// open: connect time; reconnect: drop → open; connect_failed: the attempt; drop and
    /// close: how long the connection was open.
    pub duration: Duration,
    pub cause: String,
}

pub enum Output {
    Sample(Box<Sample>),
    Connection(ConnectionRow),
}

/// What the collector hands over at the end.
pub struct Collected {
    pub totals: Totals,
    pub recovery: Vec<Recovery>,
    /// The `abort_on_fail` threshold that ended the run early, if one did.
    pub aborted: Option<Aborted>,
}

/// Thresholds with `abort_on_fail`, checked at every one-second tick once their grace has
/// passed; the first one crossed stops the run (gracefully, like a first Ctrl-C).
pub struct AbortGate {
    pub thresholds: Vec<Threshold>,
    pub stop: CancellationToken,
}

/// The threshold that aborted a run, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aborted {
    pub metric: String,
    pub expression: String,
    /// The value measured when it was crossed.
    pub measured: String,
    pub at_s: f64,
}

impl AbortGate {
    fn check(&self, totals: &Totals, elapsed: Duration) -> Option<Aborted> {
        // Crossed on data: while the run goes, a metric without samples yet (no reply in the
        // first seconds) does not stop it; the final verdict fails it if it never gets any.
        let (crossed, value) = self.thresholds.iter().find_map(|t| {
            let value = totals.measure_for(t)?;
            (t.abort_after.is_some_and(|grace| elapsed >= grace) && !t.passes(value)).then_some((t, value))
        })?;
        self.stop.cancel();
        Some(Aborted {
            metric: crossed.key(),
            expression: crossed.source.clone(),
            measured: crossed.show_value(value),
            at_s: elapsed.as_secs_f64(),
        })
    }
}

/// Something that follows the totals live (the Prometheus export): told of each chaos action
/// as it fires, and of the totals at every one-second tick and once more at the end.
pub trait Watch: Send {
    fn chaos(&mut self, index: u32, name: &'static str);
    fn tick(&mut self, totals: &Totals, elapsed: Duration, last: bool);
}

/// Runs until every `EventTx` is dropped. Outputs go to `out` as they happen.
pub async fn collect(
    mut rx: EventRx,
    start: Instant,
    out: mpsc::UnboundedSender<Output>,
    gate: AbortGate,
    rule: RecoveryRule,
    mut totals: Totals,
    mut watch: Option<Box<dyn Watch>>,
) -> Collected {
    let mut aborted = None;
    let mut window_rtt = Latency::new();
    let mut last = (Counts::default(), Duration::ZERO);
    let mut recovery = Tracker::new(rule);
    let mut timeline = ChaosTimeline::default();
    let mut ticker = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    // On the grid of whole seconds since the start: a sample that comes late (the process was
    // starved) covers the longer window, and the next one is back on the grid, so that rows of
    // shards still line up second by second (see `report::merge`).
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut buf = Vec::with_capacity(BATCH);
    // `elapsed` labels the row (a tick's scheduled second); the window is the real time since
    // the last sample, longer than a second when a starved process ticked late.
    let emit = |totals: &Totals,
                window_rtt: &mut Latency,
                last: &mut (Counts, Duration),
                timeline: &mut ChaosTimeline,
                elapsed: Duration| {
        let real = start.elapsed();
        let sample = Sample {
            elapsed,
            window: real.saturating_sub(last.1),
            total: totals.counts,
            delta: totals.counts - last.0,
            rtt: window_rtt.clone(),
            chaos: timeline.take(),
        };
        *last = (totals.counts, real);
        window_rtt.reset();
        let _ = out.send(Output::Sample(Box::new(sample)));
    };
    loop {
        tokio::select! {
            biased;
            n = rx.0.recv_many(&mut buf, BATCH) => {
                let now = start.elapsed();
                if n == 0 {
                    recovery.window(&window_rtt, now);
                    emit(&totals, &mut window_rtt, &mut last, &mut timeline, now);
                    if let Some(w) = &mut watch {
                        w.tick(&totals, now, true);
                    }
                    return Collected { totals, recovery: recovery.finish(), aborted };
                }
                let before = totals.counts.connected();
                let mut chaos = false;
                for event in buf.drain(..) {
                    if let Event::Chaos { index, name, selected, .. } = event {
                        recovery.chaos(index, name, selected, now, totals.counts.connected(), &window_rtt);
                        if let Some(w) = &mut watch {
                            w.chaos(index, name);
                        }
                        chaos = true;
                    }
                    timeline.apply(&event);
                    if let Some(rtt_us) = totals.apply(event) {
                        window_rtt.record_us(rtt_us);
                    }
                    if let Some(row) = connection_row(&event, now) {
                        let _ = out.send(Output::Connection(row));
                    }
                }
                if chaos || totals.counts.connected() != before {
                    recovery.connected(totals.counts.connected(), now);
                }
            }
            at = ticker.tick() => {
                let elapsed = at - start;
                recovery.connected(totals.counts.connected(), elapsed);
                recovery.window(&window_rtt, elapsed);
                emit(&totals, &mut window_rtt, &mut last, &mut timeline, elapsed);
                if let Some(w) = &mut watch {
                    w.tick(&totals, elapsed, false);
                }
                // Only while the run goes: not in the drain after its end or a stop.
                if aborted.is_none() && !gate.stop.is_cancelled() {
                    aborted = gate.check(&totals, elapsed);
                }
            }
        }
    }
}

/// The chaos actions on now, and those that fired in the current window.
#[derive(Default)]
struct ChaosTimeline {
    on: Vec<(u32, &'static str)>,
    fired: Vec<(u32, &'static str)>,
}

impl ChaosTimeline {
    fn apply(&mut self, event: &Event) {
        match *event {
            Event::Chaos {
                index, name, lasting, ..
            } => {
                if !self.fired.contains(&(index, name)) {
                    self.fired.push((index, name));
                }
                if lasting {
                    self.on.push((index, name));
                }
            }
            Event::ChaosEnded { index, name } => {
                if let Some(at) = self.on.iter().position(|&on| on == (index, name)) {
                    self.on.remove(at);
                }
            }
            _ => {}
        }
    }

    /// "name#index" of each action on or fired since the last call, in order of index.
    fn take(&mut self) -> String {
        let mut all: Vec<(u32, &str)> = self.fired.drain(..).chain(self.on.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.iter()
            .map(|(index, name)| format!("{name}#{index}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn us(v: u64) -> Duration {
    Duration::from_micros(v)
}

fn connection_row(event: &Event, elapsed: Duration) -> Option<ConnectionRow> {
    let row = |client, event, attempt, duration, cause: String| ConnectionRow {
        elapsed,
        client: Some(client),
        event,
        attempt,
        duration,
        cause,
    };
    Some(match *event {
        Event::Connected {
            client,
            attempt,
            tcp_us,
            upgrade_us,
            reconnect_us: None,
            ..
        } => row(client, "open", attempt, us(tcp_us + upgrade_us), String::new()),
        Event::Connected {
            client,
            attempt,
            reconnect_us: Some(r),
            ..
        } => row(client, "reconnect", attempt, us(r), String::new()),
        Event::ConnectFailed {
            client,
            attempt,
            kind,
            took_us,
        } => row(client, "connect_failed", attempt, us(took_us), kind.to_string()),
        Event::Dropped {
            client,
            cause,
            open_us,
            ..
        } => row(client, "drop", 0, us(open_us), cause.to_string()),
        Event::Closed { client, open_us, .. } => row(client, "close", 0, us(open_us), String::new()),
        Event::GaveUp {
            client,
            attempts,
            cause,
            ..
        } => row(client, "gave_up", attempts, Duration::ZERO, cause.to_string()),
        Event::Stopped { client, cause, .. } => row(client, "stopped", 0, Duration::ZERO, cause.to_string()),
        Event::Chaos { name, index, .. } => ConnectionRow {
            client: None,
            ..row(0, "chaos", 0, Duration::ZERO, format!("{name}#{index}"))
        },
        Event::ChaosEnded { name, index } => ConnectionRow {
            client: None,
            ..row(0, "chaos_end", 0, Duration::ZERO, format!("{name}#{index}"))
        },
        _ => return None,
    })
}
