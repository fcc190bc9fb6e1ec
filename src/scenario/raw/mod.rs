//! The scenario file as written: serde types that mirror the TOML, with spans kept on every
//! value that validation may reject. Nothing here is trusted; `validate` turns it into a `Plan`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::feed::Mode;
use super::plan::{Compression, Protocol, Strategy};
use crate::units::duration;

mod chaos;
mod steps;
mod text;

pub use chaos::*;
pub use steps::*;
pub use text::Text;

/// A wsstorm scenario file (TOML): what the swarm of clients does, against which target, for
/// how long, with which chaos and thresholds. `wsstorm validate FILE` checks one and prints the
/// resolved plan; see the README for every key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wsstorm scenario")]
#[schemars(rename = "Scenario")]
pub struct RawScenario {
    #[schemars(with = "String")]
    pub name: Text,
    #[schemars(with = "String")]
    pub target: Text,
    #[schemars(with = "Option<String>")]
    pub duration: Option<Text>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub connect: RawConnect,
    #[schemars(with = "Option<RawCorrelation>")]
    pub correlation: Option<Spanned<RawCorrelation>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawPhase>")]
    pub phases: Vec<Spanned<RawPhase>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Vec<Spanned<RawStep>>,
    /// Steps run once per connection, before the loop (e.g. a login and its reply).
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub setup: Vec<Spanned<RawStep>>,
    /// Rules for server messages that are not replies: when `match` holds, capture, count,
    /// answer (`send`) or `close`. Every rule that matches applies, in order.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub on_message: Vec<Spanned<RawRule>>,
    /// Messages sent on a timer beside the step loop, once the setup is done (an application
    /// heartbeat): `every = "30s"` and a `send` (with `expect`, `checks`, `capture`, `name` as
    /// a step). They never hold up the loop.
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub every: Vec<Spanned<RawStep>>,
    /// Kinds of client, each with its own setup and steps: every client takes one flow, by
    /// weight, with exact shares (instead of the top-level setup and steps).
    #[serde(default)]
    #[schemars(with = "Vec<RawFlow>")]
    pub flows: Vec<Spanned<RawFlow>>,
    /// Several connections per client, each with its path (or URL on the target's host), its
    /// own setup, steps and reconnect policy: a client holds them all (instead of the top-level
    /// setup and steps).
    #[serde(default)]
    #[schemars(with = "Vec<RawSocket>")]
    pub sockets: Vec<Spanned<RawSocket>>,
    pub reconnect: Option<RawReconnect>,
    pub pushes: Option<RawPushes>,
    #[serde(default)]
    #[schemars(with = "Vec<RawChaos>")]
    pub chaos: Vec<Spanned<RawChaos>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<RawThreshold>>")]
    pub thresholds: BTreeMap<String, Spanned<Vec<Spanned<RawThreshold>>>>,
    pub embedded: Option<RawEmbedded>,
    pub report: Option<RawReport>,
    /// What "recovered" means after a chaos action (rtt back within its limit).
    pub recovery: Option<RawRecovery>,
    /// An open rate: each client starts its [[steps]] loop on a schedule, whatever its replies
    /// do, and latency is also timed from when each request was due (`rtt_corrected`).
    pub pacing: Option<RawPacing>,
    /// TLS for wss:// targets.
    #[schemars(with = "Option<RawTls>")]
    pub tls: Option<Spanned<RawTls>>,
    /// A CSV file with a row for each client, its columns used as `{{feed.COLUMN}}`.
    #[schemars(with = "Option<RawFeed>")]
    pub feed: Option<Spanned<RawFeed>>,
    /// Values used in templates as `${secret:NAME}`: like environment variables, they never
    /// appear in any output (logs, summary, reports), only in what is sent.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// `[feed]`: `file` (CSV with a header row, relative to the scenario) and `mode`:
/// "sequential" (client k gets row k mod rows, the default), "random" (a fixed pick per
/// client) or "unique" (client k gets row k; more clients than rows is an error).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Feed")]
pub struct RawFeed {
    #[schemars(with = "String")]
    pub file: Text,
    #[schemars(with = "Option<Mode>")]
    pub mode: Option<Spanned<Mode>>,
    /// Columns whose values are secrets (tokens, passwords): masked in every output, as
    /// `${secret:…}` values are. Other columns are shown where they appear (user names).
    #[schemars(with = "Option<Vec<String>>")]
    pub secret: Option<Spanned<Vec<String>>>,
}

/// TLS for wss:// targets: verified against the system's roots unless `ca_file` names the CA
/// (PEM); `client_cert` and `client_key` (PEM) for mutual TLS; `insecure = true` skips the
/// verification (the summary warns). Paths are relative to the scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tls")]
pub struct RawTls {
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub client_cert: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub client_key: Option<Text>,
    pub insecure: Option<bool>,
}

/// The open-rate schedule of the step loop: `rate` per client, or `total_rate` spread over
/// the scenario's peak clients. Exactly one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Pacing")]
pub struct RawPacing {
    /// Loops per client: "5/s", "30/m".
    #[schemars(with = "Option<String>")]
    pub rate: Option<Text>,
    /// Loops over all clients: "1000/s" (each client gets its share of the peak count).
    #[schemars(with = "Option<String>")]
    pub total_rate: Option<Text>,
}

/// After each chaos action, rtt is "back" when a one-second p99 is at or under
/// `rtt_factor` × its value before (default 2.0), or that value + `rtt_margin` (default "5ms"),
/// whichever is larger.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Recovery")]
pub struct RawRecovery {
    #[schemars(with = "Option<f64>")]
    pub rtt_factor: Option<Spanned<f64>>,
    #[schemars(with = "Option<String>")]
    pub rtt_margin: Option<Text>,
}

/// What the results directory holds besides the standard files.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Report")]
pub struct RawReport {
    /// requests.csv with one row per request outcome: "all", "errors" or "sample:0.01".
    #[schemars(with = "Option<String>")]
    pub requests: Option<Text>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Connect")]
pub struct RawConnect {
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Text>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub subprotocols: Vec<Text>,
    /// The subprotocol the server must choose (one of `subprotocols`); a connection that
    /// negotiates another, or none, fails with cause "subprotocol".
    #[schemars(with = "Option<String>")]
    pub subprotocol: Option<Text>,
    /// JSON pointers (checks, captures, rules, ids) read the JSON after this prefix, a regular
    /// expression matched at the start of a message: Socket.IO's `42/chat,17["event",…]`.
    #[schemars(with = "Option<String>")]
    pub json_after: Option<Text>,
    /// An application protocol whose preset the scenario takes: "jsonrpc" (JSON-RPC 2.0) or
    /// "socketio" (Socket.IO v5 over Engine.IO v4). `wsstorm validate` prints what it expands
    /// to.
    #[schemars(with = "Option<Protocol>")]
    pub protocol: Option<Spanned<Protocol>>,
    /// With `protocol = "socketio"`: the namespace to connect to ("/chat"; "/" by default)
    /// and the auth payload sent with the connect packet (a JSON template).
    #[schemars(with = "Option<RawSocketio>")]
    pub socketio: Option<Spanned<RawSocketio>>,
    /// With `protocol = "graphql-ws"`: the `connection_init` payload (a JSON template: a
    /// token).
    #[schemars(with = "Option<String>")]
    pub graphql_init: Option<Text>,
    /// With `protocol = "stomp"`: the CONNECT frame's host, login and passcode (templates: a
    /// secret), the heart-beats offered, and the subscriptions made at every connect.
    #[schemars(with = "Option<RawStomp>")]
    pub stomp: Option<Spanned<RawStomp>>,
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Text>,
    /// Bytes of read buffer per connection (tungstenite's default is 128 KiB; ours is small).
    #[schemars(with = "Option<u64>")]
    pub read_buffer: Option<Spanned<u64>>,
    /// The largest message a server may send ("4MiB", the default); a larger one ends the
    /// connection with cause message_too_big before it is buffered.
    #[schemars(with = "Option<String>")]
    pub max_message: Option<Text>,
    /// The largest frame ("4MiB", the default).
    #[schemars(with = "Option<String>")]
    pub max_frame: Option<Text>,
    #[schemars(with = "Option<RawHeartbeat>")]
    pub heartbeat: Option<Spanned<RawHeartbeat>>,
    /// Local addresses to connect from, taken in turn by the clients (client k uses the k-th,
    /// modulo their number), so that one source/destination pair's ~28 000 ephemeral ports are
    /// not the ceiling: an address, an IPv4 range ("127.0.0.2-127.0.0.9") or CIDR block
    /// ("127.0.0.0/28"), or a list of them.
    #[schemars(with = "Option<RawAddrs>")]
    pub source_addrs: Option<Spanned<RawAddrs>>,
    /// At most this many new connection attempts per second, over all clients (first
    /// connects and reconnects): "500/s". Attempts beyond it wait their turn.
    #[schemars(with = "Option<String>")]
    pub max_rate: Option<Text>,
    /// "deflate": offer permessage-deflate (RFC 7692) on every upgrade; the summary says how
    /// many connections negotiated it, and their bytes before and after compression.
    #[schemars(with = "Option<Compression>")]
    pub compression: Option<Spanned<Compression>>,
    /// With compression: the largest window the client compresses with, 2^N bytes (8 to 15).
    #[schemars(with = "Option<u64>", range(min = 8, max = 15))]
    pub client_max_window_bits: Option<Spanned<u64>>,
    /// With compression: offer client_no_context_takeover and server_no_context_takeover
    /// (each message compressed on its own, both ways).
    #[schemars(with = "Option<bool>")]
    pub no_context_takeover: Option<Spanned<bool>>,
}

/// `[connect.socketio]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Socketio")]
pub struct RawSocketio {
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub auth: Option<Text>,
}

/// `[connect.stomp]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Stomp")]
pub struct RawStomp {
    /// The virtual host ("/" unless given).
    #[schemars(with = "Option<String>")]
    pub host: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub login: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub passcode: Option<Text>,
    /// STOMP's `heart-beat`, [cx, cy] in milliseconds: the client sends an EOL every cx, and
    /// wants the server's at least every cy (0: none). [10000, 10000] unless given.
    #[schemars(with = "Option<[u64; 2]>")]
    pub heart_beat: Option<Spanned<[u64; 2]>>,
    /// SUBSCRIBE frames sent (each with a receipt awaited) after CONNECTED: `{ id, destination
    /// }`; the MESSAGE frames of each are counted in `stomp_messages_ID`.
    #[serde(default)]
    #[schemars(with = "Vec<RawStompSubscription>")]
    pub subscribe: Vec<Spanned<RawStompSubscription>>,
}

/// A subscription of `[connect.stomp]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "StompSubscription")]
pub struct RawStompSubscription {
    pub id: String,
    #[schemars(with = "String")]
    pub destination: Text,
}

/// One address, range or block, or a list of them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Addresses")]
pub enum RawAddrs {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Heartbeat")]
pub struct RawHeartbeat {
    #[schemars(with = "String")]
    pub every: Text,
    #[schemars(with = "String")]
    pub timeout: Text,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Reconnect")]
pub struct RawReconnect {
    pub strategy: Option<Strategy>,
    #[schemars(with = "Option<String>")]
    pub initial: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub max: Option<Text>,
    #[schemars(with = "Option<f64>")]
    pub multiplier: Option<Spanned<f64>>,
    #[schemars(with = "Option<RawJitter>")]
    pub jitter: Option<Spanned<RawJitter>>,
    #[schemars(with = "Option<u64>")]
    pub max_attempts: Option<Spanned<u64>>,
    pub replay_in_flight: Option<bool>,
    /// Rules by cause, `[[reconnect.on]]`: the first that names a cause applies to it.
    #[serde(default)]
    #[schemars(with = "Vec<RawReconnectOn>")]
    pub on: Vec<Spanned<RawReconnectOn>>,
}

/// `[[flows]]`: a kind of client.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Flow")]
pub struct RawFlow {
    #[schemars(with = "String")]
    pub name: Text,
    /// Its share of the clients (default 1): weights 3 and 1 give 3 clients in 4 and 1 in 4.
    #[schemars(with = "Option<u64>")]
    pub weight: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub setup: Vec<Spanned<RawStep>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Vec<Spanned<RawStep>>,
}

/// `[[sockets]]`: one of a client's connections.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Socket")]
pub struct RawSocket {
    #[schemars(with = "String")]
    pub name: Text,
    /// The path (and query) on the target: "/chat".
    #[schemars(with = "Option<String>")]
    pub path: Option<Text>,
    /// Or a whole URL, on the target's host and port.
    #[schemars(with = "Option<String>")]
    pub url: Option<Text>,
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub setup: Vec<Spanned<RawStep>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Vec<Spanned<RawStep>>,
    /// Its own reconnect policy (default: the scenario's [reconnect]).
    pub reconnect: Option<RawReconnect>,
}

/// `[[reconnect.on]]`: after a drop or a failed attempt with one of `causes` (as the summary
/// names them, such as "close_1000", "http_401", "http_5xx"), exactly one of: `action =
/// "stop"` (the client stops), `action = "backoff"` (the strategy), `delay = "5s"`, or
/// `retry_after = true` (the refusal's Retry-After, else the strategy).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReconnectOn")]
pub struct RawReconnectOn {
    #[schemars(with = "Vec<String>")]
    pub causes: Vec<Text>,
    pub action: Option<RawReconnectAction>,
    #[schemars(with = "Option<String>")]
    pub delay: Option<Text>,
    pub retry_after: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "ReconnectAction")]
pub enum RawReconnectAction {
    Stop,
    Backoff,
    /// Connect again at once: the setup's HTTP steps run first (a fresh token after a 401).
    Setup,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Pushes")]
pub struct RawPushes {
    /// JSON pointer to a sequence number in server pushes.
    #[schemars(with = "Option<String>")]
    pub sequence: Option<Text>,
    /// JSON pointer to the push's send time (Unix µs) for push latency.
    #[schemars(with = "Option<String>")]
    pub sent_at: Option<Text>,
    /// Query parameter that tells the server the last sequence seen, added on reconnect.
    #[schemars(with = "Option<String>")]
    pub resume_param: Option<Text>,
}

/// A threshold: its expression, or a table with `abort_on_fail` (k6's abortOnFail) and a
/// `grace` before it is checked (k6's delayAbortEval).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Threshold")]
pub enum RawThreshold {
    Expression(String),
    Table(RawThresholdTable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ThresholdTable")]
pub struct RawThresholdTable {
    pub threshold: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    pub grace: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Correlation")]
pub struct RawCorrelation {
    /// JSON pointer to the id in each reply ("/request_id").
    #[schemars(with = "Option<String>")]
    pub request_id: Option<Text>,
    /// For text protocols that are not JSON: a regular expression whose first capture group
    /// is the id ("^RESP (\\S+)"). Exactly one of the two.
    #[schemars(with = "Option<String>")]
    pub request_id_regex: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Text>,
    /// At most this many requests of one connection waiting for their reply (default 1000);
    /// a request beyond it is not sent, and counted in `capped`.
    #[schemars(with = "Option<u64>")]
    pub max_in_flight: Option<Spanned<u64>>,
    /// A message that carries an id is a reply only when one of these holds (each a test, or
    /// a list of tests that must all hold); another is no reply (a request from the server):
    /// it goes through the rules as a push. Without it, every message with an id is a reply.
    #[schemars(with = "Option<Vec<RawMatch>>")]
    pub reply_if_any: Option<Spanned<Vec<Spanned<RawMatch>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Phase")]
pub struct RawPhase {
    #[schemars(with = "u64")]
    pub clients: Spanned<u64>,
    #[schemars(with = "Option<String>")]
    pub ramp: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub hold: Option<Text>,
}

/// Behaviour of the built-in target when `target = "embedded"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Embedded")]
pub struct RawEmbedded {
    #[schemars(with = "Option<String>")]
    pub latency: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Text>,
    #[schemars(with = "Option<u64>")]
    pub no_reply_every: Option<Spanned<u64>>,
    #[schemars(with = "Option<f64>")]
    pub no_reply_fraction: Option<Spanned<f64>>,
    #[schemars(with = "Option<String>")]
    pub close_every: Option<Text>,
    #[schemars(with = "Option<Vec<String>>")]
    pub close_at: Option<Vec<Text>>,
    #[schemars(with = "Option<u64>")]
    pub close_code: Option<Spanned<u64>>,
    pub close_by_reset: Option<bool>,
    #[schemars(with = "Option<String>")]
    pub refuse_for: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub require_token: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub push_every: Option<Text>,
    pub push_skip: Option<Vec<u64>>,
    /// Answer in batches of this many replies: `{"type":"batch","messages":[…]}` (not with
    /// "jsonrpc" or "socketio"; with "graphql-ws", the `next` messages a subscribe gets).
    #[schemars(with = "Option<u32>")]
    pub batch: Option<Spanned<u32>>,
    /// Speak this protocol: "jsonrpc" answers JSON-RPC 2.0 calls (methods `echo`, `fail`,
    /// `eth_subscribe`, `eth_unsubscribe`; any other is -32601), and sends each subscription
    /// a notification every `push_every`; "socketio" speaks Socket.IO v5 (the open packet,
    /// any namespace, events acknowledged with their arguments or sent back, the Engine.IO
    /// heartbeat every `ping_every`).
    pub protocol: Option<Protocol>,
    #[schemars(with = "Option<String>")]
    pub ping_every: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub ping_timeout: Option<Text>,
    /// "deflate": accept a client's permessage-deflate offer (granting what it asks).
    pub compression: Option<Compression>,
}

/// How a reconnect's wait is randomised: "none", "full", "equal", or a duration added at
/// random ("1s": the "up to 1 s of jitter" many clients add).
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(rename = "Jitter")]
#[serde(untagged)]
pub enum RawJitter {
    Kind(JitterKind),
    /// A duration such as "1s", added at random (0 up to it).
    Added(#[schemars(with = "String")] std::time::Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JitterKind {
    None,
    /// Uniform in [0, delay].
    Full,
    /// delay/2 + uniform in [0, delay/2].
    Equal,
}

impl<'de> Deserialize<'de> for RawJitter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "none" => RawJitter::Kind(JitterKind::None),
            "full" => RawJitter::Kind(JitterKind::Full),
            "equal" => RawJitter::Kind(JitterKind::Equal),
            other => match duration::parse(other) {
                Ok(d) if !d.is_zero() && d <= duration::MAX => RawJitter::Added(d),
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "unknown jitter {other:?}: expected one of \"none\", \"full\", \"equal\" or a duration added at random such as \"1s\""
                    )));
                }
            },
        })
    }
}
