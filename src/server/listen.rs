//! The server's listeners: bind (with a deep accept queue, optionally SO_REUSEPORT), accept,
//! and hand each connection to `connection`; the handle that reads the counts and shuts down.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::Conn;
use super::schedule;
use super::state::Shared;
use crate::delay::DelayLine;
use crate::metrics::ServerCounts;
use crate::scenario::Behaviour;

/// Pending connections the kernel may queue (it caps this at net.core.somaxconn).
const ACCEPT_BACKLOG: u32 = 65_535;

/// How long an accept loop pauses after an error (no descriptor free, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

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

    /// `url` as a URI.
    pub fn uri(&self) -> http::Uri {
        http::Uri::builder()
            .scheme("ws")
            .authority(self.addr.to_string())
            .path_and_query("/")
            .build()
            .expect("a socket address is a valid authority")
    }

    pub fn counts(&self) -> ServerCounts {
        self.shared.counts()
    }

    /// When the server started: `close_at` / `close_every` times count from here.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// The time after `started` at which each upgrade completed, in order (the first million).
    pub fn accept_times(&self) -> Vec<Duration> {
        self.shared.accept_times()
    }

    /// Upgrades completed per peer IP address (the clients' source addresses).
    pub fn peers(&self) -> HashMap<IpAddr, u64> {
        self.shared.peers()
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
    let shared = Arc::new(Shared::new(behaviour));
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
                    let conn = Conn::new(self.shared.clone(), self.delay.clone(), self.cancel.clone(), n);
                    self.tracker.spawn(conn.serve(tcp));
                }
                // Out of descriptors (EMFILE) and the like fail again at once: pause rather than
                // spin, and take the connection when one is free.
                Err(_) => tokio::time::sleep(ACCEPT_PAUSE).await,
            }
        }
    }
}
