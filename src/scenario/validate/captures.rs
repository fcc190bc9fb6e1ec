//! Captured values: `capture = { NAME = "/pointer" }` on steps (and rules), the variables they
//! declare, and where `{{var.NAME}}` may be used: after something captures it, and in a
//! connect's URL or headers only when it lasts across connections (`scope = "client"`).

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::validator::Validator;
use crate::scenario::plan::{Capture, Connect, Extract, Flow, Scope, Socket, Step, Timer, Var};
use crate::scenario::pointer::JsonPointer;
use crate::scenario::raw::{Captures, RawCapture, RawCaptureTable, RawScenario, RawScope, RawStep};
use crate::scenario::template::Template;

const EXPECTED: &str = "expected NAME = \"/json/pointer\", or NAME = { pointer = \"/p\" } or { regex = \"token=(\\\\w+)\" }, with `scope = \"connection\"` (the default) or \"client\"";

/// The most variables a scenario captures (each is a slot in every client).
const MAX_VARS: usize = 256;

/// Every capture of a scenario, in program order: the setup steps, the loop's, the timers',
/// the flows' and the sockets' programs, then the rules'.
pub(super) fn all_captures(raw: &RawScenario) -> impl Iterator<Item = &Captures> {
    raw.setup
        .iter()
        .chain(&raw.steps)
        .chain(&raw.every)
        .chain(
            raw.flows
                .iter()
                .flat_map(|f| f.get_ref().setup.iter().chain(&f.get_ref().steps)),
        )
        .chain(
            raw.sockets
                .iter()
                .flat_map(|s| s.get_ref().setup.iter().chain(&s.get_ref().steps)),
        )
        .filter_map(|s| s.get_ref().capture.as_ref())
        .chain(raw.on_message.iter().filter_map(|r| r.get_ref().capture.as_ref()))
}

impl Validator<'_> {
    /// The variables the scenario's captures declare, in order of first capture.
    pub(super) fn declare_vars(&mut self, raw: &RawScenario) -> Vec<Var> {
        let mut vars: Vec<Var> = Vec::new();
        let mut first: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for captures in all_captures(raw) {
            for (name, capture) in captures {
                let scope = match capture.get_ref() {
                    RawCapture::Table(RawCaptureTable {
                        scope: Some(RawScope::Client),
                        ..
                    }) => Scope::Client,
                    _ => Scope::Connection,
                };
                if !is_name(name) {
                    self.error(
                        capture.span(),
                        format!("capture: {name:?} is not a variable name: expected letters, digits and `_`, not starting with a digit"),
                    );
                    continue;
                }
                match vars.iter().find(|v| &v.name == name) {
                    Some(v) if v.scope != scope => {
                        let at = first[name].clone();
                        self.error(
                            capture.span(),
                            format!(
                                "capture: {name:?} is captured with another scope on line {}: expected one scope per variable",
                                self.source[..at.start].lines().count().max(1)
                            ),
                        );
                    }
                    Some(_) => {}
                    None => {
                        first.insert(name.clone(), capture.span());
                        vars.push(Var {
                            name: name.clone(),
                            scope,
                        });
                    }
                }
            }
        }
        if vars.len() > MAX_VARS {
            let span = first.values().next().cloned().unwrap_or(0..0);
            self.error(
                span,
                format!("{} captured variables: expected at most {MAX_VARS}", vars.len()),
            );
        }
        vars
    }

    /// A step's `capture` table, compiled.
    pub(super) fn captures(&mut self, raw: Option<&Captures>, what: &str) -> Option<Vec<Capture>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (name, capture) in raw.into_iter().flatten() {
            let Some(var) = self.vars.iter().position(|v| &v.name == name) else {
                ok = false; // Reported by declare_vars.
                continue;
            };
            let from =
                match capture.get_ref() {
                    RawCapture::Pointer(p)
                    | RawCapture::Table(RawCaptureTable {
                        pointer: Some(p),
                        regex: None,
                        ..
                    }) => JsonPointer::parse(p).map(Extract::Pointer),
                    RawCapture::Table(RawCaptureTable {
                        pointer: None,
                        regex: Some(re),
                        ..
                    }) => regex::Regex::new(re).map_err(|e| e.to_string()).and_then(|re| {
                        match re.captures_len() {
                            2 => Ok(Extract::Regex(re)),
                            n => Err(format!(
                                "{} capture groups, where the value is the first and only one",
                                n - 1
                            )),
                        }
                    }),
                    RawCapture::Table(_) => Err("expected exactly one of `pointer` or `regex`".to_string()),
                };
            match from {
                Ok(from) => out.push(Capture {
                    var: var as u16,
                    from,
                }),
                Err(e) => {
                    self.error(capture.span(), format!("{what}.capture.{name}: {e}; {EXPECTED}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Each `{{var.NAME}}` of a send comes after a capture of NAME: in an earlier setup or loop
    /// step of its program (the top-level one or its flow's), or in a rule (rules apply whenever
    /// a message comes). A timer may take anything captured anywhere. A connect's URL and
    /// headers come before every step of their connection, so they take only variables that
    /// last across connections.
    pub(super) fn var_order(
        &mut self,
        raw: &RawScenario,
        plan: (&[Step], &[Step], &[Flow], &[Socket]),
        (timers, connect): (&[Timer], &Connect),
        vars: &[Var],
    ) {
        let (setup, steps, flows, sockets) = plan;
        let top: Vec<&Spanned<RawStep>> = raw.setup.iter().chain(&raw.steps).collect();
        self.program_order(raw, setup.iter().chain(steps), &top, vars);
        for (flow, raw_flow) in flows.iter().zip(&raw.flows) {
            let raw_flow = raw_flow.get_ref();
            let listed: Vec<&Spanned<RawStep>> = raw_flow.setup.iter().chain(&raw_flow.steps).collect();
            self.program_order(raw, flow.setup.iter().chain(&flow.steps), &listed, vars);
        }
        for (socket, raw_socket) in sockets.iter().zip(&raw.sockets) {
            let raw_socket = raw_socket.get_ref();
            let listed: Vec<&Spanned<RawStep>> = raw_socket.setup.iter().chain(&raw_socket.steps).collect();
            self.program_order(raw, socket.setup.iter().chain(&socket.steps), &listed, vars);
        }
        // A timer fires whenever its time comes: anything captured anywhere may be in it (a
        // value not captured yet then keeps it from being sent, counted in capture_missing).
        let anywhere: Vec<&String> = all_captures(raw).flat_map(|c| c.keys()).collect();
        for (timer, raw_timer) in timers.iter().zip(&raw.every) {
            if let (Step::Send { template, .. }, Some(send)) = (&timer.step, &raw_timer.get_ref().send) {
                for v in template.vars() {
                    let name = &vars[usize::from(v)].name;
                    if !anywhere.contains(&name) {
                        self.error(
                            send.span(),
                            format!("every.send: {{{{var.{name}}}}} is captured by no step or rule"),
                        );
                    }
                }
            }
        }
        self.connect_vars(raw, connect, vars);
    }

    /// One program's sends: each variable captured before it (or by a rule).
    fn program_order<'s>(
        &mut self,
        raw: &RawScenario,
        program: impl Iterator<Item = &'s Step>,
        raw_steps: &[&Spanned<RawStep>],
        vars: &[Var],
    ) {
        let mut captured = vec![false; vars.len()];
        for rule in &raw.on_message {
            for (name, _) in rule.get_ref().capture.iter().flatten() {
                if let Some(i) = vars.iter().position(|v| &v.name == name) {
                    captured[i] = true;
                }
            }
        }
        for (step, raw_step) in program.zip(raw_steps) {
            let templates: Vec<(&Template, std::ops::Range<usize>)> = match (step, raw_step.get_ref()) {
                (Step::Send { template, .. }, RawStep { send: Some(send), .. }) => {
                    vec![(template, send.span())]
                }
                (
                    Step::Http(h),
                    RawStep {
                        http: Some(raw_http), ..
                    },
                ) => std::iter::once(&h.url)
                    .chain(h.headers.iter().map(|(_, t)| t))
                    .chain(&h.body)
                    .map(|t| (t, raw_http.span()))
                    .collect(),
                _ => Vec::new(),
            };
            for (template, span) in templates {
                for v in template.vars() {
                    if !captured[usize::from(v)] {
                        let name = &vars[usize::from(v)].name;
                        self.error(
                            span.clone(),
                            format!("{{{{var.{name}}}}} is used before any step captures it: expected `capture = {{ {name} = \"/json/pointer\" }}` on an earlier [[setup]] or [[steps]] entry"),
                        );
                    }
                }
            }
            for (name, _) in raw_step.get_ref().capture.iter().flatten() {
                if let Some(i) = vars.iter().position(|v| &v.name == name) {
                    captured[i] = true;
                }
            }
        }
    }

    /// The connect's templates take only variables that last across connections.
    fn connect_vars(&mut self, raw: &RawScenario, connect: &Connect, vars: &[Var]) {
        // The setup's HTTP steps run before every connect: what they capture is there for it.
        let before: Vec<&String> = raw
            .setup
            .iter()
            .chain(raw.flows.iter().flat_map(|f| &f.get_ref().setup))
            .chain(raw.sockets.iter().flat_map(|s| &s.get_ref().setup))
            .filter(|s| s.get_ref().http.is_some())
            .filter_map(|s| s.get_ref().capture.as_ref())
            .flat_map(|c| c.keys())
            .collect();
        let connection_scoped = |t: &Template| {
            t.vars()
                .map(|v| &vars[usize::from(v)])
                .find(|v| v.scope == Scope::Connection && !before.contains(&&v.name))
                .map(|v| v.name.clone())
        };
        let mut at_connect: Vec<(Range<usize>, String)> = Vec::new();
        if let Some(name) = connect.url.as_ref().and_then(connection_scoped) {
            at_connect.push((raw.target.span(), name));
        }
        let raw_connect = &raw.connect;
        for (header, template) in &connect.headers {
            if let Some(name) = connection_scoped(template) {
                let span = raw_connect
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(header.as_str()))
                    .map_or(raw.target.span(), |(_, v)| v.span());
                at_connect.push((span, name));
            }
        }
        for (i, template) in connect.subprotocols.iter().enumerate() {
            if let Some(name) = connection_scoped(template) {
                let span = raw_connect
                    .subprotocols
                    .get(i)
                    .map_or(raw.target.span(), Spanned::span);
                at_connect.push((span, name));
            }
        }
        for (span, name) in at_connect {
            self.error(
                span,
                format!("{{{{var.{name}}}}} in a connect: a connection's own captures end with it, before the next connect: expected `scope = \"client\"` on its capture (the first connect goes without the value)"),
            );
        }
    }
}

/// A variable name: ASCII letters, digits and `_`, not starting with a digit.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}
