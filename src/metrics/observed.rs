//! What is counted outside the swarm, for the summary: the built-in target's own counts (so
//! the tool's numbers can be held against the server's), the chaos proxy's, and what became of
//! each `exec` command. The server, the proxy and the swarm fill them; reports read them.

use serde::{Deserialize, Serialize};

/// Declares `ServerCounts` from its fields, with the sum of two (`serve --workers`).
macro_rules! server_counts {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// A snapshot of the server's counts (counts added later read as 0 from older
        /// summary.json files).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct ServerCounts {
            $($(#[$doc])* pub $field: u64),*
        }

        impl std::ops::Add for ServerCounts {
            type Output = ServerCounts;

            fn add(self, o: ServerCounts) -> ServerCounts {
                ServerCounts { $($field: self.$field + o.$field),* }
            }
        }
    };
}

server_counts! {
    /// Upgrades completed.
    connections,
    /// Connections open now.
    open,
    /// Data messages received.
    received,
    /// Replies sent.
    answered,
    /// Replies withheld on purpose.
    withheld,
    /// Connections closed by `close_every` / `close_at` (close frame or reset).
    closed_by_schedule,
    /// Upgrades answered with 503 during a `refuse_for` window.
    refused,
    /// Upgrades answered with 401 (no or wrong token).
    unauthorized,
    /// Push messages sent.
    pushes,
    /// Connections closed because a ping went unanswered for `ping_timeout`.
    idle_closed,
    /// Heartbeat pings sent.
    pings_sent,
    /// Pongs received (answers to the heartbeat, or unsolicited).
    pongs_received,
    /// Connections that negotiated permessage-deflate.
    deflated,
}

/// What the proxy saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyCounts {
    /// Client connections accepted.
    pub connections: u64,
    /// Connections open now (in the summary: still open when the run ended and the proxy
    /// stopped, after a grace of 2 s).
    pub open: u64,
    /// Client connections reset because the upstream could not be reached.
    pub upstream_failures: u64,
    /// Connections reset on accept by a partial `refuse`.
    pub refused: u64,
    /// Times the listener was closed by a full `refuse`.
    pub listener_closed: u64,
    /// Connections reset by a `reset` fault.
    pub reset: u64,
    /// Connections closed by `limit_data`.
    pub limited: u64,
    /// Bytes passed client → upstream.
    pub bytes_upstream: u64,
    /// Bytes passed upstream → client.
    pub bytes_downstream: u64,
}

/// What became of one `exec` firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecReport {
    /// Index of the action in the scenario's [[chaos]] list.
    pub chaos: u32,
    pub at_s: f64,
    pub command: String,
    /// exited | timed_out | stopped (the run was stopped at once) | failed_to_start
    pub outcome: String,
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Signal that ended it, when one did.
    pub signal: Option<i32>,
    pub duration_s: f64,
    /// Files in the results directory holding its standard output and error.
    pub stdout: String,
    pub stderr: String,
    /// Why it could not start.
    pub error: Option<String>,
}

/// What the live export of a run did (`--metrics-listen`, `--metrics-out`), for the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveExport {
    /// The address scrapes were served on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_write: Option<RemoteWriteReport>,
}

/// The Prometheus remote write of a run: samples delivered, and those that were not (the
/// receiver was down or refused them, or the queue was full).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWriteReport {
    /// Without its user part.
    pub url: String,
    pub samples_sent: u64,
    pub samples_dropped: u64,
    /// Requests that failed (each retry counts).
    pub requests_failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}
