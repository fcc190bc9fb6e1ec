//! Conversations (issue 17): values captured from the server and sent back, ids the server
//! chooses the shape of (numbers, batches). Each test runs a small server on 127.0.0.1:0 that
//! checks what it receives and counts it, and holds the tool's counts against the server's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::support::{assert_requests_reconcile, plan, run};

/// What the login service saw.
#[derive(Debug, Default)]
struct Seen {
    connections: u64,
    logins: u64,
    /// Subscribes with a token this connection's login gave.
    subscribed: u64,
    /// Subscribes with any other token (or none).
    refused: u64,
    /// The `resume` query parameter of each connection, in order.
    resumes: Vec<String>,
    /// Numeric-id requests answered.
    answered: u64,
}

/// A login service: `{"op":"login","id":…}` gets a token new for each login, and a resume
/// token (the connection's number) to come back with; `{"op":"subscribe","id":…,"token":T}`
/// is answered `"ok":true` only when T is the token this connection's login gave (a token dies
/// with its connection). After `drop_after` subscribes, it closes the connection with 1012
/// (a restart): the client must log in again.
async fn login_service(drop_after: u64) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let mut resume = String::new();
                // The error type is fixed by tungstenite's callback trait.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, resp: Response| {
                    let query = req.uri().query().unwrap_or_default();
                    resume = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("resume="))
                        .unwrap_or_default()
                        .to_string();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                let number = {
                    let mut s = seen.lock().unwrap();
                    s.connections += 1;
                    s.resumes.push(resume);
                    s.connections
                };
                let mut token: Option<String> = None;
                let mut subscribes = 0;
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let reply = match v["op"].as_str() {
                        Some("login") => {
                            let t = format!("tok-{number}-{}", rand_suffix(&text));
                            token = Some(t.clone());
                            seen.lock().unwrap().logins += 1;
                            json!({"id": v["id"], "result": {"token": t, "resume": format!("r{number}")}})
                        }
                        Some("subscribe") => {
                            let ok = token.is_some() && v["token"].as_str() == token.as_deref();
                            let mut s = seen.lock().unwrap();
                            if ok {
                                s.subscribed += 1;
                            } else {
                                s.refused += 1;
                            }
                            json!({"id": v["id"], "ok": ok})
                        }
                        _ => json!({"id": v["id"], "error": "unknown op"}),
                    };
                    if ws.send(Message::text(reply.to_string())).await.is_err() {
                        return;
                    }
                    if v["op"] == "subscribe" {
                        subscribes += 1;
                        if subscribes == drop_after {
                            let _ = ws.close(None).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A few characters that differ from login to login (the request's own id).
fn rand_suffix(text: &str) -> String {
    text.bytes()
        .map(|b| b % 10)
        .take(8)
        .map(|d| d.to_string())
        .collect()
}

/// Login → token → subscribe with the token. The server closes each connection after 3
/// subscribes; the next connection's setup logs in again and captures a new token, so the
/// server never sees a stale one. A client-scoped capture (`resume`) goes into the URL of the
/// next connect; the first connect goes without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_token_is_captured_and_sent_and_captured_again_after_a_drop() {
    let (addr, seen) = login_service(3).await;
    let toml = r#"name = "login"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
[reconnect]
strategy = "constant"
initial = "50ms"
[[phases]]
clients = 3
[[setup]]
send = '{"op":"login","id":"{{id}}"}'
expect = "response"
capture = { token = "/result/token", resume = { pointer = "/result/resume", scope = "client" } }
[[steps]]
send = '{"op":"subscribe","id":"{{id}}","token":"{{var.token}}"}'
expect = "response"
checks = [{ pointer = "/ok", equals = true }]
[[steps]]
sleep = "20ms"
"#;
    let url = format!("ws://{addr}/feed?resume={{{{var.resume}}}}");
    let p = plan(toml, &url);
    assert!(
        p.to_string().contains("capture resume from /result/resume (for the client), token from /result/token (for the connection)"),
        "{p}"
    );
    let (r, _dir) = run(p).await;
    let seen = seen.lock().unwrap();
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(
        seen.connections >= 6,
        "the server dropped each client at least once: {seen:?}"
    );
    assert_eq!(
        seen.refused, 0,
        "no stale or missing token reached the server: {seen:?}"
    );
    assert_eq!(
        seen.logins, seen.connections,
        "one login per connection: {seen:?}"
    );
    assert_eq!(c.answered, seen.logins + seen.subscribed, "{c:?} {seen:?}");
    assert_eq!(c.check_failures, 0);
    assert_eq!((c.capture_failures, c.capture_missing), (0, 0), "{c:?}");
    // The first connect of each client goes without a resume token; the others carry the one
    // their previous connection gave.
    let empty = seen.resumes.iter().filter(|r| r.is_empty()).count();
    assert_eq!(empty, 3, "{:?}", seen.resumes);
    assert!(seen.resumes.iter().all(|r| r.is_empty() || r.starts_with('r')));
}

/// A reply without the value is a capture failure; a send that needs a value never captured
/// is not sent (and counted), and in setup it fails the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_value_is_a_capture_failure_and_its_send_is_not_sent() {
    let server = crate::support::server(wsstorm::scenario::Behaviour::default()).await;
    // The built-in target echoes: the reply to the login has no /result/token.
    let toml = r#"name = "missing"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 2
[[steps]]
send = '{"op":"login","id":"{{id}}"}'
expect = "response"
capture = { token = "/result/token" }
[[steps]]
send = '{"op":"subscribe","id":"{{id}}","token":"{{var.token}}"}'
expect = "response"
[[steps]]
sleep = "50ms"
"#;
    let (r, _dir) = run(plan(toml, &server.url())).await;
    let seen = server.shutdown().await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(
        c.capture_failures > 0 && c.capture_failures == c.answered,
        "{c:?}"
    );
    assert_eq!(
        c.capture_missing, c.capture_failures,
        "each subscribe skipped: {c:?}"
    );
    assert_eq!(seen.received, c.requests, "only the logins were sent: {seen:?}");
}

/// A JSON-RPC style server that answers with the request's numeric id, and one that answers
/// several requests in one batch message.
async fn numeric_and_batch_server(batch: usize) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut held = Vec::new();
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let reply = if batch <= 1 {
                        json!({"jsonrpc": "2.0", "id": v["id"], "result": 1})
                    } else {
                        held.push(json!({"request_id": v["request_id"]}));
                        if held.len() < batch {
                            continue;
                        }
                        json!({"type": "batch", "messages": std::mem::take(&mut held)})
                    };
                    let n = reply.get("messages").map_or(1, |m| m.as_array().unwrap().len());
                    seen.lock().unwrap().answered += n as u64;
                    if ws.send(Message::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// `"id": {{seq}}` goes out as a JSON number and the reply's number answers it: a JSON-RPC
/// server's ids were `unmatched` before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_ids_correlate() {
    let (addr, seen) = numeric_and_batch_server(1).await;
    let toml = r#"name = "numeric"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 4
[[steps]]
send = '{"jsonrpc":"2.0","method":"ping","id":{{seq}}}'
expect = "response"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.answered > 100, "{c:?}");
    assert_eq!(c.answered, seen.lock().unwrap().answered);
    assert_eq!((c.unmatched, c.timeouts), (0, 0), "{c:?}");
}

/// A reply that carries several ids answers each of them (`/messages/*/request_id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reply_answers_every_id_it_carries() {
    let (addr, seen) = numeric_and_batch_server(3).await;
    let toml = r#"name = "batch"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/messages/*/request_id"
timeout = "1s"
[[phases]]
clients = 2
[[steps]]
send = '{"op":"a","request_id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
send = '{"op":"b","request_id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
send = '{"op":"c","request_id":"{{id}}"}'
expect = "response"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.answered > 30, "{c:?}");
    assert_eq!(c.answered, seen.lock().unwrap().answered, "{c:?}");
    assert_eq!(
        c.messages_received * 3,
        c.answered,
        "three answers per message: {c:?}"
    );
    assert_eq!((c.unmatched, c.timeouts), (0, 0), "{c:?}");
}

/// Mistakes in captures are found before anything is sent, at their line.
#[test]
fn capture_mistakes_are_located() {
    let base = "name = \"c\"\ntarget = \"ws://127.0.0.1:9/\"\n[correlation]\nrequest_id = \"/id\"\n[[phases]]\nclients = 1\n";
    for (extra, line, why) in [
        (
            "[[steps]]\nsend = '{\"t\":\"{{var.token}}\",\"id\":\"{{id}}\"}'\nexpect = \"response\"\ncapture = { token = \"/t\" }\n",
            8,
            "is used before any step captures it",
        ),
        (
            "[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\nexpect = \"response\"\n[[steps]]\nsend = '{\"t\":\"{{var.nothing}}\"}'\n[[steps]]\nsleep = \"1s\"\n",
            11,
            "no step, setup step or rule captures \"nothing\"",
        ),
        (
            "[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\ncapture = { t = \"/t\" }\n[[steps]]\nsleep = \"1s\"\n",
            7,
            "does not apply to this step",
        ),
        (
            "[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\nexpect = \"response\"\ncapture = { t = \"t\" }\n",
            10,
            "does not start with '/'",
        ),
        (
            "[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\nexpect = \"response\"\ncapture = { 9t = \"/t\" }\n",
            10,
            "is not a variable name",
        ),
        (
            "[connect]\nheaders = { Authorization = \"Bearer {{var.t}}\" }\n[[steps]]\nsend = '{\"id\":\"{{id}}\"}'\nexpect = \"response\"\ncapture = { t = \"/t\" }\n",
            8,
            "expected `scope = \"client\"`",
        ),
        (
            "[[on_message]]\nmatch = { pointer = \"/t\", exists = true }\n",
            7,
            "a rule without an action",
        ),
        (
            "[[on_message]]\nmatch = { pointer = \"/t\", exists = true }\ncount = \"bad name\"\n",
            9,
            "letters, digits",
        ),
        (
            "[[on_message]]\nmatch = { pointer = \"/t\", exists = true }\ncount = \"error_{{/c}}\"\n[thresholds]\nwarning_1 = [\"count == 0\"]\n",
            11,
            "or the name of a rule's `count`",
        ),
        (
            "[thresholds]\n\"drops{cause=close_10111}\" = [\"count == 0\"]\n",
            8,
            "no drops cause is called",
        ),
        (
            "[thresholds]\n\"rtt{cause=reset}\" = [\"p(99) < 1s\"]\n",
            8,
            "rtt has no `cause` to select",
        ),
    ] {
        let text = format!("{base}{extra}");
        let e = wsstorm::scenario::parse(
            std::path::Path::new("c.toml"),
            &text,
            &Default::default(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("c.toml:{line}:")) && e.contains(why),
            "{why} at line {line}:\n{e}\n{text}"
        );
    }
}

/// What the pinging server saw.
#[derive(Debug, Default)]
struct Pings {
    sent: u64,
    /// Pongs that carried the number of a ping this server sent on that connection.
    pongs: u64,
    wrong: u64,
    /// Requests answered with an error (`code` 429) and answered fine.
    errors: u64,
    fine: u64,
    /// Close codes the clients sent.
    closes: Vec<u16>,
}

/// A server that pings at the application level (`{"type":"ping","n":N}` every 20 ms) and
/// checks each `{"type":"pong","n":N}`; it answers every third request with an error
/// (`{"id":…,"error":{"code":429}}`); after 10 pings it asks the client to go away
/// (`{"type":"goaway"}`) and records the close code the client sends.
async fn pinging_server() -> (SocketAddr, Arc<Mutex<Pings>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Pings::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                let (out, mut outq) = tokio::sync::mpsc::unbounded_channel::<Message>();
                let pinger = {
                    let out = out.clone();
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        for n in 1..=10u64 {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            seen.lock().unwrap().sent += 1;
                            if out
                                .send(Message::text(json!({"type":"ping","n":n}).to_string()))
                                .is_err()
                            {
                                return;
                            }
                        }
                        let _ = out.send(Message::text(r#"{"type":"goaway"}"#));
                    })
                };
                let writer = tokio::spawn(async move {
                    while let Some(m) = outq.recv().await {
                        if tx.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                let mut requests = 0u64;
                while let Some(Ok(m)) = rx.next().await {
                    match m {
                        Message::Text(text) => {
                            let v: Value = serde_json::from_str(&text).unwrap();
                            if v["type"] == "pong" {
                                let n = v["n"].as_u64().unwrap_or(0);
                                let mut s = seen.lock().unwrap();
                                if (1..=10).contains(&n) {
                                    s.pongs += 1;
                                } else {
                                    s.wrong += 1;
                                }
                                continue;
                            }
                            requests += 1;
                            let reply = if requests.is_multiple_of(3) {
                                seen.lock().unwrap().errors += 1;
                                json!({"id": v["id"], "error": {"code": 429}})
                            } else {
                                seen.lock().unwrap().fine += 1;
                                json!({"id": v["id"], "result": "ok"})
                            };
                            let _ = out.send(Message::text(reply.to_string()));
                        }
                        Message::Close(frame) => {
                            let code = frame.map_or(1005, |f| u16::from(f.code));
                            seen.lock().unwrap().closes.push(code);
                            break;
                        }
                        _ => {}
                    }
                }
                pinger.abort();
                drop(out);
                let _ = writer.await;
            });
        }
    });
    (addr, seen)
}

/// Rules answer the server's application pings (the server counts the pongs it got for its
/// pings), count error replies by their code, and close on the server's request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_answer_pings_count_errors_by_code_and_close_when_asked() {
    let (addr, seen) = pinging_server().await;
    let toml = r#"name = "rules"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/id"
[reconnect]
strategy = "constant"
initial = "10ms"
[[phases]]
clients = 2
[[steps]]
send = '{"op":"get","id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "5ms"
[[on_message]]
match = { pointer = "/type", equals = "ping" }
capture = { n = "/n" }
count = "pings"
send = '{"type":"pong","n":{{var.n}}}'
[[on_message]]
match = { pointer = "/error/code", exists = true }
replies = true
count = "error_{{/error/code}}"
[[on_message]]
match = { pointer = "/type", equals = "goaway" }
close = 4000
[thresholds]
error_429 = ["count > 0"]
pings = ["count > 0"]
"drops{cause=close_1011}" = ["count == 0"]
"#;
    let p = plan(toml, &format!("ws://{addr}/"));
    let shown = p.to_string();
    assert!(
        shown.contains("1. when /type == \"ping\": capture n from /n (for the connection); count pings; send {\"type\":\"pong\",\"n\":{{var.n}}}"),
        "{shown}"
    );
    let (r, _dir) = run(p).await;
    // The server's last pongs may still be in flight when the run ends: wait for its tasks.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap();
    let c = &r.totals.counts;
    let counted = &r.summary.counters;
    assert_requests_reconcile(&r);
    assert_eq!(seen.wrong, 0, "{seen:?}");
    // Every pong the tool sent reached the server; pings that came after the client's close
    // frame are counted but not answered.
    assert_eq!(c.messages_sent - c.requests, seen.pongs, "{c:?} {seen:?}");
    assert!(
        seen.pongs <= counted["pings"] && counted["pings"] <= seen.sent,
        "every ping before the close answered: {counted:?} {seen:?}"
    );
    assert!(seen.pongs >= 20, "{seen:?}");
    assert_eq!(counted["error_429"], seen.errors, "{counted:?} {seen:?}");
    assert_eq!(
        c.answered,
        seen.errors + seen.fine,
        "error replies are still answers: {c:?}"
    );
    // Closed with 4000 when the server asked; with 1000 at the end of the run (one per client).
    let asked = seen.closes.iter().filter(|code| **code == 4000).count();
    let at_end = seen.closes.iter().filter(|code| **code == 1000).count();
    assert!(
        asked >= 2 && at_end <= 2 && asked + at_end == seen.closes.len(),
        "{seen:?}"
    );
    assert_eq!(
        c.connects as usize,
        asked + 2,
        "each client asked to go connected again: {c:?}"
    );
    assert!(
        r.summary.thresholds.iter().all(|t| t.passed),
        "{:?}",
        r.summary.thresholds
    );
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(text.contains("counted     error_429"), "{text}");
}

/// A server that names a new counter with every message is held to a bounded number of names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_names_from_a_hostile_server_are_bounded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        for i in 0..3000 {
            let m = json!({"code": format!("{i}-{}", "x".repeat(500))}).to_string();
            if ws.send(Message::text(m)).await.is_err() {
                return;
            }
        }
        while let Some(Ok(_)) = ws.next().await {}
    });
    let toml = r#"name = "flood"
target = "embedded"
duration = "1s"
[[phases]]
clients = 1
[[steps]]
sleep = "100ms"
[[on_message]]
match = { pointer = "/code", exists = true }
count = "code_{{/code}}"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let counted = &r.summary.counters;
    assert_eq!(
        counted.len(),
        wsstorm::metrics::counters::MAX_COUNTERS,
        "{}",
        counted.len()
    );
    assert_eq!(counted.values().sum::<u64>(), 3000);
    assert!(counted.keys().all(|k| k.len() <= 100));
    assert!(counted[wsstorm::metrics::counters::OTHER] > 1000);
}

/// What the two-speed server answered, per operation.
#[derive(Debug, Default)]
struct Ops {
    fast: u64,
    slow: u64,
    /// Slow requests it never answered.
    withheld: u64,
}

/// A server with a fast operation (answered at once) and a slow one (answered after 30 ms,
/// and every fifth one never).
async fn two_speed_server() -> (SocketAddr, Arc<Mutex<Ops>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Ops::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                let (out, mut outq) = tokio::sync::mpsc::unbounded_channel::<Message>();
                let writer = tokio::spawn(async move {
                    while let Some(m) = outq.recv().await {
                        if tx.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                let mut slow = 0u64;
                while let Some(Ok(Message::Text(text))) = rx.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let reply = Message::text(json!({"id": v["id"]}).to_string());
                    if v["op"] == "fast" {
                        seen.lock().unwrap().fast += 1;
                        let _ = out.send(reply);
                        continue;
                    }
                    slow += 1;
                    if slow.is_multiple_of(5) {
                        seen.lock().unwrap().withheld += 1;
                        continue;
                    }
                    seen.lock().unwrap().slow += 1;
                    let out = out.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                        let _ = out.send(reply);
                    });
                }
                drop(out);
                let _ = writer.await;
            });
        }
    });
    (addr, seen)
}

const NAMED: &str = r#"name = "named"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
timeout = "300ms"
[report]
requests = "all"
[[phases]]
clients = 4
[[steps]]
name = "Fast"
send = '{"op":"fast","id":"{{id}}"}'
expect = "response"
[[steps]]
name = "Slow"
send = '{"op":"slow","id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "10ms"
[thresholds]
"rtt{step=Fast}" = ["p(50) < 25ms"]
"rtt{step=Slow}" = ["p(50) < 25ms"]
"timeouts{step=Slow}" = ["count > 0"]
"timeouts{step=Fast}" = ["count == 0"]
"#;

/// Each named step has its own counts and rtt, thresholds select them, the names' counts add
/// up to the totals, requests.csv names each request's step, and merge adds them exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_steps_have_their_own_counts_rtt_and_thresholds() {
    let (addr, seen) = two_speed_server().await;
    let url = format!("ws://{addr}/");
    let p = plan(NAMED, &url);
    assert!(p.to_string().contains("send  [Slow] {\"op\":\"slow\""), "{p}");
    let (r, _dir) = run(p).await;
    let by = &r.summary.by_step;
    let (fast, slow) = (&by["Fast"].counts, &by["Slow"].counts);
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(fast.requests, seen.fast, "{seen:?}");
        assert_eq!(fast.answered, seen.fast);
        assert_eq!(slow.requests, seen.slow + seen.withheld, "{seen:?}");
        assert_eq!(slow.timeouts, seen.withheld, "{seen:?}");
    }
    assert_eq!(fast.requests + slow.requests, c.requests);
    assert_eq!(fast.answered + slow.answered, c.answered);
    assert_eq!(fast.timeouts + slow.timeouts, c.timeouts);
    assert_eq!(fast.late + slow.late, c.late);
    assert_eq!(
        fast.lost + slow.lost + fast.unfinished + slow.unfinished,
        c.lost + c.unfinished
    );
    assert!(
        by["Slow"].rtt.p50_ms >= 30.0 && by["Fast"].rtt.p50_ms < 25.0,
        "{by:?}"
    );
    let verdicts: Vec<(String, bool)> = r
        .summary
        .thresholds
        .iter()
        .map(|t| (t.metric.clone(), t.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("rtt{step=Fast}".to_string(), true),
            ("rtt{step=Slow}".to_string(), false),
            ("timeouts{step=Fast}".to_string(), true),
            ("timeouts{step=Slow}".to_string(), true),
        ]
    );
    // requests.csv: every row names its step, and they add up per name.
    let rows: Vec<std::collections::HashMap<String, String>> =
        csv::Reader::from_path(r.dir.join("requests.csv"))
            .unwrap()
            .deserialize()
            .map(|row| row.unwrap())
            .collect();
    let count = |step: &str, outcome: &str| {
        rows.iter()
            .filter(|row| row["step"] == step && row["outcome"] == outcome)
            .count() as u64
    };
    assert_eq!(count("Slow", "timeout"), slow.timeouts);
    assert_eq!(count("Fast", "answered"), fast.answered);
    assert_eq!(count("Slow", "late"), slow.late);
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(text.contains("by step") && text.contains("Slow"), "{text}");
    let html = std::fs::read_to_string(r.dir.join("report.html")).unwrap();
    assert!(html.contains("<table id=\"by-step\">"));
}

/// Two segments of a scenario with named steps merge into exactly their sums, and the
/// thresholds on steps are judged again on the whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_steps_merge_exactly() {
    let (addr, _seen) = two_speed_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    for i in 0..2 {
        let overrides = wsstorm::scenario::Overrides {
            target: Some(format!("ws://{addr}/")),
            segment: Some(wsstorm::scenario::segment::Segment::parse(&format!("{i}/2")).unwrap()),
            ..Default::default()
        };
        let p = wsstorm::scenario::parse(std::path::Path::new("named.toml"), NAMED, &overrides, &|_| None)
            .unwrap();
        let out = dir.path().join(format!("s{i}"));
        let r = wsstorm::run::execute(
            p,
            wsstorm::report::Out::at(&out),
            &Default::default(),
            &wsstorm::report::console::Console::quiet(),
            Default::default(),
        )
        .await
        .unwrap();
        parts.push((out, r.summary));
    }
    let merged_dir = dir.path().join("merged");
    let dirs: Vec<_> = parts.iter().map(|(d, _)| d.clone()).collect();
    wsstorm::report::merge::merge(&dirs, &merged_dir, wsstorm::report::merge::OutDir::Empty).unwrap();
    let merged = wsstorm::report::read_summary(&merged_dir).unwrap();
    for step in ["Fast", "Slow"] {
        let sum = parts[0].1.by_step[step].counts + parts[1].1.by_step[step].counts;
        assert_eq!(merged.by_step[step].counts, sum, "{step}");
        let count = parts[0].1.by_step[step].rtt.count + parts[1].1.by_step[step].rtt.count;
        assert_eq!(merged.by_step[step].rtt.count, count);
    }
    let slow = merged
        .thresholds
        .iter()
        .find(|t| t.metric == "rtt{step=Slow}")
        .unwrap();
    assert!(!slow.passed && slow.value.unwrap() >= 30.0, "{slow:?}");
}

/// What the heartbeat server saw.
#[derive(Debug, Default)]
struct Beats {
    logins: u64,
    /// Application heartbeats answered, and those that came before the connection's login.
    beats: u64,
    early: u64,
    /// Other requests.
    work: u64,
}

/// A server that answers a login after 100 ms, application heartbeats (`"op":"hb"`) and work
/// requests at once, and notes a heartbeat that comes before its connection's login.
async fn heartbeat_server() -> (SocketAddr, Arc<Mutex<Beats>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Beats::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut logged_in = false;
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    match v["op"].as_str() {
                        Some("login") => {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            logged_in = true;
                            seen.lock().unwrap().logins += 1;
                        }
                        Some("hb") if !logged_in => seen.lock().unwrap().early += 1,
                        Some("hb") => seen.lock().unwrap().beats += 1,
                        _ => seen.lock().unwrap().work += 1,
                    }
                    if ws
                        .send(Message::text(json!({"id": v["id"]}).to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// `[[every]]` sends beside the loop (which sleeps long), only once the setup is done, and its
/// requests are named, timed and correlated like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_send_beside_the_loop_once_the_setup_is_done() {
    let (addr, seen) = heartbeat_server().await;
    let toml = r#"name = "timers"
target = "embedded"
duration = "2s"
[correlation]
request_id = "/id"
[[phases]]
clients = 3
[[setup]]
send = '{"op":"login","id":"{{id}}"}'
expect = "response"
[[steps]]
send = '{"op":"work","id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "500ms"
[[every]]
every = "50ms"
name = "Heartbeat"
send = '{"op":"hb","id":"{{id}}"}'
expect = "response"
[thresholds]
"answered{step=Heartbeat}" = ["count > 30"]
"#;
    let p = plan(toml, &format!("ws://{addr}/"));
    assert!(
        p.to_string()
            .contains("every 50ms:\n  1. send  [Heartbeat] {\"op\":\"hb\""),
        "{p}"
    );
    let (r, _dir) = run(p).await;
    let seen = seen.lock().unwrap();
    let c = &r.totals.counts;
    let beats = &r.summary.by_step["Heartbeat"].counts;
    assert_requests_reconcile(&r);
    assert_eq!(seen.early, 0, "no heartbeat before the login: {seen:?}");
    assert_eq!(beats.answered, seen.beats, "{seen:?}");
    assert_eq!(c.answered, seen.logins + seen.beats + seen.work, "{seen:?}");
    // 3 clients, ~1.9 s after their login, a beat every 50 ms: far more beats than the
    // loop's own requests (one per 500 ms).
    assert!(seen.beats > 60 && seen.beats > 5 * seen.work, "{seen:?}");
    assert!(r.summary.thresholds.iter().all(|t| t.passed));
}

/// What the flow server saw: each client's first message names its flow (`"flow":…`).
#[derive(Debug, Default)]
struct FlowSeen {
    /// Clients (by the `client` they send) that said each flow.
    clients: std::collections::BTreeMap<String, std::collections::BTreeSet<u64>>,
    /// Requests answered per flow.
    answered: std::collections::BTreeMap<String, u64>,
}

async fn flow_server() -> (SocketAddr, Arc<Mutex<FlowSeen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(FlowSeen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let flow = v["flow"].as_str().unwrap().to_string();
                    {
                        let mut s = seen.lock().unwrap();
                        s.clients
                            .entry(flow.clone())
                            .or_default()
                            .insert(v["client"].as_u64().unwrap());
                        *s.answered.entry(flow).or_default() += 1;
                    }
                    if ws
                        .send(Message::text(json!({"id": v["id"]}).to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

const FLOWS: &str = r#"name = "flows"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 40
[[flows]]
name = "buyer"
weight = 3
[[flows.steps]]
name = "Checkout"
send = '{"flow":"buyer","client":{{client}},"id":"{{id}}"}'
expect = "response"
[[flows.steps]]
sleep = "20ms"
[[flows]]
name = "browser"
[[flows.setup]]
send = '{"flow":"browser","client":{{client}},"id":"{{id}}"}'
expect = "response"
[[flows.steps]]
send = '{"flow":"browser","client":{{client}},"id":"{{id}}"}'
expect = "response"
[[flows.steps]]
sleep = "20ms"
[thresholds]
"answered{flow=buyer}" = ["count > 0"]
"rtt{step=Checkout}" = ["p(99) < 1s"]
"#;

/// Each client takes one flow, in exact shares (3 to 1 over 40 clients: 30 and 10), and each
/// flow's requests are counted on their own and add up to the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_take_exact_shares_and_are_counted_apart() {
    let (addr, seen) = flow_server().await;
    let p = plan(FLOWS, &format!("ws://{addr}/"));
    assert!(
        p.to_string().contains("flow       buyer (3 of every 4 clients)"),
        "{p}"
    );
    let (r, _dir) = run(p).await;
    let seen = seen.lock().unwrap();
    let flows = &r.summary.by_flow;
    assert_eq!(seen.clients["buyer"].len(), 30, "{:?}", seen.clients);
    assert_eq!(seen.clients["browser"].len(), 10);
    assert!(seen.clients["buyer"].is_disjoint(&seen.clients["browser"]));
    assert_eq!((flows["buyer"].clients, flows["browser"].clients), (30, 10));
    assert_eq!(flows["buyer"].counts.answered, seen.answered["buyer"]);
    assert_eq!(flows["browser"].counts.answered, seen.answered["browser"]);
    assert_eq!(
        flows["buyer"].counts.requests + flows["browser"].counts.requests,
        r.totals.counts.requests
    );
    // By step: "buyer/Checkout" for the named step, "browser" for the flow's unnamed ones.
    assert_eq!(
        r.summary.by_step["buyer/Checkout"].counts.answered,
        seen.answered["buyer"]
    );
    assert_eq!(
        r.summary.by_step["browser"].counts.answered,
        seen.answered["browser"]
    );
    assert!(
        r.summary.thresholds.iter().all(|t| t.passed),
        "{:?}",
        r.summary.thresholds
    );
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(text.contains("by flow"), "{text}");
}

/// Flow mistakes are found before anything is sent.
#[test]
fn flow_mistakes_are_located() {
    let base = "name = \"f\"\ntarget = \"ws://127.0.0.1:9/\"\n[[phases]]\nclients = 1\n";
    for (extra, why) in [
        (
            "[[steps]]\nsleep = \"1s\"\n[[flows]]\nname = \"a\"\n[[flows.steps]]\nsleep = \"1s\"\n",
            "expected no top-level",
        ),
        ("[[flows]]\nname = \"a b\"\n", "flows.name"),
        (
            "[[flows]]\nname = \"a\"\n[[flows]]\nname = \"a\"\n",
            "is taken by another flow",
        ),
        ("[[flows]]\nname = \"a\"\nweight = 0\n", "flows.weight"),
        (
            "[[flows]]\nname = \"a\"\n[[flows.steps]]\nsend = \"x\"\n",
            "never waits",
        ),
        (
            "[[flows]]\nname = \"a\"\n[thresholds]\n\"requests{flow=b}\" = [\"count > 0\"]\n",
            "no flow is named \"b\"",
        ),
    ] {
        let text = format!("{base}{extra}");
        let e = wsstorm::scenario::parse(
            std::path::Path::new("f.toml"),
            &text,
            &Default::default(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.toml:") && e.contains(why), "{why}: {e}");
    }
}

/// What the three-socket server saw, by path.
#[derive(Debug, Default)]
struct Paths {
    connections: std::collections::BTreeMap<String, u64>,
    answered: std::collections::BTreeMap<String, u64>,
}

async fn paths_server() -> (SocketAddr, Arc<Mutex<Paths>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Paths::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let mut path = String::new();
                // The error type is fixed by tungstenite's callback trait.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, resp: Response| {
                    path = req.uri().path().to_string();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                *seen.lock().unwrap().connections.entry(path.clone()).or_default() += 1;
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    *seen.lock().unwrap().answered.entry(path.clone()).or_default() += 1;
                    if ws
                        .send(Message::text(json!({"id": v["id"]}).to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Seed 002's main, chat and terminal sockets: every client holds all three, each with its own
/// steps; the server counts each socket's connections and requests as the tool does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_holds_its_three_sockets() {
    let (addr, seen) = paths_server().await;
    let toml = r#"name = "sockets"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 4
[[sockets]]
name = "main"
path = "/ws/main"
[[sockets.steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[sockets.steps]]
sleep = "20ms"
[[sockets]]
name = "chat"
path = "/ws/chat?room=1"
[[sockets.steps]]
name = "Say"
send = '{"id":"{{id}}"}'
expect = "response"
[[sockets.steps]]
sleep = "50ms"
[[sockets]]
name = "terminal"
path = "/ws/terminal"
[[sockets.steps]]
sleep = "100ms"
[thresholds]
"answered{socket=chat}" = ["count > 0"]
"#;
    let p = plan(toml, &format!("ws://{addr}/"));
    assert!(
        p.to_string().contains("socket     chat at /ws/chat?room=1"),
        "{p}"
    );
    let (r, _dir) = run(p).await;
    let seen = seen.lock().unwrap();
    let by = &r.summary.by_socket;
    for (name, path) in [
        ("main", "/ws/main"),
        ("chat", "/ws/chat"),
        ("terminal", "/ws/terminal"),
    ] {
        assert_eq!(
            seen.connections[path], 4,
            "4 clients, one {name} socket each: {seen:?}"
        );
        assert_eq!(by[name].connects, 4, "{name}");
        assert_eq!(by[name].clients, 4);
        assert_eq!(
            by[name].counts.answered,
            seen.answered.get(path).copied().unwrap_or(0),
            "{name}"
        );
    }
    assert_eq!(r.totals.counts.connects, 12, "connections are counted per socket");
    assert_eq!(
        r.summary.by_step["chat/Say"].counts.answered,
        seen.answered["/ws/chat"]
    );
    assert!(r.summary.thresholds.iter().all(|t| t.passed));
}

/// The built-in target's batch = 3 answers three requests in one message; /messages/*/id
/// answers each, and the server's count is the tool's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_target_answers_in_batches() {
    let target = crate::support::server(wsstorm::scenario::Behaviour {
        batch: 3,
        ..Default::default()
    })
    .await;
    let toml = r#"name = "batched"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/messages/*/id"
[[phases]]
clients = 2
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
"#;
    let (r, _dir) = run(plan(toml, &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!(c.answered, seen.answered, "{c:?} {seen:?}");
    assert_eq!(c.messages_received * 3, c.answered, "{c:?}");
    assert_eq!((c.unmatched, c.timeouts), (0, 0));
}

/// A capture or a rule that meets a hostile message (deeply nested, huge, not JSON) costs
/// that message's parse, bounded by max_message and serde_json's depth limit: no panic, a
/// capture failure counted, the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_and_rules_survive_hostile_messages() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        let huge = format!(r#"{{"type":"x","pad":"{}"}}"#, "y".repeat(3 << 20));
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let v: Value = serde_json::from_str(&text).unwrap();
            for m in [deep.clone(), huge.clone(), "not json {".to_string()] {
                if ws.send(Message::text(m)).await.is_err() {
                    return;
                }
            }
            // The reply carries no token: a capture failure.
            if ws
                .send(Message::text(json!({"id": v["id"]}).to_string()))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let toml = r#"name = "hostile-captures"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/id"
[[phases]]
clients = 1
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
capture = { token = "/token" }
[[steps]]
sleep = "100ms"
[[on_message]]
match = { pointer = "/type", exists = true }
capture = { kind = "/type" }
count = "kind_{{/type}}"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    assert!(c.answered >= 3, "{c:?}");
    assert_eq!(c.capture_failures, c.answered, "{c:?}");
    assert_eq!(
        r.summary.counters.get("kind_x").copied(),
        Some(c.answered),
        "{:?}",
        r.summary.counters
    );
    assert_eq!(c.drops, 0, "{:?}", r.summary.drops);
}

/// What the server writes after the client's close frame left (and before the server read
/// it) still reaches the client: its pushes are counted and go through the rules, which send
/// nothing more (a send after a close frame would break the protocol). The server writes them
/// while it is not reading, so the order is certain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_after_the_clients_close_frame_are_still_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new((Vec::<String>::new(), None::<u16>)));
    let shared = seen.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // The run lasts 300 ms; the client's close is on its way by the time these leave.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        for m in [r#"{"type":"news"}"#, r#"{"type":"news"}"#, r#"{"type":"ping"}"#] {
            ws.send(Message::text(m)).await.unwrap();
        }
        while let Some(Ok(m)) = ws.next().await {
            let mut s = shared.lock().unwrap();
            match m {
                Message::Text(t) => s.0.push(t.to_string()),
                Message::Close(f) => s.1 = Some(f.map_or(1005, |f| u16::from(f.code))),
                _ => {}
            }
        }
    });
    let toml = r#"name = "after-close"
target = "embedded"
duration = "300ms"
[[phases]]
clients = 1
[[steps]]
sleep = "50ms"
[[on_message]]
match = { pointer = "/type", equals = "news" }
count = "news"
[[on_message]]
match = { pointer = "/type", equals = "ping" }
send = '{"type":"pong"}'
count = "pings"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    let s = seen.lock().unwrap();
    assert_eq!(s.1, Some(1000), "the client closed normally");
    assert!(s.0.is_empty(), "nothing is sent after the close frame: {:?}", s.0);
    assert_eq!(
        r.summary.counters.get("news").copied(),
        Some(2),
        "{:?}",
        r.summary.counters
    );
    assert_eq!(r.summary.counters.get("pings").copied(), Some(1));
    assert_eq!(c.pushes, 3, "{c:?}");
    assert_eq!((c.drops, c.messages_sent), (0, 0), "{c:?}");
}

/// A rule that captures and drops the connection on the same message: what its captures did
/// not find is still counted (it went with the dropped connection before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_capture_failures_count_when_it_drops_the_connection() {
    let addr = crate::support::answering_server(&[r#"{"type":"fatal"}"#], |_| Vec::new()).await;
    let toml = r#"name = "fatal"
target = "ws://127.0.0.1:9/"
duration = "1s"
[reconnect]
strategy = "constant"
initial = "50ms"
[[phases]]
clients = 2
[[steps]]
sleep = "100ms"
[[on_message]]
match = { pointer = "/type", equals = "fatal" }
capture = { why = "/reason" }
drop = "stomp_error"
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    let drops = r.summary.drops.get("stomp_error").copied().unwrap_or(0);
    assert!(drops >= 2, "{c:?} {:?}", r.summary.drops);
    // One failure a fatal message; one more a client at most, for a message read after its
    // own close frame left at the end (counted by the rule, no drop: it was closing).
    assert!(
        (drops..=drops + 2).contains(&c.capture_failures),
        "{} failures, {drops} drops",
        c.capture_failures
    );
}
