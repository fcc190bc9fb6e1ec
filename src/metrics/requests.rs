//! requests.csv's rows: one per request outcome, when the scenario or `--requests` asks for
//! them. Clients hand rows to a bounded channel, off their hot path only in the sense that
//! nothing is formatted there; a writer task formats and writes them (see `report::requests`).

use tokio::sync::mpsc;
use tokio::time::Instant;

/// Which requests get a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RequestFilter {
    All,
    /// Every outcome but `answered`.
    Errors,
    /// This share of requests, picked by a hash of the id (the same ones in every run).
    Sample(f64),
}

impl RequestFilter {
    /// "all", "errors" or "sample:0.01".
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected \"all\", \"errors\" or \"sample:FRACTION\" such as \"sample:0.01\"";
        match text.trim() {
            "all" => Ok(RequestFilter::All),
            "errors" => Ok(RequestFilter::Errors),
            other => match other.strip_prefix("sample:").and_then(crate::scenario::share) {
                Some(f) => Ok(RequestFilter::Sample(f)),
                None => Err(format!("{text:?}: {expected}")),
            },
        }
    }

    fn keeps(self, client: u32, seq: u64, outcome: RequestOutcome) -> bool {
        match self {
            RequestFilter::All => true,
            RequestFilter::Errors => outcome != RequestOutcome::Answered,
            RequestFilter::Sample(f) => crate::scenario::picked(u64::from(client) << 40 ^ seq, f),
        }
    }
}

impl std::fmt::Display for RequestFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestFilter::All => f.write_str("all"),
            RequestFilter::Errors => f.write_str("errors"),
            RequestFilter::Sample(share) => write!(f, "sample:{share}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    Answered,
    /// Answered, but the reply failed one of the step's checks.
    CheckFailed,
    /// Its deadline passed (a reply after it is a second row, `late`).
    Timeout,
    Late,
    /// In flight when its connection dropped (and not replayed), or kept for replay by a
    /// client that gave up.
    Lost,
    /// In flight (or waiting for replay) when the run was stopped.
    Unfinished,
}

impl RequestOutcome {
    pub fn name(self) -> &'static str {
        match self {
            RequestOutcome::Answered => "answered",
            RequestOutcome::CheckFailed => "check_failed",
            RequestOutcome::Timeout => "timeout",
            RequestOutcome::Late => "late",
            RequestOutcome::Lost => "lost",
            RequestOutcome::Unfinished => "unfinished",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RequestRow {
    pub at: Instant,
    pub client: u32,
    pub seq: u64,
    pub outcome: RequestOutcome,
    pub rtt_us: Option<u64>,
    /// From when the request was due, under an open rate (else the rtt).
    pub corrected_us: Option<u64>,
}

/// Where clients send request rows.
#[derive(Debug, Clone)]
pub struct RequestLog {
    tx: mpsc::Sender<RequestRow>,
    filter: RequestFilter,
}

pub type RequestRx = mpsc::Receiver<RequestRow>;

impl RequestLog {
    pub fn new(filter: RequestFilter) -> (Self, RequestRx) {
        let (tx, rx) = mpsc::channel(65_536);
        (Self { tx, filter }, rx)
    }

    /// Records one outcome (waits only when the writer is 65 536 rows behind).
    pub async fn record(
        &self,
        client: u32,
        seq: u64,
        outcome: RequestOutcome,
        rtt: Option<(u64, Option<u64>)>,
    ) {
        if self.filter.keeps(client, seq, outcome) {
            let row = RequestRow {
                at: Instant::now(),
                client,
                seq,
                outcome,
                rtt_us: rtt.map(|(us, _)| us),
                corrected_us: rtt.map(|(us, corrected)| corrected.unwrap_or(us)),
            };
            let _ = self.tx.send(row).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_a_sample_keeps_about_its_share() {
        assert_eq!(RequestFilter::parse("all"), Ok(RequestFilter::All));
        assert_eq!(RequestFilter::parse("sample:1%"), Ok(RequestFilter::Sample(0.01)));
        assert!(RequestFilter::parse("some").is_err());
        let f = RequestFilter::Sample(0.1);
        let kept = (0..10_000)
            .filter(|s| f.keeps(3, *s, RequestOutcome::Answered))
            .count();
        assert!((850..1150).contains(&kept), "{kept}");
        assert!(!RequestFilter::Errors.keeps(0, 0, RequestOutcome::Answered));
        assert!(RequestFilter::Errors.keeps(0, 0, RequestOutcome::Lost));
    }
}
