//! Named steps (`name = "Login"`): each name's requests counted and timed on their own, so
//! that a scenario of several operations gates each one (`rtt{step=Login}`). Every request of
//! a named step counts both here and in the run's totals; the names' counts add up to the
//! totals' when every request step is named.

use serde::{Deserialize, Serialize};

use super::event::Name;
use super::histogram::Latency;
use crate::scenario::threshold::{Aggregate, Metric};

/// The counts of one name's requests: each request ends one way (answered, timeouts, lost,
/// unfinished), as in the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepCounts {
    pub requests: u64,
    pub answered: u64,
    pub timeouts: u64,
    pub late: u64,
    pub lost: u64,
    pub unfinished: u64,
    pub check_failures: u64,
}

impl std::ops::Add for StepCounts {
    type Output = StepCounts;

    fn add(self, o: StepCounts) -> StepCounts {
        StepCounts {
            requests: self.requests + o.requests,
            answered: self.answered + o.answered,
            timeouts: self.timeouts + o.timeouts,
            late: self.late + o.late,
            lost: self.lost + o.lost,
            unfinished: self.unfinished + o.unfinished,
            check_failures: self.check_failures + o.check_failures,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StepTotals {
    pub counts: StepCounts,
    pub rtt: Latency,
    /// For an HTTP step: its request → the message a rule with `since` matched.
    pub after: Latency,
}

/// Every name's totals, by name number (1 + index).
#[derive(Debug, Clone, Default)]
pub struct Steps {
    pub names: Vec<String>,
    pub totals: Vec<StepTotals>,
}

impl Steps {
    pub fn named(names: &[String]) -> Self {
        Steps {
            names: names.to_vec(),
            totals: vec![StepTotals::default(); names.len()],
        }
    }

    /// The totals of name number `name` (None for 0, an unnamed step).
    pub fn at(&mut self, name: Name) -> Option<&mut StepTotals> {
        let i = usize::from(name.checked_sub(1)?);
        self.totals.get_mut(i)
    }

    pub fn get(&self, name: &str) -> Option<&StepTotals> {
        let i = self.names.iter().position(|n| n == name)?;
        self.totals.get(i)
    }

    /// Adds `name`'s totals (for merge), making the name when it is new.
    pub fn add(&mut self, name: &str, counts: StepCounts, (rtt, after): (&Latency, &Latency)) {
        let i = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.totals.push(StepTotals::default());
                self.names.len() - 1
            }
        };
        let t = &mut self.totals[i];
        t.counts = t.counts + counts;
        t.rtt.merge(rtt);
        t.after.merge(after);
    }

    /// The totals of every name `pick` takes, merged (None when it takes none).
    fn merged(&self, pick: impl Fn(&str) -> bool) -> Option<StepTotals> {
        let mut out: Option<StepTotals> = None;
        for (name, t) in self.iter().filter(|(name, _)| pick(name)) {
            let _ = name;
            let o = out.get_or_insert_with(StepTotals::default);
            o.counts = o.counts + t.counts;
            o.rtt.merge(&t.rtt);
            o.after.merge(&t.after);
        }
        out
    }

    /// A step name's totals: the name itself, and in flows every `flow/name` (one name used
    /// in several flows counts in all of them).
    pub fn step(&self, name: &str) -> Option<StepTotals> {
        self.merged(|n| n == name || n.rsplit_once('/').is_some_and(|(_, step)| step == name))
    }

    /// A flow's totals: its requests, named after it (`flow`, `flow/step`).
    pub fn flow(&self, flow: &str) -> Option<StepTotals> {
        self.merged(|n| n == flow || n.split_once('/').is_some_and(|(f, _)| f == flow))
    }

    /// Each name with its totals.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &StepTotals)> {
        self.names.iter().map(String::as_str).zip(&self.totals)
    }
}

impl StepTotals {
    /// What a threshold on this step measures (None: no data: no rtt sample, a rate of no
    /// request; or a metric steps do not have).
    pub fn measure(&self, metric: Metric, aggregate: Aggregate) -> Option<f64> {
        let c = &self.counts;
        let ratio = |part: u64| (c.requests > 0).then(|| part as f64 / c.requests as f64);
        Some(match metric {
            Metric::PushLatency if self.after.is_empty() => return None,
            Metric::PushLatency => latency(&self.after, aggregate),
            Metric::Rtt if self.rtt.is_empty() => return None,
            Metric::Rtt => latency(&self.rtt, aggregate),
            Metric::Requests => c.requests as f64,
            Metric::Answered => c.answered as f64,
            Metric::Timeouts => c.timeouts as f64,
            Metric::Late => c.late as f64,
            Metric::Lost => c.lost as f64,
            Metric::CheckFailures => c.check_failures as f64,
            Metric::TimeoutRate => return ratio(c.timeouts),
            Metric::ErrorRate => return ratio(c.timeouts + c.lost),
            _ => return None,
        })
    }
}

/// A latency histogram's figure, in ms.
fn latency(h: &Latency, aggregate: Aggregate) -> f64 {
    match aggregate {
        Aggregate::Percentile(p) => h.percentile_ms(p),
        Aggregate::Avg => h.mean_ms(),
        Aggregate::Min => h.min_ms(),
        Aggregate::Max => h.max_ms(),
        Aggregate::Rate | Aggregate::Count => h.count() as f64,
    }
}
