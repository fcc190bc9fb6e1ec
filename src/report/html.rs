//! report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) with
//! the run's charts over time — clients, throughput, rtt percentiles, errors, reconnects —
//! every chaos action drawn as a marked span on each chart, and the summary's tables. Charts
//! of long runs are downsampled for drawing only (the CSV keeps every second).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::junit::escape;
use super::summary::{Outcome, Summary};

/// Most points drawn per line; longer runs are bucketed (a 1-hour run has 3 600 rows).
const MAX_POINTS: usize = 900;
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;
const COLORS: [&str; 5] = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728"];

/// timeseries.csv read back: numeric columns by name, and the chaos column.
#[derive(Debug, Default)]
pub struct Series {
    pub columns: BTreeMap<String, Vec<f64>>,
    pub chaos: Vec<String>,
}

impl Series {
    pub fn read(path: &Path) -> io::Result<Series> {
        let mut reader = csv::Reader::from_path(path).map_err(io::Error::other)?;
        let headers = reader.headers().map_err(io::Error::other)?.clone();
        let mut series = Series::default();
        for record in reader.records() {
            let record = record.map_err(io::Error::other)?;
            for (name, value) in headers.iter().zip(record.iter()) {
                if name == "chaos" {
                    series.chaos.push(value.to_string());
                } else {
                    series
                        .columns
                        .entry(name.to_string())
                        .or_default()
                        .push(value.parse().ok().filter(|v: &f64| v.is_finite()).unwrap_or(0.0));
                }
            }
        }
        Ok(series)
    }

    fn column(&self, name: &str) -> &[f64] {
        self.columns.get(name).map_or(&[], Vec::as_slice)
    }

    /// Spans of each chaos action (`name#index`) over the rows it was on: (from, to, label).
    /// One-second resolution; `chaos_spans` prefers connections.csv's exact times.
    fn spans_from_rows(&self) -> Vec<(f64, f64, String)> {
        let times = self.column("elapsed_s");
        let mut open: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let mut spans = Vec::new();
        for (i, cell) in self.chaos.iter().enumerate() {
            let end = times.get(i).copied().unwrap_or(0.0);
            let start = if i == 0 { 0.0 } else { times[i - 1] };
            let on: Vec<&str> = cell.split_whitespace().collect();
            for (name, (from, to)) in std::mem::take(&mut open) {
                if on.contains(&name.as_str()) {
                    open.insert(name, (from, to));
                } else {
                    spans.push((from, to, name));
                }
            }
            for name in on {
                open.entry(name.to_string()).or_insert((start, end)).1 = end;
            }
        }
        spans.extend(open.into_iter().map(|(name, (from, to))| (from, to, name)));
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        spans
    }

    /// Chaos spans at the exact times of connections.csv's `chaos` and `chaos_end` rows: an
    /// action without an end row lasts to the end when the last second still shows it on, and
    /// is a moment otherwise. Without those rows, the one-second spans of timeseries.csv.
    pub fn chaos_spans(&self, connections: &Path) -> Vec<(f64, f64, String)> {
        let Ok(mut reader) = csv::Reader::from_path(connections) else {
            return self.spans_from_rows();
        };
        let mut open: Vec<(f64, String)> = Vec::new();
        let mut spans = Vec::new();
        for row in reader.deserialize::<ChaosRow>().flatten() {
            match row.event.as_str() {
                "chaos" => open.push((row.time_s, row.cause)),
                "chaos_end" => {
                    if let Some(at) = open.iter().position(|(_, label)| *label == row.cause) {
                        let (from, label) = open.remove(at);
                        spans.push((from, row.time_s, label));
                    }
                }
                _ => {}
            }
        }
        let last_on = self.chaos.last().map(String::as_str).unwrap_or("");
        let end = self.column("elapsed_s").last().copied().unwrap_or(0.0);
        for (from, label) in open {
            let on = last_on.split_whitespace().any(|l| l == label);
            spans.push((from, if on { end } else { from }, label));
        }
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        spans
    }
}

#[derive(serde::Deserialize)]
struct ChaosRow {
    time_s: f64,
    event: String,
    cause: String,
}

/// The page for `summary`, its time series and its chaos spans.
pub fn render(summary: &Summary, series: &Series, spans: &[(f64, f64, String)]) -> String {
    let mut h = String::new();
    let verdict_class = if summary.outcome == Outcome::Passed {
        "pass"
    } else {
        "fail"
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsstorm — {title}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1000px; color: #222; padding: 0 12px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} h2 {{ font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
.meta {{ color: #555; }} .badge {{ display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; color: #fff; }}
.pass {{ background: #2e7d32; }} .fail {{ background: #c62828; }}
table {{ border-collapse: collapse; margin: 6px 0 12px; }} th, td {{ padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} th {{ background: #f6f6f6; }}
td.ok {{ color: #2e7d32; font-weight: 600; }} td.bad {{ color: #c62828; font-weight: 600; }}
svg.chart {{ display: block; margin: 4px 0 18px; }} svg text {{ font: 11px system-ui, sans-serif; fill: #444; }}
.legend span {{ margin-right: 14px; }} .legend i {{ display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }}
</style></head><body>
<h1>{title}</h1>
<p class="meta">target <code>{target}</code>{embedded} · started {started} · {elapsed:.1} s of {planned:.0} s planned · peak {peak} clients · wsstorm {version}</p>
<p><span class="badge {verdict_class}" id="verdict">{verdict}</span></p>
"#,
        title = escape(&summary.scenario),
        target = escape(&summary.target),
        embedded = if summary.embedded {
            " (built-in target)"
        } else {
            ""
        },
        started = escape(&summary.started_at),
        elapsed = summary.elapsed_s,
        planned = summary.planned_duration_s,
        peak = summary.peak_clients,
        version = escape(&summary.wsstorm_version),
        verdict = escape(&summary.outcome.verdict().to_uppercase()),
    );
    if let Some(a) = &summary.aborted {
        let _ = writeln!(
            h,
            "<p id=\"aborted\"><b>Aborted</b> at {:.1} s: {} {} was crossed (measured {}).</p>",
            a.at_s,
            escape(&a.metric),
            escape(&a.expression),
            escape(&a.measured)
        );
    }
    for warning in &summary.warnings {
        let _ = writeln!(h, "<p class=\"warning\"><b>Warning</b>: {}</p>", escape(warning));
    }
    thresholds(&mut h, summary);
    if !summary.chaos.is_empty() {
        let _ = writeln!(h, "<h2>Chaos</h2><ol start=\"0\">");
        for c in &summary.chaos {
            let _ = writeln!(h, "<li>{}</li>", escape(c));
        }
        let _ = writeln!(h, "</ol>");
    }
    let _ = writeln!(h, "<h2>Over time</h2>");
    let t = series.column("elapsed_s");
    let charts: [(&str, &str, bool, &[&str]); 6] = [
        (
            "Clients",
            "clients",
            false,
            &["target_clients", "connected", "connecting", "backing_off"],
        ),
        (
            "Throughput",
            "messages / s",
            false,
            &["messages_sent", "messages_received"],
        ),
        (
            "Round-trip time",
            "ms",
            true,
            &["rtt_p50_ms", "rtt_p90_ms", "rtt_p99_ms"],
        ),
        (
            "Timeouts, lost and errors",
            "per s",
            false,
            &["timeouts", "lost", "connect_errors", "drops"],
        ),
        (
            "Connects and reconnects",
            "per s",
            false,
            &["connects", "reconnects"],
        ),
        ("In flight", "requests", false, &["in_flight"]),
    ];
    for (title, unit, peaks, names) in charts {
        let lines: Vec<(&str, &[f64])> = names
            .iter()
            .filter(|n| series.columns.contains_key(**n))
            .map(|n| (*n, series.column(n)))
            .collect();
        chart(&mut h, title, unit, t, &lines, peaks, spans);
    }
    tables(&mut h, summary);
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} seconds in timeseries.csv{}; every connection event in connections.csv; all figures in summary.json.</p>\n</body></html>",
        t.len(),
        if t.len() > MAX_POINTS {
            format!(" (charts drawn from {MAX_POINTS} buckets, peaks kept for latency)")
        } else {
            String::new()
        }
    );
    h
}

fn thresholds(h: &mut String, summary: &Summary) {
    if summary.thresholds.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>Thresholds</h2><table id=\"thresholds\"><tr><th>metric</th><th>threshold</th><th>measured</th><th>verdict</th></tr>"
    );
    for t in &summary.thresholds {
        let (class, word) = if t.passed { ("ok", "pass") } else { ("bad", "FAIL") };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
            escape(&t.metric),
            escape(&t.expression),
            escape(&t.shown)
        );
    }
    let _ = writeln!(h, "</table>");
}

/// One line chart in inline SVG, with the chaos spans shaded behind the lines.
fn chart(
    h: &mut String,
    title: &str,
    unit: &str,
    t: &[f64],
    lines: &[(&str, &[f64])],
    peaks: bool,
    spans: &[(f64, f64, String)],
) {
    let t_max = t.last().copied().unwrap_or(1.0).max(1.0);
    let points: Vec<(&str, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|(name, values)| (*name, downsample(t, values, peaks)))
        .collect();
    let y_max = nice(
        points
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .fold(0.0, f64::max),
    );
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / t_max * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;
    let _ = writeln!(h, "<h3>{title}</h3><div class=\"legend\">");
    for (i, (name, _)) in lines.iter().enumerate() {
        let _ = write!(
            h,
            "<span><i style=\"background:{}\"></i>{name}</span>",
            COLORS[i % COLORS.len()]
        );
    }
    let _ = writeln!(
        h,
        "</div>\n<svg class=\"chart\" role=\"img\" aria-label=\"{title}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (k, (from, to, label)) in spans.iter().enumerate() {
        let (x0, x1) = (x(*from), x(to.max(from + t_max / 400.0)));
        let _ = writeln!(
            h,
            "<g class=\"chaos\"><rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"#d62728\" fill-opacity=\"0.12\" stroke=\"#d62728\" stroke-opacity=\"0.5\"><title>{} ({from:.0}–{to:.0} s)</title></rect><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b71c1c\">{}</text></g>",
            (x1 - x0).max(1.5),
            escape(label),
            x0 + 2.0,
            // Staggered, so labels of actions at the same time do not overlap.
            TOP + 10.0 + 12.0 * (k % 3) as f64,
            escape(label)
        );
    }
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e5e5\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            short(v),
            yy = y(v)
        );
    }
    let step = nice(t_max / 8.0).max(1.0);
    let mut tick = 0.0;
    while tick <= t_max + 1e-9 {
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            x(tick),
            HEIGHT - 10.0,
            short(tick)
        );
        tick += step;
    }
    let _ = writeln!(
        h,
        "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{unit}</text>",
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (i, (name, pts)) in points.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        let _ = writeln!(
            h,
            "<polyline class=\"series\" data-name=\"{name}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"/>",
            COLORS[i % COLORS.len()],
            path.join(" ")
        );
    }
    let _ = writeln!(h, "</svg>");
}

/// At most `MAX_POINTS` points: buckets of consecutive rows, each drawn at its last time with
/// the bucket's mean (or its peak, for latency).
fn downsample(t: &[f64], values: &[f64], peaks: bool) -> Vec<(f64, f64)> {
    let n = t.len().min(values.len());
    let size = n.div_ceil(MAX_POINTS).max(1);
    (0..n)
        .step_by(size)
        .map(|start| {
            let end = (start + size).min(n);
            let bucket = &values[start..end];
            let v = if peaks {
                bucket.iter().copied().fold(0.0, f64::max)
            } else {
                bucket.iter().sum::<f64>() / bucket.len() as f64
            };
            (t[end - 1], v)
        })
        .collect()
}

/// The next 1, 2 or 5 × 10^k at or above `v` (1 for nothing to show).
fn nice(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn tables(h: &mut String, s: &Summary) {
    counts_table(h, s);
    latency_table(h, s);
    causes_tables(h, s);
    recovery_table(h, s);
    exec_table(h, s);
    sides(h, s);
}

fn counts_table(h: &mut String, s: &Summary) {
    let c = &s.counts;
    let _ = writeln!(h, "<h2>Requests and connections</h2><table id=\"counts\">");
    for (name, value) in [
        ("requests sent", c.requests),
        ("answered", c.answered),
        ("timed out", c.timeouts),
        ("lost", c.lost),
        ("unfinished", c.unfinished),
        ("late / duplicate / unmatched", c.late + c.duplicate + c.unmatched),
        ("connections opened", c.connects),
        ("connect errors", c.connect_errors),
        ("drops", c.drops),
        ("reconnects", c.reconnects),
        ("gave up", c.gave_up),
    ] {
        let _ = writeln!(h, "<tr><td>{name}</td><td>{value}</td></tr>");
    }
    let _ = writeln!(
        h,
        "<tr><td>timeout rate / error rate</td><td>{:.4} % / {:.4} %</td></tr></table>",
        s.rates.timeout_rate * 100.0,
        s.rates.error_rate * 100.0
    );
}

fn latency_table(h: &mut String, s: &Summary) {
    let _ = writeln!(
        h,
        "<h2>Latency (ms)</h2><table id=\"latency\"><tr><th></th><th>count</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    );
    for (name, l) in s.latency.iter().filter(|(n, l)| l.count > 0 || *n == "rtt") {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            escape(name),
            l.count,
            l.min_ms,
            l.mean_ms,
            l.p50_ms,
            l.p90_ms,
            l.p95_ms,
            l.p99_ms,
            l.p99_9_ms,
            l.max_ms
        );
    }
    let _ = writeln!(h, "</table>");
}

fn causes_tables(h: &mut String, s: &Summary) {
    for (title, map) in [
        ("Drops by cause", &s.drops),
        ("Connect errors by cause", &s.connect_errors),
    ] {
        if map.is_empty() {
            continue;
        }
        let _ = writeln!(h, "<h2>{title}</h2><table><tr><th>cause</th><th>count</th></tr>");
        for (cause, n) in map {
            let _ = writeln!(h, "<tr><td>{}</td><td>{n}</td></tr>", escape(cause));
        }
        let _ = writeln!(h, "</table>");
    }
}

fn recovery_table(h: &mut String, s: &Summary) {
    if !s.recovery.is_empty() {
        let secs = |v: Option<f64>| v.map_or("not recovered".to_string(), |v| format!("{v:.3} s"));
        let _ = writeln!(
            h,
            "<h2>Recovery after chaos</h2><table id=\"recovery\"><tr><th>at</th><th>action</th><th>hit</th><th>connected before → min</th><th>connected back (99 %)</th><th>p99 rtt before</th><th>rtt back (at or under)</th></tr>"
        );
        for r in &s.recovery {
            let _ = writeln!(
                h,
                "<tr><td>{:.3} s</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.at_s,
                escape(&r.how),
                r.hit,
                r.connected_before,
                r.connected_min,
                secs(r.connected_recovered_s),
                r.rtt_p99_before_ms
                    .map_or("—".to_string(), |v| format!("{v:.3} ms")),
                match (r.rtt_p99_before_ms, &r.cut_short_by, r.rtt_limit_ms) {
                    (None, ..) => "—".to_string(),
                    (Some(_), Some(next), _) => format!("cut short by {}", escape(next)),
                    (Some(_), None, Some(limit)) => format!("{} ({limit:.3} ms)", secs(r.rtt_recovered_s)),
                    (Some(_), None, None) => secs(r.rtt_recovered_s),
                }
            );
        }
        let _ = writeln!(h, "</table>");
    }
}

fn exec_table(h: &mut String, s: &Summary) {
    if !s.exec.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Commands (exec)</h2><table><tr><th>at</th><th>command</th><th>outcome</th><th>exit</th><th>took</th><th>output</th></tr>"
        );
        for e in &s.exec {
            let _ = writeln!(
                h,
                "<tr><td>{:.3} s</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.3} s</td><td>{}</td></tr>",
                e.at_s,
                escape(&e.command),
                escape(&e.outcome),
                e.exit_code
                    .map(|c| c.to_string())
                    .or(e.signal.map(|s| format!("signal {s}")))
                    .unwrap_or_default(),
                e.duration_s,
                escape(&e.stdout)
            );
        }
        let _ = writeln!(h, "</table>");
    }
}

/// What the chaos proxy and the built-in target saw.
fn sides(h: &mut String, s: &Summary) {
    if let Some(p) = &s.proxy {
        let _ = writeln!(
            h,
            "<h2>Chaos proxy</h2><p>{} connections ({} upstream failures), {} reset by chaos, {} refused on accept, listener closed {} times, {} closed by limit_data; {} bytes upstream, {} downstream.</p>",
            p.connections,
            p.upstream_failures,
            p.reset,
            p.refused,
            p.listener_closed,
            p.limited,
            p.bytes_upstream,
            p.bytes_downstream
        );
    }
    if let Some(e) = &s.embedded_server {
        let _ = writeln!(
            h,
            "<h2>Built-in target</h2><p>{} connections, {} messages received, {} answered, {} withheld, {} closed on schedule, {} upgrades refused.</p>",
            e.connections, e.received, e.answered, e.withheld, e.closed_by_schedule, e.refused
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_peaks_and_bounds_points() {
        let t: Vec<f64> = (1..=3600).map(f64::from).collect();
        let mut v = vec![1.0; 3600];
        v[1234] = 500.0;
        let peaks = downsample(&t, &v, true);
        assert!(peaks.len() <= MAX_POINTS);
        assert!(peaks.iter().any(|(_, y)| *y == 500.0), "a spike survives");
        assert_eq!(peaks.last().unwrap().0, 3600.0);
        assert_eq!(downsample(&t[..10], &v[..10], false).len(), 10);
    }

    #[test]
    fn chaos_spans_follow_the_rows_an_action_was_on() {
        let series = Series {
            columns: BTreeMap::from([("elapsed_s".to_string(), vec![1.0, 2.0, 3.0, 4.0, 5.0])]),
            chaos: ["", "net_latency#0", "net_latency#0 reset#1", "", "net_latency#0"]
                .map(String::from)
                .to_vec(),
        };
        let spans = series.chaos_spans(Path::new("/nonexistent/connections.csv"));
        assert_eq!(
            spans,
            vec![
                (1.0, 3.0, "net_latency#0".to_string()),
                (2.0, 3.0, "reset#1".to_string()),
                (4.0, 5.0, "net_latency#0".to_string()),
            ]
        );
    }

    #[test]
    fn nice_rounds_up_to_1_2_5() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(130.0), 200.0);
        assert_eq!(nice(0.04), 0.05);
    }
}
