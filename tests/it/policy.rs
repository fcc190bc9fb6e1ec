//! Reconnect rules by cause (`[[reconnect.on]]`, issue 17): the connection manager of seed 002
//! never retries after a normal close (1000) or an authentication failure (401), waits 5 s
//! after "service unavailable" (1011), backs off after a network error (1006), and honours a
//! refusal's Retry-After. Each is run against a server that records what it saw.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use wsstorm::scenario::Behaviour;

use crate::support::{assert_requests_reconcile, plan, run, secs, server};

/// Seed 002's policy, with a shorter base (200 ms) to keep the runs short.
const POLICY: &str = r#"
[reconnect]
strategy = "exponential"
initial = "200ms"
max = "30s"
jitter = "none"
max_attempts = 5
[[reconnect.on]]
causes = ["close_1000", "http_401"]
action = "stop"
[[reconnect.on]]
causes = ["close_1011"]
delay = "5s"
[[reconnect.on]]
causes = ["http_5xx", "http_429"]
retry_after = true
[[phases]]
clients = 3
[[steps]]
sleep = "50ms"
"#;

fn scenario(duration: &str) -> String {
    format!("name = \"policy\"\ntarget = \"embedded\"\nduration = \"{duration}\"\n{POLICY}")
}

/// After a normal close, a client stops: the server sees one connection per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_1000_a_client_does_not_reconnect() {
    let target = server(Behaviour {
        close_at: vec![secs(0.5)],
        close_code: 1000,
        ..Behaviour::default()
    })
    .await;
    let p = plan(&scenario("2s"), &target.url());
    assert!(
        p.to_string()
            .contains("after close_1000, http_401: stop (no reconnect)"),
        "{p}"
    );
    let (r, _dir) = run(p).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(seen.connections, 3, "one connection per client: {seen:?}");
    assert_eq!((c.stopped, c.reconnects, c.connect_attempts), (3, 0, 3), "{c:?}");
    assert_eq!(r.summary.stopped_causes["close_1000"], 3);
    let rows = crate::support::connection_rows(&r);
    assert_eq!(
        rows.iter()
            .filter(|r| r.event == "stopped" && r.cause == "close_1000")
            .count(),
        3
    );
}

/// After 1011 ("service unavailable"), the next connect comes at least 5 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_1011_the_next_connect_waits_5_seconds() {
    let target = server(Behaviour {
        close_at: vec![secs(0.5)],
        close_code: 1011,
        ..Behaviour::default()
    })
    .await;
    let (r, _dir) = run(plan(&scenario("6.5s"), &target.url())).await;
    let accepts = target.accept_times();
    target.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(c.reconnects, 3, "{c:?}");
    let mut times: Vec<f64> = accepts.iter().map(Duration::as_secs_f64).collect();
    times.sort_by(f64::total_cmp);
    assert_eq!(times.len(), 6, "{times:?}");
    // Closed at 0.5 s on the server's clock; nobody is back before 0.5 + 5 s (timers never
    // fire early).
    assert!(times[3] >= 5.5, "{times:?}");
    // The histogram keeps 3 significant digits: around 5 s its buckets are 4 ms wide, and
    // min() is a bucket's lower edge (a 5 000.5 ms wait may read 4 997 ms).
    let min = r.totals.reconnect_time.min_ms();
    assert!(min >= 4990.0, "{min}");
}

/// After an authentication failure, a client does not retry: one 401 per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_http_401_a_client_does_not_retry() {
    let target = server(Behaviour {
        require_token: Some("t".into()),
        ..Behaviour::default()
    })
    .await;
    let (r, _dir) = run(plan(&scenario("1s"), &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(seen.unauthorized, 3, "{seen:?}");
    assert_eq!((c.connect_errors, c.stopped, c.gave_up), (3, 3, 0), "{c:?}");
    assert_eq!(r.summary.stopped_causes["http_401"], 3);
}

/// A server that closes each connection without a close frame (a FIN) 300 ms after the upgrade,
/// and records when each connection came.
async fn fin_server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                seen.lock().unwrap().push(tokio::time::Instant::now());
                let (_tx, mut rx) = ws.split();
                let _ = tokio::time::timeout(Duration::from_millis(300), async {
                    while rx.next().await.is_some() {}
                })
                .await;
                // Dropping both halves closes the socket with a FIN and no close frame.
            });
        }
    });
    (url, seen)
}

/// After a network error (1006: no close frame), the strategy applies: exponential from
/// 200 ms without jitter, so no client is back sooner than 200 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_1006_the_backoff_applies() {
    let (url, seen) = fin_server().await;
    let (r, _dir) = run(plan(&scenario("2s"), &url)).await;
    let c = &r.totals.counts;
    let drops = r.summary.drops.get("close_1006").copied().unwrap_or(0);
    assert!(drops >= 6, "{:?}", r.summary.drops);
    assert_eq!(c.stopped, 0, "{c:?}");
    assert!(
        r.totals.reconnect_time.min_ms() >= 200.0,
        "{}",
        r.totals.reconnect_time.min_ms()
    );
    assert_eq!(seen.lock().unwrap().len() as u64, c.connects);
    assert_requests_reconcile(&r);
}

/// A 503 with Retry-After: the client waits what it says instead of its own backoff (200 ms,
/// then 400 ms… would be refused again and again in a 2 s window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_s_retry_after_is_honoured() {
    let target = server(Behaviour {
        close_at: vec![secs(0.5)],
        close_code: 1012,
        refuse_for: secs(2.0),
        ..Behaviour::default()
    })
    .await;
    let (r, _dir) = run(plan(&scenario("4s"), &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(c.reconnects, 3, "all came back: {c:?}");
    assert!(
        (1..=3).contains(&seen.refused),
        "at most one refusal each: {seen:?}"
    );
    assert_eq!(c.connect_errors, seen.refused);
}

/// Rules are checked before anything is sent.
#[test]
fn rule_mistakes_are_located() {
    for (rule, why) in [
        ("causes = [\"close_1000\"]\n", "expected exactly one of"),
        (
            "causes = [\"close_1000\"]\naction = \"stop\"\ndelay = \"1s\"\n",
            "expected exactly one of",
        ),
        (
            "causes = [\"closed\"]\naction = \"stop\"\n",
            "\"closed\" is no cause",
        ),
        ("causes = []\naction = \"stop\"\n", "expected one or more causes"),
        ("causes = [\"http_5xxx\"]\naction = \"stop\"\n", "is no cause"),
    ] {
        let text = format!(
            "name = \"r\"\ntarget = \"ws://127.0.0.1:9/\"\n[[phases]]\nclients = 1\n[[reconnect.on]]\n{rule}"
        );
        let e = wsstorm::scenario::parse(
            std::path::Path::new("r.toml"),
            &text,
            &Default::default(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("r.toml:") && e.contains(why), "{why}: {e}");
    }
}
