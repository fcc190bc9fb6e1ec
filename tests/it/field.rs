//! The field findings of issue 19: what a new user hit trying wsstorm against hostile and
//! ordinary servers, with broken pipes, signals, reused directories. One regression test per
//! finding, named `field_NN_…` after its number (the ones that live beside the code they
//! guard: 2 report/compare.rs, 3 swarm/pending.rs, 4 scenario/template.rs, 5 hostile.rs,
//! 13 secrets.rs, 14 scenario/set.rs, 27 and 28 metrics/recovery.rs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use wsstorm::report::summary::Outcome;
use wsstorm::scenario::Behaviour;

use crate::support::{
    assert_requests_reconcile, binary, plan, run, server, silent_server, text, wait_within, wsstorm_in,
};

fn summary_in(dir: &Path) -> wsstorm::report::Summary {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}/summary.json: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// A small closed loop against `url` for `duration`.
fn scenario(url: &str, duration: &str) -> String {
    format!(
        r#"name = "field"
target = "{url}"
duration = "{duration}"
[correlation]
request_id = "/id"
timeout = "1s"
[[phases]]
clients = 2
[[steps]]
send = '{{"id":"{{{{id}}}}"}}'
expect = "response"
[[steps]]
sleep = "20ms"
"#
    )
}

/// 1: `rtt = ["p(99) < 100ms", "avg < 50ms", "max < 200ms"]` passed with "measured 0.000ms"
/// against a server that never answers, and junit.xml passed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_01_a_threshold_on_no_data_fails() {
    let silent = silent_server().await;
    let toml = scenario(&silent.url(), "2s")
        + "[thresholds]\nrtt = [\"p(99) < 100ms\", \"avg < 50ms\", \"max < 200ms\"]\ntimeout_rate = [\"< 100%\"]\n";
    let (r, _dir) = run(plan(&toml, &silent.url())).await;
    assert_eq!(r.outcome(), Outcome::ThresholdsCrossed);
    assert_eq!(r.totals.counts.answered, 0);
    let rtt: Vec<_> = r
        .summary
        .thresholds
        .iter()
        .filter(|t| t.metric == "rtt")
        .collect();
    assert_eq!(rtt.len(), 3);
    for t in rtt {
        assert!(!t.passed && t.value.is_none(), "{t:?}");
        assert!(t.shown.starts_with("no data"), "{t:?}");
    }
    // A rate over requests that all timed out is data: 100 % is not < 100 %.
    let rate = r
        .summary
        .thresholds
        .iter()
        .find(|t| t.metric == "timeout_rate")
        .unwrap();
    assert_eq!((rate.value, rate.passed), (Some(1.0), false));
    let junit = std::fs::read_to_string(r.dir.join("junit.xml")).unwrap();
    assert!(junit.contains("no data: nothing was measured"), "{junit}");
    let txt = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(
        txt.contains("FAIL  rtt p(99) < 100ms") && txt.contains("no data"),
        "{txt}"
    );
}

/// 3: with a request every 2 ms and replies 1.3 s after a 1 s timeout, 1 204 late replies were
/// counted as unmatched (only the last 64 resolved ids were remembered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_03_late_replies_at_any_rate_are_late() {
    let slow = server(Behaviour {
        latency: Duration::from_millis(1300),
        ..Behaviour::default()
    })
    .await;
    let toml = r#"name = "late"
target = "embedded"
duration = "3s"
[correlation]
request_id = "/id"
timeout = "1s"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
sleep = "2ms"
"#;
    let (r, _dir) = run(plan(toml, &slow.url())).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.requests > 500 && c.late > 300, "{c:?}");
    assert_eq!((c.answered, c.unmatched, c.duplicate), (0, 0, 0), "{c:?}");
    assert_eq!(c.late, c.messages_received, "every reply is a late one: {c:?}");
    assert!(c.late <= c.timeouts);
}

/// 5: `kill -9` of the server mid-run was counted as protocol_error drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_05_a_killed_server_is_no_protocol_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = binary()
        .args(["serve", "--listen", &listen])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(serve.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = format!("ws://{listen}/");
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        signal(&serve, Signal::SIGKILL);
        serve.wait().unwrap();
    });
    let toml = scenario(&url, "3s") + "[reconnect]\nmax_attempts = 2\ninitial = \"200ms\"\n";
    let (r, _dir) = run(plan(&toml, &url)).await;
    killer.await.unwrap();
    let drops = &r.summary.drops;
    assert!(r.totals.counts.drops >= 2, "{drops:?}");
    assert!(!drops.contains_key("protocol_error"), "{drops:?}");
    assert!(
        drops.keys().all(|k| k == "close_1006" || k == "reset"),
        "a crash is a close without a close frame (or a reset): {drops:?}"
    );
}

/// 6: `wsstorm run … | head -1` panicked at the next line and wrote no summary; so did a full
/// stdout, and `serve`/`proxy --stats-every 1s | head -1`.
#[test]
fn field_06_a_closed_or_full_stdout_never_ends_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "name = \"pipe\"\ntarget = \"embedded\"\nduration = \"2s\"\n[correlation]\nrequest_id = \"/id\"\n[[phases]]\nclients = 2\n[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\nexpect = \"response\"\n[[steps]]\nsleep = \"10ms\"\n";
    std::fs::write(dir.path().join("p.toml"), scenario).unwrap();
    // `| head -1`: one line read, then the pipe closed.
    let mut child = binary()
        .args(["run", "p.toml", "--out", "closed"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary_in(&dir.path().join("closed")).outcome, Outcome::Passed);
    // A full stdout.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = binary()
        .args(["run", "p.toml", "--out", "full"])
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("full/report.html").exists());
    // The server and the proxy with their stats lines going nowhere.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = format!("127.0.0.1:{port}");
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0", "--stats-every", "1s"],
        vec![
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--stats-every",
            "1s",
        ],
    ] {
        let mut child = binary().args(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} died with its stdout"
        );
        signal(&child, Signal::SIGINT);
        let status = wait_within(&mut child, Duration::from_secs(10), "after Ctrl-C");
        assert_eq!(status.code(), Some(0), "{args:?}");
    }
}

/// 7: two runs started in the same second shared `results/<name>-<second>`: one run's results
/// were lost and the CSV files interleaved half-lines.
#[test]
fn field_07_runs_started_together_get_a_directory_each() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "name = \"twins\"\ntarget = \"embedded\"\nduration = \"1s\"\n[[phases]]\nclients = 3\n[[steps]]\nsleep = \"100ms\"\n";
    std::fs::write(dir.path().join("t.toml"), scenario).unwrap();
    let start = || {
        binary()
            .args(["run", "t.toml", "--quiet"])
            .current_dir(dir.path())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (start(), start());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let dirs: Vec<_> = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in dirs {
        let s = summary_in(&d);
        assert_eq!(s.counts.connects, 3, "{}", d.display());
        let rows = crate::support::rows_in(&d);
        assert_eq!(
            rows.iter().filter(|r| r.event == "open").count(),
            3,
            "{}",
            d.display()
        );
    }
}

/// 8: a second run into the same `--out` left the first run's requests.csv beside its own
/// summary. Now a directory that is not empty is refused (nothing sent), or emptied first with
/// `--force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_08_a_used_out_directory_is_refused_or_emptied() {
    let target = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::write(root.join("s.toml"), scenario(&target.url(), "1s")).unwrap();
    let run = |extra: &'static [&'static str]| {
        let path = root.clone();
        let mut args = vec!["run", "s.toml", "--out", "out", "--quiet"];
        args.extend(extra);
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        async move {
            tokio::task::spawn_blocking(move || wsstorm_in(&args, &path))
                .await
                .unwrap()
        }
    };
    let first = run(&["--requests", "all"]).await;
    assert!(first.status.success(), "{}", text(&first));
    let connections = target.counts().connections;
    let refused = run(&[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("not empty") && text(&refused).contains("--force"));
    assert_eq!(target.counts().connections, connections, "nothing was sent");
    assert!(root.join("out/requests.csv").exists());
    let forced = run(&["--force"]).await;
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        !root.join("out/requests.csv").exists(),
        "the first run's files are gone"
    );
    assert!(root.join("out/summary.json").exists());
}

/// 9: SIGHUP ended a run with exit 129, two CSV files and no summary.
#[test]
fn field_09_sighup_is_an_interrupt_that_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        "name = \"hup\"\ntarget = \"embedded\"\nduration = \"60s\"\n[[phases]]\nclients = 2\n[[steps]]\nsleep = \"100ms\"\n",
    )
    .unwrap();
    let mut child = binary()
        .args(["run", "h.toml", "--out", "out", "--quiet"])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, Signal::SIGHUP);
    let status = wait_within(&mut child, Duration::from_secs(15), "after SIGHUP");
    assert_eq!(status.code(), Some(130));
    let out = dir.path().join("out");
    assert_eq!(summary_in(&out).outcome, Outcome::Interrupted);
    for file in [
        "summary.txt",
        "junit.xml",
        "report.html",
        "timeseries.csv",
        "connections.csv",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        for c in std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
        {
            out.push(c.parse().unwrap());
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // A zombie reaped by init is gone; one not yet reaped shows state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
}

/// 10: `run --workers 2` whose parent was SIGKILLed left both workers loading the target until
/// their duration ended; `serve --workers` children kept the port; a child that could not bind
/// made the parent wait for Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_10_workers_end_with_their_parent() {
    let target = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), scenario(&target.url(), "60s")).unwrap();
    let mut parent = binary()
        .args(["run", "w.toml", "--workers", "2", "--out", "out", "--quiet"])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while target.counts().open < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the workers never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let workers = children(parent.id());
    assert_eq!(workers.len(), 2, "{workers:?}");
    signal(&parent, Signal::SIGKILL);
    parent.wait().unwrap();
    let killed = Instant::now();
    while workers.iter().any(|w| alive(*w)) {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "workers outlived their parent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // serve --workers on a port held by a socket without SO_REUSEPORT: the parent ends at once.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    let mut serve = binary()
        .args(["serve", "--workers", "2", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_within(
        &mut serve,
        Duration::from_secs(10),
        "serve --workers on a taken port",
    );
    assert_eq!(status.code(), Some(1));
}

/// 11: Ctrl-C during the `--start-at` wait exited 130, but every client connected and sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_11_an_interrupted_wait_for_the_start_sends_nothing() {
    let target = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), scenario(&target.url(), "2s")).unwrap();
    for workers in [None, Some("2")] {
        let mut args = vec!["run", "s.toml", "--start-at", "+30s", "--quiet", "--out"];
        let out = format!("out-{}", workers.unwrap_or("1"));
        args.push(&out);
        if let Some(n) = workers {
            args.extend(["--workers", n]);
        }
        let mut child = binary().args(&args).current_dir(dir.path()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        signal(&child, Signal::SIGINT);
        let status = wait_within(&mut child, Duration::from_secs(10), "an interrupted wait");
        assert_eq!(status.code(), Some(130), "{workers:?}");
    }
    assert_eq!(
        target.counts().connections,
        0,
        "nothing may be sent after the stop"
    );
}

/// 12: `--start-at 2020-01-01T00:00:00Z` skipped the timeline, sent a few requests, reported
/// "run 218380443.0s of 2s planned" and passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_12_a_start_long_past_is_refused() {
    let target = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), scenario(&target.url(), "2s")).unwrap();
    let path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        wsstorm_in(&["run", "s.toml", "--start-at", "2020-01-01T00:00:00Z"], &path)
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--start-at 2020-01-01") && text(&o).contains("nothing was sent"));
    assert_eq!(target.counts().connections, 0);
}

/// 17, 18, 19, 23: inputs that exhausted memory or descriptors, or failed only at run time.
#[test]
fn field_17_18_19_23_bad_inputs_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let code = |args: &[&str]| {
        let o = wsstorm_in(args, cwd);
        (o.status.code(), text(&o))
    };
    // 17: 4 billion segments (merge then listed every missing one, out of memory).
    let (c, out) = code(&["validate", "x.toml", "--segment", "0/4294967295"]);
    assert_eq!(c, Some(2), "{out}");
    assert!(out.contains("10000"), "{out}");
    // 18: a scenario file without end.
    let started = Instant::now();
    let (c, out) = code(&["validate", "/dev/zero"]);
    assert_eq!(c, Some(2), "{out}");
    assert!(out.contains("larger than 10.0 MiB"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // 19: a proxy whose upstream is itself, or nothing.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let own = format!("127.0.0.1:{port}");
    for upstream in [own.as_str(), "nohost", "127.0.0.1:99999", "nohost.invalid:80"] {
        let (c, out) = code(&["proxy", "--listen", &own, "--upstream", upstream]);
        assert_eq!(c, Some(2), "--upstream {upstream}: {out}");
    }
    // 23: no client at all; phases of 20 years.
    let base = "target = \"embedded\"\n[[steps]]\nsleep = \"100ms\"\n";
    std::fs::write(
        cwd.join("zero.toml"),
        format!("name = \"z\"\n{base}[[phases]]\nclients = 0\nhold = \"1s\"\n"),
    )
    .unwrap();
    let (c, out) = code(&["validate", "zero.toml"]);
    assert_eq!(c, Some(2), "{out}");
    assert!(out.contains("no phase has a client"), "{out}");
    std::fs::write(
        cwd.join("long.toml"),
        format!("name = \"l\"\n{base}[[phases]]\nclients = 1\nhold = \"3650d\"\n[[phases]]\nclients = 2\nhold = \"3650d\"\n"),
    )
    .unwrap();
    let (c, out) = code(&["validate", "long.toml"]);
    assert_eq!(c, Some(2), "{out}");
    assert!(out.contains("more than 10 years"), "{out}");
    // 23: a 300-character name validated, then failed at run time ("File name too long").
    let name = "n".repeat(300);
    std::fs::write(
        cwd.join("name.toml"),
        format!("name = \"{name}\"\nduration = \"1s\"\n{base}[[phases]]\nclients = 1\n"),
    )
    .unwrap();
    let (c, out) = code(&["run", "name.toml", "--quiet"]);
    assert_eq!(c, Some(0), "{out}");
}

/// 29: requests kept for replay when a normal run ended showed as "unfinished" though the README
/// said unfinished meant "stopped at once". Now the summary says which end-of-run case each is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_29_requests_waiting_for_replay_at_the_end_are_said_to_be() {
    let toml = r#"name = "replay-end"
target = "embedded"
duration = "3s"
[embedded]
latency = "300ms"
close_at = ["2500ms"]
refuse_for = "5s"
[reconnect]
initial = "100ms"
max = "200ms"
replay_in_flight = true
[correlation]
request_id = "/id"
timeout = "2s"
[[phases]]
clients = 4
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
sleep = "50ms"
"#;
    let (r, _dir) = run(plan(toml, "embedded")).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.unfinished_replay > 0, "{c:?}");
    assert_eq!(c.unfinished, c.unfinished_replay, "no stop at once: {c:?}");
    assert_eq!(c.lost, 0, "kept for replay is not lost: {c:?}");
    let txt = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(
        txt.contains("waiting to be resent after a drop when the run ended"),
        "{txt}"
    );
}

/// 22: `merge` with a shard lacking connections.csv said "No such file or directory (os error
/// 2)" without the path and left a half-written output; a failing report.html write said
/// "cannot write the summary" and left report.tmp; `report` on a killed run's directory (no
/// summary.json) said nothing useful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_22_merge_and_report_errors_name_the_file_and_leave_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::write(
        d.join("s.toml"),
        "name = \"m\"\ntarget = \"embedded\"\nduration = \"1s\"\n[[phases]]\nclients = 2\n[[steps]]\nsleep = \"100ms\"\n",
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let d = d.clone();
        async move {
            tokio::task::spawn_blocking(move || wsstorm_in(&args, &d))
                .await
                .unwrap()
        }
    };
    let args = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    for i in 0..2 {
        let seg = format!("{i}/2");
        let out = format!("s{i}");
        assert!(
            run(args(&[
                "run",
                "s.toml",
                "--segment",
                &seg,
                "--out",
                &out,
                "--quiet"
            ]))
            .await
            .status
            .success()
        );
    }
    std::fs::remove_file(d.join("s1/connections.csv")).unwrap();
    let o = run(args(&["merge", "s0", "s1", "--out", "merged"])).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("s1/connections.csv"),
        "names the file: {}",
        text(&o)
    );
    let left: Vec<_> = std::fs::read_dir(d.join("merged"))
        .map(|r| r.count())
        .into_iter()
        .collect();
    assert!(left.is_empty() || left == [0], "nothing half-written: {left:?}");

    // A report.html that cannot be written: the error names it, no report.tmp stays.
    std::fs::remove_file(d.join("s0/report.html")).unwrap();
    std::fs::create_dir_all(d.join("s0/report.html/taken")).unwrap();
    let o = run(args(&["report", "s0"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("s0/report.html"), "{}", text(&o));
    assert!(!d.join("s0/report.tmp").exists());

    // A killed run's directory: what is missing is said, the charts are drawn from the CSVs.
    std::fs::remove_file(d.join("s1/summary.json")).unwrap();
    std::fs::remove_file(d.join("s1/report.html")).unwrap();
    let o = run(args(&["report", "s1"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no summary.json"), "{}", text(&o));
    let page = std::fs::read_to_string(d.join("s1/report.html")).unwrap();
    assert!(
        page.contains("id=\"partial\"") && page.contains("<svg class=\"chart\""),
        "{page}"
    );
}

/// 21: "connect errors handshake 5" came without a reason, even at -vv (a 101 without
/// `Upgrade`); "most common error: tls" without saying which check failed. The first reason of
/// each cause is now in summary.json and under the counts, at the default level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_21_connect_errors_say_why_at_the_default_level() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that answers every upgrade with 101 but no `Upgrade` header and no accept key.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        format!(
            "name = \"why\"\ntarget = \"ws://{addr}/\"\nduration = \"1s\"\n[reconnect]\nmax_attempts = 2\ninitial = \"50ms\"\n[[phases]]\nclients = 2\n[[steps]]\nsleep = \"100ms\"\n"
        ),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || wsstorm_in(&["run", "h.toml", "--out", "out"], &path))
        .await
        .unwrap();
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(1), "no client could connect: {shown}");
    let summary = summary_in(&dir.path().join("out"));
    let why = &summary.connect_error_reasons["handshake"];
    assert!(why.to_lowercase().contains("upgrade"), "{why}");
    assert!(
        shown.contains(&format!("most common error: handshake: {why}")),
        "{shown}"
    );
    let txt = std::fs::read_to_string(dir.path().join("out/summary.txt")).unwrap();
    assert!(txt.contains(why.as_str()), "{txt}");
}

/// 23: connections.csv had float noise (`0.9319999999999999`); now whole microseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_23_connection_durations_are_whole_microseconds() {
    let target = server(Behaviour {
        close_every: Some(Duration::from_millis(300)),
        ..Behaviour::default()
    })
    .await;
    let toml = "name = \"us\"\ntarget = \"embedded\"\nduration = \"2s\"\n[reconnect]\ninitial = \"10ms\"\n[[phases]]\nclients = 5\n[[steps]]\nsleep = \"50ms\"\n";
    let (r, _dir) = run(plan(toml, &target.url())).await;
    target.shutdown().await;
    let file = std::fs::read_to_string(r.dir.join("connections.csv")).unwrap();
    let mut durations = 0;
    for line in file.lines().skip(1) {
        let duration = line.split(',').nth(4).unwrap();
        if let Some((_, decimals)) = duration.split_once('.') {
            assert!(decimals.len() <= 3, "{duration} ms in {line}");
        }
        durations += usize::from(!duration.is_empty());
    }
    assert!(durations > 10, "{file}");
}

/// 23: Ctrl-C with `--workers` printed "warning: worker N exited with exit status: 130" for
/// every worker, though each did what it was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_23_ctrl_c_with_workers_warns_of_nothing() {
    use std::os::unix::process::CommandExt;
    let target = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), scenario(&target.url(), "60s")).unwrap();
    // Its own process group, as a shell's job: Ctrl-C reaches the parent and its workers.
    let mut parent = binary()
        .args(["run", "w.toml", "--workers", "2", "--out", "out", "--quiet"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while target.counts().open < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the workers never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(Pid::from_raw(-(parent.id() as i32)), Signal::SIGINT).unwrap();
    let status = wait_within(&mut parent, Duration::from_secs(20), "Ctrl-C with workers");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut parent.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("exited with"), "{stderr}");
    assert_eq!(summary_in(&dir.path().join("out")).outcome, Outcome::Interrupted);
}

/// 26: netns.rs and durability.rs passed without testing when a tool was missing. A test that
/// cannot run prints SKIPPED, and fails instead when `CI` is set. Shown on the browser test,
/// run by this same test binary with no Chromium on its PATH.
#[test]
fn field_26_a_test_that_cannot_run_fails_under_ci() {
    let empty = tempfile::tempdir().unwrap();
    let test = "reports::the_html_report_renders_in_a_real_browser_with_charts_and_chaos_markers";
    let child = |ci: bool| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([test, "--exact", "--nocapture"])
            .env("PATH", empty.path())
            .env_remove("CI");
        if ci {
            c.env("CI", "true");
        }
        c.output().unwrap()
    };
    let o = child(false);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("SKIPPED"), "{}", text(&o));
    let o = child(true);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("under CI every test must run"), "{}", text(&o));
}
