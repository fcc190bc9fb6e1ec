//! The swarm: clients started and stopped on the plan's timeline (`schedule`), each one a
//! task running `client` → `connect` → `connection`, reporting events one way to the
//! collector. The swarm never formats output and never reads the metrics.

pub mod backoff;
pub mod client;
pub mod connect;
pub mod connection;
pub mod exec;
pub mod handshake;
pub mod pending;
pub mod schedule;
pub mod stream;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use rand::SeedableRng;

/// Bytes of the write buffer for control frames beyond the largest message: some hundred pongs.
const CONTROL_ROOM: usize = 16 << 10;
use rand::rngs::SmallRng;
use rand::seq::index;

use crate::metrics::requests::RequestLog;
use crate::metrics::{Event, EventTx};
use crate::proxy::{Proxy, Toxic};
use crate::scenario::template::Template;
use crate::scenario::{Amount, Chaos, ChaosAction, Correlation, Heartbeat, Plan, Pushes, Reconnect, Step};
use client::ClientCtl;
use exec::ExecReport;
use schedule::Action;

/// Extra time past the correlation timeout a graceful stop allows before forcing the end.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What every client of a run reads; built once from the plan.
pub struct Shared {
    pub url: String,
    /// Each client's URL, when it takes `{{feed.…}}` values (same authority as `url`).
    pub url_template: Option<Template>,
    /// The subprotocol the server must choose.
    pub subprotocol: Option<String>,
    /// host:port to open TCP connections to.
    pub authority: String,
    pub headers: Vec<(HeaderName, Template)>,
    pub subprotocols: Option<HeaderValue>,
    pub connect_timeout: Duration,
    /// Local addresses clients connect from, in turn (empty: the system's choice).
    pub source_addrs: Vec<std::net::IpAddr>,
    /// `[connect] max_rate`: this process's share of the cap on new connection attempts.
    pub connect_gate: Option<ConnectGate>,
    /// For a wss:// target: the TLS connector and the name the certificate must carry.
    pub tls: Option<(
        tokio_rustls::TlsConnector,
        tokio_rustls::rustls::pki_types::ServerName<'static>,
    )>,
    pub ws_config: WebSocketConfig,
    pub correlation: Option<Correlation>,
    pub heartbeat: Option<Heartbeat>,
    pub setup: Vec<Step>,
    pub steps: Vec<Step>,
    /// Under an open rate, how often each client starts its step loop.
    pub pacing: Option<Duration>,
    /// The `[feed]` rows.
    pub feed: Option<Arc<crate::scenario::feed::Feed>>,
    pub reconnect: Reconnect,
    pub pushes: Pushes,
    pub chaos: Vec<Chaos>,
    pub seed: u64,
    pub events: EventTx,
    /// Where request outcomes go when requests.csv is written.
    pub requests: Option<RequestLog>,
    /// Graceful stop: send nothing more, wait for replies in flight, close.
    pub stop: CancellationToken,
    /// Immediate stop: abandon everything (in-flight requests count as unfinished).
    pub halt: CancellationToken,
}

impl Shared {
    /// Step `index` of the program: the setup steps, then the loop's.
    pub fn step(&self, index: usize) -> &Step {
        self.setup
            .get(index)
            .unwrap_or_else(|| &self.steps[index - self.setup.len()])
    }

    /// Client `index`'s `[feed]` row (empty without a feed).
    pub fn row(&self, index: u64) -> &[Box<str>] {
        self.feed.as_deref().map_or(&[], |f| f.row_of(index, self.seed))
    }

    /// `url` is the resolved ws:// target (the embedded server's address when embedded);
    /// `connect_to` the host:port clients open TCP connections to (the URL's `authority`, or
    /// the chaos proxy's address).
    pub fn new(
        plan: &Plan,
        url: &str,
        connect_to: String,
        events: EventTx,
        stop: CancellationToken,
        halt: CancellationToken,
    ) -> Self {
        let headers = plan
            .connect
            .headers
            .iter()
            .map(|(name, t)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).expect("validated header name"),
                    t.clone(),
                )
            })
            .collect();
        let subprotocols = (!plan.connect.subprotocols.is_empty())
            .then(|| HeaderValue::from_str(&plan.connect.subprotocols.join(", ")).expect("validated tokens"));
        // The write buffer holds one message (a frame header is at most 14 bytes) and room for
        // the pongs and the close tungstenite queues by itself: past that, it keeps one pong
        // pending instead of one per ping, so a server that floods pings while it stops
        // reading cannot grow it (the stall limit then ends the connection).
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(plan.connect.read_buffer)
            .write_buffer_size(0)
            .max_write_buffer_size(plan.largest_send() + 14 + CONTROL_ROOM)
            .max_message_size(Some(plan.connect.max_message))
            .max_frame_size(Some(plan.connect.max_frame));
        Self {
            url: url.to_string(),
            url_template: plan.connect.url.clone(),
            subprotocol: plan.connect.subprotocol.clone(),
            authority: connect_to,
            headers,
            subprotocols,
            connect_timeout: plan.connect.timeout,
            source_addrs: plan.connect.source_addrs.clone(),
            // A segment takes its share of the rate, as of the clients.
            connect_gate: plan.connect.max_rate.map(|rate| {
                let share = plan.peak_clients() as f64 / plan.load.peak().max(1) as f64;
                ConnectGate::new(rate * share.max(f64::MIN_POSITIVE))
            }),
            tls: plan.tls.as_ref().map(|tls| {
                let uri: http::Uri = url.parse().expect("validated URL");
                let host = uri.host().expect("validated URL has a host");
                let name = crate::scenario::tls::server_name(host)
                    .unwrap_or_else(|| crate::scenario::tls::server_name("invalid").expect("a valid name"));
                (tokio_rustls::TlsConnector::from(tls.config.clone()), name)
            }),
            ws_config,
            correlation: plan.correlation.clone(),
            heartbeat: plan.connect.heartbeat,
            setup: plan.setup.clone(),
            steps: plan.steps.clone(),
            pacing: plan.pacing,
            feed: plan.feed.clone(),
            reconnect: plan.reconnect.clone(),
            pushes: plan.pushes.clone(),
            chaos: plan.chaos.clone(),
            seed: plan.seed,
            events,
            requests: None,
            stop,
            halt,
        }
    }
}

/// host:port of a validated ws:// URL.
pub fn authority(url: &str) -> String {
    let uri: http::Uri = url.parse().expect("validated URL");
    let host = uri.host().expect("validated URL has a host");
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Spaces connection attempts `1 / rate` apart, over all clients: each attempt takes the next
/// free slot and waits for it.
pub struct ConnectGate {
    interval: Duration,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl ConnectGate {
    fn new(rate: f64) -> Self {
        ConnectGate {
            interval: Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX / 4),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// The time this attempt may begin.
    pub fn slot(&self) -> tokio::time::Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(tokio::time::Instant::now());
        *next = slot + self.interval;
        slot
    }
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

/// What the swarm acts on besides its clients.
pub struct Surroundings<'a> {
    /// The proxy clients connect through, when the plan has network chaos.
    pub proxy: Option<&'a Proxy>,
    /// Where `exec` output goes.
    pub results: &'a Path,
}

/// The id of a network fault's firing in the proxy.
fn fault_id(index: usize, n: usize) -> u64 {
    ((index as u64) << 32) | n as u64
}

/// Runs the load timeline from `start` until `duration` or a stop, then drains: clients wait
/// for replies in flight (bounded by the correlation timeout) and close. Returns when every
/// client and every `exec` command has ended, with the commands' reports.
pub async fn run(
    shared: Arc<Shared>,
    plan: &Plan,
    start: Instant,
    around: Surroundings<'_>,
) -> Vec<ExecReport> {
    let tracker = TaskTracker::new();
    let peak = plan.load.peak() as usize;
    let mut clients: Vec<Option<Arc<ClientCtl>>> = vec![None; peak];
    let mut generation: Vec<u32> = vec![0; peak];
    let end = start + plan.duration;
    let shard = plan.segment.map_or(0, |s| u64::from(s.index));
    let mut rng = SmallRng::seed_from_u64(plan.seed ^ 0xC4A0_5C4A_05C4_A05C ^ shard.rotate_left(32));

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
    // At the same instant, network faults change first, then clients start or stop, then the
    // other chaos acts: a fault "at 0s" is in place before the first client connects.
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
    let mut execs = JoinSet::new();

    for (at, happening) in timeline {
        let at = start + at;
        if at > Instant::now() {
            tokio::select! {
                _ = sleep_until(at) => {}
                _ = shared.stop.cancelled() => break,
            }
        }
        match happening {
            Happening::Change(change) => {
                let i = change.index as usize;
                match change.action {
                    // Another shard's client.
                    _ if !plan.owns(change.index) => {}
                    Action::Start => {
                        let ctl = Arc::new(ClientCtl::new(shared.stop.child_token()));
                        clients[i] = Some(ctl.clone());
                        // A client number started again after a ramp-down keeps ids unique.
                        let seq_base = u64::from(generation[i]) << 40;
                        generation[i] += 1;
                        tracker.spawn(client::run(shared.clone(), change.index, seq_base, ctl));
                    }
                    Action::Stop => {
                        if let Some(ctl) = clients[i].take() {
                            ctl.stop.cancel();
                        }
                    }
                }
            }
            Happening::Chaos { index, n } => {
                let chaos = &plan.chaos[index];
                let name = chaos.action.name();
                let (selected, lasting) = match &chaos.action {
                    ChaosAction::Drop { amount, .. } => {
                        // A count is split between the shards; a share applies to each one's own.
                        let amount = match *amount {
                            Amount::Count(n) => Amount::Count(plan.share(n)),
                            fraction => fraction,
                        };
                        let targets = choose(amount, &clients, &mut rng);
                        // Reported before the clients act, so the collector sees the count before.
                        shared
                            .events
                            .send(chaos_event(index, name, targets.len() as u32, false))
                            .await;
                        for ctl in targets {
                            ctl.hit(index);
                        }
                        continue;
                    }
                    // Its end, if any, is on the timeline.
                    ChaosAction::Network { fault, .. } => {
                        let proxy = around.proxy.expect("a plan with network chaos runs a proxy");
                        (
                            proxy.begin(fault_id(index, n), *fault),
                            fault.toxic != Toxic::Reset,
                        )
                    }
                    // One command for the whole scenario: shard 0 runs it.
                    ChaosAction::Exec(_) if plan.segment.is_some_and(|s| s.index != 0) => continue,
                    ChaosAction::Exec(exec) => {
                        // Its start is reported before it can end.
                        shared.events.send(chaos_event(index, name, 0, true)).await;
                        let (exec, dir, halt, events) = (
                            exec.clone(),
                            around.results.to_path_buf(),
                            shared.halt.clone(),
                            shared.events.clone(),
                        );
                        let at_s = (at - start).as_secs_f64();
                        execs.spawn(async move {
                            let report = exec::run(&exec, index as u32, n, at_s, &dir, &halt).await;
                            events
                                .send(Event::ChaosEnded {
                                    index: index as u32,
                                    name,
                                })
                                .await;
                            report
                        });
                        continue;
                    }
                };
                shared
                    .events
                    .send(chaos_event(index, name, selected, lasting))
                    .await;
            }
            Happening::FaultEnds { index, n } => {
                if let Some(proxy) = around.proxy {
                    proxy.end(fault_id(index, n));
                }
                shared
                    .events
                    .send(Event::ChaosEnded {
                        index: index as u32,
                        name: plan.chaos[index].action.name(),
                    })
                    .await;
            }
        }
    }
    // Every client is spawned: the run also ends early when all of them have ended (gave up).
    tracker.close();
    tokio::select! {
        _ = sleep_until(end) => {}
        _ = shared.stop.cancelled() => {}
        _ = tracker.wait() => {}
    }
    // Faults without an end of their own stay on through the drain: replies still in flight
    // meet the same network as the requests did.
    shared.stop.cancel();
    let drain = shared.correlation.as_ref().map_or(Duration::ZERO, |c| c.timeout)
        + shared.connect_timeout.min(DRAIN_GRACE)
        + DRAIN_GRACE;
    tokio::select! {
        _ = tracker.wait() => {}
        _ = tokio::time::sleep(drain) => {
            shared.halt.cancel();
            tracker.wait().await;
        }
    }
    // Commands still running end at their own time limits (or at once after a halt).
    let mut reports = Vec::new();
    while let Some(report) = execs.join_next().await {
        reports.push(report.expect("exec tasks do not panic"));
    }
    reports.sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.chaos.cmp(&b.chaos)));
    reports
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-client task is what 250 000 idle connections are made of: keep it small.
    #[test]
    fn a_client_task_stays_small() {
        let toml = r#"
name = "size"
target = "ws://127.0.0.1:9/"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
"#;
        let plan = crate::scenario::parse(std::path::Path::new("t.toml"), toml, &Default::default(), &|_| {
            None
        })
        .unwrap();
        let (events, _rx) = crate::metrics::channel();
        let shared = Arc::new(Shared::new(
            &plan,
            "ws://127.0.0.1:9/",
            "127.0.0.1:9".to_string(),
            events,
            CancellationToken::new(),
            CancellationToken::new(),
        ));
        let ctl = Arc::new(ClientCtl::new(CancellationToken::new()));
        let task = client::run(shared, 0, 0, ctl);
        let size = std::mem::size_of_val(&task);
        // 4.7 KiB before the handshake and chaos futures were boxed; 3064 before the steps
        // of issue 5 (stream, checks, wait_for, binary) added 16 (3080).
        assert!(size <= 3104, "client task future is {size} bytes");
    }
}
