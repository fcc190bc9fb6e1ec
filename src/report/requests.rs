//! requests.csv: one row per request outcome (when asked for), written by its own task from
//! a bounded channel, buffered and flushed once a second, so clients never format or write.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{WriteFailure, on_file};
use crate::metrics::requests::RequestRx;

pub const REQUESTS: &str = "requests.csv";

/// requests.csv, created with its header before the run, so a file that cannot be written is
/// an error before anything is sent.
pub struct RequestsWriter {
    path: PathBuf,
    csv: csv::Writer<File>,
    /// The plan's step names (a row's name number k is `names[k - 1]`).
    names: Vec<String>,
}

impl RequestsWriter {
    pub fn create(dir: &Path, names: &[String]) -> io::Result<Self> {
        let path = dir.join(REQUESTS);
        let create = || {
            let mut csv = csv::WriterBuilder::new()
                .buffer_capacity(64 << 10)
                .from_writer(File::create(&path)?);
            csv.write_record([
                "time_s",
                "client",
                "id",
                "outcome",
                "rtt_ms",
                "corrected_rtt_ms",
                "step",
            ])?;
            csv.flush()?;
            Ok(csv)
        };
        let csv = create().map_err(on_file(&path))?;
        Ok(Self {
            path,
            csv,
            names: names.to_vec(),
        })
    }

    /// Writes rows until every sender is gone; returns how many were written. A write error
    /// stops the run (`stop`) and is returned: rows are never dropped silently.
    pub async fn write(
        mut self,
        rows: RequestRx,
        start: Instant,
        stop: CancellationToken,
    ) -> Result<u64, WriteFailure> {
        self.rows(rows, start).await.map_err(|error| {
            stop.cancel();
            WriteFailure {
                file: self.path,
                at: start.elapsed(),
                error,
            }
        })
    }

    async fn rows(&mut self, mut rows: RequestRx, start: Instant) -> io::Result<u64> {
        let w = &mut self.csv;
        let names = &self.names;
        let mut written = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut batch = Vec::with_capacity(1024);
        loop {
            tokio::select! {
                n = rows.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        break;
                    }
                    for row in batch.drain(..) {
                        let time = row.at.saturating_duration_since(start).as_secs_f64();
                        let ms = |us: Option<u64>| us.map(|us| format!("{:.3}", us as f64 / 1000.0)).unwrap_or_default();
                        w.write_record([
                            format!("{time:.6}"),
                            row.client.to_string(),
                            format!("{}-{}", row.client, row.seq),
                            row.outcome.name().to_string(),
                            ms(row.rtt_us),
                            // From when the request was due under an open rate; in a closed loop
                            // each request goes out when it is meant to, and this is the rtt.
                            ms(row.corrected_us),
                            row.name
                                .checked_sub(1)
                                .and_then(|i| names.get(usize::from(i)))
                                .cloned()
                                .unwrap_or_default(),
                        ])?;
                        written += 1;
                    }
                }
                _ = tick.tick() => w.flush()?,
            }
        }
        w.flush()?;
        Ok(written)
    }
}
