//! Threshold expressions in the k6 style (`p(99) < 250ms`, `avg < 5s`, `< 0.1%`, `count == 0`),
//! parsed at validation into values the metrics can be compared with. Evaluation lives with the
//! metrics; this file only knows the language.

use std::fmt;

use crate::units::duration;

/// What kind of number a metric yields, which decides the aggregations it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A latency histogram, compared in milliseconds.
    Latency,
    /// A fraction of requests.
    Rate,
    /// A count of events.
    Count,
    /// A histogram of small counts (attempts), compared as plain numbers.
    Number,
}

macro_rules! metrics {
    ($($variant:ident = $name:literal : $kind:ident),* $(,)?) => {
        /// A metric thresholds can name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric { $($variant),* }

        impl Metric {
            pub const ALL: &[Metric] = &[$(Metric::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Metric::$variant => $name),* }
            }

            pub fn kind(self) -> MetricKind {
                match self { $(Metric::$variant => MetricKind::$kind),* }
            }
        }
    };
}

metrics! {
    Rtt = "rtt": Latency,
    RttCorrected = "rtt_corrected": Latency,
    ConnectTime = "connect_time": Latency,
    TimeoutRate = "timeout_rate": Rate,
    ErrorRate = "error_rate": Rate,
    Requests = "requests": Count,
    Answered = "answered": Count,
    Timeouts = "timeouts": Count,
    Late = "late": Count,
    Lost = "lost": Count,
    Unmatched = "unmatched": Count,
    Duplicate = "duplicate": Count,
    ConnectErrors = "connect_errors": Count,
    Drops = "drops": Count,
    ReconnectTime = "reconnect_time": Latency,
    ReconnectAttempts = "reconnect_attempts": Number,
    PingRtt = "ping_rtt": Latency,
    PushLatency = "push_latency": Latency,
    GaveUp = "gave_up": Count,
    Stopped = "stopped": Count,
    Reconnects = "reconnects": Count,
    PushGaps = "push_gaps": Count,
    PushDuplicates = "push_duplicates": Count,
    LateSends = "late_sends": Count,
    CheckFailures = "check_failures": Count,
    RttFirst = "rtt_first": Latency,
    WaitTime = "wait_time": Latency,
    WaitTimeouts = "wait_timeouts": Count,
    Capped = "capped": Count,
    CaptureFailures = "capture_failures": Count,
    CaptureMissing = "capture_missing": Count,
    HttpRtt = "http_rtt": Latency,
    HttpRequests = "http_requests": Count,
    HttpErrors = "http_errors": Count,
    // A rule's named counter (`[[on_message]] count`): the name is the threshold's selector.
    Counter = "counter": Count,
}

impl Metric {
    /// The metric a threshold key names (a counter is named by its own name instead).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.name() == name && *m != Metric::Counter)
    }

    pub fn names() -> String {
        Self::ALL
            .iter()
            .filter(|m| **m != Metric::Counter)
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `{step=…}` selects a named step's part (its requests' counts and rtt).
    pub fn has_steps(self) -> bool {
        matches!(
            self,
            Metric::Rtt
                | Metric::Requests
                | Metric::Answered
                | Metric::Timeouts
                | Metric::Late
                | Metric::Lost
                | Metric::CheckFailures
                | Metric::TimeoutRate
                | Metric::ErrorRate
                | Metric::PushLatency
        )
    }

    /// Whether `{cause=…}` selects among its causes.
    pub fn has_causes(self) -> bool {
        matches!(
            self,
            Metric::Drops | Metric::ConnectErrors | Metric::GaveUp | Metric::Stopped | Metric::HttpErrors
        )
    }
}

/// The drop causes a run counts besides `close_NNNN` (as summaries name them; metrics' tests
/// check every cause is here).
pub const DROP_CAUSES: &[&str] = &[
    "reset",
    "read_error",
    "write_error",
    "write_timeout",
    "protocol_error",
    "message_too_big",
    "tls_unclean_close",
    "pong_timeout",
    "setup_failed",
    "protocol_mismatch",
    "server_ping_timeout",
    "stomp_error",
    "socketio_connect_error",
    "chaos_reset",
    "chaos_close",
    "chaos_silent",
    "chaos_no_pong",
];

/// The connect errors a run counts besides `http_NNN`.
pub const CONNECT_ERRORS: &[&str] = &[
    "timeout",
    "refused",
    "reset",
    "dns",
    "handshake",
    "tls",
    "subprotocol",
    "io",
    "http_setup",
];

/// Which part of a metric a threshold judges: `rtt{step=GetCharacter}`,
/// `drops{cause=close_1011}`, or a rule's counter by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Step(String),
    Flow(String),
    Socket(String),
    Cause(String),
    Counter(String),
}

/// A threshold key split: the metric's name, and its `label=value` selector.
pub type Key<'a> = (&'a str, Option<(&'a str, &'a str)>);

/// A threshold key: the metric's name and, in braces, one `label=value` selector.
pub fn split_key(key: &str) -> Result<Key<'_>, String> {
    let Some((metric, rest)) = key.split_once('{') else {
        return Ok((key, None));
    };
    let inner = rest.strip_suffix('}').ok_or_else(|| {
        format!("{key:?}: expected a selector such as \"rtt{{step=Login}}\" or \"drops{{cause=close_1011}}\"")
    })?;
    let (label, value) = inner
        .split_once('=')
        .map(|(l, v)| (l.trim(), v.trim()))
        .filter(|(l, v)| !l.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("{key:?}: expected one `label=value` in the braces"))?;
    Ok((metric.trim(), Some((label, value))))
}

/// How a metric is reduced to one number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    Percentile(f64),
    Avg,
    Min,
    Max,
    Rate,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
        }
    }
}

/// One validated threshold: `metric aggregate op limit`. Latency limits are in milliseconds,
/// rates are fractions (0.001 for 0.1 %), counts are plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    /// Part of the metric (one step's, one cause's), or the counter's name.
    pub selector: Option<Selector>,
    pub aggregate: Aggregate,
    pub op: Op,
    pub limit: f64,
    /// The expression as written, for reports.
    pub source: String,
    /// `abort_on_fail`: checked every second while the run goes, once this much of the run
    /// has passed (its grace period); crossing it ends the run early.
    pub abort_after: Option<std::time::Duration>,
}

impl Threshold {
    pub fn parse(metric: Metric, source: &str) -> Result<Self, String> {
        let expected = expected_for(metric.kind());
        let text = source.trim();
        let op_at = text
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| format!("no comparison in {source:?}: {expected}"))?;
        let (lhs, rest) = text.split_at(op_at);
        let (op, rhs) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(sym, op)| rest.strip_prefix(sym).map(|r| (op, r.trim())))
        .ok_or_else(|| format!("bad comparison in {source:?}: {expected}"))?;
        let aggregate = parse_aggregate(metric.kind(), lhs.trim()).ok_or_else(|| {
            format!(
                "bad aggregation {:?} for {}: {expected}",
                lhs.trim(),
                metric.name()
            )
        })?;
        let limit = parse_limit(metric.kind(), rhs)
            .ok_or_else(|| format!("bad limit {rhs:?} for {}: {expected}", metric.name()))?;
        Ok(Self {
            metric,
            selector: None,
            aggregate,
            op,
            limit,
            source: text.to_string(),
            abort_after: None,
        })
    }

    /// A threshold as a summary records it (its key and expression), for judging merged
    /// results: the key's selector is taken as written (validate checked it when the run
    /// began), and a key that is no metric names a rule's counter.
    pub fn parse_keyed(key: &str, expression: &str) -> Result<Self, String> {
        let (name, selector) = split_key(key)?;
        let (metric, selector) = match (Metric::from_name(name), selector) {
            (Some(m), None) => (m, None),
            (Some(m), Some(("step", s))) => (m, Some(Selector::Step(s.to_string()))),
            (Some(m), Some(("flow", f))) => (m, Some(Selector::Flow(f.to_string()))),
            (Some(m), Some(("socket", f))) => (m, Some(Selector::Socket(f.to_string()))),
            (Some(m), Some(("cause", c))) => (m, Some(Selector::Cause(c.to_string()))),
            (None, None) => (Metric::Counter, Some(Selector::Counter(name.to_string()))),
            _ => return Err(format!("{key:?}: not a threshold key")),
        };
        let mut t = Threshold::parse(metric, expression)?;
        t.selector = selector;
        Ok(t)
    }

    /// Whether a measured value passes.
    pub fn passes(&self, value: f64) -> bool {
        self.op.holds(value, self.limit)
    }

    /// The metric as the scenario names it: "rtt", "rtt{step=Login}", "error_429".
    pub fn key(&self) -> String {
        match &self.selector {
            None => self.metric.name().to_string(),
            Some(Selector::Step(s)) => format!("{}{{step={s}}}", self.metric.name()),
            Some(Selector::Flow(s)) => format!("{}{{flow={s}}}", self.metric.name()),
            Some(Selector::Socket(s)) => format!("{}{{socket={s}}}", self.metric.name()),
            Some(Selector::Cause(c)) => format!("{}{{cause={c}}}", self.metric.name()),
            Some(Selector::Counter(name)) => name.clone(),
        }
    }

    /// "rtt p(99) < 250ms" — the metric and the expression together.
    pub fn label(&self) -> String {
        format!("{} {}", self.key(), self.source)
    }

    /// The label, and when the threshold aborts the run.
    pub fn describe(&self) -> String {
        match self.abort_after {
            None => self.label(),
            Some(grace) if grace.is_zero() => format!("{} (aborts the run when crossed)", self.label()),
            Some(grace) => format!(
                "{} (aborts the run when crossed after {})",
                self.label(),
                duration::show(grace)
            ),
        }
    }

    /// Formats a measured value in the unit of this threshold's limit.
    pub fn show_value(&self, value: f64) -> String {
        match self.metric.kind() {
            MetricKind::Latency => format!("{value:.3}ms"),
            MetricKind::Rate => format!("{:.4}%", value * 100.0),
            MetricKind::Count | MetricKind::Number => format!("{value}"),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.key(), self.op.symbol(), self.limit)
    }
}

fn expected_for(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Latency => {
            "expected `p(N) | avg | med | min | max  < | <= | > | >= | == | !=  DURATION`, e.g. \"p(99) < 250ms\""
        }
        MetricKind::Rate => {
            "expected `[rate] < | <= | > | >= | == | != FRACTION or PERCENT`, e.g. \"< 0.1%\" or \"rate < 0.001\""
        }
        MetricKind::Count => {
            "expected `[count] < | <= | > | >= | == | != N`, e.g. \"count == 0\" or \"< 10\""
        }
        MetricKind::Number => {
            "expected `p(N) | avg | med | min | max  < | <= | > | >= | == | !=  N`, e.g. \"p(95) <= 3\""
        }
    }
}

fn parse_aggregate(kind: MetricKind, text: &str) -> Option<Aggregate> {
    match kind {
        MetricKind::Latency | MetricKind::Number => match text {
            "avg" => Some(Aggregate::Avg),
            "min" => Some(Aggregate::Min),
            "max" => Some(Aggregate::Max),
            "med" => Some(Aggregate::Percentile(50.0)),
            _ => {
                let inner = text.strip_prefix("p(")?.strip_suffix(')')?;
                let p: f64 = inner.trim().parse().ok()?;
                (p > 0.0 && p <= 100.0).then_some(Aggregate::Percentile(p))
            }
        },
        MetricKind::Rate => matches!(text, "" | "rate").then_some(Aggregate::Rate),
        MetricKind::Count => matches!(text, "" | "count").then_some(Aggregate::Count),
    }
}

fn parse_limit(kind: MetricKind, text: &str) -> Option<f64> {
    match kind {
        MetricKind::Latency => {
            let d = duration::parse(text).ok()?;
            Some(d.as_secs_f64() * 1000.0)
        }
        MetricKind::Rate => {
            let (number, scale) = match text.strip_suffix('%') {
                Some(n) => (n.trim(), 0.01),
                None => (text, 1.0),
            };
            let v: f64 = number.parse().ok()?;
            (v.is_finite() && v >= 0.0).then_some(v * scale)
        }
        MetricKind::Count | MetricKind::Number => {
            let v: f64 = text.parse().ok()?;
            (v.is_finite() && v >= 0.0).then_some(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_like_expressions() {
        let t = Threshold::parse(Metric::Rtt, "p(99) < 250ms").unwrap();
        assert_eq!(
            (t.aggregate, t.op, t.limit),
            (Aggregate::Percentile(99.0), Op::Lt, 250.0)
        );
        let t = Threshold::parse(Metric::Rtt, "avg<5s").unwrap();
        assert_eq!((t.aggregate, t.limit), (Aggregate::Avg, 5000.0));
        let t = Threshold::parse(Metric::TimeoutRate, "< 0.1%").unwrap();
        assert!((t.limit - 0.001).abs() < 1e-12);
        let t = Threshold::parse(Metric::TimeoutRate, "rate <= 0.01").unwrap();
        assert_eq!((t.op, t.limit), (Op::Le, 0.01));
        let t = Threshold::parse(Metric::Timeouts, "count == 0").unwrap();
        assert_eq!((t.aggregate, t.op, t.limit), (Aggregate::Count, Op::Eq, 0.0));
        assert!(t.passes(0.0) && !t.passes(1.0));
    }

    #[test]
    fn rejects_malformed_expressions() {
        for (metric, text) in [
            (Metric::Rtt, "p99 < 250ms"),
            (Metric::Rtt, "p(99) < 250"),
            (Metric::Rtt, "p(101) < 1s"),
            (Metric::Rtt, "p(99) 250ms"),
            (Metric::TimeoutRate, "avg < 1%"),
            (Metric::Timeouts, "< lots"),
        ] {
            assert!(Threshold::parse(metric, text).is_err(), "{text}");
        }
    }
}
