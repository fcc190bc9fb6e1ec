//! `protocol = "jsonrpc"`: the steps `call` and `notify`, and the correlation and rules the
//! preset adds (the module above says what each does).

use std::ops::Range;

use toml::Spanned;

use super::parts::{Mistake, absent, correlate, exists, malformed, other_action, present, rule};
use crate::scenario::raw::{RawCall, RawCapture, RawExpect, RawMatch, RawRule, RawScenario, RawStep};

/// Turns a `call` or `notify` into a send (with its expectation, check and capture); the
/// name of a subscription, whose notifications a rule then counts.
pub(super) fn step(s: &mut RawStep, table: &str) -> Result<Option<String>, Mistake> {
    let (call, notify) = (s.call.take(), s.notify.take());
    let (spanned, is_call) = match (call, notify) {
        (Some(c), None) => (c, true),
        (None, Some(n)) => (n, false),
        (Some(c), Some(_)) => {
            return Err(Mistake {
                span: c.span(),
                message: format!("{table}: both `call` and `notify`: expected one of them"),
            });
        }
        (None, None) => return Ok(None),
    };
    let span = spanned.span();
    let mistake = |message: String| Mistake {
        span: span.clone(),
        message: format!("{table}: {message}"),
    };
    if let Some(key) = other_action(s) {
        return Err(mistake(format!(
            "`{}` and `{key}` in one step: expected one action a step",
            if is_call { "call" } else { "notify" }
        )));
    }
    let RawCall {
        method,
        params,
        subscribe,
    } = spanned.into_inner();
    let method_name = method.get_ref().trim();
    if method_name.is_empty() {
        return Err(Mistake {
            span: method.span(),
            message: format!("{table}: an empty method: expected a name such as \"eth_getBalance\""),
        });
    }
    let params = match params {
        None => String::new(),
        // A string is a JSON template as written (`'[{{client}}, "{{var.token}}"]'`).
        Some(p) => match p.into_inner() {
            toml::Value::String(text) => format!(",\"params\":{text}"),
            value => match serde_json::to_string(&value) {
                Ok(json) => format!(",\"params\":{json}"),
                Err(e) => return Err(mistake(format!("params: {e}: expected a list or a table"))),
            },
        },
    };
    let method_json = serde_json::Value::from(method_name).to_string();
    if !is_call {
        if s.expect.is_some() || s.checks.is_some() || s.capture.is_some() || s.name.is_some() {
            return Err(mistake(
                "a notification has no reply: expected no `expect`, `checks`, `capture` or `name`".into(),
            ));
        }
        s.send = Some(Spanned::new(
            span.clone(),
            format!("{{\"jsonrpc\":\"2.0\",\"method\":{method_json}{params}}}"),
        ));
        return Ok(None);
    }
    s.send = Some(Spanned::new(
        span.clone(),
        format!("{{\"jsonrpc\":\"2.0\",\"id\":{{{{id_num}}}},\"method\":{method_json}{params}}}"),
    ));
    if s.expect.is_none() {
        s.expect = Some(Spanned::new(span.clone(), RawExpect::Response));
    }
    // A response has a result, or an error (then it fails the check, and is counted by code).
    let checks = s.checks.get_or_insert_with(Vec::new);
    checks.push(Spanned::new(span.clone(), absent("/error")));
    checks.push(Spanned::new(span.clone(), present("/result")));
    if !subscribe.unwrap_or(method_name.ends_with("_subscribe")) {
        return Ok(None);
    }
    let Some(name) = s.name.as_ref().map(|n| n.get_ref().clone()) else {
        return Err(mistake(format!(
            "a subscription ({method_name}) needs a `name`: its notifications are counted as notifications_NAME"
        )));
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(mistake(format!(
            "the subscription's name {name:?} names its variable sub_{name}: expected letters, digits and `_`"
        )));
    }
    let var = format!("sub_{name}");
    let captures = s.capture.get_or_insert_with(Default::default);
    if captures.contains_key(&var) {
        return Err(mistake(format!(
            "capture {var:?} is the subscription's own: expected another name"
        )));
    }
    captures.insert(
        var,
        Spanned::new(span.clone(), RawCapture::Pointer("/result".into())),
    );
    Ok(Some(name))
}

/// The JSON-RPC correlation (unless the scenario names its own id) and rules, after the
/// user's.
pub(super) fn expand(raw: &mut RawScenario, span: Range<usize>, subscriptions: &[(Range<usize>, String)]) {
    if let Some(c) = correlate(raw, &span, Some("/id"), None)
        && c.reply_if_any.is_none()
    {
        // A response has a result or an error, and no method: a message from the server with
        // a method and an id is its request, whatever its id.
        let reply = |member| Spanned::new(span.clone(), tests(&span, &[(member, true), ("/method", false)]));
        c.reply_if_any = Some(Spanned::new(
            span.clone(),
            vec![reply("/result"), reply("/error")],
        ));
    }
    // One rule a name: subscriptions that share a name (in two flows, or made again) share
    // its counter, and each notification is counted once.
    let mut named: Vec<&str> = Vec::new();
    for (step, name) in subscriptions {
        if named.contains(&name.as_str()) {
            continue;
        }
        named.push(name);
        let mut check = present("/params/subscription");
        check.exists = None;
        check.equals = Some(Spanned::new(
            step.clone(),
            toml::Value::String(format!("{{{{var.sub_{name}}}}}")),
        ));
        raw.on_message.push(rule(
            step,
            RawMatch::One(check),
            &format!("notifications_{name}"),
            false,
        ));
    }
    let rules = [
        rule(
            &span,
            RawMatch::One(present("/error/code")),
            "jsonrpc_error_{{/error/code}}",
            true,
        ),
        // A message with an id that is no response (neither result nor error: an echo of the
        // request, a request from the server, which the preset does not answer, another
        // protocol), or a response without the jsonrpc member; each counted once.
        all_of(
            &span,
            &[("/id", true), ("/result", false), ("/error", false)],
            PROTOCOL_ERRORS,
        ),
        all_of(
            &span,
            &[("/id", true), ("/jsonrpc", false), ("/result", true)],
            PROTOCOL_ERRORS,
        ),
        all_of(
            &span,
            &[
                ("/id", true),
                ("/jsonrpc", false),
                ("/result", false),
                ("/error", true),
            ],
            PROTOCOL_ERRORS,
        ),
        // A notification has a method and no id.
        rule(
            &span,
            tests(&span, &[("/method", true), ("/id", false)]),
            "jsonrpc_notifications_{{/method}}",
            false,
        ),
    ];
    raw.on_message.extend(rules);
}

/// The counter of malformed JSON-RPC messages.
const PROTOCOL_ERRORS: &str = "jsonrpc_protocol_errors";

/// A rule (for replies too) whose tests are whether each pointer exists.
fn all_of(span: &Range<usize>, pointers: &[(&str, bool)], count: &str) -> Spanned<RawRule> {
    malformed(span, tests(span, pointers), count)
}

/// Tests that must all hold: whether each pointer exists.
fn tests(span: &Range<usize>, pointers: &[(&str, bool)]) -> RawMatch {
    RawMatch::All(
        pointers
            .iter()
            .map(|(pointer, there)| Spanned::new(span.clone(), exists(pointer, *there)))
            .collect(),
    )
}
