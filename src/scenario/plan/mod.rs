//! The validated plan: what `validate` produces and everything downstream consumes. A `Plan`
//! cannot be invalid, so the swarm, the proxy, the built-in server, the metrics and the
//! reports never re-check input. The plan's types depend on nothing above them.

mod chaos;
mod compression;
mod connect;
mod defaults;
mod display;
mod embedded;
mod load;
mod protocol;
mod report;
mod rules;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use chaos::{
    Amount, Chaos, ChaosAction, ChaosHow, ChaosWhen, Command, Direction, Exec, Fault, RecoveryRule, Toxic,
};
pub use compression::{Compression, Deflate};
pub use connect::{Connect, Correlation, Heartbeat, Pushes, Target, TargetUrl};
pub use defaults::*;
pub use embedded::Behaviour;
pub use load::{CausePattern, Jitter, Load, Phase, Reconnect, ReconnectAction, ReconnectRule, Strategy};
pub use protocol::Protocol;
pub use report::RequestFilter;
pub use rules::{CounterName, Lapse, NameTemplate, Rule, RuleDrop, rule_drop_name};
pub use steps::{Capture, Expect, Extract, Flow, HttpStep, Program, Scope, Socket, Step, Timer, Var};

use super::feed::Feed;
use super::segment::Segment;
use super::threshold::Threshold;
use super::tls::Tls;

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub file: PathBuf,
    pub target: Target,
    /// Length of the load timeline; the last phase's client count holds until it ends.
    pub duration: Duration,
    pub seed: u64,
    pub connect: Connect,
    /// The application protocol whose preset the scenario takes (already expanded into its
    /// correlation, steps and rules).
    pub protocol: Option<Protocol>,
    pub correlation: Option<Correlation>,
    pub load: Load,
    /// Run once per connection before `steps`.
    pub setup: Vec<Step>,
    /// The values captured from the server that templates use, by index.
    pub vars: Vec<Var>,
    /// The names of named request steps (`name = "Login"`): name number k is `step_names[k - 1]`.
    pub step_names: Vec<String>,
    /// `[[on_message]]`: what to do with server messages that are not replies.
    pub rules: Vec<Rule>,
    /// The names of the rules' counters that take nothing from the message, by index (those
    /// that do get theirs as they are first counted).
    pub counters: Vec<String>,
    pub steps: Vec<Step>,
    /// `[[every]]`: sends on timers beside the loop, once the setup is done.
    pub timers: Vec<Timer>,
    /// `[[flows]]`: kinds of client, each with its program (then `setup` and `steps` are
    /// empty).
    pub flows: Vec<Flow>,
    /// Which flow each of `flow_slots.len()` consecutive clients takes (a seeded shuffle of
    /// each flow's weight in slots): exact shares. Empty without flows.
    pub flow_slots: Vec<u16>,
    /// Whether a setup has HTTP steps (run before every connect attempt).
    pub http_setup: bool,
    /// The TLS of https:// HTTP steps (the wss:// target's, or the system's roots).
    pub http_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// `[[sockets]]`: the connections every client holds (then `setup`, `steps` and `flows`
    /// are empty).
    pub sockets: Vec<Socket>,
    /// Under an open rate, how often each client starts its step loop.
    pub pacing: Option<Duration>,
    /// The client's TLS, for a wss:// target.
    pub tls: Option<Tls>,
    /// Values from the environment or [secrets] that templates use: never shown.
    pub secrets: Vec<String>,
    /// The `[feed]` rows, one per client.
    pub feed: Option<Arc<Feed>>,
    pub reconnect: Reconnect,
    pub pushes: Pushes,
    pub chaos: Vec<Chaos>,
    /// What "recovered" means after a chaos action.
    pub recovery: RecoveryRule,
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

    /// Step `index`: the setup steps, then the loop's, then the timers', then each flow's
    /// setup and loop.
    pub fn step(&self, index: usize) -> &Step {
        let (setup, steps, timers) = (self.setup.len(), self.steps.len(), self.timers.len());
        match index {
            i if i < setup => &self.setup[i],
            i if i < setup + steps => &self.steps[i - setup],
            i if i < setup + steps + timers => &self.timers[i - setup - steps].step,
            mut i => {
                i -= setup + steps + timers;
                let programs = self
                    .flows
                    .iter()
                    .map(|f| (&f.setup, &f.steps))
                    .chain(self.sockets.iter().map(|s| (&s.setup, &s.steps)));
                for (setup, steps) in programs {
                    if i < setup.len() {
                        return &setup[i];
                    }
                    i -= setup.len();
                    if i < steps.len() {
                        return &steps[i];
                    }
                    i -= steps.len();
                }
                panic!("step {index} is not in the plan")
            }
        }
    }

    /// The reconnect policy of socket `socket` (the scenario's, unless the socket has its own).
    pub fn reconnect_of(&self, socket: u16) -> &Reconnect {
        self.sockets
            .get(usize::from(socket))
            .and_then(|s| s.reconnect.as_ref())
            .unwrap_or(&self.reconnect)
    }

    /// How many connections each client holds.
    pub fn sockets_per_client(&self) -> u16 {
        self.sockets.len().max(1) as u16
    }

    /// The flow client `client` takes (None: the scenario has no flows).
    pub fn flow_of(&self, client: u64) -> Option<usize> {
        let slots = self.flow_slots.len() as u64;
        (slots > 0).then(|| usize::from(self.flow_slots[(client % slots) as usize]))
    }

    /// The program of client `client`'s socket `socket`: the top-level setup and steps, its
    /// flow's, or its socket's.
    pub fn program(&self, client: u64, socket: u16) -> Program {
        if !self.sockets.is_empty() {
            let mut start = self.setup.len() + self.steps.len() + self.timers.len();
            start += self
                .flows
                .iter()
                .map(|f| f.setup.len() + f.steps.len())
                .sum::<usize>();
            for s in &self.sockets[..usize::from(socket)] {
                start += s.setup.len() + s.steps.len();
            }
            let s = &self.sockets[usize::from(socket)];
            return Program {
                start,
                loop_start: start + s.setup.len(),
                end: start + s.setup.len() + s.steps.len(),
            };
        }
        let Some(flow) = self.flow_of(client) else {
            return Program {
                start: 0,
                loop_start: self.setup.len(),
                end: self.setup.len() + self.steps.len(),
            };
        };
        let mut start = self.setup.len() + self.steps.len() + self.timers.len();
        for f in &self.flows[..flow] {
            start += f.setup.len() + f.steps.len();
        }
        let f = &self.flows[flow];
        Program {
            start,
            loop_start: start + f.setup.len(),
            end: start + f.setup.len() + f.steps.len(),
        }
    }

    /// Every step of the plan, in index order.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.setup
            .iter()
            .chain(&self.steps)
            .chain(self.timers.iter().map(|t| &t.step))
            .chain(self.flows.iter().flat_map(|f| f.setup.iter().chain(&f.steps)))
            .chain(self.sockets.iter().flat_map(|s| s.setup.iter().chain(&s.steps)))
    }

    /// The step index of timer `i`.
    pub fn timer_step(&self, i: usize) -> usize {
        self.setup.len() + self.steps.len() + i
    }

    /// Client `index`'s `[feed]` row (empty without a feed).
    pub fn row(&self, index: u64) -> &[Box<str>] {
        self.feed.as_deref().map_or(&[], |f| f.row_of(index, self.seed))
    }

    /// The most bytes one message of a step (setup or loop) can carry.
    pub fn largest_send(&self) -> usize {
        let column = |i: u16| self.feed.as_ref().map_or(0, |f| f.widest(i));
        self.all_steps()
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

    /// The graceful end's wait for replies still in flight.
    pub fn reply_timeout(&self) -> Duration {
        self.correlation.as_ref().map_or(Duration::ZERO, |c| c.timeout)
    }
}
