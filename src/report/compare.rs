//! `wsstorm compare BASE NEW`: the main figures of two results directories side by side, and a
//! gate on the chosen ones. Latency percentiles are read from the serialised HDR histograms, so
//! any percentile can be compared (`rtt.p99.9`), not only those the summary lists.
//!
//! A figure a run could not measure (a latency with no samples, a rate of no requests) has no
//! value. A gated figure the new run has no value for regresses, as a threshold on it fails;
//! one only the base has no value for is not compared (a fixed service is no regression), and
//! the output says which.

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
    /// None: that run has no data for it.
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// Relative change, new vs old (None when old is 0 and new is not, or either has no data).
    pub change: Option<f64>,
    /// Whether the change is for the worse, beyond the limit (gated metrics only).
    pub regressed: bool,
    pub gated: bool,
}

impl Row {
    /// Why a gated row has no verdict on data, if it has none.
    fn note(&self) -> Option<&'static str> {
        match (self.old, self.new) {
            (_, None) => Some("no data in the new run"),
            (None, Some(_)) => Some("not compared: no data in the base run"),
            _ => None,
        }
    }
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
        let width = self
            .rows
            .iter()
            .map(|r| r.metric.len() + 2)
            .max()
            .unwrap_or(0)
            .max(22);
        let _ = writeln!(
            s,
            "{:<width$}{:>14}{:>14}{:>11}",
            "metric", "base", "new", "change"
        );
        for r in &self.rows {
            let change = match (r.change, r.old, r.new) {
                (Some(c), ..) => format!("{:+.1}%", c * 100.0),
                (None, Some(_), Some(_)) => "new".to_string(),
                (None, ..) => "-".to_string(),
            };
            let mark = match (r.gated, r.regressed, r.note()) {
                (true, true, Some(why)) => format!("  REGRESSED ({why})"),
                (true, true, None) => format!("  REGRESSED (limit {:.1}%)", max_regression * 100.0),
                (true, false, Some(why)) => format!("  {why}"),
                (true, false, None) => "  ok".to_string(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{:<width$}{:>14}{:>14}{:>11}{mark}",
                r.metric,
                show(&r.metric, r.old),
                show(&r.metric, r.new),
                change
            );
        }
        s
    }
}

/// The metric without its `{step=…}` (whose name may have dots).
fn plain(metric: &str) -> String {
    match (metric.find('{'), metric.find('}')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &metric[..a], &metric[b + 1..]),
        _ => metric.to_string(),
    }
}

fn show(metric: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "no data".to_string();
    };
    let metric = plain(metric);
    let metric = metric.as_str();
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
    matches!(plain(metric).as_str(), "requests_per_s" | "answered" | "requests")
}

/// The value of `metric` in `s`: `<latency>.p<N>` / `.max` / `.mean` from the histogram, a
/// rate, `requests_per_s`, or a count. None: no data (a latency with no samples, a rate of no
/// requests).
pub fn value(s: &Summary, metric: &str) -> Result<Option<f64>, String> {
    if let Some((base, rest)) = metric.split_once("{step=") {
        return step_value(s, metric, base, rest);
    }
    if let Some((name, stat)) = metric.split_once('.') {
        let stats = s
            .latency
            .get(name)
            .ok_or_else(|| format!("unknown latency {name:?}: expected one of {}", names(s)))?;
        let h = Latency::decode(&stats.histogram)
            .map_err(|e| format!("the {name} histogram of {} cannot be read: {e}", s.scenario))?;
        if h.is_empty() {
            // The statistic must still be one we know.
            value_of(&h, metric, stat)?;
            return Ok(None);
        }
        return value_of(&h, metric, stat).map(Some);
    }
    match metric {
        "timeout_rate" | "error_rate" if s.counts.requests == 0 => Ok(None),
        "timeout_rate" => Ok(Some(s.rates.timeout_rate)),
        "error_rate" => Ok(Some(s.rates.error_rate)),
        "requests_per_s" => Ok(Some(s.rates.requests_per_s)),
        other => {
            let counts = serde_json::to_value(s.counts).map_err(|e| e.to_string())?;
            counts
                .get(other)
                .and_then(serde_json::Value::as_f64)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "unknown metric {other:?}: expected a latency percentile such as rtt.p99, timeout_rate, error_rate, requests_per_s or a count such as lost"
                    )
                })
        }
    }
}

/// A named step's figure: `rtt{step=Login}.p99`, `error_rate{step=Login}`, a count such as
/// `timeouts{step=Login}`. A step one run does not have has no data there.
fn step_value(s: &Summary, metric: &str, base: &str, rest: &str) -> Result<Option<f64>, String> {
    let (step, stat) = rest
        .split_once('}')
        .ok_or_else(|| format!("{metric:?}: expected such as rtt{{step=Login}}.p99"))?;
    let Some(step) = s.by_step.get(step) else {
        return Ok(None);
    };
    let c = &step.counts;
    let ratio = |part: u64| (c.requests > 0).then(|| part as f64 / c.requests as f64);
    Ok(match (base, stat.strip_prefix('.')) {
        ("rtt", Some(stat)) => {
            let h = Latency::decode(&step.rtt.histogram).map_err(|e| {
                format!(
                    "the rtt histogram of step {step:?} cannot be read: {e}",
                    step = rest
                )
            })?;
            let v = value_of(&h, metric, stat)?;
            (!h.is_empty()).then_some(v)
        }
        ("timeout_rate", None) => ratio(c.timeouts),
        ("error_rate", None) => ratio(c.timeouts + c.lost),
        ("requests", None) => Some(c.requests as f64),
        ("answered", None) => Some(c.answered as f64),
        ("timeouts", None) => Some(c.timeouts as f64),
        ("late", None) => Some(c.late as f64),
        ("lost", None) => Some(c.lost as f64),
        ("check_failures", None) => Some(c.check_failures as f64),
        _ => {
            return Err(format!(
                "{metric:?}: a step has rtt{{step=…}}.pN, timeout_rate, error_rate, requests, answered, timeouts, late, lost and check_failures"
            ));
        }
    })
}

/// A statistic of a latency histogram: `pN`, `max`, `mean` (`avg`) or `min`, in ms.
fn value_of(h: &Latency, metric: &str, stat: &str) -> Result<f64, String> {
    match stat {
        "max" => Ok(h.max_ms()),
        "mean" | "avg" => Ok(h.mean_ms()),
        "min" => Ok(h.min_ms()),
        p => p
            .strip_prefix('p')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| (0.0..=100.0).contains(n))
            .map(|n| h.percentile_ms(n))
            .ok_or_else(|| format!("{metric:?}: expected pN (p50, p99.9), max, mean or min after the dot")),
    }
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
    let mut metrics: Vec<String> = SHOWN.iter().map(|m| m.to_string()).collect();
    // Each named step both runs have: its p99 and error rate.
    for step in base.by_step.keys().filter(|k| new.by_step.contains_key(*k)) {
        metrics.push(format!("rtt{{step={step}}}.p99"));
        metrics.push(format!("error_rate{{step={step}}}"));
    }
    for g in gates {
        if !metrics.contains(g) {
            metrics.push(g.clone());
        }
    }
    let mut rows = Vec::new();
    for metric in &metrics {
        let metric = metric.as_str();
        let (old, new_value) = (value(base, metric)?, value(new, metric)?);
        let change = match (old, new_value) {
            (Some(0.0), Some(new)) => (new == 0.0).then_some(0.0),
            (Some(old), Some(new)) => Some((new - old) / old),
            _ => None,
        };
        let worse = match (old, new_value, change) {
            // What the new run could not measure at all is no improvement (as a threshold on
            // it fails); what only the base could not measure is not compared.
            (_, None, _) => f64::INFINITY,
            (None, Some(_), _) => f64::NEG_INFINITY,
            (_, _, Some(c)) if higher_is_better(metric) => -c,
            (_, _, Some(c)) => c,
            (_, _, None) if higher_is_better(metric) => f64::NEG_INFINITY,
            (_, _, None) => f64::INFINITY,
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

    /// Field finding 2 (issue 19): the base answered nothing, the new run is fine: that was
    /// `rtt.p99 0.000 ms → 1.227 ms REGRESSED`, exit 3, although the error rate fell to 0 %.
    #[test]
    fn field_02_a_fixed_service_is_no_regression() {
        let new = fixture();
        let mut base = new.clone();
        base.latency
            .insert("rtt".into(), LatencyStats::of(&Latency::new()));
        base.rates.error_rate = 1.0;
        let gates = vec!["rtt.p99".to_string(), "error_rate".to_string()];
        let c = compare(&base, &new, &gates, 0.1).unwrap();
        assert!(!c.regressed(), "{:?}", c.rows);
        let shown = c.render(Path::new("base"), Path::new("new"), 0.1);
        assert!(shown.contains("not compared: no data in the base run"), "{shown}");
        assert!(shown.contains("no data"), "{shown}");
        // And the other way round it is one, said as such.
        let c = compare(&new, &base, &gates, 0.1).unwrap();
        assert!(c.regressed());
        let shown = c.render(Path::new("base"), Path::new("new"), 0.1);
        assert!(shown.contains("REGRESSED (no data in the new run)"), "{shown}");
    }
}
