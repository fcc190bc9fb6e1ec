//! wsstorm: load and chaos testing for WebSocket services.
//!
//! Data flows one way: scenario file → validated [`scenario::Plan`] → [`swarm`] of clients →
//! [`metrics`] events and totals → [`report`]s. The built-in [`server`] is the quick start's
//! target and the tests' reference; [`proxy`] injects network faults. [`run`] puts one run
//! together, [`cmd`] is the command edge (one file per command), [`cli`] its flags.
//!
//! Layers point down: [`units`] at the bottom, then the plan ([`scenario`]), then the engines
//! ([`metrics`], [`swarm`], [`proxy`], [`server`]), then [`report`], [`run`] and the edge.
//! [`deflate`] (permessage-deflate under tungstenite) is a leaf that the swarm and the server
//! share.

pub mod cli;
pub mod cmd;
pub mod deflate;
pub mod delay;
pub mod exit;
pub mod httpc;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod proxy;
pub mod redact;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod swarm;
pub mod units;
