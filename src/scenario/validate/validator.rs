//! The validator's state and the helpers every table's checks use: errors located in the
//! file, durations, templates and parsed values reported at their span.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use crate::scenario::error::ScenarioError;
use crate::scenario::plan::Var;
use crate::scenario::raw::Text;
use crate::scenario::template::{Names, Template};
use crate::units::duration;

pub(super) struct Validator<'a> {
    pub(super) path: &'a Path,
    pub(super) source: &'a str,
    pub(super) names: &'a dyn Names,
    pub(super) errors: Vec<ScenarioError>,
    /// The target URL's template when it differs per client (for `connect`).
    pub(super) url: Option<Template>,
    /// A `wait_for` step's timeout when it names none: the correlation timeout.
    pub(super) wait_timeout: Duration,
    /// The variables the scenario's captures declare.
    pub(super) vars: Vec<Var>,
    /// The names of named steps, in order of first use.
    pub(super) step_names: Vec<String>,
    /// The flow whose steps are being checked (their requests are named after it).
    pub(super) flow: Option<String>,
}

impl Validator<'_> {
    pub(super) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(ScenarioError::at(self.path, self.source, span, message));
    }

    pub(super) fn duration(&mut self, text: &Text, what: &str) -> Option<Duration> {
        match duration::parse(text.get_ref()) {
            Ok(d) if d > duration::MAX => {
                self.error(
                    text.span(),
                    format!(
                        "{what}: {:?} is too long: expected at most 10 years",
                        text.get_ref()
                    ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(text.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    pub(super) fn positive_duration(&mut self, text: &Text, what: &str) -> Option<Duration> {
        let d = self.duration(text, what)?;
        if d.is_zero() {
            self.error(
                text.span(),
                format!("{what} must be longer than zero: {}", duration::EXPECTED),
            );
            return None;
        }
        Some(d)
    }

    /// An error in a command-line flag (which has no line in the file).
    pub(super) fn flag_error(&mut self, flag: &str, message: String, text: &str) {
        self.errors.push(ScenarioError {
            file: flag.into(),
            line: 1,
            column: 1,
            message,
            excerpt: Some(crate::redact::text(text).into_owned()),
        });
    }

    /// An optional duration: `default` when absent, None (reported) when invalid.
    pub(super) fn duration_or(
        &mut self,
        text: Option<&Text>,
        what: &str,
        default: Duration,
    ) -> Option<Duration> {
        text.map_or(Some(default), |t| self.duration(t, what))
    }

    /// An optional positive duration: `default` when absent, None (reported) when invalid.
    pub(super) fn positive_or(
        &mut self,
        text: Option<&Text>,
        what: &str,
        default: Duration,
    ) -> Option<Duration> {
        text.map_or(Some(default), |t| self.positive_duration(t, what))
    }

    pub(super) fn template(&mut self, text: &Text, what: &str) -> Option<Template> {
        match Template::compile(text.get_ref(), self.names) {
            Ok(t) => Some(t),
            Err(e) => {
                // Point into the string when it is written plainly, else at its start.
                let span = text.span();
                let quoted = &self.source[span.clone()];
                let at = if quoted.len() > 1 && quoted[1..].starts_with(text.get_ref().as_str()) {
                    span.start + 1 + e.offset
                } else {
                    span.start
                };
                self.error(at..span.end, format!("{what}: {}", e.message));
                None
            }
        }
    }

    /// `text` parsed by `parse`, or its error reported at the value.
    pub(super) fn parsed<T>(
        &mut self,
        text: &Text,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(text.get_ref())
            .map_err(|e| self.error(text.span(), format!("{what}: {e}")))
            .ok()
    }
}
