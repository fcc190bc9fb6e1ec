//! The Socket.IO preset (issue 18): the open packet and a namespace connect as setup, the
//! Engine.IO heartbeat answered, `emit` steps with acknowledgements correlated, events counted
//! by name. Against python-socketio (which no one here wrote) and the built-in target.

use wsstorm::scenario::{Behaviour, Protocol};

use crate::support::{ThirdParty, assert_requests_reconcile, plan, run};

/// Against python-socketio's AsyncServer: a namespace with auth, acks, rooms, events, and a
/// 200 ms heartbeat that drops a client that does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_namespaces_acks_rooms_and_events_reconcile() {
    let test = "python_socketio_namespaces_acks_rooms_and_events_reconcile";
    let Some(server) = ThirdParty::start(test, "socketio", "socketio_server.py", &[]) else {
        return;
    };
    let toml = r#"name = "socketio"
target = "embedded"
duration = "2s"
[connect]
protocol = "socketio"
socketio = { namespace = "/chat", auth = '{"token":"t{{client}}"}' }
[[phases]]
clients = 4
[[setup]]
name = "Join"
emit = ["join", { room = "room-{{client}}" }]
ack = true
checks = [{ pointer = "/0/joined", matches = "^room-[0-9]+$" }]
[[steps]]
name = "Chat"
emit = ["chat message", { text = "hi" }]
ack = true
checks = [{ pointer = "/0/echo/text", equals = "hi" }]
[[steps]]
name = "News"
emit = ["ping me"]
ack = true
[[steps]]
sleep = "10ms"
"#;
    let p = plan(toml, &format!("ws://127.0.0.1:{}", server.port));
    let shown = p.to_string();
    assert!(shown.contains("/socket.io/?EIO=4&transport=websocket"), "{shown}");
    assert!(
        shown.contains(r#"send  40/chat,{"token":"t{{client}}"}"#),
        "{shown}"
    );
    let (r, _dir) = run(p).await;
    let seen = server.finish();
    let c = &r.totals.counts;
    let counted = &r.summary.counters;
    let by = |name: &str| r.summary.by_step[name].counts;
    assert_requests_reconcile(&r);
    assert_eq!(
        (c.timeouts, c.unmatched, c.lost, c.drops),
        (0, 0, 0, 0),
        "{c:?} {seen}"
    );
    assert_eq!(c.connects, 4);
    assert_eq!(seen["connects"], 4, "{seen}");
    assert_eq!(
        seen["auth"][0]["token"].as_str().map(|t| t.starts_with('t')),
        Some(true),
        "{seen}"
    );
    assert_eq!(by("Join").answered, seen["joins"].as_u64().unwrap());
    assert_eq!(by("Chat").answered, seen["chats"].as_u64().unwrap(), "{seen}");
    assert_eq!(c.check_failures, 0, "{c:?}");
    let news = seen["news"].as_u64().unwrap();
    assert!(news > 20, "{seen}");
    assert_eq!(by("News").answered, news);
    assert_eq!(
        counted["socketio_event_news"], news,
        "every event reached the client: {counted:?}"
    );
    // The heartbeat ran (every 200 ms) and every ping was answered: no client was dropped.
    assert!(counted["socketio_pings"] >= 4 * 5, "{counted:?}");
    let reasons = seen["disconnects"].as_object().unwrap();
    // The tool closes the WebSocket at the end (no `41` first): "transport close", never
    // "ping timeout".
    assert_eq!(
        reasons.get("transport close").and_then(|n| n.as_u64()),
        Some(4),
        "{seen}"
    );
    assert_eq!(reasons.len(), 1, "{seen}");
}

/// The built-in target speaks the subset the quick start uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_target_speaks_socketio() {
    let target = crate::support::server(Behaviour {
        protocol: Some(Protocol::Socketio),
        ping_every: Some(std::time::Duration::from_millis(100)),
        ..Default::default()
    })
    .await;
    let toml = r#"name = "socketio-builtin"
target = "embedded"
duration = "1s"
[connect]
protocol = "socketio"
[[phases]]
clients = 3
[[steps]]
name = "Say"
emit = ["say", { n = 1 }]
ack = true
checks = [{ pointer = "/0/n", equals = 1 }]
[[steps]]
emit = ["shout", "hey"]
[[steps]]
sleep = "10ms"
"#;
    let (r, _dir) = run(plan(toml, &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    let counted = &r.summary.counters;
    assert_requests_reconcile(&r);
    assert_eq!(
        (c.timeouts, c.unmatched, c.drops, c.check_failures),
        (0, 0, 0, 0),
        "{c:?}"
    );
    let said = r.summary.by_step["Say"].counts.answered;
    assert!(said > 10, "{c:?}");
    // Each `shout` comes back as an event; the acks are replies, not events.
    assert_eq!(
        counted["socketio_event_shout"] + said + 3,
        seen.answered,
        "{counted:?} {seen:?}"
    );
    // Every ping the server sent was read; each was answered but one that came after the
    // client's close frame (at most one a connection: the heartbeat is every 100 ms).
    let pings = counted["socketio_pings"];
    assert_eq!(seen.pings_sent, pings, "{seen:?}");
    assert!(
        seen.pongs_received <= pings && pings - seen.pongs_received <= c.connects,
        "{seen:?}"
    );
    assert!(seen.pings_sent >= 3 * 5, "{seen:?}");
}

/// Mistakes in Socket.IO steps are located; a server that speaks something else fails the
/// connect attempts (no open packet), it is not a pile of timeouts.
#[test]
fn socketio_mistakes_are_located() {
    let cases = [
        (
            "[[steps]]\nemit = [\"a\"]\n",
            "`emit` and `ack` are Socket.IO steps",
        ),
        (
            "[connect]\nprotocol = \"socketio\"\n[[steps]]\nemit = [1]\n",
            "emit: expected the event's name first",
        ),
        (
            "[connect]\nprotocol = \"socketio\"\n[[steps]]\nemit = [\"a\"]\nexpect = \"response\"\n",
            "an event without `ack = true` has no reply",
        ),
        (
            "[connect]\nprotocol = \"socketio\"\nsocketio = { namespace = \"chat\" }\n",
            "connect.socketio.namespace: \"chat\": expected a path such as \"/chat\"",
        ),
        (
            "[connect]\nprotocol = \"jsonrpc\"\nsocketio = { namespace = \"/chat\" }\n",
            "[connect.socketio] applies to Socket.IO",
        ),
        (
            "[connect]\nprotocol = \"jsonrpc\"\n[[steps]]\nemit = [\"a\"]\n",
            "`emit` and `ack` are Socket.IO steps",
        ),
        // Review of the presets, finding 8: located at the `ack` (it was at 0..0, no line).
        (
            "[connect]\nprotocol = \"socketio\"\n[[steps]]\nack = true\n",
            "test.toml:8:7: steps[0]: `ack` without `emit`",
        ),
    ];
    for (tail, want) in cases {
        let toml = format!("name = \"m\"\ntarget = \"ws://127.0.0.1:1/\"\n[[phases]]\nclients = 1\n{tail}");
        let e = crate::support::refused(&toml);
        assert!(e.contains(want), "{toml}\n---\n{e}\n--- wanted: {want}");
    }
}

/// The preset against servers that speak something else: one that says nothing (the echo
/// target) and one that greets otherwise. Each attempt is a `protocol_mismatch` drop that says
/// what was expected and what came; nothing is sent. The greeting that was not the open
/// packet is a message received (review of the presets, finding 3: it was not counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_speaks_another_protocol_is_a_protocol_mismatch() {
    use futures_util::SinkExt;
    let echo = crate::support::server(Behaviour::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let greeter = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let hello = tokio_tungstenite::tungstenite::Message::text(r#"{"type":"welcome"}"#);
                let _ = ws.send(hello).await;
                while let Some(Ok(_)) = futures_util::StreamExt::next(&mut ws).await {}
            });
        }
    });
    let toml = r#"name = "mismatch"
target = "embedded"
duration = "1s"
[connect]
protocol = "socketio"
timeout = "200ms"
[reconnect]
strategy = "constant"
initial = "100ms"
[[phases]]
clients = 2
[[steps]]
emit = ["a"]
ack = true
"#;
    for (url, said) in [
        (echo.url(), "none came within 200ms".to_string()),
        (
            format!("ws://{greeter}/"),
            r#"got "{\"type\":\"welcome\"}""#.to_string(),
        ),
    ] {
        let (r, _dir) = run(plan(toml, &url)).await;
        let c = &r.totals.counts;
        assert!(r.summary.drops["protocol_mismatch"] >= 2, "{:?}", r.summary.drops);
        assert_eq!((c.requests, c.timeouts), (0, 0), "{c:?}");
        let why = &r.summary.drop_reasons["protocol_mismatch"];
        assert!(why.contains("matches /^0\\{/") && why.contains(&said), "{why}");
        // The greeter's one message a connection ended it (unless, on a busy machine, it came
        // after the 200 ms, or as the run ended: then the connection closed rather than
        // dropped); the echo target sent none.
        let mismatched = r.summary.drops["protocol_mismatch"];
        if said.starts_with("got") {
            assert!(
                c.messages_received >= 1 && c.messages_received <= mismatched + c.closes,
                "{c:?}"
            );
        } else {
            assert_eq!(c.messages_received, 0, "{c:?}");
        }
    }
    assert_eq!(echo.shutdown().await.received, 0, "nothing was sent");
}

/// A server whose heartbeat stops (it announces 100 ms + 100 ms, pings three times, then
/// goes quiet but keeps the connection) is a `server_ping_timeout` drop, and the client
/// connects again; while it pings, nothing is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_pinging_is_a_drop_of_its_own() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pongs = std::sync::Arc::new(AtomicU64::new(0));
    let counted = pongs.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let pongs = counted.clone();
            tokio::spawn(async move {
                let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let (mut tx, mut rx) = ws.split();
                let open =
                    r#"0{"sid":"x","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000000}"#;
                if tx.send(Message::text(open)).await.is_err() {
                    return;
                }
                let mut pings = 0;
                let mut ticker = tokio::time::interval(std::time::Duration::from_millis(100));
                ticker.tick().await;
                loop {
                    tokio::select! {
                        m = rx.next() => match m {
                            Some(Ok(Message::Text(t))) if t.as_str() == "40" => {
                                if tx.send(Message::text(r#"40{"sid":"y"}"#)).await.is_err() { return; }
                            }
                            Some(Ok(Message::Text(t))) if t.as_str() == "3" => {
                                pongs.fetch_add(1, Relaxed);
                            }
                            Some(Ok(_)) => {}
                            _ => return,
                        },
                        _ = ticker.tick(), if pings < 3 => {
                            pings += 1;
                            if tx.send(Message::text("2")).await.is_err() { return; }
                        }
                    }
                }
            });
        }
    });
    let toml = r#"name = "quiet"
target = "embedded"
duration = "2s"
[connect]
protocol = "socketio"
[reconnect]
strategy = "constant"
initial = "50ms"
[[phases]]
clients = 1
[[steps]]
sleep = "20ms"
"#;
    let p = plan(toml, &format!("ws://{addr}/"));
    assert!(
        p.to_string()
            .contains("within {{var.sio_ping_interval}} ms + {{var.sio_ping_timeout}} ms"),
        "{p}"
    );
    let (r, _dir) = run(p).await;
    let c = &r.totals.counts;
    // Each connection: open at 0, pings at ~100, 200, 300 ms, then nothing: dropped at ~500 ms
    // (every one but perhaps the last, which the end of the run may close first).
    let dropped = r.summary.drops.get("server_ping_timeout").copied().unwrap_or(0);
    assert!(
        dropped >= 2 && c.connects - dropped <= 1,
        "{:?} {c:?}",
        r.summary.drops
    );
    assert_eq!(c.drops, dropped, "no other cause: {:?}", r.summary.drops);
    let pings = r.summary.counters["socketio_pings"];
    assert!(pings <= 3 * c.connects, "{c:?}");
    // Every ping answered, but one the run's end may have met after the client's close frame.
    let answered = pongs.load(Relaxed);
    assert!(
        answered <= pings && pings - answered <= 1,
        "{answered} of {pings}"
    );
    let why = &r.summary.drop_reasons["server_ping_timeout"];
    // pingInterval + pingTimeout, as the open packet announced them.
    assert!(
        why.contains("came in time: none within 200ms of the one before"),
        "{why}"
    );
}

/// The preset's handshake goes into every socket's setup (validate once panicked on it), and
/// the built-in target pings at Socket.IO's default 25 s when no ping interval is given, as
/// its open packet announces (else the client's heartbeat check would drop it after 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_shakes_hands_and_the_built_in_target_keeps_its_heartbeat_promise() {
    let behaviour = Behaviour {
        protocol: Some(Protocol::Socketio),
        ..Default::default()
    };
    assert_eq!(
        behaviour.ping_interval(),
        Some(std::time::Duration::from_secs(25))
    );
    let target = crate::support::server(behaviour).await;
    let toml = r#"name = "sockets"
target = "embedded"
duration = "1s"
[connect]
protocol = "socketio"
[[phases]]
clients = 2
[[sockets]]
name = "main"
path = "/socket.io/?EIO=4&transport=websocket"
[[sockets.steps]]
emit = ["a"]
ack = true
[[sockets.steps]]
sleep = "20ms"
[[sockets]]
name = "chat"
path = "/socket.io/?EIO=4&transport=websocket&room=chat"
[[sockets.steps]]
emit = ["b"]
ack = true
[[sockets.steps]]
sleep = "20ms"
"#;
    let (r, _dir) = run(plan(toml, &target.url())).await;
    let seen = target.shutdown().await;
    let c = &r.totals.counts;
    assert_requests_reconcile(&r);
    assert_eq!((c.connects, c.drops, c.timeouts), (4, 0, 0), "{c:?}");
    assert!(
        r.summary.by_socket["chat"].counts.answered > 0,
        "{:?}",
        r.summary.by_socket
    );
    assert_eq!(seen.connections, 4);
}

/// Review of the presets, finding 11: the namespace's refusal, a CONNECT_ERROR packet
/// (`44{"message":…}`), is a drop of its own, `socketio_connect_error`, with the server's
/// packet as its reason (it was a `protocol_mismatch`), and a message received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_namespace_connect_is_a_socketio_connect_error() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refusals = Arc::new(AtomicU64::new(0));
    let counted = refusals.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let refusals = counted.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let open = r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
                if ws.send(Message::text(open)).await.is_err() {
                    return;
                }
                while let Some(Ok(m)) = ws.next().await {
                    if m.to_text().is_ok_and(|t| t.starts_with("40")) {
                        let no = Message::text(r#"44{"message":"not authorized"}"#);
                        if ws.send(no).await.is_err() {
                            return;
                        }
                        refusals.fetch_add(1, Relaxed);
                    }
                }
            });
        }
    });
    let toml = r#"name = "refused"
target = "embedded"
duration = "1s"
[connect]
protocol = "socketio"
[reconnect]
strategy = "constant"
initial = "50ms"
[[phases]]
clients = 2
[[steps]]
emit = ["a"]
ack = true
"#;
    let (r, _dir) = run(plan(toml, &format!("ws://{addr}/"))).await;
    let c = &r.totals.counts;
    let refused = r
        .summary
        .drops
        .get("socketio_connect_error")
        .copied()
        .unwrap_or(0);
    assert!(refused >= 2, "{:?}", r.summary.drops);
    assert_eq!(c.drops, refused, "no other cause: {:?}", r.summary.drops);
    assert_eq!(c.requests, 0, "{c:?}");
    // A refusal read after the client's own close frame left (the run's end) is counted, but
    // the connection was closing already: no drop. One a client at most.
    let counted = r.summary.counters["socketio_connect_errors"];
    assert!(
        refused <= counted && counted <= refused + 2,
        "{counted} {refused}"
    );
    let sent = refusals.load(Relaxed);
    assert!(refused <= sent && sent <= refused + 2, "{sent} {refused}");
    // The open packet and the refusal, a connection.
    assert!(
        c.messages_received >= 2 * refused && c.messages_received <= 2 * refused + 2,
        "{c:?}"
    );
    let why = &r.summary.drop_reasons["socketio_connect_error"];
    assert!(why.contains(r#"44{"message":"not authorized"}"#), "{why}");
}

/// Messages that are no Engine.IO packet, or a message with no Socket.IO packet in it, are
/// counted as protocol errors (the server's own malformed packets: three on each connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_are_counted_as_protocol_errors() {
    let addr = crate::support::answering_server(
        &[r#"0{"sid":"s","pingInterval":25000,"pingTimeout":20000}"#],
        |text| match text {
            "40" => ["40{\"sid\":\"n\"}", "9bad", "4", "47[\"x\"]", "42[\"ok\"]"]
                .map(String::from)
                .to_vec(),
            _ => Vec::new(),
        },
    )
    .await;
    let toml = r#"name = "malformed"
target = "embedded"
duration = "600ms"
[connect]
protocol = "socketio"
[[phases]]
clients = 2
[[steps]]
sleep = "100ms"
"#;
    let (r, _dir) = crate::support::run(crate::support::plan(toml, &format!("ws://{addr}"))).await;
    let c = &r.summary.counters;
    let connects = r.totals.counts.connects;
    assert_eq!(connects, 2, "{:?}", r.totals.counts);
    assert_eq!(c["socketio_protocol_errors"], 3 * connects, "{c:?}");
    assert_eq!(r.summary.counter_examples["socketio_protocol_errors"], "9bad");
    assert_eq!(c["socketio_event_ok"], connects, "{c:?}");
}
