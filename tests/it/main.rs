//! The integration tests, one crate (one link) with a module per area. They start real
//! servers on 127.0.0.1:0 (the built-in target, small servers written for a test, or third-party
//! ones) and hold what the tool reported against what the server recorded. `support` has the one
//! runner of the binary and the shared servers.

mod support;

mod architecture;
mod cli;
mod conversations;
mod deflate;
mod deploy;
mod durability;
mod engine;
mod exec;
mod feed;
mod field;
mod graphql;
mod hostile;
mod http_steps;
mod inflight;
mod jsonrpc;
mod lifecycle;
mod netns;
mod network;
mod observe;
mod open;
mod policy;
mod reports;
mod scenarios;
mod secrets;
mod segments;
mod server;
mod socketio;
mod steps;
mod stomp;
mod tls;
mod workers;
