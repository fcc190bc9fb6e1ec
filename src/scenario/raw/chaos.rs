//! `[[chaos]]` as written: client-side drops, the proxy's network faults and `exec` commands,
//! each entry with the keys of its kind (validation checks which).

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::Text;
use crate::scenario::plan::Direction;

/// A number (count) or a string ("50%").
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Amount")]
pub enum RawAmount {
    Count(u64),
    Text(String),
}

/// A number or a string ("64KiB", "50%").
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "NumberOrText")]
pub enum RawNumberOrText {
    Number(f64),
    Text(String),
}

/// A command as one string (split like a shell would, without running one) or as a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Command")]
pub enum RawCommand {
    Line(String),
    Argv(Vec<String>),
}

/// One [[chaos]] entry: exactly one of `drop` (client side), `network` (a proxy fault) or
/// `exec` (a command), with the keys that kind takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Chaos")]
pub struct RawChaos {
    #[schemars(with = "Option<String>")]
    pub at: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub every: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub from: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub until: Option<Text>,
    #[serde(rename = "for")]
    #[schemars(with = "Option<String>")]
    pub for_: Option<Text>,
    // Client side.
    #[schemars(with = "Option<RawAmount>")]
    pub drop: Option<Spanned<RawAmount>>,
    #[schemars(with = "Option<RawHow>")]
    pub how: Option<Spanned<RawHow>>,
    #[schemars(with = "Option<u64>")]
    pub code: Option<Spanned<u64>>,
    // Network side.
    #[schemars(with = "Option<RawNetwork>")]
    pub network: Option<Spanned<RawNetwork>>,
    #[schemars(with = "Option<Direction>")]
    pub direction: Option<Spanned<Direction>>,
    #[schemars(with = "Option<RawNumberOrText>")]
    pub toxicity: Option<Spanned<RawNumberOrText>>,
    #[schemars(with = "Option<String>")]
    pub latency: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub rate: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub delay: Option<Text>,
    #[schemars(with = "Option<u64>")]
    pub average_size: Option<Spanned<u64>>,
    #[schemars(with = "Option<u64>")]
    pub size_variation: Option<Spanned<u64>>,
    #[schemars(with = "Option<RawNumberOrText>")]
    pub bytes: Option<Spanned<RawNumberOrText>>,
    // Server side.
    #[schemars(with = "Option<RawCommand>")]
    pub exec: Option<Spanned<RawCommand>>,
    #[schemars(with = "Option<bool>")]
    pub shell: Option<Spanned<bool>>,
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Text>,
}

/// How chaos drops a client's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "How")]
pub enum RawHow {
    /// A TCP reset.
    Reset,
    /// A close frame with `code` (1000 unless given).
    Close,
    /// Stop reading and answering pings (half-open).
    Silent,
    /// Keep working but drop pongs.
    NoPong,
}

/// The network faults of the built-in proxy (Toxiproxy's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Network")]
pub enum RawNetwork {
    Latency,
    Bandwidth,
    Blackhole,
    Refuse,
    Reset,
    SlowClose,
    Slicer,
    LimitData,
}

impl RawNetwork {
    pub fn name(self) -> &'static str {
        match self {
            RawNetwork::Latency => "latency",
            RawNetwork::Bandwidth => "bandwidth",
            RawNetwork::Blackhole => "blackhole",
            RawNetwork::Refuse => "refuse",
            RawNetwork::Reset => "reset",
            RawNetwork::SlowClose => "slow_close",
            RawNetwork::Slicer => "slicer",
            RawNetwork::LimitData => "limit_data",
        }
    }
}
