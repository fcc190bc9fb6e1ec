//! The scenario file as written: serde types that mirror the TOML, with spans kept on every
//! value that validation may reject. Nothing here is trusted; `validate` turns it into a `Plan`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Text,
    pub target: Text,
    pub duration: Option<Text>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub connect: RawConnect,
    pub correlation: Option<Spanned<RawCorrelation>>,
    #[serde(default)]
    pub phases: Vec<Spanned<RawPhase>>,
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
    /// Steps run once per connection, before the loop (e.g. a login and its reply).
    #[serde(default)]
    pub setup: Vec<Spanned<RawStep>>,
    pub reconnect: Option<RawReconnect>,
    pub pushes: Option<RawPushes>,
    #[serde(default)]
    pub chaos: Vec<Spanned<RawChaos>>,
    #[serde(default)]
    pub thresholds: BTreeMap<String, Spanned<Vec<Spanned<RawThreshold>>>>,
    pub embedded: Option<RawEmbedded>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnect {
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    #[serde(default)]
    pub subprotocols: Vec<Text>,
    pub timeout: Option<Text>,
    /// Bytes of read buffer per connection (tungstenite's default is 128 KiB; ours is small).
    pub read_buffer: Option<Spanned<u64>>,
    pub heartbeat: Option<Spanned<RawHeartbeat>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub every: Text,
    pub timeout: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReconnect {
    pub strategy: Option<Text>,
    pub initial: Option<Text>,
    pub max: Option<Text>,
    pub multiplier: Option<Spanned<f64>>,
    pub jitter: Option<Text>,
    pub max_attempts: Option<Spanned<u64>>,
    pub replay_in_flight: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPushes {
    /// JSON pointer to a sequence number in server pushes.
    pub sequence: Option<Text>,
    /// JSON pointer to the push's send time (Unix µs) for push latency.
    pub sent_at: Option<Text>,
    /// Query parameter that tells the server the last sequence seen, added on reconnect.
    pub resume_param: Option<Text>,
}

/// A number (count) or a string ("50%").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAmount {
    Count(u64),
    Text(String),
}

/// A number or a string ("64KiB", "50%").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawNumberOrText {
    Number(f64),
    Text(String),
}

/// A command as one string (split like a shell would, without running one) or as a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCommand {
    Line(String),
    Argv(Vec<String>),
}

/// One [[chaos]] entry: exactly one of `drop` (client side), `network` (a proxy fault) or
/// `exec` (a command), with the keys that kind takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChaos {
    pub at: Option<Text>,
    pub every: Option<Text>,
    pub from: Option<Text>,
    pub until: Option<Text>,
    #[serde(rename = "for")]
    pub for_: Option<Text>,
    // Client side.
    pub drop: Option<Spanned<RawAmount>>,
    pub how: Option<Text>,
    pub code: Option<Spanned<u64>>,
    // Network side.
    pub network: Option<Text>,
    pub direction: Option<Text>,
    pub toxicity: Option<Spanned<RawNumberOrText>>,
    pub latency: Option<Text>,
    pub jitter: Option<Text>,
    pub rate: Option<Text>,
    pub delay: Option<Text>,
    pub average_size: Option<Spanned<u64>>,
    pub size_variation: Option<Spanned<u64>>,
    pub bytes: Option<Spanned<RawNumberOrText>>,
    // Server side.
    pub exec: Option<Spanned<RawCommand>>,
    pub shell: Option<Spanned<bool>>,
    pub timeout: Option<Text>,
}

/// A threshold: its expression, or a table with `abort_on_fail` (k6's abortOnFail) and a
/// `grace` before it is checked (k6's delayAbortEval).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawThreshold {
    Expression(String),
    Table(RawThresholdTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholdTable {
    pub threshold: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    pub grace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorrelation {
    pub request_id: Text,
    pub timeout: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub clients: Spanned<u64>,
    pub ramp: Option<Text>,
    pub hold: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub send: Option<Text>,
    pub expect: Option<Text>,
    pub wait: Option<bool>,
    pub sleep: Option<Text>,
}

/// Behaviour of the built-in target when `target = "embedded"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbedded {
    pub latency: Option<Text>,
    pub jitter: Option<Text>,
    pub no_reply_every: Option<Spanned<u64>>,
    pub no_reply_fraction: Option<Spanned<f64>>,
    pub close_every: Option<Text>,
    pub close_at: Option<Vec<Text>>,
    pub close_code: Option<Spanned<u64>>,
    pub close_by_reset: Option<bool>,
    pub refuse_for: Option<Text>,
    pub require_token: Option<Text>,
    pub push_every: Option<Text>,
    pub push_skip: Option<Vec<u64>>,
    pub ping_every: Option<Text>,
    pub ping_timeout: Option<Text>,
}
