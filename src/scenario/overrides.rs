//! Values given on the command line that replace the scenario file's.

use std::time::Duration;

use super::plan::RequestFilter;
use super::segment::Segment;
use super::set::Set;

/// Values given on the command line that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub duration: Option<Duration>,
    /// `--requests`: which request outcomes requests.csv gets.
    pub requests: Option<RequestFilter>,
    /// `--segment i/n`: run this shard's share of the scenario.
    pub segment: Option<Segment>,
    /// `--start-at`: when the timeline begins (shards of one run share it).
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `--insecure`: do not verify the server's TLS certificate.
    pub insecure: bool,
    /// `--set PATH=VALUE`: values changed in the file's text before it is checked.
    pub sets: Vec<Set>,
}
