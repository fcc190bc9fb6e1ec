//! Cumulative results: exact counters, causes and latency histograms. The collector owns one;
//! a results directory's summary.json holds one, so runs can be re-reported and merged.

use std::collections::BTreeMap;
use std::ops::Sub;

use serde::{Deserialize, Serialize};

use super::event::{ConnectError, DropCause, Event, Reply};
use super::histogram::Latency;
use crate::scenario::threshold::{Aggregate, Metric, Threshold};

/// Exact counters. Gauges (connected, connecting, in flight) are derived from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub connect_attempts: u64,
    pub connects: u64,
    pub connect_errors: u64,
    pub connect_abandoned: u64,
    pub drops: u64,
    pub closes: u64,
    /// Messages sent that expect a correlated reply.
    pub requests: u64,
    pub answered: u64,
    pub timeouts: u64,
    pub late: u64,
    pub duplicate: u64,
    pub unmatched: u64,
    /// In flight when their connection dropped.
    pub lost: u64,
    /// In flight when the run was stopped without waiting.
    pub unfinished: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Counts {
    pub fn connected(&self) -> u64 {
        self.connects.saturating_sub(self.drops + self.closes)
    }

    pub fn connecting(&self) -> u64 {
        self.connect_attempts
            .saturating_sub(self.connects + self.connect_errors + self.connect_abandoned)
    }

    pub fn in_flight(&self) -> u64 {
        self.requests
            .saturating_sub(self.answered + self.timeouts + self.lost + self.unfinished)
    }

    /// Timeouts as a fraction of resolved requests.
    pub fn timeout_rate(&self) -> f64 {
        ratio(self.timeouts, self.requests)
    }

    /// Requests that did not get a timely answer (timeouts + lost), as a fraction.
    pub fn error_rate(&self) -> f64 {
        ratio(self.timeouts + self.lost, self.requests)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Sub for Counts {
    type Output = Counts;

    fn sub(self, o: Counts) -> Counts {
        Counts {
            connect_attempts: self.connect_attempts - o.connect_attempts,
            connects: self.connects - o.connects,
            connect_errors: self.connect_errors - o.connect_errors,
            connect_abandoned: self.connect_abandoned - o.connect_abandoned,
            drops: self.drops - o.drops,
            closes: self.closes - o.closes,
            requests: self.requests - o.requests,
            answered: self.answered - o.answered,
            timeouts: self.timeouts - o.timeouts,
            late: self.late - o.late,
            duplicate: self.duplicate - o.duplicate,
            unmatched: self.unmatched - o.unmatched,
            lost: self.lost - o.lost,
            unfinished: self.unfinished - o.unfinished,
            messages_sent: self.messages_sent - o.messages_sent,
            messages_received: self.messages_received - o.messages_received,
            bytes_sent: self.bytes_sent - o.bytes_sent,
            bytes_received: self.bytes_received - o.bytes_received,
        }
    }
}

/// Everything measured over a run (or a window of it).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub counts: Counts,
    pub connect_errors: BTreeMap<ConnectError, u64>,
    pub drops: BTreeMap<DropCause, u64>,
    pub rtt: Latency,
    pub connect_time: Latency,
}

impl Totals {
    /// Folds one event in. Returns the rtt it carried, if any, for windowed histograms.
    pub fn apply(&mut self, event: Event) -> Option<u64> {
        let c = &mut self.counts;
        match event {
            Event::Connecting => c.connect_attempts += 1,
            Event::Connected { connect_us } => {
                c.connects += 1;
                self.connect_time.record_us(connect_us);
            }
            Event::ConnectFailed(kind) => {
                c.connect_errors += 1;
                *self.connect_errors.entry(kind).or_default() += 1;
            }
            Event::ConnectAbandoned => c.connect_abandoned += 1,
            Event::Dropped { cause, lost } => {
                c.drops += 1;
                c.lost += u64::from(lost);
                *self.drops.entry(cause).or_default() += 1;
            }
            Event::Closed { unfinished } => {
                c.closes += 1;
                c.unfinished += u64::from(unfinished);
            }
            Event::Sent { bytes, request } => {
                c.messages_sent += 1;
                c.bytes_sent += u64::from(bytes);
                c.requests += u64::from(request);
            }
            Event::Received { bytes, reply } => {
                c.messages_received += 1;
                c.bytes_received += u64::from(bytes);
                match reply {
                    Reply::Answered { rtt_us } => {
                        c.answered += 1;
                        self.rtt.record_us(rtt_us);
                        return Some(rtt_us);
                    }
                    Reply::Late => c.late += 1,
                    Reply::Duplicate => c.duplicate += 1,
                    Reply::Unmatched => c.unmatched += 1,
                    Reply::Uncorrelated => {}
                }
            }
            Event::TimedOut(n) => c.timeouts += u64::from(n),
        }
        None
    }

    /// The number a threshold compares: latency in ms, rates as fractions, counts.
    pub fn measure(&self, metric: Metric, aggregate: Aggregate) -> f64 {
        let c = &self.counts;
        let latency = match metric {
            Metric::Rtt => &self.rtt,
            Metric::ConnectTime => &self.connect_time,
            Metric::TimeoutRate => return c.timeout_rate(),
            Metric::ErrorRate => return c.error_rate(),
            Metric::Requests => return c.requests as f64,
            Metric::Answered => return c.answered as f64,
            Metric::Timeouts => return c.timeouts as f64,
            Metric::Late => return c.late as f64,
            Metric::Lost => return c.lost as f64,
            Metric::Unmatched => return c.unmatched as f64,
            Metric::Duplicate => return c.duplicate as f64,
            Metric::ConnectErrors => return c.connect_errors as f64,
            Metric::Drops => return c.drops as f64,
        };
        match aggregate {
            Aggregate::Percentile(p) => latency.percentile_ms(p),
            Aggregate::Avg => latency.mean_ms(),
            Aggregate::Min => latency.min_ms(),
            Aggregate::Max => latency.max_ms(),
            Aggregate::Rate | Aggregate::Count => latency.count() as f64,
        }
    }

    /// Evaluates thresholds in order.
    pub fn verdicts(&self, thresholds: &[Threshold]) -> Vec<Verdict> {
        thresholds
            .iter()
            .map(|t| {
                let value = self.measure(t.metric, t.aggregate);
                Verdict {
                    threshold: t.clone(),
                    value,
                    passed: t.passes(value),
                }
            })
            .collect()
    }
}

/// A threshold with its measured value.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub threshold: Threshold,
    pub value: f64,
    pub passed: bool,
}
