//! The swarm: clients started and stopped on the plan's timeline (`schedule`), each one a
//! task running `client` → `connect` → `connection`, reporting events one way to the
//! collector. The swarm never formats output and never reads the metrics.

pub mod client;
pub mod connect;
pub mod connection;
pub mod pending;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::EventTx;
use crate::scenario::template::Template;
use crate::scenario::{Correlation, Plan, Step};
use schedule::Action;

/// Extra time past the correlation timeout a graceful stop allows before forcing the end.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What every client of a run reads; built once from the plan.
pub struct Shared {
    pub url: String,
    /// host:port to connect to.
    pub authority: String,
    pub headers: Vec<(HeaderName, Template)>,
    pub subprotocols: Option<HeaderValue>,
    pub connect_timeout: Duration,
    pub ws_config: WebSocketConfig,
    pub correlation: Option<Correlation>,
    pub steps: Vec<Step>,
    pub seed: u64,
    pub events: EventTx,
    /// Graceful stop: send nothing more, wait for replies in flight, close.
    pub stop: CancellationToken,
    /// Immediate stop: abandon everything (in-flight requests count as unfinished).
    pub halt: CancellationToken,
}

impl Shared {
    /// `url` is the resolved ws:// target (the embedded server's address when embedded).
    pub fn new(
        plan: &Plan,
        url: &str,
        events: EventTx,
        stop: CancellationToken,
        halt: CancellationToken,
    ) -> Self {
        let uri: http::Uri = url.parse().expect("validated URL");
        let host = uri.host().expect("validated URL has a host");
        let port = uri.port_u16().unwrap_or(80);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let headers = plan
            .connect
            .headers
            .iter()
            .map(|(name, t)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).expect("validated header name"),
                    t.clone(),
                )
            })
            .collect();
        let subprotocols = (!plan.connect.subprotocols.is_empty())
            .then(|| HeaderValue::from_str(&plan.connect.subprotocols.join(", ")).expect("validated tokens"));
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(plan.connect.read_buffer)
            .write_buffer_size(0);
        Self {
            url: url.to_string(),
            authority,
            headers,
            subprotocols,
            connect_timeout: plan.connect.timeout,
            ws_config,
            correlation: plan.correlation.clone(),
            steps: plan.steps.clone(),
            seed: plan.seed,
            events,
            stop,
            halt,
        }
    }
}

/// Runs the load timeline from `start` until `duration` or a stop, then drains: clients wait
/// for replies in flight (bounded by the correlation timeout) and close. Returns when every
/// client has ended.
pub async fn run(shared: Arc<Shared>, plan: &Plan, start: Instant) {
    let tracker = TaskTracker::new();
    let peak = plan.load.peak() as usize;
    let mut tokens: Vec<Option<CancellationToken>> = vec![None; peak];
    let mut generation: Vec<u32> = vec![0; peak];
    let end = start + plan.duration;

    for change in schedule::timeline(&plan.load, plan.duration) {
        let at = start + change.at;
        if at > Instant::now() {
            tokio::select! {
                _ = sleep_until(at) => {}
                _ = shared.stop.cancelled() => break,
            }
        }
        let i = change.index as usize;
        match change.action {
            Action::Start => {
                let token = shared.stop.child_token();
                tokens[i] = Some(token.clone());
                // A client number started again after a ramp-down keeps ids unique.
                let seq_base = u64::from(generation[i]) << 40;
                generation[i] += 1;
                tracker.spawn(client::run(shared.clone(), change.index, seq_base, token));
            }
            Action::Stop => {
                if let Some(token) = tokens[i].take() {
                    token.cancel();
                }
            }
        }
    }
    tokio::select! {
        _ = sleep_until(end) => {}
        _ = shared.stop.cancelled() => {}
    }
    shared.stop.cancel();
    tracker.close();
    let drain = shared.correlation.as_ref().map_or(Duration::ZERO, |c| c.timeout)
        + shared.connect_timeout.min(DRAIN_GRACE)
        + DRAIN_GRACE;
    tokio::select! {
        _ = tracker.wait() => {}
        _ = tokio::time::sleep(drain) => {
            shared.halt.cancel();
            tracker.wait().await;
        }
    }
}
