//! Scenario files: TOML read into raw types (`raw`), checked once by `validate` into a `Plan`
//! (`plan`) that cannot be invalid. Every rejection is a `ScenarioError` naming file, line,
//! column and the expected form.

mod chaos;
pub mod check;
pub mod duration;
pub mod error;
pub mod feed;
pub mod plan;
pub mod pointer;
pub mod raw;
pub mod segment;
pub mod set;
pub mod sources;
pub mod template;
pub mod threshold;
pub mod tls;
pub mod units;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

pub use error::{ScenarioError, ScenarioErrors};
pub use plan::{
    Amount, Chaos, ChaosAction, ChaosHow, ChaosWhen, Command, Connect, Correlation, Exec, Expect, Heartbeat,
    Jitter, Load, Phase, Plan, Pushes, Reconnect, Step, Strategy, Target,
};

use check::{Check, IdFinder, Test};
use pointer::JsonPointer;
use raw::{RawScenario, Text};
use template::{Names, Template};
use threshold::{Metric, Threshold};

use crate::metrics::requests::RequestFilter;
use crate::target::Behaviour;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CORRELATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests of one connection waiting for their reply at once, unless the scenario says
/// otherwise: far more than a request/response client keeps, and a bound (about 100 KiB of
/// pending table a connection) when a server stops answering a loop that does not wait.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;
pub const MAX_IN_FLIGHT: u32 = 1_000_000;
/// How long a `wait_for` step waits without a timeout of its own or a correlation timeout.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message and frame a server may send, unless the scenario says otherwise: far
/// below tungstenite's 64 MiB, so that a hostile server cannot make a swarm buffer gigabytes.
pub const DEFAULT_MAX_MESSAGE: usize = 4 << 20;
/// The largest binary frame a `send_binary` step may send.
pub const MAX_BINARY: u64 = 16 << 20;
/// Per-connection read buffer: small, because idle connections are what a swarm is made of.
pub const DEFAULT_READ_BUFFER: usize = 2048;
pub const MAX_CLIENTS: u64 = 10_000_000;

/// Values given on the command line that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub duration: Option<Duration>,
    /// `--requests`: which request outcomes requests.csv gets.
    pub requests: Option<RequestFilter>,
    /// `--segment i/n`: run this shard's share of the scenario.
    pub segment: Option<segment::Segment>,
    /// `--start-at`: when the timeline begins (shards of one run share it).
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `--insecure`: do not verify the server's TLS certificate.
    pub insecure: bool,
    /// `--set PATH=VALUE`: values changed in the file's text before it is checked.
    pub sets: Vec<set::Set>,
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
    let edited;
    let source = if overrides.sets.is_empty() {
        source
    } else {
        edited = set::apply(source, &overrides.sets)
            .map_err(|e| ScenarioErrors(vec![ScenarioError::whole_file(path, e)]))?;
        edited.as_str()
    };
    let raw: RawScenario = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        ScenarioErrors(vec![ScenarioError::at(path, source, span, message)])
    })?;
    let feed = raw.feed.as_ref().map(|f| load_feed(path, source, f));
    let names = ScenarioNames {
        env,
        secrets: raw.secrets.clone(),
        feed: feed.as_ref().and_then(|f| f.as_ref().ok()),
        used: std::cell::RefCell::new(Vec::new()),
    };
    let unique_span = raw
        .feed
        .as_ref()
        .map(|f| f.get_ref().mode.as_ref().map_or(f.span(), |m| m.span()));
    let file_span = raw.feed.as_ref().map(|f| f.get_ref().file.span());
    let validated = Validator {
        path,
        source,
        names: &names,
        errors: Vec::new(),
        url: None,
        wait_timeout: DEFAULT_WAIT_TIMEOUT,
    }
    .validate(raw, overrides);
    let secrets = names.used.into_inner();
    let mut plan = match (validated, feed) {
        (Ok(plan), None) => plan,
        (Ok(mut plan), Some(Ok(feed))) => {
            let clients = plan.load.peak();
            if feed.mode == feed::Mode::Unique && clients > feed.rows.len() as u64 {
                let span = unique_span.expect("a feed table");
                return Err(ScenarioErrors(vec![ScenarioError::at(
                    path,
                    source,
                    span,
                    format!(
                        "feed: mode \"unique\" gives each client its own row, but {} has {} rows for {clients} clients: expected at least {clients} rows, or mode \"sequential\"",
                        feed.file.display(),
                        feed.rows.len()
                    ),
                )]));
            }
            // A header takes feed values: each must be one an HTTP header can carry.
            if plan.connect.headers.iter().any(|(_, t)| t.uses_feed()) {
                for (n, row) in feed.rows.iter().enumerate() {
                    for (column, value) in feed.columns.iter().zip(row.iter()) {
                        if http::HeaderValue::from_str(value).is_err() {
                            return Err(ScenarioErrors(vec![ScenarioError::at(
                                path,
                                source,
                                file_span.clone().expect("a feed table"),
                                format!(
                                    "feed.file: {}:{}: the {column} value cannot go in an HTTP header (a header uses the feed): expected no line breaks or control characters",
                                    feed.file.display(),
                                    n + 2
                                ),
                            )]));
                        }
                    }
                }
            }
            // The URL takes feed values: each client's must be a valid URL.
            if let Some(url) = plan.connect.url.as_ref().filter(|t| t.uses_feed()) {
                for (n, row) in feed.rows.iter().enumerate() {
                    if let Err(e) = check_url(&url.render_detached(0, 0, row, 0)) {
                        return Err(ScenarioErrors(vec![ScenarioError::at(
                            path,
                            source,
                            file_span.clone().expect("a feed table"),
                            format!(
                                "feed.file: {}:{}: this row makes the target URL invalid ({:?} {e}): expected values a URL can carry (percent-encode them in the file)",
                                feed.file.display(),
                                n + 2,
                                url.source()
                            ),
                        )]));
                    }
                }
            }
            plan.feed = Some(std::sync::Arc::new(feed));
            plan
        }
        (Ok(_), Some(Err(e))) => return Err(ScenarioErrors(vec![e])),
        (Err(mut errors), feed) => {
            if let Some(Err(e)) = feed {
                errors.0.insert(0, e);
            }
            return Err(errors);
        }
    };
    plan.secrets = secrets;
    plan.secrets.sort();
    plan.secrets.dedup();
    Ok(plan)
}

/// The names a scenario's templates may use: the environment, its `[secrets]` and its
/// `[feed]` columns. Every value taken from the first two is a secret, kept in `used`.
struct ScenarioNames<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    secrets: BTreeMap<String, String>,
    feed: Option<&'a feed::Feed>,
    used: std::cell::RefCell<Vec<String>>,
}

impl ScenarioNames<'_> {
    fn keep(&self, value: Option<String>) -> Option<String> {
        if let Some(v) = &value {
            self.used.borrow_mut().push(v.clone());
        }
        value
    }
}

impl Names for ScenarioNames<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.keep((self.env)(name))
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.keep(self.secrets.get(name).cloned())
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.feed.and_then(|f| f.column(name))
    }
}

/// A rate such as "5/s" or "300/m", per second.
fn per_second(text: &str) -> Option<f64> {
    text.trim().split_once('/').and_then(|(n, unit)| {
        let n: f64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n > 0.0)?;
        match unit.trim() {
            "s" => Some(n),
            "m" => Some(n / 60.0),
            _ => None,
        }
    })
}

/// Reads the `[feed]` file (relative to the scenario); an error points at its key.
fn load_feed(
    path: &Path,
    source: &str,
    raw: &toml::Spanned<raw::RawFeed>,
) -> Result<feed::Feed, ScenarioError> {
    let f = raw.get_ref();
    let mode = match &f.mode {
        None => feed::Mode::Sequential,
        Some(m) => feed::Mode::parse(m.get_ref()).ok_or_else(|| {
            ScenarioError::at(
                path,
                source,
                m.span(),
                format!(
                    "feed.mode: unknown {:?}: expected \"sequential\", \"random\" or \"unique\"",
                    m.get_ref()
                ),
            )
        })?,
    };
    let file = path.parent().unwrap_or(Path::new("")).join(f.file.get_ref());
    feed::Feed::load(&file, mode)
        .map_err(|e| ScenarioError::at(path, source, f.file.span(), format!("feed.file: {e}")))
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
    names: &'a dyn Names,
    errors: Vec<ScenarioError>,
    /// The target URL's template when it differs per client (for `connect`).
    url: Option<Template>,
    /// A `wait_for` step's timeout when it names none: the correlation timeout.
    wait_timeout: Duration,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(ScenarioError::at(self.path, self.source, span, message));
    }

    fn duration(&mut self, text: &Text, what: &str) -> Option<Duration> {
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

    fn validate(mut self, raw: RawScenario, overrides: &Overrides) -> Result<Plan, ScenarioErrors> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            self.error(
                raw.name.span(),
                "name is empty: expected a short name such as \"chat-echo\"",
            );
        }

        let target = self.target(&raw, overrides);
        let tls = self.tls(&raw, target.as_ref(), overrides);
        let connect = self.connect(&raw.connect);
        let correlation = raw.correlation.as_ref().and_then(|c| self.correlation(c));
        if let Some(c) = &correlation {
            self.wait_timeout = c.timeout;
        }

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
        // None: no pacing; Some(None): a mistake, already reported.
        let pacing = raw.pacing.as_ref().map(|p| self.pacing(p, &raw, load.as_ref()));
        let steps = self.steps(&raw, raw.correlation.is_some(), pacing.is_some());
        let setup = self
            .step_list(&raw.setup, raw.correlation.is_some(), "setup")
            .map(|(s, _)| s);
        let reconnect = self.reconnect(raw.reconnect.as_ref());
        let pushes = self.pushes(raw.pushes.as_ref());
        let chaos = self.chaos(&raw.chaos);
        let thresholds = self.thresholds(&raw);
        let requests = match (
            overrides.requests,
            raw.report.as_ref().and_then(|r| r.requests.as_ref()),
        ) {
            (Some(filter), _) => Some(filter),
            (None, None) => None,
            (None, Some(text)) => match RequestFilter::parse(text.get_ref()) {
                Ok(filter) => Some(filter),
                Err(e) => {
                    self.error(text.span(), format!("report.requests: {e}"));
                    None
                }
            },
        };

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
            pacing: pacing.flatten(),
            tls: tls.flatten(),
            secrets: Vec::new(),
            feed: None,
            setup: setup.expect("validated"),
            reconnect: reconnect.expect("validated"),
            pushes: pushes.expect("validated"),
            chaos: chaos.expect("validated"),
            thresholds,
            requests,
            segment: overrides.segment,
            start_at: overrides.start_at,
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
        // `${env:…}` and `${secret:…}` are resolved here; `{{feed.…}}` per client.
        let mut per_client = None;
        let resolved;
        let text = if text.contains("${") || text.contains("{{") {
            let template = match Template::compile(text, self.names) {
                Ok(t) => t,
                Err(e) => {
                    self.target_error(span, format!("target: {}", e.message), text);
                    return None;
                }
            };
            let authority_end = text.find("://").map_or(0, |i| i + 3);
            let authority_end = text[authority_end..]
                .find(['/', '?'])
                .map_or(text.len(), |i| authority_end + i);
            if !template.is_constant() {
                if template.uses_id() || text[..authority_end].contains("{{") {
                    self.target_error(span, "target: a URL takes per-client values ({{feed.COLUMN}}, {{client}}) only after the host and port, and no {{id}}: expected such as \"ws://host:9000/ws?user={{feed.user}}\"".to_string(), text);
                    return None;
                }
                per_client = Some(template.clone());
            }
            // The fixed parts (the authority the clients connect to): client 0, no feed row.
            resolved = template.render_detached(0, 0, &[], 0);
            resolved.as_str()
        } else {
            text
        };
        self.url = per_client;
        match check_url(text) {
            Ok(()) => Some(Target::Url(text.to_string())),
            Err(e) => {
                // Shown as written: the resolved text may hold an environment value or secret.
                let written = match overrides.target.as_ref() {
                    Some(t) => t.clone(),
                    None => raw.target.get_ref().clone(),
                };
                self.target_error(span, format!("target: {written:?} {e}"), &written);
                None
            }
        }
    }

    /// An error in the target: in the file, or in `--target` (which has no span).
    fn target_error(&mut self, span: Option<Range<usize>>, message: String, text: &str) {
        match span {
            Some(span) => self.error(span, message),
            None => self.errors.push(ScenarioError {
                file: "--target".into(),
                line: 1,
                column: 1,
                message,
                excerpt: Some(crate::redact::text(text).into_owned()),
            }),
        }
    }

    fn correlation(&mut self, c: &toml::Spanned<raw::RawCorrelation>) -> Option<Correlation> {
        let span = c.span();
        let c = c.get_ref();
        let request_id = match (&c.request_id, &c.request_id_regex) {
            (Some(p), None) => match JsonPointer::parse(p.get_ref()) {
                Ok(p) => Some(IdFinder::Pointer(p)),
                Err(e) => {
                    self.error(p.span(), format!("correlation.request_id: {e}"));
                    None
                }
            },
            (None, Some(re)) => match IdFinder::regex(re.get_ref()) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.error(re.span(), format!("correlation.request_id_regex: {e}"));
                    None
                }
            },
            _ => {
                self.error(span, "correlation: expected exactly one of `request_id = \"/json/pointer\"` (JSON replies) or `request_id_regex = \"id=(\\\\S+)\"` (other text)");
                None
            }
        };
        let timeout = match &c.timeout {
            Some(t) => self.positive_duration(t, "correlation.timeout")?,
            None => DEFAULT_CORRELATION_TIMEOUT,
        };
        let max_in_flight = match &c.max_in_flight {
            None => DEFAULT_MAX_IN_FLIGHT,
            Some(n) => {
                match u32::try_from(*n.get_ref()) {
                    Ok(n @ 1..=MAX_IN_FLIGHT) => n,
                    _ => {
                        self.error(
                        n.span(),
                        format!("correlation.max_in_flight: expected 1 to {MAX_IN_FLIGHT} requests per connection"),
                    );
                        return None;
                    }
                }
            }
        };
        Some(Correlation {
            request_id: request_id?,
            timeout,
            max_in_flight,
        })
    }

    /// A `send_binary` frame: "hex:…", "base64:…" or "file:PATH" (relative to the scenario).
    fn binary(&mut self, text: &Text, what: &str) -> Option<tokio_tungstenite::tungstenite::Bytes> {
        const FORMS: &str =
            "expected \"hex:00ff…\", \"base64:AAE=…\" or \"file:frame.bin\" (relative to the scenario)";
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
            decoded.ok_or_else(|| format!("{what}: not an even number of hex digits (0-9, a-f); {FORMS}"))
        } else if let Some(b64) = data.strip_prefix("base64:") {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("{what}: not base64 ({e}); {FORMS}"))
        } else if let Some(file) = data.strip_prefix("file:") {
            let path = self.path.parent().unwrap_or(Path::new(".")).join(file);
            read_bounded(&path, MAX_BINARY).map_err(|e| format!("{what}: {e}"))
        } else {
            Err(format!("{what}: unknown form {data:?}; {FORMS}"))
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
    fn check(&mut self, raw: &toml::Spanned<raw::RawCheck>, what: &str) -> Option<Check> {
        let span = raw.span();
        let c = raw.get_ref();
        let test = match (&c.equals, c.exists, &c.matches) {
            (Some(v), None, None) => match serde_json::to_value(v.get_ref()) {
                Ok(v) => Test::Equals(v),
                Err(e) => {
                    self.error(v.span(), format!("{what}.equals: {e}"));
                    return None;
                }
            },
            (None, Some(b), None) => Test::Exists(b),
            (None, None, Some(re)) => match regex::Regex::new(re.get_ref()) {
                Ok(re) => Test::Matches(re),
                Err(e) => {
                    self.error(re.span(), format!("{what}.matches: {e}"));
                    return None;
                }
            },
            _ => {
                self.error(
                    span,
                    format!(
                        "{what}: expected exactly one of `equals`, `exists` or `matches`; {}",
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
        let mut duration = |v: &mut Self, t: &Option<Text>, what: &str| match t {
            None => None,
            Some(t) => {
                let d = v.positive_duration(t, what);
                ok &= d.is_some();
                d
            }
        };
        b.close_every = duration(self, &e.close_every, "embedded.close_every");
        b.push_every = duration(self, &e.push_every, "embedded.push_every");
        b.ping_every = duration(self, &e.ping_every, "embedded.ping_every");
        if let Some(d) = duration(self, &e.refuse_for, "embedded.refuse_for") {
            b.refuse_for = d;
        }
        if let Some(d) = duration(self, &e.ping_timeout, "embedded.ping_timeout") {
            b.ping_timeout = d;
        }
        for t in e.close_at.iter().flatten() {
            match self.duration(t, "embedded.close_at") {
                Some(d) => b.close_at.push(d),
                None => ok = false,
            }
        }
        if let Some(code) = &e.close_code {
            if !sendable_close_code(*code.get_ref()) {
                self.error(code.span(), format!("embedded.close_code: {CLOSE_CODE_EXPECTED}"));
                ok = false;
            }
            b.close_code = *code.get_ref() as u16;
        }
        b.close_by_reset = e.close_by_reset.unwrap_or(false);
        if let Some(t) = &e.require_token {
            match self.template(t, "embedded.require_token") {
                Some(t) if t.is_constant() => {
                    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(0);
                    let mut token = String::new();
                    t.render(
                        &mut template::RenderCtx {
                            client: 0,
                            seq: 0,
                            rng: &mut rng,
                            row: &[],
                        },
                        &mut token,
                    );
                    b.require_token = Some(token);
                }
                Some(_) => {
                    self.error(t.span(), "embedded.require_token: expected a fixed token (environment variables allowed, no per-message variables)");
                    ok = false;
                }
                None => ok = false,
            }
        }
        b.push_skip = e.push_skip.clone().unwrap_or_default();
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
        let mut limit = |text: &Option<Text>, what: &str| match text {
            None => DEFAULT_MAX_MESSAGE,
            Some(t) => match units::size(t.get_ref()) {
                Ok(n) if (64..=1 << 30).contains(&n) => n as usize,
                Ok(_) => {
                    self.error(t.span(), format!("{what}: expected between 64 bytes and 1GiB"));
                    ok = false;
                    DEFAULT_MAX_MESSAGE
                }
                Err(e) => {
                    self.error(t.span(), format!("{what}: {e}"));
                    ok = false;
                    DEFAULT_MAX_MESSAGE
                }
            },
        };
        let max_message = limit(&raw.max_message, "connect.max_message");
        let max_frame = limit(&raw.max_frame, "connect.max_frame");
        let heartbeat = match &raw.heartbeat {
            None => None,
            Some(h) => {
                let every = self.positive_duration(&h.get_ref().every, "connect.heartbeat.every");
                let timeout = self.positive_duration(&h.get_ref().timeout, "connect.heartbeat.timeout");
                match (every, timeout) {
                    (Some(every), Some(timeout)) => Some(Heartbeat { every, timeout }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
        };
        let max_rate = match &raw.max_rate {
            None => None,
            Some(t) => match per_second(t.get_ref()) {
                Some(r) if r <= 1_000_000.0 => Some(r),
                _ => {
                    self.error(t.span(), format!("connect.max_rate: {:?}: expected new connections per second such as \"500/s\" (at most 1000000/s)", t.get_ref()));
                    ok = false;
                    None
                }
            },
        };
        let mut source_addrs = Vec::new();
        if let Some(addrs) = &raw.source_addrs {
            let entries = match addrs.get_ref() {
                raw::RawAddrs::One(one) => std::slice::from_ref(one),
                raw::RawAddrs::Many(many) => many.as_slice(),
            };
            if entries.is_empty() {
                self.error(
                    addrs.span(),
                    format!("connect.source_addrs: empty; {}", sources::EXPECTED),
                );
                ok = false;
            }
            for entry in entries {
                match sources::expand(entry) {
                    Ok(ips) => source_addrs.extend(ips),
                    Err(e) => {
                        self.error(addrs.span(), format!("connect.source_addrs: {e}"));
                        ok = false;
                    }
                }
            }
            if source_addrs.len() > sources::MAX {
                self.error(
                    addrs.span(),
                    format!(
                        "connect.source_addrs: {} addresses, more than the {} allowed",
                        source_addrs.len(),
                        sources::MAX
                    ),
                );
                ok = false;
            }
        }
        let subprotocol = raw.subprotocol.as_ref().map(|p| {
            if !subprotocols.contains(p.get_ref()) {
                self.error(
                    p.span(),
                    format!(
                        "connect.subprotocol: {:?} is not offered: expected one of connect.subprotocols ({})",
                        p.get_ref(),
                        if subprotocols.is_empty() {
                            "none listed".to_string()
                        } else {
                            subprotocols.join(", ")
                        }
                    ),
                );
                ok = false;
            }
            p.get_ref().clone()
        });
        ok.then_some(Connect {
            url: self.url.take(),
            headers,
            subprotocols,
            subprotocol,
            timeout,
            read_buffer,
            max_message,
            max_frame,
            heartbeat,
            source_addrs,
            max_rate,
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

    /// The TLS of a wss:// target (None for ws://). `Some(None)`: a mistake, reported.
    fn tls(
        &mut self,
        raw: &RawScenario,
        target: Option<&Target>,
        overrides: &Overrides,
    ) -> Option<Option<tls::Tls>> {
        let secure = matches!(target, Some(Target::Url(url)) if url.starts_with("wss://"));
        let table = raw.tls.as_ref();
        if !secure {
            if let (Some(t), Some(_)) = (table, target) {
                self.error(
                    t.span(),
                    "tls: applies to wss:// targets only: expected the target to start with wss://",
                );
                return Some(None);
            }
            return None;
        }
        let folder = self.path.parent().unwrap_or(Path::new(""));
        let path = |t: &Option<raw::Text>| t.as_ref().map(|t| folder.join(t.get_ref()));
        let options = tls::TlsOptions {
            ca_file: table.and_then(|t| path(&t.get_ref().ca_file)),
            client_cert: table.and_then(|t| path(&t.get_ref().client_cert)),
            client_key: table.and_then(|t| path(&t.get_ref().client_key)),
            insecure: overrides.insecure || table.is_some_and(|t| t.get_ref().insecure == Some(true)),
        };
        match tls::build(&options) {
            Ok(tls) => Some(Some(tls)),
            Err((key, why)) => {
                let span = table.map_or(raw.target.span(), |t| {
                    let t = t.get_ref();
                    let named = match key {
                        "tls.ca_file" => t.ca_file.as_ref(),
                        "tls.client_cert" => t.client_cert.as_ref(),
                        "tls.client_key" => t.client_key.as_ref(),
                        _ => None,
                    };
                    named.map_or(raw.tls.as_ref().expect("table").span(), |n| n.span())
                });
                self.error(span, format!("{key}: {why}"));
                Some(None)
            }
        }
    }

    /// How often each client starts its step loop under `[pacing]`.
    fn pacing(
        &mut self,
        raw: &raw::RawPacing,
        scenario: &RawScenario,
        load: Option<&Load>,
    ) -> Option<Duration> {
        const EXPECTED: &str = "expected a rate such as \"5/s\" or \"300/m\"";
        let (text, total) = match (&raw.rate, &raw.total_rate) {
            (Some(r), None) => (r, false),
            (None, Some(r)) => (r, true),
            _ => {
                let span = raw
                    .rate
                    .as_ref()
                    .or(raw.total_rate.as_ref())
                    .map_or(scenario.name.span(), |t| t.span());
                self.error(
                    span,
                    "pacing: expected exactly one of `rate` (per client) or `total_rate` (over all clients)",
                );
                return None;
            }
        };
        let key = if total { "pacing.total_rate" } else { "pacing.rate" };
        let Some(per_second) = per_second(text.get_ref()) else {
            self.error(text.span(), format!("{key}: {:?}: {EXPECTED}", text.get_ref()));
            return None;
        };
        if scenario.steps.is_empty() {
            self.error(text.span(), format!("{key}: there is no [[steps]] loop to pace"));
            return None;
        }
        // A total rate is shared by the scenario's peak clients (the whole count, so that every
        // segment's clients keep the same schedule and the segments add up to the total).
        let clients = if total { load?.peak().max(1) as f64 } else { 1.0 };
        let interval = Duration::try_from_secs_f64(clients / per_second).unwrap_or(Duration::MAX);
        if interval < Duration::from_micros(100) || interval > duration::MAX {
            self.error(
                text.span(),
                format!(
                    "{key}: {:?} gives each client a loop every {interval:?}: expected 100 µs to 10 years",
                    text.get_ref()
                ),
            );
            return None;
        }
        Some(interval)
    }

    fn steps(&mut self, raw: &RawScenario, has_correlation: bool, paced: bool) -> Option<Vec<Step>> {
        // A step is numbered in 16 bits on each request in flight.
        if raw.setup.len() + raw.steps.len() > usize::from(u16::MAX) {
            let span = raw.steps.first().map_or(raw.name.span(), |s| s.span());
            self.error(
                span,
                format!(
                    "{} steps: expected at most {} in [[setup]] and [[steps]] together",
                    raw.setup.len() + raw.steps.len(),
                    u16::MAX
                ),
            );
            return None;
        }
        let (steps, waits) = self.step_list(&raw.steps, has_correlation, "steps")?;
        let sends = steps
            .iter()
            .any(|s| matches!(s, Step::Send { .. } | Step::SendBinary(_)));
        if sends && !waits && !paced {
            let span = raw.steps[0].span();
            self.error(
                span,
                "the step loop never waits and would flood the target: expected a `sleep` step or an `expect = \"response\"` that waits",
            );
            return None;
        }
        Some(steps)
    }

    /// Validates a list of steps; also says whether any step waits.
    fn step_list(
        &mut self,
        list: &[toml::Spanned<raw::RawStep>],
        has_correlation: bool,
        table: &str,
    ) -> Option<(Vec<Step>, bool)> {
        let mut steps = Vec::new();
        let mut ok = true;
        let mut waits = false;
        for s in list {
            let span = s.span();
            let s = s.get_ref();
            let kinds = [
                s.send.is_some(),
                s.send_binary.is_some(),
                s.sleep.is_some(),
                s.close.is_some(),
                s.wait_for.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                self.error(
                    span,
                    format!("a [[{table}]] entry: expected exactly one of `send = \"...\"`, `send_binary = \"hex:...\"`, `sleep = \"100ms\"`, `wait_for = {{ ... }}` or `close = 1000`"),
                );
                ok = false;
                continue;
            }
            let extra = |key: &str, present: bool| present.then(|| format!("`{key}`"));
            let stray: Vec<String> = [
                extra("expect", s.expect.is_some() && s.send.is_none()),
                extra("wait", s.wait.is_some() && s.send.is_none()),
                extra("checks", s.checks.is_some() && s.send.is_none()),
                extra("last", s.last.is_some() && s.send.is_none()),
                extra("timeout", s.timeout.is_some() && s.wait_for.is_none()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !stray.is_empty() {
                self.error(
                    span.clone(),
                    format!("{table}: {} does not apply to this step: expected `expect`, `wait`, `checks` and `last` only beside `send`, and `timeout` only beside `wait_for`", stray.join(", ")),
                );
                ok = false;
                continue;
            }
            if let Some(data) = &s.send_binary {
                match self.binary(data, &format!("{table}.send_binary")) {
                    Some(bytes) => steps.push(Step::SendBinary(bytes)),
                    None => ok = false,
                }
                continue;
            }
            if let Some(wanted) = &s.wait_for {
                let timeout = match &s.timeout {
                    Some(t) => self.positive_duration(t, &format!("{table}.timeout")),
                    None => Some(self.wait_timeout),
                };
                match (self.check(wanted, &format!("{table}.wait_for")), timeout) {
                    (Some(check), Some(timeout)) => {
                        waits = true;
                        steps.push(Step::WaitFor { check, timeout });
                    }
                    _ => ok = false,
                }
                continue;
            }
            match (&s.send, &s.sleep, &s.close) {
                (Some(send), None, None) => {
                    let template = self.template(send, &format!("{table}.send"));
                    let mut checks = Vec::new();
                    for c in s.checks.iter().flatten() {
                        match self.check(c, &format!("{table}.checks")) {
                            Some(c) => checks.push(c),
                            None => ok = false,
                        }
                    }
                    let last = s.last.as_ref().map(|l| self.check(l, &format!("{table}.last")));
                    let expect = match &s.expect {
                        None => {
                            if s.wait.is_some() || s.checks.is_some() || s.last.is_some() {
                                self.error(
                                    span.clone(),
                                    "steps.wait, checks and last apply to a correlated send: expected `expect = \"response\"` (or \"stream\") beside them",
                                );
                                ok = false;
                            }
                            None
                        }
                        Some(e) if e.get_ref() == "response" || e.get_ref() == "stream" => {
                            let stream = e.get_ref() == "stream";
                            if !has_correlation {
                                self.error(e.span(), format!("expect = {:?} needs correlation: expected a [correlation] table with `request_id = \"/json/pointer\"`", e.get_ref()));
                                ok = false;
                            }
                            if template.as_ref().is_some_and(|t| !t.uses_id()) {
                                self.error(send.span(), "this send expects a correlated response but carries no id: expected {{id}} in the message so the reply can be matched");
                                ok = false;
                            }
                            match (stream, &last) {
                                (true, None) => {
                                    self.error(e.span(), format!("expect = \"stream\" needs the mark of the last reply: expected `last = {{ pointer = \"/final\", equals = true }}` beside it; {}", check::EXPECTED));
                                    ok = false;
                                }
                                (false, Some(_)) => {
                                    self.error(
                                        e.span(),
                                        "`last` marks the end of a stream: expected `expect = \"stream\"`",
                                    );
                                    ok = false;
                                }
                                _ => {}
                            }
                            let wait = s.wait.unwrap_or(true);
                            waits |= wait;
                            Some(Expect {
                                wait,
                                checks,
                                last: last.flatten(),
                            })
                        }
                        Some(e) => {
                            self.error(
                                e.span(),
                                format!(
                                    "steps.expect: unknown expectation {:?}: expected \"response\" or \"stream\"",
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
                (None, Some(sleep), None) => {
                    // "100ms..300ms": a think time drawn at random from that range each time.
                    match sleep.get_ref().split_once("..") {
                        Some((lo, hi)) => {
                            let what = format!("{table}.sleep");
                            let part = |t: &str| toml::Spanned::new(sleep.span(), t.trim().to_string());
                            match (self.duration(&part(lo), &what), self.duration(&part(hi), &what)) {
                                (Some(lo), Some(hi)) if lo <= hi => {
                                    waits |= !hi.is_zero();
                                    steps.push(Step::SleepBetween(lo, hi));
                                }
                                (Some(_), Some(_)) => {
                                    self.error(sleep.span(), format!("{what}: the range ends before it begins: expected such as \"100ms..300ms\""));
                                    ok = false;
                                }
                                _ => ok = false,
                            }
                        }
                        None => match self.duration(sleep, &format!("{table}.sleep")) {
                            Some(d) => {
                                waits |= !d.is_zero();
                                steps.push(Step::Sleep(d));
                            }
                            None => ok = false,
                        },
                    }
                }
                (None, None, Some(code)) => {
                    if table != "steps" {
                        self.error(
                            code.span(),
                            format!(
                                "{table}.close: a connection closes from the [[steps]] loop, not from {table}"
                            ),
                        );
                        ok = false;
                    }
                    match u16::try_from(*code.get_ref()) {
                        Ok(c) if sendable_close_code(u64::from(c)) => {
                            // Each cycle opens a new connection: pacing enough.
                            waits = true;
                            steps.push(Step::Close(c));
                        }
                        _ => {
                            self.error(code.span(), format!("{table}.close: {CLOSE_CODE_EXPECTED}"));
                            ok = false;
                        }
                    }
                }
                _ => unreachable!("exactly one kind, checked above"),
            }
        }
        ok.then_some((steps, waits))
    }

    fn reconnect(&mut self, raw: Option<&raw::RawReconnect>) -> Option<Reconnect> {
        let mut r = Reconnect::default();
        let Some(raw) = raw else { return Some(r) };
        let mut ok = true;
        if let Some(t) = &raw.strategy {
            match t.get_ref().as_str() {
                "constant" => r.strategy = Strategy::Constant,
                "exponential" => r.strategy = Strategy::Exponential,
                "decorrelated" => r.strategy = Strategy::Decorrelated,
                other => {
                    self.error(t.span(), format!("reconnect.strategy: unknown {other:?}: expected \"constant\", \"exponential\" or \"decorrelated\""));
                    ok = false;
                }
            }
        }
        if let Some(t) = &raw.initial {
            r.initial = self.positive_duration(t, "reconnect.initial").unwrap_or_else(|| {
                ok = false;
                r.initial
            });
        }
        if let Some(t) = &raw.max {
            r.max = self.positive_duration(t, "reconnect.max").unwrap_or_else(|| {
                ok = false;
                r.max
            });
        }
        if r.max < r.initial {
            let span = raw
                .max
                .as_ref()
                .or(raw.initial.as_ref())
                .map(|t| t.span())
                .unwrap_or(0..0);
            self.error(span, "reconnect: expected `max` at least as long as `initial`");
            ok = false;
        }
        if let Some(m) = &raw.multiplier {
            if !(1.0..=100.0).contains(m.get_ref()) {
                self.error(
                    m.span(),
                    "reconnect.multiplier: expected a number between 1.0 and 100.0",
                );
                ok = false;
            }
            r.multiplier = *m.get_ref();
        }
        if let Some(t) = &raw.jitter {
            match t.get_ref().as_str() {
                _ if r.strategy == Strategy::Decorrelated => {
                    self.error(t.span(), "reconnect.jitter: decorrelated backoff has its jitter built in: expected no `jitter` with strategy = \"decorrelated\"");
                    ok = false;
                }
                "none" => r.jitter = Jitter::None,
                "full" => r.jitter = Jitter::Full,
                "equal" => r.jitter = Jitter::Equal,
                other => match duration::parse(other) {
                    Ok(d) if !d.is_zero() => r.jitter = Jitter::Add(d),
                    _ => {
                        self.error(
                            t.span(),
                            format!(
                                "reconnect.jitter: unknown {other:?}: expected \"none\", \"full\", \"equal\" or a duration added at random such as \"1s\""
                            ),
                        );
                        ok = false;
                    }
                },
            }
        }
        if let Some(n) = &raw.max_attempts {
            if *n.get_ref() == 0 || *n.get_ref() > u64::from(u32::MAX) {
                self.error(n.span(), "reconnect.max_attempts: expected 1 or more");
                ok = false;
            }
            r.max_attempts = Some(*n.get_ref() as u32);
        }
        r.replay_in_flight = raw.replay_in_flight.unwrap_or(false);
        ok.then_some(r)
    }

    fn pointer(&mut self, text: &Text, what: &str) -> Option<JsonPointer> {
        JsonPointer::parse(text.get_ref())
            .map_err(|e| self.error(text.span(), format!("{what}: {e}")))
            .ok()
    }

    fn pushes(&mut self, raw: Option<&raw::RawPushes>) -> Option<Pushes> {
        let Some(raw) = raw else {
            return Some(Pushes::default());
        };
        let sequence = raw.sequence.as_ref().map(|t| self.pointer(t, "pushes.sequence"));
        let sent_at = raw.sent_at.as_ref().map(|t| self.pointer(t, "pushes.sent_at"));
        let mut ok =
            sequence.as_ref().is_none_or(Option::is_some) && sent_at.as_ref().is_none_or(Option::is_some);
        if let Some(p) = &raw.resume_param {
            let valid = !p.get_ref().is_empty()
                && p.get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                self.error(
                    p.span(),
                    "pushes.resume_param: expected a query parameter name such as \"resume_from\"",
                );
                ok = false;
            }
            if raw.sequence.is_none() {
                self.error(
                    p.span(),
                    "pushes.resume_param needs the sequence: expected `sequence = \"/json/pointer\"` too",
                );
                ok = false;
            }
        }
        ok.then(|| Pushes {
            sequence: sequence.flatten(),
            sent_at: sent_at.flatten(),
            resume_param: raw.resume_param.as_ref().map(|p| p.get_ref().clone()),
        })
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
                    raw::RawThreshold::Expression(text) => (text, false, None),
                    raw::RawThreshold::Table(t) => (&t.threshold, t.abort_on_fail, t.grace.as_deref()),
                };
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
                if !abort && matches!(e.get_ref(), raw::RawThreshold::Table(t) if t.grace.is_some()) {
                    self.error(
                        e.span(),
                        format!("thresholds.{name}: grace only applies with abort_on_fail = true: expected abort_on_fail = true or no grace"),
                    );
                    continue;
                }
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

/// The JSON Schema of scenario files, for editors (taplo, VS Code's Even Better TOML). It
/// describes the shape; `validate` checks the rest (durations, URLs, templates, pointers).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawScenario);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

/// A share written as a percentage ("50%") or a fraction (0.5), from 0 to 1.
pub fn share(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => text.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&value).then_some(value)
}

/// Whether `key` falls within `share` (0 to 1): a seeded, even split of keys, the same every
/// run (a fault's toxicity, a requests.csv sample).
pub fn picked(key: u64, share: f64) -> bool {
    ((mix(key) >> 11) as f64 / (1u64 << 53) as f64) < share
}

/// SplitMix64's finaliser: spreads any key over all 64 bits.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Whether a close code may be sent in a close frame (RFC 6455 §7.4: 1004–1006 and 1015 are
/// reserved, 1016–2999 are for future standards).
pub fn sendable_close_code(code: u64) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What close-code errors say they expected.
pub const CLOSE_CODE_EXPECTED: &str =
    "expected a close code that may be sent: 1000-1003, 1007-1014 or 3000-4999";

/// Checks a target URL: ws:// or wss:// with a host.
/// Reads a file the scenario names, refusing one larger than `limit` bytes without reading
/// past it (a device such as /dev/zero has no size to check first).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{} is larger than {}: expected at most that",
            path.display(),
            bytesize::ByteSize::b(limit).display().iec()
        ));
    }
    Ok(bytes)
}

/// Checks a target URL; an error says what is wrong after the URL, which the caller shows as it
/// chooses (as written, so that no value put into it is printed).
pub fn check_url(text: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected \"embedded\" or a URL such as \"ws://127.0.0.1:9001/ws\"";
    let uri: http::Uri = text.parse().map_err(|_| format!("is not a URL: {EXPECTED}"))?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        _ => {
            return Err(format!("does not start with ws:// or wss://: {EXPECTED}"));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("has no host: {EXPECTED}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
