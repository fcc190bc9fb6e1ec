//! Richer steps against a scripted server: reply checks counted apart from timeouts, streams
//! of replies timed to the first and the last, `wait_for` a server message, binary frames,
//! ids found by a regular expression, the negotiated subprotocol, feed values in the URL, and
//! clients that follow ramp-down phases.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{assert_requests_reconcile, plan, run};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What the scripted server saw.
#[derive(Default, Debug)]
struct Seen {
    /// The upgrade request's path and query, one per connection.
    paths: Vec<String>,
    binary: Vec<Vec<u8>>,
    /// Text messages received.
    texts: u64,
    /// `get` requests answered with status "fail".
    failed: u64,
}

/// A server scripted by what each message asks for:
/// - `{"id":…,"op":"stream"}`: three replies 30 ms apart, the last with `"final":true`;
/// - `{"id":…,"op":"nofinal"}`: three replies, none marked final;
/// - `{"id":…,"op":"get"}`: `{"id":…,"status":"ok"}`, but "fail" for every 4th on a connection;
/// - `REQ <id> …` (not JSON): `RESP <id> ok`.
///
/// A connection whose path contains "ready" is sent `{"type":"ready"}` 50 ms after it opens
/// (and `{"type":"noise"}` before that). The first subprotocol offered is chosen.
async fn scripted_server() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let mut path = String::new();
                // The error type is fixed by tungstenite's callback trait.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, mut resp: Response| {
                    path = req.uri().to_string();
                    let first = req
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split(',').next())
                        .map(|p| p.trim().to_string());
                    if let Some(p) = first {
                        resp.headers_mut()
                            .insert("sec-websocket-protocol", HeaderValue::from_str(&p).unwrap());
                    }
                    Ok(resp)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                seen.lock().unwrap().paths.push(path.clone());
                let (mut tx, mut rx) = ws.split();
                let (out, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, String)>();
                tokio::spawn(async move {
                    while let Some((after, text)) = out_rx.recv().await {
                        tokio::time::sleep(after).await;
                        if tx.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                });
                if path.contains("ready") {
                    out.send((Duration::ZERO, r#"{"type":"noise"}"#.into())).unwrap();
                    out.send((Duration::from_millis(50), r#"{"type":"ready"}"#.into()))
                        .unwrap();
                }
                let mut gets = 0u64;
                while let Some(Ok(m)) = rx.next().await {
                    let text = match m {
                        Message::Text(t) => t.to_string(),
                        Message::Binary(b) => {
                            seen.lock().unwrap().binary.push(b.to_vec());
                            continue;
                        }
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    seen.lock().unwrap().texts += 1;
                    if let Some(rest) = text.strip_prefix("REQ ") {
                        let id = rest.split(' ').next().unwrap_or("");
                        let _ = out.send((Duration::ZERO, format!("RESP {id} ok")));
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let id = v["id"].as_str().unwrap_or("").to_string();
                    match v["op"].as_str() {
                        Some(op @ ("stream" | "nofinal")) => {
                            for part in 0..3 {
                                let last = op == "stream" && part == 2;
                                let gap = Duration::from_millis(if part == 0 { 0 } else { 30 });
                                let reply = format!(r#"{{"id":"{id}","part":{part},"final":{last}}}"#);
                                let _ = out.send((gap, reply));
                            }
                        }
                        Some("get") => {
                            gets += 1;
                            let status = if gets.is_multiple_of(4) { "fail" } else { "ok" };
                            if status == "fail" {
                                seen.lock().unwrap().failed += 1;
                            }
                            let _ = out.send((
                                Duration::ZERO,
                                format!(r#"{{"id":"{id}","status":"{status}","n":{gets}}}"#),
                            ));
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn scenario(body: &str) -> String {
    format!(
        r#"name = "steps"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
timeout = "1s"
[[phases]]
clients = 2
{body}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_checks_are_counted_apart_from_timeouts() {
    let (addr, seen) = scripted_server().await;
    let toml = scenario(
        r#"[report]
requests = "all"
[[steps]]
send = '{"id":"{{id}}","op":"get"}'
expect = "response"
checks = [{ pointer = "/status", equals = "ok" }, { pointer = "/n", exists = true }, { pointer = "/id", matches = "^[0-9]+-[0-9]+$" }]
[[steps]]
sleep = "20ms"
"#,
    );
    let (r, _dir) = run(plan(&toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    let failed = seen.lock().unwrap().failed;
    assert!(c.requests > 20, "{c:?}");
    assert!(failed > 0);
    assert_eq!(
        c.check_failures, failed,
        "exactly the replies the server marked fail"
    );
    assert_eq!(c.timeouts, 0);
    assert_eq!(c.answered, c.requests, "a failed check is still an answer, timed");
    assert_eq!(r.summary.counts.check_failures, failed);
    // requests.csv marks them.
    let csv = std::fs::read_to_string(r.dir.join("requests.csv")).unwrap();
    assert_eq!(csv.matches(",check_failed,").count() as u64, failed, "{csv}");
    assert!(
        r.summary
            .render_text()
            .contains(&format!("{failed} answered requests failed a check"))
    );
}

/// Two clients send requests the server answers as `op` says, each expecting a stream of
/// replies up to the one marked final.
async fn run_stream(op: &str) -> wsstorm::run::RunResult {
    let (addr, _seen) = scripted_server().await;
    let toml = scenario(&format!(
        r#"[[steps]]
send = '{{"id":"{{{{id}}}}","op":"{op}"}}'
expect = "stream"
last = {{ pointer = "/final", equals = true }}
"#
    ));
    run(plan(&toml, &format!("ws://{addr}/"))).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_one_answered_request_timed_to_its_first_and_last_reply() {
    let r = run_stream("stream").await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.requests >= 10, "{c:?}");
    assert_eq!(c.timeouts, 0, "{c:?}");
    assert_eq!(
        c.unmatched + c.duplicate + c.late,
        0,
        "every part belongs to its request: {c:?}"
    );
    // Each answered request had two replies before its last.
    assert_eq!(c.stream_parts, 2 * c.answered, "{c:?}");
    assert_eq!(r.totals.rtt_first.count(), c.answered);
    // The last reply comes 60 ms after the first.
    let (first, last) = (
        r.totals.rtt_first.percentile_ms(50.0),
        r.totals.rtt.percentile_ms(50.0),
    );
    assert!(first < 40.0, "first reply p50 {first} ms");
    assert!((60.0..200.0).contains(&last), "last reply p50 {last} ms");
    assert!(r.summary.latency["rtt_first"].count == c.answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_its_last_reply_times_out() {
    let r = run_stream("nofinal").await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!(c.answered, 0, "{c:?}");
    assert!(
        c.timeouts >= 2,
        "each client's request times out after 1 s: {c:?}"
    );
    assert_eq!(
        c.stream_parts,
        3 * c.requests,
        "none of the three replies is the last: {c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_sees_the_server_message_or_times_out() {
    let (addr, _seen) = scripted_server().await;
    let toml = scenario(
        r#"[[setup]]
wait_for = { pointer = "/type", equals = "ready" }
timeout = "2s"
[[steps]]
wait_for = { matches = "never" }
timeout = "300ms"
[[steps]]
send = '{"id":"{{id}}","op":"get"}'
expect = "response"
"#,
    );
    let (r, _dir) = run(plan(&toml, &format!("ws://{addr}/ready"))).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!(c.waits, 2, "each client's setup saw ready: {c:?}");
    assert_eq!(c.drops, 0);
    // 2 s, each loop waits 300 ms in vain: about 6 per client.
    assert!((8..=14).contains(&c.wait_timeouts), "{c:?}");
    assert!(
        c.requests >= c.wait_timeouts - 2,
        "the loop goes on after a timeout: {c:?}"
    );
    // The noise message came first; ready came after about 50 ms.
    let waited = r.totals.wait_time.percentile_ms(50.0);
    // (at least 25 ms: the noise message at once did not count).
    assert!((25.0..150.0).contains(&waited), "waited {waited} ms");

    // In setup, a message that never comes fails the connection.
    let toml = scenario(
        r#"[[setup]]
wait_for = { pointer = "/type", equals = "ready" }
timeout = "200ms"
[[steps]]
sleep = "100ms"
"#,
    );
    let (r, _dir) = run(plan(&toml, &format!("ws://{addr}/plain"))).await;
    assert!(
        r.totals.drops.keys().any(|k| k.to_string() == "setup_failed"),
        "{:?}",
        r.totals.drops
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_from_hex_base64_and_a_file() {
    let (addr, seen) = scripted_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("frame.bin"), [0u8, 159, 146, 150, 255]).unwrap();
    let toml = r#"name = "binary"
target = "embedded"
duration = "1s"
[[phases]]
clients = 1
[[steps]]
send_binary = "hex:00 01 fe ff"
[[steps]]
send_binary = "base64:aGVsbG8="
[[steps]]
send_binary = "file:frame.bin"
[[steps]]
sleep = "10s"
"#;
    let path = dir.path().join("binary.toml");
    std::fs::write(&path, toml).unwrap();
    let overrides = wsstorm::scenario::Overrides {
        target: Some(format!("ws://{addr}/")),
        ..Default::default()
    };
    let plan = wsstorm::scenario::load(&path, &overrides).unwrap();
    let (r, _dir) = run(plan).await;
    let binary = seen.lock().unwrap().binary.clone();
    assert_eq!(
        binary,
        vec![
            vec![0, 1, 0xfe, 0xff],
            b"hello".to_vec(),
            vec![0, 159, 146, 150, 255]
        ]
    );
    assert_eq!(r.totals.counts.messages_sent, 3);
    assert_eq!(r.totals.counts.bytes_sent, 4 + 5 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_in_a_text_protocol_found_by_a_regex() {
    let (addr, seen) = scripted_server().await;
    let toml = r#"name = "text"
target = "embedded"
duration = "1s"
[correlation]
request_id_regex = '^RESP (\S+) '
[[phases]]
clients = 2
[[steps]]
send = "REQ {{id}} please"
expect = "response"
[[steps]]
sleep = "20ms"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.requests >= 20, "{c:?}");
    assert_eq!(c.requests, seen.lock().unwrap().texts);
    assert_eq!(c.answered, c.requests, "{c:?}");
    assert_eq!(c.unmatched + c.pushes, 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_negotiated_subprotocol_is_checked() {
    let (addr, _seen) = scripted_server().await;
    // The server picks the first one offered.
    let body = |expected: &str| {
        format!(
            r#"name = "proto"
target = "embedded"
duration = "500ms"
[connect]
subprotocols = ["chat.v1", "chat.v2"]
subprotocol = "{expected}"
[reconnect]
max_attempts = 1
[[phases]]
clients = 2
[[steps]]
sleep = "1s"
"#
        )
    };
    let (r, _dir) = run(plan(&body("chat.v1"), &format!("ws://{addr}/"))).await;
    assert_eq!(r.totals.counts.connects, 2);
    assert_eq!(r.totals.counts.connect_errors, 0);
    let (r, _dir) = run(plan(&body("chat.v2"), &format!("ws://{addr}/"))).await;
    assert_eq!(r.totals.counts.connects, 0);
    assert_eq!(
        r.summary.connect_errors.get("subprotocol"),
        Some(&2),
        "{:?}",
        r.summary.connect_errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_values_in_the_url() {
    let (addr, seen) = scripted_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "user,room\nann,r1\nbob,r2\ncy,r3\n").unwrap();
    let toml = format!(
        r#"name = "url"
target = "ws://{addr}/chat?user={{{{feed.user}}}}&room={{{{feed.room}}}}&c={{{{client}}}}"
duration = "500ms"
[feed]
file = "users.csv"
mode = "unique"
[[phases]]
clients = 3
[[steps]]
sleep = "1s"
"#
    );
    let path = dir.path().join("url.toml");
    std::fs::write(&path, &toml).unwrap();
    let plan = wsstorm::scenario::load(&path, &Default::default()).unwrap();
    assert!(plan.to_string().contains("(per client)"), "{plan}");
    let (r, _dir) = run(plan).await;
    assert_eq!(r.totals.counts.connects, 3);
    let mut paths = seen.lock().unwrap().paths.clone();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/chat?user=ann&room=r1&c=0",
            "/chat?user=bob&room=r2&c=1",
            "/chat?user=cy&room=r3&c=2"
        ]
    );

    // A value a URL cannot carry is named with its line before anything is sent.
    std::fs::write(dir.path().join("users.csv"), "user,room\nann,r1\nb b,r2\ncy,r3\n").unwrap();
    let e = wsstorm::scenario::load(&path, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("users.csv:3"), "{e}");
    // Per-client values only after the authority.
    std::fs::write(
        &path,
        toml.replace(&format!("ws://{addr}/"), "ws://{{feed.user}}:9/"),
    )
    .unwrap();
    let e = wsstorm::scenario::load(&path, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("only after the host and port"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_follow_the_phases_up_and_down_and_leave_cleanly() {
    let toml = r#"name = "ramp"
target = "embedded"
duration = "8s"
[[phases]]
clients = 40
ramp = "2s"
hold = "2s"
[[phases]]
clients = 10
ramp = "2s"
hold = "2s"
[[steps]]
sleep = "200ms"
"#;
    let server = crate::support::server(Default::default()).await;
    let p = plan(toml, &format!("ws://{}/", server.addr));
    let load = p.load.clone();
    let (r, _dir) = run(p).await;
    let c = &r.totals.counts;
    assert_eq!(c.drops, 0, "{c:?}");
    assert_eq!(c.connects, 40);
    // Ramp-down and the end both close cleanly: 30 then 10.
    assert_eq!(c.closes, 40);
    let rows: Vec<(f64, u64)> = csv::Reader::from_path(r.dir.join("timeseries.csv"))
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| {
            let row = row.unwrap();
            (
                row["elapsed_s"].parse().unwrap(),
                row["connected"].parse().unwrap(),
            )
        })
        .collect();
    assert!(rows.len() >= 7, "{rows:?}");
    // The last row is the end of the run, after every client has closed.
    for (t, connected) in rows.iter().filter(|(t, _)| *t < 8.0) {
        // Within one second of the plan: between its lowest and highest over [t-1, t+1].
        let around: Vec<u64> = (0..=20)
            .map(|i| load.target_at(Duration::from_secs_f64((t - 1.0 + i as f64 * 0.1).max(0.0))))
            .collect();
        let (lo, hi) = (*around.iter().min().unwrap(), *around.iter().max().unwrap());
        assert!(
            (lo..=hi).contains(connected),
            "at {t}s {connected} connected, the plan says {lo}..={hi} within a second: {rows:?}"
        );
    }
    let counts = server.counts();
    assert_eq!(counts.connections, 40);
}
