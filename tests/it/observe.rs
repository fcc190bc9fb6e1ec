//! The live export (issue 20) against a real Prometheus: Debian's `prometheus` 2.42, started
//! here on 127.0.0.1 with a port and a data folder of its own (`--web.enable-remote-write-
//! receiver`), and stopped by its id. What Prometheus stored is held against summary.json:
//! the sums of the remote-written counters equal the summary's counts exactly, for one run,
//! for two segments (against `wsstorm merge`), and for `--workers`. A scrape of
//! `--metrics-listen` sees every client connected during the hold, and its exposition passes
//! `promtool check metrics`. A receiver that is down costs the run nothing but a warning and
//! the dropped samples, counted in the summary.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{binary, check_schema, free_port, skip, text, wait_within};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// A Prometheus of this test's own.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it with `scrape` as its scrape configs (YAML, may be empty) and waits until it
    /// is ready; None (after `skip`) when it is not installed.
    fn start(test: &str, scrape: &str) -> Option<Prometheus> {
        if !Path::new(PROMETHEUS).exists() {
            skip(test, "Debian's prometheus is not installed (.ci/run installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{scrape}"),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(port, "/-/ready").is_none_or(|(status, _)| status != 200) {
            assert!(
                Instant::now() < deadline,
                "Prometheus was not ready within 60s; its log:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(prometheus)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn write_url(&self) -> String {
        format!("prometheus-rw=http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// An instant query's result: each series' labels and value.
    fn query(&self, promql: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let (status, body) = get(self.port, &path).expect("Prometheus answers");
        assert_eq!(status, 200, "{promql}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].as_object().unwrap().clone(), value)
            })
            .collect()
    }

    /// The value of a query that gives one series (0 when it gives none).
    fn scalar(&self, promql: &str) -> f64 {
        let result = self.query(promql);
        assert!(result.len() <= 1, "{promql}: {result:?}");
        result.first().map_or(0.0, |r| r.1)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET on 127.0.0.1:`port` (HTTP/1.0, the body read to the end): status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn summary(dir: &Path) -> Value {
    let s: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    check_schema(&s);
    s
}

fn wsstorm(args: &[&str], cwd: &Path) -> Output {
    binary()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// Ten clients against the built-in target, half of them dropped by chaos after a second.
const CHAOS: &str = r#"name = "live"
target = "embedded"
duration = "3s"
[reconnect]
strategy = "constant"
initial = "200ms"
[[phases]]
clients = 10
[correlation]
request_id = "/request_id"
[[chaos]]
at = "1s"
drop = "50%"
[[steps]]
send = '{"request_id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "10ms"
"#;

/// The counts of summary.json's `key` map as Prometheus has them, `sum by (label)`.
fn by_label(p: &Prometheus, metric: &str, label: &str, run_id: &str) -> Value {
    let got: serde_json::Map<String, Value> = p
        .query(&format!("sum by ({label}) ({metric}{{run_id=\"{run_id}\"}})"))
        .into_iter()
        .map(|(m, v)| (m[label].as_str().unwrap().to_string(), Value::from(v as u64)))
        .collect();
    Value::Object(got)
}

/// Every query of deploy/grafana/wsstorm.json (its panels and its chaos annotation) is valid
/// PromQL over series this run wrote, and those a run with client chaos has give data over
/// the last two minutes.
fn dashboard_queries_answer(p: &Prometheus, run_id: &str) {
    let path = crate::support::repo().join("deploy/grafana/wsstorm.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_string();
            panel["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect();
    let chaos = dashboard["annotations"]["list"][0]["expr"].as_str().unwrap();
    queries.push(("chaos annotation".into(), chaos.to_string()));
    // Past the run's last sample (a range's end is a whole second).
    let end = chrono::Utc::now().timestamp() + 2;
    let mut empty = Vec::new();
    for (title, expr) in &queries {
        let expr = expr
            .replace("$scenario", ".*")
            .replace("$run_id", run_id)
            .replace("$__rate_interval", "1m");
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=1",
            encode(&expr),
            end - 120
        );
        let (status, body) = get(p.port, &path).expect("Prometheus answers");
        assert_eq!(status, 200, "{title}: {expr}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["data"]["result"].as_array().unwrap().is_empty() {
            empty.push(title.clone());
        }
    }
    empty.dedup();
    // No named steps, rule counters or connect errors in this run: those panels stay empty.
    assert_eq!(
        empty,
        [
            "Connect errors by cause (so far)",
            "Named steps: rtt p99",
            "Scenario counters"
        ],
        "panels without data"
    );
}

#[test]
fn remote_write_reconciles_with_the_summary_for_a_run_its_segments_and_its_workers() {
    let test = "remote_write_reconciles_with_the_summary_for_a_run_its_segments_and_its_workers";
    let Some(p) = Prometheus::start(test, "") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("live.toml"), CHAOS).unwrap();
    let url = p.write_url();

    // One run, with client chaos.
    let o = wsstorm(
        &[
            "run",
            "live.toml",
            "--out",
            "one",
            "--metrics-out",
            &url,
            "--run-id",
            "one",
            "-q",
        ],
        cwd,
    );
    assert!(o.status.success(), "{}", text(&o));
    let s = summary(&cwd.join("one"));
    let requests = s["counts"]["requests"].as_u64().unwrap();
    assert!(requests > 100, "{s}");
    assert_eq!(
        p.scalar(r#"sum(wsstorm_requests_total{run_id="one"})"#),
        requests as f64
    );
    assert_eq!(
        p.scalar(r#"sum(wsstorm_answered_total{run_id="one"})"#),
        s["counts"]["answered"].as_f64().unwrap()
    );
    assert_eq!(
        s["drops"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        5,
        "{s}"
    );
    assert_eq!(by_label(&p, "wsstorm_drops_total", "cause", "one"), s["drops"]);
    assert_eq!(
        p.scalar(r#"sum(wsstorm_chaos_actions_total{run_id="one",action="reset",index="0"})"#),
        1.0
    );
    assert_eq!(
        p.scalar(r#"sum(wsstorm_rtt_seconds_count{run_id="one"})"#),
        s["latency"]["rtt"]["count"].as_f64().unwrap()
    );
    dashboard_queries_answer(&p, "one");
    let rw = &s["live_metrics"]["remote_write"];
    assert_eq!(
        (rw["samples_dropped"].as_u64(), rw["requests_failed"].as_u64()),
        (Some(0), Some(0)),
        "{rw}"
    );
    assert!(rw["samples_sent"].as_u64().unwrap() > 0);

    // Two segments of one run id, at once, and their merge.
    let start = "+2s";
    let segments: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|seg| {
            let out = format!("seg{}", &seg[..1]);
            binary()
                .args([
                    "run",
                    "live.toml",
                    "--segment",
                    seg,
                    "--start-at",
                    start,
                    "--out",
                    &out,
                ])
                .args(["--metrics-out", &url, "--run-id", "sharded", "-q"])
                .current_dir(cwd)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in segments {
        assert!(child.wait().unwrap().success());
    }
    let merged = wsstorm(&["merge", "seg0", "seg1", "--out", "merged", "-q"], cwd);
    assert!(merged.status.success(), "{}", text(&merged));
    let m = summary(&cwd.join("merged"));
    assert_eq!(
        p.scalar(r#"sum(wsstorm_requests_total{run_id="sharded"})"#),
        m["counts"]["requests"].as_f64().unwrap()
    );
    assert_eq!(
        p.query(r#"wsstorm_requests_total{run_id="sharded"}"#).len(),
        2,
        "one series a segment"
    );
    assert_eq!(
        by_label(&p, "wsstorm_drops_total", "cause", "sharded"),
        m["drops"]
    );
    assert_eq!(
        p.scalar(r#"sum(wsstorm_connects_total{run_id="sharded"})"#),
        m["counts"]["connects"].as_f64().unwrap()
    );

    // Two workers, the receiver given in the environment (as the Kubernetes Job gives it):
    // the parent writes their sum, and the workers, which inherit it, write nothing.
    // A secret that reads `true` is masked in what is shown, and never corrupts the
    // workers' lines to their parent (their `"last":true`).
    std::fs::write(
        cwd.join("secret.toml"),
        CHAOS.replace(
            "[reconnect]",
            "[connect]\nheaders = { \"X-Token\" = \"${env:WSSTORM_TOK}\" }\n[reconnect]",
        ),
    )
    .unwrap();
    let o = binary()
        .args([
            "run",
            "secret.toml",
            "--workers",
            "2",
            "--out",
            "workers",
            "--run-id",
            "workers",
            "-q",
        ])
        .env("WSSTORM_METRICS_OUT", &url)
        .env("WSSTORM_TOK", "true")
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let w = summary(&cwd.join("workers"));
    assert_eq!(
        p.scalar(r#"sum(wsstorm_requests_total{run_id="workers"})"#),
        w["counts"]["requests"].as_f64().unwrap()
    );
    assert_eq!(
        p.query(r#"wsstorm_requests_total{run_id="workers"}"#).len(),
        1,
        "the parent's sum"
    );
    assert_eq!(
        by_label(&p, "wsstorm_drops_total", "cause", "workers"),
        w["drops"]
    );
    assert_eq!(w["live_metrics"]["remote_write"]["samples_dropped"], 0, "{w}");
    assert_eq!(
        p.scalar(r#"sum(wsstorm_connected{run_id="workers"})"#),
        0.0,
        "all closed at the end"
    );
    assert!(
        !text(&o).contains("worker 0:") && !text(&o).contains("worker 1:"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_scrape_sees_every_client_connected_during_the_hold_and_promtool_passes_it() {
    let test = "a_scrape_sees_every_client_connected_during_the_hold_and_promtool_passes_it";
    let listen = free_port();
    let scrape = format!(
        "scrape_configs:\n  - job_name: wsstorm\n    static_configs:\n      - targets: ['127.0.0.1:{listen}']\n"
    );
    let Some(p) = Prometheus::start(test, &scrape) else {
        return;
    };
    if !Path::new(PROMTOOL).exists() {
        skip(test, "promtool (Debian's prometheus) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(
        cwd.join("hold.toml"),
        r#"name = "hold"
target = "embedded"
duration = "30s"
[connect]
headers = { "X-Token" = "${env:WSSTORM_TOK}" }
[correlation]
request_id = "/request_id"
[[phases]]
clients = 40
[[steps]]
send = '{"request_id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "50ms"
"#,
    )
    .unwrap();
    let addr = format!("127.0.0.1:{listen}");
    let mut run = binary()
        .args([
            "run",
            "hold.toml",
            "--out",
            "out",
            "--metrics-listen",
            &addr,
            "--run-id",
            "held",
            "-q",
        ])
        // A secret that is also a bucket bound: masked where shown, never in the exposition.
        .env("WSSTORM_TOK", "0.25")
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut seen = 0.0;
    while seen != 40.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        seen = p.scalar(r#"max_over_time(wsstorm_connected{run_id="held",job="wsstorm"}[1m])"#);
    }
    // The exposition as it is during the run, in both formats.
    let (status, exposition) = get(listen, "/metrics").expect("the run serves its metrics");
    assert_eq!(status, 200);
    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let target = p.scalar(r#"wsstorm_target_clients{run_id="held"}"#);
    // Stopped (SIGINT, by its id) once seen: it writes its results and exits 130.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = run.wait().unwrap();
    assert_eq!(
        seen,
        40.0,
        "Prometheus saw wsstorm_connected at {seen}; its log:\n{}",
        p.log()
    );
    assert_eq!(target, 40.0);
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool: {}{}\n{exposition}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(exposition.contains(
        "wsstorm_rtt_seconds_bucket{scenario=\"hold\",run_id=\"held\",segment=\"0/1\",le=\"+Inf\"}"
    ));
    assert!(exposition.contains(",le=\"0.25\"} "), "{exposition}");
    assert_eq!(status.code(), Some(130));
    let s = summary(&cwd.join("out"));
    assert_eq!(s["live_metrics"]["listen"], addr.as_str());
}

#[test]
fn a_receiver_that_is_down_costs_a_warning_and_the_dropped_samples() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(
        cwd.join("live.toml"),
        CHAOS.replace(
            "[[phases]]",
            "[thresholds]\ntimeouts = [\"count == 0\"]\n[[phases]]",
        ),
    )
    .unwrap();
    // A port where nothing listens, with a password that must not be shown.
    let url = format!(
        "prometheus-rw=http://me:hunter2@127.0.0.1:{}/api/v1/write",
        free_port()
    );
    let o = wsstorm(&["run", "live.toml", "--out", "out", "--metrics-out", &url], cwd);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert_eq!(
        all.matches("warning: remote write to").count(),
        1,
        "warned once:\n{all}"
    );
    let s = summary(&cwd.join("out"));
    assert!(s["thresholds"][0]["passed"].as_bool().unwrap(), "{s}");
    let rw = &s["live_metrics"]["remote_write"];
    assert_eq!(rw["samples_sent"], 0, "{rw}");
    assert!(rw["samples_dropped"].as_u64().unwrap() > 0, "{rw}");
    assert!(rw["requests_failed"].as_u64().unwrap() > 0, "{rw}");
    assert!(all.contains("samples sent, ") && all.contains("dropped"), "{all}");
    let files: String = std::fs::read_dir(cwd.join("out"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        !all.contains("hunter2") && !files.contains("hunter2"),
        "the password was shown"
    );
}

/// The quick start's Grafana provisioning (docs/observability.md): the dashboard provider
/// reads where the `docker run` mounts wsstorm.json, the data source is the Prometheus the
/// quick start starts, with the uid the dashboard's default data source names.
#[test]
fn the_grafana_provisioning_finds_the_dashboard_and_the_prometheus() {
    let repo = crate::support::repo();
    let read = |p: &str| std::fs::read_to_string(repo.join(p)).unwrap();
    let yaml = |p: &str| yaml_rust2::YamlLoader::load_from_str(&read(p)).unwrap().remove(0);
    let providers = yaml("deploy/grafana/provisioning/dashboards/wsstorm.yaml");
    let path = providers["providers"][0]["options"]["path"].as_str().unwrap();
    let docs = read("docs/observability.md");
    assert!(
        docs.contains(&format!("deploy/grafana/wsstorm.json:{path}/wsstorm.json:ro")),
        "the docs mount the dashboard at {path}"
    );
    assert!(docs.contains("deploy/grafana/provisioning:/etc/grafana/provisioning:ro"));
    let sources = yaml("deploy/grafana/provisioning/datasources/prometheus.yaml");
    let source = &sources["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(source["url"].as_str(), Some("http://127.0.0.1:9090"));
    assert!(docs.contains("--web.listen-address=127.0.0.1:9090"));
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/wsstorm.json")).unwrap();
    assert_eq!(dashboard["uid"], "wsstorm", "the docs open /d/wsstorm");
    assert_eq!(dashboard["templating"]["list"][0]["type"], "datasource");
}

/// Mistakes in the export's flags are bad input (exit 2) that names the flag and what was
/// expected; a scrape address that is taken stops the run before anything is sent or written.
#[test]
fn export_mistakes_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("live.toml"), CHAOS).unwrap();
    for (flag, value, expected) in [
        (
            "--metrics-out",
            "http://127.0.0.1:9/api/v1/write",
            "expected prometheus-rw=URL",
        ),
        (
            "--metrics-out",
            "prometheus-rw=127.0.0.1:9090",
            "expected an http:// or https:// URL",
        ),
        (
            "--metrics-interval",
            "500ms",
            "expected whole seconds, at least 1s",
        ),
        ("--metrics-listen", "localhost:9464", "invalid socket address"),
    ] {
        let o = wsstorm(&["run", "live.toml", "--out", "out", flag, value], cwd);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", text(&o));
        assert!(text(&o).contains(expected), "{flag} {value}: {}", text(&o));
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for workers in [None, Some("2")] {
        let mut args = vec!["run", "live.toml", "--out", "out", "--metrics-listen", &addr];
        if let Some(n) = workers {
            args.extend(["--workers", n]);
        }
        let o = wsstorm(&args, cwd);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("--metrics-listen {addr}: ")) && text(&o).contains("nothing was sent"),
            "{}",
            text(&o)
        );
        assert!(!cwd.join("out").exists(), "no results directory was made");
    }
}

/// Stopped while it waits for `--start-at`, a run that exports ends at once like any other
/// (exit 130, nothing sent); a receiver's password never shows, whether the URL is bad or good,
/// nor in `--help` when the environment gives it.
#[test]
fn an_export_never_holds_a_stop_up_or_shows_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("live.toml"), CHAOS).unwrap();
    let url = format!("prometheus-rw=http://me:hunter2@127.0.0.1:{}/w", free_port());
    let mut run = binary()
        .args([
            "run",
            "live.toml",
            "--out",
            "out",
            "--start-at",
            "+60s",
            "--metrics-out",
            &url,
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = nix::unistd::Pid::from_raw(run.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_within(&mut run, Duration::from_secs(20), "the run after its Ctrl-C");
    assert_eq!(status.code(), Some(130));
    let s = summary(&cwd.join("out"));
    assert_eq!(s["counts"]["connect_attempts"], 0, "nothing was sent");
    assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));

    for bad in [
        "prometheus-rw=ftp://me:hunter2@127.0.0.1:1/x",
        "prometheus-rw=http://me:hun/ter2@127.0.0.1:1/x",
        "prometheus-rw=http://me:hunter2@127.0.0.1:99999/x",
        "prometheus-http://me:hunter2@127.0.0.1:1/x",
    ] {
        let o = wsstorm(&["run", "live.toml", "--out", "bad", "--metrics-out", bad], cwd);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("--metrics-out"), "{}", text(&o));
        assert!(
            !text(&o).contains("hunter2") && !text(&o).contains("ter2"),
            "{}",
            text(&o)
        );
    }
    let help = binary()
        .args(["run", "--help"])
        .env("WSSTORM_METRICS_OUT", &url)
        .output()
        .unwrap();
    assert!(text(&help).contains("--metrics-out"));
    assert!(!text(&help).contains("hunter2"), "{}", text(&help));
}

/// A closed stdout (`| head -1`) never ends a run that exports: its scrape endpoint and its
/// remote write go on, and the run writes its summary with what the export did.
#[test]
fn a_closed_stdout_does_not_stop_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("live.toml"), CHAOS).unwrap();
    let url = format!("prometheus-rw=http://127.0.0.1:{}/w", free_port());
    let mut run = binary()
        .args(["run", "live.toml", "--out", "out", "--metrics-out", &url])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The reader goes away at once.
    drop(run.stdout.take());
    let status = wait_within(&mut run, Duration::from_secs(30), "the run");
    assert_eq!(status.code(), Some(0));
    let s = summary(&cwd.join("out"));
    assert!(s["counts"]["requests"].as_u64().unwrap() > 0, "{s}");
    let live = &s["live_metrics"];
    assert!(
        live["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{live}"
    );
    assert!(
        live["remote_write"]["samples_dropped"].as_u64().unwrap() > 0,
        "{live}"
    );
}
