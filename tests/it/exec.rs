//! `exec` chaos: a command on the timeline restarts a real server process and the recovery is
//! measured; failing, hanging and missing commands are reported and the run goes on; nothing a
//! server sent ever reaches a command.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{assert_requests_reconcile, check_summary_schema, free_port, plan, run, server};
use wsstorm::scenario::Behaviour;

const BIN: &str = env!("CARGO_BIN_EXE_wsstorm");

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_that_restarts_the_server_process_is_on_the_timeline_with_its_recovery() {
    let port = free_port();
    let work = tempfile::tempdir().unwrap();
    let pidfile = work.path().join("server.pid");
    let mut first = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(&pidfile, first.id().to_string()).unwrap();
    wait_listening(port);

    // The restart: stop the server, stay down a second, start a new one in the background.
    let script = format!(
        "kill $(cat '{pid}') && sleep 1 && {{ '{BIN}' serve --listen 127.0.0.1:{port} >/dev/null 2>&1 & echo $! > '{pid}'; }} && echo restarted",
        pid = pidfile.display()
    );
    let toml = format!(
        r#"name = "restart"
target = "ws://127.0.0.1:{port}/"
duration = "6s"
[connect]
timeout = "1s"
[reconnect]
strategy = "constant"
initial = "200ms"
jitter = "none"
[correlation]
request_id = "/id"
timeout = "2s"
[[phases]]
clients = 10
[[steps]]
send = '{{"id":"{{{{id}}}}"}}'
expect = "response"
[[steps]]
sleep = "50ms"
[[chaos]]
at = "2s"
exec = {script:?}
shell = true
timeout = "10s"
"#
    );
    let (r, _dir) = run(plan(&toml, &format!("ws://127.0.0.1:{port}/"))).await;
    let second = read_pid(&pidfile);
    let _ = Command::new("kill").arg(second.to_string()).status();
    let _ = first.wait();

    let exec = &r.summary.exec;
    assert_eq!(exec.len(), 1, "{exec:?}");
    assert_eq!(exec[0].outcome, "exited");
    assert_eq!(exec[0].exit_code, Some(0));
    assert!((exec[0].duration_s - 1.0).abs() < 0.5, "{:?}", exec[0]);
    assert_eq!(
        std::fs::read_to_string(r.dir.join(&exec[0].stdout)).unwrap(),
        "restarted\n",
        "its output is kept with the results"
    );
    assert_ne!(second, first.id(), "a new server process was started");
    let c = &r.totals.counts;
    assert_eq!(
        c.drops, 10,
        "every client lost its connection: {:?}",
        r.summary.drops
    );
    assert_eq!(c.reconnects, 10, "and came back");
    assert!(r.summary.connect_errors.get("refused").is_some_and(|n| *n > 0));
    let recovery = &r.summary.recovery[0];
    assert_eq!(recovery.how, "exec");
    let back = recovery.connected_recovered_s.expect("recovered");
    assert!(
        (1.0..3.5).contains(&back),
        "connected back {back:.3} s after the restart began"
    );
    assert_requests_reconcile(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_hanging_and_missing_commands_are_reported_and_the_run_goes_on() {
    let server = server(Behaviour::default()).await;
    let toml = r#"name = "commands"
target = "embedded"
duration = "3s"
[correlation]
request_id = "/id"
[[phases]]
clients = 5
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "50ms"
[[chaos]]
at = "500ms"
exec = "false"
[[chaos]]
at = "500ms"
exec = ["sleep", "30"]
timeout = "500ms"
[[chaos]]
at = "500ms"
exec = "/nonexistent/wsstorm-no-such-program --flag"
[[chaos]]
at = "500ms"
exec = "echo 'hello $HOME' `uname`"
"#;
    let started = Instant::now();
    let (r, _dir) = run(plan(toml, &server.url())).await;
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "a hanging command does not hold the run"
    );
    let by_chaos = |i: u32| r.summary.exec.iter().find(|e| e.chaos == i).unwrap();
    let failed = by_chaos(0);
    assert_eq!((failed.outcome.as_str(), failed.exit_code), ("exited", Some(1)));
    let hung = by_chaos(1);
    assert_eq!(hung.outcome, "timed_out");
    assert_eq!(hung.signal, Some(9), "killed at its limit");
    assert!((0.4..1.5).contains(&hung.duration_s), "{hung:?}");
    let missing = by_chaos(2);
    assert_eq!(missing.outcome, "failed_to_start");
    assert!(
        missing
            .error
            .as_deref()
            .is_some_and(|e| e.contains("No such file")),
        "{missing:?}"
    );
    let echo = by_chaos(3);
    assert_eq!(
        std::fs::read_to_string(r.dir.join(&echo.stdout)).unwrap(),
        "hello $HOME `uname`\n",
        "no shell: nothing is expanded"
    );
    assert_eq!(
        r.outcome(),
        wsstorm::report::summary::Outcome::Passed,
        "the run itself went on"
    );
    assert!(r.totals.counts.answered > 50);
    check_summary_schema(&r);
    let text = r.summary.render_text();
    assert!(text.contains("exec        at 0.500s: false — exited 1"), "{text}");
    assert!(text.contains("timed out (killed)"), "{text}");
}

/// A server whose every word is an attempt at a command: in its upgrade response's headers, in
/// replies that carry the client's id, and in pushes. Each names `marker`.
async fn injecting_server(marker: String) -> std::net::SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let marker = marker.clone();
            tokio::spawn(async move {
                let header = marker.clone();
                // The callback's error type is tungstenite's (an HTTP response).
                #[allow(clippy::result_large_err)]
                let add = move |_: &Request, mut r: Response| {
                    r.headers_mut()
                        .insert("x-run", format!("$(touch {header})").parse().unwrap());
                    Ok(r)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, add).await else {
                    return;
                };
                while let Some(Ok(Message::Text(t))) = ws.next().await {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    let reply = serde_json::json!({
                        "id": v["id"],
                        "cmd": format!("$(touch {marker}); `touch {marker}`; {marker}"),
                    });
                    let push =
                        format!(r#"{{"type":"push","exec":"{marker}","WSSTORM_RESULTS_DIR":"{marker}"}}"#);
                    if ws.send(Message::text(reply.to_string())).await.is_err()
                        || ws.send(Message::text(push)).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_never_receives_what_the_server_sent() {
    let work = tempfile::tempdir().unwrap();
    // Where the server's commands would leave their mark, were any run.
    let marker = work.path().join("server-was-here").display().to_string();
    let addr = injecting_server(marker.clone()).await;
    // The command shows everything it was given: its arguments, environment and input.
    let toml = r#"name = "isolated"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
[[phases]]
clients = 3
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "20ms"
[[chaos]]
at = "1s"
exec = 'printf "%s\n" "$0" "$@"; env; cat'
shell = true
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    assert!(
        c.answered > 20 && c.pushes > 20,
        "the server's words came in: {c:?}"
    );
    let exec = &r.summary.exec[0];
    assert_eq!(exec.outcome, "exited", "{exec:?}");
    let seen = std::fs::read_to_string(r.dir.join(&exec.stdout)).unwrap();
    assert!(
        seen.contains("WSSTORM_RESULTS_DIR="),
        "the command ran and showed its environment: {seen}"
    );
    assert!(
        !seen.contains("server-was-here"),
        "server data reached the command:\n{seen}"
    );
    assert!(!Path::new(&marker).exists(), "a command the server sent was run");
}
