//! Chaos on the timeline, as the plan holds it: clients dropping their connections, network
//! faults for the built-in proxy (Toxiproxy's toxics, by the names users know), and commands.
//! The proxy, the swarm and the reports read these; nothing here acts.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::duration::show;
use crate::units::share::{mix, picked};

/// A chaos action on the timeline: what it does and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    pub when: ChaosWhen,
    pub action: ChaosAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChaosAction {
    /// Client side: connected clients drop their connections.
    Drop {
        amount: Amount,
        how: ChaosHow,
        /// For `silent` and `no_pong`: how long the client misbehaves before it gives the
        /// connection up itself (None: until the server closes it or the run ends).
        lasts: Option<Duration>,
    },
    /// Network side: a fault in the built-in proxy, for `lasts` (None: until the end; a
    /// `reset` acts once).
    Network { fault: Fault, lasts: Option<Duration> },
    /// Server side: a command run at that time.
    Exec(Exec),
}

/// A command run on the timeline, never through a shell unless asked for, never with
/// anything the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub command: Command,
    /// Killed (with its process group) when it runs longer.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Program and arguments, run directly.
    Direct(Vec<String>),
    /// A script for `sh -c`.
    Shell(String),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Direct(argv) => {
                let quoted: Vec<String> = argv
                    .iter()
                    .map(|a| shlex::try_quote(a).map_or_else(|_| format!("{a:?}"), |q| q.into_owned()))
                    .collect();
                f.write_str(&quoted.join(" "))
            }
            Command::Shell(script) => write!(f, "sh -c {script:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChaosWhen {
    At(Duration),
    Every {
        every: Duration,
        from: Duration,
        until: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Fraction(f64),
    Count(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChaosHow {
    /// TCP reset.
    Reset,
    /// A close frame with this code.
    Close(u16),
    /// Stop reading and answering pings: a half-open client.
    Silent,
    /// Keep going but ignore pings.
    NoPong,
}

impl ChaosHow {
    pub fn name(self) -> &'static str {
        match self {
            ChaosHow::Reset => "reset",
            ChaosHow::Close(_) => "close",
            ChaosHow::Silent => "silent",
            ChaosHow::NoPong => "no_pong",
        }
    }
}

impl ChaosAction {
    /// The short name used in events, reports and connections.csv: the client-side `how`
    /// (reset, close, silent, no_pong), `net_<fault>` or `exec`.
    pub fn name(&self) -> &'static str {
        match self {
            ChaosAction::Drop { how, .. } => how.name(),
            ChaosAction::Network { fault, .. } => match fault.toxic {
                Toxic::Latency { .. } => "net_latency",
                Toxic::Bandwidth { .. } => "net_bandwidth",
                Toxic::Blackhole => "net_blackhole",
                Toxic::Refuse => "net_refuse",
                Toxic::Reset => "net_reset",
                Toxic::SlowClose { .. } => "net_slow_close",
                Toxic::Slicer { .. } => "net_slicer",
                Toxic::LimitData { .. } => "net_limit_data",
            },
            ChaosAction::Exec(_) => "exec",
        }
    }

    fn describe(&self) -> String {
        let lasting =
            |lasts: Option<Duration>| lasts.map(|d| format!(" for {}", show(d))).unwrap_or_default();
        match self {
            ChaosAction::Drop { amount, how, lasts } => {
                let amount = match amount {
                    Amount::Fraction(f) => format!("{}% of the connected clients", f * 100.0),
                    Amount::Count(n) => format!("{n} connected clients"),
                };
                let how = match how {
                    ChaosHow::Close(code) => format!("close {code}"),
                    other => other.name().to_string(),
                };
                format!("drop {amount} by {how}{}", lasting(*lasts))
            }
            ChaosAction::Network { fault, lasts } => {
                let lasts = match (fault.toxic, lasts) {
                    (Toxic::Reset, _) => String::new(),
                    (_, None) => " until the end".to_string(),
                    (_, Some(_)) => lasting(*lasts),
                };
                format!("network {fault}{lasts}")
            }
            ChaosAction::Exec(exec) => format!("exec {} (time limit {})", exec.command, show(exec.timeout)),
        }
    }
}

impl Chaos {
    /// Times (from the run's start) at which this action fires, within `duration`.
    pub fn times(&self, duration: Duration) -> Vec<Duration> {
        match self.when {
            ChaosWhen::At(t) => (t < duration).then_some(t).into_iter().collect(),
            ChaosWhen::Every { every, from, until } => {
                let end = until.unwrap_or(duration).min(duration);
                let mut out = Vec::new();
                let mut t = from + every;
                while t < end {
                    out.push(t);
                    t += every;
                }
                out
            }
        }
    }

    pub fn describe(&self) -> String {
        let when = match self.when {
            ChaosWhen::At(t) => format!("at {}", show(t)),
            ChaosWhen::Every { every, from, until } => format!(
                "every {} from {}{}",
                show(every),
                show(from),
                until.map(|u| format!(" until {}", show(u))).unwrap_or_default()
            ),
        };
        format!("{when}: {}", self.action.describe())
    }
}

/// What "recovered" means for rtt after a chaos action: a one-second p99 back at or under
/// `rtt_factor` × its value before the action, or that value + `rtt_margin`, whichever is
/// larger. The margin keeps a sub-millisecond baseline (loopback) from turning noise into
/// "not recovered".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecoveryRule {
    pub rtt_factor: f64,
    pub rtt_margin: Duration,
}

impl Default for RecoveryRule {
    fn default() -> Self {
        RecoveryRule {
            rtt_factor: 2.0,
            rtt_margin: Duration::from_millis(5),
        }
    }
}

impl RecoveryRule {
    /// The limit for a p99 of `before_ms` before the action, in ms.
    pub fn limit_ms(&self, before_ms: f64) -> f64 {
        (self.rtt_factor * before_ms).max(before_ms + self.rtt_margin.as_secs_f64() * 1000.0)
    }
}

/// Which way the bytes go: upstream is client → server, downstream server → client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[serde(alias = "up")]
    #[value(alias = "up")]
    Upstream,
    #[serde(alias = "down")]
    #[value(alias = "down")]
    Downstream,
    Both,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Both => "both",
        }
    }

    /// Whether a fault acting this way acts on bytes going `way`.
    pub fn covers(self, way: Direction) -> bool {
        self == Direction::Both || self == way
    }
}

/// One kind of fault with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Toxic {
    /// Every chunk is held `add` ± up to `jitter` (order kept).
    Latency { add: Duration, jitter: Duration },
    /// At most this many bytes per second.
    Bandwidth { bytes_per_s: u64 },
    /// Bytes stop both ways and connections stay open, as in a network partition: nothing is
    /// read or written until the fault ends, then what TCP kept flows on (late, not lost).
    Blackhole,
    /// New TCP connections are refused (the listener closes: the server is down); with a
    /// toxicity below 1, that share of new connections is reset on accept instead.
    Refuse,
    /// Every open connection is reset (RST both ways), once.
    Reset,
    /// When one side closes, the close reaches the other side this much later.
    SlowClose { delay: Duration },
    /// Chunks are cut into pieces of about `average` ± `variation` bytes, `delay` apart.
    Slicer {
        average: usize,
        variation: usize,
        delay: Duration,
    },
    /// The connection is closed once this many bytes have passed while the fault is on.
    LimitData { bytes: u64 },
}

impl Toxic {
    pub fn name(&self) -> &'static str {
        match self {
            Toxic::Latency { .. } => "latency",
            Toxic::Bandwidth { .. } => "bandwidth",
            Toxic::Blackhole => "blackhole",
            Toxic::Refuse => "refuse",
            Toxic::Reset => "reset",
            Toxic::SlowClose { .. } => "slow_close",
            Toxic::Slicer { .. } => "slicer",
            Toxic::LimitData { .. } => "limit_data",
        }
    }

    /// Whether the direction matters (blackhole, refuse and reset act on whole connections).
    pub fn has_direction(&self) -> bool {
        !matches!(self, Toxic::Blackhole | Toxic::Refuse | Toxic::Reset)
    }
}

impl fmt::Display for Toxic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Toxic::Latency { add, jitter } if jitter.is_zero() => write!(f, "latency {}", show(add)),
            Toxic::Latency { add, jitter } => write!(f, "latency {} ± {}", show(add), show(jitter)),
            Toxic::Bandwidth { bytes_per_s } => write!(f, "bandwidth {bytes_per_s} B/s"),
            Toxic::SlowClose { delay } => write!(f, "slow_close {}", show(delay)),
            Toxic::Slicer {
                average,
                variation,
                delay,
            } => write!(f, "slicer {average} ± {variation} B every {}", show(delay)),
            Toxic::LimitData { bytes } => write!(f, "limit_data {bytes} B"),
            other => f.write_str(other.name()),
        }
    }
}

/// A toxic, the direction it acts on and the share of connections it hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub toxic: Toxic,
    pub direction: Direction,
    /// Share of connections affected, 0.0 to 1.0; each connection is in or out by a seeded
    /// hash of its number, so the same connections are hit for the fault's whole window.
    pub toxicity: f64,
}

impl Fault {
    pub fn new(toxic: Toxic) -> Self {
        Self {
            toxic,
            direction: if toxic.has_direction() {
                Direction::Downstream
            } else {
                Direction::Both
            },
            toxicity: 1.0,
        }
    }

    /// Whether connection `conn` is among those this fault (instance `id`) hits.
    pub fn hits(&self, seed: u64, id: u64, conn: u64) -> bool {
        if self.toxicity >= 1.0 {
            return true;
        }
        picked(seed ^ mix(id) ^ mix(conn.wrapping_add(0x9E37)), self.toxicity)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.toxic)?;
        if self.toxic.has_direction() {
            write!(f, " {}", self.direction.name())?;
        }
        if self.toxicity < 1.0 {
            write!(f, " on {}% of connections", self.toxicity * 100.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxicity_hits_about_its_share_and_always_the_same_connections() {
        let fault = Fault {
            toxicity: 0.3,
            ..Fault::new(Toxic::Blackhole)
        };
        let hit = (0..10_000).filter(|&c| fault.hits(7, 1, c)).count();
        assert!((2_800..3_200).contains(&hit), "{hit} of 10 000");
        assert!((0..100).all(|c| fault.hits(7, 1, c) == fault.hits(7, 1, c)));
        let none = Fault {
            toxicity: 0.0,
            ..fault
        };
        assert!((0..1000).all(|c| !none.hits(7, 1, c)));
    }
}
