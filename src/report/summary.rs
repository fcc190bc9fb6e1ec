//! summary.json and summary.txt: the run's result in one machine-readable document (with the
//! raw histograms, so it can be re-reported and merged) and its human rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::by_step;
pub use super::stats::{CountStats, LatencyStats};
use crate::metrics::{
    Aborted, Counts, ExecReport, LiveExport, ProxyCounts, Recovery, ServerCounts, Totals, Verdict,
};
use crate::scenario::Chaos;
use crate::scenario::segment::Segment;

pub const SCHEMA_VERSION: u32 = 1;

/// How a threshold on a metric with no samples shows its value.
pub const NO_DATA: &str = "no data (the metric has no samples)";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every threshold passed.
    Passed,
    /// A threshold was crossed (or aborted the run).
    ThresholdsCrossed,
    /// No client ever connected, or a results file could not be written.
    RunFailed,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::ThresholdsCrossed => "thresholds_crossed",
            Outcome::RunFailed => "run_failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// As the end of summary.txt and report.html say it.
    pub fn verdict(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::ThresholdsCrossed => "THRESHOLDS CROSSED",
            Outcome::RunFailed => "RUN FAILED",
            Outcome::Interrupted => "INTERRUPTED",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub wsstorm_version: String,
    pub scenario: String,
    pub scenario_file: String,
    pub target: String,
    pub embedded: bool,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub planned_duration_s: f64,
    pub elapsed_s: f64,
    pub peak_clients: u64,
    /// The shard this run was, when the scenario was split (`--segment i/n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
    /// Seconds after `--start-at` that this run began (its timeline kept the anchor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_start_s: Option<f64>,
    /// What the reader of the result must know (TLS not verified, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub outcome: Outcome,
    /// The `abort_on_fail` threshold that ended the run early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<Aborted>,
    pub counts: Counts,
    pub rates: Rates,
    pub connect_errors: BTreeMap<String, u64>,
    pub drops: BTreeMap<String, u64>,
    /// Clients that gave up, by the cause of their last failed attempt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gave_up_causes: BTreeMap<String, u64>,
    /// Clients a `[[reconnect.on]]` rule stopped, by cause.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stopped_causes: BTreeMap<String, u64>,
    /// HTTP steps' errors: `http_<status>` (not an expected status), `failed`, `timeout`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_errors: BTreeMap<String, u64>,
    /// The first message of each connect-error kind (why: the TLS verifier's complaint, an
    /// HTTP status line and the start of its body, …), masked and cut to 300 bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connect_error_reasons: BTreeMap<String, String>,
    /// The first message of each drop cause (a server's close reason, a read error, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drop_reasons: BTreeMap<String, String>,
    pub latency: BTreeMap<String, LatencyStats>,
    /// The `[[on_message]]` rules' counters, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    /// The first message counted by each rule with `example = true` (a protocol error: what
    /// the server sent), masked and cut to 200 characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_examples: BTreeMap<String, String>,
    /// Each named step's requests (`name = "…"` on a request step).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_step: BTreeMap<String, by_step::StepSummary>,
    /// Each `[[flows]]` flow's clients and requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_flow: BTreeMap<String, by_step::FlowSummary>,
    /// Each `[[sockets]]` socket's connections and requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_socket: BTreeMap<String, by_step::SocketSummary>,
    pub reconnect_attempts: CountStats,
    /// The scenario's chaos actions, in order.
    pub chaos: Vec<String>,
    /// Each `exec` chaos command run: its exit status, time and output files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<ExecReport>,
    /// Recovery after each chaos action that fired.
    pub recovery: Vec<Recovery>,
    pub thresholds: Vec<ThresholdResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded_server: Option<ServerCounts>,
    /// What the built-in proxy saw, when network chaos ran clients through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyCounts>,
    /// What the live export did (`--metrics-listen`, `--metrics-out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_metrics: Option<LiveExport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    pub timeout_rate: f64,
    pub error_rate: f64,
    pub requests_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub metric: String,
    pub expression: String,
    /// In the threshold's unit: ms for latencies, a fraction for rates, a number for counts.
    /// None (null): the metric has no samples, and the threshold failed for want of data.
    pub value: Option<f64>,
    pub limit: f64,
    pub passed: bool,
    /// The measured value as shown to people.
    pub shown: String,
}

impl ThresholdResult {
    pub fn of(v: &Verdict) -> Self {
        ThresholdResult {
            metric: v.threshold.key(),
            expression: v.threshold.source.clone(),
            value: v.value,
            limit: v.threshold.limit,
            passed: v.passed,
            shown: v
                .value
                .map_or_else(|| NO_DATA.to_string(), |value| v.threshold.show_value(value)),
        }
    }
}

/// The parts of a run the summary describes besides its totals.
pub struct RunInfo {
    pub scenario: String,
    pub scenario_file: String,
    pub target: String,
    pub embedded: bool,
    pub started_at: String,
    pub planned_duration_s: f64,
    pub elapsed_s: f64,
    pub peak_clients: u64,
    pub segment: Option<Segment>,
    pub late_start_s: Option<f64>,
    pub outcome: Outcome,
    /// Said with the result: the run's figures hold, but something about it was unusual.
    pub warnings: Vec<String>,
    pub embedded_server: Option<ServerCounts>,
    pub proxy: Option<ProxyCounts>,
    pub live: Option<LiveExport>,
    pub exec: Vec<ExecReport>,
    pub aborted: Option<Aborted>,
    /// The first message of each cause: (connect errors, drops).
    pub reasons: (BTreeMap<String, String>, BTreeMap<String, String>),
    /// How many of this run's clients take each flow.
    pub flow_clients: BTreeMap<String, u64>,
    /// Each socket, in plan order, and the clients that hold it.
    pub socket_clients: Vec<(String, u64)>,
}

impl Summary {
    pub fn new(
        info: RunInfo,
        totals: &Totals,
        verdicts: &[Verdict],
        recovery: Vec<Recovery>,
        chaos: &[Chaos],
    ) -> Self {
        let c = &totals.counts;
        Summary {
            schema_version: SCHEMA_VERSION,
            wsstorm_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: info.scenario,
            scenario_file: info.scenario_file,
            target: info.target,
            embedded: info.embedded,
            started_at: info.started_at,
            planned_duration_s: info.planned_duration_s,
            elapsed_s: info.elapsed_s,
            peak_clients: info.peak_clients,
            segment: info.segment,
            late_start_s: info.late_start_s,
            warnings: info.warnings,
            outcome: info.outcome,
            aborted: info.aborted,
            counts: *c,
            rates: Rates {
                timeout_rate: c.timeout_rate(),
                error_rate: c.error_rate(),
                requests_per_s: if info.elapsed_s > 0.0 {
                    c.requests as f64 / info.elapsed_s
                } else {
                    0.0
                },
            },
            connect_errors: totals
                .connect_errors
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            drops: totals.drops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            gave_up_causes: totals.gave_up_causes.clone(),
            stopped_causes: totals.stopped_causes.clone(),
            http_errors: totals.http_errors.clone(),
            connect_error_reasons: info.reasons.0,
            drop_reasons: info.reasons.1,
            latency: totals
                .latencies()
                .map(|(name, h)| (name.to_string(), LatencyStats::of(h)))
                .collect(),
            counters: totals.counters(),
            counter_examples: totals.counter_examples(),
            by_step: by_step::of(&totals.steps),
            by_flow: by_step::flows(&totals.steps, &info.flow_clients),
            by_socket: by_step::sockets(&totals.steps, &info.socket_clients, &totals.sockets),
            reconnect_attempts: CountStats::of(&totals.reconnect_attempts),
            chaos: chaos.iter().map(Chaos::describe).collect(),
            exec: info.exec,
            recovery,
            thresholds: verdicts.iter().map(ThresholdResult::of).collect(),
            embedded_server: info.embedded_server,
            proxy: info.proxy,
            live_metrics: info.live,
        }
    }

    /// The by-step, by-flow and by-socket tables.
    pub fn tables(&self) -> by_step::Tables<'_> {
        by_step::Tables {
            by_step: &self.by_step,
            by_flow: &self.by_flow,
            by_socket: &self.by_socket,
        }
    }

    /// The text shown at the end of a run and saved as summary.txt.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        self.text_heading(&mut s);
        self.text_counts(&mut s);
        self.text_connections(&mut s);
        self.text_sides(&mut s);
        self.text_latency(&mut s);
        self.tables().text(&mut s);
        self.text_recovery(&mut s);
        self.text_verdict(&mut s);
        s
    }

    fn text_heading(&self, s: &mut String) {
        let kind = if self.embedded { " (embedded)" } else { "" };
        let _ = writeln!(
            s,
            "wsstorm {} — {} against {}{kind}",
            self.wsstorm_version, self.scenario, self.target
        );
        let shard = self
            .segment
            .map(|seg| format!(" (segment {seg})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "run         {:.1}s of {:.0}s planned, peak {} clients{shard}, started {}",
            self.elapsed_s, self.planned_duration_s, self.peak_clients, self.started_at
        );
        if let Some(a) = &self.aborted {
            let _ = writeln!(
                s,
                "aborted     at {:.1}s: {} {} was crossed (measured {})",
                a.at_s, a.metric, a.expression, a.measured
            );
        }
        let _ = writeln!(s);
    }

    /// Requests, replies, checks, waits, the open rate, capped requests, messages.
    fn text_counts(&self, s: &mut String) {
        let c = &self.counts;
        let unfinished = match (c.unfinished, c.unfinished_replay) {
            (0, _) => String::new(),
            (_, 0) => " (in flight when the run was stopped at once)".to_string(),
            (n, r) if r == n => " (waiting to be resent after a drop when the run ended)".to_string(),
            (n, r) => format!(
                " ({} in flight when the run was stopped at once, {r} waiting to be resent)",
                n - r
            ),
        };
        let _ = writeln!(
            s,
            "requests    {} sent: {} answered, {} timed out, {} lost, {} unfinished{unfinished}",
            c.requests, c.answered, c.timeouts, c.lost, c.unfinished
        );
        let _ = writeln!(
            s,
            "replies     {} late, {} duplicate, {} unmatched",
            c.late, c.duplicate, c.unmatched
        );
        let streams = self.latency.get("rtt_first").filter(|l| l.count > 0);
        if c.check_failures + c.stream_parts > 0 || streams.is_some() {
            let first = streams.map_or(String::new(), |l| {
                format!(
                    "; streams: first reply p50 {:.2} ms, p99 {:.2} ms",
                    l.p50_ms, l.p99_ms
                )
            });
            let _ = writeln!(
                s,
                "checks      {} answered requests failed a check{first}",
                c.check_failures
            );
        }
        if c.waits + c.wait_timeouts > 0 {
            let _ = writeln!(
                s,
                "wait_for    {} messages seen, {} timed out",
                c.waits, c.wait_timeouts
            );
        }
        if self.latency.get("rtt_corrected").is_some_and(|l| l.count > 0) || c.late_sends > 0 {
            let _ = writeln!(
                s,
                "open rate   {} passes of the loop began late; rtt_corrected is timed from when each request was due",
                c.late_sends
            );
        }
        if c.capped > 0 {
            let _ = writeln!(
                s,
                "capped      {} requests not sent: their connection had correlation.max_in_flight requests waiting",
                c.capped
            );
        }
        let _ = writeln!(
            s,
            "messages    {} sent, {} received ({} / {} bytes)",
            c.messages_sent, c.messages_received, c.bytes_sent, c.bytes_received
        );
        if c.deflate_offered > 0 {
            let share = |wire: u64, bytes: u64| match bytes {
                0 => "-".to_string(),
                _ => format!("{:.1}%", wire as f64 * 100.0 / bytes as f64),
            };
            let _ = writeln!(
                s,
                "deflate     negotiated on {} of {} connections that offered it; on those, {} bytes sent as {} on the wire ({}), {} received as {} ({})",
                c.deflate_connects,
                c.deflate_offered,
                c.deflate_bytes_sent,
                c.wire_bytes_sent,
                share(c.wire_bytes_sent, c.deflate_bytes_sent),
                c.deflate_bytes_received,
                c.wire_bytes_received,
                share(c.wire_bytes_received, c.deflate_bytes_received)
            );
        }
    }

    /// Connections, rates, reconnects, the heartbeat, pushes, causes.
    fn text_connections(&self, s: &mut String) {
        let c = &self.counts;
        let _ = writeln!(
            s,
            "connections {} opened, {} failed, {} dropped, {} closed",
            c.connects, c.connect_errors, c.drops, c.closes
        );
        let _ = writeln!(
            s,
            "rates       {:.1} requests/s, timeout rate {:.4}%, error rate {:.4}%",
            self.rates.requests_per_s,
            self.rates.timeout_rate * 100.0,
            self.rates.error_rate * 100.0
        );
        if c.reconnects + c.gave_up + c.replayed > 0 {
            let a = &self.reconnect_attempts;
            let _ = writeln!(
                s,
                "reconnects  {} (attempts mean {:.2}, p90 {}, max {}), {} gave up, {} requests replayed",
                c.reconnects, a.mean, a.p90, a.max, c.gave_up, c.replayed
            );
        }
        if c.pings > 0 {
            let _ = writeln!(s, "heartbeat   {} pings, {} pongs", c.pings, c.pongs);
        }
        if c.pushes > 0 {
            let _ = writeln!(
                s,
                "pushes      {} received, {} sequence gaps, {} repeated",
                c.pushes, c.push_gaps, c.push_duplicates
            );
        }
        if c.capture_failures + c.capture_missing > 0 {
            let _ = writeln!(
                s,
                "captures    {} found no value, {} sends not sent for want of one",
                c.capture_failures, c.capture_missing
            );
        }
        if c.http_requests > 0 {
            let errors: Vec<String> = self.http_errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let errors = if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join(", "))
            };
            let _ = writeln!(
                s,
                "http        {} requests, {} errors{errors}",
                c.http_requests, c.http_errors
            );
        }
        if !self.counters.is_empty() {
            let list: Vec<String> = self.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "counted     {}", list.join(", "));
            for (name, example) in &self.counter_examples {
                let _ = writeln!(s, "  {name:<16} first: {example:?}");
            }
        }
        let none = BTreeMap::new();
        for (title, map, reasons) in [
            (
                "connect errors",
                &self.connect_errors,
                &self.connect_error_reasons,
            ),
            ("drops", &self.drops, &self.drop_reasons),
            ("gave up", &self.gave_up_causes, &none),
            ("stopped", &self.stopped_causes, &none),
        ] {
            if !map.is_empty() {
                let list: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(s, "{title:<11} {}", list.join(", "));
                // Why, the first time each happened.
                for (cause, why) in reasons {
                    let _ = writeln!(s, "  {cause:<16} {why}");
                }
            }
        }
    }

    /// What the embedded server, the chaos proxy and the exec commands saw.
    fn text_sides(&self, s: &mut String) {
        super::live::text(self.live_metrics.as_ref(), s);
        if let Some(server) = &self.embedded_server {
            let _ = writeln!(
                s,
                "server saw  {} connections, {} messages, {} answered, {} withheld",
                server.connections, server.received, server.answered, server.withheld
            );
            let extra: Vec<String> = [
                ("closed on schedule", server.closed_by_schedule),
                ("refused (503)", server.refused),
                ("unauthorized (401)", server.unauthorized),
                ("pushes", server.pushes),
                ("closed idle", server.idle_closed),
                ("pings", server.pings_sent),
                ("pongs", server.pongs_received),
                ("with permessage-deflate", server.deflated),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
            if !extra.is_empty() {
                let _ = writeln!(s, "            {}", extra.join(", "));
            }
        }
        if let Some(p) = &self.proxy {
            let _ = writeln!(
                s,
                "proxy       {} connections ({} upstream failures), {} reset by chaos, {} refused, {} closed by limit_data; {} / {} bytes up / down",
                p.connections,
                p.upstream_failures,
                p.reset,
                p.refused,
                p.limited,
                p.bytes_upstream,
                p.bytes_downstream
            );
        }
        for e in &self.exec {
            let status = match (e.outcome.as_str(), e.exit_code, e.signal) {
                ("exited", Some(code), _) => format!("exited {code}"),
                ("exited", None, Some(sig)) => format!("killed by signal {sig}"),
                ("failed_to_start", ..) => format!("failed to start: {}", e.error.as_deref().unwrap_or("")),
                (other, ..) => format!("{} (killed)", other.replace('_', " ")),
            };
            let _ = writeln!(
                s,
                "exec        at {:.3}s: {} — {status} after {:.3}s (output in {})",
                e.at_s, e.command, e.duration_s, e.stdout
            );
        }
    }

    fn text_latency(&self, s: &mut String) {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<16}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "latency (ms)", "count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"
        );
        for (name, l) in self
            .latency
            .iter()
            .filter(|(name, l)| l.count > 0 || *name == "rtt")
        {
            let _ = writeln!(
                s,
                "{name:<16}{:>9}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
                l.count, l.min_ms, l.mean_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p99_9_ms, l.max_ms
            );
        }
    }

    fn text_recovery(&self, s: &mut String) {
        if self.recovery.is_empty() {
            return;
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "recovery after chaos (connected back to 99 %, one-second p99 rtt back at or under its limit: [recovery], by default 2x or +5ms of before, whichever is larger)"
        );
        let secs = |v: Option<f64>| v.map_or("not recovered".to_string(), |v| format!("{v:.3}s"));
        for r in &self.recovery {
            let rtt = match (r.rtt_p99_before_ms, &r.cut_short_by) {
                (None, _) => "no rtt before".to_string(),
                (Some(base), Some(next)) => {
                    format!("rtt not back when {next} began (cut short; p99 before {base:.3}ms)")
                }
                (Some(base), None) => format!(
                    "rtt {} (p99 before {base:.3}ms, back at or under {:.3}ms)",
                    secs(r.rtt_recovered_s),
                    r.rtt_limit_ms.unwrap_or(2.0 * base)
                ),
            };
            let _ = writeln!(
                s,
                "  {:>8.3}s  {:<14} hit {:>6}  connected {} -> min {}: back in {}; {rtt}",
                r.at_s,
                r.how,
                r.hit,
                r.connected_before,
                r.connected_min,
                secs(r.connected_recovered_s)
            );
        }
    }

    fn text_verdict(&self, s: &mut String) {
        if !self.thresholds.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "thresholds");
            for t in &self.thresholds {
                let mark = if t.passed { "pass" } else { "FAIL" };
                let label = format!("{} {}", t.metric, t.expression);
                let _ = writeln!(s, "  {mark}  {label:<32} measured {}", t.shown);
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "result      {}", self.outcome.verdict());
        for warning in &self.warnings {
            let _ = writeln!(s, "warning     {warning}");
        }
        if let Some(seg) = self.segment.filter(|seg| seg.count > 1) {
            let _ = writeln!(
                s,
                "            (segment {seg} alone: `wsstorm merge` judges the thresholds on the whole run)"
            );
        }
    }
}
