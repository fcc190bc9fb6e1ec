//! The named steps' and the flows' part of the reports: summary.json's `by_step` (counts and
//! the rtt histogram of each name, so that merge adds them exactly) and `by_flow`, and their
//! tables in summary.txt and report.html.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::markup::escape;
use super::stats::LatencyStats;
use crate::metrics::Latency;
use crate::metrics::steps::{StepCounts, Steps};
use crate::metrics::totals::SocketCounts;

/// One named step's requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSummary {
    #[serde(flatten)]
    pub counts: StepCounts,
    pub rtt: LatencyStats,
    /// An HTTP step's request → the message a rule with `since` matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<LatencyStats>,
}

/// One flow's clients and requests (all its steps' together).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowSummary {
    /// Clients that took this flow.
    pub clients: u64,
    #[serde(flatten)]
    pub counts: StepCounts,
    pub rtt: LatencyStats,
}

/// One socket's connections (over all clients) and requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketSummary {
    /// Clients that held it (every client holds every socket).
    pub clients: u64,
    pub connects: u64,
    pub drops: u64,
    #[serde(flatten)]
    pub counts: StepCounts,
    pub rtt: LatencyStats,
}

/// `by_socket`: each socket (with its clients, in plan order) and its connections (`counts`,
/// by socket number) and requests (from the steps named after it).
pub fn sockets(
    steps: &Steps,
    names: &[(String, u64)],
    counts: &[SocketCounts],
) -> BTreeMap<String, SocketSummary> {
    names
        .iter()
        .zip(
            counts
                .iter()
                .copied()
                .chain(std::iter::repeat(SocketCounts::default())),
        )
        .map(|((name, clients), c)| {
            let t = steps.flow(name).unwrap_or_default();
            (
                name.clone(),
                SocketSummary {
                    clients: *clients,
                    connects: c.connects,
                    drops: c.drops,
                    counts: t.counts,
                    rtt: LatencyStats::of(&t.rtt),
                },
            )
        })
        .collect()
}

/// `by_step` of a run's totals.
pub fn of(steps: &Steps) -> BTreeMap<String, StepSummary> {
    steps
        .iter()
        .map(|(name, t)| {
            (
                name.to_string(),
                StepSummary {
                    counts: t.counts,
                    rtt: LatencyStats::of(&t.rtt),
                    after: (!t.after.is_empty()).then(|| LatencyStats::of(&t.after)),
                },
            )
        })
        .collect()
}

/// `by_flow`: each flow's clients (`clients`, from the plan) and its requests (from the steps
/// named after it).
pub fn flows(steps: &Steps, clients: &BTreeMap<String, u64>) -> BTreeMap<String, FlowSummary> {
    clients
        .iter()
        .map(|(flow, n)| {
            let t = steps.flow(flow).unwrap_or_default();
            (
                flow.clone(),
                FlowSummary {
                    clients: *n,
                    counts: t.counts,
                    rtt: LatencyStats::of(&t.rtt),
                },
            )
        })
        .collect()
}

/// Adds shards' `by_step` into `steps` (counts add, histograms merge losslessly).
pub fn merge_into(steps: &mut Steps, by_step: &BTreeMap<String, StepSummary>) -> Result<(), String> {
    for (name, s) in by_step {
        let rtt = Latency::decode(&s.rtt.histogram)?;
        let after = match &s.after {
            Some(a) => Latency::decode(&a.histogram)?,
            None => Latency::new(),
        };
        steps.add(name, s.counts, (&rtt, &after));
    }
    Ok(())
}

/// The parts of a summary these tables show.
pub struct Tables<'a> {
    pub by_step: &'a BTreeMap<String, StepSummary>,
    pub by_flow: &'a BTreeMap<String, FlowSummary>,
    pub by_socket: &'a BTreeMap<String, SocketSummary>,
}

/// A row of a table: a name, its clients (flows, sockets), its counts and rtt.
type Row<'a> = (&'a String, Option<u64>, &'a StepCounts, &'a LatencyStats);

impl Tables<'_> {
    /// Step rows, flow rows, socket rows.
    fn rows(&self) -> [Vec<Row<'_>>; 3] {
        [
            self.by_step
                .iter()
                .map(|(n, st)| (n, None, &st.counts, &st.rtt))
                .collect(),
            self.by_flow
                .iter()
                .map(|(n, f)| (n, Some(f.clients), &f.counts, &f.rtt))
                .collect(),
            self.by_socket
                .iter()
                .map(|(n, k)| (n, Some(k.clients), &k.counts, &k.rtt))
                .collect(),
        ]
    }

    /// The tables in summary.txt: by step, by flow and by socket (with their clients).
    pub fn text(&self, s: &mut String) {
        for (title, rows) in ["by step", "by flow", "by socket"].into_iter().zip(self.rows()) {
            text_table(s, title, &rows);
        }
        for (name, k) in self.by_socket {
            let _ = writeln!(s, "  {name}: {} connects, {} drops", k.connects, k.drops);
        }
    }

    /// The tables in report.html.
    pub fn html(&self, h: &mut String) {
        let titles = [
            ("By step", "by-step", "step"),
            ("By flow", "by-flow", "flow"),
            ("By socket", "by-socket", "socket"),
        ];
        for (title, rows) in titles.into_iter().zip(self.rows()) {
            html_table(h, title, &rows);
        }
    }
}

fn text_table(s: &mut String, title: &str, rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let width = rows.iter().map(|r| r.0.len() + 2).max().unwrap_or(0).max(20);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{title:<width$}{:>9}{:>10}{:>10}{:>10}{:>8}{:>8}{:>11}{:>8}{:>10}{:>10}",
        "clients",
        "requests",
        "answered",
        "timeouts",
        "late",
        "lost",
        "unfinished",
        "checks",
        "p50 ms",
        "p99 ms"
    );
    for (name, clients, c, rtt) in rows {
        let ms = |v: f64| {
            if rtt.count == 0 {
                "-".to_string()
            } else {
                format!("{v:.3}")
            }
        };
        let _ = writeln!(
            s,
            "{name:<width$}{:>9}{:>10}{:>10}{:>10}{:>8}{:>8}{:>11}{:>8}{:>10}{:>10}",
            clients.map_or("-".to_string(), |n| n.to_string()),
            c.requests,
            c.answered,
            c.timeouts,
            c.late,
            c.lost,
            c.unfinished,
            c.check_failures,
            ms(rtt.p50_ms),
            ms(rtt.p99_ms)
        );
    }
}

fn html_table(h: &mut String, (title, id, what): (&str, &str, &str), rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>{title}</h2><table id=\"{id}\"><tr><th>{what}</th><th>clients</th><th>requests</th><th>answered</th><th>timeouts</th><th>late</th><th>lost</th><th>unfinished</th><th>check failures</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>"
    );
    for (name, clients, c, r) in rows {
        let ms = |v: f64| {
            if r.count == 0 {
                "–".to_string()
            } else {
                format!("{v:.3}")
            }
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            clients.map_or("–".to_string(), |n| n.to_string()),
            c.requests,
            c.answered,
            c.timeouts,
            c.late,
            c.lost,
            c.unfinished,
            c.check_failures,
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p99_ms),
            ms(r.max_ms)
        );
    }
    let _ = writeln!(h, "</table>");
}
