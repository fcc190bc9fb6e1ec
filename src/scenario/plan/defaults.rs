//! The plan's defaults, where a scenario says nothing, and its bounds.

use std::time::Duration;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CORRELATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests of one connection waiting for their reply at once, unless the scenario says
/// otherwise: far more than a request/response client keeps, and a bound (about 100 KiB of
/// pending table a connection) when a server stops answering a loop that does not wait.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;
pub const MAX_IN_FLIGHT: u32 = 1_000_000;
/// How long a `wait_for` step waits without a timeout of its own or a correlation timeout.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message and frame a server may send, unless the scenario says otherwise: far
/// below tungstenite's 64 MiB, so that a hostile server cannot make a swarm buffer gigabytes.
pub const DEFAULT_MAX_MESSAGE: usize = 4 << 20;
/// The largest binary frame a `send_binary` step may send.
pub const MAX_BINARY: u64 = 16 << 20;
/// Per-connection read buffer: small, because idle connections are what a swarm is made of.
pub const DEFAULT_READ_BUFFER: usize = 2048;
pub const MAX_CLIENTS: u64 = 10_000_000;
