//! The one `validate` step: raw TOML types in, a `Plan` out, or every mistake at once, each
//! naming the file, line and column and the form expected. Split by table, as `raw.rs` is:
//! `target` (target, tls, embedded), `connect` (connect, correlation, pushes), `steps`,
//! `load` (phases, pacing, reconnect), `thresholds`, `chaos` and `feed`.

mod captures;
mod chaos;
mod compression;
mod connect;
mod feed;
mod flows;
mod http;
mod load;
mod programs;
mod reconnect;
mod rules;
mod sockets;
mod steps;
mod target;
mod thresholds;
mod validator;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::error::{ScenarioError, ScenarioErrors};
use super::feed::Feed;
use super::files::read_bounded;
use super::overrides::Overrides;
use super::plan::DEFAULT_WAIT_TIMEOUT;
use super::plan::{Plan, RequestFilter};
use super::protocol;
use super::raw::RawScenario;
use super::set;
use super::template::Names;
use validator::Validator;

/// The largest scenario file read: far above any real scenario, and a bound for `/dev/zero`.
pub const MAX_SCENARIO: u64 = 10 << 20;

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ScenarioErrors> {
    let whole = |message: String| ScenarioErrors(vec![ScenarioError::whole_file(path, message)]);
    let bytes = read_bounded(path, MAX_SCENARIO).map_err(|e| whole(format!("the scenario file: {e}")))?;
    let source = String::from_utf8(bytes).map_err(|e| {
        whole(format!(
            "the scenario file is not UTF-8 text ({e}): expected TOML"
        ))
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
    let mut raw: RawScenario = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        ScenarioErrors(vec![ScenarioError::at(path, source, span, message)])
    })?;
    // A protocol preset becomes the scenario's own steps and rules, validated with the rest.
    protocol::expand(&mut raw).map_err(|mistakes| {
        ScenarioErrors(
            mistakes
                .into_iter()
                .map(|m| ScenarioError::at(path, source, m.span, m.message))
                .collect(),
        )
    })?;
    // The feed comes first: templates name its columns.
    let feed = match raw.feed.as_ref().map(|f| feed::load(path, source, f)) {
        None => None,
        Some(Ok(feed)) => Some(Arc::new(feed)),
        Some(Err(e)) => return Err(ScenarioErrors(vec![e])),
    };
    let names = ScenarioNames {
        env,
        secrets: raw.secrets.clone(),
        feed: feed.as_deref(),
        used: RefCell::new(Vec::new()),
        vars: RefCell::new(Vec::new()),
    };
    let validator = Validator {
        path,
        source,
        names: &names,
        errors: Vec::new(),
        url: None,
        wait_timeout: DEFAULT_WAIT_TIMEOUT,
        vars: Vec::new(),
        step_names: Vec::new(),
        flow: None,
    };
    validator.validate(&raw, overrides, feed.clone(), &names)
}

/// The names a scenario's templates may use: the environment, its `[secrets]` and its
/// `[feed]` columns. Every value taken from the first two is a secret, kept in `used`.
struct ScenarioNames<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    secrets: BTreeMap<String, String>,
    feed: Option<&'a Feed>,
    used: RefCell<Vec<String>>,
    /// The names of the captured variables, by index (declared before any template compiles).
    vars: RefCell<Vec<String>>,
}

impl ScenarioNames<'_> {
    fn keep(&self, value: Option<String>) -> Option<String> {
        if let Some(v) = &value {
            self.used.borrow_mut().push(v.clone());
        }
        value
    }

    /// Every secret value a template took, sorted, once each.
    fn secrets(&self) -> Vec<String> {
        let mut used = self.used.borrow().clone();
        used.sort();
        used.dedup();
        used
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

    fn var(&self, name: &str) -> Option<usize> {
        self.vars.borrow().iter().position(|v| v == name)
    }
}

impl Validator<'_> {
    fn validate(
        mut self,
        raw: &RawScenario,
        overrides: &Overrides,
        feed: Option<Arc<Feed>>,
        names: &ScenarioNames<'_>,
    ) -> Result<Plan, ScenarioErrors> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            self.error(
                raw.name.span(),
                "name is empty: expected a short name such as \"chat-echo\"",
            );
        }
        // Captures first: every template may name their variables.
        self.vars = self.declare_vars(raw);
        names
            .vars
            .replace(self.vars.iter().map(|v| v.name.clone()).collect());
        let target = self.target(raw, overrides);
        let tls = self.tls(raw, target.as_ref(), overrides);
        let connect = self.connect(&raw.connect);
        let correlation = raw.correlation.as_ref().and_then(|c| self.correlation(c));
        if let Some(c) = &correlation {
            self.wait_timeout = c.timeout;
        }
        let load = self.load(raw);
        let duration = self.duration_of(raw, overrides, load.as_ref());
        // None: no pacing; Some(None): a mistake, already reported.
        let pacing = raw.pacing.as_ref().map(|p| self.pacing(p, raw, load.as_ref()));
        let programs = self.programs(raw, pacing.is_some());
        let reconnect = self.reconnect(raw.reconnect.as_ref());
        let pushes = self.pushes(raw.pushes.as_ref());
        let chaos = self.chaos(&raw.chaos);
        let recovery = self.recovery(raw.recovery.as_ref());
        let rules = self.rules(raw);
        let thresholds = match &rules {
            Some((rules, counters)) => self.judged(raw, rules, counters),
            None => Vec::new(),
        };
        let requests = self.requests(raw, overrides);
        if let (Some(feed), Some(connect), Some(load)) = (&feed, &connect, &load) {
            self.feed_fits(raw, feed, connect, load);
        }
        let mut secrets = names.secrets();
        if let Some(feed) = &feed {
            secrets.extend(self.feed_secrets(raw, feed));
        }
        if let (Some(target), Some(connect)) = (&target, &connect) {
            self.sources_reach(raw, target, connect);
        }
        let http_tls = match (&programs, &connect) {
            (Some(p), Some(connect)) => {
                self.check_programs(raw, p, connect, tls.as_ref().and_then(Option::as_ref), overrides)
            }
            _ => None,
        };
        if !self.errors.is_empty() {
            return Err(ScenarioErrors(self.errors));
        }
        // Every piece is Some when no error was recorded.
        let missing = "validated: each part is Some when no error was recorded";
        let programs = programs.expect(missing);
        Ok(Plan {
            name,
            file: self.path.to_path_buf(),
            target: target.expect(missing),
            duration: duration.expect(missing),
            seed: raw.seed.unwrap_or(1),
            connect: connect.expect(missing),
            protocol: raw.connect.protocol.as_ref().map(|p| *p.get_ref()),
            correlation,
            load: load.expect(missing),
            vars: self.vars,
            step_names: self.step_names,
            rules: rules.as_ref().expect(missing).0.clone(),
            counters: rules.expect(missing).1,
            http_setup: raw
                .setup
                .iter()
                .chain(raw.flows.iter().flat_map(|f| &f.get_ref().setup))
                .chain(raw.sockets.iter().flat_map(|s| &s.get_ref().setup))
                .any(|s| s.get_ref().http.is_some()),
            http_tls,
            setup: programs.setup,
            steps: programs.steps,
            timers: programs.timers,
            flows: programs.flows,
            flow_slots: programs.flow_slots,
            sockets: programs.sockets,
            pacing: pacing.flatten(),
            tls: tls.flatten(),
            secrets,
            feed,
            reconnect: reconnect.expect(missing),
            pushes: pushes.expect(missing),
            chaos: chaos.expect(missing),
            recovery: recovery.expect(missing),
            thresholds,
            requests,
            segment: overrides.segment,
            start_at: overrides.start_at,
        })
    }

    /// `[report] requests`, or `--requests`.
    fn requests(&mut self, raw: &RawScenario, overrides: &Overrides) -> Option<RequestFilter> {
        let text = match (
            overrides.requests,
            raw.report.as_ref().and_then(|r| r.requests.as_ref()),
        ) {
            (Some(filter), _) => return Some(filter),
            (None, None) => return None,
            (None, Some(text)) => text,
        };
        RequestFilter::parse(text.get_ref())
            .map_err(|e| self.error(text.span(), format!("report.requests: {e}")))
            .ok()
    }
}

/// The JSON Schema of scenario files, for editors (taplo, VS Code's Even Better TOML). It
/// describes the shape; `validate` checks the rest (durations, URLs, templates, pointers).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RawScenario);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}
