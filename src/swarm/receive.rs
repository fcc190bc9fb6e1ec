//! What a message from the server is to the connection that receives it: the correlated reply
//! to one of its requests (or a stream's part, a late or duplicate reply, an unmatched id), a
//! push (with its sequence and latency), a pong, a close; and what it settles in the program
//! (a reply waited for, a `wait_for` step's message).

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::causes::read_cause;
use super::connection::{Block, Conn, Cut, close};
use super::pending::Judged;
use super::state::ClientState;
use super::stream::Ws;
use crate::metrics::{DropCause, Event, Reply};
use crate::scenario::Step;
use crate::scenario::check;
use crate::scenario::pointer::FoundId;
use crate::scenario::template::parse_request_id;

impl Conn<'_> {
    /// Handles what `ws.next()` gave: a message, an error, or the end of the stream.
    pub(super) async fn on_message(
        &mut self,
        ws: &mut Ws,
        state: &mut ClientState,
        message: Option<Result<Message, WsError>>,
    ) -> Result<(), Cut> {
        let now = Instant::now();
        let (bytes, text) = match &message {
            Some(Ok(Message::Text(t))) => (t.len(), Some(t.as_str())),
            Some(Ok(Message::Binary(b))) => (b.len(), std::str::from_utf8(b).ok()),
            Some(Ok(Message::Pong(payload))) => {
                if let Some(rtt) = self.heart.as_mut().and_then(|h| h.pong(payload, now)) {
                    let rtt_us = rtt.as_micros() as u64;
                    self.shared.events.send(Event::Pong { rtt_us }).await;
                }
                return Ok(());
            }
            Some(Ok(Message::Close(frame))) => {
                // tungstenite hands an invalid close code (999, 1005 on the wire…) on as 1002
                // "Protocol violation": the server broke the protocol.
                let (cause, why) = match frame {
                    Some(f) if f.code == CloseCode::Protocol && f.reason == "Protocol violation" => (
                        DropCause::Protocol,
                        "a close frame with an invalid code".to_string(),
                    ),
                    Some(f) if f.reason.is_empty() => {
                        (DropCause::ServerClose(u16::from(f.code)), String::new())
                    }
                    Some(f) => (
                        DropCause::ServerClose(u16::from(f.code)),
                        format!("the server's close reason: {}", f.reason),
                    ),
                    None => (
                        DropCause::ServerClose(1005),
                        "a close frame without a code".to_string(),
                    ),
                };
                let cut = if why.is_empty() {
                    Cut::Drop(self.cause(cause))
                } else {
                    self.dropped(cause, || why)
                };
                close(ws, CloseCode::Normal).await;
                return Err(cut);
            }
            // Pings: tungstenite answers them itself.
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => return Err(self.dropped(read_cause(e), || format!("reading: {e}"))),
            None => {
                return Err(self.dropped(DropCause::Abnormal, || {
                    "the stream ended without a close frame".into()
                }));
            }
        };
        let reply = self.classify(state, text, now);
        // Only plain values live across the awaits below (the task stays small).
        let waited_us = self.settle(reply, text, now);
        let events = &self.shared.events;
        events
            .send(Event::Received {
                bytes: bytes as u32,
                reply,
            })
            .await;
        if let Some(us) = waited_us {
            events.send(Event::WaitedFor { us }).await;
        }
        Ok(())
    }

    /// What `reply` settles in the program: the reply it waits for, or the message a
    /// `wait_for` step waits for (how long it waited, in µs).
    fn settle(&mut self, reply: Reply, text: Option<&str>, now: Instant) -> Option<u64> {
        match (reply, self.block) {
            (Reply::Answered { .. }, Block::Reply(seq)) if !self.pending.contains(seq) => {
                self.block = Block::Ready;
                None
            }
            // A message that settles none of this connection's requests.
            (Reply::Push { .. } | Reply::Unmatched, Block::Message(until)) => {
                let Step::WaitFor { check, timeout } = self.shared.step(usize::from(self.wait_step)) else {
                    return None;
                };
                let text = text?;
                if !check::all_hold(std::slice::from_ref(check), text) {
                    return None;
                }
                self.block = Block::Ready;
                Some(now.saturating_duration_since(until - *timeout).as_micros() as u64)
            }
            _ => None,
        }
    }

    /// Relates an incoming message to this connection's requests and pushes.
    fn classify(&mut self, state: &mut ClientState, text: Option<&str>, now: Instant) -> Reply {
        let shared = self.shared;
        let plan = &shared.plan;
        if let (Some(correlation), Some(text)) = (&plan.correlation, text) {
            let ours = match correlation.request_id.find(text) {
                None => None,
                Some(FoundId::Text(id)) => Some(parse_request_id(&id)),
                Some(FoundId::Number(_)) => Some(None),
            };
            match ours {
                Some(Some((client, seq))) if client == state.index => {
                    return self
                        .pending
                        .resolve(seq, now, |step| judge(shared.step(usize::from(step)), text));
                }
                Some(_) => return Reply::Unmatched,
                None => {}
            }
        }
        // A push: check its sequence and latency when the scenario names them.
        let (mut gap, mut repeated, mut latency_us) = (0, false, None);
        if let Some(text) = text {
            if let Some(pointer) = &plan.pushes.sequence
                && let Some(FoundId::Number(seq)) = pointer.find(text)
            {
                match state.last_push_seq {
                    Some(last) if seq <= last => repeated = true,
                    Some(last) => gap = (seq - last - 1).min(u64::from(u32::MAX)) as u32,
                    None => {}
                }
                state.last_push_seq = Some(state.last_push_seq.map_or(seq, |last| last.max(seq)));
            }
            if let Some(pointer) = &plan.pushes.sent_at
                && let Some(FoundId::Number(sent_us)) = pointer.find(text)
            {
                let now_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_micros() as u64;
                latency_us = Some(now_us.saturating_sub(sent_us));
            }
        }
        Reply::Push {
            gap,
            repeated,
            latency_us,
        }
    }
}

/// What `text` is to the request step `step` sent: a stream's part or the answer, and whether
/// it passes the step's checks (the reply is parsed as JSON only when a check needs it).
fn judge(step: &Step, text: &str) -> Judged {
    let Step::Send {
        expect: Some(expect), ..
    } = step
    else {
        return Judged::PLAIN;
    };
    let json = check::json_for(expect.checks.iter().chain(&expect.last), text);
    if let Some(last) = &expect.last
        && !last.holds(text, json.as_ref())
    {
        return Judged::Part;
    }
    Judged::Answer {
        stream: expect.last.is_some(),
        failed: !expect.checks.iter().all(|c| c.holds(text, json.as_ref())),
    }
}
