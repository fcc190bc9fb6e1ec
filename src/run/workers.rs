//! Local worker processes: `wsstorm run --workers N` (or `auto`) runs N copies of this binary,
//! each a segment of the scenario (`--segment i/N`) starting together (`--start-at`), shows one
//! live progress line fed by all of them, and merges their results directories into one at the
//! end: the single-machine case of segments and merge, not a second mechanism.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use super::pool::Pool;
use super::{Controls, RunError};
use crate::exit::Exit;
use crate::limits;
use crate::observe::{self, Live};
use crate::report::merge::{self, Merged, OutDir};
use crate::report::progress::Snapshot;
use crate::report::{self, Console, Out, Progress};
use crate::scenario::{Plan, Target};

/// How many worker processes: a number, or enough for the scenario under the open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Count(u32),
    Auto,
}

impl Workers {
    pub fn parse(text: &str) -> Result<Workers, String> {
        match text.trim() {
            "auto" => Ok(Workers::Auto),
            n => match n.parse::<u32>() {
                Ok(n) if (1..=1024).contains(&n) => Ok(Workers::Count(n)),
                _ => Err(format!(
                    "{text:?}: expected a number of processes from 1 to 1024, or \"auto\""
                )),
            },
        }
    }
}

/// The number of processes `workers` asks for with this plan (never more than its clients).
pub fn count(workers: Workers, plan: &Plan) -> u32 {
    let clients = plan.peak_clients();
    let n = match workers {
        Workers::Count(n) => u64::from(n),
        Workers::Auto => {
            let (_, hard) = limits::raise_open_files();
            limits::processes_for(clients, limits::descriptors_per_client(plan), hard)
        }
    };
    n.min(clients.max(1)).min(1024) as u32
}

/// The results directory of worker `i` inside the run's.
pub fn worker_dir(dir: &Path, i: u32) -> PathBuf {
    dir.join("workers").join(format!("worker-{i}"))
}

/// A worker's place in the run: its segment, the shared start and its results directory.
pub struct Part<'a> {
    pub index: u32,
    pub count: u32,
    /// RFC 3339.
    pub start_at: &'a str,
    pub out: &'a Path,
}

/// What a run in worker processes gave: the merged results (the workers' own under workers/).
pub struct WorkersRun {
    pub dir: PathBuf,
    pub workers: u32,
    pub merged: Merged,
}

/// Runs `plan` in `n` worker processes, each started with the arguments `args` gives for its
/// part, and merges their results.
/// `live` is the export of the workers' summed series.
pub async fn run(
    plan: &Plan,
    n: u32,
    (out, live): (&Out, &observe::Options),
    args: impl Fn(&Part<'_>) -> Vec<OsString>,
    console: &Console,
    controls: &Controls,
) -> Result<WorkersRun, RunError> {
    let bound = Live::bind(live).map_err(RunError::Unusable)?;
    let started = Utc::now();
    let dir = super::results_dir(plan, out, started)?;
    let exported = super::start_live((&plan.name, None), live, bound, &dir, console)?;
    // Time for every child to start (and its embedded target) before the shared start.
    let lead = Duration::from_millis(500 + 100 * u64::from(n));
    let start_at = plan
        .start_at
        .unwrap_or(started + chrono::Duration::from_std(lead).expect("a short lead"));
    let start_at = start_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    announce(plan, n, &dir, &start_at, console);
    let dirs: Vec<PathBuf> = (0..n).map(|i| worker_dir(&dir, i)).collect();
    let argv = (0..n).map(|i| {
        args(&Part {
            index: i,
            count: n,
            start_at: &start_at,
            out: &dirs[i as usize],
        })
    });
    let pool = Pool::spawn(argv).map_err(|e| RunError::Io {
        context: "cannot start the worker processes".into(),
        source: e,
    })?;
    let mut progress = Progress::of(console, plan.duration);
    let mut latest = vec![Snapshot::default(); n as usize];
    let mut sum = observe::WorkerSum::new(n as usize);
    let statuses = pool
        .wait(controls, false, |i, line| {
            let Some(line) = line else {
                // Its stdout closed: ended (its last series is in) or died (its gauges go).
                if let (Some(f), Some(live)) = (sum.gone(i), &exported) {
                    live.publish(f);
                }
                return;
            };
            if let Some(f) = observe::read_worker_line(line) {
                if let (Some(f), Some(live)) = (sum.add(i, f), &exported) {
                    live.publish(f);
                }
                return;
            }
            match serde_json::from_str::<Snapshot>(line) {
                Ok(s) => {
                    latest[i] = s;
                    progress.show(&Snapshot::sum(&latest), plan.duration);
                }
                Err(_) => console.note(format_args!("worker {i}: {line}")),
            }
        })
        .await;
    progress.finish();
    // Every worker has ended: their last series are the run's.
    let live_export = match exported {
        Some(live) => {
            live.publish(sum.last());
            Some(live.finish(&controls.halt).await)
        }
        None => None,
    };
    for (i, status) in statuses.iter().enumerate() {
        let code = status.and_then(|s| s.code());
        match status {
            Some(s) if s.success() || code == Some(Exit::ThresholdsCrossed as i32) => {}
            // Interrupted as asked: said once by the merged outcome, not once per worker.
            Some(_) if controls.interrupted() && code == Some(Exit::Interrupted as i32) => {}
            Some(s) => console.warn(format_args!("worker {i} exited with {s}")),
            None => console.warn(format_args!("worker {i} could not be waited for")),
        }
    }
    let written: Vec<PathBuf> = dirs
        .into_iter()
        .filter(|d| d.join(report::SUMMARY_JSON).exists())
        .collect();
    if written.is_empty() {
        return Err(RunError::Unusable(format!(
            "no worker wrote its results (see the errors above; their directories are under {})",
            dir.join("workers").display()
        )));
    }
    let mut merged = merge::merge(&written, &dir, OutDir::Owned)
        .map_err(|e| RunError::Unusable(format!("merging the workers: {e}")))?;
    if live_export.is_some() {
        merged.summary.live_metrics = live_export;
        report::write_reports(&dir, &merged.summary).map_err(|e| RunError::Io {
            context: format!("cannot write the summary in {}", dir.display()),
            source: e,
        })?;
    }
    Ok(WorkersRun {
        dir,
        workers: n,
        merged,
    })
}

/// What the run is about to do, and what this machine allows.
fn announce(plan: &Plan, n: u32, dir: &Path, start_at: &str, console: &Console) {
    let per_process =
        limits::clients_per_process(limits::raise_open_files().0, limits::descriptors_per_client(plan));
    // Workers against one target share this machine's ephemeral ports towards it: judged on
    // the whole run (with `embedded`, each worker has a target of its own).
    if matches!(plan.target, Target::Url(_))
        && let Some(warning) = limits::ports_warning(plan.peak_clients(), plan.connect.source_addrs.len())
    {
        console.warn(warning);
    }
    console.say(format_args!(
        "wsstorm: {} in {n} worker processes ({} clients at the peak, up to {per_process} per process), starting {start_at}, results in {}",
        plan.name,
        plan.peak_clients(),
        dir.display()
    ));
}
