//! `[[on_message]]`: each rule's `match` and its actions (capture, count, send, close).

use super::captures::all_captures;
use super::validator::Validator;
use crate::scenario::plan::{CounterName, Lapse, NameTemplate, Rule};
use toml::Spanned;

use crate::scenario::check::Check;
use crate::scenario::raw::{RawMatch, RawRule, RawScenario};
use crate::units::close_code;

/// The most rules a scenario has (each message is tested against every one).
const MAX_RULES: usize = 64;

impl Validator<'_> {
    /// The rules, and the counters they name that take nothing from the message.
    pub(super) fn rules(&mut self, raw: &RawScenario) -> Option<(Vec<Rule>, Vec<String>)> {
        if raw.on_message.len() > MAX_RULES {
            self.error(
                raw.on_message[MAX_RULES].span(),
                format!(
                    "{} [[on_message]] rules: expected at most {MAX_RULES}",
                    raw.on_message.len()
                ),
            );
            return None;
        }
        // Anything captured anywhere may be sent by a rule: rules apply whenever a message
        // comes, after the steps that capture have run or not (a value missing then is not
        // sent, and counted in capture_missing).
        let captured: Vec<&String> = all_captures(raw).flat_map(|c| c.keys()).collect();
        let mut rules = Vec::new();
        let mut counters: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, spanned) in raw.on_message.iter().enumerate() {
            let r = spanned.get_ref();
            let what = format!("on_message[{i}]");
            if !self.rule_acts(spanned, &what) {
                ok = false;
                continue;
            }
            let matches = self.all_of(&r.matches, &format!("{what}.match"));
            let captures = self.captures(r.capture.as_ref(), &what);
            let send = r.send.as_ref().and_then(|t| {
                let template = self.template(t, &format!("{what}.send"))?;
                let missing = template
                    .vars()
                    .map(|v| &self.vars[usize::from(v)].name)
                    .find(|name| !captured.contains(name))
                    .cloned();
                match missing {
                    Some(name) => {
                        self.error(
                            t.span(),
                            format!("{what}.send: {{{{var.{name}}}}} is captured by no step or rule"),
                        );
                        None
                    }
                    None => Some(template),
                }
            });
            let count = match &r.count {
                None => Some(None),
                Some(text) => match NameTemplate::parse(text.get_ref()) {
                    Ok(name) => match name.fixed() {
                        Some(fixed) => {
                            let id = counters.iter().position(|c| c == fixed).unwrap_or_else(|| {
                                counters.push(fixed.to_string());
                                counters.len() - 1
                            });
                            Some(Some(CounterName::Fixed(id as u32)))
                        }
                        None => Some(Some(CounterName::Template(name))),
                    },
                    Err(e) => {
                        self.error(text.span(), format!("{what}.count: {e}"));
                        None
                    }
                },
            };
            let close = match &r.close {
                None => Some(None),
                Some(code) => match u16::try_from(*code.get_ref()) {
                    Ok(c) if close_code::sendable(u64::from(c)) => Some(Some(c)),
                    _ => {
                        self.error(code.span(), format!("{what}.close: {}", close_code::EXPECTED));
                        None
                    }
                },
            };
            let since = match &r.since {
                None => Some(None),
                Some(name) => match self.step_names.iter().position(|n| n == name.get_ref()) {
                    Some(i) if http_named(raw, name.get_ref()) => Some(Some(i as u16 + 1)),
                    _ => {
                        self.error(name.span(), format!("{what}.since: no HTTP step is named {:?}: expected the `name` of an http step", name.get_ref()));
                        None
                    }
                },
            };
            let lapse = self.lapse(r, &what, &captured);
            match (matches, captures, count, close, since, lapse) {
                (Some(matches), Some(captures), Some(count), Some(close), Some(since), Some(lapse))
                    if r.send.is_none() || send.is_some() =>
                {
                    rules.push(Rule {
                        matches,
                        replies: r.replies,
                        captures,
                        count,
                        send,
                        close,
                        since,
                        lapse,
                        drop: r.drop.as_ref().map(|d| *d.get_ref()),
                        example: r.example,
                    });
                }
                _ => ok = false,
            }
        }
        ok.then_some((rules, counters))
    }

    /// Whether a rule has an action, and not two that end the connection.
    fn rule_acts(&mut self, spanned: &Spanned<RawRule>, what: &str) -> bool {
        let r = spanned.get_ref();
        if r.send.is_none()
            && r.capture.is_none()
            && r.count.is_none()
            && r.close.is_none()
            && r.since.is_none()
            && r.lapse.is_none()
            && r.lapse_ms.is_none()
            && r.drop.is_none()
        {
            self.error(
                spanned.span(),
                format!("{what}: a rule without an action: expected at least one of `send`, `capture`, `count`, `close`, `since`, `lapse` or `drop`"),
            );
            return false;
        }
        if r.example && r.count.is_none() {
            self.error(
                spanned.span(),
                format!("{what}: `example` without `count`: expected a counter whose example to keep"),
            );
            return false;
        }
        if let (Some(d), Some(_)) = (&r.drop, &r.close) {
            self.error(
                d.span(),
                format!("{what}: both `drop` and `close`: expected one (a drop ends the connection already)"),
            );
            return false;
        }
        true
    }

    /// A rule's `lapse` and `lapse_ms` (they add up); `Some(None)` without either.
    fn lapse(&mut self, r: &RawRule, what: &str, captured: &[&String]) -> Option<Option<Lapse>> {
        if r.lapse.is_none() && r.lapse_ms.is_none() {
            return Some(None);
        }
        let fixed = match &r.lapse {
            None => std::time::Duration::ZERO,
            Some(t) => self.positive_duration(t, &format!("{what}.lapse"))?,
        };
        let mut vars_ms = Vec::new();
        if let Some(names) = &r.lapse_ms {
            for name in names.get_ref() {
                match self.vars.iter().position(|v| &v.name == name) {
                    Some(i) if captured.contains(&name) => vars_ms.push(i as u16),
                    _ => {
                        self.error(names.span(), format!("{what}.lapse_ms: {name:?} is captured by no step or rule: expected the names of captured values"));
                        return None;
                    }
                }
            }
            if vars_ms.is_empty() {
                self.error(
                    names.span(),
                    format!("{what}.lapse_ms: an empty list: expected the names of captured values"),
                );
                return None;
            }
        }
        Some(Some(Lapse { fixed, vars_ms }))
    }

    /// Tests that must all hold (a rule's `match`, one of `correlation.reply_if_any`): one
    /// test, or a list of them; `what` names it in errors.
    pub(super) fn all_of(&mut self, raw: &Spanned<RawMatch>, what: &str) -> Option<Vec<Check>> {
        match raw.get_ref() {
            RawMatch::One(c) => self.check_at(raw.span(), c, what).map(|c| vec![c]),
            RawMatch::All(list) if list.is_empty() => {
                self.error(
                    raw.span(),
                    format!("{what}: an empty list: expected at least one test"),
                );
                None
            }
            RawMatch::All(list) => list
                .iter()
                .enumerate()
                .map(|(j, c)| self.check(c, &format!("{what}[{j}]")))
                .collect::<Vec<_>>()
                .into_iter()
                .collect(),
        }
    }
}

/// Whether a top-level HTTP step (setup or loop) is named `name`.
fn http_named(raw: &RawScenario, name: &str) -> bool {
    raw.setup
        .iter()
        .chain(&raw.steps)
        .map(|s| s.get_ref())
        .any(|s| s.http.is_some() && s.name.as_ref().is_some_and(|n| n.get_ref() == name))
}
