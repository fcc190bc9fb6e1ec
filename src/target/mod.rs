//! The built-in target server: `wsstorm serve` and `target = "embedded"`. It echoes requests
//! (so ids correlate) with switchable behaviours, and counts everything it sees so tests can
//! hold the tool's numbers against the server's.

mod behaviour;
mod schedule;
mod server;
mod timers;
mod upgrade;

pub use behaviour::Behaviour;
pub use server::{Server, ServerCounts, start, start_on};
