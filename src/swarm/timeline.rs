//! The run's timeline: clients started and stopped as the phases say (`schedule`), chaos fired
//! at its times (clients dropped, network faults switched on and off, commands run), then the
//! drain: clients wait for replies in flight (bounded by the correlation timeout) and close.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::index;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::task::TaskTracker;

use super::client;
use super::exec;
use super::schedule::{self, Action};
use super::shared::Shared;
use super::state::ClientCtl;
use crate::metrics::{Event, ExecReport};
use crate::scenario::{Amount, ChaosAction, Fault, Plan, Toxic};

/// Extra time past the correlation timeout a graceful stop allows before forcing the end.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Where network faults go: the chaos proxy, when the plan has network chaos.
pub trait FaultSwitch: Sync {
    /// Switches `fault` on under `id`; returns the connections it hit.
    fn begin(&self, id: u64, fault: Fault) -> u32;
    /// Switches fault `id` off.
    fn end(&self, id: u64);
}

/// What the swarm acts on besides its clients.
pub struct Surroundings<'a> {
    /// The proxy clients connect through, when the plan has network chaos.
    pub faults: Option<&'a dyn FaultSwitch>,
    /// Where `exec` output goes.
    pub results: &'a Path,
}

/// What happens at a point of the timeline.
enum Happening {
    Change(schedule::Change),
    /// Firing `n` of chaos action `index`.
    Chaos {
        index: usize,
        n: usize,
    },
    /// The window of firing `n` of network fault `index` ends.
    FaultEnds {
        index: usize,
        n: usize,
    },
}

/// The id of a network fault's firing in the proxy.
fn fault_id(index: usize, n: usize) -> u64 {
    ((index as u64) << 32) | n as u64
}

/// The swarm while its timeline runs: its clients, and the commands it started.
struct Swarm<'a> {
    shared: Arc<Shared>,
    around: Surroundings<'a>,
    start: Instant,
    tracker: TaskTracker,
    /// Each client number's handle while it runs.
    clients: Vec<Option<Arc<ClientCtl>>>,
    /// How many times each client number was started (ids stay unique across restarts).
    generation: Vec<u32>,
    /// Picks the clients chaos hits.
    rng: SmallRng,
    execs: JoinSet<ExecReport>,
}

/// Runs the load timeline from `start` until the plan's duration or a stop, then drains.
/// Returns when every client and every `exec` command has ended, with the commands' reports.
pub async fn run(shared: Arc<Shared>, start: Instant, around: Surroundings<'_>) -> Vec<ExecReport> {
    let plan = shared.plan.clone();
    let peak = plan.load.peak() as usize;
    let shard = plan.segment.map_or(0, |s| u64::from(s.index));
    let mut swarm = Swarm {
        shared,
        around,
        start,
        tracker: TaskTracker::new(),
        clients: vec![None; peak],
        generation: vec![0; peak],
        rng: SmallRng::seed_from_u64(plan.seed ^ 0xC4A0_5C4A_05C4_A05C ^ shard.rotate_left(32)),
        execs: JoinSet::new(),
    };
    for (at, happening) in timeline(&plan) {
        let at = start + at;
        if at > Instant::now() {
            tokio::select! {
                _ = sleep_until(at) => {}
                _ = swarm.shared.stop.cancelled() => break,
            }
        }
        match happening {
            Happening::Change(change) => swarm.change(change),
            Happening::Chaos { index, n } => swarm.chaos(index, n, at).await,
            Happening::FaultEnds { index, n } => {
                if let Some(faults) = swarm.around.faults {
                    faults.end(fault_id(index, n));
                }
                let name = plan.chaos[index].action.name();
                let index = index as u32;
                swarm.shared.events.send(Event::ChaosEnded { index, name }).await;
            }
        }
    }
    swarm.drain(start + plan.duration).await
}

/// Every happening of the plan, in time order. At the same instant, network faults change
/// first, then clients start or stop, then the other chaos acts: a fault "at 0s" is in place
/// before the first client connects.
fn timeline(plan: &Plan) -> Vec<(Duration, Happening)> {
    let mut timeline: Vec<(Duration, Happening)> = schedule::timeline(&plan.load, plan.duration)
        .into_iter()
        .map(|c| (c.at, Happening::Change(c)))
        .collect();
    for (index, chaos) in plan.chaos.iter().enumerate() {
        for (n, t) in chaos.times(plan.duration).into_iter().enumerate() {
            timeline.push((t, Happening::Chaos { index, n }));
            if let ChaosAction::Network {
                lasts: Some(lasts), ..
            } = chaos.action
                && t + lasts < plan.duration
            {
                timeline.push((t + lasts, Happening::FaultEnds { index, n }));
            }
        }
    }
    let rank = |h: &Happening| match h {
        Happening::Chaos { index, .. }
            if matches!(plan.chaos[*index].action, ChaosAction::Network { .. }) =>
        {
            0
        }
        Happening::FaultEnds { .. } => 0,
        Happening::Change(_) => 1,
        Happening::Chaos { .. } => 2,
    };
    timeline.sort_by_key(|(t, h)| (*t, rank(h)));
    timeline
}

impl Swarm<'_> {
    /// A client starts or stops.
    fn change(&mut self, change: schedule::Change) {
        let i = change.index as usize;
        match change.action {
            // Another shard's client.
            _ if !self.shared.plan.owns(change.index) => {}
            Action::Start => {
                let ctl = Arc::new(ClientCtl::new(self.shared.stop.child_token()));
                self.clients[i] = Some(ctl.clone());
                // A client number started again after a ramp-down keeps ids unique.
                let seq_base = u64::from(self.generation[i]) << 40;
                self.generation[i] += 1;
                // Each of its `[[sockets]]` is a connection of its own, stopped with the client
                // (client-side chaos acts on its first); their ids differ in their high bits.
                for socket in 1..self.shared.plan.sockets_per_client() {
                    let other = Arc::new(ClientCtl::new(ctl.stop.clone()));
                    self.tracker.spawn(client::run(
                        self.shared.clone(),
                        (change.index, socket),
                        seq_base,
                        other,
                    ));
                }
                self.tracker
                    .spawn(client::run(self.shared.clone(), (change.index, 0), seq_base, ctl));
            }
            Action::Stop => {
                if let Some(ctl) = self.clients[i].take() {
                    ctl.stop.cancel();
                }
            }
        }
    }

    /// Firing `n` of chaos action `index`, at `at`.
    async fn chaos(&mut self, index: usize, n: usize, at: Instant) {
        let plan = self.shared.plan.clone();
        let chaos = &plan.chaos[index];
        let name = chaos.action.name();
        let events = &self.shared.events;
        match &chaos.action {
            ChaosAction::Drop { amount, .. } => {
                // A count is split between the shards; a share applies to each one's own.
                let amount = match *amount {
                    Amount::Count(n) => Amount::Count(plan.share(n)),
                    fraction => fraction,
                };
                let targets = choose(amount, &self.clients, &mut self.rng);
                // Reported before the clients act, so the collector sees the count before.
                events
                    .send(chaos_event(index, name, targets.len() as u32, false))
                    .await;
                for ctl in targets {
                    ctl.hit(index);
                }
            }
            // Its end, if any, is on the timeline.
            ChaosAction::Network { fault, .. } => {
                let faults = self
                    .around
                    .faults
                    .expect("a plan with network chaos runs a proxy");
                let hit = faults.begin(fault_id(index, n), *fault);
                events
                    .send(chaos_event(index, name, hit, fault.toxic != Toxic::Reset))
                    .await;
            }
            // One command for the whole scenario: shard 0 runs it.
            ChaosAction::Exec(_) if plan.segment.is_some_and(|s| s.index != 0) => {}
            ChaosAction::Exec(exec) => {
                // Its start is reported before it can end.
                events.send(chaos_event(index, name, 0, true)).await;
                let (exec, dir, halt, events) = (
                    exec.clone(),
                    self.around.results.to_path_buf(),
                    self.shared.halt.clone(),
                    events.clone(),
                );
                let at_s = (at - self.start).as_secs_f64();
                self.execs.spawn(async move {
                    let report = exec::run(&exec, index as u32, n, at_s, &dir, &halt).await;
                    let index = index as u32;
                    events.send(Event::ChaosEnded { index, name }).await;
                    report
                });
            }
        }
    }

    /// Every client is spawned: waits for the end (or a stop, or every client gone), then
    /// stops the clients gracefully and waits for them, halting them past the drain's limit.
    async fn drain(mut self, end: Instant) -> Vec<ExecReport> {
        let tracker = &self.tracker;
        tracker.close();
        tokio::select! {
            _ = sleep_until(end) => {}
            _ = self.shared.stop.cancelled() => {}
            _ = tracker.wait() => {}
        }
        // Faults without an end of their own stay on through the drain: replies still in
        // flight meet the same network as the requests did.
        self.shared.stop.cancel();
        let plan = &self.shared.plan;
        let drain = plan.reply_timeout() + plan.connect.timeout.min(DRAIN_GRACE) + DRAIN_GRACE;
        tokio::select! {
            _ = tracker.wait() => {}
            _ = tokio::time::sleep(drain) => {
                self.shared.halt.cancel();
                tracker.wait().await;
            }
        }
        // Commands still running end at their own time limits (or at once after a halt).
        let mut reports = Vec::new();
        while let Some(report) = self.execs.join_next().await {
            reports.push(report.expect("exec tasks do not panic"));
        }
        reports.sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.chaos.cmp(&b.chaos)));
        reports
    }
}

fn chaos_event(index: usize, name: &'static str, selected: u32, lasting: bool) -> Event {
    Event::Chaos {
        index: index as u32,
        name,
        selected,
        lasting,
    }
}

/// Picks the clients a chaos action hits among those connected now: a seeded random sample
/// of exactly the asked share or count.
fn choose<'a>(
    amount: Amount,
    clients: &'a [Option<Arc<ClientCtl>>],
    rng: &mut SmallRng,
) -> Vec<&'a Arc<ClientCtl>> {
    let connected: Vec<&Arc<ClientCtl>> = clients
        .iter()
        .flatten()
        .filter(|c| c.connected.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let n = connected.len();
    let k = match amount {
        Amount::Fraction(f) => ((n as f64) * f).round() as usize,
        Amount::Count(c) => (c as usize).min(n),
    }
    .min(n);
    index::sample(rng, n, k)
        .into_iter()
        .map(|i| connected[i])
        .collect()
}
