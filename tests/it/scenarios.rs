//! Every shipped scenario validates, and runs (shortened) to a passing verdict against the
//! built-in target configured like the system it emulates.

use std::path::Path;

use crate::support::repo;

#[test]
fn every_shipped_scenario_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let o = crate::support::binary()
                .arg("validate")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            names.push(path.file_stem().unwrap().to_string_lossy().to_string());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "connection-manager",
            "game-session",
            "graphql-subscriptions",
            "jsonrpc-subscribe",
            "network-chaos",
            "quickstart",
            "roll-results",
            "socketio-chat",
            "sre-agent",
            "stomp-orders",
            "websocket-first"
        ],
        "one scenario per seed system, plus the quick starts and the network chaos tour"
    );
}

/// Runs a scenario for `duration` and returns its summary.json.
fn run(name: &str, duration: &str) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let scenario = repo().join("scenarios").join(format!("{name}.toml"));
    let o = crate::support::binary()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--duration",
            duration,
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let txt = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{name} should pass its thresholds:\n{txt}"
    );
    let c = &summary["counts"];
    assert_eq!(
        c["requests"].as_u64().unwrap(),
        ["answered", "timeouts", "lost", "unfinished"]
            .iter()
            .map(|k| c[*k].as_u64().unwrap())
            .sum::<u64>(),
        "{name}: counts reconcile"
    );
    assert!(Path::new(&out.join("connections.csv")).exists());
    summary
}

#[test]
fn jsonrpc_subscribe_counts_notifications_and_errors_by_code() {
    let s = run("jsonrpc-subscribe", "4s");
    let counters = &s["counters"];
    assert!(
        counters["notifications_NewHeads"].as_u64().unwrap() > 100,
        "{counters}"
    );
    assert_eq!(s["embedded_server"]["pushes"], counters["notifications_NewHeads"]);
    assert_eq!(
        counters["jsonrpc_error_-32601"], s["by_step"]["ChainId"]["answered"],
        "{counters}"
    );
}

#[test]
fn socketio_chat_acks_every_message_and_answers_every_heartbeat() {
    let s = run("socketio-chat", "5s");
    let counters = &s["counters"];
    assert_eq!(s["counts"]["drops"], 0);
    assert_eq!(s["counts"]["check_failures"], 0);
    // Every ping the server sent was read; each answered, but one that came after a client's
    // close frame (at most one a connection).
    let server = &s["embedded_server"];
    let pings = counters["socketio_pings"].as_u64().unwrap();
    let pongs = server["pongs_received"].as_u64().unwrap();
    assert_eq!(server["pings_sent"].as_u64(), Some(pings), "{server}");
    assert!(pongs <= pings && pings - pongs <= 30, "{server} {counters}");
    assert!(
        counters["socketio_event_presence"].as_u64().unwrap() > 0,
        "{counters}"
    );
}

#[test]
fn graphql_subscriptions_stream_five_nexts_each() {
    let s = run("graphql-subscriptions", "4s");
    let c = &s["counts"];
    assert_eq!(c["check_failures"], 0);
    assert_eq!(
        c["stream_parts"].as_u64(),
        c["answered"].as_u64().map(|a| 5 * a),
        "{c}"
    );
}

#[test]
fn stomp_orders_come_back_as_messages_and_heart_beats_reconcile() {
    let s = run("stomp-orders", "4s");
    let (c, counters, server) = (&s["counts"], &s["counters"], &s["embedded_server"]);
    assert_eq!(
        (c["drops"].as_u64(), c["timeouts"].as_u64()),
        (Some(0), Some(0)),
        "{c}"
    );
    // Every order the target delivered back is counted on its subscription; every EOL the
    // target sent as its heart-beat, in stomp_heartbeats.
    assert_eq!(
        counters["stomp_messages_orders"], server["pushes"],
        "{counters} {server}"
    );
    // An EOL sent as a client's close frame left may not be read: one a connection at most.
    let beats = counters["stomp_heartbeats"].as_u64().unwrap();
    let sent = server["pings_sent"].as_u64().unwrap();
    let connections = server["connections"].as_u64().unwrap();
    assert!(
        beats <= sent && sent - beats <= connections,
        "{counters} {server}"
    );
    assert!(counters["stomp_heartbeats"].as_u64().unwrap() > 0, "{counters}");
}

#[test]
fn roll_results_detects_withheld_acks_and_retries_after_a_reset() {
    let s = run("roll-results", "9s");
    assert_eq!(s["drops"]["chaos_reset"], 1, "the reset at 8 s");
    assert_eq!(s["counts"]["reconnects"], 1);
}

#[test]
fn websocket_first_replays_pending_requests_over_a_server_restart() {
    let s = run("websocket-first", "11s");
    assert_eq!(s["drops"]["close_1012"], 50, "the restart at 10 s");
    assert_eq!(s["counts"]["lost"], 0);
    assert_eq!(s["counts"]["push_gaps"], 0);
}

#[test]
fn connection_manager_rides_out_network_drops_with_its_backoff() {
    let s = run("connection-manager", "7s");
    assert_eq!(s["drops"]["chaos_reset"], 6, "20 % of 30 reset at 5 s");
    assert_eq!(s["counts"]["reconnects"], 6);
    assert!(s["reconnect_attempts"]["max"].as_u64().unwrap() <= 5);
}

#[test]
fn game_session_holds_100_clients_with_the_token_under_100_ms() {
    let s = run("game-session", "6s");
    assert_eq!(s["counts"]["connects"], 100);
    assert_eq!(s["embedded_server"]["unauthorized"], 0);
    assert!(s["counts"]["pushes"].as_u64().unwrap() > 100);
}

#[test]
fn sre_agent_comes_back_from_a_storm_within_5_seconds_on_average() {
    let s = run("sre-agent", "11s");
    assert_eq!(s["drops"]["chaos_reset"], 100, "half of 200 reset at 10 s");
    let recovery = &s["recovery"][0];
    assert!(recovery["connected_recovered_s"].as_f64().is_some(), "{recovery}");
}

#[test]
fn network_chaos_tour_recovers_from_every_fault() {
    let s = run("network-chaos", "20s");
    let how: Vec<&str> = s["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["how"].as_str().unwrap())
        .collect();
    assert_eq!(
        how,
        [
            "net_latency",
            "net_bandwidth",
            "net_blackhole",
            "net_refuse",
            "net_reset"
        ]
    );
    assert_eq!(
        s["drops"]["pong_timeout"], 200,
        "the partition, found by the heartbeat"
    );
    assert_eq!(s["drops"]["reset"], 200, "the outage");
    assert_eq!(s["counts"]["reconnects"], 400);
    assert_eq!(s["proxy"]["reset"], 200);
    assert!(s["connect_errors"]["refused"].as_u64().unwrap() > 0);
    assert!(s["recovery"][2]["connected_recovered_s"].as_f64().is_some());
}
