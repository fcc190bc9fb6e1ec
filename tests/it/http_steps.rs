//! HTTP steps (issue 17): a login over HTTP before every connect attempt, whose token the
//! upgrade sends; a 401 that makes the setup run again; publish over REST and receive over the
//! socket, timed from the HTTP request to the push. Against an HTTP server (hyper) and a
//! WebSocket server that share their state, both on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use crate::support::{assert_requests_reconcile, plan, run};

#[derive(Default)]
struct World {
    logins: u64,
    /// Tokens given and not yet used (every third login's is refused: "expired").
    tokens: Vec<String>,
    upgrades: u64,
    unauthorized: u64,
    publishes: u64,
    /// Pushes written to a socket.
    pushed: u64,
    /// Each connected client's way to its socket.
    sockets: HashMap<u64, mpsc::UnboundedSender<Message>>,
}

type Shared = Arc<Mutex<World>>;

/// POST /login → {"token":…}; POST /publish {"client":N} → a push on that client's socket.
async fn http_server(world: Shared) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let world = world.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let world = world.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let (status, reply) = {
                            let mut w = world.lock().unwrap();
                            match path.as_str() {
                                "/login" => {
                                    w.logins += 1;
                                    let token = if w.logins.is_multiple_of(3) {
                                        "expired".to_string()
                                    } else {
                                        format!("tok-{}", w.logins)
                                    };
                                    w.tokens.push(token.clone());
                                    (200, json!({"token": token}))
                                }
                                "/publish" => {
                                    w.publishes += 1;
                                    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                                    let client = v["client"].as_u64().unwrap_or(u64::MAX);
                                    let sent = w.sockets.get(&client).is_some_and(|tx| {
                                        tx.send(Message::text(json!({"type": "event"}).to_string()))
                                            .is_ok()
                                    });
                                    (202, json!({"pushed": sent}))
                                }
                                _ => (404, json!({})),
                            }
                        };
                        let response = hyper::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(reply.to_string())))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// The WebSocket server: an upgrade must carry a token the login gave and not yet used (401
/// else, and for "expired"); the client's number comes in the query. Each connection ends
/// after 400 ms (close 1012), so clients connect (and log in) again.
async fn ws_server(world: Shared) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let world = world.clone();
            tokio::spawn(async move {
                let mut client = None;
                // The error type is fixed by tungstenite's callback trait.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                    let token = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or("")
                        .to_string();
                    let mut w = world.lock().unwrap();
                    let at = w.tokens.iter().position(|t| *t == token);
                    match at {
                        Some(i) if token != "expired" => {
                            w.tokens.remove(i);
                            w.upgrades += 1;
                            client = req
                                .uri()
                                .query()
                                .and_then(|q| q.strip_prefix("client="))
                                .and_then(|c| c.parse::<u64>().ok());
                            Ok(resp)
                        }
                        _ => {
                            w.unauthorized += 1;
                            let mut e = ErrorResponse::new(Some("token".into()));
                            *e.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                            Err(e)
                        }
                    }
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                let (out, mut outq) = mpsc::unbounded_channel::<Message>();
                if let Some(c) = client {
                    world.lock().unwrap().sockets.insert(c, out.clone());
                }
                let end = tokio::time::sleep(std::time::Duration::from_millis(400));
                tokio::pin!(end);
                loop {
                    tokio::select! {
                        _ = &mut end => {
                            let _ = tx.send(Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                                code: 1012.into(),
                                reason: "".into(),
                            }))).await;
                            break;
                        }
                        // A push counts once it is written (one queued when the connection
                        // ends never left).
                        m = outq.recv() => match m {
                            Some(m) => {
                                if tx.send(m).await.is_err() { break }
                                world.lock().unwrap().pushed += 1;
                            }
                            None => break,
                        },
                        m = rx.next() => if !matches!(m, Some(Ok(_))) { break },
                    }
                }
                if let Some(c) = client {
                    world.lock().unwrap().sockets.remove(&c);
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_login_precedes_every_connect_and_a_401_runs_it_again() {
    let world = Shared::default();
    let http = http_server(world.clone()).await;
    let ws = ws_server(world.clone()).await;
    let toml = format!(
        r#"name = "http"
target = "embedded"
duration = "2s"
[connect]
headers = {{ Authorization = "Bearer {{{{var.token}}}}" }}
[reconnect]
strategy = "constant"
initial = "50ms"
[[reconnect.on]]
causes = ["http_401"]
action = "setup"
[[phases]]
clients = 3
[[setup]]
name = "Login"
http = {{ method = "POST", url = "http://{http}/login", body = '{{"user":{{{{client}}}}}}' }}
capture = {{ token = "/token" }}
[[steps]]
name = "Publish"
http = {{ method = "POST", url = "http://{http}/publish", body = '{{"client":{{{{client}}}}}}', expect_status = [202] }}
[[steps]]
sleep = "50ms"
[[on_message]]
match = {{ pointer = "/type", equals = "event" }}
count = "events"
since = "Publish"
[thresholds]
http_errors = ["count == 0"]
"push_latency{{step=Publish}}" = ["p(99) < 1s"]
"#
    );
    let p = plan(&toml, &format!("ws://{ws}/?client={{{{client}}}}"));
    let shown = p.to_string();
    assert!(shown.contains("1. http  [Login] POST http://"), "{shown}");
    let (r, _dir) = run(p).await;
    let w = world.lock().unwrap();
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    // Every connect attempt logged in first: one login per upgrade tried.
    assert_eq!(
        w.logins,
        w.upgrades + w.unauthorized,
        "logins {} upgrades {} 401s {}",
        w.logins,
        w.upgrades,
        w.unauthorized
    );
    assert!(w.unauthorized > 0, "every third token is refused");
    assert_eq!(c.connects, w.upgrades);
    assert_eq!(r.summary.connect_errors["http_401"], w.unauthorized);
    assert_eq!((c.stopped, c.gave_up), (0, 0), "{c:?}");
    // Publish over HTTP, receive over the socket, timed from the request to the push.
    let publish = &r.summary.by_step["Publish"];
    let login = &r.summary.by_step["Login"];
    assert_eq!(login.counts.answered, w.logins);
    assert_eq!(publish.counts.requests, w.publishes);
    assert_eq!(c.http_requests, w.logins + w.publishes);
    assert_eq!(c.http_errors, 0, "{:?}", r.summary.http_errors);
    assert!(w.pushed > 10, "pushed {}", w.pushed);
    let events = r.summary.counters["events"];
    assert_eq!(events, w.pushed, "every push reached the rule");
    let after = publish.after.as_ref().expect("a publish-to-push latency");
    assert!(after.count > 0 && after.count <= events, "{after:?}");
    assert!(
        r.summary.thresholds.iter().all(|t| t.passed),
        "{:?}",
        r.summary.thresholds
    );
}

/// An HTTP setup that fails (a status not expected) fails the attempt as http_setup; its
/// errors are counted by status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_http_setup_fails_the_attempt() {
    let world = Shared::default();
    let http = http_server(world.clone()).await;
    let target = crate::support::server(wsstorm::scenario::Behaviour::default()).await;
    let toml = format!(
        r#"name = "http-fail"
target = "embedded"
duration = "1s"
[reconnect]
max_attempts = 2
initial = "10ms"
[[phases]]
clients = 2
[[setup]]
http = {{ url = "http://{http}/nothing-here" }}
[[steps]]
sleep = "50ms"
"#
    );
    let (r, _dir) = run(plan(&toml, &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(seen.connections, 0, "nothing connected: {seen:?}");
    assert_eq!(c.gave_up, 2);
    assert_eq!(r.summary.connect_errors["http_setup"], 4);
    assert_eq!(r.summary.http_errors["http_404"], 4);
}

/// An HTTP step still under way when the run stops is awaited like a reply, so the server's
/// count of requests is the tool's (the CI once saw 112 publishes counted for 113 received).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_step_under_way_at_the_stop_is_awaited_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Slow: every request is still under way when the 300 ms run stops.
                tokio::time::sleep(std::time::Duration::from_millis(600)).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .await;
            });
        }
    });
    let target = crate::support::server(wsstorm::scenario::Behaviour::default()).await;
    let toml = format!(
        r#"name = "http-slow"
target = "embedded"
duration = "300ms"
[[phases]]
clients = 3
[[steps]]
name = "Slow"
http = {{ url = "http://{http}/slow" }}
"#
    );
    let (r, _dir) = run(plan(&toml, &target.url())).await;
    let slow = &r.summary.by_step["Slow"].counts;
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(got, 3, "one request a client");
    assert_eq!((slow.requests, slow.answered), (got, got), "{slow:?}");
    assert_eq!(r.totals.counts.http_requests, got);
}
