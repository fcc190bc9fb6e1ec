//! Scale on one machine: `run --workers` (worker processes, each a segment, merged into one
//! results directory), `[connect] source_addrs`, and `serve --workers` (processes sharing
//! their ports with SO_REUSEPORT).

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{free_port, server};
use wsstorm::report::Summary;
use wsstorm::scenario::Behaviour;

fn summary(dir: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

const SCENARIO: &str = r#"name = "two thousand"
target = "embedded"
duration = "6s"
[connect]
source_addrs = ["127.0.0.2", "127.0.0.3"]
[correlation]
request_id = "/id"
[[phases]]
clients = 2000
ramp = "1500ms"
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "500ms"
[thresholds]
connect_errors = ["count == 0"]
"#;

/// 2 000 connections from two source addresses in two worker processes against one server:
/// all connect, and the merged counts are the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_from_two_source_addresses_add_up_to_what_the_server_saw() {
    // The server holds 2 000 connections in this process.
    wsstorm::limits::raise_open_files();
    let server = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let out = dir.path().join("run");
    let url = server.url();
    let args = [
        "run",
        file.to_str().unwrap(),
        "--target",
        &url,
        "--workers",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    let o = tokio::task::spawn_blocking(move || crate::support::binary().args(&args).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let peers = server.peers();
    let seen = server.shutdown().await;

    let m = summary(&out);
    assert_eq!(m.peak_clients, 2000);
    assert_eq!(m.counts.connects, 2000, "every client connected");
    assert_eq!(m.counts.connect_errors, 0);
    assert_eq!(seen.connections, m.counts.connects, "the server's count");
    assert_eq!(
        seen.received, m.counts.requests,
        "every request the server received"
    );
    assert_eq!(m.counts.answered + m.counts.unfinished, m.counts.requests);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert_eq!((peers[&ip("127.0.0.2")], peers[&ip("127.0.0.3")]), (1000, 1000));
    for i in 0..2u32 {
        let w = summary(&out.join(format!("workers/worker-{i}")));
        assert_eq!(w.segment.map(|s| (s.index, s.count)), Some((i, 2)));
        assert_eq!(w.peak_clients, 1000);
    }
    assert!(stdout.contains("in 2 worker processes"), "{stdout}");
    assert!(stdout.contains("2 workers merged"), "{stdout}");
    // The progress line (every 5 s when stdout is not a terminal), fed by both workers, shows
    // all 2 000 clients connected.
    assert!(stdout.contains("clients 2000/2000"), "{stdout}");
}

#[test]
fn workers_refuse_a_segment_and_foreign_source_addresses_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let f = file.to_str().unwrap();
    let o = crate::support::wsstorm(&["run", f, "--workers", "2", "--segment", "0/2", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not combine with --segment"));

    let o = crate::support::wsstorm(&["run", f, "--workers", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("from 1 to 1024"));

    // 192.0.2.0/24 is documentation's: no machine's address. Nothing is sent.
    std::fs::write(&file, SCENARIO.replace("\"127.0.0.3\"", "\"192.0.2.7\"")).unwrap();
    let out = dir.path().join("never");
    let o = crate::support::wsstorm(&["run", f, "--quiet", "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("192.0.2.7 is not an address of this machine"),
        "{stderr}"
    );
    assert!(!out.exists(), "no results directory: nothing ran");

    std::fs::write(
        &file,
        SCENARIO.replace("\"127.0.0.3\"", "\"127.0.0.9-127.0.0.3\""),
    )
    .unwrap();
    let o = crate::support::wsstorm(&["validate", f]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr.contains("s.toml:5:") && stderr.contains("ends before it begins"),
        "{stderr}"
    );
}

/// `serve --workers 2` on two ports: both ports answer, from two processes, and the counts it
/// prints at Ctrl-C add both up.
#[test]
fn serve_workers_share_their_ports_and_add_their_counts() {
    let (p1, p2) = (free_port(), free_port());
    let (a1, a2) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    let mut serve = crate::support::binary()
        .args(["serve", "--workers", "2", "--listen", &a1, "--listen", &a2])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("in 2 processes"), "{first}");
    std::thread::sleep(Duration::from_millis(500));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"ports\"\ntarget = \"embedded\"\nduration = \"1s\"\n[correlation]\nrequest_id = \"/id\"\n\
         [[phases]]\nclients = 40\n[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\nexpect = \"response\"\n\
         [[steps]]\nsleep = \"100ms\"\n",
    )
    .unwrap();
    let mut sent = 0;
    for addr in [&a1, &a2] {
        let out = dir.path().join(addr.replace(':', "_"));
        let url = format!("ws://{addr}/");
        let o = crate::support::wsstorm(&[
            "run",
            file.to_str().unwrap(),
            "--target",
            &url,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let s = summary(&out);
        assert_eq!(s.counts.connects, 40);
        sent += s.counts.requests;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(serve.wait().unwrap().success());
    let served = rest
        .iter()
        .find(|l| l.starts_with("served "))
        .expect("the counts");
    assert_eq!(
        served,
        &format!("served 80 connections, {sent} messages received, {sent} answered, 0 withheld")
    );
}

/// Regression (issue 16): the worker command lines were rebuilt by hand and dropped the global
/// flags, so workers logged at the default level whatever `-v` said. Against a target that
/// refuses every upgrade (401), each worker logs the refusal at debug level: with `-v` those
/// lines appear (the parent itself never connects), with `--log-format json` as JSON.
#[test]
fn workers_get_the_global_flags() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = r#"name = "refused"
target = "embedded"
duration = "1s"
[embedded]
require_token = "t0k3n-for-nobody"
[reconnect]
initial = "200ms"
max = "200ms"
[[phases]]
clients = 2
[[steps]]
sleep = "100ms"
"#;
    std::fs::write(dir.path().join("r.toml"), scenario).unwrap();
    let run = |flags: &[&str], out: &str| {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["run", "r.toml", "--workers", "2", "--out", out]);
        let o = crate::support::wsstorm_in(&args, dir.path());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let quiet = run(&[], "a");
    assert!(
        !quiet.contains("upgrade refused"),
        "no debug lines by default: {quiet}"
    );
    let verbose = run(&["-v"], "b");
    assert!(
        verbose.contains("upgrade refused") && verbose.contains("401"),
        "a worker's debug line appears with -v: {verbose}"
    );
    let json = run(&["-v", "--log-format", "json"], "c");
    let line = json
        .lines()
        .find(|l| l.contains("upgrade refused"))
        .unwrap_or_else(|| panic!("a worker's debug line appears as JSON: {json}"));
    let parsed: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(parsed["level"], "DEBUG", "{line}");
}
