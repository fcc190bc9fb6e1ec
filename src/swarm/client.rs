//! One simulated client: connect, drive the connection, and after a drop or a failed attempt
//! wait per the reconnect policy and connect again, until the run or a ramp-down stops it or
//! it gives up. What it keeps between connections is a few words (`ClientState`).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::backoff::Retries;
use super::connect::{self, Opened};
use super::connection::{self, End};
use super::named;
use super::shared::Shared;
use super::state::{ClientCtl, ClientState, SOCKET_SHIFT};
use super::stream::Ws;
use crate::metrics::requests::RequestOutcome;
use crate::metrics::{Cause, ConnectError, Deflated, DropCause, Event};
use crate::scenario::{Reconnect, ReconnectAction};

/// What comes after a connection or an attempt.
enum Next {
    /// Wait this long, then connect again.
    Wait(Duration),
    /// Connect again at once (a close step).
    Again,
    /// The client is done.
    Done,
    /// It gives up after `max_attempts` failed attempts, the last for this reason.
    GiveUp(ConnectError),
    /// A `[[reconnect.on]]` rule stops it after this cause.
    Stop(Cause),
}

/// The `[[reconnect.on]]` rule for `cause` (names are formatted only when there are rules).
fn rule_for(policy: &Reconnect, cause: Cause) -> Option<ReconnectAction> {
    if policy.rules.is_empty() {
        return None;
    }
    policy.rule_for(&cause.to_string())
}

/// How a connection the client had ended, for what comes next.
enum Ended {
    /// The client was stopped: it is done.
    Stopped,
    /// A close step: connect again at once.
    Cycled,
    /// It dropped: wait, then connect again (or what a `[[reconnect.on]]` rule says).
    Dropped(DropCause),
}

/// Runs client `index`'s socket `socket` (0 without `[[sockets]]`) until it is stopped or
/// gives up.
pub async fn run(shared: Arc<Shared>, (index, socket): (u64, u16), seq_base: u64, ctl: Arc<ClientCtl>) {
    let mut state = ClientState {
        index,
        next_seq: seq_base | (u64::from(socket) << SOCKET_SHIFT),
        rng: SmallRng::seed_from_u64(
            shared.plan.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(socket) << 56),
        ),
        replay: Vec::new(),
        last_push_seq: None,
        pace: None,
        vars: Default::default(),
    };
    let events = &shared.events;
    let mut retries = Retries::default();
    let mut dropped_at: Option<Instant> = None;
    loop {
        // Under `[connect] max_rate`, the attempt waits for its slot.
        if let Some(gate) = &shared.connect_gate {
            let slot = gate.slot();
            let stopped = tokio::select! {
                _ = tokio::time::sleep_until(slot) => false,
                _ = ctl.stop.cancelled() => true,
            };
            if stopped {
                return abandon_replay(&shared, &mut state).await;
            }
        }
        let attempt = retries.begin();
        events.send(Event::Connecting).await;
        let started = Instant::now();
        let opened = tokio::select! {
            biased;
            _ = shared.halt.cancelled() => {
                events.send(Event::ConnectAbandoned).await;
                return abandon_replay(&shared, &mut state).await;
            }
            // Boxed: the handshake's state is large and lives only while connecting, so an
            // open connection's task does not carry it.
            r = Box::pin(connect::open(&shared, &mut state)) => r,
        };
        let next = match opened {
            Ok(Opened {
                ws,
                tcp_us,
                upgrade_us,
            }) => {
                let reconnect_us = dropped_at.take().map(|t| t.elapsed().as_micros() as u64);
                retries.connected();
                let opened = Event::Connected {
                    client: index as u32,
                    socket: state.socket(),
                    attempt,
                    tcp_us,
                    upgrade_us,
                    reconnect_us,
                };
                match connected(&shared, &mut state, &ctl, ws, opened).await {
                    Ended::Stopped => Next::Done,
                    Ended::Cycled => Next::Again,
                    Ended::Dropped(cause) => {
                        dropped_at = Some(Instant::now());
                        let policy = shared.plan.reconnect_of(state.socket());
                        match rule_for(policy, Cause::Drop(cause)) {
                            Some(ReconnectAction::Stop) => Next::Stop(Cause::Drop(cause)),
                            Some(ReconnectAction::Delay(d)) => Next::Wait(d),
                            Some(ReconnectAction::Setup) => Next::Wait(Duration::ZERO),
                            // A drop has no Retry-After: the strategy.
                            _ => Next::Wait(retries.dropped(policy, &mut state.rng)),
                        }
                    }
                }
            }
            Err(connect::Refused { kind, retry_after }) => {
                let took_us = started.elapsed().as_micros() as u64;
                // Decided before the event's await: only the wait lives across it.
                let policy = shared.plan.reconnect_of(state.socket());
                let next = match (
                    rule_for(policy, Cause::Connect(kind)),
                    retries.failed(policy, &mut state.rng),
                ) {
                    (Some(ReconnectAction::Stop), _) => Next::Stop(Cause::Connect(kind)),
                    (_, None) => Next::GiveUp(kind),
                    (Some(ReconnectAction::Delay(d)), Some(_)) => Next::Wait(d),
                    (Some(ReconnectAction::Setup), Some(_)) => Next::Wait(Duration::ZERO),
                    (Some(ReconnectAction::RetryAfter), Some(wait)) => {
                        Next::Wait(retry_after.map_or(wait, |s: u32| Duration::from_secs(u64::from(s))))
                    }
                    (_, Some(wait)) => Next::Wait(wait),
                };
                events
                    .send(Event::ConnectFailed {
                        client: index as u32,
                        attempt,
                        kind,
                        took_us,
                    })
                    .await;
                next
            }
        };
        let wait = match next {
            Next::Done => return,
            Next::GiveUp(kind) => return give_up(&shared, &mut state, attempt, kind).await,
            Next::Stop(cause) => return stop(&shared, &mut state, cause).await,
            Next::Again if ctl.stop.is_cancelled() => return,
            Next::Again => continue,
            Next::Wait(wait) => wait,
        };
        if ctl.stop.is_cancelled() || backoff(&shared, &ctl, wait).await {
            return abandon_replay(&shared, &mut state).await;
        }
    }
}

/// An open connection (reported by the `Connected` event `opened`), driven until it ends.
async fn connected(
    shared: &Shared,
    state: &mut ClientState,
    ctl: &ClientCtl,
    mut ws: Ws,
    opened: Event,
) -> Ended {
    let events = &shared.events;
    let client = state.index as u32;
    events.send(opened).await;
    ctl.chaos.store(0, Relaxed);
    ctl.connected.store(true, Relaxed);
    let end = connection::drive(&mut ws, shared, state, ctl).await;
    state.vars.end_connection(&shared.plan.vars);
    ctl.connected.store(false, Relaxed);
    if shared.deflate.is_some() {
        report_deflate(shared, &ws);
    }
    drop(ws);
    match end {
        End::Closed { unfinished, open_us } => {
            events
                .send(Event::Closed {
                    client,
                    unfinished,
                    open_us,
                })
                .await;
            // Stopped before a replay (during setup): those never went out again.
            abandon_replay(shared, state).await;
            Ended::Stopped
        }
        End::Cycled { open_us } => {
            events
                .send(Event::Closed {
                    client,
                    unfinished: 0,
                    open_us,
                })
                .await;
            Ended::Cycled
        }
        End::Dropped { cause, lost, open_us } => {
            events
                .send(Event::Dropped {
                    client,
                    socket: state.socket(),
                    cause,
                    lost,
                    open_us,
                })
                .await;
            Ended::Dropped(cause)
        }
    }
}

/// What became of a connection's permessage-deflate offer: whether the server took it, and
/// the data bytes before compression and on the wire. Reported without waiting: a wait here
/// would make every client's task larger.
fn report_deflate(shared: &Shared, ws: &Ws) {
    let tally = ws.get_ref().deflate_tally();
    let t = tally.unwrap_or_default();
    shared.events.report(Event::Deflate(Deflated {
        accepted: tally.is_some(),
        sent: t.sent,
        wire_sent: t.wire_sent,
        received: t.received,
        wire_received: t.wire_received,
    }));
}

/// Waits `wait` before the next attempt; true when the client was stopped meanwhile.
async fn backoff(shared: &Shared, ctl: &ClientCtl, wait: Duration) -> bool {
    shared.events.send(Event::BackoffStarted).await;
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = ctl.stop.cancelled() => true,
    };
    shared.events.send(Event::BackoffEnded).await;
    stopped
}

/// The client stops trying after `attempts` failed attempts, the last for `cause`: requests
/// it kept for replay are lost.
async fn give_up(shared: &Shared, state: &mut ClientState, attempts: u32, cause: ConnectError) {
    let lost = lose_kept(shared, state).await;
    let client = state.index as u32;
    shared
        .events
        .send(Event::GaveUp {
            client,
            attempts,
            lost,
            cause,
        })
        .await;
}

/// A `[[reconnect.on]]` rule stops the client after `cause`: requests it kept for replay are
/// lost.
async fn stop(shared: &Shared, state: &mut ClientState, cause: Cause) {
    let lost = lose_kept(shared, state).await;
    let client = state.index as u32;
    shared.events.send(Event::Stopped { client, cause, lost }).await;
}

/// The requests kept for replay are lost (the client will not connect again): noted for
/// requests.csv and their step names; how many.
async fn lose_kept(shared: &Shared, state: &mut ClientState) -> u32 {
    let client = state.index as u32;
    let kept = std::mem::take(&mut state.replay);
    if let Some(log) = &shared.requests {
        for k in &kept {
            let name = shared.step(usize::from(k.step)).name();
            log.record(client, (k.seq, name), RequestOutcome::Lost, None)
                .await;
        }
    }
    named::named_ended(shared, named::tally_kept(shared, &kept), true).await;
    kept.len() as u32
}

/// The run ended before the requests kept for replay could be resent: they are unfinished
/// (the run's end interrupted them, not the drop: a replay would have sent them again).
async fn abandon_replay(shared: &Shared, state: &mut ClientState) {
    let kept = std::mem::take(&mut state.replay);
    if let Some(log) = &shared.requests {
        for k in &kept {
            let name = shared.step(usize::from(k.step)).name();
            log.record(
                state.index as u32,
                (k.seq, name),
                RequestOutcome::Unfinished,
                None,
            )
            .await;
        }
    }
    if !kept.is_empty() {
        named::named_ended(shared, named::tally_kept(shared, &kept), false).await;
        shared
            .events
            .send(Event::ReplayUnfinished(kept.len() as u32))
            .await;
    }
}
