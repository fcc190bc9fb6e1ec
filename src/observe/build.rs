//! A run's totals as Prometheus series: the counters, gauges and histograms of the live
//! export, all cumulative since the run began (a scrape or a remote-write sample that is lost
//! costs resolution, never counts).

use super::families::{BUCKETS, Families, Family, Kind, Series};
use crate::metrics::steps::StepCounts;
use crate::metrics::{Counts, Latency, Totals};

/// The counters read straight from the totals' counts: name (without `_total`), help, count.
type Read = fn(&Counts) -> u64;
const COUNTERS: &[(&str, &str, Read)] = &[
    ("wsstorm_connect_attempts", "Connection attempts.", |c| {
        c.connect_attempts
    }),
    ("wsstorm_connects", "Connections opened (upgrade done).", |c| {
        c.connects
    }),
    (
        "wsstorm_reconnects",
        "Connections that replaced a dropped one.",
        |c| c.reconnects,
    ),
    (
        "wsstorm_closes",
        "Connections the client closed (the run's end, a scenario close).",
        |c| c.closes,
    ),
    (
        "wsstorm_requests",
        "Requests sent that expect a correlated reply.",
        |c| c.requests,
    ),
    ("wsstorm_answered", "Requests answered in time.", |c| c.answered),
    (
        "wsstorm_timeouts",
        "Requests without a reply within their timeout.",
        |c| c.timeouts,
    ),
    (
        "wsstorm_late",
        "Replies that came after their request timed out.",
        |c| c.late,
    ),
    (
        "wsstorm_lost",
        "Requests in flight when their connection dropped.",
        |c| c.lost,
    ),
    (
        "wsstorm_duplicates",
        "Replies to a request already answered.",
        |c| c.duplicate,
    ),
    (
        "wsstorm_unmatched",
        "Replies whose id matched no request of their connection.",
        |c| c.unmatched,
    ),
    (
        "wsstorm_check_failures",
        "Answered requests whose reply failed a check.",
        |c| c.check_failures,
    ),
    (
        "wsstorm_pushes",
        "Server messages that are no reply (pushes).",
        |c| c.pushes,
    ),
    (
        "wsstorm_push_gaps",
        "Sequence numbers missing between pushes.",
        |c| c.push_gaps,
    ),
    ("wsstorm_messages_sent", "WebSocket data messages sent.", |c| {
        c.messages_sent
    }),
    (
        "wsstorm_messages_received",
        "WebSocket data messages received.",
        |c| c.messages_received,
    ),
    (
        "wsstorm_sent_bytes",
        "Bytes of the data messages sent (before compression).",
        |c| c.bytes_sent,
    ),
    (
        "wsstorm_received_bytes",
        "Bytes of the data messages received (after decompression).",
        |c| c.bytes_received,
    ),
];

/// The gauges, derived from the counts.
const GAUGES: &[(&str, &str, Read)] = &[
    ("wsstorm_connected", "Connections open now.", Counts::connected),
    (
        "wsstorm_connecting",
        "Connection attempts under way.",
        Counts::connecting,
    ),
    (
        "wsstorm_backing_off",
        "Clients waiting before their next connection attempt.",
        Counts::backing_off,
    ),
    (
        "wsstorm_in_flight",
        "Requests sent and not yet answered, timed out or lost.",
        Counts::in_flight,
    ),
];

/// A chaos action of the scenario: its name, its index among the actions, and how many
/// times it fired.
pub struct ChaosFired {
    pub name: &'static str,
    pub index: u32,
    pub times: u64,
}

/// Everything of `totals` as series, with the clients the load calls for now.
pub fn families(totals: &Totals, target: u64, chaos: &[ChaosFired], elapsed_s: f64, last: bool) -> Families {
    let c = &totals.counts;
    let mut all = Vec::with_capacity(COUNTERS.len() + GAUGES.len() + 12);
    let single = |name: &str, help: &str, kind, value: u64| {
        Family::new(name, help, kind, vec![Series::plain(Vec::new(), value as f64)])
    };
    all.extend(
        COUNTERS
            .iter()
            .map(|(name, help, read)| single(name, help, Kind::Counter, read(c))),
    );
    all.push(single(
        "wsstorm_target_clients",
        "Clients the load calls for now (this segment's share).",
        Kind::Gauge,
        target,
    ));
    all.extend(
        GAUGES
            .iter()
            .map(|(name, help, read)| single(name, help, Kind::Gauge, read(c))),
    );
    // Label values from the scenario (counter and step names) masked here, one by one.
    let by = |key: &str, values: Vec<(String, u64)>| {
        values
            .into_iter()
            .map(|(v, n)| Series::plain(vec![(key.to_string(), masked(&v))], n as f64))
            .collect::<Vec<_>>()
    };
    let counter = |name: &str, help: &str, series| Family::new(name, help, Kind::Counter, series);
    all.push(counter(
        "wsstorm_drops",
        "Connections that ended without the client closing them, by cause.",
        by("cause", named(&totals.drops)),
    ));
    all.push(counter(
        "wsstorm_connect_errors",
        "Connection attempts that failed, by cause.",
        by("cause", named(&totals.connect_errors)),
    ));
    all.push(counter(
        "wsstorm_rule_counts",
        "The scenario's named counters ([[on_message]] rules and protocol presets), by name.",
        by("counter", totals.counters().into_iter().collect()),
    ));
    all.push(counter(
        "wsstorm_chaos_actions",
        "Chaos actions fired, by action and its index among the scenario's actions.",
        chaos
            .iter()
            .map(|a| {
                let labels = vec![
                    ("action".to_string(), a.name.to_string()),
                    ("index".to_string(), a.index.to_string()),
                ];
                Series::plain(labels, a.times as f64)
            })
            .collect(),
    ));
    steps(totals, &mut all);
    Families {
        elapsed_s,
        last,
        families: all,
    }
}

/// The named steps' counters and histograms, and the run's histograms.
fn steps(totals: &Totals, all: &mut Vec<Family>) {
    let counter = |name: &str, help: &str, series| Family::new(name, help, Kind::Counter, series);
    let steps: Vec<_> = totals.steps.iter().collect();
    let step_label = |name: &str| vec![("step".to_string(), masked(name))];
    for (name, help, read) in [
        (
            "wsstorm_step_requests",
            "Named steps' requests.",
            (|s| s.requests) as fn(&StepCounts) -> u64,
        ),
        (
            "wsstorm_step_timeouts",
            "Named steps' requests that timed out.",
            |s| s.timeouts,
        ),
    ] {
        let series = steps
            .iter()
            .map(|(step, t)| Series::plain(step_label(step), read(&t.counts) as f64))
            .collect();
        all.push(counter(name, help, series));
    }
    for (name, help, latency) in [
        ("wsstorm_rtt_seconds", "Request to correlated reply.", &totals.rtt),
        (
            "wsstorm_connect_time_seconds",
            "TCP connect and WebSocket upgrade.",
            &totals.connect_time,
        ),
        (
            "wsstorm_reconnect_time_seconds",
            "A drop to the connection open again.",
            &totals.reconnect_time,
        ),
        (
            "wsstorm_ping_rtt_seconds",
            "WebSocket ping to pong.",
            &totals.ping_rtt,
        ),
    ] {
        all.push(histogram(name, help, vec![histogram_series(Vec::new(), latency)]));
    }
    all.push(histogram(
        "wsstorm_step_rtt_seconds",
        "Named steps: request to correlated reply.",
        steps
            .iter()
            .map(|(step, t)| histogram_series(step_label(step), &t.rtt))
            .collect(),
    ));
}

fn masked(value: &str) -> String {
    crate::redact::text(value).into_owned()
}

fn named<K: ToString>(map: &std::collections::BTreeMap<K, u64>) -> Vec<(String, u64)> {
    map.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn histogram(name: &str, help: &str, series: Vec<Series>) -> Family {
    Family::new(name, help, Kind::Histogram, series)
}

/// A histogram series from a latency histogram (µs): the cumulative count under each bound,
/// and the sum in seconds (each value as HdrHistogram keeps it, to 3 significant digits).
fn histogram_series(labels: Vec<(String, String)>, latency: &Latency) -> Series {
    let mut buckets = vec![0u64; BUCKETS.len()];
    let mut sum_us = 0f64;
    latency.each(|us, middle, n| {
        sum_us += middle as f64 * n as f64;
        // The first bound at or above the value, and every one after it.
        let first = BUCKETS.partition_point(|(le, _)| (le * 1e6) < us as f64);
        for b in &mut buckets[first..] {
            *b += n;
        }
    });
    Series {
        labels,
        value: sum_us / 1e6,
        buckets,
        count: latency.count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        let mut l = Latency::new();
        for us in [50, 100, 101, 900, 1_000, 2_000_000, 90_000_000] {
            l.record_us(us);
        }
        let s = histogram_series(Vec::new(), &l);
        assert_eq!(s.count, 7);
        // ≤ 100 µs: 50, 100; ≤ 250 µs: and 101; ≤ 1 ms: and 900, 1000; ≤ 2.5 s: and 2 s.
        assert_eq!(&s.buckets[..4], &[2, 3, 3, 5]);
        assert_eq!(s.buckets[13], 6);
        assert_eq!(
            *s.buckets.last().unwrap(),
            6,
            "90 s is above the last bound: +Inf only"
        );
        let exact = (50 + 100 + 101 + 900 + 1_000 + 2_000_000 + 90_000_000) as f64 / 1e6;
        assert!((s.value - exact).abs() / exact < 1e-3, "{} vs {exact}", s.value);
    }

    #[test]
    fn every_count_and_cause_is_a_series() {
        let mut totals = Totals::default();
        totals.counts.requests = 7;
        totals.counts.connects = 3;
        totals.counts.drops = 1;
        totals.drops.insert(crate::metrics::DropCause::Reset, 1);
        let chaos = [ChaosFired {
            name: "drop",
            index: 0,
            times: 2,
        }];
        let f = families(&totals, 5, &chaos, 2.0, false);
        assert_eq!(f.value("wsstorm_requests", &[]), Some(7.0));
        assert_eq!(f.value("wsstorm_connected", &[]), Some(2.0));
        assert_eq!(f.value("wsstorm_target_clients", &[]), Some(5.0));
        assert_eq!(f.value("wsstorm_drops", &[("cause", "reset")]), Some(1.0));
        assert_eq!(
            f.value("wsstorm_chaos_actions", &[("action", "drop"), ("index", "0")]),
            Some(2.0)
        );
    }
}
