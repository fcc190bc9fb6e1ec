//! The exposition formats a scrape asks for: Prometheus text 0.0.4, or OpenMetrics 1.0 when
//! its Accept header names it (as Prometheus's own scrapes do).

use std::fmt::Write;

use super::families::{Families, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// The format an Accept header asks for.
    pub fn accepted(accept: &str) -> Format {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The families with `common` labels (scenario, run id, segment) on every series.
pub fn render(families: &Families, common: &[(String, String)], format: Format) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for family in &families.families {
        let name = &family.name;
        // A counter's samples end in `_total`; the family is named so in 0.0.4, without it in
        // OpenMetrics.
        let (typed, kind) = match (family.kind, format) {
            (Kind::Counter, Format::Prometheus) => (format!("{name}_total"), "counter"),
            (Kind::Counter, Format::OpenMetrics) => (name.clone(), "counter"),
            (Kind::Gauge, _) => (name.clone(), "gauge"),
            (Kind::Histogram, _) => (name.clone(), "histogram"),
        };
        let _ = writeln!(out, "# HELP {typed} {}", escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {typed} {kind}");
        family.each_sample(|name, own, le, value| sample(&mut out, name, common, own, le, value));
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn sample(
    out: &mut String,
    name: &str,
    common: &[(String, String)],
    own: &[(String, String)],
    le: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    out.push('{');
    let labels = common
        .iter()
        .chain(own)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(le.map(|le| ("le", le)));
    for (i, (k, v)) in labels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    let _ = writeln!(out, "}} {value}");
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::families::{BUCKETS, Family, Series};
    use super::*;

    fn families() -> Families {
        Families {
            elapsed_s: 1.0,
            last: false,
            families: vec![
                Family {
                    name: "wsstorm_drops".into(),
                    help: "Drops, by cause.".into(),
                    kind: Kind::Counter,
                    series: vec![Series::plain(vec![("cause".into(), "a\"b\\c\nd".into())], 3.0)],
                },
                Family {
                    name: "wsstorm_rtt_seconds".into(),
                    help: "rtt".into(),
                    kind: Kind::Histogram,
                    series: vec![Series {
                        labels: vec![],
                        value: 0.25,
                        buckets: vec![1; BUCKETS.len()],
                        count: 2,
                    }],
                },
            ],
        }
    }

    #[test]
    fn both_formats_name_counters_and_escape_labels() {
        let common = vec![("scenario".to_string(), "s".to_string())];
        let text = render(&families(), &common, Format::Prometheus);
        assert!(text.contains("# TYPE wsstorm_drops_total counter\n"), "{text}");
        assert!(
            text.contains("wsstorm_drops_total{scenario=\"s\",cause=\"a\\\"b\\\\c\\nd\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("wsstorm_rtt_seconds_bucket{scenario=\"s\",le=\"0.0001\"} 1\n"));
        assert!(text.contains("wsstorm_rtt_seconds_bucket{scenario=\"s\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("wsstorm_rtt_seconds_sum{scenario=\"s\"} 0.25\n"));
        assert!(!text.contains("# EOF"));
        let open = render(&families(), &common, Format::OpenMetrics);
        assert!(open.contains("# TYPE wsstorm_drops counter\n"), "{open}");
        assert!(open.ends_with("# EOF\n"));
        assert_eq!(
            Format::accepted("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            Format::OpenMetrics
        );
        assert_eq!(Format::accepted("*/*"), Format::Prometheus);
    }
}
