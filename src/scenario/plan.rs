//! The validated plan: what `validate` produces and everything downstream consumes. A `Plan`
//! cannot be invalid, so the swarm, metrics and reports never re-check input.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::check::{Check, IdFinder};
use super::duration::show;
use super::pointer::JsonPointer;
use super::segment::Segment;
use super::template::Template;
use super::threshold::Threshold;
use crate::metrics::requests::RequestFilter;
use crate::proxy::{Fault, Toxic};
use crate::target::Behaviour;

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub file: PathBuf,
    pub target: Target,
    /// Length of the load timeline; the last phase's client count holds until it ends.
    pub duration: Duration,
    pub seed: u64,
    pub connect: Connect,
    pub correlation: Option<Correlation>,
    pub load: Load,
    pub steps: Vec<Step>,
    /// Under an open rate, how often each client starts its step loop.
    pub pacing: Option<Duration>,
    /// The client's TLS, for a wss:// target.
    pub tls: Option<super::tls::Tls>,
    /// Values from the environment or [secrets] that templates use: never shown.
    pub secrets: Vec<String>,
    /// The `[feed]` rows, one per client.
    pub feed: Option<std::sync::Arc<super::feed::Feed>>,
    /// Run once per connection before `steps`.
    pub setup: Vec<Step>,
    pub reconnect: Reconnect,
    pub pushes: Pushes,
    pub chaos: Vec<Chaos>,
    pub thresholds: Vec<Threshold>,
    /// Which request outcomes go to requests.csv (None: no requests.csv).
    pub requests: Option<RequestFilter>,
    /// The shard this run is, when the scenario is split over several processes or machines.
    pub segment: Option<Segment>,
    /// When the timeline begins (None: at once); a run that starts late keeps this anchor.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Plan {
    /// Whether this run starts client number `client` (all of them, unless it is a segment).
    pub fn owns(&self, client: u64) -> bool {
        self.segment.is_none_or(|s| s.owns(client))
    }

    /// This run's share of a client count (the whole count, unless it is a segment).
    pub fn share(&self, total: u64) -> u64 {
        self.segment.map_or(total, |s| s.share(total))
    }

    /// The most clients this run holds at once.
    pub fn peak_clients(&self) -> u64 {
        self.share(self.load.peak())
    }

    /// The most bytes one message of a step (setup or loop) can carry.
    pub fn largest_send(&self) -> usize {
        let column = |i: u16| self.feed.as_ref().map_or(0, |f| f.widest(i));
        self.setup
            .iter()
            .chain(&self.steps)
            .map(|step| match step {
                Step::Send { template, .. } => template.max_len(column),
                Step::SendBinary(bytes) => bytes.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether clients go through the built-in proxy (the scenario has network chaos).
    pub fn needs_proxy(&self) -> bool {
        self.chaos
            .iter()
            .any(|c| matches!(c.action, ChaosAction::Network { .. }))
    }
}

/// How a client waits before connecting again after a drop or a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    pub strategy: Strategy,
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub jitter: Jitter,
    /// Consecutive failed attempts after which the client gives up.
    pub max_attempts: Option<u32>,
    /// Resend requests in flight at a drop after reconnecting (else they are `lost`).
    pub replay_in_flight: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Constant,
    Exponential,
    /// AWS "decorrelated jitter": random between `initial` and 3× the previous delay.
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    None,
    /// Uniform in [0, delay].
    Full,
    /// delay/2 + uniform in [0, delay/2].
    Equal,
    /// delay + uniform in [0, d] (the "up to 1 s of jitter" many clients add); the sum may
    /// exceed `max` by up to d.
    Add(Duration),
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            strategy: Strategy::Exponential,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: Jitter::Full,
            max_attempts: None,
            replay_in_flight: false,
        }
    }
}

/// WebSocket ping/pong from the client; a missed pong is a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub every: Duration,
    pub timeout: Duration,
}

/// What to read from server pushes (messages that are not correlated replies).
#[derive(Debug, Clone, Default)]
pub struct Pushes {
    pub sequence: Option<JsonPointer>,
    pub sent_at: Option<JsonPointer>,
    pub resume_param: Option<String>,
}

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
        let lasting =
            |lasts: Option<Duration>| lasts.map(|d| format!(" for {}", show(d))).unwrap_or_default();
        let what = match &self.action {
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
        };
        let when = match self.when {
            ChaosWhen::At(t) => format!("at {}", show(t)),
            ChaosWhen::Every { every, from, until } => format!(
                "every {} from {}{}",
                show(every),
                show(from),
                until.map(|u| format!(" until {}", show(u))).unwrap_or_default()
            ),
        };
        format!("{when}: {what}")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Start the built-in target in-process on 127.0.0.1:0.
    Embedded(Behaviour),
    /// A ws:// URL.
    Url(String),
}

#[derive(Debug, Clone)]
pub struct Connect {
    /// The target URL when each client's differs (it takes `{{feed.…}}` values); the
    /// authority is the same for all.
    pub url: Option<Template>,
    pub headers: Vec<(String, Template)>,
    pub subprotocols: Vec<String>,
    /// The subprotocol the server must choose.
    pub subprotocol: Option<String>,
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
}

#[derive(Debug, Clone)]
pub struct Correlation {
    pub request_id: IdFinder,
    pub timeout: Duration,
    /// At most this many requests of one connection wait for their reply at once; a request
    /// beyond it is not sent (counted in `capped`), so a server that never answers costs a
    /// bounded table whatever the timeout and the rate.
    pub max_in_flight: u32,
}

#[derive(Debug, Clone)]
pub enum Step {
    Send {
        template: Template,
        /// Some when the reply is correlated by id and timed.
        expect: Option<Expect>,
    },
    /// A binary frame.
    SendBinary(tokio_tungstenite::tungstenite::Bytes),
    /// Wait for a message that is not a correlated reply and passes the check; a timeout is
    /// counted and the loop goes on (in setup, it fails the connection).
    WaitFor {
        check: Check,
        timeout: Duration,
    },
    Sleep(Duration),
    /// A think time drawn uniformly from this range each time.
    SleepBetween(Duration, Duration),
    /// Close the connection with this code once the awaited replies are in, and connect again.
    Close(u16),
}

#[derive(Debug, Clone)]
pub struct Expect {
    /// Whether the client waits for the reply (or its timeout) before the next step.
    pub wait: bool,
    /// Tests of the reply (the last one of a stream): a failure counts as a check failure.
    pub checks: Vec<Check>,
    /// A stream of replies: this marks the last one.
    pub last: Option<Check>,
}

/// Closed-model load: phases that move the number of connected clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub clients: u64,
    pub ramp: Duration,
    pub hold: Duration,
}

impl Load {
    /// The largest number of clients any phase asks for.
    pub fn peak(&self) -> u64 {
        self.phases.iter().map(|p| p.clients).max().unwrap_or(0)
    }

    /// Total length of all phases.
    pub fn length(&self) -> Duration {
        self.phases.iter().map(|p| p.ramp + p.hold).sum()
    }

    /// How many clients the plan wants connected at `t` (linear during ramps).
    pub fn target_at(&self, t: Duration) -> u64 {
        let mut from = 0u64;
        let mut start = Duration::ZERO;
        for p in &self.phases {
            let ramp_end = start + p.ramp;
            if t < ramp_end {
                let f = (t - start).as_secs_f64() / p.ramp.as_secs_f64();
                let v = from as f64 + (p.clients as f64 - from as f64) * f;
                return v.floor().max(0.0) as u64;
            }
            if t < ramp_end + p.hold {
                return p.clients;
            }
            from = p.clients;
            start = ramp_end + p.hold;
        }
        from
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario   {} ({})", self.name, self.file.display())?;
        match &self.target {
            Target::Embedded(b) => writeln!(
                f,
                "target     embedded: built-in server on 127.0.0.1:0 ({})",
                b.describe()
            )?,
            Target::Url(url) => match &self.connect.url {
                Some(t) => writeln!(f, "target     {} (per client)", crate::redact::text(t.source()))?,
                None => writeln!(f, "target     {}", crate::redact::text(url))?,
            },
        }
        writeln!(f, "duration   {}", show(self.duration))?;
        writeln!(f, "seed       {}", self.seed)?;
        write!(
            f,
            "connect    timeout {}, read buffer {} B, messages up to {} B (frames {} B)",
            show(self.connect.timeout),
            self.connect.read_buffer,
            self.connect.max_message,
            self.connect.max_frame
        )?;
        if !self.connect.subprotocols.is_empty() {
            write!(f, ", subprotocols {}", self.connect.subprotocols.join(", "))?;
        }
        if let Some(p) = &self.connect.subprotocol {
            write!(f, " (the server must choose {p})")?;
        }
        writeln!(f)?;
        if let Some(feed) = &self.feed {
            writeln!(
                f,
                "feed       {}: {} rows of {}; {} (client k: {})",
                feed.file.display(),
                feed.rows.len(),
                feed.columns.join(", "),
                feed.mode.name(),
                match feed.mode {
                    super::feed::Mode::Sequential => "row k mod rows",
                    super::feed::Mode::Random => "a fixed random row",
                    super::feed::Mode::Unique => "row k, its own",
                }
            )?;
        }
        if let Some(tls) = &self.tls {
            let client = tls
                .client_cert
                .as_ref()
                .map(|c| format!("; client certificate {}", c.display()))
                .unwrap_or_default();
            writeln!(f, "  tls      roots {}{client}", tls.roots)?;
        }
        if let Some(rate) = self.connect.max_rate {
            writeln!(f, "  at most {rate}/s new connections, over all clients")?;
        }
        match self.connect.source_addrs.as_slice() {
            [] => {}
            [one] => writeln!(f, "  from     {one}")?,
            [first, .., last] => writeln!(
                f,
                "  from     {} source addresses, {first} .. {last}, in turn",
                self.connect.source_addrs.len()
            )?,
        }
        for (name, value) in &self.connect.headers {
            writeln!(f, "  header   {name}: {}", value.source())?;
        }
        match &self.correlation {
            Some(c) => writeln!(
                f,
                "correlate  id at {}, timeout {}, at most {} in flight per connection",
                c.request_id,
                show(c.timeout),
                c.max_in_flight
            )?,
            None => writeln!(f, "correlate  (none: no request expects a reply)")?,
        }
        match self.segment {
            None => writeln!(f, "load       peak {} clients", self.load.peak())?,
            Some(s) => writeln!(
                f,
                "load       peak {} clients; segment {s}: clients numbered {} mod {}, {} at the peak",
                self.load.peak(),
                s.index,
                s.count,
                self.peak_clients()
            )?,
        }
        let mut t = Duration::ZERO;
        let mut from = 0;
        for (i, p) in self.load.phases.iter().enumerate() {
            writeln!(
                f,
                "  phase {}  {:>8} .. {:<8} {} -> {} clients over {}, hold {}",
                i + 1,
                show(t),
                show(t + p.ramp + p.hold),
                from,
                p.clients,
                show(p.ramp),
                show(p.hold)
            )?;
            t += p.ramp + p.hold;
            from = p.clients;
        }
        if t < self.duration {
            writeln!(
                f,
                "  then     {:>8} .. {:<8} hold {} clients",
                show(t),
                show(self.duration),
                from
            )?;
        }
        if let Some(h) = &self.connect.heartbeat {
            writeln!(
                f,
                "heartbeat  ping every {}, pong within {}",
                show(h.every),
                show(h.timeout)
            )?;
        }
        let r = &self.reconnect;
        writeln!(
            f,
            "reconnect  {:?} from {} to {} (x{}), jitter {:?}, {}, {}",
            r.strategy,
            show(r.initial),
            show(r.max),
            r.multiplier,
            r.jitter,
            r.max_attempts
                .map_or("unlimited attempts".to_string(), |n| format!(
                    "give up after {n} attempts"
                )),
            if r.replay_in_flight {
                "replay requests in flight"
            } else {
                "requests in flight at a drop are lost"
            }
        )?;
        if let Some(seq) = &self.pushes.sequence {
            writeln!(f, "pushes     sequence at {seq}")?;
        }
        for c in &self.chaos {
            writeln!(f, "chaos      {}", c.describe())?;
        }
        if !self.setup.is_empty() {
            writeln!(f, "setup      (once per connection)")?;
            show_steps(f, &self.setup)?;
        }
        match self.pacing {
            None => writeln!(f, "steps      (each client loops while connected)")?,
            Some(every) => writeln!(
                f,
                "steps      (open rate: each client starts the loop every {:?}, {:.3}/s; latency also from when each request was due)",
                every,
                1.0 / every.as_secs_f64()
            )?,
        }
        show_steps(f, &self.steps)?;
        if self.thresholds.is_empty() {
            writeln!(f, "thresholds (none)")?;
        } else {
            writeln!(f, "thresholds")?;
            for t in &self.thresholds {
                writeln!(f, "  {}", t.describe())?;
            }
        }
        Ok(())
    }
}

fn show_steps(f: &mut fmt::Formatter<'_>, steps: &[Step]) -> fmt::Result {
    {
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Send { template, expect } => {
                    let e = match expect {
                        Some(e) => {
                            let what = match &e.last {
                                Some(last) => format!("the stream of replies until {last}"),
                                None => "the correlated reply".to_string(),
                            };
                            let checks: Vec<String> = e.checks.iter().map(Check::to_string).collect();
                            let checks = if checks.is_empty() {
                                String::new()
                            } else {
                                format!("; check {}", checks.join(", "))
                            };
                            let verb = if e.wait {
                                "wait for"
                            } else {
                                "correlate, do not wait for"
                            };
                            format!("  -> {verb} {what}{checks}")
                        }
                        None => String::new(),
                    };
                    writeln!(f, "  {}. send  {}{e}", i + 1, template.source())?;
                }
                Step::SendBinary(bytes) => writeln!(f, "  {}. send  {} bytes (binary)", i + 1, bytes.len())?,
                Step::WaitFor { check, timeout } => writeln!(
                    f,
                    "  {}. wait  for a message where {check}, up to {}",
                    i + 1,
                    show(*timeout)
                )?,
                Step::Sleep(d) => writeln!(f, "  {}. sleep {}", i + 1, show(*d))?,
                Step::SleepBetween(lo, hi) => {
                    writeln!(f, "  {}. sleep {} to {} (at random)", i + 1, show(*lo), show(*hi))?
                }
                Step::Close(code) => writeln!(f, "  {}. close ({code}), then connect again", i + 1)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_follows_ramps_and_holds() {
        let load = Load {
            phases: vec![
                Phase {
                    clients: 100,
                    ramp: Duration::from_secs(10),
                    hold: Duration::from_secs(10),
                },
                Phase {
                    clients: 50,
                    ramp: Duration::from_secs(5),
                    hold: Duration::ZERO,
                },
            ],
        };
        assert_eq!(load.target_at(Duration::ZERO), 0);
        assert_eq!(load.target_at(Duration::from_secs(5)), 50);
        assert_eq!(load.target_at(Duration::from_secs(15)), 100);
        assert_eq!(load.target_at(Duration::from_millis(22_500)), 75);
        assert_eq!(load.target_at(Duration::from_secs(60)), 50);
        assert_eq!(load.peak(), 100);
    }
}
