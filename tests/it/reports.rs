//! The documents of a results directory: junit.xml as CI reads it, report.html in a real
//! browser, and `wsstorm report DIR` rendering them again from summary.json.

use std::path::Path;
use std::process::Command;

use crate::support::{plan, run, server};
use wsstorm::scenario::Behaviour;

const GATED: &str = r#"name = "gated"
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
sleep = "20ms"
[[chaos]]
at = "1s"
drop = "40%"
how = "reset"
[thresholds]
rtt = ["p(50) < 1ms"]
timeouts = ["count == 0"]
"#;

async fn gated_run() -> (wsstorm::run::RunResult, tempfile::TempDir) {
    let server = server(Behaviour {
        latency: std::time::Duration::from_millis(5),
        ..Behaviour::default()
    })
    .await;
    let r = run(plan(GATED, &server.url())).await;
    server.shutdown().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_has_one_case_per_threshold_with_exactly_their_verdicts() {
    let (r, _dir) = gated_run().await;
    let xml = std::fs::read_to_string(r.dir.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let cases: Vec<(String, bool)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("name").unwrap().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
            )
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("rtt p(50) < 1ms".to_string(), true),
            ("timeouts count == 0".to_string(), false)
        ],
        "{xml}"
    );
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    let message = failure.attribute("message").unwrap();
    assert!(message.starts_with("rtt p(50) < 1ms: measured "), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_dir_renders_the_same_documents_again_from_summary_json() {
    let (r, _dir) = gated_run().await;
    let read = |f: &str| std::fs::read(r.dir.join(f)).unwrap();
    let before: Vec<Vec<u8>> = ["summary.txt", "junit.xml", "report.html"].map(read).to_vec();
    for f in ["summary.txt", "junit.xml", "report.html"] {
        std::fs::remove_file(r.dir.join(f)).unwrap();
    }
    let o = crate::support::wsstorm(&["report", r.dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after: Vec<Vec<u8>> = ["summary.txt", "junit.xml", "report.html"].map(read).to_vec();
    assert!(before[0] == after[0], "summary.txt byte for byte");
    assert!(before[1] == after[1], "junit.xml byte for byte");
    assert!(before[2] == after[2], "report.html byte for byte");

    let o = crate::support::wsstorm(&["report", "/nonexistent/results"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /nonexistent/results/summary.json"));
}

/// report.html opened in headless Chromium: the charts, their lines and the chaos markers are
/// in the DOM it built. Runs when Chromium is installed (`.ci/run` installs it; under CI a
/// missing browser is a failure, not a skip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_a_real_browser_with_charts_and_chaos_markers() {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        return crate::support::skip(
            "the_html_report_renders_in_a_real_browser_with_charts_and_chaos_markers",
            "no Chromium here (.ci/run installs it)",
        );
    };
    let (r, _dir) = gated_run().await;
    let profile = tempfile::tempdir().unwrap();
    let page = format!("file://{}", r.dir.join("report.html").display());
    let browse = |extra: &[&str]| {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1040,2400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&page)
            .output()
            .unwrap()
    };
    let o = browse(&["--dump-dom", "--enable-logging=stderr", "--v=0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let console: Vec<String> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    assert!(console.is_empty(), "no console messages: {console:?}");
    let dom = String::from_utf8_lossy(&o.stdout);
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(count("<svg class=\"chart\""), 6, "six charts");
    assert!(count("<polyline class=\"series\"") >= 15, "their lines");
    assert_eq!(
        count("<g class=\"chaos\">"),
        6,
        "the chaos drop marked on every chart"
    );
    assert!(dom.contains("reset#0"));
    // Field finding 24 (issue 19): readable legends, and the last (partial) second of the
    // throughput chart is a rate, not a fall to zero.
    assert!(dom.contains("</i>p99</span>") && !dom.contains("</i>rtt_p99_ms</span>"));
    let sent = dom
        .split("data-name=\"messages_sent\"")
        .nth(1)
        .and_then(|rest| rest.split("points=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the messages sent line");
    let ys: Vec<f64> = sent
        .split_whitespace()
        .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let mut sorted = ys.clone();
    sorted.sort_by(f64::total_cmp);
    let (median, last) = (sorted[sorted.len() / 2], *ys.last().unwrap());
    assert!((last - median).abs() < 60.0, "the last second is no drop: {ys:?}");
    assert!(dom.contains("id=\"verdict\">THRESHOLDS CROSSED"));
    assert!(dom.contains("<td class=\"bad\">FAIL</td>"));
    let shot = r.dir.join("screenshot.png");
    let o = browse(&[&format!("--screenshot={}", shot.display())]);
    assert!(o.status.success());
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real picture"
    );
    assert!(Path::new(&shot).exists());
}

#[test]
fn compare_finds_a_30_percent_p99_regression_and_passes_below_the_limit() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compare");
    let (base, new) = (fixtures.join("base"), fixtures.join("new"));
    let (base, new) = (base.to_str().unwrap(), new.to_str().unwrap());

    let o = crate::support::wsstorm(&["compare", base, new, "--max-regression", "10%"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "thresholds-crossed code:\n{out}");
    let p99 = out.lines().find(|l| l.starts_with("rtt.p99 ")).unwrap();
    assert!(p99.contains("REGRESSED"), "{out}");
    let change: f64 = p99
        .split_whitespace()
        .nth(5)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!((25.0..35.0).contains(&change), "about +30 %: {p99}");

    let o = crate::support::wsstorm(&[
        "compare",
        base,
        new,
        "--max-regression",
        "40%",
        "--metric",
        "rtt.p99.9",
        "--metric",
        "lost",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));

    let o = crate::support::wsstorm(&["compare", new, base, "--metric", "requests_per_s"]);
    assert_eq!(o.status.code(), Some(0), "more throughput is no regression");

    let o = crate::support::wsstorm(&["compare", base, new, "--metric", "rtt.q99"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected pN"));
    let o = crate::support::wsstorm(&["compare", base, "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
}

/// abort_on_fail: a threshold crossed at about second 2 of a 30 s run ends it within about a
/// second (plus the drain of replies in flight), with every report written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_on_fail_threshold_ends_the_run_early_with_complete_reports() {
    let server = server(Behaviour {
        no_reply_every: Some(40),
        ..Behaviour::default()
    })
    .await;
    let toml = r#"name = "abort"
target = "embedded"
duration = "30s"
[correlation]
request_id = "/id"
timeout = "500ms"
[[phases]]
clients = 5
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "20ms"
[thresholds]
timeouts = [{ threshold = "count == 0", abort_on_fail = true, grace = "2s" }]
rtt = ["p(99) < 1s"]
"#;
    let (r, _dir) = run(plan(toml, &server.url())).await;
    server.shutdown().await;
    assert_eq!(r.outcome(), wsstorm::report::summary::Outcome::ThresholdsCrossed);
    let aborted = r.summary.aborted.clone().expect("aborted");
    assert_eq!(
        (aborted.metric.as_str(), aborted.expression.as_str()),
        ("timeouts", "count == 0")
    );
    assert!(
        (2.0..3.1).contains(&aborted.at_s),
        "checked from the end of its grace: {aborted:?}"
    );
    assert!(
        r.summary.elapsed_s - aborted.at_s < 3.0,
        "ended {:.2} s after the crossing",
        r.summary.elapsed_s - aborted.at_s
    );
    crate::support::assert_requests_reconcile(&r);
    crate::support::check_summary_schema(&r);
    for f in [
        "summary.txt",
        "junit.xml",
        "report.html",
        "timeseries.csv",
        "connections.csv",
    ] {
        assert!(r.dir.join(f).exists(), "{f}");
    }
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(text.contains("aborted     at "), "{text}");
    assert!(
        std::fs::read_to_string(r.dir.join("report.html"))
            .unwrap()
            .contains("id=\"aborted\"")
    );
}

fn request_rows(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    csv::Reader::from_path(dir.join("requests.csv"))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

/// requests.csv has one row per request outcome, and its rows add up to the run's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_csv_rows_add_up_to_the_counts_and_filters_keep_what_they_say() {
    let server = server(Behaviour {
        no_reply_every: Some(7),
        ..Behaviour::default()
    })
    .await;
    let scenario = |filter: &str| {
        format!(
            r#"name = "requests"
target = "embedded"
duration = "3s"
[correlation]
request_id = "/id"
timeout = "300ms"
[reconnect]
strategy = "constant"
initial = "100ms"
[[phases]]
clients = 8
[[steps]]
send = '{{"id":"{{{{id}}}}"}}'
expect = "response"
wait = false
[[steps]]
sleep = "20ms"
[[chaos]]
at = "1500ms"
drop = "50%"
[report]
requests = "{filter}"
"#
        )
    };
    let (r, _dir) = run(plan(&scenario("all"), &server.url())).await;
    let rows = request_rows(&r.dir);
    let c = &r.totals.counts;
    let count = |outcome: &str| rows.iter().filter(|row| row["outcome"] == outcome).count() as u64;
    assert!(
        c.timeouts > 0 && c.lost > 0,
        "the run has timeouts and losses: {c:?}"
    );
    assert_eq!(count("answered"), c.answered);
    assert_eq!(count("timeout"), c.timeouts);
    assert_eq!(count("late"), c.late);
    assert_eq!(count("lost"), c.lost);
    assert_eq!(count("unfinished"), c.unfinished);
    let ids: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|row| row["outcome"] != "late")
        .map(|row| row["id"].as_str())
        .collect();
    assert_eq!(ids.len() as u64, c.requests, "one final outcome per request id");
    let answered = rows.iter().find(|row| row["outcome"] == "answered").unwrap();
    assert!(answered["rtt_ms"].parse::<f64>().unwrap() > 0.0);
    assert_eq!(answered["rtt_ms"], answered["corrected_rtt_ms"]);

    let (r, _dir) = run(plan(&scenario("errors"), &server.url())).await;
    let rows = request_rows(&r.dir);
    assert!(rows.iter().all(|row| row["outcome"] != "answered"));
    let c = &r.totals.counts;
    assert_eq!(rows.len() as u64, c.timeouts + c.late + c.lost + c.unfinished);

    let (r, _dir) = run(plan(&scenario("sample:0.25"), &server.url())).await;
    let share = request_rows(&r.dir)
        .iter()
        .filter(|row| row["outcome"] == "answered")
        .count() as f64
        / r.totals.counts.answered as f64;
    assert!((0.15..0.35).contains(&share), "about a quarter: {share}");
    server.shutdown().await;
}
