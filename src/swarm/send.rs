//! A request (or plain message) made from a send step's template and sent: by the step
//! loop, which may then wait for its reply, or by a timer (`[[every]]`), which never waits.
//! Making it is synchronous (`prepare`); only handing it over awaits (`deliver`), so the
//! connection's task keeps no rendering state across its awaits.

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::connection::{Block, Conn, Cut};
use super::state::ClientState;
use super::stream::Ws;
use crate::metrics::event::Name;
use crate::metrics::{DropCause, Event};
use crate::scenario::Step;
use crate::scenario::template::RenderCtx;

/// What a send step came to.
pub(super) enum Prepared {
    /// Not a send step.
    Nothing,
    /// Not sent: the connection has `max_in_flight` requests waiting.
    Capped,
    /// Not sent: a `{{var.…}}` it takes has no value (`fatal` in setup: the connection fails).
    Missing { fatal: bool },
    /// Ready to go (a request is already in the pending table).
    Ready {
        text: Utf8Bytes,
        request: bool,
        name: Name,
    },
}

impl Conn<'_> {
    /// Makes step `index`'s message. In the loop (`blocking`), a request the step waits for (or
    /// any in setup) blocks the program until its reply or timeout; a timer's never does.
    pub(super) fn prepare(&mut self, state: &mut ClientState, index: usize, blocking: bool) -> Prepared {
        let shared = self.shared;
        let Step::Send { template, expect } = shared.step(index) else {
            return Prepared::Nothing;
        };
        let waits = blocking && expect.as_ref().is_some_and(|e| e.wait || self.in_setup);
        if expect.is_some() && self.pending_full() {
            if waits {
                self.block = Block::Room;
            }
            return Prepared::Capped;
        }
        state.next_seq += 1;
        let seq = state.next_seq;
        let mut text = String::with_capacity(self.last_len as usize);
        let mut ctx = RenderCtx {
            client: state.index,
            seq,
            rng: &mut state.rng,
            row: shared.row(state.index),
            vars: state.vars.values(),
        };
        if !template.render(&mut ctx, &mut text) {
            // Nothing half-made is sent.
            return Prepared::Missing {
                fatal: self.in_setup && blocking,
            };
        }
        self.last_len = text.len().min(u32::MAX as usize) as u32;
        let text = Utf8Bytes::from(text);
        let name = expect.as_ref().map_or(0, |e| e.name);
        if expect.is_some() {
            let kept = shared
                .plan
                .reconnect_of(state.socket())
                .replay_in_flight
                .then(|| text.clone());
            let sent = Instant::now();
            // A timer's request is not a pass of the paced loop.
            let due = blocking
                .then(|| state.pace.as_ref().and_then(|p| p.due(sent)))
                .flatten();
            self.pending.insert(seq, (index as u16, name), sent, due, kept);
            if waits {
                self.block = Block::Reply(seq);
            }
        }
        Prepared::Ready {
            text,
            request: expect.is_some(),
            name,
        }
    }

    /// Counts and sends what `prepare` made. A request is counted before its write: one whose
    /// write fails is in the pending table, so the drop counts it lost (or replays it).
    pub(super) async fn deliver(&self, ws: &mut Ws, prepared: Prepared) -> Result<(), Cut> {
        match prepared {
            Prepared::Ready { text, request, name } => {
                self.shared
                    .events
                    .send(Event::Sent {
                        bytes: text.len() as u32,
                        request,
                        replay: false,
                        name,
                    })
                    .await;
                self.send(ws, Message::Text(text)).await
            }
            // Boxed: rare, and their state would otherwise sit in every task.
            other => Box::pin(self.not_sent(other)).await,
        }
    }

    /// Counts a message that was not sent; in setup, one missing a value fails the connection.
    async fn not_sent(&self, prepared: Prepared) -> Result<(), Cut> {
        let events = &self.shared.events;
        match prepared {
            Prepared::Nothing | Prepared::Ready { .. } => Ok(()),
            Prepared::Capped => {
                events.send(Event::Capped).await;
                Ok(())
            }
            Prepared::Missing { fatal } => {
                events.send(Event::CaptureMissing).await;
                if fatal {
                    return Err(self.dropped(DropCause::SetupFailed, || {
                        "a setup step needs a captured value that no reply gave".into()
                    }));
                }
                Ok(())
            }
        }
    }
}
