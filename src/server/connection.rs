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
use super::stomp::Stomp;
use super::timers::Timers;
use super::upgrade::{self, Asked};
use crate::deflate::Socket;
use crate::delay::DelayLine;
use crate::scenario::Protocol;

/// How long a closing connection waits to send its close frame, and for the answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<Socket<TcpStream>>;

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
    /// The protocol ends the session (a STOMP ERROR or DISCONNECT): a normal close.
    Done,
}

/// When an answer goes (`Conn::due`).
enum Due {
    Withheld,
    Now,
    /// At this time, through the delay line.
    At(std::time::Instant, Arc<DelayLine<Message>>),
}

/// What a data message brings: frames that go out at once, first (STOMP's CONNECTED, a SEND's
/// MESSAGEs, an ERROR), the reply to send now (None: none, withheld or delayed), and whether
/// the session ends after them.
#[derive(Default)]
struct Answered {
    first: Vec<String>,
    reply: Option<Message>,
    close: bool,
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
    /// With `--protocol stomp`: the session.
    stomp: Option<Stomp>,
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
        let stomp = (shared.behaviour.protocol == Some(Protocol::Stomp)).then(|| Stomp::new(n));
        Conn {
            shared,
            delay,
            cancel,
            rng,
            batched: Vec::new(),
            jsonrpc,
            stomp,
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
        let Ok(mut ws) =
            tokio_tungstenite::accept_hdr_async_with_config(Socket::new(tcp), callback, Some(config)).await
        else {
            return;
        };
        upgrade::start_deflate(&self.shared, ws.get_mut(), &asked, &config);
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
                    if let Err(end) = self.on_timer(ws, &mut timers, socketio).await {
                        return end;
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
                            for reply in self.graphql(t.as_str(), &replies_tx) {
                                if ws.send(reply).await.is_err() {
                                    return End::Peer;
                                }
                                stats.answered.fetch_add(1, Relaxed);
                            }
                        }
                        m @ (Message::Text(_) | Message::Binary(_)) => {
                            let answered = self.answer(m, &replies_tx);
                            // STOMP's frames sent at once: MESSAGEs are pushes.
                            for frame in answered.first {
                                let push = frame.starts_with("MESSAGE");
                                if ws.send(Message::text(frame)).await.is_err() {
                                    return End::Peer;
                                }
                                if push {
                                    stats.pushes.fetch_add(1, Relaxed);
                                }
                            }
                            if let Some(reply) = answered.reply {
                                stats.answered.fetch_add(1, Relaxed);
                                if let Some(reply) = self.batched(reply)
                                    && ws.send(reply).await.is_err()
                                {
                                    return End::Peer;
                                }
                            }
                            if answered.close {
                                return End::Done;
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

    /// What the connection's timer brings: the end of an idle connection, a push, a ping.
    async fn on_timer(&mut self, ws: &mut Ws, timers: &mut Timers<'_>, socketio: bool) -> Result<(), End> {
        let stats = &self.shared.stats;
        let due = timers.fire(Instant::now());
        if due.idle {
            return Err(End::Idle);
        }
        if let Some(seq) = due.push {
            match &self.jsonrpc {
                None => {
                    ws.send(push(seq)).await.map_err(|_| End::Peer)?;
                    stats.pushes.fetch_add(1, Relaxed);
                }
                Some(rpc) => {
                    for n in rpc.notifications(seq, unix_us()) {
                        ws.send(Message::text(n)).await.map_err(|_| End::Peer)?;
                        stats.pushes.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if due.ping {
            // Socket.IO's heartbeat is Engine.IO's ping packet, STOMP's an EOL (which wants
            // no answer), not a WebSocket ping.
            let ping = if socketio {
                Message::text("2")
            } else if self.stomp.is_some() {
                Message::text("\n")
            } else {
                Message::Ping(Default::default())
            };
            ws.send(ping).await.map_err(|_| End::Peer)?;
            stats.pings_sent.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// What to do with a data message: withhold its reply, hand it to the delay line (which
    /// brings it back through `replies`), or return it to send now; frames that go first are
    /// returned whatever becomes of the reply.
    fn answer(&mut self, message: Message, replies: &mpsc::UnboundedSender<Message>) -> Answered {
        let (behaviour, stats) = (&self.shared.behaviour, &self.shared.stats);
        let n = stats.received.fetch_add(1, Relaxed) + 1;
        let mut answered = Answered::default();
        // A JSON-RPC notification has no reply (and is not a withheld one).
        let reply = match (&mut self.jsonrpc, behaviour.protocol) {
            (Some(rpc), _) => rpc
                .answer(message.to_text().unwrap_or_default())
                .map(Message::text),
            (None, Some(Protocol::Stomp)) => self.stomp.as_mut().and_then(|stomp| {
                let beat = behaviour.ping_interval().map_or(0, |d| d.as_millis() as u64);
                let answer = stomp.answer(message.to_text().unwrap_or_default(), beat);
                answered.first = answer.now;
                answered.close = answer.close;
                answer.receipt.map(Message::text)
            }),
            (None, Some(Protocol::Socketio)) => {
                let text = message.to_text().unwrap_or_default();
                if text == "3" {
                    stats.pongs_received.fetch_add(1, Relaxed);
                }
                socketio::answer(text, self.n).map(Message::text)
            }
            _ => Some(message),
        };
        let Some(reply) = reply else {
            return answered;
        };
        answered.reply = match self.due(n) {
            Due::Withheld => None,
            Due::Now => Some(reply),
            Due::At(at, delay) => {
                delay.send_at(at, reply, replies.clone());
                None
            }
        };
        answered
    }

    /// GraphQL's answers to a message, as the behaviour says: withheld together, delayed
    /// together (brought back in order through `replies`), or returned to send now.
    fn graphql(&mut self, text: &str, replies: &mpsc::UnboundedSender<Message>) -> Vec<Message> {
        let n = self.shared.stats.received.fetch_add(1, Relaxed) + 1;
        let answers = graphql::answer(text, self.shared.behaviour.batch);
        if answers.is_empty() {
            return Vec::new();
        }
        let answers = answers.into_iter().map(Message::text);
        match self.due(n) {
            Due::Withheld => Vec::new(),
            Due::Now => answers.collect(),
            Due::At(at, delay) => {
                for answer in answers {
                    delay.send_at(at, answer, replies.clone());
                }
                Vec::new()
            }
        }
    }

    /// When the answer to the `n`th message received goes: never (withheld, and counted), now,
    /// or after the latency and jitter.
    fn due(&mut self, n: u64) -> Due {
        let (behaviour, stats) = (&self.shared.behaviour, &self.shared.stats);
        let withhold = behaviour
            .no_reply_every
            .is_some_and(|every| n.is_multiple_of(every))
            || (behaviour.no_reply_fraction > 0.0 && self.rng.random_bool(behaviour.no_reply_fraction));
        if withhold {
            stats.withheld.fetch_add(1, Relaxed);
            return Due::Withheld;
        }
        let Some(delay) = self.delay.clone() else {
            return Due::Now;
        };
        let jitter = match behaviour.jitter.as_micros() as u64 {
            0 => 0,
            max => self.rng.random_range(0..=max),
        };
        let at = Instant::now() + behaviour.latency + Duration::from_micros(jitter);
        Due::At(at.into_std(), delay)
    }

    /// A reply, or the batch it completes (None: held for the batch). A batch's messages are
    /// the replies' JSON (a reply that is not JSON goes in as a string).
    fn batched(&mut self, reply: Message) -> Option<Message> {
        let batch = self.shared.behaviour.batch as usize;
        // graphql-ws's batch is the number of `next` messages a subscribe is answered with.
        if batch <= 1 || self.shared.behaviour.protocol == Some(Protocol::GraphqlWs) {
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
            End::Shutdown | End::Done => {
                let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(None)).await;
            }
            End::Schedule => {
                stats.closed_by_schedule.fetch_add(1, Relaxed);
                if behaviour.close_by_reset {
                    // Zero linger: dropping the socket sends RST instead of FIN, with no close frame.
                    let _ = ws.get_ref().get_ref().set_zero_linger();
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
