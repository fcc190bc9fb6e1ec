//! `wsstorm compare BASE NEW`: the main figures of two results directories side by side, and a
//! gate on the chosen ones. Latency percentiles are read from the serialised HDR histograms, so
//! any percentile can be compared (`rtt.p99.9`), not only those the summary lists.

use std::fmt::Write as _;
use std::path::Path;

use super::summary::Summary;
use crate::metrics::Latency;

/// Metrics shown when none are asked for; the gate defaults to `rtt.p99`.
const SHOWN: &[&str] = &[
    "rtt.p50",
    "rtt.p90",
    "rtt.p99",
    "rtt.max",
    "connect_time.p50",
    "connect_time.p99",
    "reconnect_time.p50",
    "reconnect_time.p99",
    "timeout_rate",
    "error_rate",
    "requests_per_s",
    "timeouts",
    "lost",
    "drops",
    "connect_errors",
];
pub const DEFAULT_GATES: &[&str] = &["rtt.p99", "error_rate"];

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: String,
    pub old: f64,
    pub new: f64,
    /// Relative change, new vs old (None when old is 0 and new is not).
    pub change: Option<f64>,
    /// Whether the change is for the worse, beyond the limit (gated metrics only).
    pub regressed: bool,
    pub gated: bool,
}

pub struct Comparison {
    pub rows: Vec<Row>,
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regressed)
    }

    pub fn render(&self, base: &Path, new: &Path, max_regression: f64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "base {}\nnew  {}\n", base.display(), new.display());
        let _ = writeln!(s, "{:<22}{:>14}{:>14}{:>11}", "metric", "base", "new", "change");
        for r in &self.rows {
            let change = match r.change {
                Some(c) => format!("{:+.1}%", c * 100.0),
                None => "new".to_string(),
            };
            let mark = match (r.gated, r.regressed) {
                (true, true) => format!("  REGRESSED (limit {:.1}%)", max_regression * 100.0),
                (true, false) => "  ok".to_string(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{:<22}{:>14}{:>14}{:>11}{mark}",
                r.metric,
                show(&r.metric, r.old),
                show(&r.metric, r.new),
                change
            );
        }
        s
    }
}

fn show(metric: &str, v: f64) -> String {
    if metric.contains('.') {
        format!("{v:.3} ms")
    } else if metric.ends_with("_rate") {
        format!("{:.4}%", v * 100.0)
    } else if metric == "requests_per_s" {
        format!("{v:.1}/s")
    } else {
        format!("{v:.0}")
    }
}

/// Whether a larger value is better (throughput); for everything else smaller is.
fn higher_is_better(metric: &str) -> bool {
    matches!(metric, "requests_per_s" | "answered" | "requests")
}

/// The value of `metric` in `s`: `<latency>.p<N>` / `.max` / `.mean` from the histogram, a
/// rate, `requests_per_s`, or a count.
pub fn value(s: &Summary, metric: &str) -> Result<f64, String> {
    if let Some((name, stat)) = metric.split_once('.') {
        let stats = s
            .latency
            .get(name)
            .ok_or_else(|| format!("unknown latency {name:?}: expected one of {}", names(s)))?;
        let h = Latency::decode(&stats.histogram)
            .map_err(|e| format!("the {name} histogram of {} cannot be read: {e}", s.scenario))?;
        return match stat {
            "max" => Ok(h.max_ms()),
            "mean" | "avg" => Ok(h.mean_ms()),
            "min" => Ok(h.min_ms()),
            p => p
                .strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n))
                .map(|n| h.percentile_ms(n))
                .ok_or_else(|| {
                    format!("{metric:?}: expected pN (p50, p99.9), max, mean or min after the dot")
                }),
        };
    }
    match metric {
        "timeout_rate" => Ok(s.rates.timeout_rate),
        "error_rate" => Ok(s.rates.error_rate),
        "requests_per_s" => Ok(s.rates.requests_per_s),
        other => {
            let counts = serde_json::to_value(s.counts).map_err(|e| e.to_string())?;
            counts
                .get(other)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| {
                    format!(
                        "unknown metric {other:?}: expected a latency percentile such as rtt.p99, timeout_rate, error_rate, requests_per_s or a count such as lost"
                    )
                })
        }
    }
}

/// Whether `metric` is a latency with samples in `base` and none in `new`.
fn lost_samples(base: &Summary, new: &Summary, metric: &str) -> bool {
    let count = |s: &Summary| {
        metric
            .split_once('.')
            .and_then(|(name, _)| s.latency.get(name))
            .map(|l| l.count)
    };
    matches!((count(base), count(new)), (Some(b), Some(0)) if b > 0)
}

fn names(s: &Summary) -> String {
    s.latency.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Compares `new` against `base` on the shown metrics plus `gates`; a gated metric regresses
/// when it got worse by more than `max_regression` (a fraction).
pub fn compare(
    base: &Summary,
    new: &Summary,
    gates: &[String],
    max_regression: f64,
) -> Result<Comparison, String> {
    let mut metrics: Vec<&str> = SHOWN.to_vec();
    for g in gates {
        if !metrics.contains(&g.as_str()) {
            metrics.push(g);
        }
    }
    let mut rows = Vec::new();
    for metric in metrics {
        let (old, new_value) = (value(base, metric)?, value(new, metric)?);
        let change = if old == 0.0 {
            (new_value == 0.0).then_some(0.0)
        } else {
            Some((new_value - old) / old)
        };
        let worse = match change {
            // A latency the base measured and the new run could not (nothing answered) is
            // no improvement.
            _ if lost_samples(base, new, metric) => f64::INFINITY,
            Some(c) if higher_is_better(metric) => -c,
            Some(c) => c,
            None if higher_is_better(metric) => f64::NEG_INFINITY,
            None => f64::INFINITY,
        };
        let new = new_value;
        let gated = gates.iter().any(|g| g == metric);
        rows.push(Row {
            metric: metric.to_string(),
            old,
            new,
            change,
            regressed: gated && worse > max_regression,
            gated,
        });
    }
    Ok(Comparison { rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::LatencyStats;

    fn fixture() -> Summary {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compare/base");
        crate::report::read_summary(&path).unwrap()
    }

    #[test]
    fn a_run_that_answered_nothing_is_no_latency_improvement() {
        let base = fixture();
        let mut new = base.clone();
        new.latency
            .insert("rtt".into(), LatencyStats::of(&Latency::new()));
        let gates = vec!["rtt.p99".to_string()];
        assert!(compare(&base, &new, &gates, 0.1).unwrap().regressed());
    }

    #[test]
    fn more_from_nothing_is_better_when_higher_is_better() {
        let mut base = fixture();
        let new = base.clone();
        base.rates.requests_per_s = 0.0;
        let gates = vec!["requests_per_s".to_string()];
        assert!(!compare(&base, &new, &gates, 0.1).unwrap().regressed());
        assert!(
            compare(&new, &base, &gates, 0.1).unwrap().regressed(),
            "and down to nothing is worse"
        );
    }
}
