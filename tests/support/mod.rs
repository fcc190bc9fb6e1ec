//! Helpers shared by the integration tests: plans from TOML text, in-process runs against
//! real servers on 127.0.0.1:0, and small scripted WebSocket servers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use wsstorm::run::{Controls, RunResult, execute};
use wsstorm::scenario::{self, Overrides, Plan};
use wsstorm::target::{self, Behaviour};

/// The built-in target on 127.0.0.1:0 with `behaviour`.
pub async fn server(behaviour: Behaviour) -> target::Server {
    target::start("127.0.0.1:0".parse().unwrap(), behaviour)
        .await
        .unwrap()
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One row of connections.csv.
#[derive(Debug, serde::Deserialize)]
pub struct Row {
    pub time_s: f64,
    /// Empty on chaos rows.
    pub client: Option<u32>,
    pub event: String,
    pub attempt: u32,
    pub duration_ms: f64,
    pub cause: String,
}

pub fn connection_rows(r: &RunResult) -> Vec<Row> {
    rows_in(&r.dir)
}

/// The rows of connections.csv in a results directory.
pub fn rows_in(dir: &Path) -> Vec<Row> {
    csv::Reader::from_path(dir.join("connections.csv"))
        .unwrap()
        .deserialize()
        .map(|row| row.unwrap())
        .collect()
}

/// Validates scenario text, pointing it at `url`.
pub fn plan(toml: &str, url: &str) -> Plan {
    let overrides = Overrides {
        target: Some(url.to_string()),
        duration: None,
        ..Default::default()
    };
    scenario::parse(Path::new("test.toml"), toml, &overrides, &|_| None)
        .unwrap_or_else(|e| panic!("test scenario is invalid:\n{e}"))
}

/// Runs a plan quietly into a fresh temporary directory.
pub async fn run(plan: Plan) -> (RunResult, tempfile::TempDir) {
    run_with(plan, Controls::default()).await
}

pub async fn run_with(plan: Plan, controls: Controls) -> (RunResult, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let result = execute(plan, Some(dir.path().join("out")), true, controls)
        .await
        .expect("run completes");
    // Every summary a test produces matches the committed schema.
    check_summary_schema(&result);
    (result, dir)
}

/// The invariant every run must keep: each request ends exactly one way.
pub fn assert_requests_reconcile(r: &RunResult) {
    let c = &r.totals.counts;
    assert_eq!(
        c.requests,
        c.answered + c.timeouts + c.lost + c.unfinished,
        "sent = answered + timeouts + lost + unfinished: {c:?}"
    );
}

/// A one-connection server that reads `n` requests carrying `"id"`, then answers them in
/// reverse order, answers the first one twice, sends a reply with an id nobody sent and a
/// push without an id; then stays open, silent.
pub async fn scrambling_server(n: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut ids = Vec::new();
        while ids.len() < n {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    ids.push(v["id"].as_str().unwrap().to_string());
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
        let reply = |id: &str| Message::text(format!(r#"{{"type":"Response","id":"{id}"}}"#));
        for id in ids.iter().rev() {
            ws.send(reply(id)).await.unwrap();
        }
        ws.send(reply(&ids[0])).await.unwrap();
        ws.send(reply("424242-1")).await.unwrap();
        ws.send(Message::text(r#"{"type":"Push","seq":1}"#))
            .await
            .unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    });
    addr
}

/// Checks a summary.json against the committed JSON Schema.
pub fn check_schema(summary: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/summary.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(summary)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "summary.json breaks the schema: {errors:#?}");
}

/// Checks the summary.json a run wrote against the committed JSON Schema.
pub fn check_summary_schema(r: &RunResult) {
    let text = std::fs::read_to_string(r.dir.join("summary.json")).unwrap();
    check_schema(&serde_json::from_str(&text).unwrap());
}
