//! What every connection of one server shares: its behaviour, its counts (the numbers tests
//! hold the tool's against), the restart window and the close schedule's signal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use crate::metrics::ServerCounts;
use crate::scenario::Behaviour;

/// How many accept times a server keeps (16 MB).
const ACCEPT_TIMES_KEPT: usize = 1_000_000;

/// What the server saw. Written with `Relaxed` atomics: exact once connections are closed.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) connections: AtomicU64,
    pub(super) open: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) answered: AtomicU64,
    pub(super) withheld: AtomicU64,
    pub(super) closed_by_schedule: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) pushes: AtomicU64,
    pub(super) idle_closed: AtomicU64,
    pub(super) pings_sent: AtomicU64,
    pub(super) pongs_received: AtomicU64,
    pub(super) deflated: AtomicU64,
}

impl Stats {
    fn snapshot(&self) -> ServerCounts {
        ServerCounts {
            connections: self.connections.load(Relaxed),
            open: self.open.load(Relaxed),
            received: self.received.load(Relaxed),
            answered: self.answered.load(Relaxed),
            withheld: self.withheld.load(Relaxed),
            closed_by_schedule: self.closed_by_schedule.load(Relaxed),
            refused: self.refused.load(Relaxed),
            unauthorized: self.unauthorized.load(Relaxed),
            pushes: self.pushes.load(Relaxed),
            idle_closed: self.idle_closed.load(Relaxed),
            pings_sent: self.pings_sent.load(Relaxed),
            pongs_received: self.pongs_received.load(Relaxed),
            deflated: self.deflated.load(Relaxed),
        }
    }
}

/// What every connection of one server shares.
pub(super) struct Shared {
    pub(super) behaviour: Behaviour,
    pub(super) stats: Stats,
    pub(super) started: Instant,
    /// End of the current `refuse_for` window, in µs after `started` (0: none yet).
    pub(super) refuse_until_us: AtomicU64,
    /// When each upgrade completed, after `started` (the first `ACCEPT_TIMES_KEPT`: a server
    /// left running through storms must not grow without bound).
    accept_times: Mutex<Vec<Duration>>,
    /// Upgrades completed per peer IP address.
    peers: Mutex<HashMap<IpAddr, u64>>,
    /// Bumped by the close schedule: every connection closes when it changes.
    pub(super) closes: watch::Sender<u64>,
}

impl Shared {
    pub(super) fn new(behaviour: Behaviour) -> Self {
        Shared {
            behaviour,
            stats: Stats::default(),
            started: Instant::now(),
            refuse_until_us: AtomicU64::new(0),
            accept_times: Mutex::new(Vec::new()),
            peers: Mutex::new(HashMap::new()),
            closes: watch::Sender::new(0),
        }
    }

    /// How much of a `refuse_for` window is left, if one is open now.
    pub(super) fn refusing(&self) -> Option<Duration> {
        let until = Duration::from_micros(self.refuse_until_us.load(Relaxed));
        let now = self.started.elapsed();
        (now < until).then(|| until - now)
    }

    /// Counts an upgrade completed at `at` from `peer`.
    pub(super) fn accepted(&self, at: Instant, peer: Option<IpAddr>) {
        self.stats.connections.fetch_add(1, Relaxed);
        self.stats.open.fetch_add(1, Relaxed);
        {
            let mut times = self.accept_times.lock().unwrap_or_else(|e| e.into_inner());
            if times.len() < ACCEPT_TIMES_KEPT {
                times.push(at - self.started);
            }
        }
        if let Some(ip) = peer {
            *self
                .peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(ip)
                .or_default() += 1;
        }
    }

    pub(super) fn counts(&self) -> ServerCounts {
        self.stats.snapshot()
    }

    pub(super) fn accept_times(&self) -> Vec<Duration> {
        self.accept_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn peers(&self) -> HashMap<IpAddr, u64> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
