//! The GraphQL over WebSocket preset (issue 18, graphql-transport-ws): connection_init and
//! its ack, subscriptions as streams of `next` until `complete`, errors as check failures,
//! the server's refusal as its close code. Against the npm `graphql-ws` server on `ws` with
//! `graphql` (none of them ours), and the built-in target.

use wsstorm::scenario::{Behaviour, Protocol};

use crate::support::{ThirdParty, assert_requests_reconcile, plan, run};

const SCENARIO: &str = r#"name = "graphql"
target = "embedded"
duration = "1500ms"
[connect]
protocol = "graphql-ws"
graphql_init = '{"token":"t{{client}}"}'
[[phases]]
clients = 3
[[steps]]
name = "Countdown"
subscribe = { query = "subscription ($from: Int!) { countdown(from: $from) }", variables = { from = 5 } }
[[steps]]
name = "Boom"
subscribe = { query = "subscription { boom }" }
[[steps]]
name = "Invalid"
subscribe = { query = "subscription { nope }" }
[[steps]]
sleep = "10ms"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_subscriptions_streams_and_errors_reconcile() {
    let test = "graphql_ws_subscriptions_streams_and_errors_reconcile";
    let Some(server) = ThirdParty::node(test, "graphql-ws", "graphql_ws.js", &[]) else {
        return;
    };
    let p = plan(SCENARIO, &format!("ws://127.0.0.1:{}/", server.port));
    let shown = p.to_string();
    assert!(
        shown.contains(r#"send  {"type":"connection_init","payload":{"token":"t{{client}}"}}"#),
        "{shown}"
    );
    assert!(shown.contains("graphql-transport-ws"), "{shown}");
    let (r, _dir) = run(p).await;
    let seen = server.finish();
    let c = &r.totals.counts;
    let by = |name: &str| r.summary.by_step[name].counts;
    assert_requests_reconcile(&r);
    assert_eq!(
        (c.timeouts, c.unmatched, c.lost, c.drops),
        (0, 0, 0, 0),
        "{c:?} {seen}"
    );
    assert_eq!(c.connects, seen["connections"].as_u64().unwrap(), "{seen}");
    assert_eq!(seen["acks"], seen["connections"], "{seen}");
    assert_eq!(c.requests, seen["subscribes"].as_u64().unwrap(), "{seen}");
    // Five `next` a countdown, then `complete`: the parts are the server's nexts.
    let countdowns = by("Countdown").answered;
    assert!(countdowns > 5, "{c:?}");
    assert_eq!(5 * countdowns, seen["nexts"].as_u64().unwrap(), "{seen}");
    assert_eq!(by("Countdown").check_failures, 0);
    // `boom` throws: one `next` carrying `errors` (an execution error, counted), then complete.
    let booms = by("Boom").answered;
    assert_eq!(by("Boom").check_failures, 0, "{c:?}");
    assert_eq!(r.summary.counters["graphql_errors"], booms);
    assert_eq!(c.stream_parts, 5 * countdowns + booms, "{c:?}");
    // `nope` is no field: the server refuses the operation with `error`, a check failure.
    let invalid = by("Invalid").answered;
    assert!(invalid > 0);
    assert_eq!(by("Invalid").check_failures, invalid, "{c:?}");
    assert_eq!(r.summary.counters["graphql_operation_errors"], invalid);
    // Every message the real server sent is one graphql-transport-ws has.
    assert_eq!(
        r.summary.counters.get("graphql_protocol_errors"),
        None,
        "{:?}",
        r.summary.counters
    );
    // Every stream is timed to its first reply (an `error` alone is its first and last).
    assert_eq!(r.totals.rtt_first.count(), countdowns + booms + invalid);
}

/// Without the token in connection_init the server refuses with 4403: a drop by that code,
/// no request sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_refusal_is_its_close_code() {
    let test = "graphql_ws_refusal_is_its_close_code";
    let Some(server) = ThirdParty::node(test, "graphql-ws", "graphql_ws.js", &[]) else {
        return;
    };
    let toml = SCENARIO.replace("graphql_init = '{\"token\":\"t{{client}}\"}'\n", "");
    let (r, _dir) = run(plan(&toml, &format!("ws://127.0.0.1:{}/", server.port))).await;
    let seen = server.finish();
    let c = &r.totals.counts;
    assert_eq!(c.requests, 0, "{c:?}");
    assert!(r.summary.drops["close_4403"] >= 3, "{:?}", r.summary.drops);
    assert_eq!(seen["refused"], seen["connections"], "{seen}");
}

/// The built-in target: each subscribe answered with `--batch` nexts, then complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_target_speaks_graphql_ws() {
    let target = crate::support::server(Behaviour {
        protocol: Some(Protocol::GraphqlWs),
        batch: 3,
        ..Default::default()
    })
    .await;
    let (r, _dir) = run(plan(SCENARIO, &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!(
        (c.timeouts, c.unmatched, c.drops, c.check_failures),
        (0, 0, 0, 0),
        "{c:?}"
    );
    assert_eq!(c.stream_parts, 3 * c.answered, "{c:?}");
    // An ack a connection, four messages a subscription.
    assert_eq!(seen.answered, c.connects + 4 * c.answered, "{seen:?} {c:?}");
}

/// Review of the presets, finding 4: the built-in target's GraphQL honours its latency and
/// its withheld replies, as its other protocols do: a subscribe's answers come after the
/// latency, and every third message the server receives goes unanswered (a stream that
/// times out; the server's count of withheld answers is the tool's of timeouts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_graphql_target_keeps_its_latency_and_withholds_replies() {
    let target = crate::support::server(Behaviour {
        protocol: Some(Protocol::GraphqlWs),
        batch: 2,
        latency: std::time::Duration::from_millis(50),
        no_reply_every: Some(3),
        ..Default::default()
    })
    .await;
    let toml = r#"name = "graphql-behaviour"
target = "embedded"
duration = "2s"
[connect]
protocol = "graphql-ws"
[correlation]
timeout = "300ms"
[[phases]]
clients = 1
[[steps]]
name = "Count"
subscribe = { query = "subscription { n }" }
"#;
    let (r, _dir) = run(plan(toml, &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    // Messages 1 (connection_init), 2 and then 4, 5, 7, 8… are answered; 3, 6, 9… are not.
    assert_eq!((c.connects, c.drops, c.check_failures), (1, 0, 0), "{c:?}");
    assert!(c.answered >= 2 && c.timeouts >= 1, "{c:?}");
    assert_eq!(seen.received, 1 + c.requests, "{seen:?} {c:?}");
    assert!(
        seen.withheld >= c.timeouts && seen.withheld <= c.timeouts + 1,
        "the last may be under way at the end: {seen:?} {c:?}"
    );
    assert_eq!(seen.withheld, seen.received / 3, "{seen:?}");
    assert_eq!(c.stream_parts, 2 * c.answered, "{c:?}");
    // rtt is in µs; HDR rounds a value down by at most 0.1 %.
    let fastest = r.totals.rtt.min();
    assert!(
        fastest >= 49_900,
        "a stream's answer came before the latency: {fastest} µs"
    );
}

/// Review of the presets, finding 6: the handshake goes after the setup's leading HTTP steps
/// (it went before them, and validate refused the HTTP step there): a login whose token the
/// upgrade and `connection_init` send. The built-in target requires the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_follows_an_http_login() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = crate::support::server(Behaviour {
        protocol: Some(Protocol::GraphqlWs),
        require_token: Some("tok-7".into()),
        ..Default::default()
    })
    .await;
    // POST /login → {"token":"tok-7"}, one request a connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let logins = Arc::new(AtomicU64::new(0));
    let counted = logins.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let logins = counted.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"token":"tok-7"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                if tcp.write_all(response.as_bytes()).await.is_ok() {
                    logins.fetch_add(1, Relaxed);
                }
            });
        }
    });
    let toml = format!(
        r#"name = "login"
target = "embedded"
duration = "1s"
[connect]
protocol = "graphql-ws"
headers = {{ Authorization = "Bearer {{{{var.token}}}}" }}
graphql_init = '{{"token":"{{{{var.token}}}}"}}'
[[phases]]
clients = 2
[[setup]]
name = "Login"
http = {{ method = "POST", url = "http://{http}/login" }}
capture = {{ token = "/token" }}
[[steps]]
name = "Count"
subscribe = {{ query = "subscription {{ n }}" }}
[[steps]]
sleep = "20ms"
"#
    );
    let p = plan(&toml, &target.url());
    let shown = p.to_string();
    let login = shown.find("1. http  [Login] POST").expect(&shown);
    let init = shown
        .find(r#"send  {"type":"connection_init","payload":{"token":"{{var.token}}"}}"#)
        .expect(&shown);
    assert!(login < init, "{shown}");
    let (r, _dir) = run(p).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!((c.connects, c.drops, c.connect_errors), (2, 0, 0), "{c:?}");
    assert_eq!(seen.unauthorized, 0, "{seen:?}");
    assert_eq!(logins.load(Relaxed), 2);
    assert!(c.answered > 2, "{c:?}");
}

#[test]
fn graphql_mistakes_are_located() {
    let cases = [
        (
            "[[steps]]\nsubscribe = { query = \"x\" }\n",
            "`subscribe` is a GraphQL step",
        ),
        (
            "[connect]\nprotocol = \"graphql-ws\"\n[[steps]]\nsubscribe = { query = \" \" }\n",
            "subscribe.query is empty",
        ),
        (
            "[connect]\nprotocol = \"graphql-ws\"\n[[steps]]\nsubscribe = { query = \"x\" }\nexpect = \"response\"\n",
            "a subscription is a stream",
        ),
        (
            "[connect]\nprotocol = \"graphql-ws\"\n[[steps]]\nsubscribe = { query = \"x\", variabels = {} }\n",
            "unknown field `variabels`",
        ),
        // Review of the presets, finding 9: graphql_init without graphql-ws was ignored.
        (
            "[connect]\ngraphql_init = '{}'\n",
            "test.toml:7:16: connect.graphql_init applies to GraphQL over WebSocket: expected `[connect] protocol = \"graphql-ws\"`",
        ),
        (
            "[connect]\nprotocol = \"jsonrpc\"\ngraphql_init = '{}'\n",
            "connect.graphql_init applies to GraphQL over WebSocket",
        ),
    ];
    for (tail, want) in cases {
        let toml = format!(
            "name = \"m\"\ntarget = \"ws://127.0.0.1:1/\"\nduration = \"1s\"\n[[phases]]\nclients = 1\n{tail}"
        );
        let e = crate::support::refused(&toml);
        assert!(e.contains(want), "{toml}\n---\n{e}\n--- wanted: {want}");
    }
}

/// A message of no graphql-transport-ws type (the legacy protocol's `data`, or no JSON) is a
/// protocol error, the first kept as its example.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_no_known_type_are_protocol_errors() {
    let addr = crate::support::answering_server(&[], |text| {
        if text.contains("connection_init") {
            [
                r#"{"type":"connection_ack"}"#,
                "not json",
                r#"{"id":"1","type":"data"}"#,
                r#"{"type":"ping"}"#,
            ]
            .map(String::from)
            .to_vec()
        } else {
            Vec::new()
        }
    })
    .await;
    let toml = r#"name = "graphql-malformed"
target = "embedded"
duration = "600ms"
[connect]
protocol = "graphql-ws"
[[phases]]
clients = 2
[[steps]]
sleep = "100ms"
"#;
    let (r, _dir) = crate::support::run(crate::support::plan(toml, &format!("ws://{addr}"))).await;
    let (c, connects) = (&r.summary.counters, r.totals.counts.connects);
    assert_eq!(connects, 2, "{:?}", r.totals.counts);
    assert_eq!(c["graphql_protocol_errors"], 2 * connects, "{c:?}");
    assert_eq!(c["graphql_pings"], connects, "{c:?}");
    assert_eq!(r.summary.counter_examples["graphql_protocol_errors"], "not json");
}
