//! `[thresholds]`: a metric name and its expressions, each parsed once into a `Threshold`
//! the metrics can be compared with, optionally aborting the run when crossed.

use std::time::Duration;

use super::validator::Validator;
use crate::scenario::raw::{RawScenario, RawThreshold};
use crate::scenario::threshold::{Metric, Threshold};
use crate::units::duration;

impl Validator<'_> {
    pub(super) fn thresholds(&mut self, raw: &RawScenario) -> Vec<Threshold> {
        let mut out = Vec::new();
        for (name, exprs) in &raw.thresholds {
            let Some(metric) = Metric::from_name(name) else {
                self.error(
                    exprs.span(),
                    format!(
                        "thresholds: unknown metric {name:?}: expected one of {}",
                        Metric::names()
                    ),
                );
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
                        out.push(t);
                    }
                    Err(msg) => self.error(e.span(), format!("thresholds.{name}: {msg}")),
                }
            }
        }
        out
    }
}
