//! The built-in target's STOMP 1.2 (`--protocol stomp`), the subset the quick start uses:
//! CONNECT (or STOMP) answered CONNECTED, announcing heart-beats at `--ping-every`;
//! SUBSCRIBE and UNSUBSCRIBE; each SEND delivered as a MESSAGE to the connection's own
//! subscriptions to its destination (no broker between connections); a `receipt` header
//! answered with a RECEIPT; DISCONNECT; and ERROR, then the end, for a frame it cannot read.
//! Transactions and acknowledgements are taken and receipted, not kept.

use std::fmt::Write as _;

use crate::units::stomp::{self, Frame, Read, escape};

/// A connection's subscriptions at most: a client cannot grow the server without bound.
const MAX_SUBSCRIPTIONS: usize = 256;
/// The bytes one SEND may fan out to at most (its body times the subscriptions to its
/// destination): past it, an ERROR instead of the copies.
const MAX_FAN_OUT: usize = 16 << 20;

/// One connection's STOMP session.
pub struct Stomp {
    /// (destination, id).
    subscriptions: Vec<(String, String)>,
    session: u64,
    delivered: u64,
}

/// What a client's frame gets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Frames sent at once: CONNECTED, MESSAGEs, ERROR.
    pub now: Vec<String>,
    /// The RECEIPT, when the frame asked for one (the target's latency and withholding apply).
    pub receipt: Option<String>,
    /// The connection ends after these (an ERROR, a DISCONNECT).
    pub close: bool,
}

impl Stomp {
    /// The session of connection `n`.
    pub fn new(n: u64) -> Self {
        Stomp {
            subscriptions: Vec::new(),
            session: n,
            delivered: 0,
        }
    }

    /// Answers one message; `heart_beat_ms` is how often the server sends EOLs (0: never).
    pub fn answer(&mut self, text: &str, heart_beat_ms: u64) -> Answer {
        let frame = match stomp::read(text) {
            Ok(Read::HeartBeat) => return Answer::default(),
            Ok(Read::Frame(frame)) => frame,
            Err(why) => return error(&why.to_string(), None),
        };
        let receipt = frame
            .header("receipt")
            .map(|id| format!("RECEIPT\nreceipt-id:{}\n\n\0", escape(&id)));
        let mut answer = Answer {
            receipt,
            ..Answer::default()
        };
        match frame.command {
            "CONNECT" | "STOMP" => {
                let versions = frame.header("accept-version").unwrap_or_default();
                if !versions.split(',').any(|v| v.trim() == "1.2") {
                    return error(
                        &format!("supported version is 1.2, not {versions:?}"),
                        Some(&frame),
                    );
                }
                answer.now.push(format!(
                    "CONNECTED\nversion:1.2\nheart-beat:{heart_beat_ms},0\nserver:wsstorm\nsession:session-{}\n\n\0",
                    self.session
                ));
            }
            "SUBSCRIBE" => {
                let (Some(id), Some(destination)) = (frame.header("id"), frame.header("destination")) else {
                    return error("SUBSCRIBE needs id and destination headers", Some(&frame));
                };
                if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
                    return error("too many subscriptions", Some(&frame));
                }
                self.subscriptions
                    .push((destination.into_owned(), id.into_owned()));
            }
            "UNSUBSCRIBE" => {
                let Some(id) = frame.header("id") else {
                    return error("UNSUBSCRIBE needs an id header", Some(&frame));
                };
                self.subscriptions.retain(|(_, i)| *i != id);
            }
            "SEND" => {
                let Some(destination) = frame.header("destination") else {
                    return error("SEND needs a destination header", Some(&frame));
                };
                let content_type = frame.header("content-type");
                let copies = self
                    .subscriptions
                    .iter()
                    .filter(|(d, _)| *d == destination)
                    .count();
                if copies.saturating_mul(frame.body.len()) > MAX_FAN_OUT {
                    return error("the SEND's copies to its subscribers exceed 16 MiB", Some(&frame));
                }
                for (_, id) in self.subscriptions.iter().filter(|(d, _)| *d == destination) {
                    self.delivered += 1;
                    let mut message = format!(
                        "MESSAGE\nsubscription:{}\nmessage-id:{}-{}\ndestination:{}\n",
                        escape(id),
                        self.session,
                        self.delivered,
                        escape(&destination)
                    );
                    if let Some(t) = &content_type {
                        let _ = writeln!(message, "content-type:{}", escape(t));
                    }
                    let _ = write!(message, "content-length:{}\n\n{}\0", frame.body.len(), frame.body);
                    answer.now.push(message);
                }
            }
            "DISCONNECT" => answer.close = true,
            "ACK" | "NACK" | "BEGIN" | "COMMIT" | "ABORT" => {}
            other => return error(&format!("unknown command {other}"), Some(&frame)),
        }
        answer
    }
}

/// An ERROR frame (with the receipt-id of the frame it answers), then the end.
fn error(message: &str, frame: Option<&Frame<'_>>) -> Answer {
    let mut text = format!("ERROR\nmessage:{}\n", escape(message));
    if let Some(id) = frame.and_then(|f| f.header("receipt")) {
        let _ = writeln!(text, "receipt-id:{}", escape(&id));
    }
    text.push_str("\n\0");
    Answer {
        now: vec![text],
        receipt: None,
        close: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session() {
        let mut s = Stomp::new(3);
        let a = s.answer(
            "CONNECT\naccept-version:1.1,1.2\nhost:/\nheart-beat:10000,10000\n\n\0",
            500,
        );
        assert_eq!(
            a.now,
            ["CONNECTED\nversion:1.2\nheart-beat:500,0\nserver:wsstorm\nsession:session-3\n\n\0"]
        );
        assert!(!a.close && a.receipt.is_none());
        let a = s.answer("SUBSCRIBE\nid:o\ndestination:/topic/a\\cb\nreceipt:r1\n\n\0", 0);
        assert_eq!(a.receipt.as_deref(), Some("RECEIPT\nreceipt-id:r1\n\n\0"));
        assert!(a.now.is_empty());
        let a = s.answer(
            "SEND\ndestination:/topic/a\\cb\ncontent-type:application/json\nreceipt:7\n\n{\"x\":1}\0",
            0,
        );
        assert_eq!(
            a.now,
            [
                "MESSAGE\nsubscription:o\nmessage-id:3-1\ndestination:/topic/a\\cb\ncontent-type:application/json\ncontent-length:7\n\n{\"x\":1}\0"
            ]
        );
        assert_eq!(a.receipt.as_deref(), Some("RECEIPT\nreceipt-id:7\n\n\0"));
        // Another destination: no subscriber, only the receipt.
        let a = s.answer("SEND\ndestination:/queue/z\nreceipt:8\n\nhi\0", 0);
        assert!(a.now.is_empty() && a.receipt.is_some());
        assert_eq!(s.answer("\n", 0), Answer::default());
        s.answer("UNSUBSCRIBE\nid:o\n\n\0", 0);
        assert!(
            s.answer("SEND\ndestination:/topic/a\\cb\n\nx\0", 0)
                .now
                .is_empty()
        );
        assert!(s.answer("DISCONNECT\nreceipt:9\n\n\0", 0).close);
    }

    #[test]
    fn errors_end_the_session() {
        let mut s = Stomp::new(1);
        for bad in [
            "SEND\ndestination:/a\n\nno nul",
            "CONNECT\naccept-version:1.0\n\n\0",
            "SUBSCRIBE\nid:1\nreceipt:5\n\n\0",
            "FROB\n\n\0",
            "42[\"x\"]",
        ] {
            let a = s.answer(bad, 0);
            assert!(
                a.close && a.now.len() == 1 && a.now[0].starts_with("ERROR\nmessage:"),
                "{bad:?}: {a:?}"
            );
            assert!(matches!(stomp::read(&a.now[0]), Ok(Read::Frame(_))), "{a:?}");
        }
        assert!(s.answer("SUBSCRIBE\nid:1\nreceipt:5\n\n\0", 0).now[0].contains("receipt-id:5\n"));
    }

    proptest::proptest! {
        /// Any text, and any text after a well-formed start: no panic, and every answer
        /// reads back as a frame.
        #[test]
        fn any_message_gets_frames_back(tail in "(?s).{0,80}", head in "(CONNECT|SEND|SUBSCRIBE|RECEIPT|\\n)?(\\n[a-z-]{1,8}:[^\\n]{0,8})*\\n?") {
            for text in [tail.clone(), format!("{head}{tail}"), format!("{head}\n\n{tail}\0")] {
                let mut s = Stomp::new(1);
                let a = s.answer(&text, 10);
                for sent in a.now.iter().chain(a.receipt.iter()) {
                    proptest::prop_assert!(matches!(stomp::read(sent), Ok(Read::Frame(_))), "{text:?} -> {sent:?}");
                }
            }
        }
    }
}
