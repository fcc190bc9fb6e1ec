//! The real binary, as users run it: exit codes, error messages that point into the file,
//! the quick start's reports and their schema.

use std::process::Command;

use crate::support::{check_schema, repo, text, wsstorm_in};
use wsstorm::scenario::Behaviour;
use wsstorm::server;

#[test]
fn quickstart_runs_and_writes_reports_that_match_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("qs");
    let o = wsstorm_in(
        &[
            "run",
            repo().join("scenarios/quickstart.toml").to_str().unwrap(),
            "--duration",
            "3s",
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in ["timeseries.csv", "summary.json", "summary.txt"] {
        assert!(out.join(f).exists(), "{f} written");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    check_schema(&summary);
    let c = &summary["counts"];
    assert!(c["requests"].as_u64().unwrap() > 0);
    assert_eq!(
        summary["embedded_server"]["received"], c["messages_sent"],
        "server saw what the tool sent"
    );
    assert_eq!(summary["outcome"], "passed");
    // One CSV row per second (3 s, plus the closing partial second of the drain).
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let rows = csv.lines().count() - 1;
    assert!((3..=5).contains(&rows), "{rows} rows:\n{csv}");
    let txt = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    assert!(txt.contains("result      passed"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("result      passed"),
        "summary printed"
    );
}

#[test]
fn every_summary_shape_matches_the_schema() {
    // A run that fails to connect has empty histograms and connect errors.
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scenario = tmp.path().join("s.toml");
    std::fs::write(
        &scenario,
        format!("name = \"down\"\ntarget = \"ws://127.0.0.1:{port}/\"\nduration = \"1500ms\"\n[[phases]]\nclients = 2\n[thresholds]\nrtt = [\"p(99) < 1s\"]\n"),
    )
    .unwrap();
    let out = tmp.path().join("o");
    let o = wsstorm_in(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "unreachable target is a failed run: {}",
        text(&o)
    );
    assert!(o.stdout.is_empty(), "--quiet prints nothing");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    check_schema(&summary);
    assert_eq!(summary["outcome"], "run_failed");
    assert!(summary["connect_errors"]["refused"].as_u64().unwrap() >= 2);
}

#[test]
fn crossed_thresholds_exit_with_their_own_code() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.toml");
    std::fs::write(
        &scenario,
        r#"
name = "gate"
target = "embedded"
duration = "1s"
[embedded]
latency = "10ms"
[correlation]
request_id = "/id"
[[phases]]
clients = 2
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[thresholds]
rtt = ["p(50) < 5ms"]
timeouts = ["count == 0"]
"#,
    )
    .unwrap();
    let out = tmp.path().join("o");
    let o = wsstorm_in(
        &["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("FAIL  rtt p(50) < 5ms"), "{s}");
    assert!(s.contains("pass  timeouts count == 0"), "{s}");
}

#[test]
fn validate_prints_the_resolved_plan_without_connecting() {
    let o = wsstorm_in(
        &["validate", "scenarios/quickstart.toml", "--duration", "42s"],
        &repo(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("duration   42s"), "{s}");
    assert!(s.contains("0 -> 50 clients over 5s"), "{s}");
    assert!(s.contains("valid: nothing was sent"));
}

/// Each invalid scenario: the expected line:column and a phrase of the message.
const INVALID: &[(&str, &str, &str)] = &[
    (
        "unknown key",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\"\nclinets = 3\n[[phases]]\nclients = 1\n",
        "4:1",
    ),
    (
        "bad duration",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"5 parsecs\"\n[[phases]]\nclients = 1\n",
        "3:12",
    ),
    (
        "bad URL",
        "name = \"x\"\ntarget = \"http://TARGET_HOST/\"\nduration = \"1s\"\n[[phases]]\nclients = 1\n",
        "2:10",
    ),
    (
        "bad JSON pointer",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\"\n[correlation]\nrequest_id = \"request_id\"\n[[phases]]\nclients = 1\n",
        "5:14",
    ),
    (
        "unknown template variable",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\"\n[correlation]\nrequest_id = \"/id\"\n[[phases]]\nclients = 1\n[[steps]]\nsend = '{\"id\":\"{{id}}\",\"u\":\"{{user}}\"}'\nexpect = \"response\"\n",
        "9:29",
    ),
    (
        "bad threshold",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\"\n[[phases]]\nclients = 1\n[thresholds]\nrtt = [\"p99 < 1s\"]\n",
        "7:8",
    ),
    (
        "wrong type",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\"\n[[phases]]\nclients = \"many\"\n",
        "5:11",
    ),
    (
        "expect without an id in the message",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\"\n[correlation]\nrequest_id = \"/id\"\n[[phases]]\nclients = 1\n[[steps]]\nsend = 'ping'\nexpect = \"response\"\n",
        "9:8",
    ),
    (
        "TOML syntax",
        "name = \"x\"\ntarget = \"TARGET\"\nduration = \"1s\n",
        "3:15",
    ),
];

#[test]
fn invalid_scenarios_exit_2_point_at_line_and_column_and_send_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(server::start(
            "127.0.0.1:0".parse().unwrap(),
            Behaviour::default(),
        ))
        .unwrap();
    let url = server.url();
    let host = url.trim_start_matches("ws://").trim_end_matches('/').to_string();
    let tmp = tempfile::tempdir().unwrap();
    for (kind, body, at) in INVALID {
        let path = tmp.path().join("bad.toml");
        std::fs::write(&path, body.replace("TARGET_HOST", &host).replace("TARGET", &url)).unwrap();
        for command in ["run", "validate"] {
            let o = wsstorm_in(&[command, path.to_str().unwrap()], tmp.path());
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{kind} ({command}): exit code for invalid input\n{err}"
            );
            assert!(
                err.contains(&format!("bad.toml:{at}:")),
                "{kind}: names line:column {at}\n{err}"
            );
            assert!(err.contains("expected"), "{kind}: says what was expected\n{err}");
        }
    }
    assert!(
        !tmp.path().join("results").exists(),
        "no results directory for an invalid scenario"
    );
    assert_eq!(server.counts().connections, 0, "the target saw no connection");
    assert_eq!(server.counts().received, 0);
}

#[test]
fn ctrl_c_writes_every_report_and_exits_with_the_interrupted_code() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let mut child = crate::support::binary()
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--duration",
            "60s",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(repo())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = crate::support::wait_within(&mut child, std::time::Duration::from_secs(15), "after Ctrl-C");
    assert_eq!(status.code(), Some(130));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "interrupted");
    assert_eq!(
        summary["counts"]["unfinished"], 0,
        "in-flight replies were waited for"
    );
    check_schema(&summary);
    assert!(
        std::fs::read_to_string(out.join("timeseries.csv"))
            .unwrap()
            .lines()
            .count()
            >= 3
    );
    assert!(out.join("summary.txt").exists());
}

/// `wsstorm proxy` on its own, in front of a server, with a fault from its flags: another
/// run through it sees the latency, and Ctrl-C ends it with its counts.
#[test]
fn the_standalone_proxy_adds_its_faults_in_front_of_any_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(server::start(
            "127.0.0.1:0".parse().unwrap(),
            Behaviour::default(),
        ))
        .unwrap();
    let upstream = server
        .url()
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut proxy = crate::support::binary()
        .args([
            "proxy",
            "--listen",
            &listen,
            "--upstream",
            &upstream,
            "--latency",
            "30ms",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "the proxy never listened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"via\"\ntarget = \"ws://{listen}/\"\nduration = \"1s\"\n[correlation]\nrequest_id = \"/id\"\n\
             [[phases]]\nclients = 2\n[[steps]]\nsend = '{{\"id\":\"{{{{id}}}}\"}}'\nexpect = \"response\"\n\
             [thresholds]\nrtt = [\"min >= 30ms\"]\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("o");
    let o = wsstorm_in(
        &["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "every rtt carries the proxy's 30 ms: {}",
        text(&o)
    );
    Command::new("kill")
        .args(["-INT", &proxy.id().to_string()])
        .status()
        .unwrap();
    let status = proxy.wait().unwrap();
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut proxy.stdout.take().unwrap(), &mut printed).unwrap();
    assert!(status.success(), "{printed}");
    assert!(printed.contains("(latency 30ms downstream)"), "{printed}");
    // The two clients, and the probe that waited for the proxy to listen.
    assert!(printed.contains("proxied 3 connections"), "{printed}");
    let seen = runtime.block_on(server.shutdown());
    assert_eq!(seen.connections, 2);
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = wsstorm_in(&["completions", shell], tmp.path());
        assert!(o.status.success(), "{shell}: {}", text(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        for sub in ["run", "validate", "serve", "proxy", "report", "compare"] {
            assert!(script.contains(sub), "{shell} completion knows `{sub}`");
        }
    }
    let o = wsstorm_in(&["man"], tmp.path());
    assert!(o.status.success());
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.contains(".TH wsstorm 1"), "{page}");
    assert!(page.contains("compare"));
    let o = wsstorm_in(&["completions", "tcsh"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "an unknown shell is a usage error");
}

/// A refused upgrade at -v shows the status, the response headers and the start of the body,
/// and `--log-format json` writes them as JSON lines.
#[test]
fn refused_upgrades_are_shown_at_v_as_text_or_json() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(server::start(
            "127.0.0.1:0".parse().unwrap(),
            Behaviour {
                require_token: Some("sesame".into()),
                ..Behaviour::default()
            },
        ))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"locked\"\ntarget = \"{}\"\nduration = \"500ms\"\n[reconnect]\nmax_attempts = 1\n[[phases]]\nclients = 1\n",
            server.url()
        ),
    )
    .unwrap();
    let out = tmp.path().join("o");
    let o = wsstorm_in(
        &[
            "-v",
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("upgrade refused") && stderr.contains("status=401"),
        "{stderr}"
    );
    assert!(
        stderr.contains("HTTP/1.1 401"),
        "the response head is shown: {stderr}"
    );

    let o = wsstorm_in(
        &[
            "-v",
            "--log-format",
            "json",
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--out",
            tmp.path().join("o2").to_str().unwrap(),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    let refused = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "upgrade refused")
        .unwrap_or_else(|| panic!("no JSON line for the refusal: {stderr}"));
    assert_eq!(refused["fields"]["status"], 401);
    assert_eq!(refused["level"], "DEBUG");
    runtime.block_on(server.shutdown());
}

/// `wsstorm schema` prints the committed scenario schema, every shipped scenario matches it,
/// and a misspelt key does not.
#[test]
fn the_scenario_schema_is_current_and_describes_every_shipped_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let o = wsstorm_in(&["schema"], tmp.path());
    assert!(o.status.success());
    let printed = String::from_utf8(o.stdout).unwrap();
    let committed = std::fs::read_to_string(repo().join("schema/scenario.schema.json")).unwrap();
    assert!(
        printed == committed,
        "schema/scenario.schema.json is stale: run `wsstorm schema > schema/scenario.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let as_json = |text: &str| serde_json::to_value(toml::from_str::<toml::Value>(text).unwrap()).unwrap();
    for entry in std::fs::read_dir(repo().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let doc = as_json(&std::fs::read_to_string(&path).unwrap());
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
    let misspelt = as_json("name = \"x\"\ntarget = \"embedded\"\n[[phases]]\nclinets = 5\n");
    assert!(
        !validator.is_valid(&misspelt),
        "an unknown key is flagged in the editor"
    );
}

#[test]
fn segments_come_from_the_flag_or_the_job_completion_index() {
    let quickstart = repo().join("scenarios/quickstart.toml");
    let q = quickstart.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let o = wsstorm_in(&["validate", q, "--segment", "1/4"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("segment 1/4: clients numbered 1 mod 4, 13 at the peak"),
        "50 clients: 13, 13, 12, 12\n{}",
        text(&o)
    );
    let o = crate::support::binary()
        .args(["validate", q, "--segments", "4"])
        .env("JOB_COMPLETION_INDEX", "3")
        .output()
        .unwrap();
    assert!(
        text(&o).contains("segment 3/4: clients numbered 3 mod 4, 12 at the peak"),
        "{}",
        text(&o)
    );
    let o = crate::support::binary()
        .args(["validate", q, "--segments", "4"])
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("JOB_COMPLETION_INDEX"), "{}", text(&o));
    let o = wsstorm_in(&["validate", q, "--start-at", "+2s"], tmp.path());
    assert!(o.status.success(), "a delay from now: {}", text(&o));
    let o = wsstorm_in(&["validate", q, "--start-at", "tomorrow"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("RFC 3339"), "{}", text(&o));
    let o = wsstorm_in(&["validate", q, "--segment", "4/4"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("0 <= INDEX < COUNT"), "{}", text(&o));
}
