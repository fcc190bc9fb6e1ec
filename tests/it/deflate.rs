//! permessage-deflate (RFC 7692, issue 18): `[connect] compression = "deflate"` against servers
//! no one here wrote (the Python `websockets` server, the npm `ws` server, with a window limit
//! and no context takeover), the built-in target (`[embedded] compression`), a server that
//! does not take the offer, and hostile ones: a deflate bomb, and answers the offer did not
//! allow. What each server counted is held against what the tool reported, and the bytes on
//! the wire against the bytes of the messages.

use std::net::SocketAddr;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wsstorm::metrics::Counts;
use wsstorm::run::RunResult;
use wsstorm::scenario::{self, Behaviour, Overrides};

use crate::support::{ThirdParty, assert_requests_reconcile, plan, python, refused, run, wsstorm_in};

/// A scenario whose requests compress well (a JSON object with 2 KB of repeated text),
/// with `connect` added to its [connect] table.
fn scenario(target: &str, clients: u32, connect: &str) -> String {
    format!(
        r#"name = "deflate"
target = "{target}"
duration = "1s"
[connect]
compression = "deflate"
{connect}
[correlation]
request_id = "/request_id"
timeout = "5s"
[[phases]]
clients = {clients}
[[steps]]
send = '{{"request_id":"{{{{id}}}}","text":"{text}"}}'
expect = "response"
[[steps]]
sleep = "20ms"
"#,
        text = "the same words again and again, ".repeat(64)
    )
}

/// Every request answered, on connections that all negotiated deflate, whose messages went
/// out and came back smaller on the wire.
fn assert_compressed_both_ways(r: &RunResult) -> Counts {
    let c = r.totals.counts;
    assert_requests_reconcile(r);
    assert!(c.requests > 0 && c.answered == c.requests, "{c:?}");
    assert_eq!(
        (c.deflate_offered, c.deflate_connects),
        (c.connects, c.connects),
        "{c:?}"
    );
    assert_eq!(
        (c.deflate_bytes_sent, c.deflate_bytes_received),
        (c.bytes_sent, c.bytes_received),
        "the transcoder saw every message: {c:?}"
    );
    assert!(c.wire_bytes_sent * 4 < c.bytes_sent, "{c:?}");
    assert!(c.wire_bytes_received * 4 < c.bytes_received, "{c:?}");
    let text = r.summary.render_text();
    let line = format!(
        "deflate     negotiated on {} of {} connections that offered it",
        c.connects, c.connects
    );
    assert!(text.contains(&line), "{text}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_websockets_server_negotiates_it_and_counts_match() {
    let test = "the_python_websockets_server_negotiates_it_and_counts_match";
    let Some(server) = ThirdParty::start(test, "websockets", "websockets_echo.py", &[]) else {
        return;
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let (r, _dir) = run(plan(&scenario("ws://x/", 3, ""), &url)).await;
    let seen = server.finish();
    let c = assert_compressed_both_ways(&r);
    assert_eq!(seen["connections"], c.connects, "{seen}");
    assert_eq!(
        seen["compressed"], c.connects,
        "the server negotiated it on each: {seen}"
    );
    assert_eq!(seen["messages"], c.requests, "{seen}");
    assert_eq!(
        seen["message_bytes"], c.bytes_sent,
        "after its decompression: {seen}"
    );
}

/// The npm `ws` server takes the offer's window limit and no context takeover (and says so in
/// its answer); then, with its own limit on the client's window (9 bits, and 8, which zlib
/// cannot compress with: stored blocks), the client keeps to it, or the server could not
/// inflate what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_ws_server_with_window_bits_and_no_context_takeover() {
    let test = "the_node_ws_server_with_window_bits_and_no_context_takeover";
    for (connect, server_args, answer) in [
        (
            "client_max_window_bits = 10\nno_context_takeover = true",
            &[][..],
            "permessage-deflate; client_max_window_bits=10; client_no_context_takeover; server_no_context_takeover",
        ),
        (
            "",
            &["--client-max-window-bits", "9"][..],
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "",
            &["--client-max-window-bits", "8"][..],
            "permessage-deflate; client_max_window_bits=8",
        ),
    ] {
        let Some(server) = ThirdParty::node(test, "ws", "ws_deflate.js", server_args) else {
            return;
        };
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let (r, _dir) = run(plan(&scenario("ws://x/", 2, connect), &url)).await;
        let seen = server.finish();
        let c = r.totals.counts;
        assert_eq!(seen["connections"], c.connects, "{seen}");
        for ext in seen["extensions"].as_array().unwrap() {
            assert_eq!(ext.as_str(), Some(answer), "{seen}");
        }
        assert_eq!(seen["messages"], c.requests, "{seen}");
        assert_eq!(seen["message_bytes"], c.bytes_sent, "{seen}");
        if server_args.last() == Some(&"8") {
            // Stored blocks: deflate framing, no smaller.
            assert_requests_reconcile(&r);
            assert_eq!(
                (c.answered, c.deflate_connects),
                (c.requests, c.connects),
                "{c:?}"
            );
            assert!(c.wire_bytes_sent > c.bytes_sent, "{c:?}");
            continue;
        }
        let c = assert_compressed_both_ways(&r);
        // The server's own sockets, with the upgrades and the frame headers, against the
        // messages it decompressed.
        let read = seen["socket_read"].as_u64().unwrap();
        assert!(read * 2 < c.bytes_sent, "the server read {read} bytes: {seen}");
    }
}

/// `[embedded] compression = "deflate"`: the built-in target takes the offer (no context
/// takeover too) and counts the connections that negotiated it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_target_speaks_it() {
    for connect in ["", "no_context_takeover = true\nclient_max_window_bits = 9"] {
        let toml = scenario("embedded", 4, connect) + "[embedded]\ncompression = \"deflate\"\n";
        let p = scenario::parse(Path::new("test.toml"), &toml, &Overrides::default(), &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = p.to_string();
        assert!(shown.contains("compression deflate when offered"), "{shown}");
        assert!(shown.contains("offers   permessage-deflate"), "{shown}");
        let (r, _dir) = run(p).await;
        let c = assert_compressed_both_ways(&r);
        let seen = r.summary.embedded_server.expect("the built-in target's counts");
        assert_eq!(
            (seen.connections, seen.deflated),
            (c.connects, c.connects),
            "{seen:?}"
        );
        assert_eq!(
            (seen.received, seen.answered),
            (c.requests, c.answered),
            "{seen:?}"
        );
    }
}

/// A server that does not take the offer: the run goes on uncompressed, and the summary says
/// that no connection negotiated it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_declines_leaves_the_run_uncompressed() {
    let target = crate::support::server(Behaviour::default()).await;
    let (r, _dir) = run(plan(&scenario("ws://x/", 3, ""), &target.url())).await;
    let seen = target.shutdown().await;
    let c = r.totals.counts;
    assert_requests_reconcile(&r);
    assert!(c.requests > 0 && c.answered == c.requests, "{c:?}");
    assert_eq!((c.deflate_offered, c.deflate_connects), (c.connects, 0), "{c:?}");
    assert_eq!((c.wire_bytes_sent, c.deflate_bytes_sent), (0, 0), "{c:?}");
    assert_eq!((seen.received, seen.deflated), (c.requests, 0));
    let text = r.summary.render_text();
    assert!(
        text.contains(&format!("deflate     negotiated on 0 of {}", c.connects)),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["counts"]["deflate_connects"], 0);
    assert_eq!(json["counts"]["deflate_offered"], c.connects);
}

/// A raw server that answers every upgrade with `extensions` (its Sec-WebSocket-Extensions),
/// then sends `frames` and reads until the client goes.
async fn answering_server(extensions: &'static str, frames: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let frames = frames.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let key = text
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("sec-websocket-key")
                            .then(|| value.trim())
                    })
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n",
                    derive_accept_key(key.as_bytes())
                );
                if tcp.write_all(response.as_bytes()).await.is_err() || tcp.write_all(&frames).await.is_err()
                {
                    return;
                }
                while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// A deflate bomb: one small compressed message (about 256 KB) that inflates to 256 MiB,
/// against `max_message = "1MiB"`. The client stops inflating at the limit and drops the
/// connection as message_too_big; the binary's peak memory (the kernel's count, read by the
/// Python that runs it) stays far under what the bomb would take.
#[test]
fn a_deflate_bomb_is_stopped_at_max_message() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut packed = Vec::with_capacity(1 << 20);
    let mut zip = flate2::Compress::new(flate2::Compression::best(), false);
    zip.compress_vec(&vec![0u8; 256 << 20], &mut packed, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(packed.len() < 1 << 20, "{} bytes", packed.len());
    let mut frame = vec![0xC2, 127];
    frame.extend((packed.len() as u64).to_be_bytes());
    frame.extend(&packed);
    let addr = runtime.block_on(answering_server("permessage-deflate", frame));

    let dir = tempfile::tempdir().unwrap();
    let toml = scenario(&format!("ws://{addr}/"), 1, "max_message = \"1MiB\"")
        + "[reconnect]\nstrategy = \"constant\"\ninitial = \"100ms\"\n";
    std::fs::write(dir.path().join("bomb.toml"), toml).unwrap();
    let measure = "import resource, subprocess, sys\n\
                   rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n\
                   print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = std::process::Command::new(python())
        .args(["-c", measure, env!("CARGO_BIN_EXE_wsstorm"), "run", "bomb.toml"])
        .args(["--out", "out", "--quiet"])
        .current_dir(dir.path())
        .output()
        .expect("python runs");
    let said = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = said
        .split_whitespace()
        .nth(1)
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("{said}{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("the run's peak memory: {kib} KiB");
    assert!(kib < 128 << 10, "the run's peak memory: {kib} KiB");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap()).unwrap();
    let drops = summary["drops"].as_object().unwrap();
    assert!(summary["counts"]["drops"].as_u64() >= Some(1), "{summary}");
    assert_eq!(drops.keys().collect::<Vec<_>>(), ["message_too_big"], "{drops:?}");
    assert_eq!(summary["counts"]["drops"], summary["drops"]["message_too_big"]);
    assert_eq!(
        summary["counts"]["deflate_connects"],
        summary["counts"]["connects"]
    );
    runtime.shutdown_background();
}

/// An answer the offer did not allow fails the connection as a bad handshake, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_offer_did_not_allow_is_a_handshake_failure() {
    for (answer, offer, why) in [
        ("x-webkit-deflate-frame", true, "which was not offered"),
        ("permessage-deflate", false, "which was not offered"),
        (
            "permessage-deflate; server_max_window_bits=16",
            true,
            "expected 8 to 15",
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            true,
            "above the 10 offered",
        ),
        ("permessage-deflate; mystery", true, "unknown parameter"),
    ] {
        let addr = answering_server(answer, Vec::new()).await;
        let mut toml = scenario(&format!("ws://{addr}/"), 1, "client_max_window_bits = 10")
            + "[reconnect]\nmax_attempts = 1\n";
        if !offer {
            toml = toml.replace("compression = \"deflate\"\nclient_max_window_bits = 10\n", "");
        }
        let (r, _dir) = run(plan(&toml, &format!("ws://{addr}/"))).await;
        let c = r.totals.counts;
        assert_eq!((c.connects, c.deflate_offered), (0, 0), "{answer}: {c:?}");
        assert!(c.connect_errors >= 1, "{answer}: {c:?}");
        assert_eq!(r.summary.connect_errors.keys().collect::<Vec<_>>(), ["handshake"]);
        let reason = &r.summary.connect_error_reasons["handshake"];
        assert!(reason.contains(why), "{answer}: {reason}");
    }
}

#[test]
fn bad_compression_settings_are_refused_where_they_are_written() {
    let base = |connect: &str| scenario("ws://127.0.0.1:9/", 1, connect);
    for (toml, expected) in [
        (
            base("client_max_window_bits = 16"),
            "test.toml:6:26: connect.client_max_window_bits: 16 is out of range: expected 8 to 15",
        ),
        (
            base("client_max_window_bits = 7"),
            "connect.client_max_window_bits: 7 is out of range",
        ),
        (
            base("").replace("compression = \"deflate\"\n", "no_context_takeover = true\n"),
            "connect.no_context_takeover: a parameter of compression: expected it with compression = \"deflate\"",
        ),
        (
            base("").replace("compression = \"deflate\"\n", "client_max_window_bits = 9\n"),
            "connect.client_max_window_bits: a parameter of compression",
        ),
        (
            base("").replace("\"deflate\"", "\"gzip\""),
            "unknown variant `gzip`, expected `deflate`",
        ),
        (
            base("") + "[embedded]\ncompression = \"brotli\"\n",
            "unknown variant `brotli`, expected `deflate`",
        ),
    ] {
        let e = refused(&toml);
        assert!(e.contains(expected), "{expected:?} in:\n{e}");
    }
    // The built-in target's flag.
    let out = wsstorm_in(&["serve", "--compression", "zstd"], Path::new("."));
    assert!(!out.status.success());
    assert!(crate::support::text(&out).contains("expected \"deflate\""));
}
