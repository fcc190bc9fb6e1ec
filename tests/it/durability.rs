//! Results survive the end of the process: SIGTERM writes complete reports; after SIGKILL every
//! CSV is valid up to its last complete row and at most about the last second is missing; an
//! unwritable results directory or a full disk is refused before anything is sent, and a disk
//! that fills (or a file size limit reached) during the run stops it with that error.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wsstorm::scenario::Behaviour;
use wsstorm::server;

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
fn builtin_target() -> (tokio::runtime::Runtime, server::Server) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(server::start(
            "127.0.0.1:0".parse().unwrap(),
            Behaviour::default(),
        ))
        .unwrap();
    (rt, server)
}

/// `wsstorm run` of the scenario against `url`, written into `dir`, with results in `out`.
fn run_command(dir: &Path, url: &str, out: &Path) -> Command {
    run_scenario(SCENARIO, dir, url, out)
}

/// `wsstorm run` of `scenario` (its target `TARGET`) against `url`, with results in `out`.
fn run_scenario(scenario: &str, dir: &Path, url: &str, out: &Path) -> Command {
    let file = dir.join("durable.toml");
    std::fs::write(&file, scenario.replace("TARGET", url)).unwrap();
    let scenario = file;
    let mut command = crate::support::binary();
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
    let status = crate::support::wait_within(&mut child, Duration::from_secs(15), "after SIGTERM");
    assert!(!status.success(), "{status:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "interrupted");
    crate::support::check_schema(&summary);
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

/// A fast loop: requests.csv grows by some hundred KiB a second.
fn busy() -> String {
    SCENARIO
        .replace("clients = 20", "clients = 50")
        .replace("sleep = \"20ms\"", "sleep = \"1ms\"")
}

/// Runs `command` with its results on a disk of `size_kib` KiB of which `fill_kib` are taken:
/// a tmpfs mounted in a mount namespace of the child's own (`unshare --user --map-root-user
/// --mount`, so no root is needed where user namespaces are allowed, and nothing stays
/// mounted), on `tmp/disk`. What the run left there is copied to the returned directory before
/// the namespace goes. None, said on stderr, where this machine permits no such mount.
fn on_small_disk(tmp: &Path, command: Command, size_kib: u64, fill_kib: u64) -> Option<(Output, PathBuf)> {
    let disk = tmp.join("disk");
    let saved = tmp.join("saved");
    std::fs::create_dir_all(&disk).unwrap();
    // Where user namespaces or the mount are refused (unshare then fails on its own), skip.
    let probe = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "mount",
            "-t",
            "tmpfs",
            "tmpfs",
        ])
        .arg(&disk)
        .output();
    match probe {
        Ok(p) if p.status.success() => {}
        Ok(p) => {
            let why = format!(
                "cannot mount a tmpfs in a user namespace here: {}",
                String::from_utf8_lossy(&p.stderr).trim()
            );
            crate::support::skip("a test on a small disk", &why);
            return None;
        }
        Err(e) => {
            crate::support::skip("a test on a small disk", &format!("cannot run unshare: {e}"));
            return None;
        }
    }
    let script = r#"mount -t tmpfs -o size="$1"k tmpfs "$2" || exit 99
[ "$3" = 0 ] || dd if=/dev/zero of="$2/fill" bs=1024 count="$3" status=none || exit 98
disk=$2 saved=$4
shift 4
"$@"
rc=$?
cp -r "$disk/out" "$saved" 2>/dev/null
exit $rc"#;
    let mut args: Vec<std::ffi::OsString> = vec![
        "--user".into(),
        "--map-root-user".into(),
        "--mount".into(),
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        size_kib.to_string().into(),
        disk.clone().into(),
        fill_kib.to_string().into(),
        saved.clone().into(),
        command.get_program().into(),
    ];
    args.extend(command.get_args().map(Into::into));
    let o = Command::new("unshare").args(args).output().unwrap();
    assert!(
        !matches!(o.status.code(), Some(98 | 99)),
        "the probe mounted, the run's own mount or fill failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some((o, saved))
}

#[test]
fn a_full_disk_is_refused_before_anything_is_sent() {
    let (_rt, server) = builtin_target();
    let tmp = tempfile::tempdir().unwrap();
    let command = run_command(tmp.path(), &server.url(), &tmp.path().join("disk/out"));
    // 2 MiB with 1.8 MiB taken: less than the 1 MiB the reports need.
    let Some((o, _)) = on_small_disk(tmp.path(), command, 2048, 1848) else {
        return;
    };
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("disk/out") && err.contains("free") && err.contains("nothing was sent"),
        "names the directory and says why: {err}"
    );
    assert_eq!(server.counts().connections, 0, "nothing was sent");
}

/// What a run stopped by a write error must show: exit 1 well before its 60 s, the error
/// naming requests.csv on stderr, and its complete rows valid.
fn assert_stopped_by_write_error(o: &Output, took: Duration, out: &Path, error: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("requests.csv") && err.contains(error) && err.contains("the run was stopped"),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(40),
        "stopped early, after {took:?}: {err}"
    );
    let rows = complete_rows(&out.join("requests.csv"));
    assert!(rows.len() > 1000, "{} rows", rows.len());
    complete_rows(&out.join("timeseries.csv"));
    complete_rows(&out.join("connections.csv"));
}

#[test]
fn a_disk_that_fills_during_the_run_stops_it_with_the_error() {
    let (_rt, server) = builtin_target();
    let tmp = tempfile::tempdir().unwrap();
    let command = run_scenario(&busy(), tmp.path(), &server.url(), &tmp.path().join("disk/out"));
    let started = Instant::now();
    // 1.5 MiB free: enough to start, filled by requests.csv within seconds.
    let Some((o, saved)) = on_small_disk(tmp.path(), command, 1536, 0) else {
        return;
    };
    assert_stopped_by_write_error(&o, started.elapsed(), &saved, "No space left on device");
    assert!(server.counts().connections > 0);
}

#[test]
fn a_file_size_limit_reached_during_the_run_stops_it_with_the_error() {
    use std::os::unix::process::CommandExt;
    let (_rt, server) = builtin_target();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut command = run_scenario(&busy(), tmp.path(), &server.url(), &out);
    // SAFETY: only setrlimit between fork and exec. wsstorm ignores SIGXFSZ itself, so the
    // write fails with EFBIG instead of the signal killing the process.
    unsafe {
        command.pre_exec(|| rlimit::setrlimit(rlimit::Resource::FSIZE, 256 << 10, 256 << 10));
    }
    let started = Instant::now();
    let o = command.output().unwrap();
    assert_stopped_by_write_error(&o, started.elapsed(), &out, "File too large");
    // The summary still went out (it is far below the limit), saying what happened.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "run_failed");
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("requests.csv"), "{warnings}");
    crate::support::check_schema(&summary);
}
