//! Execution segments: shards of one scenario run side by side against one server add up to
//! exactly the scenario, with every client number in exactly one shard.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{connection_rows, rows_in, server};
use wsstorm::metrics::Counts;
use wsstorm::report::Summary;
use wsstorm::run::{Controls, execute};
use wsstorm::scenario::Behaviour;
use wsstorm::scenario::segment::Segment;
use wsstorm::scenario::{self, Overrides};

const SCENARIO: &str = r#"name = "sharded"
target = "embedded"
duration = "3s"
[correlation]
request_id = "/id"
[[phases]]
clients = 10
ramp = "500ms"
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "20ms"
[[chaos]]
at = "1500ms"
drop = 5
how = "close"
[thresholds]
drops = ["count < 3", "count >= 4"]
"#;

/// Runs `wsstorm ARGS` to completion, giving its exit code and stderr.
fn code_and_stderr(args: &[String]) -> (Option<i32>, String) {
    let o = crate::support::wsstorm(args);
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn summary_in(dir: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Four shard processes of the real binary, started together with --start-at, against one
/// server; then `wsstorm merge`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shard_processes_add_up_to_exactly_the_scenario() {
    let server = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sharded.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let shard_dir = |i: u32| dir.path().join(format!("shard-{i}"));
    let shards: Vec<_> = (0..4u32)
        .map(|i| {
            let args = [
                "run".to_string(),
                file.display().to_string(),
                "--quiet".into(),
                "--target".into(),
                server.url(),
                "--segment".into(),
                format!("{i}/4"),
                "--start-at".into(),
                at.clone(),
                "--out".into(),
                shard_dir(i).display().to_string(),
            ];
            tokio::task::spawn_blocking(move || code_and_stderr(&args))
        })
        .collect();
    for (i, shard) in shards.into_iter().enumerate() {
        let (code, stderr) = shard.await.unwrap();
        // Each shard alone has 1 or 2 drops, so "count >= 4" fails there; but a shard's
        // thresholds are for the record, and its exit code does not follow them.
        assert_eq!(code, Some(0), "shard {i}: {stderr}");
    }
    let seen = server.shutdown().await;
    let shards: Vec<Summary> = (0..4).map(|i| summary_in(&shard_dir(i))).collect();

    let peaks: Vec<u64> = shards.iter().map(|s| s.peak_clients).collect();
    assert_eq!(
        peaks,
        [3, 3, 2, 2],
        "10 clients in shares that differ by at most one"
    );
    let sum = |f: fn(&Counts) -> u64| shards.iter().map(|s| f(&s.counts)).sum::<u64>();
    assert_eq!(
        sum(|c| c.requests),
        seen.received,
        "every request reached the server once"
    );
    assert_eq!(sum(|c| c.connects), seen.connections);
    assert_eq!(
        sum(|c| c.connects) - sum(|c| c.reconnects),
        10,
        "the scenario's 10 clients"
    );
    assert_eq!(
        sum(|c| c.chaos_hits),
        5,
        "a count of 5 split between the shards: 2+1+1+1"
    );
    let mut owners: Vec<BTreeSet<u32>> = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let c = &s.counts;
        assert_eq!(
            c.requests,
            c.answered + c.timeouts + c.lost + c.unfinished,
            "{c:?}"
        );
        assert_eq!(
            s.segment,
            Some(Segment {
                index: i as u32,
                count: 4
            })
        );
        assert_eq!(s.started_at, at, "shard {i} began at the shared start");
        assert_eq!(s.late_start_s, None, "shard {i}");
        owners.push(
            rows_in(&shard_dir(i as u32))
                .iter()
                .filter_map(|row| row.client)
                .collect(),
        );
        assert!(
            owners[i].iter().all(|c| c % 4 == i as u32),
            "shard {i} runs clients ≡ {i} mod 4"
        );
        // Alone, 1 or 2 drops: "< 3" passes and ">= 4" fails.
        let verdicts: Vec<bool> = s.thresholds.iter().map(|t| t.passed).collect();
        assert_eq!(verdicts, [true, false]);
        assert_eq!(s.outcome, wsstorm::report::summary::Outcome::ThresholdsCrossed);
        let text = std::fs::read_to_string(shard_dir(i as u32).join("summary.txt")).unwrap();
        assert!(text.contains("`wsstorm merge` judges the thresholds"), "{text}");
    }
    let all: BTreeSet<u32> = owners.iter().flatten().copied().collect();
    assert_eq!(all, (0..10).collect(), "every client number in exactly one shard");
    assert_eq!(owners.iter().map(BTreeSet::len).sum::<usize>(), 10);

    // Merged: 5 drops, so the verdicts turn round, and the exit code follows them.
    let out = dir.path().join("merged");
    let mut args = vec![
        "merge".to_string(),
        "--quiet".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend((0..4).map(|i| shard_dir(i).display().to_string()));
    let (code, stderr) = code_and_stderr(&args);
    assert_eq!(code, Some(3), "{stderr}");
    let merged = summary_in(&out);
    let verdicts: Vec<bool> = merged.thresholds.iter().map(|t| t.passed).collect();
    assert_eq!(
        verdicts,
        [false, true],
        "judged on the merged result: {:?}",
        merged.thresholds
    );
    assert_eq!(
        merged.counts.requests, seen.received,
        "merged requests = what the server received"
    );
    assert_eq!(merged.counts.connects, seen.connections);
    assert_eq!(merged.counts.drops, 5);
    assert_eq!(merged.peak_clients, 10, "the scenario's client count");
    assert_eq!(merged.started_at, at);
    assert_eq!(
        merged.latency["rtt"].count, merged.counts.answered,
        "histograms merged whole"
    );
    let shard_rows: usize = (0..4).map(|i| rows_in(&shard_dir(i)).len()).sum();
    assert_eq!(
        rows_in(&out).len(),
        shard_rows,
        "every connection event, interleaved by time"
    );
    let times: Vec<f64> = rows_in(&out).iter().map(|r| r.time_s).collect();
    assert!(times.is_sorted(), "connection events in time order");
    let sent: f64 = csv::Reader::from_path(out.join("timeseries.csv"))
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| row.unwrap()["requests"].parse::<f64>().unwrap())
        .sum();
    assert_eq!(sent as u64, merged.counts.requests, "the time series adds up");
    for f in ["summary.txt", "junit.xml", "report.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    crate::support::check_schema(
        &serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap(),
    );

    // A partial merge fails unless it is accepted; accepted, it is judged on what it has.
    let mut three = vec![
        "merge".to_string(),
        "--quiet".into(),
        "--out".into(),
        dir.path().join("partial").display().to_string(),
    ];
    three.extend((1..4).map(|i| shard_dir(i).display().to_string()));
    let (code, stderr) = code_and_stderr(&three);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no directory for segment 0/4"), "{stderr}");
    // The failed merge wrote its files all the same: --force replaces them.
    three.extend(["--allow-partial".into(), "--force".into()]);
    let (code, stderr) = code_and_stderr(&three);
    assert_eq!(code, Some(3), "3 drops: both thresholds crossed: {stderr}");
    assert!(stderr.contains("warning: a partial merge"), "{stderr}");

    // Refused: a segment twice.
    let twice = shard_dir(0).display().to_string();
    let (code, stderr) = code_and_stderr(&[
        "merge".into(),
        "--out".into(),
        dir.path().join("x").display().to_string(),
        twice.clone(),
        twice,
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("appears twice"), "{stderr}");
}

/// --start-at: shards wait for the shared start; one that comes late keeps the anchor (its
/// timeline's first moments happen at once) and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_start_together_at_start_at_and_a_late_one_says_so() {
    let server = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = "name = \"aligned\"\ntarget = \"embedded\"\nduration = \"2s\"\n[[phases]]\nclients = 4\nramp = \"2s\"\n";
    let run = |index: u32, start_at: chrono::DateTime<chrono::Utc>| {
        let overrides = Overrides {
            target: Some(server.url()),
            segment: Some(Segment { index, count: 2 }),
            start_at: Some(start_at),
            ..Default::default()
        };
        let plan = scenario::parse(Path::new("s.toml"), toml, &overrides, &|_| None).unwrap();
        let out = wsstorm::report::Out::at(
            dir.path()
                .join(format!("s{index}-{}", start_at.timestamp_millis())),
        );
        async move {
            execute(
                plan,
                out,
                &Default::default(),
                &wsstorm::report::Console::quiet(),
                Controls::default(),
            )
            .await
        }
    };
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let began = std::time::Instant::now();
    let (a, b) = tokio::join!(run(0, at), run(1, at));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        began.elapsed() >= std::time::Duration::from_millis(1500),
        "they waited"
    );
    let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        (a.summary.started_at.as_str(), b.summary.started_at.as_str()),
        (stamp.as_str(), stamp.as_str())
    );
    assert_eq!((a.summary.late_start_s, b.summary.late_start_s), (None, None));

    // A shard a second late: its clients due at 0 s and 1 s both start about 1 s in.
    let late = run(0, chrono::Utc::now() - chrono::Duration::seconds(1))
        .await
        .unwrap();
    let behind = late.summary.late_start_s.expect("it says it was late");
    assert!((1.0..1.5).contains(&behind), "{behind}");
    let opens: Vec<f64> = connection_rows(&late)
        .iter()
        .filter(|r| r.event == "open")
        .map(|r| r.time_s)
        .collect();
    assert_eq!(opens.len(), 2);
    assert!(
        opens.iter().all(|t| *t >= 1.0),
        "the timeline kept its anchor: {opens:?}"
    );
    server.shutdown().await;
}
