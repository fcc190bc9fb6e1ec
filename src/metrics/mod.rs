//! Measurements: events from clients (`event`), the collector that owns all counting
//! (`collector`), exact totals (`totals`) and mergeable latency histograms (`histogram`).

pub mod collector;
pub mod counters;
pub mod event;
pub mod histogram;
mod measure;
pub mod observed;
pub mod reasons;
pub mod recovery;
pub mod requests;
pub mod steps;
pub mod totals;

pub use collector::{
    AbortGate, Aborted, Collected, ConnectionRow, EventTx, Output, Sample, channel, collect,
};
pub use counters::Counters;
pub use event::{Cause, ConnectError, Deflated, DropCause, Event, HttpEnd, Reply};
pub use histogram::Latency;
pub use measure::Verdict;
pub use observed::{ExecReport, LiveExport, ProxyCounts, RemoteWriteReport, ServerCounts};
pub use reasons::Reasons;
pub use recovery::Recovery;
pub use totals::{Counts, Totals};
