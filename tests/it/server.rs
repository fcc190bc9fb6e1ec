//! The built-in target's chaos behaviours against real clients on 127.0.0.1: scheduled closes
//! (close frame or reset), refused upgrades while "restarting", tokens, numbered pushes with
//! gaps and resumption, and the server-side heartbeat.

use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use wsstorm::cli::{Cli, Command};
use wsstorm::scenario::Behaviour;
use wsstorm::server::Server;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Timing slack for every assertion on when something happened.
const SLACK: Duration = Duration::from_millis(300);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn connect(server: &Server, path: &str) -> Result<Client, Error> {
    let url = format!("ws://{}{path}", server.addr);
    timeout(Duration::from_secs(2), connect_async(url))
        .await
        .expect("the upgrade is answered in time")
        .map(|(ws, _)| ws)
}

fn status(result: Result<Client, Error>) -> u16 {
    match result {
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP error response, got {e}"),
        Ok(_) => panic!("expected an HTTP error response, the upgrade succeeded"),
    }
}

/// Reads until the server's close frame; returns its code. Fails on anything else but data.
async fn close_code(ws: &mut Client) -> u16 {
    loop {
        match timeout(Duration::from_secs(3), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn assert_near(what: &str, actual: Duration, expected: Duration) {
    let diff = actual.abs_diff(expected);
    assert!(
        diff <= SLACK,
        "{what}: at {actual:?}, expected {expected:?} ± {SLACK:?}"
    );
}

#[tokio::test]
async fn close_at_sends_the_close_code_at_that_time() {
    let server = crate::support::server(Behaviour {
        close_at: vec![ms(700)],
        close_code: 4000,
        ..Behaviour::default()
    })
    .await;
    let mut ws = connect(&server, "/").await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    let code = close_code(&mut ws).await;
    assert_near("close", server.started().elapsed(), ms(700));
    assert_eq!(code, 4000);
    // The close handshake completes: the stream ends cleanly.
    assert!(matches!(timeout(SLACK, ws.next()).await, Ok(None)));
    let counts = server.shutdown().await;
    assert_eq!(counts.closed_by_schedule, 1, "{counts:?}");
    assert_eq!(counts.open, 0);
    assert_eq!(counts.answered, 1, "echo still works: {counts:?}");
}

#[tokio::test]
async fn close_every_closes_again_and_again_with_1012_by_default() {
    let server = crate::support::server(Behaviour {
        close_every: Some(ms(600)),
        ..Behaviour::default()
    })
    .await;
    for n in 1..=2u32 {
        let mut ws = connect(&server, "/").await.unwrap();
        assert_eq!(close_code(&mut ws).await, 1012, "service restart");
        assert_near("close", server.started().elapsed(), ms(600) * n);
    }
    let counts = server.shutdown().await;
    assert_eq!(counts.closed_by_schedule, 2, "{counts:?}");
}

#[tokio::test]
async fn close_by_reset_resets_without_a_close_frame() {
    let server = crate::support::server(Behaviour {
        close_at: vec![ms(500)],
        close_by_reset: true,
        ..Behaviour::default()
    })
    .await;
    let mut ws = connect(&server, "/").await.unwrap();
    let end = timeout(Duration::from_secs(3), ws.next())
        .await
        .expect("reset in time");
    assert_near("reset", server.started().elapsed(), ms(500));
    match end {
        Some(Err(Error::Io(e))) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        other => panic!("expected a connection reset, got {other:?}"),
    }
    let counts = server.shutdown().await;
    assert_eq!(counts.closed_by_schedule, 1, "{counts:?}");
}

#[tokio::test]
async fn refuse_for_answers_503_during_the_window_only() {
    let server = crate::support::server(Behaviour {
        close_at: vec![ms(300)],
        refuse_for: ms(1000),
        ..Behaviour::default()
    })
    .await;
    let mut ws = connect(&server, "/").await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1012);
    // Reconnecting at once, as clients do after a restart: refused.
    match connect(&server, "/").await {
        Err(Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected 503, got {:?}", other.map(|_| "an upgrade")),
    }
    assert_near("refused", server.started().elapsed(), ms(300));
    sleep(ms(400)).await;
    assert_eq!(
        status(connect(&server, "/").await),
        503,
        "still inside the window"
    );
    // After the window (it ends 1 s after the close, at about 1.3 s): accepted again.
    sleep_until(server.started() + ms(1300) + SLACK).await;
    let _ws = connect(&server, "/").await.expect("accepted after the window");
    let accepted = server.accept_times();
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert!(accepted[0] < ms(300), "{accepted:?}");
    assert!(accepted[1] >= ms(1300), "{accepted:?}");
    let counts = server.shutdown().await;
    assert_eq!(counts.refused, 2, "{counts:?}");
    assert_eq!(counts.connections, 2, "{counts:?}");
}

#[tokio::test]
async fn require_token_answers_401_without_it() {
    let server = crate::support::server(Behaviour {
        require_token: Some("s3cret".into()),
        ..Behaviour::default()
    })
    .await;
    assert_eq!(status(connect(&server, "/ws").await), 401);
    assert_eq!(status(connect(&server, "/ws?token=wrong").await), 401);

    let mut with_header = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    with_header
        .headers_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let (mut ws, _) = connect_async(with_header).await.expect("the header is accepted");
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));

    let _ws = connect(&server, "/ws?a=1&token=s3cret")
        .await
        .expect("the query token is accepted");
    let counts = server.shutdown().await;
    assert_eq!(counts.unauthorized, 2, "{counts:?}");
    assert_eq!(counts.connections, 2, "{counts:?}");
}

/// The next `n` pushes: (seq, sent_at_us, when received after `since`).
async fn pushes(ws: &mut Client, n: usize, since: Instant) -> Vec<(u64, u64, Duration)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let message = timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("pushes keep coming")
            .expect("open")
            .expect("no error");
        let Message::Text(text) = message else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "push", "{text}");
        seen.push((
            v["seq"].as_u64().unwrap(),
            v["sent_at_us"].as_u64().unwrap(),
            since.elapsed(),
        ));
    }
    seen
}

#[tokio::test]
async fn pushes_are_numbered_with_the_skipped_numbers_missing() {
    let server = crate::support::server(Behaviour {
        push_every: Some(ms(100)),
        push_skip: vec![2, 4],
        ..Behaviour::default()
    })
    .await;
    let since = Instant::now();
    let mut ws = connect(&server, "/").await.unwrap();
    let seen = pushes(&mut ws, 4, since).await;
    let seqs: Vec<u64> = seen.iter().map(|p| p.0).collect();
    assert_eq!(seqs, [1, 3, 5, 6]);
    // A skipped number takes its turn: seq N is sent about N × 100 ms after the upgrade.
    for (seq, _, at) in &seen {
        assert_near(&format!("push {seq}"), *at, ms(100) * *seq as u32);
    }
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let (_, sent_at_us, _) = seen[3];
    assert!(
        sent_at_us <= now_us && now_us - sent_at_us < 1_000_000,
        "sent_at_us is Unix µs: {sent_at_us} vs {now_us}"
    );
    // Pushes and echoes share the connection.
    ws.send(Message::text("echo")).await.unwrap();
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) if t.as_str() == "echo" => break,
            Message::Text(t) => assert!(t.contains(r#""type":"push""#), "{t}"),
            other => panic!("{other:?}"),
        }
    }
    drop(ws);
    let counts = server.shutdown().await;
    assert!(counts.pushes >= 4, "{counts:?}");
}

#[tokio::test]
async fn resume_from_continues_the_sequence() {
    let server = crate::support::server(Behaviour {
        push_every: Some(ms(100)),
        push_skip: vec![9],
        ..Behaviour::default()
    })
    .await;
    let mut first = connect(&server, "/").await.unwrap();
    let mut resumed = connect(&server, "/feed?resume_from=7").await.unwrap();
    let seqs = |p: Vec<(u64, u64, Duration)>| p.into_iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(seqs(pushes(&mut resumed, 3, Instant::now()).await), [8, 10, 11]);
    assert_eq!(
        seqs(pushes(&mut first, 2, Instant::now()).await),
        [1, 2],
        "per connection"
    );
    drop((first, resumed));
    server.shutdown().await;
}

#[tokio::test]
async fn the_heartbeat_closes_a_client_that_stops_answering() {
    let server = crate::support::server(Behaviour {
        ping_every: Some(ms(200)),
        ping_timeout: ms(300),
        ..Behaviour::default()
    })
    .await;
    // A well-behaved client: reading, so its tungstenite answers every ping.
    let mut alive = connect(&server, "/").await.unwrap();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = alive.next().await {
            if m.is_close() {
                return false;
            }
        }
        false
    });
    // A stalled client: the handshake by hand over raw TCP, then never polled again.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(format!("ws://{}/", server.addr), tcp)
        .await
        .unwrap();
    let connected = Instant::now();

    // First ping at 200 ms, unanswered by 500 ms: closed then.
    sleep(ms(500) + SLACK).await;
    let counts = server.counts();
    assert_eq!(counts.idle_closed, 1, "{counts:?}");
    assert_eq!(counts.open, 1, "the reading client stays: {counts:?}");
    sleep(ms(600)).await;
    let counts = server.counts();
    assert_eq!(counts.idle_closed, 1, "{counts:?}");
    assert!(counts.pings_sent >= 6, "{counts:?}");
    assert!(counts.pongs_received >= 4, "{counts:?}");
    assert!(!reader.is_finished(), "the reading client is still connected");

    // What the stalled client would have read (raw: its tungstenite would try to answer the
    // pings on the closed socket): pings, then a 1011 close, then the end.
    let mut bytes = Vec::new();
    let tcp = stalled.get_mut();
    timeout(Duration::from_secs(1), tcp.read_to_end(&mut bytes))
        .await
        .expect("the server closed the socket")
        .expect("read");
    let (mut pings, mut code) = (0, None);
    let mut frames = bytes.as_slice();
    while let [head, len, rest @ ..] = frames {
        let len = usize::from(*len & 0x7f);
        match head & 0x0f {
            0x9 => pings += 1,
            0x8 => code = Some(u16::from_be_bytes([rest[0], rest[1]])),
            op => panic!("unexpected opcode {op:#x} in {bytes:?}"),
        }
        frames = &rest[len..];
    }
    assert_eq!(code, Some(1011), "{bytes:?}");
    assert!((1..=2).contains(&pings), "{pings} pings before the close");
    assert!(connected.elapsed() < Duration::from_secs(3));
    reader.abort();
    let counts = server.shutdown().await;
    assert_eq!(counts.idle_closed, 1, "{counts:?}");
}

#[test]
fn serve_flags_set_every_behaviour() {
    let cli = Cli::try_parse_from([
        "wsstorm",
        "serve",
        "--close-every",
        "10s",
        "--close-at",
        "5s,12s",
        "--close-code",
        "1001",
        "--refuse-for",
        "2s",
        "--require-token",
        "T",
        "--push-every",
        "100ms",
        "--push-skip",
        "5,9",
        "--ping-every",
        "5s",
        "--ping-timeout",
        "2s",
    ])
    .expect("valid flags");
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert_eq!(args.close_every, Some(Duration::from_secs(10)));
    assert_eq!(args.close_at, [Duration::from_secs(5), Duration::from_secs(12)]);
    assert_eq!(args.close_code, 1001);
    assert!(!args.close_by_reset);
    assert_eq!(args.refuse_for, Duration::from_secs(2));
    assert_eq!(args.require_token.as_deref(), Some("T"));
    assert_eq!(args.push_every, Some(ms(100)));
    assert_eq!(args.push_skip, [5, 9]);
    assert_eq!(args.ping_every, Some(Duration::from_secs(5)));
    assert_eq!(args.ping_timeout, Duration::from_secs(2));

    let parse = |args: &[&str]| Cli::try_parse_from([&["wsstorm", "serve"], args].concat());
    let defaults = parse(&[]).unwrap();
    let Command::Serve(d) = defaults.command else {
        panic!("serve")
    };
    assert_eq!((d.close_code, d.ping_timeout), (1012, Duration::from_secs(5)));
    assert!(parse(&["--close-by-reset", "--close-at", "1s"]).is_ok());
    assert!(parse(&["--close-code", "1006"]).is_err(), "not a code to send");
    assert!(parse(&["--close-code", "1001", "--close-by-reset"]).is_err());
    assert!(parse(&["--push-every", "0s"]).is_err());
    assert!(parse(&["--close-at", "5s,soon"]).is_err());
}

#[tokio::test]
async fn a_client_close_frame_is_answered_with_a_close_frame() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let server = wsstorm::server::start(
        "127.0.0.1:0".parse().unwrap(),
        wsstorm::scenario::Behaviour::default(),
    )
    .await
    .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(server.url()).await.unwrap();
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(2), ws.next())
        .await
        .expect("an answer");
    match reply {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close frame, got {other:?}"),
    }
    server.shutdown().await;
}
