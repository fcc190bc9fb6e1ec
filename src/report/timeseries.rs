//! timeseries.csv: one row per second of the run, flushed as it is written so a crash or
//! Ctrl-C loses at most the row in progress. `window_s` is the row's real length (the last
//! row of a run is shorter: its counts are not a whole second's); a second without replies
//! leaves the rtt cells empty (no latency was measured, which is not 0 ms).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::metrics::Sample;

#[derive(Serialize, Default)]
struct Row<'a> {
    elapsed_s: f64,
    window_s: f64,
    target_clients: u64,
    connected: u64,
    connecting: u64,
    backing_off: u64,
    in_flight: u64,
    connects: u64,
    connect_errors: u64,
    drops: u64,
    reconnects: u64,
    requests: u64,
    answered: u64,
    timeouts: u64,
    late: u64,
    duplicate: u64,
    unmatched: u64,
    lost: u64,
    messages_sent: u64,
    messages_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    rtt_p50_ms: Option<f64>,
    rtt_p90_ms: Option<f64>,
    rtt_p99_ms: Option<f64>,
    rtt_max_ms: Option<f64>,
    chaos: &'a str,
}

pub struct TimeseriesWriter(csv::Writer<File>);

impl TimeseriesWriter {
    /// Creates the file with its header written through, so a file that cannot be written is
    /// an error now, before the run, not at its first row.
    pub fn create(path: &Path) -> io::Result<Self> {
        // The header, as serde names Row's fields: the first line of a row written with one.
        let mut probe = csv::Writer::from_writer(Vec::new());
        probe.serialize(Row::default())?;
        let probe = probe.into_inner().map_err(|e| e.into_error())?;
        let header = &probe[..=probe.iter().position(|&b| b == b'\n').expect("a header line")];
        let mut file = File::create(path)?;
        file.write_all(header)?;
        Ok(Self(
            csv::WriterBuilder::new().has_headers(false).from_writer(file),
        ))
    }

    pub fn write(&mut self, sample: &Sample, target_clients: u64) -> io::Result<()> {
        let (t, d) = (&sample.total, &sample.delta);
        let rtt = |p: f64| (!sample.rtt.is_empty()).then(|| sample.rtt.percentile_ms(p));
        self.0.serialize(Row {
            elapsed_s: (sample.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            window_s: sample.window.as_millis() as f64 / 1000.0,
            target_clients,
            connected: t.connected(),
            connecting: t.connecting(),
            backing_off: t.backing_off(),
            in_flight: t.in_flight(),
            connects: d.connects,
            connect_errors: d.connect_errors,
            drops: d.drops,
            reconnects: d.reconnects,
            requests: d.requests,
            answered: d.answered,
            timeouts: d.timeouts,
            late: d.late,
            duplicate: d.duplicate,
            unmatched: d.unmatched,
            lost: d.lost,
            messages_sent: d.messages_sent,
            messages_received: d.messages_received,
            bytes_sent: d.bytes_sent,
            bytes_received: d.bytes_received,
            rtt_p50_ms: rtt(50.0),
            rtt_p90_ms: rtt(90.0),
            rtt_p99_ms: rtt(99.0),
            rtt_max_ms: (!sample.rtt.is_empty()).then(|| sample.rtt.max_ms()),
            chaos: &sample.chaos,
        })?;
        self.0.flush()
    }
}
