//! One open connection: setup steps, the step loop, correlation of replies, heartbeats and
//! client-side chaos, as a single state machine in one task with one timer, so a timeout
//! fires on time even when the server sends nothing at all.
//!
//! The states are explicit: a `Mode` (running the program, closing after a close step, or
//! stopping after the run's stop), the program's cursor with what it is `Block`ed on, and the
//! heartbeat's own. Each wake-up (`Wake`) is one of halt, stop, chaos, the timer or a message.

use std::pin::{Pin, pin};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, Sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::causes::write_cause;
use super::extra::{Extra, wait_http};
use super::heart::{Beat, Heart};
use super::http::Done;
use super::named::{named_ended, tally_kept};
use super::pace::Pace;
use super::pending::{Kept, Pending};
use super::shared::Shared;
use super::state::{ClientCtl, ClientState};
use super::stream::{CLOSE_GRACE, Ws};
use crate::metrics::requests::RequestOutcome;
use crate::metrics::{DropCause, Event};
use crate::scenario::{ChaosAction, ChaosHow, Program, Step};

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

/// Why the state machine ended the connection without the client closing it.
pub(super) enum Cut {
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
    /// The run stopped.
    Stopped,
    /// A close step.
    Cycled,
}

/// What the connection is doing, besides answering what comes in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Running the program: the setup steps, then the loop.
    Running,
    /// A close step was reached: close with this code once the awaited replies are in.
    Closing(u16),
    /// The run (or a ramp-down) stopped this client: nothing more is sent; close once the
    /// replies in flight are in or timed out.
    Stopping,
    /// The client sent its close frame: what still comes in is counted, nothing is sent.
    Closed,
}

/// What the step program waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    Ready,
    Sleep(Instant),
    Reply(u64),
    /// A `wait_for` step (`Conn::wait_step`), until this time.
    Message(Instant),
    /// A request that would have waited for its reply was capped: until the pending table
    /// has room again (a reply or a timeout), so a full table is not a busy loop.
    Room,
    /// An HTTP step's response (`Extra::http`).
    Http,
}

/// What woke the connection.
enum Wake {
    Halt,
    Stop,
    Chaos,
    Timer,
    Message(Option<Result<Message, WsError>>),
    /// An HTTP step's response (or failure), and the step's index.
    Http(Box<Done>, usize),
}

/// The connection's one timer, armed for the earliest thing due.
struct Alarm<'t> {
    timer: Pin<&'t mut Sleep>,
    armed: Option<Instant>,
}

impl Alarm<'_> {
    fn set(&mut self, at: Option<Instant>) {
        if at != self.armed {
            if let Some(at) = at {
                self.timer.as_mut().reset(at);
            }
            self.armed = at;
        }
    }
}

pub async fn drive(ws: &mut Ws, shared: &Shared, state: &mut ClientState, ctl: &ClientCtl) -> End {
    let plan = &shared.plan;
    let program = plan.program(state.index, state.socket());
    let mut c = Conn {
        shared,
        opened: Instant::now(),
        pending: Pending::new(shared.requests.is_some(), plan.step_names.len()),
        in_setup: program.loop_start > program.start,
        no_pong_until: None,
        wait_step: 0,
        mode: Mode::Running,
        step: program.start,
        block: Block::Ready,
        heart: plan.connect.heartbeat.map(|h| Heart::new(h, Instant::now())),
        last_len: 64,
        capture_failures: 0,
        extra: Extra::of(plan, Instant::now()),
    };
    let r = c.run(ws, state, ctl).await;
    let open_us = c.opened.elapsed().as_micros() as u64;
    let end = match r {
        Ok(Finish::Stopped) => End::Closed {
            unfinished: 0,
            open_us,
        },
        Ok(Finish::Cycled) => End::Cycled { open_us },
        Err(Cut::Halt) => {
            let mut named = c.pending.named();
            let (replay, rest) = c.pending.take_for_replay(RequestOutcome::Unfinished);
            named.extend(tally_kept(shared, &replay));
            named_ended(shared, named, false).await;
            c.pending.note_all(
                replay
                    .iter()
                    .map(|k| (k.seq, shared.step(usize::from(k.step)).name())),
                RequestOutcome::Unfinished,
            );
            End::Closed {
                unfinished: rest + replay.len() as u32,
                open_us,
            }
        }
        Err(Cut::Drop(cause)) => {
            named_ended(shared, c.pending.named(), true).await;
            let (replay, lost) = c.pending.take_for_replay(RequestOutcome::Lost);
            state.replay.extend(replay);
            // Requests a failed replay left behind are newer than those it had resent: the
            // next connection sends them in order (its table is kept in that order).
            state.replay.sort_unstable_by_key(|k| k.seq);
            End::Dropped { cause, lost, open_us }
        }
    };
    c.flush_log(state.index as u32).await;
    end
}

pub(super) struct Conn<'a> {
    pub(super) shared: &'a Shared,
    opened: Instant,
    pub(super) pending: Pending,
    /// Still running the setup steps; a setup reply that times out fails the connection.
    pub(super) in_setup: bool,
    /// Chaos `no_pong` is on (until this time, or for good when `Some(None)`).
    pub(super) no_pong_until: Option<Option<Instant>>,
    /// The `wait_for` step under way, in the program.
    pub(super) wait_step: u16,
    mode: Mode,
    /// The next step of the program (the setup steps, then the loop's).
    step: usize,
    pub(super) block: Block,
    pub(super) heart: Option<Heart>,
    /// The length of the last message rendered: the next one's buffer starts that large.
    pub(super) last_len: u32,
    /// Captures that found no value in the message just handled (reported after it).
    pub(super) capture_failures: u32,
    /// Timers and HTTP steps' state (boxed: only scenarios with them have one).
    pub(super) extra: Option<Box<Extra>>,
}

impl Conn<'_> {
    /// Runs until the connection ends: `Ok` when the client closed it, `Err` when it dropped
    /// or the run halted.
    async fn run(&mut self, ws: &mut Ws, state: &mut ClientState, ctl: &ClientCtl) -> Result<Finish, Cut> {
        if state.pace.is_none() {
            state.pace = self.shared.plan.pacing.map(Pace::new);
        }
        if let Some(p) = state.pace.as_mut() {
            p.reconnected();
        }
        let mut alarm = Alarm {
            timer: pin!(sleep_until(Instant::now())),
            armed: None,
        };
        if !self.in_setup {
            self.replay(ws, state).await?;
        }
        loop {
            // Outcomes of the last turn go to requests.csv (nothing to do when it is off).
            self.flush_log(state.index as u32).await;
            self.advance(ws, state).await?;
            // An HTTP step under way is awaited like a reply (its request is counted when its
            // response, or its timeout, comes).
            if self.pending.is_empty() && self.extra.as_ref().is_none_or(|e| e.http.is_none()) {
                match self.mode {
                    Mode::Stopping => {
                        // Boxed: once per connection, and it holds a message's handling.
                        Box::pin(self.close_reading(ws, state, CloseCode::Normal)).await;
                        return Ok(Finish::Stopped);
                    }
                    Mode::Closing(code) => {
                        Box::pin(self.close_reading(ws, state, CloseCode::from(code))).await;
                        return Ok(Finish::Cycled);
                    }
                    Mode::Running | Mode::Closed => {}
                }
            }
            alarm.set(self.wake());
            let armed = alarm.armed.is_some();
            let woke = tokio::select! {
                biased;
                _ = self.shared.halt.cancelled() => Wake::Halt,
                _ = ctl.stop.cancelled(), if self.mode != Mode::Stopping => Wake::Stop,
                _ = ctl.notify.notified() => Wake::Chaos,
                _ = alarm.timer.as_mut(), if armed => Wake::Timer,
                (done, index) = wait_http(&mut self.extra) => Wake::Http(Box::new(done), index),
                message = ws.next() => Wake::Message(message),
            };
            match woke {
                Wake::Halt => return Err(Cut::Halt),
                Wake::Stop => self.mode = Mode::Stopping,
                Wake::Chaos => {
                    if let Some(index) = ctl.take_hit()
                        && let ChaosAction::Drop { how, lasts, .. } = self.shared.plan.chaos[index].action
                    {
                        // Boxed: rare, and its read buffer would otherwise sit in every task.
                        Box::pin(self.chaos(ws, how, lasts, ctl)).await?;
                    }
                }
                Wake::Timer => {
                    alarm.armed = None;
                    self.on_timer(ws, state, Instant::now()).await?;
                }
                Wake::Message(message) => self.on_message(ws, state, message).await?,
                Wake::Http(done, index) => Box::pin(self.http_done(state, *done, index)).await?,
            }
        }
    }

    /// Runs the program's steps until one blocks, the loop's end under an open rate, a close
    /// step, or a stop.
    async fn advance(&mut self, ws: &mut Ws, state: &mut ClientState) -> Result<(), Cut> {
        let Program {
            loop_start,
            end: program_len,
            ..
        } = self.shared.plan.program(state.index, state.socket());
        if self.block == Block::Room && !self.pending_full() {
            self.block = Block::Ready;
        }
        while self.mode == Mode::Running && self.block == Block::Ready && self.step < program_len {
            if self.step == loop_start {
                if self.in_setup {
                    self.in_setup = false;
                    self.replay(ws, state).await?;
                }
                if self.begin_pass(state).await {
                    continue;
                }
            }
            self.run_step(ws, state).await?;
            self.step += 1;
            if self.step == program_len {
                self.step = loop_start;
                if let Some(p) = state.pace.as_mut() {
                    p.end_pass();
                }
            }
        }
        if program_len == loop_start && self.step >= loop_start && self.in_setup && self.block == Block::Ready
        {
            // Setup done and no loop: only replay remains.
            self.in_setup = false;
            self.replay(ws, state).await?;
        }
        Ok(())
    }

    /// Under an open rate, a pass of the loop waits for its due time. One that was still busy
    /// then (the last pass waited for its reply) begins late and is counted; either way its
    /// requests are also timed from when they were due. True when the pass must wait.
    async fn begin_pass(&mut self, state: &mut ClientState) -> bool {
        let Some(pace) = state.pace.as_mut().filter(|p| !p.in_pass()) else {
            return false;
        };
        // Only the count and a flag live across the await (the task stays small).
        let (late, wait) = pace.begin(Instant::now());
        let until = pace.next();
        if late > 0 {
            self.shared.events.send(Event::LateSends(late)).await;
        }
        if wait {
            self.block = Block::Sleep(until.expect("a pass that waits has a due time"));
        }
        wait
    }

    /// Runs the step under the cursor.
    async fn run_step(&mut self, ws: &mut Ws, state: &mut ClientState) -> Result<(), Cut> {
        let shared = self.shared;
        let events = &shared.events;
        match shared.step(self.step) {
            Step::Send { .. } => {
                let prepared = self.prepare(state, self.step, true);
                self.deliver(ws, prepared).await?;
            }
            Step::SendBinary(data) => {
                events
                    .send(Event::Sent {
                        bytes: data.len() as u32,
                        request: false,
                        replay: false,
                        name: 0,
                    })
                    .await;
                self.send(ws, Message::Binary(data.clone())).await?;
            }
            Step::WaitFor { timeout, .. } => {
                self.wait_step = self.step as u16;
                self.block = Block::Message(Instant::now() + *timeout);
            }
            Step::Close(code) => self.mode = Mode::Closing(*code),
            // Boxed: only scenarios with HTTP steps pay for its state.
            Step::Http(_) => Box::pin(self.start_http(state, self.step)).await,
            Step::Sleep(d) => {
                if !d.is_zero() {
                    self.block = Block::Sleep(Instant::now() + *d);
                }
            }
            Step::SleepBetween(lo, hi) => {
                let d = rand::RngExt::random_range(&mut state.rng, *lo..=*hi);
                if !d.is_zero() {
                    self.block = Block::Sleep(Instant::now() + d);
                }
            }
        }
        Ok(())
    }

    /// When the timer must next fire: the earliest reply deadline, the step's wait, the
    /// heartbeat, the end of `no_pong`.
    fn wake(&self) -> Option<Instant> {
        let step = match self.block {
            Block::Sleep(until) | Block::Message(until) if self.mode != Mode::Stopping => Some(until),
            _ => None,
        };
        let timers = self
            .extra
            .as_ref()
            .and_then(|e| e.timers.as_ref())
            .filter(|_| !self.in_setup && self.mode == Mode::Running)
            .and_then(|t| t.next());
        [
            self.pending.next_deadline(self.reply_timeout()),
            step,
            self.heart.as_ref().map(Heart::due),
            self.no_pong_until.flatten(),
            timers,
            self.extra
                .as_ref()
                .and_then(|e| e.lapse)
                .filter(|_| self.mode != Mode::Stopping)
                .map(|(at, _, _)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn on_timer(&mut self, ws: &mut Ws, state: &mut ClientState, now: Instant) -> Result<(), Cut> {
        let events = &self.shared.events;
        let mut expired = 0;
        loop {
            let (n, name) = self.pending.expire(now, self.reply_timeout());
            if n == 0 {
                break;
            }
            expired += n;
            events.send(Event::TimedOut { n, name }).await;
        }
        if expired > 0 && self.in_setup {
            return Err(self.dropped(DropCause::SetupFailed, || {
                "a reply to a setup step did not come within correlation.timeout".into()
            }));
        }
        if let Some((_, within, rule)) = self
            .extra
            .as_ref()
            .and_then(|e| e.lapse)
            .filter(|(at, _, _)| *at <= now && self.mode != Mode::Stopping)
        {
            return Err(self.dropped(DropCause::ServerPingTimeout, || {
                format!(
                    "no message where {} came in time: none within {within:?} of the one before (on_message[{rule}].lapse)",
                    self.shared.plan.rules[rule]
                        .matches
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            }));
        }
        if matches!(self.block, Block::Message(until) if until <= now) {
            events.send(Event::WaitTimedOut).await;
            if let Step::WaitFor {
                check,
                timeout,
                first: true,
                ..
            } = self.shared.step(usize::from(self.wait_step))
            {
                return Err(self.dropped(DropCause::ProtocolMismatch, || {
                    format!(
                        "expected the first message to be one where {check}; none came within {}",
                        crate::units::duration::show(*timeout)
                    )
                }));
            }
            if self.in_setup {
                return Err(self.dropped(DropCause::SetupFailed, || {
                    "a setup step's wait_for saw no matching message in time".into()
                }));
            }
            self.block = Block::Ready;
        }
        self.block = match self.block {
            Block::Reply(seq) if !self.pending.contains(seq) => Block::Ready,
            Block::Sleep(until) if until <= now => Block::Ready,
            other => other,
        };
        let beat = self.heart.as_mut().map_or(Beat::Nothing, |h| h.beat(now));
        match beat {
            Beat::Missed => {
                let timeout = self.shared.plan.connect.heartbeat.map(|h| h.timeout);
                return Err(self.dropped(DropCause::PongTimeout, || {
                    format!("no pong within connect.heartbeat.timeout ({timeout:?})")
                }));
            }
            Beat::Ping(payload) => {
                self.send(ws, Message::Ping(Bytes::copy_from_slice(&payload)))
                    .await?;
                events.send(Event::Ping).await;
            }
            Beat::Nothing => {}
        }
        if !self.in_setup
            && self.mode == Mode::Running
            && self
                .extra
                .as_ref()
                .and_then(|e| e.timers.as_ref())
                .and_then(|t| t.next())
                .is_some_and(|due| due <= now)
        {
            // Boxed: only scenarios with timers pay for its state.
            Box::pin(self.fire_timers(ws, state, now)).await?;
        }
        if self.no_pong_until.flatten().is_some_and(|until| until <= now) {
            self.no_pong_until = None;
            ws.get_mut().drop_pongs = false;
        }
        Ok(())
    }

    /// Sends the client's close frame, then handles what the server sent before its answer:
    /// a push or a reply that was under way is counted (and goes through the rules, which
    /// send nothing now) until the server's close frame, the end of the stream, or the grace.
    async fn close_reading(&mut self, ws: &mut Ws, state: &mut ClientState, code: CloseCode) {
        self.mode = Mode::Closed;
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = timeout(CLOSE_GRACE, async {
            if ws.close(Some(frame)).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = ws.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                if self.on_message(ws, state, Some(Ok(message))).await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Whether the client has sent its close frame (nothing more is sent).
    pub(super) fn closed(&self) -> bool {
        self.mode == Mode::Closed
    }

    /// A rule asked to close the connection: once the awaited replies are in, as a close
    /// step does (nothing when it is already closing or stopping).
    pub(super) fn close_after(&mut self, code: u16) {
        if self.mode == Mode::Running {
            self.mode = Mode::Closing(code);
        }
    }

    /// How long a request waits for its reply (forever without correlation: none does).
    fn reply_timeout(&self) -> Duration {
        self.shared
            .plan
            .correlation
            .as_ref()
            .map_or(Duration::MAX, |c| c.timeout)
    }

    /// Whether `correlation.max_in_flight` requests are waiting (read where needed, so the
    /// task does not carry it across its awaits).
    pub(super) fn pending_full(&self) -> bool {
        self.shared
            .plan
            .correlation
            .as_ref()
            .is_some_and(|c| self.pending.len() >= c.max_in_flight as usize)
    }

    /// Sends one message. A write the server does not take fails after `connect.timeout`
    /// (the socket's stall limit), and gives way at once to a halt. The send is polled
    /// first: one that goes out at once never registers with the halt token (shared by every
    /// connection).
    pub(super) async fn send(&self, ws: &mut Ws, message: Message) -> Result<(), Cut> {
        tokio::select! {
            biased;
            sent = ws.send(message) => sent.map_err(|e| self.dropped(write_cause(&e), || format!("writing: {e}"))),
            _ = self.shared.halt.cancelled() => Err(Cut::Halt),
        }
    }

    /// The connection drops with `cause` (the chaos' own while `no_pong` is on); the first
    /// drop of each cause says why.
    pub(super) fn dropped(&self, cause: DropCause, why: impl FnOnce() -> String) -> Cut {
        let cause = self.cause(cause);
        self.shared.reasons.dropped(cause, why);
        Cut::Drop(cause)
    }

    /// A drop while chaos `no_pong` is on is the chaos' doing.
    pub(super) fn cause(&self, cause: DropCause) -> DropCause {
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
            let name = self.shared.step(usize::from(step)).name();
            self.shared
                .events
                .send(Event::Sent {
                    bytes,
                    request: true,
                    replay: true,
                    name,
                })
                .await;
            self.pending
                .insert(seq, (step, name), Instant::now(), None, Some(text.clone()));
            self.send(ws, Message::Text(text)).await?;
        }
        Ok(())
    }

    /// Hands the outcomes the pending table noted to requests.csv.
    async fn flush_log(&mut self, client: u32) {
        if let Some(log) = &self.shared.requests {
            for (seq, name, outcome, rtt) in self.pending.take_log() {
                log.record(client, (seq, name), outcome, rtt).await;
            }
        }
    }
}
