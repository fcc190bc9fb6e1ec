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
    ];
    for (tail, want) in cases {
        let toml = format!(
            "name = \"m\"\ntarget = \"ws://127.0.0.1:1/\"\nduration = \"1s\"\n[[phases]]\nclients = 1\n{tail}"
        );
        let e = crate::support::refused(&toml);
        assert!(e.contains(want), "{toml}\n---\n{e}\n--- wanted: {want}");
    }
}
