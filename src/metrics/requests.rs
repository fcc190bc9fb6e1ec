//! requests.csv's rows: one per request outcome, when the scenario or `--requests` asks for
//! them. Clients hand rows to a bounded channel, off their hot path only in the sense that
//! nothing is formatted there; a writer task formats and writes them (see `report::requests`).

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::Name;
use crate::scenario::RequestFilter;

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
    /// Its step's name (0: none; see `event::Name`).
    pub name: Name,
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
        (seq, name): (u64, Name),
        outcome: RequestOutcome,
        rtt: Option<(u64, Option<u64>)>,
    ) {
        if self
            .filter
            .keeps(client, seq, outcome == RequestOutcome::Answered)
        {
            let row = RequestRow {
                at: Instant::now(),
                client,
                seq,
                name,
                outcome,
                rtt_us: rtt.map(|(us, _)| us),
                corrected_us: rtt.map(|(us, corrected)| corrected.unwrap_or(us)),
            };
            let _ = self.tx.send(row).await;
        }
    }
}
