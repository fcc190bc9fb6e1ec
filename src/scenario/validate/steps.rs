//! `[[setup]]` and `[[steps]]`: each entry is exactly one kind of step (send, send_binary,
//! sleep, wait_for, close) with the keys that kind takes, and a loop that sends must wait
//! somewhere.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::validator::Validator;
use crate::scenario::check::{self, Check, Test};
use crate::scenario::files::read_bounded;
use crate::scenario::plan::MAX_BINARY;
use crate::scenario::plan::{Expect, Step, Timer};
use crate::scenario::raw::{RawCheck, RawExpect, RawScenario, RawStep, Text};
use crate::units::close_code;

/// The most step names (each is a table row and a histogram in every report).
const MAX_STEP_NAMES: usize = 255;

/// The most `[[every]]` timers (each connection keeps the due time of each).
const MAX_TIMERS: usize = 16;

const KINDS: &str = "expected exactly one of `send = \"...\"`, `send_binary = \"hex:...\"`, `sleep = \"100ms\"`, `wait_for = { ... }`, `close = 1000` or `http = { url = \"...\" }`";
const BINARY_FORMS: &str =
    "expected \"hex:00ff…\", \"base64:AAE=…\" or \"file:frame.bin\" (relative to the scenario)";

/// What validating one step gives: the step, and whether it makes the loop wait.
type Checked = Option<(Step, bool)>;

impl Validator<'_> {
    pub(super) fn steps(
        &mut self,
        raw: &RawScenario,
        has_correlation: bool,
        paced: bool,
    ) -> Option<Vec<Step>> {
        // A step is numbered in 16 bits on each request in flight.
        let count = raw.setup.len()
            + raw.steps.len()
            + raw.every.len()
            + raw
                .flows
                .iter()
                .map(|f| f.get_ref().setup.len() + f.get_ref().steps.len())
                .sum::<usize>();
        if count > usize::from(u16::MAX) {
            let span = raw.steps.first().map_or(raw.name.span(), |s| s.span());
            self.error(
                span,
                format!(
                    "{count} steps: expected at most {} in [[setup]], [[steps]], [[every]] and [[flows]] together",
                    u16::MAX
                ),
            );
            return None;
        }
        self.loop_steps(&raw.steps, has_correlation, paced, "steps", raw.name.span())
    }

    /// A step loop (top-level or a flow's), which must wait somewhere unless paced.
    pub(super) fn loop_steps(
        &mut self,
        list: &[Spanned<RawStep>],
        has_correlation: bool,
        paced: bool,
        table: &str,
        span: Range<usize>,
    ) -> Option<Vec<Step>> {
        let (steps, waits) = self.step_list(list, has_correlation, table)?;
        if steps.iter().any(Step::sends) && !waits && !paced {
            self.error(
                list.first().map_or(span, |s| s.span()),
                format!(
                    "the {} loop never waits and would flood the target: expected a `sleep` step or an `expect = \"response\"` that waits",
                    if table == "steps" { "step" } else { "flow's step" }
                ),
            );
            return None;
        }
        Some(steps)
    }

    /// Validates a list of steps; also says whether any step waits.
    pub(super) fn step_list(
        &mut self,
        list: &[Spanned<RawStep>],
        has_correlation: bool,
        table: &str,
    ) -> Option<(Vec<Step>, bool)> {
        let mut steps = Vec::new();
        let mut ok = true;
        let mut waits = false;
        for s in list {
            match self.step(s.get_ref(), s.span(), has_correlation, table) {
                Some((step, wait)) => {
                    waits |= wait;
                    steps.push(step);
                }
                None => ok = false,
            }
        }
        ok.then_some((steps, waits))
    }

    fn step(&mut self, s: &RawStep, span: Range<usize>, has_correlation: bool, table: &str) -> Checked {
        let kinds = [
            s.send.is_some(),
            s.send_binary.is_some(),
            s.sleep.is_some(),
            s.close.is_some(),
            s.wait_for.is_some(),
            s.http.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.error(span, format!("a [[{table}]] entry: {KINDS}"));
            return None;
        }
        let extra = |key: &str, present: bool| present.then(|| format!("`{key}`"));
        let stray: Vec<String> = [
            extra("expect", s.expect.is_some() && s.send.is_none()),
            extra("wait", s.wait.is_some() && s.send.is_none()),
            extra("checks", s.checks.is_some() && s.send.is_none()),
            extra("last", s.last.is_some() && s.send.is_none()),
            extra("timeout", s.timeout.is_some() && s.wait_for.is_none()),
            extra("first", s.first.is_some() && s.wait_for.is_none()),
            extra(
                "capture",
                s.capture.is_some() && s.expect.is_none() && s.wait_for.is_none() && s.http.is_none(),
            ),
            extra("name", s.name.is_some() && s.expect.is_none() && s.http.is_none()),
            extra("http", s.http.is_some() && table == "every"),
            extra("every", s.every.is_some() && table != "every"),
            extra("wait", s.wait.is_some() && table == "every"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !stray.is_empty() {
            self.error(
                span,
                format!("{table}: {} does not apply to this step: expected `expect`, `wait`, `checks` and `last` only beside `send`, `timeout` and `first` only beside `wait_for`, and `capture` beside `send` with `expect` or `wait_for` (it takes values from what they receive), and `name` beside `send` with `expect` (it names requests)", stray.join(", ")),
            );
            return None;
        }
        if table == "every" && (s.send.is_none() || s.every.is_none()) {
            self.error(
                span,
                "an [[every]] entry: expected `every = \"30s\"` and `send = \"...\"` (with `expect`, `checks`, `capture` or `name` as a step's)",
            );
            return None;
        }
        if let Some(http) = &s.http {
            return self.http_step(s, http, span, table);
        }
        if let Some(data) = &s.send_binary {
            return self
                .binary(data, &format!("{table}.send_binary"))
                .map(|bytes| (Step::SendBinary(bytes), false));
        }
        if let Some(wanted) = &s.wait_for {
            let timeout = match &s.timeout {
                Some(t) => self.positive_duration(t, &format!("{table}.timeout")),
                None => Some(self.wait_timeout),
            };
            let check = self.check(wanted, &format!("{table}.wait_for"));
            let captures = self.captures(s.capture.as_ref(), table);
            return Some((
                Step::WaitFor {
                    check: check?,
                    timeout: timeout?,
                    captures: captures?,
                    first: s.first.unwrap_or(false),
                },
                true,
            ));
        }
        if let Some(send) = &s.send {
            return self.send_step(s, send, span, has_correlation, table);
        }
        if let Some(sleep) = &s.sleep {
            return self.sleep_step(sleep, table);
        }
        let code = s.close.as_ref().expect("exactly one kind, checked above");
        self.close_step(code, table)
    }

    fn send_step(
        &mut self,
        s: &RawStep,
        send: &Text,
        span: Range<usize>,
        has_correlation: bool,
        table: &str,
    ) -> Checked {
        let template = self.template(send, &format!("{table}.send"));
        let mut ok = true;
        let mut checks = Vec::new();
        for c in s.checks.iter().flatten() {
            match self.check(c, &format!("{table}.checks")) {
                Some(c) => checks.push(c),
                None => ok = false,
            }
        }
        let last = s.last.as_ref().map(|l| self.check(l, &format!("{table}.last")));
        let Some(e) = &s.expect else {
            if s.wait.is_some() || s.checks.is_some() || s.last.is_some() {
                self.error(
                    span,
                    "steps.wait, checks and last apply to a correlated send: expected `expect = \"response\"` (or \"stream\") beside them",
                );
                return None;
            }
            return Some((
                Step::Send {
                    template: template?,
                    expect: None,
                },
                false,
            ));
        };
        let name = match e.get_ref() {
            RawExpect::Response => "response",
            RawExpect::Stream => "stream",
        };
        if !has_correlation {
            self.error(e.span(), format!("expect = {name:?} needs correlation: expected a [correlation] table with `request_id = \"/json/pointer\"`"));
            ok = false;
        }
        if template.as_ref().is_some_and(|t| !t.uses_id()) {
            self.error(send.span(), "this send expects a correlated response but carries no id: expected {{id}} (or the number alone, {{seq}}) in the message so the reply can be matched");
            ok = false;
        }
        match (e.get_ref(), &last) {
            (RawExpect::Stream, None) => {
                self.error(e.span(), format!("expect = \"stream\" needs the mark of the last reply: expected `last = {{ pointer = \"/final\", equals = true }}` beside it; {}", check::EXPECTED));
                ok = false;
            }
            (RawExpect::Response, Some(_)) => {
                self.error(
                    e.span(),
                    "`last` marks the end of a stream: expected `expect = \"stream\"`",
                );
                ok = false;
            }
            _ => {}
        }
        let wait = s.wait.unwrap_or(true);
        let captures = self.captures(s.capture.as_ref(), table);
        // In a flow, every request step counts for it: "flow" (unnamed) or "flow/name".
        let name = match (&s.name, self.flow.clone()) {
            (None, None) => Some(0),
            (Some(text), None) => self
                .step_name(text, table)
                .and_then(|n| self.name_id(n, text.span(), table)),
            (None, Some(flow)) => self.name_id(flow, span.clone(), table),
            (Some(text), Some(flow)) => self
                .step_name(text, table)
                .and_then(|n| self.name_id(format!("{flow}/{n}"), text.span(), table)),
        };
        let expect = Expect {
            wait,
            checks,
            last: last.flatten(),
            captures: captures?,
            name: name?,
        };
        let template = template?;
        ok.then_some((
            Step::Send {
                template,
                expect: Some(expect),
            },
            wait,
        ))
    }

    /// `[[every]]`: a send on a timer, every 10 ms to a day.
    pub(super) fn timers(&mut self, raw: &RawScenario, has_correlation: bool) -> Option<Vec<Timer>> {
        if raw.every.len() > MAX_TIMERS {
            self.error(
                raw.every[MAX_TIMERS].span(),
                format!(
                    "{} [[every]] timers: expected at most {MAX_TIMERS}",
                    raw.every.len()
                ),
            );
            return None;
        }
        let mut timers = Vec::new();
        let mut ok = true;
        for e in &raw.every {
            let step = self.step(e.get_ref(), e.span(), has_correlation, "every");
            let every = e.get_ref().every.as_ref().and_then(|t| {
                let d = self.duration(t, "every.every")?;
                if (Duration::from_millis(10)..=Duration::from_secs(86_400)).contains(&d) {
                    Some(d)
                } else {
                    self.error(t.span(), "every.every: expected 10ms to 24h");
                    None
                }
            });
            match (step, every) {
                (Some((step, _)), Some(every)) => timers.push(Timer { every, step }),
                _ => ok = false,
            }
        }
        ok.then_some(timers)
    }

    /// A step's name: its number (1 + its place among the names; a name given again is the
    /// same name, its requests counted together).
    pub(super) fn step_name(&mut self, text: &Text, table: &str) -> Option<String> {
        let name = text.get_ref();
        if !is_label(name) {
            self.error(
                text.span(),
                format!("{table}.name: {name:?}: expected 1 to 64 letters, digits, `_`, `-` or `.` (it is a label in reports and thresholds)"),
            );
            return None;
        }
        Some(name.clone())
    }

    /// The number of step name `name` (a new one is added).
    pub(super) fn name_id(&mut self, name: String, span: Range<usize>, table: &str) -> Option<u16> {
        if let Some(i) = self.step_names.iter().position(|n| *n == name) {
            return Some(i as u16 + 1);
        }
        if self.step_names.len() >= MAX_STEP_NAMES {
            self.error(
                span,
                format!("{table}.name: expected at most {MAX_STEP_NAMES} step names"),
            );
            return None;
        }
        self.step_names.push(name);
        Some(self.step_names.len() as u16)
    }

    /// "100ms", or "100ms..300ms": a think time drawn at random from that range each time.
    fn sleep_step(&mut self, sleep: &Text, table: &str) -> Checked {
        let what = format!("{table}.sleep");
        let Some((lo, hi)) = sleep.get_ref().split_once("..") else {
            let d = self.duration(sleep, &what)?;
            return Some((Step::Sleep(d), !d.is_zero()));
        };
        let part = |t: &str| Spanned::new(sleep.span(), t.trim().to_string());
        let (lo, hi) = (self.duration(&part(lo), &what), self.duration(&part(hi), &what));
        let (lo, hi) = (lo?, hi?);
        if lo > hi {
            self.error(
                sleep.span(),
                format!("{what}: the range ends before it begins: expected such as \"100ms..300ms\""),
            );
            return None;
        }
        Some((Step::SleepBetween(lo, hi), !hi.is_zero()))
    }

    fn close_step(&mut self, code: &Spanned<u64>, table: &str) -> Checked {
        let mut ok = true;
        if table != "steps" {
            self.error(
                code.span(),
                format!("{table}.close: a connection closes from the [[steps]] loop, not from {table}"),
            );
            ok = false;
        }
        match u16::try_from(*code.get_ref()) {
            // Each cycle opens a new connection: pacing enough.
            Ok(c) if close_code::sendable(u64::from(c)) => ok.then_some((Step::Close(c), true)),
            _ => {
                self.error(code.span(), format!("{table}.close: {}", close_code::EXPECTED));
                None
            }
        }
    }

    /// A `send_binary` frame: "hex:…", "base64:…" or "file:PATH" (relative to the scenario).
    fn binary(&mut self, text: &Text, what: &str) -> Option<bytes::Bytes> {
        let data = text.get_ref();
        let bytes = if let Some(hex) = data.strip_prefix("hex:") {
            // Each digit's value (None at the first character that is not one), then pairs.
            let digits: Option<Vec<u8>> = hex
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| c.to_digit(16).map(|d| d as u8))
                .collect();
            let decoded = digits.filter(|d| d.len().is_multiple_of(2)).map(|d| {
                d.chunks(2)
                    .map(|pair| pair[0] << 4 | pair[1])
                    .collect::<Vec<u8>>()
            });
            decoded
                .ok_or_else(|| format!("{what}: not an even number of hex digits (0-9, a-f); {BINARY_FORMS}"))
        } else if let Some(b64) = data.strip_prefix("base64:") {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("{what}: not base64 ({e}); {BINARY_FORMS}"))
        } else if let Some(file) = data.strip_prefix("file:") {
            let path = self.path.parent().unwrap_or(Path::new(".")).join(file);
            read_bounded(&path, MAX_BINARY).map_err(|e| format!("{what}: {e}"))
        } else {
            Err(format!("{what}: unknown form {data:?}; {BINARY_FORMS}"))
        };
        match bytes {
            Ok(b) if b.len() as u64 > MAX_BINARY => {
                self.error(
                    text.span(),
                    format!(
                        "{what}: {} bytes: expected at most {MAX_BINARY} (16 MiB)",
                        b.len()
                    ),
                );
                None
            }
            Ok(b) => Some(b.into()),
            Err(e) => {
                self.error(text.span(), e);
                None
            }
        }
    }

    /// A `checks` entry, `last` or `wait_for`.
    pub(super) fn check(&mut self, raw: &Spanned<RawCheck>, what: &str) -> Option<Check> {
        self.check_at(raw.span(), raw.get_ref(), what)
    }

    pub(super) fn check_at(
        &mut self,
        span: std::ops::Range<usize>,
        c: &RawCheck,
        what: &str,
    ) -> Option<Check> {
        let test = match (&c.equals, c.exists, &c.matches, &c.not_matches) {
            (Some(v), None, None, None) if captured_name(v.get_ref()).is_some() => {
                let name = captured_name(v.get_ref()).unwrap_or_default();
                if !what.contains(".match") && !what.ends_with(".wait_for") {
                    self.error(v.span(), format!("{what}.equals: a captured value is compared only in a rule's `match` or a `wait_for`: expected a value here"));
                    return None;
                }
                match self.vars.iter().position(|var| var.name == name) {
                    Some(i) => Test::EqualsVar(i as u16, name.to_string()),
                    None => {
                        self.error(
                            v.span(),
                            format!("{what}.equals: {{{{var.{name}}}}} is captured by no step or rule"),
                        );
                        return None;
                    }
                }
            }
            (Some(v), None, None, None) => match serde_json::to_value(v.get_ref()) {
                Ok(v) => Test::Equals(v),
                Err(e) => {
                    self.error(v.span(), format!("{what}.equals: {e}"));
                    return None;
                }
            },
            (None, Some(b), None, None) => Test::Exists(b),
            (None, None, Some(re), None) => {
                Test::Matches(self.parsed(re, &format!("{what}.matches"), |t| {
                    regex::Regex::new(t).map_err(|e| e.to_string())
                })?)
            }
            (None, None, None, Some(re)) => {
                Test::NotMatches(self.parsed(re, &format!("{what}.not_matches"), |t| {
                    regex::Regex::new(t).map_err(|e| e.to_string())
                })?)
            }
            _ => {
                self.error(
                    span,
                    format!(
                        "{what}: expected exactly one of `equals`, `exists`, `matches` or `not_matches`; {}",
                        check::EXPECTED
                    ),
                );
                return None;
            }
        };
        let pointer = c.pointer.as_ref();
        match Check::new(pointer.map(|p| p.get_ref().as_str()), test) {
            Ok(check) => Some(check),
            Err(e) => {
                self.error(pointer.map_or(span, |p| p.span()), format!("{what}: {e}"));
                None
            }
        }
    }
}

/// `NAME` when `value` is the string "{{var.NAME}}".
fn captured_name(value: &toml::Value) -> Option<&str> {
    let text = value.as_str()?.trim();
    let name = text
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim()
        .strip_prefix("var.")?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// A name for reports and thresholds: 1 to 64 letters, digits, `_`, `-` or `.`.
pub(super) fn is_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
