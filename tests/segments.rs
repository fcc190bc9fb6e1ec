//! Execution segments: shards of one scenario run side by side against one server add up to
//! exactly the scenario, with every client number in exactly one shard.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::{assert_requests_reconcile, connection_rows, server};
use wsstorm::run::{Controls, execute};
use wsstorm::scenario::segment::Segment;
use wsstorm::scenario::{self, Overrides};
use wsstorm::target::Behaviour;

const SCENARIO: &str = r#"name = "sharded"
target = "embedded"
duration = "3s"
[correlation]
request_id = "/id"
[[phases]]
clients = 10
ramp = "500ms"
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "20ms"
[[chaos]]
at = "1500ms"
drop = 5
how = "close"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_add_up_to_exactly_the_scenario() {
    let server = server(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let shard = |index: u32| {
        let overrides = Overrides {
            target: Some(server.url()),
            segment: Some(Segment { index, count: 4 }),
            ..Default::default()
        };
        let plan = scenario::parse(Path::new("s.toml"), SCENARIO, &overrides, &|_| None).unwrap();
        execute(
            plan,
            Some(dir.path().join(format!("shard-{index}"))),
            true,
            Controls::default(),
        )
    };
    let (a, b, c, d) = tokio::join!(shard(0), shard(1), shard(2), shard(3));
    let shards = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    let seen = server.shutdown().await;

    let peaks: Vec<u64> = shards.iter().map(|r| r.summary.peak_clients).collect();
    assert_eq!(
        peaks,
        [3, 3, 2, 2],
        "10 clients in shares that differ by at most one"
    );
    let sum =
        |f: fn(&wsstorm::metrics::Counts) -> u64| shards.iter().map(|r| f(&r.totals.counts)).sum::<u64>();
    assert_eq!(
        sum(|c| c.requests),
        seen.received,
        "every request reached the server once"
    );
    assert_eq!(sum(|c| c.connects), seen.connections);
    assert_eq!(
        sum(|c| c.connects) - sum(|c| c.reconnects),
        10,
        "the scenario's 10 clients"
    );
    assert_eq!(
        sum(|c| c.chaos_hits),
        5,
        "a count of 5 split between the shards: 2+1+1+1"
    );
    let mut owners: Vec<BTreeSet<u32>> = Vec::new();
    for (i, r) in shards.iter().enumerate() {
        assert_requests_reconcile(r);
        assert_eq!(
            r.summary.segment,
            Some(Segment {
                index: i as u32,
                count: 4
            })
        );
        owners.push(connection_rows(r).iter().filter_map(|row| row.client).collect());
        assert!(
            owners[i].iter().all(|c| c % 4 == i as u32),
            "shard {i} runs clients ≡ {i} mod 4"
        );
    }
    let all: BTreeSet<u32> = owners.iter().flatten().copied().collect();
    assert_eq!(all, (0..10).collect(), "every client number in exactly one shard");
    assert_eq!(owners.iter().map(BTreeSet::len).sum::<usize>(), 10);
}
