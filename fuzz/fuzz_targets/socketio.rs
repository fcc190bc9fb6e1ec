//! `socketio`: the Socket.IO packets on both sides.
//!
//! The input is a message. The built-in target's packet parser (`server::socketio::answer`)
//! must never panic, and what it answers must be a packet: a namespace connect (`40…{`), an
//! acknowledgement carrying the event's ack id (`43…`), or the event itself (`42…`). The
//! client side's reading of it with the preset's `json_after` must give a suffix of the
//! message, and the ack id the correlation finds must be the digits after `43` and the
//! namespace.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wsstorm::scenario::pointer::{Found, FoundId};
use wsstorm::scenario::{Plan, parse};

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let toml = "name = \"f\"\ntarget = \"ws://127.0.0.1:1\"\nduration = \"1s\"\n[connect]\nprotocol = \"socketio\"\n[[phases]]\nclients = 1\n[[steps]]\nemit = [\"a\"]\nack = true\n";
        parse(std::path::Path::new("f.toml"), toml, &Default::default(), &|_| None).expect("a valid scenario")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(reply) = wsstorm::server::socketio::answer(text, 7) {
        assert!(
            reply.starts_with("40") || reply.starts_with("42") || reply.starts_with("43"),
            "{text:?} -> {reply:?}"
        );
        if reply.starts_with("43") {
            // The ack carries the event's namespace and ack id: `42/chat,17[…]` -> `43/chat,17`.
            let packet = text.strip_prefix("42").expect("an ack answers an event");
            let ns_end = if packet.starts_with('/') { packet.find(',').map_or(0, |i| i + 1) } else { 0 };
            let digits = packet[ns_end..].chars().take_while(char::is_ascii_digit).count();
            let head = &packet[..ns_end + digits];
            assert!(digits > 0 && reply[2..].starts_with(head), "{text:?} -> {reply:?}");
        }
    }
    let plan = plan();
    let body = plan.connect.json_body(text);
    assert!(text.ends_with(body), "{text:?} -> {body:?}");
    let correlation = plan.correlation.as_ref().expect("the preset correlates acks");
    if let Found::One(FoundId::Text(id)) = correlation.request_id.find_all(text) {
        assert!(text.starts_with("43") && id.chars().all(|c| c.is_ascii_digit()), "{text:?} -> {id:?}");
    }
});
