//! requests.csv: one row per request outcome (when asked for), written by its own task from
//! a bounded channel, buffered and flushed once a second, so clients never format or write.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::requests::RequestRx;

pub const REQUESTS: &str = "requests.csv";

/// Writes rows until every sender is gone; returns how many were written.
pub async fn write(mut rows: RequestRx, dir: &Path, start: Instant) -> io::Result<u64> {
    let mut w = csv::Writer::from_writer(io::BufWriter::new(File::create(dir.join(REQUESTS))?));
    w.write_record(["time_s", "client", "id", "outcome", "rtt_ms", "corrected_rtt_ms"])?;
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
