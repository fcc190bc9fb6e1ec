//! `[feed]`: each client gets a CSV row, its columns in headers and messages; in `unique` mode
//! the server sees each row exactly once, and a scenario with more clients than rows is
//! refused before anything is sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::run;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// An echo server that records, per connection, the X-User header and the "token" of every
/// message.
async fn recording_server() -> (String, Arc<Mutex<Vec<(String, Vec<String>)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut user = String::new();
                // The error type is fixed by tungstenite's callback trait.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, resp: Response| {
                    user = req
                        .headers()
                        .get("x-user")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                let mut tokens = Vec::new();
                while let Some(Ok(m)) = ws.next().await {
                    if let Ok(text) = m.to_text()
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
                    {
                        tokens.push(v["token"].as_str().unwrap_or_default().to_string());
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }
                record.lock().unwrap().push((user, tokens));
            });
        }
    });
    (url, seen)
}

fn scenario(dir: &std::path::Path, clients: u32, mode: &str) -> String {
    let users: String = (0..8).map(|i| format!("user{i},tok-{i}\n")).collect();
    std::fs::write(dir.join("users.csv"), format!("user,token\n{users}")).unwrap();
    format!(
        "name = \"feed\"\ntarget = \"embedded\"\nduration = \"1s\"\n[feed]\nfile = \"users.csv\"\nmode = \"{mode}\"\n\
         [connect]\nheaders = {{ \"X-User\" = \"{{{{feed.user}}}}\" }}\n[correlation]\nrequest_id = \"/id\"\n\
         [[phases]]\nclients = {clients}\n[[steps]]\nsend = '{{\"id\":\"{{{{id}}}}\",\"token\":\"{{{{feed.token}}}}\"}}'\n\
         expect = \"response\"\n[[steps]]\nsleep = \"50ms\"\n"
    )
}

fn parse(dir: &std::path::Path, text: &str, url: &str) -> Result<wsstorm::scenario::Plan, String> {
    let overrides = wsstorm::scenario::Overrides {
        target: Some(url.to_string()),
        ..Default::default()
    };
    wsstorm::scenario::parse(&dir.join("feed.toml"), text, &overrides, &|_| None).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_rows_reach_the_server_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = recording_server().await;
    let p = parse(dir.path(), &scenario(dir.path(), 8, "unique"), &url).unwrap();
    assert!(p.to_string().contains("8 rows of user, token; unique"));
    let (r, _d) = run(p).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(r.totals.counts.connects, 8);
    let users: BTreeMap<String, Vec<String>> = seen.into_iter().collect();
    assert_eq!(
        users.keys().cloned().collect::<Vec<_>>(),
        (0..8).map(|i| format!("user{i}")).collect::<Vec<_>>(),
        "each row's user exactly once"
    );
    for (user, tokens) in &users {
        let want = format!("tok-{}", &user[4..]);
        assert!(
            !tokens.is_empty() && tokens.iter().all(|t| *t == want),
            "{user}: {tokens:?}"
        );
    }
}

#[test]
fn more_clients_than_unique_rows_is_refused_and_columns_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let e = parse(
        dir.path(),
        &scenario(dir.path(), 9, "unique"),
        "ws://127.0.0.1:9/",
    )
    .unwrap_err();
    assert!(
        e.contains("feed.toml:") && e.contains("has 8 rows for 9 clients"),
        "{e}"
    );
    assert!(
        parse(
            dir.path(),
            &scenario(dir.path(), 9, "sequential"),
            "ws://127.0.0.1:9/"
        )
        .is_ok()
    );
    let text = scenario(dir.path(), 2, "random").replace("feed.token", "feed.pin");
    let e = parse(dir.path(), &text, "ws://127.0.0.1:9/").unwrap_err();
    assert!(e.contains("no column \"pin\""), "{e}");
    // A value a header cannot carry (a quoted line break) is refused when a header uses the feed.
    let text = scenario(dir.path(), 2, "sequential");
    std::fs::write(dir.path().join("users.csv"), "user,token\n\"ann\nbob\",t1\n").unwrap();
    let e = parse(dir.path(), &text, "ws://127.0.0.1:9/").unwrap_err();
    assert!(
        e.contains("cannot go in an HTTP header") && e.contains("users.csv:2"),
        "{e}"
    );
    let text = scenario(dir.path(), 2, "shuffled");
    assert!(
        parse(dir.path(), &text, "ws://127.0.0.1:9/")
            .unwrap_err()
            .contains("unknown variant `shuffled`, expected one of `sequential`, `random`, `unique`")
    );
    let text = scenario(dir.path(), 2, "unique").replace("users.csv", "nobody.csv");
    assert!(
        parse(dir.path(), &text, "ws://127.0.0.1:9/")
            .unwrap_err()
            .contains("feed.file: ")
    );
}
