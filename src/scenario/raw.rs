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
    #[serde(default)]
    pub thresholds: BTreeMap<String, Spanned<Vec<Text>>>,
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
}
