//! `protocol = "graphql-ws"`: GraphQL over WebSocket, the graphql-transport-ws subprotocol
//! (the npm `graphql-ws` library's, Apollo's current one), expanded into:
//! - the subprotocol offered and required (unless `[connect] subprotocols` names its own);
//! - `[correlation] request_id = "/id"` (unless the scenario's names its own id): an
//!   operation's id is its request number, as a string;
//! - setup steps first in every program (after its HTTP steps): `connection_init` (with `[connect] graphql_init` as
//!   its payload), then `connection_ack` awaited with `first` (another message is a
//!   `protocol_mismatch`; the server's refusal, a close with 4403, is the drop `close_4403`);
//! - a `subscribe = { query, variables }` step: `{"id":…,"type":"subscribe","payload":…}`,
//!   awaited as a stream: `next` messages are its parts, `complete` or `error` its last; the
//!   check that the last is `complete` makes an `error` a check failure;
//! - rules: the server's `ping` answered `pong` (`graphql_pings`), `error` messages (an
//!   operation refused, also a check failure) counted in `graphql_operation_errors`, and
//!   `next` messages carrying `payload.errors` (execution errors) in `graphql_errors`.

use std::ops::Range;

use toml::Spanned;

use super::parts::{
    Mistake, correlate, handshake_timeout, malformed, other_action, prepend_setup, present, rule,
};
use crate::scenario::plan::Protocol;
use crate::scenario::raw::{RawCheck, RawExpect, RawMatch, RawOperation, RawScenario, RawStep};

/// The subprotocol.
const SUBPROTOCOL: &str = "graphql-transport-ws";

/// `[connect] graphql_init` is the payload of GraphQL's `connection_init`: refused with
/// another protocol (or none), where nothing would send it.
pub(super) fn check_init(raw: &RawScenario, protocol: Option<Protocol>) -> Result<(), Mistake> {
    match &raw.connect.graphql_init {
        Some(init) if protocol != Some(Protocol::GraphqlWs) => Err(Mistake {
            span: init.span(),
            message: "connect.graphql_init applies to GraphQL over WebSocket: expected `[connect] protocol = \"graphql-ws\"`"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// Turns a `subscribe` into its send, stream and checks.
pub(super) fn step(s: &mut RawStep, table: &str) -> Result<(), Mistake> {
    let Some(op) = s.subscribe.take() else {
        return Ok(());
    };
    let span = op.span();
    let mistake = |message: String| Mistake {
        span: span.clone(),
        message: format!("{table}: {message}"),
    };
    let other = other_action(s).or(s.last.is_some().then_some("last"));
    if let Some(key) = other {
        return Err(mistake(format!(
            "`subscribe` and `{key}` in one step: expected one action a step (the stream ends at complete or error)"
        )));
    }
    let RawOperation {
        query,
        variables,
        operation_name,
    } = op.into_inner();
    if query.get_ref().trim().is_empty() {
        return Err(mistake(
            "subscribe.query is empty: expected a GraphQL document such as \"subscription { news }\"".into(),
        ));
    }
    let mut payload = format!(
        "{{\"query\":{}",
        serde_json::Value::from(query.get_ref().as_str())
    );
    match variables.map(Spanned::into_inner) {
        None => {}
        Some(toml::Value::String(text)) => payload.push_str(&format!(",\"variables\":{text}")),
        Some(value) => match serde_json::to_string(&value) {
            Ok(json) => payload.push_str(&format!(",\"variables\":{json}")),
            Err(e) => return Err(mistake(format!("subscribe.variables: {e}: expected a table"))),
        },
    }
    if let Some(name) = operation_name {
        payload.push_str(&format!(",\"operationName\":{}", serde_json::Value::from(name)));
    }
    payload.push('}');
    s.send = Some(Spanned::new(
        span.clone(),
        format!("{{\"id\":\"{{{{seq}}}}\",\"type\":\"subscribe\",\"payload\":{payload}}}"),
    ));
    if !matches!(
        s.expect.as_ref().map(|e| *e.get_ref()),
        None | Some(RawExpect::Stream)
    ) {
        return Err(mistake(
            "a subscription is a stream: expected no `expect`, or `expect = \"stream\"`".into(),
        ));
    }
    s.expect = Some(Spanned::new(span.clone(), RawExpect::Stream));
    s.last = Some(Spanned::new(
        span.clone(),
        at_type("matches", "^(complete|error)$"),
    ));
    s.checks
        .get_or_insert_with(Vec::new)
        .push(Spanned::new(span, at_type("equals", "complete")));
    Ok(())
}

/// The subprotocol, correlation, handshake and rules.
pub(super) fn expand(raw: &mut RawScenario, span: Range<usize>) {
    let at = |v: &str| Spanned::new(span.clone(), v.to_string());
    if raw.connect.subprotocols.is_empty() {
        raw.connect.subprotocols = vec![at(SUBPROTOCOL)];
        raw.connect.subprotocol = Some(at(SUBPROTOCOL));
    }
    correlate(raw, &span, Some("/id"), None);
    let init = match &raw.connect.graphql_init {
        Some(payload) => format!(
            "{{\"type\":\"connection_init\",\"payload\":{}}}",
            payload.get_ref()
        ),
        None => "{\"type\":\"connection_init\"}".to_string(),
    };
    let within = handshake_timeout(raw, &span);
    let handshake = || {
        [
            RawStep {
                send: Some(at(&init)),
                ..Default::default()
            },
            RawStep {
                wait_for: Some(Spanned::new(span.clone(), at_type("equals", "connection_ack"))),
                first: Some(true),
                timeout: Some(within.clone()),
                ..Default::default()
            },
        ]
        .map(|s| Spanned::new(span.clone(), s))
    };
    prepend_setup(raw, handshake);
    let mut ping = rule(
        &span,
        RawMatch::One(at_type("equals", "ping")),
        "graphql_pings",
        false,
    );
    ping.get_mut().send = Some(at("{\"type\":\"pong\"}"));
    raw.on_message.extend([
        ping,
        // An operation the server refused (invalid): its stream ends with `error`.
        rule(
            &span,
            RawMatch::One(at_type("equals", "error")),
            "graphql_operation_errors",
            true,
        ),
        // An execution error: a `next` whose payload carries `errors`.
        rule(
            &span,
            RawMatch::All(vec![
                Spanned::new(span.clone(), at_type("equals", "next")),
                Spanned::new(span.clone(), present("/payload/errors")),
            ]),
            "graphql_errors",
            true,
        ),
        // A message of no type graphql-transport-ws has for the server's side (or no JSON).
        malformed(
            &span,
            RawMatch::One(at_type(
                "not_matches",
                "^(connection_ack|next|error|complete|ping|pong)$",
            )),
            "graphql_protocol_errors",
        ),
    ]);
}

/// A test of `/type`: `equals` a value, `matches` a pattern or `not_matches` it.
fn at_type(how: &str, value: &str) -> RawCheck {
    let text = Spanned::new(0..0, value.to_string());
    RawCheck {
        pointer: Some(Spanned::new(0..0, "/type".to_string())),
        equals: (how == "equals").then(|| Spanned::new(0..0, toml::Value::String(value.to_string()))),
        not_matches: (how == "not_matches").then(|| text.clone()),
        matches: (how == "matches").then_some(text),
        ..Default::default()
    }
}
