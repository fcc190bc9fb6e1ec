//! The named steps' part of the reports: summary.json's `by_step` (counts and the rtt
//! histogram of each name, so that merge adds them exactly), its table in summary.txt and
//! report.html.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::markup::escape;
use super::stats::LatencyStats;
use crate::metrics::Latency;
use crate::metrics::steps::{StepCounts, Steps};

/// One named step's requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSummary {
    #[serde(flatten)]
    pub counts: StepCounts,
    pub rtt: LatencyStats,
}

/// `by_step` of a run's totals.
pub fn of(steps: &Steps) -> BTreeMap<String, StepSummary> {
    steps
        .iter()
        .map(|(name, t)| {
            (
                name.to_string(),
                StepSummary {
                    counts: t.counts,
                    rtt: LatencyStats::of(&t.rtt),
                },
            )
        })
        .collect()
}

/// Adds shards' `by_step` into `steps` (counts add, histograms merge losslessly).
pub fn merge_into(steps: &mut Steps, by_step: &BTreeMap<String, StepSummary>) -> Result<(), String> {
    for (name, s) in by_step {
        let rtt = Latency::decode(&s.rtt.histogram)?;
        steps.add(name, s.counts, &rtt);
    }
    Ok(())
}

/// The table in summary.txt.
pub fn text(s: &mut String, by_step: &BTreeMap<String, StepSummary>) {
    if by_step.is_empty() {
        return;
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<20}{:>10}{:>10}{:>10}{:>8}{:>8}{:>11}{:>8}{:>10}{:>10}",
        "by step",
        "requests",
        "answered",
        "timeouts",
        "late",
        "lost",
        "unfinished",
        "checks",
        "p50 ms",
        "p99 ms"
    );
    for (name, step) in by_step {
        let c = &step.counts;
        let ms = |v: f64| {
            if step.rtt.count == 0 {
                "-".to_string()
            } else {
                format!("{v:.3}")
            }
        };
        let _ = writeln!(
            s,
            "{:<20}{:>10}{:>10}{:>10}{:>8}{:>8}{:>11}{:>8}{:>10}{:>10}",
            name,
            c.requests,
            c.answered,
            c.timeouts,
            c.late,
            c.lost,
            c.unfinished,
            c.check_failures,
            ms(step.rtt.p50_ms),
            ms(step.rtt.p99_ms)
        );
    }
}

/// The table in report.html.
pub fn html(h: &mut String, by_step: &BTreeMap<String, StepSummary>) {
    if by_step.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>By step</h2><table id=\"by-step\"><tr><th>step</th><th>requests</th><th>answered</th><th>timeouts</th><th>late</th><th>lost</th><th>unfinished</th><th>check failures</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>"
    );
    for (name, step) in by_step {
        let (c, r) = (&step.counts, &step.rtt);
        let ms = |v: f64| {
            if r.count == 0 {
                "–".to_string()
            } else {
                format!("{v:.3}")
            }
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            c.requests,
            c.answered,
            c.timeouts,
            c.late,
            c.lost,
            c.unfinished,
            c.check_failures,
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p99_ms),
            ms(r.max_ms)
        );
    }
    let _ = writeln!(h, "</table>");
}
