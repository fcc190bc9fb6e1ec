//! The server loop: accept, upgrade (see `upgrade`: refuse while restarting, check the token,
//! echo the first offered subprotocol), then per connection echo each data message after the
//! configured delay, or withhold it; push, ping, and close on the schedule.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::timers::Timers;
use super::upgrade::{self, Asked};
use super::{Behaviour, schedule};
use crate::delay::DelayLine;

/// Pending connections the kernel may queue (it caps this at net.core.somaxconn).
const ACCEPT_BACKLOG: u32 = 65_535;

/// How many accept times a server keeps (16 MB).
const ACCEPT_TIMES_KEPT: usize = 1_000_000;

/// How long an accept loop pauses after an error (no descriptor free, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// How long a closing connection waits to send its close frame, and for the answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the server saw. Written with `Relaxed` atomics: exact once connections are closed.
#[derive(Debug, Default)]
pub(super) struct Stats {
    connections: AtomicU64,
    open: AtomicU64,
    received: AtomicU64,
    answered: AtomicU64,
    withheld: AtomicU64,
    closed_by_schedule: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pushes: AtomicU64,
    idle_closed: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
}

/// Declares `ServerCounts` from its fields, with the sum of two (`serve --workers`).
macro_rules! server_counts {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// A snapshot of the server's counts.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct ServerCounts {
            $($(#[$doc])* pub $field: u64),*
        }

        impl std::ops::Add for ServerCounts {
            type Output = ServerCounts;

            fn add(self, o: ServerCounts) -> ServerCounts {
                ServerCounts { $($field: self.$field + o.$field),* }
            }
        }
    };
}

server_counts! {
    /// Upgrades completed.
    connections,
    /// Connections open now.
    open,
    /// Data messages received.
    received,
    /// Replies sent.
    answered,
    /// Replies withheld on purpose.
    withheld,
    /// Connections closed by `close_every` / `close_at` (close frame or reset).
    closed_by_schedule,
    /// Upgrades answered with 503 during a `refuse_for` window.
    refused,
    /// Upgrades answered with 401 (no or wrong token).
    unauthorized,
    /// Push messages sent.
    pushes,
    /// Connections closed because a ping went unanswered for `ping_timeout`.
    idle_closed,
    /// Heartbeat pings sent.
    pings_sent,
    /// Pongs received (answers to the heartbeat, or unsolicited).
    pongs_received,
}

/// What every connection of one server shares.
pub(super) struct Shared {
    pub(super) behaviour: Behaviour,
    pub(super) stats: Stats,
    pub(super) started: Instant,
    /// End of the current `refuse_for` window, in µs after `started` (0: none yet).
    pub(super) refuse_until_us: AtomicU64,
    /// When each upgrade completed, after `started` (the first `ACCEPT_TIMES_KEPT`: a server
    /// left running through storms must not grow without bound).
    accept_times: Mutex<Vec<Duration>>,
    /// Upgrades completed per peer IP address.
    peers: Mutex<HashMap<IpAddr, u64>>,
    /// Bumped by the close schedule: every connection closes when it changes.
    pub(super) closes: watch::Sender<u64>,
}

impl Shared {
    /// How much of a `refuse_for` window is left, if one is open now.
    pub(super) fn refusing(&self) -> Option<Duration> {
        let until = Duration::from_micros(self.refuse_until_us.load(Relaxed));
        let now = self.started.elapsed();
        (now < until).then(|| until - now)
    }
}

/// A running server; dropping it does not stop it, `shutdown` does.
pub struct Server {
    /// The first address it listens on.
    pub addr: SocketAddr,
    /// Every address it listens on.
    pub addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn counts(&self) -> ServerCounts {
        let s = &self.shared.stats;
        ServerCounts {
            connections: s.connections.load(Relaxed),
            open: s.open.load(Relaxed),
            received: s.received.load(Relaxed),
            answered: s.answered.load(Relaxed),
            withheld: s.withheld.load(Relaxed),
            closed_by_schedule: s.closed_by_schedule.load(Relaxed),
            refused: s.refused.load(Relaxed),
            unauthorized: s.unauthorized.load(Relaxed),
            pushes: s.pushes.load(Relaxed),
            idle_closed: s.idle_closed.load(Relaxed),
            pings_sent: s.pings_sent.load(Relaxed),
            pongs_received: s.pongs_received.load(Relaxed),
        }
    }

    /// When the server started: `close_at` / `close_every` times count from here.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// The time after `started` at which each upgrade completed, in order (the first million).
    pub fn accept_times(&self) -> Vec<Duration> {
        self.shared
            .accept_times
            .lock()
            .expect("accept times lock")
            .clone()
    }

    /// Upgrades completed per peer IP address (the clients' source addresses).
    pub fn peers(&self) -> HashMap<IpAddr, u64> {
        self.shared.peers.lock().expect("peers lock").clone()
    }

    /// Stops accepting, closes every connection, and returns the final counts.
    pub async fn shutdown(mut self) -> ServerCounts {
        self.cancel.cancel();
        let _ = (&mut self.task).await;
        self.counts()
    }
}

/// Binds `listen` (use port 0 for any free port) and serves until shut down.
pub async fn start(listen: SocketAddr, behaviour: Behaviour) -> std::io::Result<Server> {
    start_on(&[listen], false, behaviour).await
}

/// Binds every address of `listens` and serves them all as one server. With `reuse_port`
/// (SO_REUSEPORT), other processes may bind the same addresses, and the kernel spreads new
/// connections between them: `wsstorm serve --workers`.
pub async fn start_on(
    listens: &[SocketAddr],
    reuse_port: bool,
    behaviour: Behaviour,
) -> std::io::Result<Server> {
    let mut listeners = Vec::new();
    for listen in listens {
        // A deep accept queue: tokio's default backlog of 1024 drops SYNs in a reconnection
        // storm and the clients' TCP retransmits (1 s, 3 s) would show up as the server's
        // slowness.
        let socket = if listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if reuse_port {
            socket.set_reuseport(true)?;
        }
        socket.bind(*listen)?;
        listeners.push(socket.listen(ACCEPT_BACKLOG)?);
    }
    let addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<std::io::Result<Vec<_>>>()?;
    let addr = *addrs
        .first()
        .ok_or_else(|| std::io::Error::other("no address to listen on"))?;
    let cancel = CancellationToken::new();
    let shared = Arc::new(Shared {
        behaviour,
        stats: Stats::default(),
        started: Instant::now(),
        refuse_until_us: AtomicU64::new(0),
        accept_times: Mutex::new(Vec::new()),
        peers: Mutex::new(HashMap::new()),
        closes: watch::Sender::new(0),
    });
    let task = tokio::spawn(accept_loop(listeners, shared.clone(), cancel.clone()));
    Ok(Server {
        addr,
        addrs,
        shared,
        cancel,
        task,
    })
}

async fn accept_loop(listeners: Vec<TcpListener>, shared: Arc<Shared>, cancel: CancellationToken) {
    let tracker = TaskTracker::new();
    let behaviour = &shared.behaviour;
    let delayed = !behaviour.latency.is_zero() || !behaviour.jitter.is_zero();
    let delay = delayed.then(|| Arc::new(DelayLine::start()));
    if behaviour.closes() {
        tracker.spawn(schedule::run(shared.clone(), cancel.clone()));
    }
    let next_conn = Arc::new(AtomicU64::new(0));
    for listener in listeners {
        let accepting = Accepting {
            shared: shared.clone(),
            delay: delay.clone(),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            next_conn: next_conn.clone(),
        };
        tracker.spawn(accepting.run(listener));
    }
    tracker.close();
    tracker.wait().await;
}

/// One listener's accept loop; the connections it accepts join the server's tracker.
struct Accepting {
    shared: Arc<Shared>,
    delay: Option<Arc<DelayLine<Message>>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    next_conn: Arc<AtomicU64>,
}

impl Accepting {
    async fn run(self, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, _)) => {
                    let n = self.next_conn.fetch_add(1, Relaxed) + 1;
                    let rng = SmallRng::seed_from_u64(self.shared.behaviour.seed.wrapping_add(n));
                    self.tracker.spawn(serve_one(
                        tcp,
                        self.shared.clone(),
                        self.delay.clone(),
                        self.cancel.clone(),
                        rng,
                    ));
                }
                // Out of descriptors (EMFILE) and the like fail again at once: pause rather than
                // spin, and take the connection when one is free.
                Err(_) => tokio::time::sleep(ACCEPT_PAUSE).await,
            }
        }
    }
}

/// Why a connection's loop ended.
enum End {
    /// The connection failed or ended without a close frame.
    Peer,
    /// The client sent a close frame: tungstenite has queued the reply, which must be flushed.
    ClosedByPeer,
    /// The server is shutting down.
    Shutdown,
    /// The close schedule.
    Schedule,
    /// A ping went unanswered.
    Idle,
}

async fn serve_one(
    tcp: TcpStream,
    shared: Arc<Shared>,
    delay: Option<Arc<DelayLine<Message>>>,
    cancel: CancellationToken,
    mut rng: SmallRng,
) {
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok().map(|a| a.ip());
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut asked = Asked::default();
    // The error type is fixed by tungstenite's callback trait.
    #[allow(clippy::result_large_err)]
    let callback = |request: &_, response| upgrade::check(&shared, request, response, &mut asked);
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await
    else {
        return;
    };
    let accepted = Instant::now();
    // Subscribed before the upgrade counts as done: a close after it reaches this connection.
    let mut closes = shared.closes.subscribe();
    let (behaviour, stats) = (&shared.behaviour, &shared.stats);
    stats.connections.fetch_add(1, Relaxed);
    stats.open.fetch_add(1, Relaxed);
    {
        let mut times = shared.accept_times.lock().expect("accept times lock");
        if times.len() < ACCEPT_TIMES_KEPT {
            times.push(accepted - shared.started);
        }
    }
    if let Some(ip) = peer {
        *shared.peers.lock().expect("peers lock").entry(ip).or_default() += 1;
    }

    let mut timers = Timers::new(behaviour, accepted, asked.resume_from);
    let timed = timers.deadline().is_some();
    let timer = tokio::time::sleep_until(timers.deadline().unwrap_or(accepted + CLOSE_WAIT));
    tokio::pin!(timer);
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let end = loop {
        tokio::select! {
            _ = cancel.cancelled() => break End::Shutdown,
            Ok(()) = closes.changed() => break End::Schedule,
            () = &mut timer, if timed => {
                let due = timers.fire(Instant::now());
                if due.idle {
                    break End::Idle;
                }
                if let Some(seq) = due.push {
                    if ws.send(push(seq)).await.is_err() { break End::Peer; }
                    stats.pushes.fetch_add(1, Relaxed);
                }
                if due.ping {
                    if ws.send(Message::Ping(Default::default())).await.is_err() { break End::Peer; }
                    stats.pings_sent.fetch_add(1, Relaxed);
                }
                if let Some(next) = timers.deadline() {
                    timer.as_mut().reset(next);
                }
            }
            Some(reply) = replies.recv() => {
                if ws.send(reply).await.is_err() { break End::Peer; }
                stats.answered.fetch_add(1, Relaxed);
            }
            message = ws.next() => {
                let message = match message {
                    Some(Ok(m)) => {
                        timers.heard();
                        m
                    }
                    None | Some(Err(_)) => break End::Peer,
                };
                let message = match message {
                    m @ (Message::Text(_) | Message::Binary(_)) => m,
                    Message::Close(_) => break End::ClosedByPeer,
                    Message::Pong(_) => {
                        stats.pongs_received.fetch_add(1, Relaxed);
                        continue;
                    }
                    _ => continue,
                };
                let n = stats.received.fetch_add(1, Relaxed) + 1;
                let withhold = behaviour.no_reply_every.is_some_and(|every| n.is_multiple_of(every))
                    || (behaviour.no_reply_fraction > 0.0 && rng.random_bool(behaviour.no_reply_fraction));
                if withhold {
                    stats.withheld.fetch_add(1, Relaxed);
                } else if let Some(delay) = &delay {
                    let jitter = match behaviour.jitter.as_micros() as u64 {
                        0 => 0,
                        max => rng.random_range(0..=max),
                    };
                    let at = Instant::now() + behaviour.latency + Duration::from_micros(jitter);
                    delay.send_at(at.into_std(), message, replies_tx.clone());
                } else {
                    if ws.send(message).await.is_err() { break End::Peer; }
                    stats.answered.fetch_add(1, Relaxed);
                }
            }
        }
    };
    drop(replies);
    match end {
        End::Peer => {}
        End::ClosedByPeer => {
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.flush()).await;
        }
        End::Shutdown => {
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(None)).await;
        }
        End::Schedule => {
            stats.closed_by_schedule.fetch_add(1, Relaxed);
            if behaviour.close_by_reset {
                // Zero linger: dropping the socket sends RST instead of FIN, with no close frame.
                let _ = ws.get_ref().set_zero_linger();
                drop(ws);
            } else {
                close_and_wait(&mut ws, CloseCode::from(behaviour.close_code), "scheduled close").await;
            }
        }
        End::Idle => {
            stats.idle_closed.fetch_add(1, Relaxed);
            // The client is not reading: send the close frame if the socket takes it, then go.
            let frame = close_frame(CloseCode::Error, "ping timeout");
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.send(Message::Close(Some(frame)))).await;
        }
    }
    stats.open.fetch_sub(1, Relaxed);
}

/// `{"type":"push","seq":N,"sent_at_us":T}` with T the Unix time in µs.
fn push(seq: u64) -> Message {
    let sent_at_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    Message::text(format!(
        r#"{{"type":"push","seq":{seq},"sent_at_us":{sent_at_us}}}"#
    ))
}

fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Sends a close frame and waits (briefly) for the client's, discarding what comes before it.
async fn close_and_wait(ws: &mut WebSocketStream<TcpStream>, code: CloseCode, reason: &'static str) {
    let deadline = Instant::now() + CLOSE_WAIT;
    let sent = tokio::time::timeout_at(deadline, ws.send(Message::Close(Some(close_frame(code, reason)))));
    if !matches!(sent.await, Ok(Ok(()))) {
        return;
    }
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if message.is_close() {
            break;
        }
    }
}
