//! The per-connection cap on requests in flight (issue 9, bounded memory): against a server
//! that never answers, a connection holds at most `correlation.max_in_flight` requests, sends
//! no more until replies or timeouts make room, and counts what it did not send in `capped`.

use crate::support::{assert_requests_reconcile, plan, run, server};
use wsstorm::scenario::Behaviour;

/// A loop that does not wait for its replies, against a server that never answers: without a
/// cap, each connection's table would hold every request of the last `timeout`.
const FIRE_AND_FORGET: &str = r#"
name = "capped"
target = "embedded"
duration = "1s"
[correlation]
request_id = "/request_id"
timeout = "2s"
max_in_flight = 20
[[phases]]
clients = 4
[[steps]]
send = '{"request_id":"{{id}}"}'
expect = "response"
wait = false
[[steps]]
sleep = "2ms"
"#;

fn silent() -> Behaviour {
    Behaviour {
        no_reply_fraction: 1.0,
        ..Behaviour::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_sends_no_more_than_max_in_flight_unanswered_requests() {
    let server = server(silent()).await;
    let (r, _dir) = run(plan(FIRE_AND_FORGET, &server.url())).await;
    let seen = server.shutdown().await;
    let c = &r.totals.counts;
    // The run ends (1 s) before the first deadline (2 s), so nothing made room: each of the
    // 4 connections sent exactly 20, and then only counted.
    assert_eq!(c.connects, 4, "{c:?}");
    assert_eq!(c.requests, 4 * 20, "{c:?}");
    assert_eq!(
        seen.received, c.requests,
        "the server saw exactly what the tool sent"
    );
    assert_eq!(seen.answered, 0);
    assert!(
        c.capped > 4 * 20,
        "the loop went on and counted what it did not send: {c:?}"
    );
    assert_eq!(c.timeouts, c.requests, "the graceful end waited for every one");
    assert_requests_reconcile(&r);
    assert!(
        r.summary
            .render_text()
            .contains(&format!("capped      {} requests not sent", c.capped)),
        "{}",
        r.summary.render_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_request_that_waits_for_its_reply_waits_for_room_instead_of_spinning() {
    // One request fills the table; the second would wait for its reply, so it waits for room
    // (the first times out after 300 ms) and the loop starts over: one capped request per
    // 300 ms, where a loop that skipped it would spin and count millions.
    let toml = r#"
name = "capped-wait"
target = "embedded"
duration = "1200ms"
[correlation]
request_id = "/request_id"
timeout = "300ms"
max_in_flight = 1
[[phases]]
clients = 2
[[steps]]
send = '{"request_id":"{{id}}","n":1}'
expect = "response"
wait = false
[[steps]]
send = '{"request_id":"{{id}}","n":2}'
expect = "response"
"#;
    let server = server(silent()).await;
    let (r, _dir) = run(plan(toml, &server.url())).await;
    let seen = server.shutdown().await;
    let c = &r.totals.counts;
    assert_eq!(seen.received, c.requests);
    assert_eq!(c.timeouts, c.requests);
    // Each pass sends 1 and caps 1; 1.2 s holds about 4 passes of 300 ms per client.
    assert!(c.capped >= 2 && c.capped <= 2 * 6, "{c:?}");
    assert_eq!(c.requests, c.capped, "{c:?}");
    assert_requests_reconcile(&r);
}
