//! One open connection: the step loop and the correlation of replies, as a single state
//! machine in one task. It sends, reads, expires deadlines and sleeps with one timer, so a
//! timeout fires on time even when the server sends nothing at all.

use std::pin::pin;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::client::ClientState;
use super::connect::Ws;
use super::pending::Pending;
use crate::metrics::{DropCause, Event, Reply};
use crate::scenario::Step;
use crate::scenario::pointer::FoundId;
use crate::scenario::template::{RenderCtx, parse_request_id};

/// How long a closing client waits for the server's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How a connection ended.
pub enum End {
    /// The client closed it (stop or ramp-down); `unfinished` requests were abandoned.
    Closed { unfinished: u32 },
    /// It ended on its own; `lost` requests were in flight.
    Dropped { cause: DropCause, lost: u32 },
}

/// What the step loop waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Ready,
    Sleep(Instant),
    Reply(u64),
}

pub async fn drive(ws: &mut Ws, shared: &Shared, state: &mut ClientState, stop: &CancellationToken) -> End {
    let events = &shared.events;
    let steps = &shared.steps[..];
    let deadline_after = shared.correlation.as_ref().map_or(Duration::MAX, |c| c.timeout);
    let mut pending = Pending::default();
    let mut step = 0;
    let mut block = Block::Ready;
    let mut stopping = false;
    let mut timer = pin!(sleep_until(Instant::now()));
    let mut armed: Option<Instant> = None;
    let mut last_len = 64;

    loop {
        while !stopping && block == Block::Ready && !steps.is_empty() {
            match &steps[step] {
                Step::Send { template, expect } => {
                    state.next_seq += 1;
                    let mut text = String::with_capacity(last_len);
                    let mut ctx = RenderCtx {
                        client: state.index,
                        seq: state.next_seq,
                        rng: &mut state.rng,
                    };
                    template.render(&mut ctx, &mut text);
                    last_len = text.len();
                    let bytes = text.len() as u32;
                    if let Some(expect) = expect {
                        pending.insert(state.next_seq, Instant::now());
                        if expect.wait {
                            block = Block::Reply(state.next_seq);
                        }
                    }
                    if let Err(e) = ws.send(Message::Text(text.into())).await {
                        return End::Dropped {
                            cause: write_cause(&e),
                            lost: pending.clear(),
                        };
                    }
                    events
                        .send(Event::Sent {
                            bytes,
                            request: expect.is_some(),
                        })
                        .await;
                }
                Step::Sleep(d) => {
                    if !d.is_zero() {
                        block = Block::Sleep(Instant::now() + *d);
                    }
                }
            }
            step = (step + 1) % steps.len();
        }

        if stopping && pending.is_empty() {
            close(ws).await;
            return End::Closed { unfinished: 0 };
        }

        let wake = match block {
            Block::Sleep(until) if !stopping => Some(until),
            _ => None,
        };
        let wake = match (wake, pending.next_deadline(deadline_after)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at);
            }
            armed = wake;
        }

        tokio::select! {
            biased;
            _ = shared.halt.cancelled() => {
                return End::Closed { unfinished: pending.clear() };
            }
            _ = stop.cancelled(), if !stopping => stopping = true,
            _ = &mut timer, if armed.is_some() => {
                armed = None;
                let now = Instant::now();
                let expired = pending.expire(now, deadline_after);
                if expired > 0 {
                    events.send(Event::TimedOut(expired)).await;
                }
                block = match block {
                    Block::Reply(seq) if !pending.contains(seq) => Block::Ready,
                    Block::Sleep(until) if until <= now => Block::Ready,
                    other => other,
                };
            }
            message = ws.next() => {
                let now = Instant::now();
                let (bytes, text) = match &message {
                    Some(Ok(Message::Text(t))) => (t.len(), Some(t.as_str())),
                    Some(Ok(Message::Binary(b))) => (b.len(), std::str::from_utf8(b).ok()),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                        let lost = pending.clear();
                        close(ws).await;
                        return End::Dropped { cause: DropCause::ServerClose(code), lost };
                    }
                    Some(Ok(_)) => continue, // ping, pong: tungstenite answers pings itself
                    Some(Err(e)) => return End::Dropped { cause: read_cause(e), lost: pending.clear() },
                    None => return End::Dropped { cause: DropCause::Abnormal, lost: pending.clear() },
                };
                let reply = classify(shared, state.index, &mut pending, text, now);
                if let (Reply::Answered { .. }, Block::Reply(seq)) = (reply, block)
                    && !pending.contains(seq)
                {
                    block = Block::Ready;
                }
                events.send(Event::Received { bytes: bytes as u32, reply }).await;
            }
        }
    }
}

/// Relates an incoming message to this connection's requests.
fn classify(shared: &Shared, client: u64, pending: &mut Pending, text: Option<&str>, now: Instant) -> Reply {
    let (Some(correlation), Some(text)) = (&shared.correlation, text) else {
        return Reply::Uncorrelated;
    };
    let ours = match correlation.request_id.find(text) {
        None => return Reply::Uncorrelated,
        Some(FoundId::Text(id)) => parse_request_id(&id),
        Some(FoundId::Number(_)) => None,
    };
    match ours {
        Some((c, seq)) if c == client => pending.resolve(seq, now),
        _ => Reply::Unmatched,
    }
}

/// Sends a normal close and waits briefly for the server's answer.
async fn close(ws: &mut Ws) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

fn read_cause(e: &WsError) -> DropCause {
    match e {
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => DropCause::Reset,
        WsError::Io(_) => DropCause::ReadError,
        WsError::ConnectionClosed | WsError::AlreadyClosed => DropCause::Abnormal,
        WsError::Protocol(_) | WsError::Capacity(_) | WsError::Utf8(_) => DropCause::Protocol,
        _ => DropCause::ReadError,
    }
}

fn write_cause(e: &WsError) -> DropCause {
    match e {
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => DropCause::Reset,
        _ => DropCause::WriteError,
    }
}
