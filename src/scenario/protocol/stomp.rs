//! `protocol = "stomp"`: STOMP 1.2 over WebSocket (RabbitMQ's Web-STOMP, Spring's broker
//! relay, ActiveMQ), expanded into:
//! - the subprotocol `v12.stomp` offered (unless `[connect] subprotocols` names its own);
//! - JSON pointers read a frame's body (content-length honoured);
//! - `[correlation] request_id_regex` on RECEIPT frames' `receipt-id` (unless the scenario
//!   has its own correlation): a receipt is the reply to the frame that asked for it;
//! - setup steps first in every program: CONNECT (with `[connect.stomp]` host, login,
//!   passcode and heart-beat), CONNECTED awaited with `first` (an ERROR instead is the drop
//!   `stomp_error`), then each subscription's SUBSCRIBE, its RECEIPT awaited;
//! - a `publish = { destination, body, content_type, headers, receipt }` step: a SEND,
//!   awaited by its RECEIPT unless `receipt = false`;
//! - `[[every]]`: an EOL every cx milliseconds (the client's heart-beat);
//! - rules: heart-beats counted (`stomp_heartbeats`); while the server announces its own, one
//!   of its frames is due within 2 × (cy + its interval), else `server_ping_timeout`; MESSAGE
//!   frames counted per subscription (`stomp_messages_ID`); ERROR frames counted
//!   (`stomp_errors`) and the connection dropped as `stomp_error`; a message that does not end
//!   in NUL counted in `stomp_protocol_errors`.

use std::ops::Range;

use toml::Spanned;

use super::parts::{
    Mistake, correlate, handshake_timeout, malformed, matching, other_action, prepend_setup, rule,
};
use crate::scenario::plan::{Protocol, RuleDrop};
use crate::scenario::raw::{
    RawCapture, RawCaptureTable, RawExpect, RawMatch, RawPublish, RawScenario, RawStep, RawStomp,
};
use crate::units::stomp::escape;

const SUBPROTOCOL: &str = "v12.stomp";

/// What starts a frame of this command: EOLs, then the command line.
fn command(name: &str) -> String {
    format!("^(?:\\r?\\n)*{name}\\r?\\n")
}

/// `[connect.stomp]` belongs to the stomp preset.
pub(super) fn check_table(raw: &RawScenario, protocol: Option<Protocol>) -> Result<(), Mistake> {
    match &raw.connect.stomp {
        Some(table) if protocol != Some(Protocol::Stomp) => Err(Mistake {
            span: table.span(),
            message: "[connect.stomp] applies to STOMP: expected `[connect] protocol = \"stomp\"`".into(),
        }),
        Some(table) => {
            let t = table.get_ref();
            if let Some(beat) = &t.heart_beat
                && beat
                    .get_ref()
                    .iter()
                    .any(|&ms| ms != 0 && !(100..=3_600_000).contains(&ms))
            {
                return Err(Mistake {
                    span: beat.span(),
                    message: format!(
                        "connect.stomp.heart_beat: {:?}: expected [cx, cy] in milliseconds, each 0 (none) or from 100 to 3600000",
                        beat.get_ref()
                    ),
                });
            }
            let mut ids: Vec<&str> = Vec::new();
            for sub in &t.subscribe {
                let id = sub.get_ref().id.as_str();
                if id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(Mistake {
                        span: sub.span(),
                        message: format!(
                            "connect.stomp.subscribe: id {id:?}: expected letters, digits, '-' or '_' (it names the counter stomp_messages_ID)"
                        ),
                    });
                }
                if ids.contains(&id) {
                    return Err(Mistake {
                        span: sub.span(),
                        message: format!(
                            "connect.stomp.subscribe: id {id:?} twice: expected one subscription per id"
                        ),
                    });
                }
                ids.push(id);
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// Turns a `publish` into a SEND (awaited by its receipt unless `receipt = false`).
pub(super) fn step(s: &mut RawStep, table: &str) -> Result<(), Mistake> {
    let Some(publish) = s.publish.take() else {
        return Ok(());
    };
    let span = publish.span();
    let mistake = |message: String| Mistake {
        span: span.clone(),
        message: format!("{table}: {message}"),
    };
    if let Some(key) = other_action(s) {
        return Err(mistake(format!(
            "`publish` and `{key}` in one step: expected one action a step"
        )));
    }
    let RawPublish {
        destination,
        body,
        content_type,
        headers,
        receipt,
    } = publish.into_inner();
    let receipt = receipt.unwrap_or(true);
    if !receipt && (s.expect.is_some() || s.checks.is_some() || s.capture.is_some()) {
        return Err(mistake(
            "a SEND without a receipt has no reply: expected `receipt = true` for `expect`, `checks` or `capture`".into(),
        ));
    }
    if destination.get_ref().is_empty() {
        return Err(mistake(
            "publish.destination is empty: expected \"/queue/orders\" or the like".into(),
        ));
    }
    let (body, json) = match body.map(Spanned::into_inner) {
        None => (String::new(), false),
        Some(toml::Value::String(text)) => (text, false),
        Some(value) => match serde_json::to_string(&value) {
            Ok(json) => (json, true),
            Err(e) => {
                return Err(mistake(format!(
                    "publish.body: {e}: expected a string or a table"
                )));
            }
        },
    };
    if body.contains('\0') {
        return Err(mistake(
            "publish.body holds a NUL: expected text without one (a NUL ends a frame)".into(),
        ));
    }
    let mut frame = format!("SEND\ndestination:{}\n", escaped(destination.get_ref()));
    let content_type = content_type
        .map(Spanned::into_inner)
        .or_else(|| json.then(|| "application/json".to_string()));
    if let Some(t) = content_type {
        frame.push_str(&format!("content-type:{}\n", escaped(&t)));
    }
    for (name, value) in &headers {
        if name.is_empty()
            || name.contains(['\n', '\r', ':'])
            || ["receipt", "destination"].contains(&name.as_str())
        {
            return Err(mistake(format!(
                "publish.headers: {name:?}: expected a header name without ':' or line breaks, other than receipt and destination"
            )));
        }
        frame.push_str(&format!("{}:{}\n", escape(name), escaped(value.get_ref())));
    }
    if receipt {
        frame.push_str("receipt:{{seq}}\n");
        if s.expect.is_none() {
            s.expect = Some(Spanned::new(span.clone(), RawExpect::Response));
        }
    }
    frame.push('\n');
    frame.push_str(&body);
    frame.push('\0');
    s.send = Some(Spanned::new(span, frame));
    Ok(())
}

/// The subprotocol, correlation, handshake, heart-beats and rules.
pub(super) fn expand(raw: &mut RawScenario, span: Range<usize>) {
    let at = |v: &str| Spanned::new(span.clone(), v.to_string());
    if raw.connect.subprotocols.is_empty() {
        raw.connect.subprotocols = vec![at(SUBPROTOCOL)];
    }
    correlate(
        raw,
        &span,
        None,
        Some(&format!(
            "{}(?:[^\\n]*\\n)*?receipt-id:([0-9]+)\\r?\\n",
            command("RECEIPT")
        )),
    );
    let table = raw
        .connect
        .stomp
        .take()
        .map(Spanned::into_inner)
        .unwrap_or_default();
    let [cx, cy] = table
        .heart_beat
        .as_ref()
        .map_or([10_000, 10_000], |h| *h.get_ref());
    handshake(raw, &span, &table, cx, cy);
    if cx > 0 {
        raw.every.push(Spanned::new(
            span.clone(),
            RawStep {
                every: Some(at(&format!("{cx}ms"))),
                send: Some(at("\n")),
                ..Default::default()
            },
        ));
    }
    heart_beat_rules(raw, &span, cy);
    for id in table.subscribe.iter().map(|s| &s.get_ref().id) {
        raw.on_message.push(rule(
            &span,
            RawMatch::One(matching(&format!(
                "{}(?:[^\\n]*\\n)*?subscription:{}\\r?\\n",
                command("MESSAGE"),
                regex::escape(&escape(id))
            ))),
            &format!("stomp_messages_{id}"),
            false,
        ));
    }
    let mut error = rule(
        &span,
        RawMatch::One(matching(&command("ERROR"))),
        "stomp_errors",
        true,
    );
    error.get_mut().drop = Some(Spanned::new(span.clone(), RuleDrop::StompError));
    raw.on_message.extend([
        error,
        // A frame that does not end in NUL (EOLs may follow it).
        malformed(
            &span,
            RawMatch::One(matching("[^\\x00\\r\\n][\\r\\n]*$")),
            "stomp_protocol_errors",
        ),
    ]);
}

/// CONNECT, CONNECTED and each subscription's SUBSCRIBE (its receipt awaited), first in every
/// program's setup.
fn handshake(raw: &mut RawScenario, span: &Range<usize>, table: &RawStomp, cx: u64, cy: u64) {
    let at = |v: &str| Spanned::new(span.clone(), v.to_string());
    let connect = connect_frame(table, cx, cy);
    let within = handshake_timeout(raw, span);
    let handshake = || {
        let mut steps = vec![
            RawStep {
                send: Some(at(&connect)),
                ..Default::default()
            },
            RawStep {
                wait_for: Some(Spanned::new(span.clone(), matching(&command("CONNECTED")))),
                first: Some(true),
                timeout: Some(within.clone()),
                ..Default::default()
            },
        ];
        for sub in &table.subscribe {
            // Where a mistake in it is reported: the subscription's own place.
            let (place, sub) = (sub.span(), sub.get_ref());
            steps.push(RawStep {
                send: Some(Spanned::new(
                    place,
                    format!(
                        "SUBSCRIBE\nid:{}\ndestination:{}\nack:auto\nreceipt:{{{{seq}}}}\n\n\0",
                        escape(&sub.id),
                        escaped(sub.destination.get_ref())
                    ),
                )),
                expect: Some(Spanned::new(span.clone(), RawExpect::Response)),
                ..Default::default()
            });
        }
        steps
            .into_iter()
            .map(|s| Spanned::new(span.clone(), s))
            .collect::<Vec<_>>()
    };
    prepend_setup(raw, handshake);
}

/// Heart-beats counted, and the server's watched when we want them (cy > 0).
fn heart_beat_rules(raw: &mut RawScenario, span: &Range<usize>, cy: u64) {
    let span = span.clone();
    let at = |v: &str| Spanned::new(span.clone(), v.to_string());
    raw.on_message.push(rule(
        &span,
        RawMatch::One(matching("^(?:\\r?\\n)+$")),
        "stomp_heartbeats",
        false,
    ));
    if cy > 0 {
        // The server's frames are due every max(its interval, cy): twice cy plus twice its
        // interval is at least twice that; an interval of 0, or none announced (STOMP's
        // "0,0"), arms nothing.
        let interval = "stomp_server_heart_beat".to_string();
        let announced = [command("CONNECTED"), "\\nheart-beat:[0-9]+,".to_string()]
            .map(|re| Spanned::new(span.clone(), matching(&re)));
        let mut connected = rule(&span, RawMatch::All(announced.into()), "", false);
        let from = RawCapture::Table(RawCaptureTable {
            pointer: None,
            regex: Some("\\nheart-beat:([0-9]+),".into()),
            scope: None,
        });
        let c = connected.get_mut();
        c.count = None;
        c.capture = Some([(interval.clone(), Spanned::new(span.clone(), from))].into());
        c.lapse = Some(at(&format!("{}ms", 2 * cy)));
        c.lapse_ms = Some(Spanned::new(
            span.clone(),
            vec![interval.clone(), interval.clone()],
        ));
        // Any frame of the server's (a reply too) re-arms it.
        let mut any = rule(&span, RawMatch::One(matching("^")), "", true);
        let a = any.get_mut();
        a.count = None;
        a.lapse = Some(at(&format!("{}ms", 2 * cy)));
        a.lapse_ms = Some(Spanned::new(span.clone(), vec![interval.clone(), interval]));
        raw.on_message.extend([connected, any]);
    }
}

/// A header value as a template: its literal text escaped as STOMP 1.2 wants, its `${…}` and
/// `{{…}}` substitutions left whole (their values are not escaped when rendered).
fn escaped(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while !rest.is_empty() {
        let next = [rest.find("${"), rest.find("{{")].into_iter().flatten().min();
        let Some(at) = next else {
            out.push_str(&escape(rest));
            break;
        };
        out.push_str(&escape(&rest[..at]));
        let close = if rest[at..].starts_with("${") { "}" } else { "}}" };
        let end = rest[at..]
            .find(close)
            .map_or(rest.len(), |e| at + e + close.len());
        out.push_str(&rest[at..end]);
        rest = &rest[end..];
    }
    out
}

/// The CONNECT frame (its header values are not escaped: STOMP 1.2 leaves CONNECT's alone).
fn connect_frame(table: &RawStomp, cx: u64, cy: u64) -> String {
    let host = table.host.as_ref().map_or("/", |h| h.get_ref().as_str());
    let mut frame = format!("CONNECT\naccept-version:1.2\nhost:{host}\n");
    if let Some(login) = &table.login {
        frame.push_str(&format!("login:{}\n", login.get_ref()));
    }
    if let Some(passcode) = &table.passcode {
        frame.push_str(&format!("passcode:{}\n", passcode.get_ref()));
    }
    frame.push_str(&format!("heart-beat:{cx},{cy}\n\n\0"));
    frame
}
