//! One simulated client: connect, drive the connection, and after a drop or a failed attempt
//! wait per the reconnect policy and connect again, until the run or a ramp-down stops it or
//! it gives up. What it keeps between connections is a few words.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::Retries;
use super::connection::{self, End};
use super::{Shared, connect};
use crate::metrics::Event;
use crate::metrics::requests::RequestOutcome;

/// How the swarm reaches one client: its stop button and chaos commands.
pub struct ClientCtl {
    /// The run's graceful stop, or this client's ramp-down.
    pub stop: CancellationToken,
    /// Whether the client has an open connection now (read by the chaos controller).
    pub connected: AtomicBool,
    /// Pending chaos command: index into the plan's chaos list, plus one (0: none).
    pub chaos: AtomicU32,
    pub notify: Notify,
}

impl ClientCtl {
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            stop,
            connected: AtomicBool::new(false),
            chaos: AtomicU32::new(0),
            notify: Notify::new(),
        }
    }

    /// Asks the client to apply chaos action `index` to its connection.
    pub fn hit(&self, index: usize) {
        self.chaos.store(index as u32 + 1, Relaxed);
        self.notify.notify_one();
    }
}

/// What a client keeps across its connections.
pub struct ClientState {
    pub index: u64,
    /// Sequence number of the last message sent; ids are `index-seq`, unique per run.
    pub next_seq: u64,
    pub rng: SmallRng,
    /// Requests in flight at the last drop, to resend after reconnecting.
    pub replay: Vec<super::pending::Kept>,
    /// Highest push sequence number seen, across connections.
    pub last_push_seq: Option<u64>,
    /// The open-rate schedule, kept across connections (boxed: only paced runs have one).
    pub pace: Option<Box<super::connection::Pace>>,
}

/// Runs client `index` until it is stopped or gives up.
pub async fn run(shared: Arc<Shared>, index: u64, seq_base: u64, ctl: Arc<ClientCtl>) {
    let mut state = ClientState {
        index,
        next_seq: seq_base,
        rng: SmallRng::seed_from_u64(shared.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        replay: Vec::new(),
        last_push_seq: None,
        pace: None,
    };
    let client = index as u32;
    let events = &shared.events;
    let policy = &shared.reconnect;
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
                abandon_replay(&shared, &mut state).await;
                return;
            }
        }
        let attempt = retries.begin();
        events.send(Event::Connecting).await;
        let started = Instant::now();
        let opened = tokio::select! {
            biased;
            _ = shared.halt.cancelled() => {
                events.send(Event::ConnectAbandoned).await;
                abandon_replay(&shared, &mut state).await;
                return;
            }
            // Boxed: the handshake's state is large and lives only while connecting, so an
            // open connection's task does not carry it.
            r = Box::pin(connect::open(&shared, &mut state)) => r,
        };
        let wait = match opened {
            Ok(o) => {
                let reconnect_us = dropped_at.take().map(|t| t.elapsed().as_micros() as u64);
                events
                    .send(Event::Connected {
                        client,
                        attempt,
                        tcp_us: o.tcp_us,
                        upgrade_us: o.upgrade_us,
                        reconnect_us,
                    })
                    .await;
                retries.connected();
                ctl.chaos.store(0, Relaxed);
                ctl.connected.store(true, Relaxed);
                let mut ws = o.ws;
                let end = connection::drive(&mut ws, &shared, &mut state, &ctl).await;
                ctl.connected.store(false, Relaxed);
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
                        abandon_replay(&shared, &mut state).await;
                        return;
                    }
                    End::Cycled { open_us } => {
                        events
                            .send(Event::Closed {
                                client,
                                unfinished: 0,
                                open_us,
                            })
                            .await;
                        if ctl.stop.is_cancelled() {
                            return;
                        }
                        continue;
                    }
                    End::Dropped { cause, lost, open_us } => {
                        events
                            .send(Event::Dropped {
                                client,
                                cause,
                                lost,
                                open_us,
                            })
                            .await;
                        dropped_at = Some(Instant::now());
                        retries.dropped(policy, &mut state.rng)
                    }
                }
            }
            Err(kind) => {
                let took_us = started.elapsed().as_micros() as u64;
                events
                    .send(Event::ConnectFailed {
                        client,
                        attempt,
                        kind,
                        took_us,
                    })
                    .await;
                match retries.failed(policy, &mut state.rng) {
                    Some(wait) => wait,
                    None => {
                        let kept = std::mem::take(&mut state.replay);
                        if let Some(log) = &shared.requests {
                            for k in &kept {
                                log.record(client, k.seq, RequestOutcome::Lost, None).await;
                            }
                        }
                        let lost = kept.len() as u32;
                        events
                            .send(Event::GaveUp {
                                client,
                                attempts: attempt,
                                lost,
                            })
                            .await;
                        return;
                    }
                }
            }
        };
        if ctl.stop.is_cancelled() {
            abandon_replay(&shared, &mut state).await;
            return;
        }
        events.send(Event::BackoffStarted).await;
        let stopped = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = ctl.stop.cancelled() => true,
        };
        events.send(Event::BackoffEnded).await;
        if stopped {
            abandon_replay(&shared, &mut state).await;
            return;
        }
    }
}

/// The run stopped before the requests kept for replay could be resent: they are unfinished.
async fn abandon_replay(shared: &Shared, state: &mut ClientState) {
    let kept = std::mem::take(&mut state.replay);
    if let Some(log) = &shared.requests {
        for k in &kept {
            log.record(state.index as u32, k.seq, RequestOutcome::Unfinished, None)
                .await;
        }
    }
    if !kept.is_empty() {
        shared.events.send(Event::Unfinished(kept.len() as u32)).await;
    }
}
