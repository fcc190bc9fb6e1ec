//! Results survive the end of the process: SIGTERM writes complete reports; after SIGKILL every
//! CSV is valid up to its last complete row and at most about the last second is missing; an
//! unwritable results directory is refused before anything is sent.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wsstorm::target::{self, Behaviour};

const SCENARIO: &str = r#"name = "durable"
target = "TARGET"
duration = "60s"
[correlation]
request_id = "/id"
[report]
requests = "all"
[[phases]]
clients = 20
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "20ms"
"#;

/// The built-in target on 127.0.0.1:0, in a runtime of its own (kept alive by the caller).
fn builtin_target() -> (tokio::runtime::Runtime, target::Server) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(target::start(
            "127.0.0.1:0".parse().unwrap(),
            Behaviour::default(),
        ))
        .unwrap();
    (rt, server)
}

/// `wsstorm run` of the scenario against `url`, written into `dir`, with results in `out`.
fn run_command(dir: &Path, url: &str, out: &Path) -> Command {
    let scenario = dir.join("durable.toml");
    std::fs::write(&scenario, SCENARIO.replace("TARGET", url)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsstorm"));
    command.args([
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    command
}

fn start(dir: &Path, url: &str) -> (Child, std::path::PathBuf) {
    let out = dir.join("out");
    let child = run_command(dir, url, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, out)
}

/// Waits until timeseries.csv has `rows` data rows.
fn wait_for_rows(out: &Path, rows: usize) {
    let started = Instant::now();
    loop {
        let n = std::fs::read_to_string(out.join("timeseries.csv"))
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if n >= rows {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no rows after 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rows of a CSV up to its last complete line, each checked to have the header's fields.
fn complete_rows(path: &Path) -> Vec<csv::StringRecord> {
    let text = std::fs::read_to_string(path).unwrap();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    csv::Reader::from_reader(complete.as_bytes())
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn column(rows: &[csv::StringRecord], headers: &csv::StringRecord, name: &str) -> Vec<f64> {
    let i = headers.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].parse().unwrap()).collect()
}

fn headers(path: &Path) -> csv::StringRecord {
    csv::Reader::from_path(path).unwrap().headers().unwrap().clone()
}

#[test]
fn after_sigkill_every_csv_is_valid_and_at_most_the_last_second_is_missing() {
    let (_rt, server) = builtin_target();
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, out) = start(tmp.path(), &server.url());
    wait_for_rows(&out, 1);
    // The first row is written one second into the run.
    let run_started = Instant::now() - Duration::from_secs(1);
    std::thread::sleep(Duration::from_millis(2700));
    child.kill().unwrap(); // SIGKILL
    let killed_at = run_started.elapsed().as_secs_f64();
    child.wait().unwrap();

    assert!(
        !out.join("summary.json").exists(),
        "a killed run writes no summary"
    );
    let ts = out.join("timeseries.csv");
    let rows = complete_rows(&ts);
    let elapsed = column(&rows, &headers(&ts), "elapsed_s");
    let last = elapsed.last().copied().unwrap();
    assert!(
        last >= killed_at - 1.5,
        "last second in timeseries.csv {last}, killed at {killed_at:.2}"
    );

    let requests = out.join("requests.csv");
    let rows = complete_rows(&requests);
    let times = column(&rows, &headers(&requests), "time_s");
    let last = times.iter().copied().fold(0.0, f64::max);
    assert!(
        last >= killed_at - 1.5,
        "last request row at {last}, killed at {killed_at:.2}"
    );
    // Every request the server answered up to a second before the kill is there.
    assert!(rows.len() > 20 * 20, "{} request rows", rows.len());

    let connections = out.join("connections.csv");
    let rows = complete_rows(&connections);
    let h = headers(&connections);
    let events = h.iter().position(|x| x == "event").unwrap();
    let connects = rows.iter().filter(|r| &r[events] == "open").count();
    assert_eq!(connects, 20, "every connect is recorded");
}

#[test]
fn sigterm_writes_complete_reports() {
    let (_rt, server) = builtin_target();
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, out) = start(tmp.path(), &server.url());
    wait_for_rows(&out, 2);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "stopped after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "interrupted");
    support::check_schema(&summary);
    let answered = summary["counts"]["answered"].as_u64().unwrap();
    // requests.csv holds one row per request outcome (each request ends one way; a late reply
    // is a row of its own), every one of them.
    let rows = complete_rows(&out.join("requests.csv"));
    let count = |k: &str| summary["counts"][k].as_u64().unwrap();
    assert!(answered > 0);
    assert_eq!(rows.len() as u64, count("requests") + count("late"));
    for file in ["summary.txt", "report.html", "junit.xml", "connections.csv"] {
        assert!(out.join(file).exists(), "{file}");
    }
    assert_eq!(
        server.counts().received,
        summary["counts"]["requests"].as_u64().unwrap()
    );
}

#[test]
fn an_unwritable_results_directory_is_refused_before_anything_is_sent() {
    let (_rt, server) = builtin_target();
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where the directory should go: no one, not even root, can create it.
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let out = tmp.path().join("file/out");
    let o = run_command(tmp.path(), &server.url(), &out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("file/out"), "names the directory: {err}");
    assert_eq!(server.counts().connections, 0, "nothing was sent");
}
