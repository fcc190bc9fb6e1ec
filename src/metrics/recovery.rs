//! Recovery after each chaos action: how long until the connected clients are back to 99 %
//! of their count before it, and until the p99 rtt of a one-second window is back within 2×
//! its value over the five seconds before it. Fed by the collector; exact to the event for
//! connections, to the second for rtt.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::Latency;
use crate::scenario::ChaosHow;

/// Seconds of rtt history the baseline p99 is taken over.
const BASELINE_WINDOWS: usize = 5;

/// The recovery figures of one chaos action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recovery {
    /// Index of the action in the scenario's [[chaos]] list.
    pub chaos: u32,
    pub how: String,
    pub at_s: f64,
    /// Clients the action hit.
    pub hit: u32,
    pub connected_before: u64,
    /// Fewest connected clients seen after the action.
    pub connected_min: u64,
    /// Seconds from the action until connected ≥ 99 % of before (None: not recovered).
    pub connected_recovered_s: Option<f64>,
    /// p99 rtt over the 5 s before the action (None: no replies then).
    pub rtt_p99_before_ms: Option<f64>,
    /// Seconds from the action to the end of the first one-second window whose p99 rtt is
    /// within 2× the baseline (None: not recovered, or no baseline).
    pub rtt_recovered_s: Option<f64>,
}

struct Open {
    result: Recovery,
    target: u64,
    at: Duration,
    dipped: bool,
}

#[derive(Default)]
pub struct Tracker {
    open: Vec<Open>,
    done: Vec<Recovery>,
    history: VecDeque<Latency>,
}

impl Tracker {
    pub fn chaos(
        &mut self,
        index: u32,
        how: ChaosHow,
        hit: u32,
        at: Duration,
        connected: u64,
        current: &Latency,
    ) {
        let mut baseline = current.clone();
        for h in &self.history {
            baseline.merge(h);
        }
        let target = (connected as f64 * 0.99).ceil() as u64;
        self.open.push(Open {
            result: Recovery {
                chaos: index,
                how: how.name().to_string(),
                at_s: at.as_secs_f64(),
                hit,
                connected_before: connected,
                connected_min: connected,
                connected_recovered_s: None,
                rtt_p99_before_ms: (!baseline.is_empty()).then(|| baseline.percentile_ms(99.0)),
                rtt_recovered_s: None,
            },
            target,
            at,
            dipped: false,
        });
    }

    /// After events were applied: the connected count now.
    pub fn connected(&mut self, connected: u64, now: Duration) {
        for o in &mut self.open {
            o.result.connected_min = o.result.connected_min.min(connected);
            if connected < o.target {
                o.dipped = true;
            } else if o.result.connected_recovered_s.is_none() && (o.dipped || now > o.at) {
                let secs = if o.dipped { (now - o.at).as_secs_f64() } else { 0.0 };
                o.result.connected_recovered_s = Some(secs);
            }
        }
        self.settle();
    }

    /// At the end of each one-second window, with that window's rtt histogram.
    pub fn window(&mut self, rtt: &Latency, now: Duration) {
        for o in &mut self.open {
            if let (Some(base), None) = (o.result.rtt_p99_before_ms, o.result.rtt_recovered_s)
                && now > o.at
                && !rtt.is_empty()
                && rtt.percentile_ms(99.0) <= 2.0 * base
            {
                o.result.rtt_recovered_s = Some((now - o.at).as_secs_f64());
            }
        }
        if self.history.len() == BASELINE_WINDOWS {
            self.history.pop_front();
        }
        self.history.push_back(rtt.clone());
        self.settle();
    }

    fn settle(&mut self) {
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open).into_iter().partition(|o| {
            o.result.connected_recovered_s.is_some()
                && (o.result.rtt_recovered_s.is_some() || o.result.rtt_p99_before_ms.is_none())
        });
        self.done.extend(done.into_iter().map(|o| o.result));
        self.open = open;
    }

    /// Everything, in the order of the actions; unrecovered ones keep `None`.
    pub fn finish(mut self) -> Vec<Recovery> {
        self.done.extend(self.open.into_iter().map(|o| o.result));
        self.done
            .sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.chaos.cmp(&b.chaos)));
        self.done
    }
}
