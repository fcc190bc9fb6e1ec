//! The server loop: accept, upgrade (echoing the first offered subprotocol), then per
//! connection echo each data message after the configured delay, or withhold it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::Behaviour;
use super::delay::DelayLine;

/// What the server saw. Written with `Relaxed` atomics: exact once connections are closed.
#[derive(Debug, Default)]
struct Stats {
    connections: AtomicU64,
    open: AtomicU64,
    received: AtomicU64,
    answered: AtomicU64,
    withheld: AtomicU64,
}

/// A snapshot of the server's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCounts {
    /// Upgrades completed.
    pub connections: u64,
    /// Connections open now.
    pub open: u64,
    /// Data messages received.
    pub received: u64,
    /// Replies sent.
    pub answered: u64,
    /// Replies withheld on purpose.
    pub withheld: u64,
}

/// A running server; dropping it does not stop it, `shutdown` does.
pub struct Server {
    pub addr: SocketAddr,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn counts(&self) -> ServerCounts {
        let s = &self.stats;
        ServerCounts {
            connections: s.connections.load(Relaxed),
            open: s.open.load(Relaxed),
            received: s.received.load(Relaxed),
            answered: s.answered.load(Relaxed),
            withheld: s.withheld.load(Relaxed),
        }
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
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let cancel = CancellationToken::new();
    let shared = Arc::new(behaviour);
    let task = tokio::spawn(accept_loop(listener, shared, stats.clone(), cancel.clone()));
    Ok(Server {
        addr,
        stats,
        cancel,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    behaviour: Arc<Behaviour>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    let tracker = tokio_util::task::TaskTracker::new();
    let delayed = !behaviour.latency.is_zero() || !behaviour.jitter.is_zero();
    let delay = delayed.then(|| Arc::new(DelayLine::start()));
    let mut next_conn = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                next_conn += 1;
                let rng = SmallRng::seed_from_u64(behaviour.seed.wrapping_add(next_conn));
                tracker.spawn(serve_one(tcp, behaviour.clone(), delay.clone(), stats.clone(), cancel.clone(), rng));
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// Accepts the upgrade, choosing the first subprotocol the client offered.
// The error type is fixed by tungstenite's callback trait.
#[allow(clippy::result_large_err)]
fn echo_first_protocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let first = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|p| p.trim().parse().ok());
    if let Some(first) = first {
        response.headers_mut().insert("sec-websocket-protocol", first);
    }
    Ok(response)
}

async fn serve_one(
    tcp: TcpStream,
    behaviour: Arc<Behaviour>,
    delay: Option<Arc<DelayLine>>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    mut rng: SmallRng,
) {
    let _ = tcp.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, echo_first_protocol, Some(config)).await
    else {
        return;
    };
    stats.connections.fetch_add(1, Relaxed);
    stats.open.fetch_add(1, Relaxed);
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                break;
            }
            Some(reply) = replies.recv() => {
                if ws.send(reply).await.is_err() { break; }
                stats.answered.fetch_add(1, Relaxed);
            }
            message = ws.next() => {
                let message = match message {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => m,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
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
                    if ws.send(message).await.is_err() { break; }
                    stats.answered.fetch_add(1, Relaxed);
                }
            }
        }
    }
    stats.open.fetch_sub(1, Relaxed);
}
