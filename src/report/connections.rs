//! connections.csv: one row per connection event (open, reconnect, connect_failed, drop,
//! close, gave_up), written as the collector reports them and flushed at least once a second.

use std::fs::File;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::metrics::ConnectionRow;

#[derive(Serialize)]
struct Row<'a> {
    time_s: f64,
    client: Option<u32>,
    event: &'a str,
    attempt: u32,
    duration_ms: f64,
    cause: &'a str,
}

pub struct ConnectionsWriter(csv::Writer<File>);

impl ConnectionsWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut w = csv::Writer::from_writer(File::create(path)?);
        // The header goes out even when no row follows.
        w.write_record(["time_s", "client", "event", "attempt", "duration_ms", "cause"])?;
        w.flush()?;
        Ok(Self(
            csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(w.into_inner().map_err(|e| e.into_error())?),
        ))
    }

    /// Buffered; `flush` makes it durable.
    pub fn write(&mut self, row: &ConnectionRow) -> io::Result<()> {
        self.0.serialize(Row {
            time_s: (row.elapsed.as_secs_f64() * 1e6).round() / 1e6,
            client: row.client,
            event: row.event,
            attempt: row.attempt,
            // Whole microseconds (as the summary), without the float noise of seconds × 1000.
            duration_ms: row.duration.as_micros() as f64 / 1000.0,
            cause: &row.cause,
        })?;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
