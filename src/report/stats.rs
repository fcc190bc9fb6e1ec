//! A histogram as summary.json keeps it: its figures for people and itself, encoded, so that
//! reports can be made again and shards merged exactly.

use serde::{Deserialize, Serialize};

use crate::metrics::Latency;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
    /// HdrHistogram V2 compressed, base64, values in microseconds.
    pub histogram: String,
}

impl LatencyStats {
    pub fn of(h: &Latency) -> Self {
        Self {
            count: h.count(),
            min_ms: h.min_ms(),
            mean_ms: h.mean_ms(),
            p50_ms: h.percentile_ms(50.0),
            p90_ms: h.percentile_ms(90.0),
            p95_ms: h.percentile_ms(95.0),
            p99_ms: h.percentile_ms(99.0),
            p99_9_ms: h.percentile_ms(99.9),
            max_ms: h.max_ms(),
            histogram: h.encode(),
        }
    }
}

/// Distribution of a small count (attempts per reconnect).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountStats {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    /// HdrHistogram V2 compressed, base64, raw values.
    pub histogram: String,
}

impl CountStats {
    pub fn of(h: &Latency) -> Self {
        Self {
            count: h.count(),
            mean: h.mean(),
            p50: h.percentile(50.0),
            p90: h.percentile(90.0),
            p99: h.percentile(99.0),
            max: h.max(),
            histogram: h.encode(),
        }
    }
}
