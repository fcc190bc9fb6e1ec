//! Scenario files: TOML read into raw types (`raw`), checked once by `validate` into a `Plan`
//! (`plan`) that cannot be invalid. Every rejection is a `ScenarioError` naming file, line,
//! column and the expected form.

pub mod duration;
pub mod error;
pub mod plan;
pub mod pointer;
pub mod raw;
pub mod template;
pub mod threshold;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

pub use error::{ScenarioError, ScenarioErrors};
pub use plan::{Connect, Correlation, Expect, Load, Phase, Plan, Step, Target};

use pointer::JsonPointer;
use raw::{RawScenario, Text};
use template::Template;
use threshold::{Metric, Threshold};

use crate::target::Behaviour;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CORRELATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-connection read buffer: small, because idle connections are what a swarm is made of.
pub const DEFAULT_READ_BUFFER: usize = 4096;
pub const MAX_CLIENTS: u64 = 10_000_000;

/// Values given on the command line that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub duration: Option<Duration>,
}

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ScenarioErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ScenarioErrors(vec![ScenarioError::whole_file(
            path,
            format!("cannot read the scenario file: {e}"),
        )])
    })?;
    parse(path, &source, overrides, &|name| std::env::var(name).ok())
}

/// Parses and validates scenario text; `env` resolves `${env:NAME}`.
pub fn parse(
    path: &Path,
    source: &str,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ScenarioErrors> {
    let raw: RawScenario = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        ScenarioErrors(vec![ScenarioError::at(path, source, span, message)])
    })?;
    Validator {
        path,
        source,
        env,
        errors: Vec::new(),
    }
    .validate(raw, overrides)
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ScenarioError>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(ScenarioError::at(self.path, self.source, span, message));
    }

    fn duration(&mut self, text: &Text, what: &str) -> Option<Duration> {
        match duration::parse(text.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(text.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn positive_duration(&mut self, text: &Text, what: &str) -> Option<Duration> {
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

    fn template(&mut self, text: &Text, what: &str) -> Option<Template> {
        match Template::compile(text.get_ref(), self.env) {
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

    fn validate(mut self, raw: RawScenario, overrides: &Overrides) -> Result<Plan, ScenarioErrors> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            self.error(
                raw.name.span(),
                "name is empty: expected a short name such as \"chat-echo\"",
            );
        }

        let target = self.target(&raw, overrides);
        let connect = self.connect(&raw.connect);
        let correlation = raw.correlation.as_ref().and_then(|c| {
            let c = c.get_ref();
            let request_id = match JsonPointer::parse(c.request_id.get_ref()) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.error(c.request_id.span(), format!("correlation.request_id: {e}"));
                    None
                }
            };
            let timeout = match &c.timeout {
                Some(t) => self.positive_duration(t, "correlation.timeout")?,
                None => DEFAULT_CORRELATION_TIMEOUT,
            };
            Some(Correlation {
                request_id: request_id?,
                timeout,
            })
        });

        let load = self.load(&raw);
        let duration = match (overrides.duration, &raw.duration) {
            (Some(d), _) => Some(d),
            (None, Some(text)) => self.positive_duration(text, "duration"),
            // Without a valid load there is nothing to measure the length of (already reported).
            (None, None) if load.is_none() => None,
            (None, None) => load.as_ref().map(Load::length).filter(|d| !d.is_zero()).or_else(|| {
                self.error(
                    raw.name.span(),
                    "no duration: expected `duration = \"60s\"` or phases whose ramp and hold add up to more than zero",
                );
                None
            }),
        };
        let steps = self.steps(&raw, raw.correlation.is_some());
        let thresholds = self.thresholds(&raw);

        if !self.errors.is_empty() {
            return Err(ScenarioErrors(self.errors));
        }
        // Every piece is Some when no error was recorded.
        Ok(Plan {
            name,
            file: self.path.to_path_buf(),
            target: target.expect("validated"),
            duration: duration.expect("validated"),
            seed: raw.seed.unwrap_or(1),
            connect: connect.expect("validated"),
            correlation,
            load: load.expect("validated"),
            steps: steps.expect("validated"),
            thresholds,
        })
    }

    fn target(&mut self, raw: &RawScenario, overrides: &Overrides) -> Option<Target> {
        let (text, span) = match &overrides.target {
            Some(url) => (url.as_str(), None),
            None => (raw.target.get_ref().as_str(), Some(raw.target.span())),
        };
        if text == "embedded" {
            return Some(Target::Embedded(self.embedded(raw)?));
        }
        if overrides.target.is_none() && raw.embedded.is_some() {
            self.error(
                raw.target.span(),
                "an [embedded] table only applies to the built-in target: expected target = \"embedded\" or no [embedded] table",
            );
        }
        match check_url(text) {
            Ok(()) => Some(Target::Url(text.to_string())),
            Err(e) => {
                match span {
                    Some(span) => self.error(span, format!("target: {e}")),
                    None => self.errors.push(ScenarioError {
                        file: "--target".into(),
                        line: 1,
                        column: 1,
                        message: e,
                        excerpt: Some(text.to_string()),
                    }),
                }
                None
            }
        }
    }

    fn embedded(&mut self, raw: &RawScenario) -> Option<Behaviour> {
        let mut b = Behaviour {
            seed: raw.seed.unwrap_or(1),
            ..Behaviour::default()
        };
        let Some(e) = &raw.embedded else { return Some(b) };
        let mut ok = true;
        if let Some(t) = &e.latency {
            b.latency = self.duration(t, "embedded.latency").unwrap_or_else(|| {
                ok = false;
                Duration::ZERO
            });
        }
        if let Some(t) = &e.jitter {
            b.jitter = self.duration(t, "embedded.jitter").unwrap_or_else(|| {
                ok = false;
                Duration::ZERO
            });
        }
        if let Some(n) = &e.no_reply_every {
            if *n.get_ref() == 0 {
                self.error(
                    n.span(),
                    "embedded.no_reply_every: expected 1 or more (1 withholds every reply)",
                );
                ok = false;
            }
            b.no_reply_every = Some(*n.get_ref());
        }
        if let Some(f) = &e.no_reply_fraction {
            if !(0.0..=1.0).contains(f.get_ref()) {
                self.error(
                    f.span(),
                    "embedded.no_reply_fraction: expected a fraction between 0.0 and 1.0",
                );
                ok = false;
            }
            b.no_reply_fraction = *f.get_ref();
        }
        ok.then_some(b)
    }

    fn connect(&mut self, raw: &raw::RawConnect) -> Option<Connect> {
        let mut ok = true;
        let timeout = match &raw.timeout {
            Some(t) => self.positive_duration(t, "connect.timeout").unwrap_or_else(|| {
                ok = false;
                DEFAULT_CONNECT_TIMEOUT
            }),
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let mut headers = Vec::new();
        for (name, value) in &raw.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.error(
                    value.span(),
                    format!("connect.headers: {name:?} is not a valid HTTP header name: expected a token such as \"Authorization\""),
                );
                ok = false;
                continue;
            }
            match self.template(value, &format!("connect.headers.{name}")) {
                Some(t) => headers.push((name.clone(), t)),
                None => ok = false,
            }
        }
        let mut subprotocols = Vec::new();
        for p in &raw.subprotocols {
            let text = p.get_ref();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                self.error(
                    p.span(),
                    "connect.subprotocols: expected a token such as \"json.v1\" (no spaces or commas)",
                );
                ok = false;
            }
            subprotocols.push(text.clone());
        }
        let read_buffer = match &raw.read_buffer {
            Some(n) if !(256..=16 << 20).contains(n.get_ref()) => {
                self.error(
                    n.span(),
                    "connect.read_buffer: expected a size in bytes between 256 and 16777216",
                );
                ok = false;
                DEFAULT_READ_BUFFER
            }
            Some(n) => *n.get_ref() as usize,
            None => DEFAULT_READ_BUFFER,
        };
        ok.then_some(Connect {
            headers,
            subprotocols,
            timeout,
            read_buffer,
        })
    }

    fn load(&mut self, raw: &RawScenario) -> Option<Load> {
        if raw.phases.is_empty() {
            self.error(
                raw.name.span(),
                "no load: expected at least one [[phases]] table with `clients = N`",
            );
            return None;
        }
        let mut phases = Vec::new();
        let mut ok = true;
        for p in &raw.phases {
            let span = p.span();
            let p = p.get_ref();
            let clients = *p.clients.get_ref();
            if clients > MAX_CLIENTS {
                self.error(
                    p.clients.span(),
                    format!("phases.clients: expected at most {MAX_CLIENTS} clients per run"),
                );
                ok = false;
            }
            let ramp = match &p.ramp {
                Some(t) => self.duration(t, "phases.ramp"),
                None => Some(Duration::ZERO),
            };
            let hold = match &p.hold {
                Some(t) => self.duration(t, "phases.hold"),
                None => Some(Duration::ZERO),
            };
            match (ramp, hold) {
                (Some(ramp), Some(hold)) => phases.push(Phase { clients, ramp, hold }),
                _ => ok = false,
            }
            let _ = span;
        }
        ok.then_some(Load { phases })
    }

    fn steps(&mut self, raw: &RawScenario, has_correlation: bool) -> Option<Vec<Step>> {
        let mut steps = Vec::new();
        let mut ok = true;
        let mut waits = false;
        for s in &raw.steps {
            let span = s.span();
            let s = s.get_ref();
            match (&s.send, &s.sleep) {
                (Some(send), None) => {
                    let template = self.template(send, "steps.send");
                    let expect = match &s.expect {
                        None => {
                            if s.wait.is_some() {
                                self.error(
                                    span.clone(),
                                    "steps.wait only applies to a correlated send: expected `expect = \"response\"` beside it",
                                );
                                ok = false;
                            }
                            None
                        }
                        Some(e) if e.get_ref() == "response" => {
                            if !has_correlation {
                                self.error(e.span(), "expect = \"response\" needs correlation: expected a [correlation] table with `request_id = \"/json/pointer\"`");
                                ok = false;
                            }
                            if template.as_ref().is_some_and(|t| !t.uses_id()) {
                                self.error(send.span(), "this send expects a correlated response but carries no id: expected {{id}} in the message so the reply can be matched");
                                ok = false;
                            }
                            let wait = s.wait.unwrap_or(true);
                            waits |= wait;
                            Some(Expect { wait })
                        }
                        Some(e) => {
                            self.error(
                                e.span(),
                                format!(
                                    "steps.expect: unknown expectation {:?}: expected \"response\"",
                                    e.get_ref()
                                ),
                            );
                            ok = false;
                            None
                        }
                    };
                    match template {
                        Some(template) => steps.push(Step::Send { template, expect }),
                        None => ok = false,
                    }
                }
                (None, Some(sleep)) => {
                    if s.expect.is_some() || s.wait.is_some() {
                        self.error(
                            span.clone(),
                            "a sleep step takes no `expect` or `wait`: expected only `sleep = \"100ms\"`",
                        );
                        ok = false;
                    }
                    match self.duration(sleep, "steps.sleep") {
                        Some(d) => {
                            waits |= !d.is_zero();
                            steps.push(Step::Sleep(d));
                        }
                        None => ok = false,
                    }
                }
                _ => {
                    self.error(
                        span,
                        "a [[steps]] entry: expected exactly one of `send = \"...\"` or `sleep = \"100ms\"`",
                    );
                    ok = false;
                }
            }
        }
        let sends = steps.iter().any(|s| matches!(s, Step::Send { .. }));
        if ok && sends && !waits {
            let span = raw.steps[0].span();
            self.error(span, "the step loop never waits and would flood the target: expected a `sleep` step or an `expect = \"response\"` that waits");
            ok = false;
        }
        ok.then_some(steps)
    }

    fn thresholds(&mut self, raw: &RawScenario) -> Vec<Threshold> {
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
            for e in exprs.get_ref() {
                match Threshold::parse(metric, e.get_ref()) {
                    Ok(t) => out.push(t),
                    Err(msg) => self.error(e.span(), format!("thresholds.{name}: {msg}")),
                }
            }
        }
        out
    }
}

/// Checks a target URL: ws:// with a host (wss:// arrives with TLS support).
pub fn check_url(text: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected \"embedded\" or a URL such as \"ws://127.0.0.1:9001/ws\"";
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("{text:?} is not a URL: {EXPECTED}"))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(format!(
                "{text:?}: wss:// (TLS) is not supported by this build yet: {EXPECTED}"
            ));
        }
        _ => return Err(format!("{text:?} does not start with ws://: {EXPECTED}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host: {EXPECTED}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
