//! Protocol presets. `[connect] protocol = "jsonrpc" | "socketio"` is expanded here, before
//! validation,
//! into the scenario's own primitives: the correlation, the steps' sends, expectations, checks
//! and captures, and `[[on_message]]` rules. What a preset adds is then validated like the
//! rest and shown by `wsstorm validate`; the user's own settings and rules come first.
//!
//! JSON-RPC 2.0 adds:
//! - `[correlation] request_id = "/id"` (unless the scenario's names its own id), and
//!   `reply_if_any`: a reply has a result or an error and no method (a message with a method
//!   and an id is a request from the server, whatever its id);
//! - a `call = { method, params }` step: a request with a numeric id (`{{id_num}}`, from 1:
//!   servers that test the id for truth take 0 for a notification), awaited, and checked for
//!   a `result` and no `error` (an error reply is answered and counted in `check_failures`);
//! - a `notify = { method, params }` step: no id, no reply;
//! - `subscribe = true` on a call (the default for a method ending in `_subscribe`): its
//!   result is captured as `sub_NAME` and a rule (one a name) counts the notifications whose
//!   `/params/subscription` is that value in `notifications_NAME`;
//! - rules that count error replies by code (`jsonrpc_error_CODE`), replies without the
//!   `jsonrpc` member and messages with an id that are no response, neither result nor error
//!   (`jsonrpc_protocol_errors`: a request from the server, an echo server, another protocol),
//!   and notifications (no id) by method (`jsonrpc_notifications_METHOD`).
//!
//! Socket.IO, GraphQL over WebSocket and STOMP: see `socketio`, `graphql` and `stomp`.

mod graphql;
mod jsonrpc;
mod parts;
mod socketio;
mod stomp;

use std::ops::Range;

use super::plan::Protocol;
use super::raw::RawScenario;
pub use parts::Mistake;
use parts::each_step;

/// Expands the scenario's protocol preset (and its step forms) in place.
pub fn expand(raw: &mut RawScenario) -> Result<(), Vec<Mistake>> {
    let protocol = raw.connect.protocol.as_ref().map(|p| (*p.get_ref(), p.span()));
    let mut mistakes = Vec::new();
    let namespace = match socketio::namespace(raw, protocol.as_ref().map(|p| p.0)) {
        Ok(ns) => ns,
        Err(m) => return Err(vec![m]),
    };
    if let Err(m) = stomp::check_table(raw, protocol.as_ref().map(|p| p.0)) {
        return Err(vec![m]);
    }
    if let Err(m) = graphql::check_init(raw, protocol.as_ref().map(|p| p.0)) {
        return Err(vec![m]);
    }
    let mut subscriptions: Vec<(Range<usize>, String)> = Vec::new();
    each_step(raw, &mut |table, step| {
        let span = step.span();
        let s = step.get_mut();
        let rpc = s.call.is_some() || s.notify.is_some();
        let sio = s.emit.is_some() || s.ack.is_some();
        let gql = s.subscribe.is_some();
        let stomp = s.publish.is_some();
        if !rpc && !sio && !gql && !stomp {
            return;
        }
        let found = match protocol {
            Some((Protocol::Jsonrpc, _)) if !sio && !gql && !stomp => jsonrpc::step(s, table),
            Some((Protocol::Socketio, _)) if !rpc && !gql && !stomp => {
                socketio::step(s, table, &namespace).map(|()| None)
            }
            Some((Protocol::GraphqlWs, _)) if !rpc && !sio && !stomp => {
                graphql::step(s, table).map(|()| None)
            }
            Some((Protocol::Stomp, _)) if !rpc && !sio && !gql => stomp::step(s, table).map(|()| None),
            _ if stomp => Err(Mistake {
                span: span.clone(),
                message: format!(
                    "{table}: `publish` is a STOMP step: expected `[connect] protocol = \"stomp\"`"
                ),
            }),
            _ if gql => Err(Mistake {
                span: span.clone(),
                message: format!(
                    "{table}: `subscribe` is a GraphQL step: expected `[connect] protocol = \"graphql-ws\"`"
                ),
            }),
            _ if rpc => Err(Mistake {
                span: span.clone(),
                message: format!(
                    "{table}: `call` and `notify` are JSON-RPC steps: expected `[connect] protocol = \"jsonrpc\"`"
                ),
            }),
            _ => Err(Mistake {
                span: span.clone(),
                message: format!(
                    "{table}: `emit` and `ack` are Socket.IO steps: expected `[connect] protocol = \"socketio\"`"
                ),
            }),
        };
        match found {
            Ok(Some(name)) => subscriptions.push((span, name)),
            Ok(None) => {}
            Err(m) => mistakes.push(m),
        }
    });
    if !mistakes.is_empty() {
        return Err(mistakes);
    }
    match protocol {
        Some((Protocol::Jsonrpc, span)) => jsonrpc::expand(raw, span, &subscriptions),
        Some((Protocol::Socketio, span)) => socketio::expand(raw, span, &namespace),
        Some((Protocol::GraphqlWs, span)) => graphql::expand(raw, span),
        Some((Protocol::Stomp, span)) => stomp::expand(raw, span),
        None => {}
    }
    Ok(())
}
