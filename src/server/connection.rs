//! One connection of the built-in target: the upgrade (see `upgrade`: refuse while restarting,
//! check the token, echo the first offered subprotocol), then echo each data message after the
//! configured delay, or withhold it; push, ping, and close on the schedule.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use super::graphql;
use super::jsonrpc::JsonRpc;
use super::socketio;
use super::state::Shared;
use super::timers::Timers;
use super::upgrade::{self, Asked};
use crate::delay::DelayLine;
use crate::scenario::Protocol;

/// How long a closing connection waits to send its close frame, and for the answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<TcpStream>;

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

/// What one connection works with besides its socket.
pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    /// Holds delayed replies until they are due (None when there is no delay).
    pub(super) delay: Option<Arc<DelayLine<Message>>>,
    pub(super) cancel: CancellationToken,
    /// For the jitter and the withheld fraction.
    pub(super) rng: SmallRng,
    /// Replies held for the next batch (`Behaviour::batch`).
    batched: Vec<String>,
    /// With `--protocol jsonrpc`: the connection's subscriptions.
    jsonrpc: Option<JsonRpc>,
    /// The connection's number (in Socket.IO session ids).
    n: u64,
}

impl Conn {
    /// Connection `n` (counted from 1 by the server).
    pub(super) fn new(
        shared: Arc<Shared>,
        delay: Option<Arc<DelayLine<Message>>>,
        cancel: CancellationToken,
        n: u64,
    ) -> Self {
        let rng = SmallRng::seed_from_u64(shared.behaviour.seed.wrapping_add(n));
        let jsonrpc = (shared.behaviour.protocol == Some(Protocol::Jsonrpc)).then(|| JsonRpc::new(n));
        Conn {
            shared,
            delay,
            cancel,
            rng,
            batched: Vec::new(),
            jsonrpc,
            n,
        }
    }

    /// Upgrades `tcp` and serves it until it ends.
    pub(super) async fn serve(mut self, tcp: TcpStream) {
        let _ = tcp.set_nodelay(true);
        let peer = tcp.peer_addr().ok().map(|a| a.ip());
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let mut asked = Asked::default();
        let shared = &self.shared;
        // The error type is fixed by tungstenite's callback trait.
        #[allow(clippy::result_large_err)]
        let callback = |request: &_, response| upgrade::check(shared, request, response, &mut asked);
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await
        else {
            return;
        };
        // Subscribed before the upgrade counts as done: a close after it reaches this connection.
        let closes = self.shared.closes.subscribe();
        let accepted = Instant::now();
        self.shared.accepted(accepted, peer);
        let shared = self.shared.clone();
        let timers = Timers::new(&shared.behaviour, accepted, asked.resume_from);
        let end = self.run(&mut ws, closes, timers).await;
        self.finish(ws, end).await;
        self.shared.stats.open.fetch_sub(1, Relaxed);
    }

    async fn run(&mut self, ws: &mut Ws, mut closes: watch::Receiver<u64>, mut timers: Timers<'_>) -> End {
        let shared = self.shared.clone();
        let stats = &shared.stats;
        let timed = timers.deadline().is_some();
        let timer =
            tokio::time::sleep_until(timers.deadline().unwrap_or_else(|| Instant::now() + CLOSE_WAIT));
        tokio::pin!(timer);
        let (replies_tx, mut replies) = mpsc::unbounded_channel();
        let socketio = shared.behaviour.protocol == Some(Protocol::Socketio);
        if socketio {
            let b = &shared.behaviour;
            if ws
                .send(Message::text(socketio::open(
                    self.n,
                    b.ping_interval(),
                    b.ping_timeout,
                )))
                .await
                .is_err()
            {
                return End::Peer;
            }
        }
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return End::Shutdown,
                Ok(()) = closes.changed() => return End::Schedule,
                () = &mut timer, if timed => {
                    let due = timers.fire(Instant::now());
                    if due.idle {
                        return End::Idle;
                    }
                    if let Some(seq) = due.push {
                        match &self.jsonrpc {
                            None => {
                                if ws.send(push(seq)).await.is_err() { return End::Peer; }
                                stats.pushes.fetch_add(1, Relaxed);
                            }
                            Some(rpc) => {
                                for n in rpc.notifications(seq, unix_us()) {
                                    if ws.send(Message::text(n)).await.is_err() { return End::Peer; }
                                    stats.pushes.fetch_add(1, Relaxed);
                                }
                            }
                        }
                    }
                    if due.ping {
                        // Socket.IO's heartbeat is Engine.IO's ping packet, not a WebSocket ping.
                        let ping = if socketio { Message::text("2") } else { Message::Ping(Default::default()) };
                        if ws.send(ping).await.is_err() { return End::Peer; }
                        stats.pings_sent.fetch_add(1, Relaxed);
                    }
                    if let Some(next) = timers.deadline() {
                        timer.as_mut().reset(next);
                    }
                }
                Some(reply) = replies.recv() => {
                    stats.answered.fetch_add(1, Relaxed);
                    if let Some(reply) = self.batched(reply)
                        && ws.send(reply).await.is_err()
                    {
                        return End::Peer;
                    }
                }
                message = ws.next() => {
                    let message = match message {
                        Some(Ok(m)) => {
                            timers.heard();
                            m
                        }
                        None | Some(Err(_)) => return End::Peer,
                    };
                    match message {
                        Message::Text(t) if shared.behaviour.protocol == Some(Protocol::GraphqlWs) => {
                            stats.received.fetch_add(1, Relaxed);
                            for reply in graphql::answer(t.as_str(), shared.behaviour.batch) {
                                if ws.send(Message::text(reply)).await.is_err() {
                                    return End::Peer;
                                }
                                stats.answered.fetch_add(1, Relaxed);
                            }
                        }
                        m @ (Message::Text(_) | Message::Binary(_)) => {
                            if let Some(reply) = self.answer(m, &replies_tx) {
                                stats.answered.fetch_add(1, Relaxed);
                                if let Some(reply) = self.batched(reply)
                                    && ws.send(reply).await.is_err()
                                {
                                    return End::Peer;
                                }
                            }
                        }
                        Message::Close(_) => return End::ClosedByPeer,
                        Message::Pong(_) => {
                            stats.pongs_received.fetch_add(1, Relaxed);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// What to do with a data message: withhold it, hand it to the delay line (which brings
    /// it back through `replies`), or echo it now (returned).
    fn answer(&mut self, message: Message, replies: &mpsc::UnboundedSender<Message>) -> Option<Message> {
        let (behaviour, stats) = (&self.shared.behaviour, &self.shared.stats);
        let n = stats.received.fetch_add(1, Relaxed) + 1;
        // A JSON-RPC notification has no reply (and is not a withheld one).
        let message = match (&mut self.jsonrpc, behaviour.protocol) {
            (Some(rpc), _) => Message::text(rpc.answer(message.to_text().unwrap_or_default())?),
            (None, Some(Protocol::Socketio)) => {
                let text = message.to_text().unwrap_or_default();
                if text == "3" {
                    stats.pongs_received.fetch_add(1, Relaxed);
                }
                Message::text(socketio::answer(text, self.n)?)
            }
            _ => message,
        };
        let withhold = behaviour
            .no_reply_every
            .is_some_and(|every| n.is_multiple_of(every))
            || (behaviour.no_reply_fraction > 0.0 && self.rng.random_bool(behaviour.no_reply_fraction));
        if withhold {
            stats.withheld.fetch_add(1, Relaxed);
            return None;
        }
        let Some(delay) = &self.delay else {
            return Some(message);
        };
        let jitter = match behaviour.jitter.as_micros() as u64 {
            0 => 0,
            max => self.rng.random_range(0..=max),
        };
        let at = Instant::now() + behaviour.latency + Duration::from_micros(jitter);
        delay.send_at(at.into_std(), message, replies.clone());
        None
    }

    /// A reply, or the batch it completes (None: held for the batch). A batch's messages are
    /// the replies' JSON (a reply that is not JSON goes in as a string).
    fn batched(&mut self, reply: Message) -> Option<Message> {
        let batch = self.shared.behaviour.batch as usize;
        if batch <= 1 {
            return Some(reply);
        }
        let text = reply.to_text().unwrap_or_default();
        let item = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            text.to_string()
        } else {
            serde_json::Value::from(text).to_string()
        };
        self.batched.push(item);
        if self.batched.len() < batch {
            return None;
        }
        let messages = std::mem::take(&mut self.batched).join(",");
        Some(Message::text(format!(
            r#"{{"type":"batch","messages":[{messages}]}}"#
        )))
    }

    async fn finish(&self, mut ws: Ws, end: End) {
        let (behaviour, stats) = (&self.shared.behaviour, &self.shared.stats);
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
    }
}

/// `{"type":"push","seq":N,"sent_at_us":T}` with T the Unix time in µs.
fn push(seq: u64) -> Message {
    let sent_at_us = unix_us();
    Message::text(format!(
        r#"{{"type":"push","seq":{seq},"sent_at_us":{sent_at_us}}}"#
    ))
}

/// The Unix time in µs.
fn unix_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Sends a close frame and waits (briefly) for the client's, discarding what comes before it.
async fn close_and_wait(ws: &mut Ws, code: CloseCode, reason: &'static str) {
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
