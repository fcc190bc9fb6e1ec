//! `protocol = "socketio"`: Socket.IO v5 packets over Engine.IO v4's WebSocket transport,
//! expanded into the scenario's primitives:
//! - the target's path `/socket.io/?EIO=4&transport=websocket` when the URL names none
//!   (validate's target);
//! - `[connect] json_after`: pointers read the JSON after a packet's header (`42/chat,17`);
//! - `[correlation] request_id_regex` on acknowledgements, `43/chat,17[…]` (unless the
//!   scenario's correlation names its own id);
//! - setup steps first in every program (after its HTTP steps): wait for the open packet `0{…}` (its sid captured as
//!   `sio_sid`), send the namespace connect `40/chat,{auth}`, wait for its `40…{` answer;
//! - an `emit = ["name", args…]` step: `42/chat,["name",…]`, with `ack = true`
//!   `42/chat,{{id_num}}[…]` awaited as a request;
//! - rules: the server's ping `2` answered `3` (counted in `socketio_pings`), events counted by
//!   name (`socketio_event_NAME`), `44` connect errors counted (`socketio_connect_errors`)
//!   and the connection dropped (`socketio_connect_error`, with the server's packet as its
//!   reason), a namespace disconnect `41` counted and the connection closed (to connect
//!   again).

use std::ops::Range;

use toml::Spanned;

use super::parts::{
    Mistake, correlate, handshake_timeout, malformed, matching, other_action, prepend_setup, rule,
};
use crate::scenario::plan::{Protocol, RuleDrop};
use crate::scenario::raw::{RawCapture, RawCaptureTable, RawExpect, RawMatch, RawScenario, RawStep};

/// The namespace the scenario connects to ("/" unless `[connect.socketio] namespace`).
pub(super) fn namespace(raw: &RawScenario, protocol: Option<Protocol>) -> Result<String, Mistake> {
    let Some(table) = &raw.connect.socketio else {
        return Ok("/".into());
    };
    if protocol != Some(Protocol::Socketio) {
        return Err(Mistake {
            span: table.span(),
            message: "[connect.socketio] applies to Socket.IO: expected `[connect] protocol = \"socketio\"`"
                .into(),
        });
    }
    let Some(ns) = &table.get_ref().namespace else {
        return Ok("/".into());
    };
    let text = ns.get_ref();
    if !text.starts_with('/') || text.contains([',', '"', '\\']) || text.chars().any(char::is_whitespace) {
        return Err(Mistake {
            span: ns.span(),
            message: format!("connect.socketio.namespace: {text:?}: expected a path such as \"/chat\""),
        });
    }
    Ok(text.clone())
}

/// The packet header's namespace part: "" for "/", else "/chat,".
fn prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}

/// Turns an `emit` into a send (awaited with `ack = true`).
pub(super) fn step(s: &mut RawStep, table: &str, ns: &str) -> Result<(), Mistake> {
    let ack = s.ack.take();
    let Some(emit) = s.emit.take() else {
        return Err(Mistake {
            span: ack.map_or(0..0, |a| a.span()),
            message: format!("{table}: `ack` without `emit`: expected `emit = [\"event\", …]`"),
        });
    };
    let span = emit.span();
    let mistake = |message: String| Mistake {
        span: span.clone(),
        message: format!("{table}: {message}"),
    };
    if let Some(key) = other_action(s) {
        return Err(mistake(format!(
            "`emit` and `{key}` in one step: expected one action a step"
        )));
    }
    let args = emit.into_inner();
    if !matches!(args.first(), Some(toml::Value::String(name)) if !name.is_empty()) {
        return Err(mistake(
            "emit: expected the event's name first, then its arguments: [\"chat message\", { text = \"hi\" }]".into(),
        ));
    }
    let json = serde_json::to_string(&args).map_err(|e| mistake(format!("emit: {e}")))?;
    let ack = ack.is_some_and(|a| *a.get_ref());
    if !ack && (s.expect.is_some() || s.checks.is_some() || s.capture.is_some()) {
        return Err(mistake(
            "an event without `ack = true` has no reply: expected `ack = true` for `expect`, `checks` or `capture`".into(),
        ));
    }
    let id = if ack { "{{id_num}}" } else { "" };
    s.send = Some(Spanned::new(span.clone(), format!("42{}{id}{json}", prefix(ns))));
    if ack && s.expect.is_none() {
        s.expect = Some(Spanned::new(span, RawExpect::Response));
    }
    Ok(())
}

/// The Socket.IO handshake, correlation, payload prefix and rules.
pub(super) fn expand(raw: &mut RawScenario, span: Range<usize>, ns: &str) {
    let at = |v: &str| Spanned::new(span.clone(), v.to_string());
    if raw.connect.json_after.is_none() {
        // Engine.IO message (4), Socket.IO packet type, namespace, ack id.
        raw.connect.json_after = Some(at("4[0-9](?:/[^,]*,)?[0-9]*"));
    }
    correlate(raw, &span, None, Some("^43(?:/[^,]*,)?([0-9]+)"));
    let auth = raw
        .connect
        .socketio
        .as_ref()
        .and_then(|t| t.get_ref().auth.as_ref())
        .map(|a| a.get_ref().clone())
        .unwrap_or_default();
    let prefix = prefix(ns);
    // The handshake's answers are due within the connect timeout (5 s unless given).
    let within = handshake_timeout(raw, &span);
    let handshake = || {
        let mut open = RawStep {
            wait_for: Some(Spanned::new(span.clone(), matching("^0\\{"))),
            first: Some(true),
            timeout: Some(within.clone()),
            ..Default::default()
        };
        let sid = RawCapture::Table(RawCaptureTable {
            pointer: None,
            regex: Some("\"sid\":\"([^\"]+)\"".into()),
            scope: None,
        });
        open.capture = Some([("sio_sid".to_string(), Spanned::new(span.clone(), sid))].into());
        let connect = RawStep {
            send: Some(Spanned::new(span.clone(), format!("40{prefix}{auth}"))),
            ..Default::default()
        };
        let connected = RawStep {
            wait_for: Some(Spanned::new(
                span.clone(),
                matching(&format!("^40{}\\{{", regex::escape(&prefix))),
            )),
            first: Some(true),
            timeout: Some(within.clone()),
            ..Default::default()
        };
        [open, connect, connected].map(|s| Spanned::new(span.clone(), s))
    };
    prepend_setup(raw, handshake);
    // The open packet's heartbeat: the server's next ping is due within pingInterval +
    // pingTimeout, else the connection drops (server_ping_timeout); each ping re-arms it.
    let beat = ["sio_ping_interval".to_string(), "sio_ping_timeout".to_string()];
    let mut open = rule(&span, RawMatch::One(matching("^0\\{")), "", false);
    let captures = [
        ("sio_ping_interval", "pingInterval"),
        ("sio_ping_timeout", "pingTimeout"),
    ]
    .map(|(var, key)| {
        let from = RawCapture::Table(RawCaptureTable {
            pointer: None,
            regex: Some(format!("\"{key}\":([0-9]+)")),
            scope: None,
        });
        (var.to_string(), Spanned::new(span.clone(), from))
    });
    open.get_mut().count = None;
    open.get_mut().capture = Some(captures.into());
    open.get_mut().lapse_ms = Some(Spanned::new(span.clone(), beat.to_vec()));
    let mut ping = rule(&span, RawMatch::One(matching("^2$")), "socketio_pings", false);
    ping.get_mut().send = Some(at("3"));
    ping.get_mut().lapse_ms = Some(Spanned::new(span.clone(), beat.to_vec()));
    let mut gone = rule(
        &span,
        RawMatch::One(matching("^41")),
        "socketio_disconnects",
        false,
    );
    gone.get_mut().close = Some(Spanned::new(span.clone(), 1000));
    // The namespace refused the connect: a drop of its own, its reason the server's packet.
    let mut refused = rule(
        &span,
        RawMatch::One(matching("^44")),
        "socketio_connect_errors",
        false,
    );
    refused.get_mut().drop = Some(Spanned::new(span.clone(), RuleDrop::SocketioConnectError));
    raw.on_message.extend([
        open,
        ping,
        rule(
            &span,
            RawMatch::One(matching("^42")),
            "socketio_event_{{/0}}",
            false,
        ),
        refused,
        gone,
        // No Engine.IO packet (types 0-6), or a message carrying no Socket.IO packet (0-6).
        malformed(
            &span,
            RawMatch::One(matching("^(?:$|[^0-6]|4(?:$|[^0-6]))")),
            "socketio_protocol_errors",
        ),
    ]);
}
