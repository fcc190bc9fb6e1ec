//! The built-in target server: `wsstorm serve` and `target = "embedded"`. It echoes requests
//! (so ids correlate) with switchable behaviours (the plan's `Behaviour`), and counts
//! everything it sees so tests can hold the tool's numbers against the server's.

mod connection;
mod graphql;
mod jsonrpc;
mod listen;
mod schedule;
pub mod socketio;
mod state;
pub mod stomp;
mod timers;
mod upgrade;

pub use listen::{Server, start, start_on};
