//! An HTTP step on a connection: in the loop, its request runs beside the connection (which
//! keeps reading its messages) and the loop waits for the response; in `[[setup]]`, the client
//! runs the HTTP steps before every connect attempt (`before_connect`).

use serde_json::Value;

use super::connection::{Block, Conn, Cut};
use super::http::{self, Done, Reply};
use super::receive::capture;
use super::shared::Shared;
use super::state::ClientState;
use crate::metrics::{Event, HttpEnd};
use crate::scenario::{HttpStep, Step};

/// How a response ended, and what its captures failed to find.
fn ended(step: &HttpStep, done: &Done, state: &mut ClientState, shared: &Shared) -> (HttpEnd, u32) {
    match &done.reply {
        Reply::Response { status, body } if step.succeeded(*status) => {
            let text = std::str::from_utf8(body).unwrap_or("");
            let json: Option<Value> = step
                .captures
                .iter()
                .any(|c| c.from.needs_json())
                .then(|| serde_json::from_str(text).ok())
                .flatten();
            let failed = capture(&step.captures, text, json.as_ref(), state, &shared.plan.vars);
            (HttpEnd::Ok(*status), failed)
        }
        Reply::Response { status, .. } => (HttpEnd::Status(*status), 0),
        Reply::Failed(why) => {
            tracing::debug!(why, "an HTTP step failed");
            (HttpEnd::Failed, 0)
        }
        Reply::TimedOut => (HttpEnd::TimedOut, 0),
    }
}

/// Reports an HTTP step's end; true when it succeeded.
async fn report(shared: &Shared, step: &HttpStep, done: &Done, end: HttpEnd, failed: u32) -> bool {
    let rtt_us = done.rtt.as_micros() as u64;
    shared
        .events
        .send(Event::Http {
            name: step.name,
            rtt_us,
            end,
        })
        .await;
    if failed > 0 {
        shared.events.send(Event::CaptureFailed(failed)).await;
    }
    matches!(end, HttpEnd::Ok(_))
}

/// Runs the HTTP steps of the client's setup, in order, before a connect attempt; false when
/// one did not succeed (the attempt fails as `http_setup`).
pub(super) async fn before_connect(shared: &Shared, state: &mut ClientState) -> bool {
    let program = shared.plan.program(state.index, state.socket());
    for index in program.start..program.loop_start {
        let Step::Http(step) = shared.step(index) else {
            continue;
        };
        let max_body = shared.plan.connect.max_message;
        let Some(out) = http::render(step, state, shared.row(state.index), max_body) else {
            shared.events.send(Event::CaptureMissing).await;
            return false;
        };
        let done = http::exchange(out, shared.plan.http_tls.clone()).await;
        let (end, failed) = ended(step, &done, state, shared);
        if !report(shared, step, &done, end, failed).await {
            return false;
        }
    }
    true
}

impl Conn<'_> {
    /// Starts HTTP step `index` beside the connection; the loop waits for its response. In
    /// setup, it already ran before the connect.
    pub(super) async fn start_http(&mut self, state: &mut ClientState, index: usize) {
        let shared = self.shared;
        let Step::Http(step) = shared.step(index) else {
            return;
        };
        if self.in_setup {
            return;
        }
        let max_body = shared.plan.connect.max_message;
        let Some(out) = http::render(step, state, shared.row(state.index), max_body) else {
            shared.events.send(Event::CaptureMissing).await;
            return;
        };
        let tls = shared.plan.http_tls.clone();
        if let Some(extra) = self.extra.as_mut() {
            if step.name != 0 {
                extra.since.retain(|(name, _)| *name != step.name);
                extra.since.push((step.name, tokio::time::Instant::now()));
            }
            extra.http = Some((tokio::spawn(http::exchange(out, tls)), index));
            self.block = Block::Http;
        }
    }

    /// The HTTP step's response came (or its failure): counted, captured, and the loop goes on.
    pub(super) async fn http_done(
        &mut self,
        state: &mut ClientState,
        done: Done,
        index: usize,
    ) -> Result<(), Cut> {
        let shared = self.shared;
        if let Step::Http(step) = shared.step(index) {
            let (end, failed) = ended(step, &done, state, shared);
            report(shared, step, &done, end, failed).await;
        }
        if self.block == Block::Http {
            self.block = Block::Ready;
        }
        Ok(())
    }
}
