//! Scenario files, the ground floor: TOML read into raw types (`raw`), checked once by
//! `validate` into a `Plan` (`plan`) that cannot be invalid. Every rejection is a
//! `ScenarioError` naming file, line, column and the expected form. Nothing here imports the
//! engines (swarm, proxy, server, metrics, reports); they import this.

pub mod check;
pub mod error;
pub mod feed;
mod files;
mod overrides;
mod plan;
pub mod pointer;
mod protocol;
pub mod raw;
pub mod segment;
pub mod set;
pub mod sources;
pub mod template;
pub mod threshold;
pub mod tls;
mod validate;

pub use error::{ScenarioError, ScenarioErrors};
pub use overrides::Overrides;
pub use plan::{
    Amount, Behaviour, Capture, Chaos, ChaosAction, ChaosHow, ChaosWhen, Command, Connect, Correlation,
    CounterName, Direction, Exec, Expect, Extract, Fault, Flow, Heartbeat, HttpStep, Jitter, Lapse, Load,
    NameTemplate, Phase, Plan, Program, Protocol, Pushes, Reconnect, ReconnectAction, RecoveryRule,
    RequestFilter, Rule, RuleDrop, Scope, Socket, Step, Strategy, Target, TargetUrl, Timer, Toxic, Var,
};
pub use plan::{Compression, Deflate};
pub use plan::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CORRELATION_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_MESSAGE,
    DEFAULT_READ_BUFFER, DEFAULT_WAIT_TIMEOUT, MAX_BINARY, MAX_CLIENTS, MAX_IN_FLIGHT,
};
pub use validate::{json_schema, load, parse};

#[cfg(test)]
mod tests;
