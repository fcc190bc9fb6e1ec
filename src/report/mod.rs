//! Reports: the results directory, streamed while the run goes (`timeseries`), the live
//! display (`progress`) and the final documents (`summary`). Reports read samples and totals;
//! they never reach back into the engine.

pub mod by_step;
pub mod charts;
pub mod compare;
pub mod connections;
pub mod console;
pub mod html;
pub mod junit;
pub mod live;
pub mod markup;
pub mod merge;
pub mod progress;
pub mod requests;
pub mod stats;
pub mod summary;
pub mod timeseries;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Output;
use crate::scenario::Load;
use crate::scenario::segment::Segment;
use connections::ConnectionsWriter;
pub use console::{Console, Show};
pub use progress::Progress;
pub use summary::Summary;
use timeseries::TimeseriesWriter;

pub const TIMESERIES: &str = "timeseries.csv";
pub const CONNECTIONS: &str = "connections.csv";
pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_TXT: &str = "summary.txt";
pub const JUNIT: &str = "junit.xml";
pub const HTML: &str = "report.html";

/// Where a run's results go: `--out DIR`, or a new directory under `results/`.
#[derive(Debug, Clone, Default)]
pub struct Out {
    pub dir: Option<PathBuf>,
    /// `--force`: an `--out` directory that is not empty is emptied first (else refused).
    pub force: bool,
}

impl Out {
    pub fn at(dir: impl Into<PathBuf>) -> Out {
        Out {
            dir: Some(dir.into()),
            force: false,
        }
    }
}

/// The longest scenario name a results directory's name takes (file names have a limit).
const NAME_IN_DIR: usize = 100;

/// Creates the results directory now, so an unwritable place is an error before anything is
/// sent: `out`'s directory (which must be empty, or emptied with `force`: a run's files are
/// never mixed with another's), or `results/<name>-<UTC timestamp>` made atomically, with
/// `-2`, `-3`… when a run started in the same second took the name. A directory that is not
/// empty is an error of kind `DirectoryNotEmpty`.
pub fn results_dir(out: &Out, name: &str, started: DateTime<Utc>) -> io::Result<PathBuf> {
    if let Some(dir) = &out.dir {
        prepare_out(dir, out.force)?;
        return Ok(dir.clone());
    }
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(NAME_IN_DIR)
        .collect();
    let base = format!("{safe}-{}", started.format("%Y%m%dT%H%M%SZ"));
    let parent = Path::new("results");
    std::fs::create_dir_all(parent)?;
    for n in 1..=1000 {
        let dir = match n {
            1 => parent.join(&base),
            n => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: a thousand runs of this name started in this second",
            parent.join(base).display()
        ),
    ))
}

/// `--out DIR`: created if missing; refused if it holds anything, unless `force` empties it.
pub fn prepare_out(dir: &Path, force: bool) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(io::Error::new(
            io::ErrorKind::DirectoryNotEmpty,
            format!(
                "{} is not empty ({} entries): results are never mixed with another run's; give an empty or new directory, or --force to empty it first",
                dir.display(),
                entries.len()
            ),
        ));
    }
    for entry in entries {
        if entry.is_dir() && !entry.is_symlink() {
            std::fs::remove_dir_all(&entry)?;
        } else {
            std::fs::remove_file(&entry)?;
        }
    }
    Ok(())
}

/// The least free space a results directory's filesystem must have when a run starts: the
/// summary, report and CSV files of a short run fit in it several times over. A run that fills
/// the disk later is stopped by its first failed write.
pub const MIN_FREE: u64 = 1 << 20;

/// Refuses a results directory on a full (or nearly full) filesystem, before anything is sent.
pub fn check_space(dir: &Path) -> io::Result<()> {
    let fs = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    // Both are u64 on Linux, narrower on some other systems.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(fs.blocks_available()).saturating_mul(u64::from(fs.fragment_size()));
    if free < MIN_FREE {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "its filesystem has only {} free; the reports need at least {}",
                bytesize::ByteSize(free).display().iec(),
                bytesize::ByteSize(MIN_FREE).display().iec()
            ),
        ));
    }
    Ok(())
}

/// An I/O error on `path`, saying which file it was.
pub fn on_file(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The files written while the run goes.
pub struct Streams {
    dir: PathBuf,
    timeseries: TimeseriesWriter,
    connections: ConnectionsWriter,
}

/// Opens the streamed files in `dir` (fails early, naming the file, if they cannot be written).
pub fn open_stream(dir: &Path) -> io::Result<Streams> {
    let (timeseries, connections) = (dir.join(TIMESERIES), dir.join(CONNECTIONS));
    Ok(Streams {
        dir: dir.to_path_buf(),
        timeseries: TimeseriesWriter::create(&timeseries).map_err(on_file(&timeseries))?,
        connections: ConnectionsWriter::create(&connections).map_err(on_file(&connections))?,
    })
}

/// A write that failed during the run, which stopped it: the file, when, and the error.
#[derive(Debug, thiserror::Error)]
#[error(
    "writing {} failed {:.1}s into the run ({error}): the run was stopped there, and its files end at that point",
    file.display(),
    at.as_secs_f64()
)]
pub struct WriteFailure {
    pub file: PathBuf,
    /// Time into the run.
    pub at: Duration,
    pub error: io::Error,
}

/// Writes each output as it arrives and drives the live display; ends when the collector
/// does. Connection rows are flushed with each one-second sample. A write error ends the
/// writing, stops the run (`stop`: no data is lost silently) and is returned, so the run
/// reports it.
pub async fn stream(
    mut outputs: mpsc::UnboundedReceiver<Output>,
    mut files: Streams,
    mut progress: Progress,
    load: Load,
    segment: Option<Segment>,
    planned: Duration,
    stop: CancellationToken,
) -> Result<(), WriteFailure> {
    // The first failure: the file, when, and the error.
    let mut result: Result<(), (&str, Duration, io::Error)> = Ok(());
    let mut elapsed = Duration::ZERO;
    while let Some(output) = outputs.recv().await {
        match output {
            Output::Sample(sample) => {
                let target = load.target_of(sample.elapsed, planned, segment);
                elapsed = sample.elapsed;
                if result.is_ok() {
                    result = files
                        .connections
                        .flush()
                        .map_err(|e| (CONNECTIONS, elapsed, e))
                        .and_then(|_| {
                            files
                                .timeseries
                                .write(&sample, target)
                                .map_err(|e| (TIMESERIES, elapsed, e))
                        });
                }
                progress.update(&sample, target, planned);
            }
            Output::Connection(row) => {
                if result.is_ok() {
                    result = files
                        .connections
                        .write(&row)
                        .map_err(|e| (CONNECTIONS, row.elapsed, e));
                }
            }
        }
        if result.is_err() {
            stop.cancel();
        }
    }
    progress.finish();
    result
        .and_then(|_| files.connections.flush().map_err(|e| (CONNECTIONS, elapsed, e)))
        .map_err(|(file, at, error)| WriteFailure {
            file: files.dir.join(file),
            at,
            error,
        })
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

/// What `wsstorm report DIR` could render.
pub enum Rendered {
    /// Everything, from summary.json and the CSV files.
    Whole(Box<Summary>),
    /// summary.json is missing (the run was killed before its end): report.html from the CSV
    /// files alone, charts without counts or verdicts.
    ChartsOnly,
}

/// `wsstorm report DIR`: renders summary.txt, junit.xml and report.html again from a results
/// directory's summary.json and timeseries.csv (so report changes apply to old runs). Without
/// summary.json but with timeseries.csv, report.html from the CSV files alone.
pub fn rerender(dir: &Path) -> io::Result<Rendered> {
    let summary = match read_summary(dir) {
        Ok(summary) => summary,
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.join(TIMESERIES).exists() => {
            let series =
                charts::Series::read(&dir.join(TIMESERIES)).map_err(on_file(&dir.join(TIMESERIES)))?;
            let spans = series.chaos_spans(&dir.join(CONNECTIONS));
            let page = html::render_charts_only(&dir.display().to_string(), &series, &spans);
            write_atomically(&dir.join(HTML), page.as_bytes())?;
            return Ok(Rendered::ChartsOnly);
        }
        Err(e) => return Err(e),
    };
    render_documents(dir, &summary)?;
    Ok(Rendered::Whole(Box::new(summary)))
}

fn render_documents(dir: &Path, summary: &Summary) -> io::Result<()> {
    write_atomically(&dir.join(SUMMARY_TXT), summary.render_text().as_bytes())?;
    write_atomically(&dir.join(JUNIT), junit::render(summary).as_bytes())?;
    // A directory without its time series still gets its tables.
    let series = charts::Series::read(&dir.join(TIMESERIES)).unwrap_or_default();
    let spans = series.chaos_spans(&dir.join(CONNECTIONS));
    write_atomically(&dir.join(HTML), html::render(summary, &series, &spans).as_bytes())
}

/// Writes `path` whole or not at all (through a temporary file beside it, removed when the
/// write fails); an error names the file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(on_file(path))
}
