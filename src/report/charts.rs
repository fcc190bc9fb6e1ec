//! The charts of report.html: timeseries.csv read back, and each chart drawn as inline SVG with
//! the chaos spans shaded behind its lines. Long runs are downsampled for drawing only (the CSV
//! keeps every second). Counts are drawn as rates over each row's real length (the last,
//! partial second is not a drop to zero), and a second without a measurement (no reply, no
//! rtt) is a gap, never 0 ms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::markup::escape;

/// The shortest row drawn as a rate (seconds).
const MIN_WINDOW_S: f64 = 0.25;

/// Most points drawn per line; longer runs are bucketed (a 1-hour run has 3 600 rows).
pub const MAX_POINTS: usize = 900;
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
                    // An empty cell is no measurement: NaN, drawn as a gap.
                    series.columns.entry(name.to_string()).or_default().push(
                        value
                            .parse()
                            .ok()
                            .filter(|v: &f64| v.is_finite())
                            .unwrap_or(f64::NAN),
                    );
                }
            }
        }
        Ok(series)
    }

    /// A column by name (empty when the file has none).
    pub fn column(&self, name: &str) -> &[f64] {
        self.columns.get(name).map_or(&[], Vec::as_slice)
    }

    /// A column of counts per row as a rate per second over each row's real length (rows
    /// without `window_s`, from older runs, are taken as one second). A row shorter than
    /// `MIN_WINDOW_S` (the few milliseconds of a run's drain after its last full second) is
    /// too short to be a rate: no value, so not drawn as a fall to zero or a spike.
    fn per_second(&self, name: &str) -> Vec<f64> {
        let window = self.column("window_s");
        self.column(name)
            .iter()
            .enumerate()
            .map(|(i, v)| match window.get(i) {
                Some(w) if *w >= MIN_WINDOW_S => v / w,
                Some(_) => f64::NAN,
                None => *v,
            })
            .collect()
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

/// How a column is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A level at the end of each second (clients, in flight).
    Level,
    /// A count per row, drawn as a rate over the row's real length.
    PerSecond,
    /// A latency of the second: buckets keep their peak, a second without one is a gap.
    Latency,
}

/// A chart: its title, its unit, how its columns are drawn, and each line's column and label.
type Chart = (
    &'static str,
    &'static str,
    Kind,
    &'static [(&'static str, &'static str)],
);

const CHARTS: [Chart; 6] = [
    (
        "Clients",
        "clients",
        Kind::Level,
        &[
            ("target_clients", "target"),
            ("connected", "connected"),
            ("connecting", "connecting"),
            ("backing_off", "backing off"),
        ],
    ),
    (
        "Throughput",
        "messages / s",
        Kind::PerSecond,
        &[("messages_sent", "sent"), ("messages_received", "received")],
    ),
    (
        "Round-trip time",
        "ms",
        Kind::Latency,
        &[
            ("rtt_p50_ms", "p50"),
            ("rtt_p90_ms", "p90"),
            ("rtt_p99_ms", "p99"),
        ],
    ),
    (
        "Timeouts, lost and errors",
        "per s",
        Kind::PerSecond,
        &[
            ("timeouts", "timeouts"),
            ("lost", "lost"),
            ("connect_errors", "connect errors"),
            ("drops", "drops"),
        ],
    ),
    (
        "Connects and reconnects",
        "per s",
        Kind::PerSecond,
        &[("connects", "connects"), ("reconnects", "reconnects")],
    ),
    (
        "In flight",
        "requests",
        Kind::Level,
        &[("in_flight", "in flight")],
    ),
];

/// The "Over time" section: every chart of `series`.
pub fn over_time(h: &mut String, series: &Series, spans: &[(f64, f64, String)]) {
    let _ = writeln!(h, "<h2>Over time</h2>");
    let t = series.column("elapsed_s");
    for (title, unit, kind, columns) in CHARTS {
        let lines: Vec<Line> = columns
            .iter()
            .filter(|(c, _)| series.columns.contains_key(*c))
            .map(|(column, label)| Line {
                column,
                label,
                values: match kind {
                    Kind::PerSecond => series.per_second(column),
                    Kind::Level | Kind::Latency => series.column(column).to_vec(),
                },
            })
            .collect();
        chart(h, title, unit, t, &lines, kind == Kind::Latency, spans);
    }
}

/// One line of a chart.
struct Line<'a> {
    column: &'a str,
    label: &'a str,
    values: Vec<f64>,
}

/// One line chart in inline SVG, with the chaos spans shaded behind the lines.
fn chart(
    h: &mut String,
    title: &str,
    unit: &str,
    t: &[f64],
    lines: &[Line<'_>],
    peaks: bool,
    spans: &[(f64, f64, String)],
) {
    let t_max = t.last().copied().unwrap_or(1.0).max(1.0);
    let points: Vec<(&str, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|line| (line.column, downsample(t, &line.values, peaks)))
        .collect();
    let y_max = nice(
        points
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .filter(|y| y.is_finite())
            .fold(0.0, f64::max),
    );
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / t_max * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;
    let _ = writeln!(h, "<h3>{title}</h3><div class=\"legend\">");
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            h,
            "<span><i style=\"background:{}\"></i>{}</span>",
            COLORS[i % COLORS.len()],
            line.label
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
        // A run of points with values is one polyline: a second without one is a gap.
        for run in pts.split(|(_, v)| !v.is_finite()).filter(|run| !run.is_empty()) {
            let path: Vec<String> = run
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
    }
    let _ = writeln!(h, "</svg>");
}

/// At most `MAX_POINTS` points: buckets of consecutive rows, each drawn at its last time with
/// the bucket's mean (or its peak, for latency) of the rows that have a value; a bucket of none
/// is NaN (a gap).
fn downsample(t: &[f64], values: &[f64], peaks: bool) -> Vec<(f64, f64)> {
    let n = t.len().min(values.len());
    let size = n.div_ceil(MAX_POINTS).max(1);
    (0..n)
        .step_by(size)
        .map(|start| {
            let end = (start + size).min(n);
            let known: Vec<f64> = values[start..end]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let v = match (known.is_empty(), peaks) {
                (true, _) => f64::NAN,
                (false, true) => known.iter().copied().fold(f64::MIN, f64::max),
                (false, false) => known.iter().sum::<f64>() / known.len() as f64,
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

    /// Field finding 24 (issue 19): the last, partial second was drawn as a fall to zero; a
    /// second without replies as 0 ms; legends showed column names.
    #[test]
    fn field_24_partial_seconds_are_rates_and_no_reply_is_a_gap() {
        let nan = f64::NAN;
        let series = Series {
            columns: BTreeMap::from([
                ("elapsed_s".to_string(), vec![1.0, 2.0, 3.0, 4.0, 4.5, 4.503]),
                ("window_s".to_string(), vec![1.0, 1.0, 1.0, 1.0, 0.5, 0.003]),
                (
                    "messages_sent".to_string(),
                    vec![1000.0, 1000.0, 1000.0, 1000.0, 500.0, 0.0],
                ),
                ("rtt_p50_ms".to_string(), vec![1.0, nan, nan, 2.0, 2.0, nan]),
            ]),
            chaos: vec![String::new(); 6],
        };
        let rates = series.per_second("messages_sent");
        assert_eq!(rates[..5], [1000.0; 5]);
        assert!(rates[5].is_nan(), "3 ms of drain is no rate: {rates:?}");
        let mut h = String::new();
        over_time(&mut h, &series, &[]);
        let rtt: Vec<&str> = h
            .lines()
            .filter(|l| l.contains("data-name=\"rtt_p50_ms\""))
            .collect();
        assert_eq!(rtt.len(), 2, "a gap where no reply came: {rtt:?}");
        assert!(
            h.contains("</i>p50</span>") && h.contains("</i>sent</span>"),
            "{h}"
        );
        assert!(!h.contains("</i>rtt_p50_ms</span>"));
        // Read back from CSV, an empty cell is no value.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.csv");
        std::fs::write(&file, "elapsed_s,rtt_p50_ms,chaos\n1.0,,\n2.0,3.5,\n").unwrap();
        let read = Series::read(&file).unwrap();
        assert!(read.column("rtt_p50_ms")[0].is_nan());
        assert_eq!(read.column("rtt_p50_ms")[1], 3.5);
    }
}
