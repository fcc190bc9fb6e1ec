//! Reports: the results directory, streamed while the run goes (`timeseries`), the live
//! display (`progress`) and the final documents (`summary`). Reports read samples and totals;
//! they never reach back into the engine.

pub mod compare;
pub mod connections;
pub mod html;
pub mod junit;
pub mod merge;
pub mod progress;
pub mod requests;
pub mod summary;
pub mod timeseries;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::metrics::Output;
use crate::scenario::Load;
use crate::scenario::segment::Segment;
use connections::ConnectionsWriter;
pub use progress::Progress;
pub use summary::Summary;
use timeseries::TimeseriesWriter;

pub const TIMESERIES: &str = "timeseries.csv";
pub const CONNECTIONS: &str = "connections.csv";
pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_TXT: &str = "summary.txt";
pub const JUNIT: &str = "junit.xml";
pub const HTML: &str = "report.html";

/// `results/<name>-<UTC timestamp>` unless `out` is given; created now, so an unwritable place
/// is an error before anything is sent.
pub fn results_dir(out: Option<&Path>, name: &str, started: DateTime<Utc>) -> io::Result<PathBuf> {
    let dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            Path::new("results").join(format!("{safe}-{}", started.format("%Y%m%dT%H%M%SZ")))
        }
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The files written while the run goes.
pub struct Streams {
    timeseries: TimeseriesWriter,
    connections: ConnectionsWriter,
}

/// Opens the streamed files in `dir` (fails early if they cannot be written).
pub fn open_stream(dir: &Path) -> io::Result<Streams> {
    Ok(Streams {
        timeseries: TimeseriesWriter::create(&dir.join(TIMESERIES))?,
        connections: ConnectionsWriter::create(&dir.join(CONNECTIONS))?,
    })
}

/// Writes each output as it arrives and drives the live display; ends when the collector
/// does. Connection rows are flushed with each one-second sample. A write error ends the
/// writing and is returned, so the run reports it.
pub async fn stream(
    mut outputs: mpsc::UnboundedReceiver<Output>,
    mut files: Streams,
    mut progress: Progress,
    load: Load,
    segment: Option<Segment>,
    planned: Duration,
) -> io::Result<()> {
    let mut result = Ok(());
    while let Some(output) = outputs.recv().await {
        match output {
            Output::Sample(sample) => {
                let whole = load.target_at(
                    sample
                        .elapsed
                        .min(planned.saturating_sub(Duration::from_millis(1))),
                );
                let target = segment.map_or(whole, |s| s.share(whole));
                if result.is_ok() {
                    result = files
                        .connections
                        .flush()
                        .and_then(|_| files.timeseries.write(&sample, target));
                }
                progress.update(&sample, target, planned);
            }
            Output::Connection(row) => {
                if result.is_ok() {
                    result = files.connections.write(&row);
                }
            }
        }
    }
    progress.finish();
    result.and_then(|_| files.connections.flush())
}

/// Writes summary.json, then the documents rendered from it and timeseries.csv.
pub fn write_reports(dir: &Path, summary: &Summary) -> io::Result<()> {
    let json = serde_json::to_string_pretty(summary).map_err(io::Error::other)?;
    write_atomically(&dir.join(SUMMARY_JSON), json.as_bytes())?;
    render_documents(dir, summary)
}

/// Reads a results directory's summary.json.
pub fn read_summary(dir: &Path) -> io::Result<Summary> {
    let path = dir.join(SUMMARY_JSON);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a wsstorm summary: {e}", path.display()),
        )
    })
}

/// `wsstorm report DIR`: renders summary.txt, junit.xml and report.html again from a results
/// directory's summary.json and timeseries.csv (so report changes apply to old runs).
pub fn rerender(dir: &Path) -> io::Result<Summary> {
    let summary = read_summary(dir)?;
    render_documents(dir, &summary)?;
    Ok(summary)
}

fn render_documents(dir: &Path, summary: &Summary) -> io::Result<()> {
    write_atomically(&dir.join(SUMMARY_TXT), summary.render_text().as_bytes())?;
    write_atomically(&dir.join(JUNIT), junit::render(summary).as_bytes())?;
    // A directory without its time series still gets its tables.
    let series = html::Series::read(&dir.join(TIMESERIES)).unwrap_or_default();
    let spans = series.chaos_spans(&dir.join(CONNECTIONS));
    write_atomically(&dir.join(HTML), html::render(summary, &series, &spans).as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
