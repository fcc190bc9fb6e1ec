//! What the built-in target does: echo each request, after an optional delay, or withhold the
//! reply; and, on demand, close every connection on a schedule, refuse upgrades for a while
//! after, require a token, push numbered messages and ping idle connections. Shared by
//! `wsstorm serve` flags and a scenario's `[embedded]` table.

use std::time::Duration;

use super::Protocol;
use crate::units::duration::show;

/// Switchable behaviours of the built-in target. The default echoes everything at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Delay added before each reply.
    pub latency: Duration,
    /// Uniform random extra delay in `0..=jitter` added to `latency`.
    pub jitter: Duration,
    /// Withhold the reply to every Nth message the server receives (deterministic: exactly
    /// `received / N` replies are withheld).
    pub no_reply_every: Option<u64>,
    /// Withhold each reply with this probability (seeded, so runs repeat).
    pub no_reply_fraction: f64,
    /// Seed for jitter and the withheld fraction.
    pub seed: u64,
    /// Close every open connection every this often (first at this time after start; zero is
    /// off).
    pub close_every: Option<Duration>,
    /// Close every open connection at these times after the server started.
    pub close_at: Vec<Duration>,
    /// How those closes happen: a close frame with this code (1012 "service restart" by
    /// default) or, with `close_by_reset`, a TCP reset.
    pub close_code: u16,
    pub close_by_reset: bool,
    /// After each of those closes, answer upgrades with HTTP 503 for this long, as a
    /// restarting server would.
    pub refuse_for: Duration,
    /// Require `Authorization: Bearer <token>` (or `?token=<token>` in the URL) on upgrade;
    /// answer 401 without it.
    pub require_token: Option<String>,
    /// Push a numbered message `{"type":"push","seq":N,"sent_at_us":T}` (T: Unix time in µs)
    /// to every connection this often, the first one this long after the upgrade (seq counts
    /// per connection from 1, or continues at N+1 after `?resume_from=N`; zero is off).
    pub push_every: Option<Duration>,
    /// Sequence numbers the pushes skip (to make gaps on purpose): a skipped number is not
    /// sent and takes its turn, as a lost message would; the next push has the next number.
    pub push_skip: Vec<u64>,
    /// Server-side heartbeat: ping each connection this often and close it (code 1011, or
    /// the connection is dropped) when no pong and no other frame came back within
    /// `ping_timeout` of a ping (zero `ping_every` is off).
    pub ping_every: Option<Duration>,
    pub ping_timeout: Duration,
    /// Answer in batches of this many replies, as one `{"type":"batch","messages":[…]}`
    /// (1: one reply a message).
    pub batch: u32,
    /// Speak this protocol (JSON-RPC 2.0) instead of echoing.
    pub protocol: Option<Protocol>,
    /// Accept a client's permessage-deflate offer (granting what it asks).
    pub compression: Option<super::Compression>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            no_reply_every: None,
            no_reply_fraction: 0.0,
            seed: 1,
            close_every: None,
            close_at: Vec::new(),
            close_code: 1012,
            close_by_reset: false,
            refuse_for: Duration::ZERO,
            require_token: None,
            push_every: None,
            push_skip: Vec::new(),
            ping_every: None,
            ping_timeout: Duration::from_secs(5),
            batch: 1,
            protocol: None,
            compression: None,
        }
    }
}

impl Behaviour {
    /// One line for plans and logs.
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.protocol {
            None => "echo".to_string(),
            Some(Protocol::Jsonrpc) => {
                "JSON-RPC 2.0 (echo, fail, eth_subscribe, eth_unsubscribe; others -32601)".to_string()
            }
            Some(Protocol::GraphqlWs) => {
                "GraphQL over WebSocket (connection_ack, pong, each subscribe answered next… then complete)"
                    .to_string()
            }
            Some(Protocol::Socketio) => {
                "Socket.IO v5 (any namespace; events acknowledged with their arguments, or echoed)"
                    .to_string()
            }
            Some(Protocol::Stomp) => {
                "STOMP 1.2 (CONNECTED, RECEIPTs, each SEND delivered to the connection's subscriptions)"
                    .to_string()
            }
        }];
        if !self.latency.is_zero() || !self.jitter.is_zero() {
            parts.push(format!(
                "latency {} + jitter 0..{}",
                show(self.latency),
                show(self.jitter)
            ));
        }
        if let Some(n) = self.no_reply_every {
            parts.push(format!("no reply to every {n}th message"));
        }
        if self.no_reply_fraction > 0.0 {
            parts.push(format!(
                "no reply to {:.3}% of messages",
                self.no_reply_fraction * 100.0
            ));
        }
        if let Some(every) = self.close_every.filter(|d| !d.is_zero()) {
            parts.push(format!("close all connections every {}", show(every)));
        }
        if !self.close_at.is_empty() {
            let at: Vec<String> = self.close_at.iter().map(|d| show(*d)).collect();
            parts.push(format!("close all connections at {}", at.join(", ")));
        }
        if self.closes() {
            parts.push(if self.close_by_reset {
                "closing by TCP reset".to_string()
            } else {
                format!("closing with code {}", self.close_code)
            });
            if !self.refuse_for.is_zero() {
                parts.push(format!(
                    "then refuse upgrades (503) for {}",
                    show(self.refuse_for)
                ));
            }
        }
        if let Some(c) = self.compression {
            parts.push(format!("compression {} when offered", c.name()));
        }
        if self.require_token.is_some() {
            parts.push("require a token (401 without)".to_string());
        }
        if self.batch > 1 {
            parts.push(format!("answer in batches of {}", self.batch));
        }
        if let Some(every) = self.push_every.filter(|d| !d.is_zero()) {
            let mut push = format!("push every {}", show(every));
            if !self.push_skip.is_empty() {
                let skip: Vec<String> = self.push_skip.iter().map(u64::to_string).collect();
                push.push_str(&format!(" skipping seq {}", skip.join(", ")));
            }
            parts.push(push);
        }
        if let Some(every) = self.ping_every.filter(|d| !d.is_zero())
            && self.protocol == Some(Protocol::Stomp)
        {
            parts.push(format!("heart-beat (an EOL) every {}", show(every)));
        } else if let Some(every) = self.ping_every.filter(|d| !d.is_zero()) {
            parts.push(format!(
                "ping every {}, close after {} without an answer",
                show(every),
                show(self.ping_timeout)
            ));
        }
        parts.join(", ")
    }

    /// How often the server pings: `ping_every`, or Socket.IO's default 25 s heartbeat when it
    /// speaks Socket.IO (its open packet announces it, and clients drop a server that is quiet
    /// longer).
    pub fn ping_interval(&self) -> Option<Duration> {
        match (self.ping_every.filter(|d| !d.is_zero()), self.protocol) {
            (None, Some(Protocol::Socketio)) => Some(Duration::from_secs(25)),
            (every, _) => every,
        }
    }

    /// Why replies in batches (`batch` > 1) cannot go with `protocol`, if they cannot.
    pub fn unbatchable(protocol: Option<Protocol>) -> Option<&'static str> {
        match protocol? {
            Protocol::Jsonrpc => Some(
                "JSON-RPC answers each request on its own (a batch response, an array, answers a batch request, which the preset does not send)",
            ),
            Protocol::Socketio => Some("Socket.IO's packets are not JSON: a batch cannot hold them"),
            Protocol::Stomp => Some("STOMP's frames are not JSON: a batch cannot hold them"),
            _ => None,
        }
    }

    /// Whether connections are closed on a schedule (`close_every` or `close_at`).
    pub fn closes(&self) -> bool {
        self.close_every.is_some_and(|d| !d.is_zero()) || !self.close_at.is_empty()
    }
}
