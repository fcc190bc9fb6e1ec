//! Secrets — values from the environment and from `[secrets]` — are sent where the scenario
//! says, and appear in no output: no file of the results directory, not stdout, not stderr at
//! `-vv`, not `validate`.

use std::path::Path;

const FROM_ENV: &str = "env-s3cr3t-9f2c41";
const FROM_TABLE: &str = "table-s3cr3t-7d1e08";

const SCENARIO: &str = r#"name = "secrets"
target = "embedded"
duration = "2s"
[embedded]
require_token = "${env:WSS_TEST_TOKEN}"
[connect]
headers = { Authorization = "Bearer ${env:WSS_TEST_TOKEN}", "X-Key" = "${secret:api}" }
[secrets]
api = "table-s3cr3t-7d1e08"
[correlation]
request_id = "/id"
[report]
requests = "all"
[[phases]]
clients = 3
[[steps]]
send = '{"id":"{{id}}","key":"${secret:api}"}'
expect = "response"
[[steps]]
sleep = "50ms"
"#;

/// The binary with the token in its environment, in `dir`: its exit code and all it printed.
fn with_token(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = crate::support::binary()
        .args(args)
        .env("WSS_TEST_TOKEN", FROM_ENV)
        .current_dir(dir)
        .output()
        .unwrap();
    (o.status.code(), crate::support::text(&o))
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn assert_clean(what: &str, text: &str) {
    for secret in [FROM_ENV, FROM_TABLE] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

#[test]
fn secrets_reach_the_server_but_no_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), SCENARIO).unwrap();

    let (code, out) = with_token(dir.path(), &["-vv", "validate", "s.toml"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("${env:WSS_TEST_TOKEN}"),
        "validate shows templates by source: {out}"
    );
    assert_clean("validate -vv", &out);

    // The built-in target requires the token: every client connecting proves it was sent.
    let (code, out) = with_token(dir.path(), &["-vv", "run", "s.toml", "--out", "res"]);
    assert_eq!(code, Some(0), "{out}");
    assert_clean("run -vv (stdout and stderr)", &out);
    let results = dir.path().join("res");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["counts"]["connects"], 3,
        "the token was sent and accepted"
    );
    assert!(summary["counts"]["answered"].as_u64().unwrap() > 10);
    let written = files(&results);
    assert!(written.len() >= 6, "{written:?}");
    for file in written {
        let bytes = std::fs::read(&file).unwrap();
        assert_clean(&file.display().to_string(), &String::from_utf8_lossy(&bytes));
    }

    // A refused upgrade is logged with its response at -v: still nothing secret.
    let wrong = SCENARIO.replace("Bearer ${env:WSS_TEST_TOKEN}", "Bearer ${secret:api}");
    std::fs::write(dir.path().join("wrong.toml"), wrong).unwrap();
    let (_, out) = with_token(
        dir.path(),
        &["-vv", "run", "wrong.toml", "--out", "res2", "--duration", "1s"],
    );
    assert!(out.contains("401"), "the refusal is logged: {out}");
    assert_clean("a refused run at -vv", &out);
    for file in files(&dir.path().join("res2")) {
        assert_clean(
            &file.display().to_string(),
            &std::fs::read_to_string(&file).unwrap_or_default(),
        );
    }

    // A server that echoes the token back in its refusal: the log of that refusal masks it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(10) {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 2048];
            let _ = stream.read(&mut head);
            let body = format!("invalid token: Bearer {FROM_ENV}");
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let plain = SCENARIO.replace("[embedded]\nrequire_token = \"${env:WSS_TEST_TOKEN}\"\n", "");
    std::fs::write(dir.path().join("echo.toml"), plain).unwrap();
    let (_, out) = with_token(
        dir.path(),
        &[
            "-v",
            "run",
            "echo.toml",
            "--target",
            &url,
            "--out",
            "res3",
            "--duration",
            "1s",
        ],
    );
    assert!(
        out.contains("invalid token: Bearer [redacted]"),
        "the body is logged, masked: {out}"
    );
    assert_clean("a refusal that echoes the token", &out);
}

/// Regression (issue 16; issue 19 item 13): with nothing listening, the last line, "no client
/// could connect to …", printed a secret of the target URL in clear while the lines above
/// masked it. No trace of either secret anywhere, at the default level, at -vv, and with JSON
/// logs.
#[test]
fn a_secret_in_the_target_url_is_masked_when_no_client_can_connect() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scenario = format!(
        r#"name = "url-secret"
target = "ws://127.0.0.1:{port}/ws?token=${{env:WSS_TEST_TOKEN}}&key=${{secret:api}}"
duration = "1s"
[secrets]
api = "{FROM_TABLE}"
[connect]
timeout = "200ms"
[reconnect]
initial = "100ms"
max = "100ms"
[[phases]]
clients = 2
[[steps]]
sleep = "100ms"
"#
    );
    std::fs::write(dir.path().join("u.toml"), scenario).unwrap();
    let levels: [&[&str]; 3] = [&[], &["-vv"], &["-vv", "--log-format", "json"]];
    for (i, flags) in levels.iter().enumerate() {
        let out = format!("res{i}");
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["run", "u.toml", "--out", &out])
            .collect();
        let (code, text) = with_token(dir.path(), &args);
        assert_eq!(code, Some(1), "no client could connect ({flags:?}): {text}");
        assert!(
            text.contains(&format!(
                "no client could connect to ws://127.0.0.1:{port}/ws?token=[redacted]&key=[redacted]"
            )),
            "the line names the target, masked ({flags:?}): {text}"
        );
        assert_clean(&format!("run {flags:?}"), &text);
        let written = files(&dir.path().join(&out));
        assert!(written.len() >= 5, "{written:?}");
        for file in written {
            let bytes = std::fs::read(&file).unwrap();
            assert_clean(&file.display().to_string(), &String::from_utf8_lossy(&bytes));
        }
    }
}

/// A server that answers every upgrade with 401 and a body echoing the request's
/// Authorization and Sec-WebSocket-Protocol headers (as some do); its address.
fn echoing_refuser() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let n = stream.read(&mut head).unwrap_or(0);
            let head = String::from_utf8_lossy(&head[..n]).to_string();
            let echoed: Vec<&str> = head
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("authorization:") || l.starts_with("sec-websocket-protocol:")
                })
                .collect();
            let body = format!("refused: {}", echoed.join("; "));
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Field findings 15 and 16 (issue 19): `subprotocols = ["proto.${secret:api}"]` validated and
/// the server received the text `${secret:api}`; and feed values used in headers were printed
/// at -v when a 401 body echoed them. Now subprotocols are templates (the secret is sent, and
/// masked like every secret), and `[feed] secret = ["token"]` makes a column's values secrets.
#[test]
fn field_15_16_subprotocol_templates_and_secret_feed_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "user,token\nann,feed-t0k3n-aaaa\nbob,feed-t0k3n-bbbb\n",
    )
    .unwrap();
    let scenario = format!(
        r#"name = "feed-secrets"
target = "{}"
duration = "1s"
[feed]
file = "users.csv"
secret = ["token"]
[connect]
headers = {{ Authorization = "Bearer {{{{feed.token}}}}", "X-User" = "{{{{feed.user}}}}" }}
subprotocols = ["proto.${{secret:api}}", "chat.v1"]
[secrets]
api = "{FROM_TABLE}"
[reconnect]
max_attempts = 1
[[phases]]
clients = 2
[[steps]]
sleep = "100ms"
"#,
        echoing_refuser()
    );
    std::fs::write(dir.path().join("f.toml"), scenario).unwrap();
    let (code, out) = with_token(dir.path(), &["-v", "run", "f.toml", "--out", "res"]);
    assert_eq!(code, Some(1), "no client could connect: {out}");
    // Both the template and the feed column went out (the server echoed them, masked here).
    assert!(
        out.contains("Bearer [redacted]"),
        "the feed token was sent: {out}"
    );
    assert!(
        out.contains("proto.[redacted], chat.v1"),
        "the subprotocol took the secret: {out}"
    );
    for secret in ["feed-t0k3n-aaaa", "feed-t0k3n-bbbb", FROM_TABLE, "${secret:api}"] {
        assert!(!out.contains(secret), "{secret} shown: {out}");
        for file in files(&dir.path().join("res")) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
    // A column not marked secret is shown where it appears (a user name in a log).
    let (code, out) = with_token(dir.path(), &["-vv", "validate", "f.toml"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("subprotocols proto.${secret:api}, chat.v1"), "{out}");
}

/// Review of the presets, finding 10: a drop's reason quotes what the server sent — here the
/// built-in echo target hands the GraphQL `connection_init` back, with a `[secrets]` value and
/// an environment value in its payload, where `connection_ack` was due (`protocol_mismatch`,
/// "got …"). The reason masks both, in summary.json and everywhere else.
#[test]
fn a_drop_reason_quoting_the_server_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        r#"name = "echoed-init"
target = "embedded"
duration = "1s"
[connect]
protocol = "graphql-ws"
graphql_init = '{{"token":"${{secret:api}}","user":"${{env:WSS_TEST_TOKEN}}"}}'
[secrets]
api = "{FROM_TABLE}"
[reconnect]
strategy = "constant"
initial = "100ms"
[[phases]]
clients = 2
[[steps]]
subscribe = {{ query = "subscription {{ n }}" }}
"#
    );
    std::fs::write(dir.path().join("g.toml"), scenario).unwrap();
    let (_, out) = with_token(dir.path(), &["-vv", "run", "g.toml", "--out", "res"]);
    assert_clean("run -vv", &out);
    let results = dir.path().join("res");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["drops"]["protocol_mismatch"].as_u64() >= Some(1),
        "{summary:#}"
    );
    let why = summary["drop_reasons"]["protocol_mismatch"].as_str().unwrap();
    assert!(
        why.contains(r#"got "{\"type\":\"connection_init\",\"payload\":{\"token\":\"[redacted]\",\"user\":\"[redacted]\"}}""#),
        "{why}"
    );
    for file in files(&results) {
        let bytes = std::fs::read(&file).unwrap();
        assert_clean(&file.display().to_string(), &String::from_utf8_lossy(&bytes));
    }
}
