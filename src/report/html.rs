//! report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) with
//! the verdict, the thresholds, the run's charts over time (`charts`: clients, throughput, rtt
//! percentiles, errors, reconnects, every chaos action drawn as a marked span on each chart)
//! and the summary's tables.

use std::fmt::Write as _;

use super::charts::{MAX_POINTS, Series, over_time};
use super::markup::escape;
use super::summary::{Outcome, Summary};

/// The page's CSS (inline: the page fetches nothing).
const STYLE: &str = "body { font: 14px/1.45 system-ui, -apple-system, \"Segoe UI\", sans-serif; margin: 24px auto; max-width: 1000px; color: #222; padding: 0 12px; }\nh1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }\n.meta { color: #555; } .badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; color: #fff; }\n.pass { background: #2e7d32; } .fail { background: #c62828; }\ntable { border-collapse: collapse; margin: 6px 0 12px; } th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }\nth:first-child, td:first-child { text-align: left; } th { background: #f6f6f6; }\ntd.ok { color: #2e7d32; font-weight: 600; } td.bad { color: #c62828; font-weight: 600; }\nsvg.chart { display: block; margin: 4px 0 18px; } svg text { font: 11px system-ui, sans-serif; fill: #444; }\n.legend span { margin-right: 14px; } .legend i { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }\n";

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
<style>{STYLE}</style></head><body>
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
    over_time(&mut h, series, spans);
    tables(&mut h, summary);
    let t = series.column("elapsed_s");
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

/// The page of a run without its summary (killed before its end): its charts alone.
pub fn render_charts_only(dir: &str, series: &Series, spans: &[(f64, f64, String)]) -> String {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wsstorm — {dir}</title><style>{STYLE}</style></head><body>\n<h1>{dir}</h1>\n<p id=\"partial\"><b>No summary.json</b>: the run did not end (it was killed?). What follows is drawn from timeseries.csv and connections.csv; counts, latency histograms and threshold verdicts are unknown.</p>",
        dir = escape(dir)
    );
    over_time(&mut h, series, spans);
    let _ = writeln!(h, "</body></html>");
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

fn tables(h: &mut String, s: &Summary) {
    counts_table(h, s);
    latency_table(h, s);
    s.tables().html(h);
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
