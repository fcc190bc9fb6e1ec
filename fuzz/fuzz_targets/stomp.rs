//! `stomp`: STOMP frames on both sides.
//!
//! The input is a message. The frame reader (`units::stomp::read`) must never panic; a frame
//! it reads has a command of capitals and a body that is a part of the message; a message of
//! EOLs alone is a heart-beat. The built-in target's session (`server::stomp::Stomp`) must
//! never panic, and everything it answers must read back as a frame: a RECEIPT carrying the
//! frame's receipt header, CONNECTED, MESSAGE or ERROR (and an ERROR ends the session). The
//! preset's reading of the message (`json_body`) is its frame's body, or nothing.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wsstorm::scenario::{Plan, parse};
use wsstorm::server::stomp::Stomp;
use wsstorm::units::stomp::{Read, read};

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let toml = "name = \"f\"\ntarget = \"ws://127.0.0.1:1\"\nduration = \"1s\"\n[connect]\nprotocol = \"stomp\"\n[[phases]]\nclients = 1\n[[steps]]\npublish = { destination = \"/q\" }\n";
        parse(std::path::Path::new("f.toml"), toml, &Default::default(), &|_| None).expect("a valid scenario")
    })
}

fn frame_of(text: &str) -> wsstorm::units::stomp::Frame<'_> {
    match read(text) {
        Ok(Read::Frame(f)) => f,
        other => panic!("the target answered {text:?}, which reads as {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read_back = read(text);
    match &read_back {
        Ok(Read::Frame(f)) => {
            assert!(!f.command.is_empty() && f.command.bytes().all(|b| b.is_ascii_uppercase()), "{f:?}");
            let start = f.body.as_ptr() as usize - text.as_ptr() as usize;
            assert!(start + f.body.len() <= text.len(), "{f:?}");
        }
        Ok(Read::HeartBeat) => assert!(text.chars().all(|c| c == '\n' || c == '\r'), "{text:?}"),
        Err(why) => assert!(!why.to_string().is_empty()),
    }
    let mut session = Stomp::new(1);
    let answer = session.answer(text, 1000);
    for sent in answer.now.iter().chain(answer.receipt.iter()) {
        let f = frame_of(sent);
        assert!(
            ["RECEIPT", "CONNECTED", "MESSAGE", "ERROR"].contains(&f.command),
            "{text:?} -> {sent:?}"
        );
        if f.command == "ERROR" {
            assert!(answer.close, "{text:?}: an ERROR ends the session");
        }
    }
    if let (Some(receipt), Ok(Read::Frame(f))) = (&answer.receipt, &read_back) {
        assert_eq!(frame_of(receipt).header("receipt-id"), f.header("receipt"), "{text:?}");
    }
    let body = plan().connect.json_body(text);
    match &read_back {
        Ok(Read::Frame(f)) => assert_eq!(body, f.body),
        _ => assert_eq!(body, ""),
    }
});
