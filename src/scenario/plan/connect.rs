//! Where clients connect and how: the target, the upgrade request (headers, subprotocols),
//! limits on what a server may send, the heartbeat, correlation of replies and what is read
//! from pushes. Everything here is parsed: the swarm never parses a URL or a header again.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};

use super::embedded::Behaviour;
use crate::scenario::check::{Check, IdFinder};
use crate::scenario::pointer::JsonPointer;
use crate::scenario::template::Template;

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Start the built-in target in-process on 127.0.0.1:0.
    Embedded(Behaviour),
    /// A ws:// or wss:// URL.
    Url(TargetUrl),
}

/// A target URL, resolved (environment values and secrets put in) and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetUrl {
    /// May hold environment values and secrets: shown only through `crate::redact`.
    pub uri: Uri,
    /// host:port to open TCP connections to (IPv6 hosts in brackets).
    pub authority: String,
    /// The host, for TLS's server name.
    pub host: String,
}

impl TargetUrl {
    /// Parses a ws:// or wss:// URL with a host; an error says what is wrong after the URL,
    /// which the caller shows as it chooses (as written, so that no value put into it is
    /// printed).
    pub fn parse(text: &str) -> Result<TargetUrl, String> {
        const EXPECTED: &str = "expected \"embedded\" or a URL such as \"ws://127.0.0.1:9001/ws\"";
        let uri: Uri = text.parse().map_err(|_| format!("is not a URL: {EXPECTED}"))?;
        let default_port = match uri.scheme_str() {
            Some("ws") => 80,
            Some("wss") => 443,
            _ => return Err(format!("does not start with ws:// or wss://: {EXPECTED}")),
        };
        let host = match uri.host() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => return Err(format!("has no host: {EXPECTED}")),
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(TargetUrl { uri, authority, host })
    }

    pub fn secure(&self) -> bool {
        self.uri.scheme_str() == Some("wss")
    }
}

#[derive(Debug, Clone)]
pub struct Connect {
    /// The target URL when each client's differs (it takes `{{feed.…}}` values); the
    /// authority is the same for all.
    pub url: Option<Template>,
    pub headers: Vec<(HeaderName, Template)>,
    /// The subprotocols offered, in order: templates (a token from the environment, a secret,
    /// a feed column, as browsers pass tokens in `Sec-WebSocket-Protocol`).
    pub subprotocols: Vec<Template>,
    /// The `Sec-WebSocket-Protocol` header value when every subprotocol is the same for every
    /// client (rendered once); None when one takes a per-client value, or none is offered.
    pub offer: Option<HeaderValue>,
    /// The subprotocol the server must choose: an index into `subprotocols`.
    pub subprotocol: Option<usize>,
    pub timeout: Duration,
    pub read_buffer: usize,
    /// The largest message and frame a server may send.
    pub max_message: usize,
    pub max_frame: usize,
    pub heartbeat: Option<Heartbeat>,
    /// Local addresses clients connect from, in turn (empty: the system's choice).
    pub source_addrs: Vec<std::net::IpAddr>,
    /// At most this many new connection attempts per second, over all clients.
    pub max_rate: Option<f64>,
    /// `compression = "deflate"`: permessage-deflate offered on every upgrade.
    pub deflate: Option<super::Deflate>,
    /// JSON pointers read the JSON after this prefix (matched at the message's start).
    pub json_after: Option<regex::Regex>,
    /// Messages are STOMP frames: JSON pointers read a frame's body (`protocol = "stomp"`).
    pub stomp: bool,
}

impl Connect {
    /// The part of a message that JSON pointers read: after the `json_after` prefix (the whole
    /// message without one, or when the prefix is not there); a STOMP frame's body, as its
    /// content-length has it (nothing for a heart-beat or a malformed frame).
    pub fn json_body<'a>(&self, text: &'a str) -> &'a str {
        if self.stomp {
            return match crate::units::stomp::read(text) {
                Ok(crate::units::stomp::Read::Frame(frame)) => frame.body,
                _ => "",
            };
        }
        match self.json_after.as_ref().and_then(|re| re.find(text)) {
            Some(m) if m.start() == 0 => &text[m.end()..],
            _ => text,
        }
    }
}

/// WebSocket ping/pong from the client; a missed pong is a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub every: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Correlation {
    pub request_id: IdFinder,
    pub timeout: Duration,
    /// At most this many requests of one connection wait for their reply at once; a request
    /// beyond it is not sent (counted in `capped`), so a server that never answers costs a
    /// bounded table whatever the timeout and the rate.
    pub max_in_flight: u32,
    /// A message with an id is a reply only when one of these lists of tests holds whole
    /// (empty: every message with an id is).
    pub reply_if_any: Vec<Vec<Check>>,
}

/// What to read from server pushes (messages that are not correlated replies).
#[derive(Debug, Clone, Default)]
pub struct Pushes {
    pub sequence: Option<JsonPointer>,
    pub sent_at: Option<JsonPointer>,
    pub resume_param: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_give_their_authority() {
        let u = TargetUrl::parse("wss://example.test/ws?x=1").unwrap();
        assert_eq!((u.authority.as_str(), u.secure()), ("example.test:443", true));
        let u = TargetUrl::parse("ws://[::1]:9001/").unwrap();
        assert_eq!(u.authority, "[::1]:9001");
        assert!(TargetUrl::parse("http://h/").unwrap_err().contains("ws://"));
        assert!(TargetUrl::parse("ws:///x").is_err());
    }
}
