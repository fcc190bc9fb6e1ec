//! Helpers shared by the integration tests: the one runner of the real binary, plans from TOML
//! text, in-process runs against real servers on 127.0.0.1:0, and the shared servers (the
//! built-in target, small scripted WebSocket servers).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use wsstorm::report::{Console, Out};
use wsstorm::run::{Controls, RunResult, execute};
use wsstorm::scenario::{self, Behaviour, Overrides, Plan};
use wsstorm::server::{self, Server};

/// The real binary, as a user starts it (`RUST_LOG` unset, so the log level is the flags').
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsstorm"));
    command.env_remove("RUST_LOG");
    command
}

/// Runs the binary with `args` in the current directory and waits for it.
pub fn wsstorm<S: AsRef<OsStr>>(args: &[S]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

/// Runs the binary with `args` in `cwd` and waits for it.
pub fn wsstorm_in<S: AsRef<OsStr>>(args: &[S], cwd: &Path) -> Output {
    binary()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// Everything a run of the binary printed: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A test that cannot run on this machine (a tool or a permission is missing) says SKIPPED on
/// stderr. Under CI (the `CI` variable, which CI sets) it fails instead: `.ci/run` installs
/// what every test needs, and a test that skips there would pass having tested nothing.
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} cannot run here ({why}), and under CI every test must run: .ci/run installs what it needs"
    );
    eprintln!("SKIPPED: {test}: {why}");
}

/// A port free on 127.0.0.1 now (for a server that must be told its port before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built-in target on 127.0.0.1:0 with `behaviour`.
pub async fn server(behaviour: Behaviour) -> Server {
    server::start("127.0.0.1:0".parse().unwrap(), behaviour)
        .await
        .expect("the built-in target starts")
}

/// The built-in target that answers nothing.
pub async fn silent_server() -> Server {
    server(Behaviour {
        no_reply_every: Some(1),
        ..Behaviour::default()
    })
    .await
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

/// Waits for `child`, at most `limit`; kills it and fails past that.
pub fn wait_within(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// The errors `validate` gives for scenario text that must be refused (test.toml).
pub fn refused(toml: &str) -> String {
    scenario::parse(Path::new("test.toml"), toml, &Overrides::default(), &|_| None)
        .err()
        .unwrap_or_else(|| panic!("accepted:\n{toml}"))
        .to_string()
}

/// Runs a plan quietly into a fresh temporary directory.
pub async fn run(plan: Plan) -> (RunResult, tempfile::TempDir) {
    run_with(plan, Controls::default()).await
}

pub async fn run_with(plan: Plan, controls: Controls) -> (RunResult, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let live = wsstorm::observe::Options::default();
    let result = execute(
        plan,
        Out::at(dir.path().join("out")),
        &live,
        &Console::quiet(),
        controls,
    )
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

/// A server that answers each text message with what `answer` gives (in order), on every
/// connection; `greeting` is sent first on each. It takes the first subprotocol offered.
pub async fn answering_server(
    greeting: &'static [&'static str],
    answer: fn(&str) -> Vec<String>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)]
                let first_offered = |request: &http::Request<()>, mut response: http::Response<()>| {
                    let offered = request
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok());
                    if let Some(first) = offered.and_then(|v| v.split(',').next()) {
                        response
                            .headers_mut()
                            .insert("sec-websocket-protocol", first.trim().parse().unwrap());
                    }
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, first_offered).await else {
                    return;
                };
                for g in greeting {
                    if ws.send(Message::text(*g)).await.is_err() {
                        return;
                    }
                }
                while let Some(Ok(m)) = ws.next().await {
                    match m {
                        Message::Text(t) => {
                            for out in answer(t.as_str()) {
                                if ws.send(Message::text(out)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
            });
        }
    });
    addr
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

/// The Python the tests run third-party servers with: `WSSTORM_PYTHON`, or the venv `.ci/run`
/// makes (target/ci-venv, with tests/requirements.txt), or `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WSSTORM_PYTHON") {
        return p.into();
    }
    let venv = repo().join("target/ci-venv/bin/python3");
    if venv.exists() { venv } else { "python3".into() }
}

/// A third-party server run by the tests (tests/servers/): its port, and its own counts when it
/// is stopped.
pub struct ThirdParty {
    child: std::process::Child,
    pub port: u16,
}

impl ThirdParty {
    /// Starts `tests/servers/<script>` with `args`; None (after `skip`) when the Python module
    /// `module` is not installed here.
    pub fn start(test: &str, module: &str, script: &str, args: &[&str]) -> Option<ThirdParty> {
        let python = python();
        let has = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has {
            skip(
                test,
                &format!(
                    "{} has no `{module}` (.ci/run installs tests/requirements.txt)",
                    python.display()
                ),
            );
            return None;
        }
        let mut command = Command::new(&python);
        command.arg(repo().join("tests/servers").join(script)).args(args);
        Some(Self::spawn(command, script))
    }

    /// Starts `tests/servers/<script>` with Node.js; None (after `skip`) when the npm package
    /// `package` is not in tests/node/node_modules (`.ci/run` runs `npm ci` there).
    pub fn node(test: &str, package: &str, script: &str, args: &[&str]) -> Option<ThirdParty> {
        if !repo().join("tests/node/node_modules").join(package).exists() {
            skip(
                test,
                &format!("tests/node/node_modules has no `{package}` (.ci/run runs npm ci in tests/node)"),
            );
            return None;
        }
        let mut command = Command::new("node");
        command.arg(repo().join("tests/servers").join(script)).args(args);
        Some(Self::spawn(command, script))
    }

    /// Runs the server and reads the port from its first line.
    fn spawn(mut command: Command, script: &str) -> ThirdParty {
        use std::io::BufRead;
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{script} starts: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{script} said {line:?}: {e}"));
        let port = started["port"].as_u64().expect("a port") as u16;
        ThirdParty { child, port }
    }

    /// Stops the server; its counts.
    pub fn finish(mut self) -> serde_json::Value {
        use std::io::Read;
        drop(self.child.stdin.take());
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child.wait().unwrap();
        serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap()
    }
}

impl Drop for ThirdParty {
    fn drop(&mut self) {
        // Stopped by its own process id, if a test ended without `finish`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
