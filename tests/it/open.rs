//! The open model (`[pacing]`): a client keeps to its schedule whatever its replies do, and
//! latency is also timed from when each request was due, so that a stalled server shows in
//! `rtt_corrected` (coordinated omission, as wrk2 corrects it) and in `late_sends`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{assert_requests_reconcile, plan, run};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

/// An echo server that holds the first message it gets after `stall_at` for `stall` before
/// answering it (and so everything behind it), once; it returns when each message came.
async fn stalling_server(
    stall_at: Duration,
    stall: Duration,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<Instant>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let started = Instant::now();
        let (mut stalled, mut received) = (false, Vec::new());
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
            if !(m.is_text() || m.is_binary()) {
                continue;
            }
            received.push(Instant::now());
            if !stalled && started.elapsed() >= stall_at {
                stalled = true;
                tokio::time::sleep(stall).await;
            }
            if ws.send(m).await.is_err() {
                break;
            }
        }
        received
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_the_corrected_latency_and_in_late_sends() {
    let (addr, server) = stalling_server(Duration::from_secs(2), Duration::from_secs(1)).await;
    let toml = r#"name = "open"
target = "embedded"
duration = "5s"
[correlation]
request_id = "/id"
timeout = "3s"
[pacing]
rate = "200/s"
[report]
requests = "all"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let received = server.await.unwrap().len() as u64;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!(c.requests, received, "every request reached the server");
    // 5 s at 200/s: the schedule is kept, the stalled second included (caught up after it).
    assert!((950..=1001).contains(&c.requests), "{c:?}");
    let raw_p99 = r.totals.rtt.percentile_ms(99.0);
    let corrected_p99 = r.totals.rtt_corrected.percentile_ms(99.0);
    assert!(corrected_p99 >= 900.0, "corrected p99 {corrected_p99} ms");
    // Only the stalled request waited; the rest took a loopback round trip (well under a
    // millisecond idle, more on a loaded runner): far from the corrected p99 either way.
    assert!(
        raw_p99 < 300.0,
        "raw p99 {raw_p99} ms: only the stalled request waited"
    );
    assert!(r.totals.rtt.max_ms() >= 990.0, "the stalled request itself");
    assert_eq!(r.totals.rtt_corrected.count(), c.answered);
    // About a second's worth of passes (200) could not begin on time, plus those the
    // catching up made late (a few idle; more when a loaded runner slows the catch-up).
    assert!((150..=400).contains(&c.late_sends), "late sends {}", c.late_sends);
    // requests.csv carries both: the corrected rtt is never below the rtt, and the passes held
    // up by the stall show it.
    let rows: Vec<(f64, f64)> = csv::Reader::from_path(r.dir.join("requests.csv"))
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| row.unwrap())
        .filter(|row| row["outcome"] == "answered")
        .map(|row| {
            (
                row["rtt_ms"].parse().unwrap(),
                row["corrected_rtt_ms"].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len() as u64, c.answered);
    assert!(rows.iter().all(|(rtt, corrected)| corrected >= rtt));
    assert!(rows.iter().filter(|(_, corrected)| *corrected >= 500.0).count() >= 90);
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(
        text.contains("passes of the loop began late") && text.contains("rtt_corrected"),
        "{text}"
    );
}

/// Without a stall, the open rate is kept and the corrected latency is the raw one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_rate_is_kept_over_all_clients() {
    let server = crate::support::server(wsstorm::scenario::Behaviour::default()).await;
    let toml = r#"name = "open total"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
[pacing]
total_rate = "1000/s"
[[phases]]
clients = 10
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
"#;
    let (r, _dir) = run(plan(toml, &server.url())).await;
    let seen = server.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(seen.received, c.requests);
    // 10 clients × 100/s × 2 s.
    assert!((1900..=2010).contains(&c.requests), "{c:?}");
    // Passes busy at their due time (10 ms apart per client) are late: a few idle, more on a
    // loaded runner (tests side by side, other jobs); most keep the schedule.
    assert!(c.late_sends < c.requests / 4, "{c:?}");
    let (raw, corrected) = (
        r.totals.rtt.percentile_ms(50.0),
        r.totals.rtt_corrected.percentile_ms(50.0),
    );
    // The typical request began on time, so its corrected rtt is its rtt (the corrected one
    // is never below it).
    assert!(corrected >= raw, "raw {raw} corrected {corrected}");
    assert!(corrected - raw < 10.0, "raw {raw} corrected {corrected}");
}

/// The schedule belongs to the client, not to a connection: with a close step each pass
/// reconnects, and the rate still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_runs_on_across_connections() {
    let server = crate::support::server(wsstorm::scenario::Behaviour::default()).await;
    let toml = r#"name = "open cycles"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
[pacing]
rate = "20/s"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
close = 1000
"#;
    let (r, _dir) = run(plan(toml, &server.url())).await;
    server.shutdown().await;
    let c = &r.totals.counts;
    // 20/s for 2 s, one connection per pass: not as many cycles as the loop could run. The
    // schedule never runs ahead; a pass that fell due while a connect was still under way
    // (a slow runner) is skipped and counted late, so sent + late covers every due pass.
    assert!(c.requests <= 41, "{c:?}");
    assert!(c.requests + c.late_sends >= 38, "{c:?}");
    assert!(c.requests >= 20, "most passes ran: {c:?}");
    assert!(c.connects >= c.requests && c.connects <= c.requests + 1, "{c:?}");
}

/// `[connect] max_rate`: 150 clients due at once connect at 50 per second, never more in any
/// second of the server's accept times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_rate_cap_holds_in_every_second() {
    let server = crate::support::server(wsstorm::scenario::Behaviour::default()).await;
    let toml = r#"name = "capped"
target = "embedded"
duration = "4s"
[connect]
max_rate = "50/s"
[[phases]]
clients = 150
"#;
    let (r, _dir) = run(plan(toml, &server.url())).await;
    let accepted = server.accept_times();
    server.shutdown().await;
    assert_eq!(r.totals.counts.connects, 150);
    assert_eq!(accepted.len(), 150);
    let mut per_second = std::collections::BTreeMap::<u64, u32>::new();
    for t in &accepted {
        *per_second.entry(t.as_secs()).or_default() += 1;
    }
    // Slots are 20 ms apart; an upgrade's own time may move one across a second's edge.
    assert!(per_second.values().all(|n| *n <= 51), "{per_second:?}");
    // 150 at 50/s take 3 s: never less (the cap); all 150 within the 4 s run bounds it above.
    let last = accepted.iter().max().unwrap().as_secs_f64();
    assert!(last >= 2.9, "150 at 50/s take 3 s: the last at {last:.2} s");
}

/// `sleep = "10ms..30ms"`: a think time drawn at random each pass. Judged on the gaps between
/// the requests the server received: each is the draw plus a round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_think_time_range_paces_the_loop_at_random() {
    let (addr, server) = stalling_server(Duration::from_secs(3600), Duration::ZERO).await;
    let toml = r#"name = "think"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "10ms..30ms"
"#;
    let p = plan(toml, &format!("ws://{addr}/"));
    assert!(p.to_string().contains("sleep 10ms to 30ms (at random)"));
    let (r, _dir) = run(p).await;
    let received = server.await.unwrap();
    assert_eq!(received.len() as u64, r.totals.counts.requests);
    let gaps: Vec<f64> = received
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    assert!(gaps.len() >= 30, "{} requests in 2 s", received.len());
    // Never shorter than the shortest draw (timers do not fire early)...
    assert!(gaps.iter().all(|ms| *ms >= 10.0), "{gaps:?}");
    // ...and drawn anew each pass: among dozens, draws under 15 ms and over 25 ms both come
    // up (a fixed 10, 20 or 30 ms would not). A loaded runner only lengthens gaps, by a round
    // trip and a late timer: the short side allows 5 ms of it.
    assert!(gaps.iter().any(|ms| *ms < 20.0), "no short think time: {gaps:?}");
    assert!(gaps.iter().any(|ms| *ms > 25.0), "no long think time: {gaps:?}");
}
