//! What thresholds read from the totals: a metric as a number (latencies in ms, rates as
//! fractions, counts), the part a selector names, and the verdicts.

use super::histogram::Latency;
use super::totals::Totals;
use crate::scenario::threshold::{Aggregate, Metric, Selector, Threshold};

impl Totals {
    /// One rule counter (0 when nothing was counted under its name: a count is always known).
    fn counter(&self, name: &str) -> u64 {
        let live = self
            .registry
            .as_ref()
            .and_then(|r| r.find(name))
            .and_then(|id| self.counted.get(id as usize))
            .copied()
            .unwrap_or(0);
        live + self.counters.get(name).copied().unwrap_or(0)
    }

    /// What `t` judges: its metric, or the part its selector names.
    pub fn measure_for(&self, t: &Threshold) -> Option<f64> {
        match &t.selector {
            None => self.measure(t.metric, t.aggregate),
            Some(Selector::Counter(name)) => Some(self.counter(name) as f64),
            Some(Selector::Cause(cause)) => {
                let n: u64 = match t.metric {
                    Metric::HttpErrors => self.http_errors.get(cause).copied().unwrap_or(0),
                    Metric::GaveUp => self.gave_up_causes.get(cause).copied().unwrap_or(0),
                    Metric::Stopped => self.stopped_causes.get(cause).copied().unwrap_or(0),
                    Metric::Drops => self
                        .drops
                        .iter()
                        .filter(|(k, _)| k.to_string() == *cause)
                        .map(|(_, n)| n)
                        .sum(),
                    _ => self
                        .connect_errors
                        .iter()
                        .filter(|(k, _)| k.to_string() == *cause)
                        .map(|(_, n)| n)
                        .sum(),
                };
                Some(n as f64)
            }
            Some(Selector::Step(name)) => self.steps.step(name)?.measure(t.metric, t.aggregate),
            // A flow's or a socket's requests are named after it.
            Some(Selector::Flow(name) | Selector::Socket(name)) => {
                self.steps.flow(name)?.measure(t.metric, t.aggregate)
            }
        }
    }

    /// The histogram behind a latency metric.
    pub fn latency(&self, metric: Metric) -> Option<&Latency> {
        Some(match metric {
            Metric::Rtt => &self.rtt,
            Metric::RttCorrected => &self.rtt_corrected,
            Metric::RttFirst => &self.rtt_first,
            Metric::WaitTime => &self.wait_time,
            Metric::ConnectTime => &self.connect_time,
            Metric::ReconnectTime => &self.reconnect_time,
            Metric::PingRtt => &self.ping_rtt,
            Metric::PushLatency => &self.push_latency,
            Metric::HttpRtt => &self.http_rtt,
            Metric::ReconnectAttempts => &self.reconnect_attempts,
            _ => return None,
        })
    }

    /// The number a threshold compares: latency in ms, rates as fractions, counts. None: the
    /// metric has no samples (a histogram with nothing in it, a rate of no requests), so there
    /// is nothing to judge: a verdict on it fails (see `verdicts`).
    pub fn measure(&self, metric: Metric, aggregate: Aggregate) -> Option<f64> {
        let c = &self.counts;
        if let Some(h) = self.latency(metric) {
            if h.is_empty() {
                return None;
            }
            let raw = metric == Metric::ReconnectAttempts;
            return Some(match aggregate {
                Aggregate::Percentile(p) if raw => h.percentile(p) as f64,
                Aggregate::Avg if raw => h.mean(),
                Aggregate::Min if raw => h.min() as f64,
                Aggregate::Max if raw => h.max() as f64,
                Aggregate::Percentile(p) => h.percentile_ms(p),
                Aggregate::Avg => h.mean_ms(),
                Aggregate::Min => h.min_ms(),
                Aggregate::Max => h.max_ms(),
                Aggregate::Rate | Aggregate::Count => h.count() as f64,
            });
        }
        Some(match metric {
            // A rate of no requests is no rate.
            Metric::TimeoutRate | Metric::ErrorRate if c.requests == 0 => return None,
            Metric::TimeoutRate => return Some(c.timeout_rate()),
            Metric::ErrorRate => return Some(c.error_rate()),
            Metric::Requests => c.requests,
            Metric::Answered => c.answered,
            Metric::Timeouts => c.timeouts,
            Metric::Late => c.late,
            Metric::Lost => c.lost,
            Metric::Unmatched => c.unmatched,
            Metric::Duplicate => c.duplicate,
            Metric::ConnectErrors => c.connect_errors,
            Metric::Drops => c.drops,
            Metric::GaveUp => c.gave_up,
            Metric::Stopped => c.stopped,
            Metric::Reconnects => c.reconnects,
            Metric::PushGaps => c.push_gaps,
            Metric::PushDuplicates => c.push_duplicates,
            Metric::LateSends => c.late_sends,
            Metric::Capped => c.capped,
            Metric::CheckFailures => c.check_failures,
            Metric::WaitTimeouts => c.wait_timeouts,
            Metric::CaptureFailures => c.capture_failures,
            Metric::CaptureMissing => c.capture_missing,
            Metric::HttpRequests => c.http_requests,
            Metric::HttpErrors => c.http_errors,
            // Named by a selector: see `measure_for`.
            Metric::Counter => return None,
            Metric::Rtt
            | Metric::RttCorrected
            | Metric::RttFirst
            | Metric::WaitTime
            | Metric::ConnectTime
            | Metric::ReconnectTime
            | Metric::PingRtt
            | Metric::PushLatency
            | Metric::HttpRtt
            | Metric::ReconnectAttempts => unreachable!("histograms handled above"),
        } as f64)
    }

    /// Evaluates thresholds in order. A threshold on a metric with no samples fails: a gate
    /// never passes on nothing.
    pub fn verdicts(&self, thresholds: &[Threshold]) -> Vec<Verdict> {
        thresholds
            .iter()
            .map(|t| {
                let value = self.measure_for(t);
                Verdict {
                    threshold: t.clone(),
                    value,
                    passed: value.is_some_and(|v| t.passes(v)),
                }
            })
            .collect()
    }
}

/// A threshold with its measured value (None: no data, and not passed).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub threshold: Threshold,
    pub value: Option<f64>,
    pub passed: bool,
}
