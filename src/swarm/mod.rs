//! The swarm: clients started and stopped on the plan's timeline (`timeline`), each one a
//! task running `client` → `connect` (`handshake` over the `stream`) → `connection` (with its
//! `pending` table, `heart`beat and `pace`; `receive` relates what comes in), reporting events
//! one way to the collector. The swarm never formats output and never reads the metrics.
//!
//! Inside, dependencies point one way: `shared` and `state` at the bottom, then `stream`,
//! `causes`, `handshake`, `connect`, the request `ledger` and `pending` table, `connection` (with
//! `receive` for what comes in, `rules` for `[[on_message]]`, `hit` for client-side chaos,
//! `named` for named steps' ends), `client`, and `timeline` on top.

pub mod backoff;
mod causes;
pub mod client;
mod connect;
mod connection;
pub mod exec;
mod extra;
mod handshake;
mod heart;
mod hit;
mod http;
mod http_step;
mod ledger;
mod named;
mod pace;
pub mod pending;
mod receive;
mod rules;
pub mod schedule;
mod send;
mod shared;
mod state;
mod stream;
mod timeline;
mod timers;

pub use shared::{ConnectGate, Endpoint, Shared, Wiring};
pub use state::ClientCtl;
pub use timeline::{FaultSwitch, Surroundings, run};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use super::*;

    /// The per-client task is what 250 000 idle connections are made of: keep it small.
    #[test]
    fn a_client_task_stays_small() {
        let toml = r#"
name = "size"
target = "ws://127.0.0.1:9/"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
"#;
        let plan = crate::scenario::parse(std::path::Path::new("t.toml"), toml, &Default::default(), &|_| {
            None
        })
        .unwrap();
        let (events, _rx) = crate::metrics::channel();
        let endpoint = Endpoint {
            uri: "ws://127.0.0.1:9/".parse().unwrap(),
            connect_to: "127.0.0.1:9".to_string(),
        };
        let wiring = Wiring {
            events,
            requests: None,
            stop: CancellationToken::new(),
            halt: CancellationToken::new(),
            reasons: Default::default(),
            counters: Default::default(),
        };
        let shared = Arc::new(Shared::new(Arc::new(plan), endpoint, wiring));
        let ctl = Arc::new(ClientCtl::new(CancellationToken::new()));
        let task = client::run(shared, (0, 0), 0, ctl);
        let size = std::mem::size_of_val(&task);
        eprintln!("client task future: {size} bytes");
        // 4.7 KiB before the handshake and chaos futures were boxed; 3064 before the steps
        // of issue 5 (stream, checks, wait_for, binary) added 16 (3080); issue 17's captured
        // values, rules, named steps and timers 24 (3104: the rare paths are boxed).
        assert!(size <= 3104, "client task future is {size} bytes");
    }
}
