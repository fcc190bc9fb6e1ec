//! `[thresholds]`: a metric name and its expressions, each parsed once into a `Threshold`
//! the metrics can be compared with, optionally aborting the run when crossed.

use std::time::Duration;

use super::validator::Validator;
use crate::scenario::plan::{CounterName, Rule};
use crate::scenario::raw::{RawScenario, RawThreshold};
use crate::scenario::threshold::{CONNECT_ERRORS, DROP_CAUSES, Metric, Selector, Threshold, split_key};
use crate::units::duration;

/// What thresholds may name besides the metrics: the rules' counters, the named steps.
pub(super) struct Named<'a> {
    pub rules: &'a [Rule],
    pub counters: &'a [String],
    pub steps: &'a [String],
    pub flows: &'a [String],
    pub sockets: &'a [String],
}

impl Named<'_> {
    /// Whether a rule counts under `name` (a fixed name, or one a template can make).
    fn counts(&self, name: &str) -> bool {
        self.counters.iter().any(|c| c == name)
            || self
                .rules
                .iter()
                .any(|r| matches!(&r.count, Some(CounterName::Template(t)) if t.could_make(name)))
    }
}

impl Validator<'_> {
    /// A threshold key: a metric, a metric with a selector, or a rule's counter.
    fn threshold_key(
        &mut self,
        key: &str,
        span: std::ops::Range<usize>,
        named: &Named<'_>,
    ) -> Option<(Metric, Option<Selector>)> {
        let (name, selector) = match split_key(key) {
            Ok(parts) => parts,
            Err(e) => {
                self.error(span, format!("thresholds: {e}"));
                return None;
            }
        };
        let Some(metric) = Metric::from_name(name) else {
            if selector.is_none() && named.counts(name) {
                return Some((Metric::Counter, Some(Selector::Counter(name.to_string()))));
            }
            self.error(
                span,
                format!(
                    "thresholds: unknown metric {name:?}: expected one of {}, or the name of a rule's `count`",
                    Metric::names()
                ),
            );
            return None;
        };
        match selector {
            None => Some((metric, None)),
            Some(("cause", cause)) if metric.has_causes() => {
                if known_cause(metric, cause) {
                    Some((metric, Some(Selector::Cause(cause.to_string()))))
                } else {
                    self.error(
                        span,
                        format!(
                            "thresholds: {key:?}: no {name} cause is called {cause:?}: expected such as {}",
                            if metric == Metric::Drops {
                                "close_1011, close_1006, reset, pong_timeout"
                            } else {
                                "http_401, refused, timeout, tls"
                            }
                        ),
                    );
                    None
                }
            }
            Some(("flow", flow)) if metric.has_steps() => {
                if named.flows.iter().any(|f| f == flow) {
                    Some((metric, Some(Selector::Flow(flow.to_string()))))
                } else {
                    self.error(
                        span,
                        format!("thresholds: {key:?}: no flow is named {flow:?}: expected one of the [[flows]] names ({})", named.flows.join(", ")),
                    );
                    None
                }
            }
            Some(("socket", socket)) if metric.has_steps() => {
                if named.sockets.iter().any(|s| s == socket) {
                    Some((metric, Some(Selector::Socket(socket.to_string()))))
                } else {
                    self.error(
                        span,
                        format!("thresholds: {key:?}: no socket is named {socket:?}: expected one of the [[sockets]] names ({})", named.sockets.join(", ")),
                    );
                    None
                }
            }
            Some(("step", step)) if metric.has_steps() => {
                let in_flow = |s: &String| s.rsplit_once('/').is_some_and(|(_, n)| n == step);
                if named.steps.iter().any(|s| s == step || in_flow(s)) {
                    Some((metric, Some(Selector::Step(step.to_string()))))
                } else {
                    let known = if named.steps.is_empty() {
                        "none is named".to_string()
                    } else {
                        named.steps.join(", ")
                    };
                    self.error(
                        span,
                        format!("thresholds: {key:?}: no step is named {step:?}: expected `name = {step:?}` on a [[steps]] or [[setup]] send with expect (named: {known})"),
                    );
                    None
                }
            }
            Some((label, _)) => {
                self.error(
                    span,
                    format!("thresholds: {key:?}: {name} has no `{label}` to select: expected {{cause=…}} on drops, connect_errors, gave_up and stopped, {{step=…}}, {{flow=…}} and {{socket=…}} on rtt, requests, answered, timeouts, late, lost, check_failures, timeout_rate and error_rate"),
                );
                None
            }
        }
    }

    pub(super) fn thresholds(&mut self, raw: &RawScenario, named: &Named<'_>) -> Vec<Threshold> {
        let mut out = Vec::new();
        for (name, exprs) in &raw.thresholds {
            let Some((metric, selector)) = self.threshold_key(name, exprs.span(), named) else {
                continue;
            };
            // Measured only under an open rate: without one they would pass on nothing.
            if matches!(metric, Metric::RttCorrected | Metric::LateSends) && raw.pacing.is_none() {
                self.error(
                    exprs.span(),
                    format!("thresholds.{name}: measured only under an open rate: expected a [pacing] table"),
                );
                continue;
            }
            for e in exprs.get_ref() {
                let (source, abort, grace) = match e.get_ref() {
                    RawThreshold::Expression(text) => (text, false, None),
                    RawThreshold::Table(t) => (&t.threshold, t.abort_on_fail, t.grace.as_deref()),
                };
                if !abort && grace.is_some() {
                    self.error(
                        e.span(),
                        format!("thresholds.{name}: grace only applies with abort_on_fail = true: expected abort_on_fail = true or no grace"),
                    );
                    continue;
                }
                let grace = match grace.map(duration::parse) {
                    None => Some(Duration::ZERO),
                    Some(Ok(d)) if d <= duration::MAX => Some(d),
                    Some(Ok(_)) => {
                        self.error(
                            e.span(),
                            format!("thresholds.{name}: grace: expected at most 10 years"),
                        );
                        None
                    }
                    Some(Err(msg)) => {
                        self.error(e.span(), format!("thresholds.{name}: grace: {msg}"));
                        None
                    }
                };
                match Threshold::parse(metric, source) {
                    Ok(mut t) => {
                        t.abort_after = if abort { grace } else { None };
                        t.selector = selector.clone();
                        out.push(t);
                    }
                    Err(msg) => self.error(e.span(), format!("thresholds.{name}: {msg}")),
                }
            }
        }
        out
    }
}

/// Whether `cause` is one a run can count for `metric` (drops or connect errors), as the
/// summary names them.
fn known_cause(metric: Metric, cause: &str) -> bool {
    let numbered = |prefix: &str| {
        cause
            .strip_prefix(prefix)
            .is_some_and(|n| n.len() == 3 || n.len() == 4)
            && cause[prefix.len()..].bytes().all(|b| b.is_ascii_digit())
    };
    match metric {
        Metric::Drops => numbered("close_") || DROP_CAUSES.contains(&cause),
        Metric::ConnectErrors | Metric::GaveUp => numbered("http_") || CONNECT_ERRORS.contains(&cause),
        Metric::Stopped => known_cause(Metric::Drops, cause) || known_cause(Metric::ConnectErrors, cause),
        _ => false,
    }
}
