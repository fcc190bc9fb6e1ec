//! wsstorm: load and chaos testing for WebSocket services.
//!
//! Data flows one way: scenario file → validated [`scenario::Plan`] → [`swarm`] of clients →
//! [`metrics`] events and totals → [`report`]s. The built-in [`target`] server is the quick
//! start's target and the tests' reference.

pub mod cli;
pub mod delay;
pub mod exit;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod redact;
pub mod report;
pub mod run;
pub mod scenario;
pub mod swarm;
pub mod target;
pub mod workers;
