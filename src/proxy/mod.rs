//! The built-in fault-injecting TCP proxy: listens on a local address, opens a connection to
//! the upstream for every client connection, and moves bytes both ways through the faults
//! switched on now (see `fault`). It is a byte pipe, so TLS passes through unchanged. A run
//! with network chaos starts one in-process and drives its faults from the timeline;
//! `wsstorm proxy` runs one on its own.

pub mod fault;
mod pump;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::delay::DelayLine;
use crate::metrics::ProxyCounts;
use crate::scenario::{Direction, Fault, Toxic};
pub use fault::Active;
use pump::{End, Way, pump};

/// How long the proxy waits for the upstream to accept a connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `shutdown` lets open connections finish before it resets them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    upstream_failures: AtomicU64,
    refused: AtomicU64,
    listener_closed: AtomicU64,
    reset: AtomicU64,
    limited: AtomicU64,
    bytes_upstream: AtomicU64,
    bytes_downstream: AtomicU64,
}

struct Shared {
    upstream: String,
    seed: u64,
    faults: watch::Sender<Arc<[Active]>>,
    /// One-shot `reset` faults fired so far, in order (a connection acts on those after the
    /// ones it has seen).
    resets: watch::Sender<Vec<Active>>,
    /// Numbers of the connections open now (for exact counts of whom a fault hits).
    open: Mutex<HashSet<u64>>,
    stats: Stats,
    /// Resets every connection still open at shutdown.
    kill: CancellationToken,
    /// Releases chunks held by `latency` when they fall due.
    delay: DelayLine<()>,
}

/// A running proxy. Faults are switched on and off through it while it runs.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// Fires when the proxy's thread has ended every connection.
    done: oneshot::Receiver<()>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any free port) and forwards to `upstream` (host:port),
    /// which is resolved anew for every connection. `seed` picks the connections a fault with
    /// a toxicity below 1 hits.
    ///
    /// The proxy runs on its own thread with a single-threaded runtime: a chunk wakes that one
    /// thread and nothing else, and the proxy does not take turns with the clients' tasks.
    pub async fn start(listen: SocketAddr, upstream: String, seed: u64) -> io::Result<Proxy> {
        let shared = Arc::new(Shared {
            upstream,
            seed,
            faults: watch::Sender::new(Arc::from([])),
            resets: watch::Sender::new(Vec::new()),
            open: Mutex::new(HashSet::new()),
            stats: Stats::default(),
            kill: CancellationToken::new(),
            delay: DelayLine::start(),
        });
        let stop = CancellationToken::new();
        let (ready_tx, ready) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let (thread_shared, thread_stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("wsstorm-proxy".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match bind(listen).and_then(|l| Ok((l.local_addr()?, l))) {
                        Ok((addr, l)) => {
                            let _ = ready_tx.send(Ok(addr));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let addr = listener.local_addr().expect("bound");
                    let tracker = TaskTracker::new();
                    accept_loop(listener, addr, thread_shared, thread_stop, tracker.clone()).await;
                    tracker.close();
                    tracker.wait().await;
                });
                let _ = done_tx.send(());
            })?;
        let addr = ready
            .await
            .map_err(|_| io::Error::other("the proxy thread ended before it listened"))??;
        Ok(Proxy {
            addr,
            shared,
            stop,
            done,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches a fault on under `id` (unique per firing) and returns how many open
    /// connections it hits (none for `refuse`, which acts on new ones). `reset` acts once;
    /// every other fault stays on until `end(id)`.
    pub fn begin(&self, id: u64, fault: Fault) -> u32 {
        let active = Active { id, fault };
        let hit = if fault.toxic == Toxic::Refuse {
            0
        } else {
            self.hit(&active)
        };
        if fault.toxic == Toxic::Reset {
            self.shared.resets.send_modify(|list| list.push(active));
        } else {
            self.shared.faults.send_modify(|list| {
                *list = list.iter().copied().chain([active]).collect();
            });
        }
        hit
    }

    /// Switches fault `id` off.
    pub fn end(&self, id: u64) {
        self.shared.faults.send_if_modified(|list| {
            let before = list.len();
            *list = list.iter().copied().filter(|a| a.id != id).collect();
            list.len() != before
        });
    }

    fn hit(&self, active: &Active) -> u32 {
        let open = self.shared.open.lock().expect("not poisoned");
        open.iter()
            .filter(|&&conn| active.fault.hits(self.shared.seed, active.id, conn))
            .count() as u32
    }

    pub fn counts(&self) -> ProxyCounts {
        let s = &self.shared.stats;
        ProxyCounts {
            connections: s.connections.load(Relaxed),
            open: self.shared.open.lock().expect("not poisoned").len() as u64,
            upstream_failures: s.upstream_failures.load(Relaxed),
            refused: s.refused.load(Relaxed),
            listener_closed: s.listener_closed.load(Relaxed),
            reset: s.reset.load(Relaxed),
            limited: s.limited.load(Relaxed),
            bytes_upstream: s.bytes_upstream.load(Relaxed),
            bytes_downstream: s.bytes_downstream.load(Relaxed),
        }
    }

    /// Stops accepting, lets open connections finish for a moment, resets the rest.
    pub async fn shutdown(mut self) -> ProxyCounts {
        self.stop.cancel();
        // The accept loop ends at once; connections end when their peers close.
        let _ = timeout(SHUTDOWN_GRACE, self.wait_connections()).await;
        let open_at_end = self.counts().open;
        self.shared.faults.send_replace(Arc::from([]));
        self.shared.kill.cancel();
        let _ = (&mut self.done).await;
        ProxyCounts {
            open: open_at_end,
            ..self.counts()
        }
    }

    async fn wait_connections(&self) {
        while !self.shared.open.lock().expect("not poisoned").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A listener with SO_REUSEADDR, so it can be opened again on the same port after `refuse`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Whether a `refuse` fault that closes the listener is on.
fn refusing_all(active: &[Active]) -> bool {
    active
        .iter()
        .any(|a| a.fault.toxic == Toxic::Refuse && a.fault.toxicity >= 1.0)
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let mut faults = shared.faults.subscribe();
    let mut listener = Some(listener);
    let mut next_conn = 0u64;
    loop {
        let refuse = refusing_all(&faults.borrow_and_update());
        if refuse && listener.is_some() {
            // Closing the listener makes new connections fail with ECONNREFUSED.
            listener = None;
            shared.stats.listener_closed.fetch_add(1, Relaxed);
        }
        if !refuse && listener.is_none() {
            match bind(addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!("proxy: cannot listen on {addr} again: {e}; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
        let accepted = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = faults.changed() => if changed.is_err() { return },
            accepted = accepted => match accepted {
                Ok((client, _)) => {
                    let conn = next_conn;
                    next_conn += 1;
                    shared.stats.connections.fetch_add(1, Relaxed);
                    tracker.spawn(connection(client, conn, shared.clone()));
                }
                Err(e) => {
                    // Out of descriptors, typically: wait a little instead of spinning.
                    tracing::debug!("proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
        }
    }
}

async fn connection(client: TcpStream, conn: u64, shared: Arc<Shared>) {
    let refused = shared
        .faults
        .borrow()
        .iter()
        .any(|a| a.fault.toxic == Toxic::Refuse && a.fault.hits(shared.seed, a.id, conn));
    if refused {
        shared.stats.refused.fetch_add(1, Relaxed);
        let _ = client.set_zero_linger();
        return;
    }
    let connect = timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(&shared.upstream));
    let upstream = tokio::select! {
        connected = connect => connected,
        _ = shared.kill.cancelled() => return,
    };
    let upstream = match upstream {
        Ok(Ok(s)) => s,
        _ => {
            shared.stats.upstream_failures.fetch_add(1, Relaxed);
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    // Subscribed before it counts as open, so that no reset that counts it can miss it.
    let mut resets = shared.resets.subscribe();
    let seen = resets.borrow_and_update().len();
    shared.open.lock().expect("not poisoned").insert(conn);

    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let abort = CancellationToken::new();
    let way = |way| Way {
        conn,
        way,
        seed: shared.seed,
    };
    // Each direction is its own task, so a chunk one way wakes only the pump it concerns.
    let pump_task = |src, dst, way, counter: fn(&Stats) -> &AtomicU64| {
        let (shared, abort) = (shared.clone(), abort.clone());
        tokio::spawn(async move {
            let faults = shared.faults.subscribe();
            pump(
                src,
                dst,
                way,
                faults,
                abort,
                counter(&shared.stats),
                &shared.delay,
            )
            .await
        })
    };
    let up = pump_task(client_read, upstream_write, way(Direction::Upstream), |s| {
        &s.bytes_upstream
    });
    let down = pump_task(upstream_read, client_write, way(Direction::Downstream), |s| {
        &s.bytes_downstream
    });
    let resets = watch_resets(resets, seen, &shared, conn, &abort);
    let (up, down) = tokio::select! {
        ends = futures_util::future::join(up, down) => ends,
        _ = resets => unreachable!("watch_resets never returns"),
    };
    // A pump that panicked counts as broken.
    let (up, down) = (up.unwrap_or(End::Broken), down.unwrap_or(End::Broken));
    if up == End::Limit || down == End::Limit {
        shared.stats.limited.fetch_add(1, Relaxed);
    }
    shared.open.lock().expect("not poisoned").remove(&conn);
}

/// Aborts the connection when a `reset` fault that hits it fires, or at shutdown; then waits
/// forever (the pumps end on the abort).
async fn watch_resets(
    mut resets: watch::Receiver<Vec<Active>>,
    mut seen: usize,
    shared: &Shared,
    conn: u64,
    abort: &CancellationToken,
) {
    // Resets fired since `seen` was taken count too.
    resets.mark_changed();
    loop {
        tokio::select! {
            changed = resets.changed() => {
                if changed.is_err() {
                    break;
                }
                let list = resets.borrow_and_update();
                let hit = list[seen..]
                    .iter()
                    .any(|a| a.fault.hits(shared.seed, a.id, conn));
                seen = list.len();
                drop(list);
                if hit {
                    if !abort.is_cancelled() {
                        shared.stats.reset.fetch_add(1, Relaxed);
                    }
                    break;
                }
            }
            _ = shared.kill.cancelled() => break,
        }
    }
    abort.cancel();
    std::future::pending().await
}
