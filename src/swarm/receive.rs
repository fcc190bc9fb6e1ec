//! What a message from the server is to the connection that receives it: the correlated reply
//! to one of its requests (or a stream's part, a late or duplicate reply, an unmatched id), a
//! push (with its sequence and latency), a pong, a close; and what it settles in the program
//! (a reply waited for, a `wait_for` step's message).

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::causes::read_cause;
use super::connection::{Block, Conn, Cut};
use super::pending::Judged;
use super::state::ClientState;
use super::stream::Ws;
use super::stream::close;
use serde_json::Value;

use crate::metrics::{DropCause, Event, Reply};
use crate::scenario::check::{Check, IdFinder};
use crate::scenario::pointer::{Found, FoundId};
use crate::scenario::template::{parse_decimal, parse_request_id};
use crate::scenario::{Capture, Connect, Step, Var};

/// What a message is to the connection: one reply (or push), or the replies of a batch.
enum Classified {
    One(Reply),
    Batch(Vec<Reply>),
}

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
                // Boxed: once a connection, and its future would otherwise sit in every task.
                Box::pin(close(ws, CloseCode::Normal)).await;
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
        if let Some(text) = text
            && !self.shared.plan.rules.is_empty()
        {
            // Boxed: only scenarios with rules pay for its state.
            return Box::pin(self.take_with_rules(ws, state, text, bytes, now)).await;
        }
        // The message's JSON is parsed at most once, by whichever of the correlation, the
        // checks or a `wait_for` first reads it; it is gone before the awaits below.
        let (reply, waited_us, cut) = {
            let mut json = text.map(|t| Lazy::new(&self.shared.plan.connect, t));
            match self.classify(state, json.as_mut(), now) {
                Classified::One(reply) => {
                    let (waited_us, cut) = self.settle_one(state, reply, None, json, now);
                    (reply, waited_us, cut)
                }
                // Boxed: rare, and its list would otherwise sit in every task.
                Classified::Batch(replies) => {
                    let waited_us = self.settle_batch(state, &replies, json, now);
                    return Box::pin(self.batch(replies, bytes, waited_us)).await;
                }
            }
        };
        self.report(reply, waited_us, cut, bytes).await
    }

    /// `on_message` for a text message in a scenario with rules: they see the message (a reply
    /// only when a rule is for replies) after the correlation, and read the JSON it parsed.
    async fn take_with_rules(
        &mut self,
        ws: &mut Ws,
        state: &mut ClientState,
        text: &str,
        bytes: usize,
        now: Instant,
    ) -> Result<(), Cut> {
        let mut json = Lazy::new(&self.shared.plan.connect, text);
        let reply = match self.classify(state, Some(&mut json), now) {
            Classified::One(reply) => reply,
            Classified::Batch(replies) => {
                let waited_us = self.settle_batch(state, &replies, Some(json), now);
                return self.batch(replies, bytes, waited_us).await;
            }
        };
        let is_reply = !matches!(reply, Reply::Push { .. } | Reply::Unmatched);
        let mut cut = None;
        if !is_reply || self.shared.plan.rules.iter().any(|r| r.replies) {
            cut = self.apply_rules(ws, state, &mut json, is_reply).await.err();
        }
        let (waited_us, cut) = self.settle_one(state, reply, cut, Some(json), now);
        self.report(reply, waited_us, cut, bytes).await
    }

    /// What one reply or push settles in the program (how long a `wait_for` waited for it, in
    /// µs), unless it is cut: by `cut` (a rule's), or as the mismatch a `first` wait sees.
    fn settle_one(
        &mut self,
        state: &mut ClientState,
        reply: Reply,
        cut: Option<Cut>,
        mut json: Option<Lazy<'_>>,
        now: Instant,
    ) -> (Option<u64>, Option<Cut>) {
        let cut = cut.or_else(|| self.mismatch(state, &reply, json.as_mut()));
        if cut.is_some() {
            return (None, cut);
        }
        (self.settle(state, reply, json.as_mut(), now), None)
    }

    /// What a batch's replies settle in the program (a batch is never cut).
    fn settle_batch(
        &mut self,
        state: &mut ClientState,
        replies: &[Reply],
        mut json: Option<Lazy<'_>>,
        now: Instant,
    ) -> Option<u64> {
        let mut waited_us = None;
        for reply in replies {
            waited_us = waited_us.or(self.settle(state, *reply, json.as_mut(), now));
        }
        waited_us
    }

    /// Sends what one message came to: a reply or push, how long a `wait_for` waited for it,
    /// and the cut it caused. Only plain values live across its awaits (the task stays small).
    fn report(
        &mut self,
        reply: Reply,
        waited_us: Option<u64>,
        cut: Option<Cut>,
        bytes: usize,
    ) -> impl Future<Output = Result<(), Cut>> {
        // Not an `async fn`: its arguments would be kept twice in the task.
        let failed = std::mem::take(&mut self.capture_failures);
        let events = &self.shared.events;
        async move {
            if failed > 0 {
                events.send(Event::CaptureFailed(failed)).await;
            }
            // The message that ends the connection (a rule's drop, not the one a `first` wait
            // wanted) is still a message received (and, when a reply, an answer).
            let bytes = bytes as u32;
            events.send(Event::Received { bytes, reply }).await;
            if let Some(cut) = cut {
                return Err(cut);
            }
            if let Some(us) = waited_us {
                events.send(Event::WaitedFor { us }).await;
            }
            Ok(())
        }
    }

    /// A message that answers several requests at once (a batch): one message received, each
    /// id its own reply.
    async fn batch(&mut self, replies: Vec<Reply>, bytes: usize, waited_us: Option<u64>) -> Result<(), Cut> {
        let events = &self.shared.events;
        let failed = std::mem::take(&mut self.capture_failures);
        if failed > 0 {
            events.send(Event::CaptureFailed(failed)).await;
        }
        let mut replies = replies.into_iter();
        let first = replies.next().expect("a batch has replies");
        events
            .send(Event::Received {
                bytes: bytes as u32,
                reply: first,
            })
            .await;
        for reply in replies {
            events.send(Event::AlsoReplied(reply)).await;
        }
        if let Some(us) = waited_us {
            events.send(Event::WaitedFor { us }).await;
        }
        Ok(())
    }

    /// What `reply` settles in the program: the reply it waits for, or the message a
    /// `wait_for` step waits for (how long it waited, in µs).
    fn settle(
        &mut self,
        state: &mut ClientState,
        reply: Reply,
        json: Option<&mut Lazy<'_>>,
        now: Instant,
    ) -> Option<u64> {
        match (reply, self.block) {
            (Reply::Answered { .. }, Block::Reply(seq)) if !self.pending.contains(seq) => {
                self.block = Block::Ready;
                None
            }
            // A message that settles none of this connection's requests.
            (Reply::Push { .. } | Reply::Unmatched, Block::Message(until)) => {
                let shared = self.shared;
                let Step::WaitFor {
                    check,
                    timeout,
                    captures,
                    ..
                } = shared.step(usize::from(self.wait_step))
                else {
                    return None;
                };
                let json = json?;
                let text = json.text();
                let json = json.get(check.needs_json() || captures.iter().any(|c| c.from.needs_json()));
                if !check.holds_in(text, json, state.vars.values()) {
                    return None;
                }
                self.capture_failures += capture(captures, text, json, state, &shared.plan.vars);
                self.block = Block::Ready;
                Some(now.saturating_duration_since(until - *timeout).as_micros() as u64)
            }
            _ => None,
        }
    }

    /// A `wait_for` with `first` under way, and a message that is not the one: the server
    /// speaks another protocol (`protocol_mismatch`, saying what came).
    fn mismatch(&self, state: &ClientState, reply: &Reply, json: Option<&mut Lazy<'_>>) -> Option<Cut> {
        if !matches!(self.block, Block::Message(_)) || !matches!(reply, Reply::Push { .. } | Reply::Unmatched)
        {
            return None;
        }
        let shared = self.shared;
        let Step::WaitFor {
            check, first: true, ..
        } = shared.step(usize::from(self.wait_step))
        else {
            return None;
        };
        let text = json.as_ref().map(|j| j.text());
        if let Some(json) = json {
            let text = json.text();
            if check.holds_in(text, json.get(check.needs_json()), state.vars.values()) {
                return None;
            }
        }
        Some(self.dropped(DropCause::ProtocolMismatch, || {
            let came = text.map_or_else(
                || "a binary message".to_string(),
                |t| format!("{:?}", crate::redact::excerpt(t, 80)),
            );
            format!("expected the first message to be one where {check}; got {came}")
        }))
    }

    /// Relates an incoming message to this connection's requests and pushes. What it reads
    /// of the message (its body, its JSON) stays in `json`, for the rules, a `first` wait's
    /// check and a `wait_for` to read without reading it again.
    fn classify(&mut self, state: &mut ClientState, json: Option<&mut Lazy<'_>>, now: Instant) -> Classified {
        let shared = self.shared;
        let plan = &shared.plan;
        let Some(correlation) = &plan.correlation else {
            return Classified::One(self.push(state, json));
        };
        let Some(json) = json else {
            return Classified::One(self.push(state, None));
        };
        let text = json.text();
        // A pointer reads the JSON (after `json_after`); a regex, the whole message.
        let searched = match &correlation.request_id {
            IdFinder::Pointer(_) => json.body(),
            IdFinder::Regex(_) => text,
        };
        let classified = match correlation.request_id.find_all(searched) {
            Found::None => None,
            // An id on a message that is no reply (a request from the server): a push.
            _ if !is_reply(&correlation.reply_if_any, text, json) => None,
            Found::One(id) => Some(Classified::One(self.reply_to(state, id, text, json, now))),
            Found::Many(ids) => Some(Classified::Batch(
                ids.into_iter()
                    .map(|id| self.reply_to(state, id, text, json, now))
                    .collect(),
            )),
        };
        classified.unwrap_or_else(|| Classified::One(self.push(state, Some(json))))
    }

    /// What a message carrying `id` is to this connection: `client-seq` as `{{id}}` writes it,
    /// or the request's number alone (`{{seq}}`, a JSON number or a decimal string) for servers
    /// that choose numeric ids: a client's numbers are its own, so a connection's are too.
    fn reply_to(
        &mut self,
        state: &mut ClientState,
        id: FoundId<'_>,
        text: &str,
        json: &mut Lazy<'_>,
        now: Instant,
    ) -> Reply {
        let seq = match &id {
            FoundId::Number(n) => Some(*n),
            FoundId::Text(id) => match parse_request_id(id) {
                Some((c, seq)) if c == state.index => Some(seq),
                Some(_) => None,
                None => parse_decimal(id),
            },
        };
        let Some(seq) = seq else {
            return Reply::Unmatched;
        };
        let shared = self.shared;
        let failures = &mut self.capture_failures;
        self.pending.resolve(seq, now, |step| {
            judge(shared.step(usize::from(step)), text, json, |captures, json| {
                *failures += capture(captures, text, json, state, &shared.plan.vars);
            })
        })
    }

    /// A message that is no reply: a push, with its sequence and latency when the scenario
    /// names them.
    fn push(&self, state: &mut ClientState, json: Option<&mut Lazy<'_>>) -> Reply {
        let pushes = &self.shared.plan.pushes;
        let (mut gap, mut repeated, mut latency_us) = (0, false, None);
        let read = pushes.sequence.is_some() || pushes.sent_at.is_some();
        if let Some(text) = json.filter(|_| read).map(|j| j.body()) {
            if let Some(pointer) = &pushes.sequence
                && let Some(FoundId::Number(seq)) = pointer.find(text)
            {
                match state.last_push_seq {
                    Some(last) if seq <= last => repeated = true,
                    Some(last) => gap = (seq - last - 1).min(u64::from(u32::MAX)) as u32,
                    None => {}
                }
                state.last_push_seq = Some(state.last_push_seq.map_or(seq, |last| last.max(seq)));
            }
            if let Some(pointer) = &pushes.sent_at
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

/// A text message, with its body (what JSON pointers read: after `json_after`, a STOMP
/// frame's body) found and its JSON parsed the first time a test, capture or rule asks, then
/// shared: one read and one parse a message, however many look at it.
pub(super) struct Lazy<'a> {
    text: &'a str,
    connect: &'a Connect,
    /// None: not found yet.
    body: Option<&'a str>,
    /// None: not parsed yet; Some(None): no JSON.
    parsed: Option<Option<Value>>,
}

impl<'a> Lazy<'a> {
    pub(super) fn new(connect: &'a Connect, text: &'a str) -> Self {
        Lazy {
            text,
            connect,
            body: None,
            parsed: None,
        }
    }

    /// The whole message.
    pub(super) fn text(&self) -> &'a str {
        self.text
    }

    /// The part of the message JSON pointers read.
    pub(super) fn body(&mut self) -> &'a str {
        self.body.get_or_insert_with(|| self.connect.json_body(self.text))
    }

    /// The body's JSON when `needed` (parsed now if it was not), else what an earlier parse
    /// gave.
    pub(super) fn get(&mut self, needed: bool) -> Option<&Value> {
        if needed && self.parsed.is_none() {
            self.parsed = Some(serde_json::from_str(self.body()).ok());
        }
        self.parsed.as_ref().and_then(Option::as_ref)
    }
}

/// Whether a message that carries an id is a reply: `correlation.reply_if_any`, when given.
fn is_reply(any: &[Vec<Check>], text: &str, json: &mut Lazy<'_>) -> bool {
    if any.is_empty() {
        return true;
    }
    let json = json.get(any.iter().flatten().any(Check::needs_json));
    any.iter().any(|all| all.iter().all(|c| c.holds(text, json)))
}

/// What `text` is to the request step `step` sent: a stream's part or the answer, and whether
/// it passes the step's checks (the reply's JSON is read only when a check or a capture needs
/// it). An answer's captures are handed to `take`.
fn judge(
    step: &Step,
    text: &str,
    json: &mut Lazy<'_>,
    take: impl FnOnce(&[Capture], Option<&Value>),
) -> Judged {
    let Step::Send {
        expect: Some(expect), ..
    } = step
    else {
        return Judged::PLAIN;
    };
    let needed = expect.checks.iter().chain(&expect.last).any(Check::needs_json)
        || expect.captures.iter().any(|c| c.from.needs_json());
    let json = json.get(needed);
    if let Some(last) = &expect.last
        && !last.holds(text, json)
    {
        return Judged::Part;
    }
    if !expect.captures.is_empty() {
        take(&expect.captures, json);
    }
    Judged::Answer {
        stream: expect.last.is_some(),
        failed: !expect.checks.iter().all(|c| c.holds(text, json)),
    }
}

/// Takes the values `captures` name from a message into the client's variables; returns how
/// many were not there (capture failures). A value not found leaves the variable as it was.
pub(super) fn capture(
    captures: &[Capture],
    text: &str,
    json: Option<&Value>,
    state: &mut ClientState,
    vars: &[Var],
) -> u32 {
    let mut failed = 0;
    for c in captures {
        match c.from.take(text, json) {
            Some(value) => state.vars.set(c.var, value, vars.len()),
            None => failed += 1,
        }
    }
    failed
}
