//! What every client of a run reads: the plan (shared, never copied field by field), where to
//! connect, the rate gate on new connections, the WebSocket limits, and the run's channels and
//! stop buttons. Built once, before the first client starts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Uri};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::deflate::Offer;
use crate::metrics::requests::RequestLog;
use crate::metrics::{Counters, EventTx, Reasons};
use crate::scenario::{Plan, Step};

/// Bytes of the write buffer for control frames beyond the largest message: some hundred pongs.
const CONTROL_ROOM: usize = 16 << 10;

/// Where clients connect: the URL of the upgrade request (the scenario's target, or the
/// embedded server's), and the host:port TCP connections go to (the URL's authority, or the
/// chaos proxy's address).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub uri: Uri,
    pub connect_to: String,
}

/// The run's channels and stop buttons, which the swarm is given rather than makes.
pub struct Wiring {
    pub events: EventTx,
    /// Where request outcomes go when requests.csv is written.
    pub requests: Option<RequestLog>,
    /// Graceful stop: send nothing more, wait for replies in flight, close.
    pub stop: CancellationToken,
    /// Immediate stop: abandon everything (in-flight requests count as unfinished).
    pub halt: CancellationToken,
    /// Where the first message of each failure's cause goes.
    pub reasons: Arc<Reasons>,
    /// The names of the rules' counters.
    pub counters: Arc<Counters>,
}

pub struct Shared {
    pub plan: Arc<Plan>,
    pub endpoint: Endpoint,
    /// `[connect] max_rate`: this process's share of the cap on new connection attempts.
    pub connect_gate: Option<ConnectGate>,
    /// For a wss:// target: the TLS connector (the plan holds the name to check).
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub ws_config: WebSocketConfig,
    /// `[connect] compression = "deflate"`: the offer, and its `Sec-WebSocket-Extensions` value.
    pub deflate: Option<(Offer, HeaderValue)>,
    pub events: EventTx,
    pub requests: Option<RequestLog>,
    pub stop: CancellationToken,
    pub halt: CancellationToken,
    pub reasons: Arc<Reasons>,
    pub counters: Arc<Counters>,
}

impl Shared {
    pub fn new(plan: Arc<Plan>, endpoint: Endpoint, wiring: Wiring) -> Self {
        let connect = &plan.connect;
        // The write buffer holds one message (a frame header is at most 14 bytes) and room for
        // the pongs and the close tungstenite queues by itself: past that, it keeps one pong
        // pending instead of one per ping, so a server that floods pings while it stops
        // reading cannot grow it (the stall limit then ends the connection).
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(connect.read_buffer)
            .write_buffer_size(0)
            .max_write_buffer_size(plan.largest_send() + 14 + CONTROL_ROOM)
            .max_message_size(Some(connect.max_message))
            .max_frame_size(Some(connect.max_frame));
        // A segment takes its share of the rate, as of the clients.
        let connect_gate = connect.max_rate.map(|rate| {
            let share = plan.peak_clients() as f64 / plan.load.peak().max(1) as f64;
            ConnectGate::new(rate * share.max(f64::MIN_POSITIVE))
        });
        let tls = plan
            .tls
            .as_ref()
            .map(|tls| tokio_rustls::TlsConnector::from(tls.config.clone()));
        let deflate = connect.deflate.map(|d| {
            let offer = Offer {
                client_max_window_bits: d.client_max_window_bits,
                no_context_takeover: d.no_context_takeover,
            };
            let header = HeaderValue::from_str(&offer.header()).expect("an offer is a header value");
            (offer, header)
        });
        Shared {
            endpoint,
            connect_gate,
            tls,
            ws_config,
            deflate,
            events: wiring.events,
            requests: wiring.requests,
            stop: wiring.stop,
            halt: wiring.halt,
            reasons: wiring.reasons,
            counters: wiring.counters,
            plan,
        }
    }

    /// Step `index` of the program: the setup steps, then the loop's.
    pub fn step(&self, index: usize) -> &Step {
        self.plan.step(index)
    }

    /// Client `index`'s `[feed]` row (empty without a feed).
    pub fn row(&self, index: u64) -> &[Box<str>] {
        self.plan.row(index)
    }
}

/// Spaces connection attempts `1 / rate` apart, over all clients: each attempt takes the next
/// free slot and waits for it.
pub struct ConnectGate {
    interval: Duration,
    next: Mutex<Instant>,
}

impl ConnectGate {
    fn new(rate: f64) -> Self {
        ConnectGate {
            interval: Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX / 4),
            next: Mutex::new(Instant::now()),
        }
    }

    /// The time this attempt may begin.
    pub fn slot(&self) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(Instant::now());
        *next = slot + self.interval;
        slot
    }
}
