//! One open connection: setup steps, the step loop, correlation of replies, heartbeats and
//! client-side chaos, as a single state machine in one task with one timer, so a timeout
//! fires on time even when the server sends nothing at all.

use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};

use super::Shared;
use super::client::{ClientCtl, ClientState};
use super::connect::Ws;
use super::pending::{Judged, Kept, Pending};
use super::stream::Stalled;
use crate::metrics::requests::RequestOutcome;
use crate::metrics::{DropCause, Event, Reply};
use crate::scenario::check;
use crate::scenario::pointer::FoundId;
use crate::scenario::template::{RenderCtx, parse_request_id};
use crate::scenario::{ChaosAction, ChaosHow, Step};

/// How long a closing client waits for the server's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How a connection ended.
pub enum End {
    /// The client closed it (stop or ramp-down); `unfinished` requests were abandoned.
    Closed { unfinished: u32, open_us: u64 },
    /// A close step closed it: the client connects again at once.
    Cycled { open_us: u64 },
    /// It ended on its own or by chaos; `lost` requests were in flight (and not kept for
    /// replay).
    Dropped {
        cause: DropCause,
        lost: u32,
        open_us: u64,
    },
}

/// The open-rate schedule of a client's step loop. It lives with the client, so it runs on
/// across reconnects and close steps: it starts with the first pass (after the setup steps).
pub struct Pace {
    interval: Duration,
    /// When the next pass is due (None before the first).
    next: Option<Instant>,
    /// How late the pass under way began (None between passes): its requests are timed from
    /// their send minus this, so only the pass's own lateness is added, not earlier steps.
    lateness: Option<Duration>,
    /// The next pass was waited for (so it is not late, whatever the timer did).
    slept: bool,
    /// No pass has begun on this connection yet.
    fresh: bool,
}

impl Pace {
    /// At the start of a pass, `now`: how many passes to count late, and whether to wait
    /// for `next` first. Passes that fell due while there was no connection (a drop, its
    /// backoff) could not be sent: counted late and skipped, not burst. A pass that was busy
    /// at its due time is late too; a timer's own lateness is not the client's.
    fn begin(&mut self, now: Instant) -> (u32, bool) {
        let mut next = *self.next.get_or_insert(now);
        let mut late = 0;
        if self.fresh {
            self.fresh = false;
            late = (now.saturating_duration_since(next).as_nanos() / self.interval.as_nanos()) as u32;
            next += self.interval * late;
        }
        if now < next {
            self.next = Some(next);
            self.slept = true;
            return (late, true);
        }
        if !self.slept && now > next + LATE_GRACE {
            late += 1;
        }
        self.slept = false;
        self.lateness = Some(now - next);
        self.next = Some(next + self.interval);
        (late, false)
    }

    pub fn new(interval: Duration) -> Box<Pace> {
        Box::new(Pace {
            interval,
            next: None,
            lateness: None,
            slept: false,
            fresh: true,
        })
    }
}

/// A pass that was busy at its due time and begins more than this after it is a late send.
const LATE_GRACE: Duration = Duration::from_millis(2);

/// Why the state machine ended the connection without the client closing it.
enum Cut {
    /// It dropped.
    Drop(DropCause),
    /// The run was stopped at once (a second Ctrl-C), also in the middle of a write.
    Halt,
}

impl From<DropCause> for Cut {
    fn from(cause: DropCause) -> Self {
        Cut::Drop(cause)
    }
}

/// How a connection the client closed ended.
enum Finish {
    /// The run stopped; this many requests were abandoned.
    Stopped(u32),
    /// A close step.
    Cycled,
}

/// What the step program waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Ready,
    Sleep(Instant),
    Reply(u64),
    /// A `wait_for` step (`Conn::wait_step`), until this time.
    Message(Instant),
    /// A request that would have waited for its reply was capped: until the pending table
    /// has room again (a reply or a timeout), so a full table is not a busy loop.
    Room,
}

/// Heartbeat state: when the next ping is due, and the ping waiting for its pong.
struct Heart {
    every: Duration,
    timeout: Duration,
    next: Instant,
    waiting: Option<(u64, Instant)>,
    sent: u64,
}

/// Heartbeat pings are sent on a grid of this step (or a twentieth of the interval, when that
/// is shorter), so that one wake-up of the runtime sends the pings of many connections (each
/// wake-up costs far more than a ping). A ping's rtt is timed from when it was sent, so the
/// grid costs no accuracy, only up to one step of delay.
const PING_GRID: Duration = Duration::from_millis(50);

/// The ping due `every` after `now`, rounded up to the ping grid (counted from the first call
/// in this process).
fn ping_time(now: Instant, every: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let since = (now + every).saturating_duration_since(epoch).as_nanos();
    let grid = PING_GRID.min(every / 20).as_nanos().max(1);
    epoch + Duration::from_nanos((since.div_ceil(grid) * grid) as u64)
}

pub async fn drive(ws: &mut Ws, shared: &Shared, state: &mut ClientState, ctl: &ClientCtl) -> End {
    let mut c = Conn {
        shared,
        opened: Instant::now(),
        pending: Pending::logging(shared.requests.is_some()),
        in_setup: !shared.setup.is_empty(),
        no_pong_until: None,
        wait_step: 0,
    };
    let r = c.run(ws, state, ctl).await;
    let open_us = c.opened.elapsed().as_micros() as u64;
    let end = match r {
        Ok(Finish::Stopped(unfinished)) => End::Closed { unfinished, open_us },
        Ok(Finish::Cycled) => End::Cycled { open_us },
        Err(Cut::Halt) => {
            let (replay, rest) = c.pending.take_for_replay(RequestOutcome::Unfinished);
            c.pending
                .note_all(replay.iter().map(|k| k.seq), RequestOutcome::Unfinished);
            End::Closed {
                unfinished: rest + replay.len() as u32,
                open_us,
            }
        }
        Err(Cut::Drop(cause)) => {
            let (replay, lost) = c.pending.take_for_replay(RequestOutcome::Lost);
            state.replay.extend(replay);
            End::Dropped { cause, lost, open_us }
        }
    };
    c.flush_log(state.index as u32).await;
    end
}

struct Conn<'a> {
    shared: &'a Shared,
    opened: Instant,
    pending: Pending,
    /// Still running the setup steps; a setup reply that times out fails the connection.
    in_setup: bool,
    /// Chaos `no_pong` is on (until this time, or for good when `Some(None)`).
    no_pong_until: Option<Option<Instant>>,
    /// The `wait_for` step under way, in the program.
    wait_step: u16,
}

impl Conn<'_> {
    /// Runs until the connection ends: `Ok` when the client closed it, `Err` when it dropped
    /// or the run halted.
    async fn run(&mut self, ws: &mut Ws, state: &mut ClientState, ctl: &ClientCtl) -> Result<Finish, Cut> {
        if state.pace.is_none() {
            state.pace = self.shared.pacing.map(Pace::new);
        }
        if let Some(p) = state.pace.as_mut() {
            p.fresh = true;
            p.lateness = None;
        }
        let shared = self.shared;
        let events = &shared.events;
        // The program: the setup steps, then the loop's (`Shared::step`).
        let program_len = shared.setup.len() + shared.steps.len();
        let loop_start = shared.setup.len();
        let deadline_after = shared.correlation.as_ref().map_or(Duration::MAX, |c| c.timeout);
        let mut heart = shared.heartbeat.map(|h| Heart {
            every: h.every,
            timeout: h.timeout,
            next: ping_time(Instant::now(), h.every),
            waiting: None,
            sent: 0,
        });
        let mut step = 0;
        let mut block = Block::Ready;
        let mut stopping = false;
        // A close step was reached: close once the replies awaited are in.
        let mut closing: Option<u16> = None;
        let mut timer = pin!(sleep_until(Instant::now()));
        let mut armed: Option<Instant> = None;
        let mut last_len = 64;
        if !self.in_setup {
            self.replay(ws, state).await?;
        }

        loop {
            // Outcomes of the last turn go to requests.csv (nothing to do when it is off).
            self.flush_log(state.index as u32).await;
            if block == Block::Room && !self.pending_full() {
                block = Block::Ready;
            }
            while !stopping && closing.is_none() && block == Block::Ready && step < program_len {
                if step == loop_start && self.in_setup {
                    self.in_setup = false;
                    self.replay(ws, state).await?;
                }
                // Under an open rate, a pass of the loop waits for its due time. One that was
                // still busy then (the last pass waited for its reply) begins late and is
                // counted; either way its requests are also timed from when they were due.
                if step == loop_start && state.pace.as_ref().is_some_and(|p| p.lateness.is_none()) {
                    // Only the count and a flag live across the await (the task stays small).
                    let (late, wait) = state.pace.as_mut().expect("checked").begin(Instant::now());
                    if late > 0 {
                        events.send(Event::LateSends(late)).await;
                    }
                    if wait {
                        let until = state.pace.as_ref().and_then(|p| p.next).expect("scheduled");
                        block = Block::Sleep(until);
                        continue;
                    }
                }
                match shared.step(step) {
                    Step::Send {
                        expect: Some(expect), ..
                    } if self.pending_full() => {
                        // Not sent: the table is full of requests the server has not answered.
                        events.send(Event::Capped).await;
                        if expect.wait || self.in_setup {
                            block = Block::Room;
                        }
                    }
                    Step::Send { template, expect } => {
                        state.next_seq += 1;
                        let seq = state.next_seq;
                        let mut text = String::with_capacity(last_len);
                        let mut ctx = RenderCtx {
                            client: state.index,
                            seq,
                            rng: &mut state.rng,
                            row: shared.row(state.index),
                        };
                        template.render(&mut ctx, &mut text);
                        last_len = text.len();
                        let bytes = text.len() as u32;
                        let text = Utf8Bytes::from(text);
                        // Counted before the write: a request whose write fails is in the
                        // pending table, so the drop counts it lost (or replays it).
                        events
                            .send(Event::Sent {
                                bytes,
                                request: expect.is_some(),
                                replay: false,
                            })
                            .await;
                        if let Some(expect) = expect {
                            let kept = shared.reconnect.replay_in_flight.then(|| text.clone());
                            let sent = Instant::now();
                            let due = state
                                .pace
                                .as_ref()
                                .and_then(|p| p.lateness)
                                .map(|late| sent - late);
                            self.pending.insert(seq, step as u16, sent, due, kept);
                            if expect.wait || self.in_setup {
                                block = Block::Reply(seq);
                            }
                        }
                        self.send(ws, Message::Text(text)).await?;
                    }
                    Step::SendBinary(data) => {
                        events
                            .send(Event::Sent {
                                bytes: data.len() as u32,
                                request: false,
                                replay: false,
                            })
                            .await;
                        self.send(ws, Message::Binary(data.clone())).await?;
                    }
                    Step::WaitFor { timeout, .. } => {
                        self.wait_step = step as u16;
                        block = Block::Message(Instant::now() + *timeout);
                    }
                    Step::Close(code) => closing = Some(*code),
                    Step::Sleep(d) => {
                        if !d.is_zero() {
                            block = Block::Sleep(Instant::now() + *d);
                        }
                    }
                    Step::SleepBetween(lo, hi) => {
                        let d = rand::RngExt::random_range(&mut state.rng, *lo..=*hi);
                        if !d.is_zero() {
                            block = Block::Sleep(Instant::now() + d);
                        }
                    }
                }
                step += 1;
                if step == program_len {
                    step = loop_start;
                    if let Some(p) = state.pace.as_mut() {
                        p.lateness = None;
                    }
                }
            }
            if shared.steps.is_empty() && step >= loop_start && self.in_setup && block == Block::Ready {
                // Setup done and no loop: only replay remains.
                self.in_setup = false;
                self.replay(ws, state).await?;
            }

            if stopping && self.pending.is_empty() {
                close(ws, CloseCode::Normal).await;
                return Ok(Finish::Stopped(0));
            }
            if let Some(code) = closing
                && self.pending.is_empty()
            {
                close(ws, CloseCode::from(code)).await;
                return Ok(Finish::Cycled);
            }

            let mut wake = self.pending.next_deadline(deadline_after);
            let mut consider = |t: Option<Instant>| {
                if let Some(t) = t {
                    wake = Some(wake.map_or(t, |w| w.min(t)));
                }
            };
            if let Block::Sleep(until) | Block::Message(until) = block
                && !stopping
            {
                consider(Some(until));
            }
            if let Some(h) = &heart {
                consider(Some(h.waiting.map_or(h.next, |(_, sent)| sent + h.timeout)));
            }
            consider(self.no_pong_until.flatten());
            if wake != armed {
                if let Some(at) = wake {
                    timer.as_mut().reset(at);
                }
                armed = wake;
            }

            tokio::select! {
                biased;
                _ = shared.halt.cancelled() => return Err(Cut::Halt),
                _ = ctl.stop.cancelled(), if !stopping => stopping = true,
                _ = ctl.notify.notified() => {
                    let index = ctl.chaos.swap(0, Relaxed);
                    if index > 0 {
                        // Boxed: rare, and its read buffer would otherwise sit in every task.
                        if let ChaosAction::Drop { how, lasts, .. } = shared.chaos[index as usize - 1].action {
                            Box::pin(self.chaos(ws, how, lasts, ctl)).await?;
                        }
                    }
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    let now = Instant::now();
                    let expired = self.pending.expire(now, deadline_after);
                    if expired > 0 {
                        events.send(Event::TimedOut(expired)).await;
                        if self.in_setup {
                            return Err(DropCause::SetupFailed.into());
                        }
                    }
                    if matches!(block, Block::Message(until) if until <= now) {
                        events.send(Event::WaitTimedOut).await;
                        if self.in_setup {
                            return Err(DropCause::SetupFailed.into());
                        }
                        block = Block::Ready;
                    }
                    block = match block {
                        Block::Reply(seq) if !self.pending.contains(seq) => Block::Ready,
                        Block::Sleep(until) if until <= now => Block::Ready,
                        other => other,
                    };
                    if let Some(h) = &mut heart {
                        match h.waiting {
                            Some((_, sent)) if sent + h.timeout <= now => return Err(self.cause(DropCause::PongTimeout).into()),
                            None if h.next <= now => {
                                h.sent += 1;
                                let payload = Bytes::copy_from_slice(&h.sent.to_be_bytes());
                                self.send(ws, Message::Ping(payload)).await?;
                                events.send(Event::Ping).await;
                                h.waiting = Some((h.sent, now));
                                h.next = ping_time(now, h.every);
                            }
                            _ => {}
                        }
                    }
                    if self.no_pong_until.flatten().is_some_and(|until| until <= now) {
                        self.no_pong_until = None;
                        ws.get_mut().drop_pongs = false;
                    }
                }
                message = ws.next() => {
                    let now = Instant::now();
                    let (bytes, text) = match &message {
                        Some(Ok(Message::Text(t))) => (t.len(), Some(t.as_str())),
                        Some(Ok(Message::Binary(b))) => (b.len(), std::str::from_utf8(b).ok()),
                        Some(Ok(Message::Pong(payload))) => {
                            if let Some(h) = &mut heart
                                && let Some((n, sent)) = h.waiting
                                && payload.as_ref() == n.to_be_bytes()
                            {
                                h.waiting = None;
                                events.send(Event::Pong { rtt_us: now.duration_since(sent).as_micros() as u64 }).await;
                            }
                            continue;
                        }
                        Some(Ok(Message::Close(frame))) => {
                            // tungstenite hands an invalid close code (999, 1005 on the wire…)
                            // on as 1002 "Protocol violation": the server broke the protocol.
                            let cause = match frame {
                                Some(f) if f.code == CloseCode::Protocol && f.reason == "Protocol violation" => {
                                    DropCause::Protocol
                                }
                                Some(f) => DropCause::ServerClose(u16::from(f.code)),
                                None => DropCause::ServerClose(1005),
                            };
                            close(ws, CloseCode::Normal).await;
                            return Err(self.cause(cause).into());
                        }
                        Some(Ok(_)) => continue, // pings: tungstenite answers them itself
                        Some(Err(e)) => return Err(self.cause(read_cause(e)).into()),
                        None => return Err(self.cause(DropCause::Abnormal).into()),
                    };
                    let reply = self.classify(state, text, now);
                    // Only plain values live across the awaits below (the task stays small).
                    let mut waited_us = None;
                    match (reply, block) {
                        (Reply::Answered { .. }, Block::Reply(seq)) if !self.pending.contains(seq) => block = Block::Ready,
                        // A message that settles none of this connection's requests.
                        (Reply::Push { .. } | Reply::Unmatched, Block::Message(until)) => {
                            if let (Step::WaitFor { check, timeout }, Some(text)) = (shared.step(usize::from(self.wait_step)), text)
                                && check::all_hold(std::slice::from_ref(check), text)
                            {
                                waited_us = Some(now.saturating_duration_since(until - *timeout).as_micros() as u64);
                                block = Block::Ready;
                            }
                        }
                        _ => {}
                    }
                    events.send(Event::Received { bytes: bytes as u32, reply }).await;
                    if let Some(us) = waited_us {
                        events.send(Event::WaitedFor { us }).await;
                    }
                }
            }
        }
    }

    /// Whether `correlation.max_in_flight` requests are waiting (read where needed, so the
    /// task does not carry it across its awaits).
    fn pending_full(&self) -> bool {
        self.shared
            .correlation
            .as_ref()
            .is_some_and(|c| self.pending.len() >= c.max_in_flight as usize)
    }

    /// Sends one message. A write the server does not take fails after `connect.timeout`
    /// (the socket's stall limit), and gives way at once to a halt. The send is polled
    /// first: one that goes out at once never registers with the halt token (shared by every
    /// connection).
    async fn send(&self, ws: &mut Ws, message: Message) -> Result<(), Cut> {
        tokio::select! {
            biased;
            sent = ws.send(message) => sent.map_err(|e| write_cause(&e).into()),
            _ = self.shared.halt.cancelled() => Err(Cut::Halt),
        }
    }

    /// A drop while chaos `no_pong` is on is the chaos' doing.
    fn cause(&self, cause: DropCause) -> DropCause {
        if self.no_pong_until.is_some() {
            DropCause::Chaos(ChaosHow::NoPong)
        } else {
            cause
        }
    }

    /// Resends the requests kept from the last connection.
    async fn replay(&mut self, ws: &mut Ws, state: &mut ClientState) -> Result<(), Cut> {
        // Each one moves to the pending table before it is written, so a failed write leaves
        // it (and the rest still in `state.replay`) to be lost or replayed again.
        while !state.replay.is_empty() {
            let Kept { seq, step, text } = state.replay.remove(0);
            let bytes = text.len() as u32;
            self.shared
                .events
                .send(Event::Sent {
                    bytes,
                    request: true,
                    replay: true,
                })
                .await;
            self.pending
                .insert(seq, step, Instant::now(), None, Some(text.clone()));
            self.send(ws, Message::Text(text)).await?;
        }
        Ok(())
    }

    /// Applies a chaos action to this connection. Returns the drop it causes, if any.
    /// Hands the outcomes the pending table noted to requests.csv.
    async fn flush_log(&mut self, client: u32) {
        if let Some(log) = &self.shared.requests {
            for (seq, outcome, rtt) in self.pending.take_log() {
                log.record(client, seq, outcome, rtt).await;
            }
        }
    }

    async fn chaos(
        &mut self,
        ws: &mut Ws,
        how: ChaosHow,
        lasts: Option<Duration>,
        ctl: &ClientCtl,
    ) -> Result<(), DropCause> {
        let cause = Err(DropCause::Chaos(how));
        match how {
            ChaosHow::Reset => {
                // Zero linger: dropping the socket sends a TCP reset, not a FIN.
                let _ = ws.get_ref().inner.tcp().set_zero_linger();
                cause
            }
            ChaosHow::Close(code) => {
                close(ws, CloseCode::from(code)).await;
                cause
            }
            ChaosHow::NoPong => {
                ws.get_mut().drop_pongs = true;
                self.no_pong_until = Some(lasts.map(|d| Instant::now() + d));
                Ok(())
            }
            ChaosHow::Silent => {
                // Half-open: read and discard raw bytes (so pings go unanswered and nothing is
                // processed), send nothing, until the server gives up on us or `lasts` ends.
                let until = lasts.map(|d| Instant::now() + d);
                let mut scratch = [0u8; 512];
                let socket = &mut ws.get_mut().inner;
                loop {
                    tokio::select! {
                        _ = self.shared.halt.cancelled() => break,
                        _ = ctl.stop.cancelled() => break,
                        _ = sleep_until(until.unwrap_or_else(far_future)), if until.is_some() => break,
                        n = socket.read(&mut scratch) => if !matches!(n, Ok(1..)) { break },
                    }
                }
                cause
            }
        }
    }

    /// Relates an incoming message to this connection's requests and pushes.
    fn classify(&mut self, state: &mut ClientState, text: Option<&str>, now: Instant) -> Reply {
        let shared = self.shared;
        if let (Some(correlation), Some(text)) = (&shared.correlation, text) {
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
            if let Some(pointer) = &shared.pushes.sequence
                && let Some(FoundId::Number(seq)) = pointer.find(text)
            {
                match state.last_push_seq {
                    Some(last) if seq <= last => repeated = true,
                    Some(last) => gap = (seq - last - 1).min(u64::from(u32::MAX)) as u32,
                    None => {}
                }
                state.last_push_seq = Some(state.last_push_seq.map_or(seq, |last| last.max(seq)));
            }
            if let Some(pointer) = &shared.pushes.sent_at
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

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Sends a close frame and waits briefly for the server's answer.
async fn close(ws: &mut Ws, code: CloseCode) {
    let frame = CloseFrame {
        code,
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
        WsError::Io(io) if Stalled::is(io) => DropCause::WriteTimeout,
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => DropCause::Reset,
        // Only rustls reports an end of stream as an error: one without close_notify.
        WsError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => DropCause::TlsUnclean,
        WsError::Io(_) => DropCause::ReadError,
        WsError::ConnectionClosed | WsError::AlreadyClosed => DropCause::Abnormal,
        WsError::Capacity(_) => DropCause::TooBig,
        WsError::Protocol(_) | WsError::Utf8(_) => DropCause::Protocol,
        _ => DropCause::ReadError,
    }
}

fn write_cause(e: &WsError) -> DropCause {
    match e {
        // The buffer is full of control frames the server has not taken: it stopped reading.
        WsError::Io(io) if Stalled::is(io) => DropCause::WriteTimeout,
        WsError::WriteBufferFull(_) => DropCause::WriteTimeout,
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => DropCause::Reset,
        _ => DropCause::WriteError,
    }
}
