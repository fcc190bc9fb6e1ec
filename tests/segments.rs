//! Execution segments: shards of one scenario run side by side against one server add up to
//! exactly the scenario, with every client number in exactly one shard.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::{assert_requests_reconcile, connection_rows, server};
use wsstorm::run::{Controls, execute};
use wsstorm::scenario::segment::Segment;
use wsstorm::scenario::{self, Overrides};
use wsstorm::target::Behaviour;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_add_up_to_exactly_the_scenario() {
    let server = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let shard = |index: u32| {
        let overrides = Overrides {
            target: Some(server.url()),
            segment: Some(Segment { index, count: 4 }),
            ..Default::default()
        };
        let plan = scenario::parse(Path::new("s.toml"), SCENARIO, &overrides, &|_| None).unwrap();
        execute(
            plan,
            Some(dir.path().join(format!("shard-{index}"))),
            true,
            Controls::default(),
        )
    };
    let (a, b, c, d) = tokio::join!(shard(0), shard(1), shard(2), shard(3));
    let shards = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    let seen = server.shutdown().await;

    let peaks: Vec<u64> = shards.iter().map(|r| r.summary.peak_clients).collect();
    assert_eq!(
        peaks,
        [3, 3, 2, 2],
        "10 clients in shares that differ by at most one"
    );
    let sum =
        |f: fn(&wsstorm::metrics::Counts) -> u64| shards.iter().map(|r| f(&r.totals.counts)).sum::<u64>();
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
    for (i, r) in shards.iter().enumerate() {
        assert_requests_reconcile(r);
        assert_eq!(
            r.summary.segment,
            Some(Segment {
                index: i as u32,
                count: 4
            })
        );
        owners.push(connection_rows(r).iter().filter_map(|row| row.client).collect());
        assert!(
            owners[i].iter().all(|c| c % 4 == i as u32),
            "shard {i} runs clients ≡ {i} mod 4"
        );
    }
    let all: BTreeSet<u32> = owners.iter().flatten().copied().collect();
    assert_eq!(all, (0..10).collect(), "every client number in exactly one shard");
    assert_eq!(owners.iter().map(BTreeSet::len).sum::<usize>(), 10);

    // Each shard alone: 1 or 2 drops, so "< 3" passes and ">= 4" fails.
    for r in &shards {
        let verdicts: Vec<bool> = r.summary.thresholds.iter().map(|t| t.passed).collect();
        assert_eq!(verdicts, [true, false]);
    }
    // Merged: 5 drops, so the verdicts turn round.
    let out = dir.path().join("merged");
    let mut args = vec![
        "merge".to_string(),
        "--quiet".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(shards.iter().map(|r| r.dir.display().to_string()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wsstorm"))
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let merged: wsstorm::report::Summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
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
    assert_eq!(merged.counts.drops, 5);
    assert_eq!(merged.peak_clients, 10);
    assert_eq!(
        merged.latency["rtt"].count, merged.counts.answered,
        "histograms merged whole"
    );
    let rows = csv::Reader::from_path(out.join("connections.csv"))
        .unwrap()
        .records()
        .count();
    let shard_rows: usize = shards.iter().map(|r| connection_rows(r).len()).sum();
    assert_eq!(rows, shard_rows, "every connection event, interleaved by time");
    let sent: f64 = csv::Reader::from_path(out.join("timeseries.csv"))
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| row.unwrap()["requests"].parse::<f64>().unwrap())
        .sum();
    assert_eq!(sent as u64, merged.counts.requests, "the time series adds up");
    for f in ["summary.txt", "junit.xml", "report.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    support::check_schema(
        &serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap(),
    );

    // Refused: a segment twice, and a run that is not a segment.
    let twice = [
        shards[0].dir.display().to_string(),
        shards[0].dir.display().to_string(),
    ];
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wsstorm"))
        .args(["merge", "--out", dir.path().join("x").to_str().unwrap()])
        .args(&twice)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("appears twice"));
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
        execute(
            plan,
            Some(dir.path().join(format!("s{index}"))),
            true,
            Controls::default(),
        )
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
