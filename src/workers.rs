//! Local worker processes: `wsstorm run --workers N` (or `auto`) runs N copies of this binary,
//! each a segment of the scenario (`--segment i/N`) starting together (`--start-at`), shows one
//! live progress line fed by all of them, and merges their results directories into one at the
//! end — the single-machine case of segments and merge, not a second mechanism. `wsstorm serve
//! --workers N` runs N servers sharing their listening addresses (SO_REUSEPORT).
//!
//! The children get their own process group, so a Ctrl-C at the terminal reaches the parent
//! alone, which passes each one on to every child exactly once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::exit::Exit;
use crate::limits;
use crate::report::progress::Snapshot;
use crate::report::{self, Progress};
use crate::run::{Controls, RunError};
use crate::scenario::{self, Overrides, Plan, Target};

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

/// Child processes of this binary, each in its own process group, their stdout read line by
/// line into one channel (worker index, line); stderr is shared with the parent. Each child is
/// owned by a task that waits for it and signals it (by its id, only while it is not reaped).
pub struct Pool {
    waits: Vec<JoinHandle<std::io::Result<ExitStatus>>>,
    /// How many interrupts every child should have had.
    interrupts: watch::Sender<u8>,
    lines: mpsc::UnboundedReceiver<(usize, String)>,
}

impl Pool {
    pub fn spawn(args: impl IntoIterator<Item = Vec<OsString>>) -> std::io::Result<Pool> {
        let exe = std::env::current_exe()?;
        let (tx, lines) = mpsc::unbounded_channel();
        let interrupts = watch::Sender::new(0u8);
        let mut waits = Vec::new();
        for (i, args) in args.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().expect("piped stdout");
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send((i, line));
                }
            });
            waits.push(tokio::spawn(own(child, interrupts.subscribe())));
        }
        Ok(Pool {
            waits,
            interrupts,
            lines,
        })
    }

    /// Waits for every child, handing each stdout line to `line`; passes each of the parent's
    /// interrupts (Ctrl-C, SIGTERM) on to every child as one SIGINT.
    pub async fn wait(
        mut self,
        controls: &Controls,
        mut line: impl FnMut(usize, &str),
    ) -> Vec<Option<ExitStatus>> {
        let all = futures_util::future::join_all(self.waits);
        let mut all = std::pin::pin!(all);
        let mut reading = true;
        let statuses = loop {
            tokio::select! {
                done = &mut all => break done,
                got = self.lines.recv(), if reading => match got {
                    Some((i, text)) => line(i, &text),
                    None => reading = false,
                },
                _ = controls.stop.cancelled(), if *self.interrupts.borrow() < 1 => {
                    self.interrupts.send_replace(1);
                }
                _ = controls.halt.cancelled(), if *self.interrupts.borrow() < 2 => {
                    self.interrupts.send_replace(2);
                }
            }
        };
        // The lines still on their way once the children have ended.
        while let Some((i, text)) = self.lines.recv().await {
            line(i, &text);
        }
        statuses
            .into_iter()
            .map(|s| s.ok().and_then(Result::ok))
            .collect()
    }
}

/// Waits for one child, signalling it each time the pool's interrupt count goes up (SIGINT,
/// then SIGTERM; wsstorm treats both as an interrupt).
async fn own(mut child: Child, mut interrupts: watch::Receiver<u8>) -> std::io::Result<ExitStatus> {
    let (mut sent, mut open) = (0u8, true);
    loop {
        tokio::select! {
            status = child.wait() => return status,
            changed = interrupts.changed(), if open => {
                open = changed.is_ok();
                let wanted = *interrupts.borrow_and_update();
                while sent < wanted {
                    // The second as SIGTERM: two SIGINTs in a row may arrive as one.
                    let signal = if sent == 0 { Signal::SIGINT } else { Signal::SIGTERM };
                    if let Some(pid) = child.id() {
                        let _ = kill(Pid::from_raw(pid as i32), signal);
                    }
                    sent += 1;
                }
            }
        }
    }
}

/// The results directory of worker `i` inside the run's.
pub fn worker_dir(dir: &Path, i: u32) -> PathBuf {
    dir.join("workers").join(format!("worker-{i}"))
}

/// What `run --workers` needs from the command line.
pub struct RunWorkers {
    pub scenario: PathBuf,
    pub overrides: Overrides,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub workers: Workers,
}

/// Runs the scenario as worker processes and merges their results; gives the exit code.
pub async fn run(options: RunWorkers, controls: Controls) -> Result<Exit, RunError> {
    let plan = scenario::load(&options.scenario, &options.overrides)?;
    if plan.segment.is_some() {
        return Err(RunError::Unusable(
            "--workers splits the run into segments itself: it does not combine with --segment or --segments"
                .into(),
        ));
    }
    let n = count(options.workers, &plan);
    if n == 1 {
        let result = crate::run::execute(plan, options.out, options.quiet, controls).await?;
        return Ok(result.exit());
    }
    let started = Utc::now();
    let dir = report::results_dir(options.out.as_deref(), &plan.name, started).map_err(|e| RunError::Io {
        context: format!(
            "cannot create the results directory {} (nothing was sent)",
            options
                .out
                .as_deref()
                .map_or_else(|| "under results/".to_string(), |o| o.display().to_string())
        ),
        source: e,
    })?;
    // Time for every child to start (and its embedded target) before the shared start.
    let lead = Duration::from_millis(500 + 100 * u64::from(n));
    let start_at = plan
        .start_at
        .unwrap_or(started + chrono::Duration::from_std(lead).expect("a short lead"));
    let start = start_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let per_process = limits::clients_per_process(
        limits::raise_open_files().0,
        limits::descriptors_per_client(&plan),
    );
    // Workers against one target share this machine's ephemeral ports towards it: judged on
    // the whole run (with `embedded`, each worker has a target of its own).
    if matches!(plan.target, Target::Url(_))
        && let Some(warning) = limits::ports_warning(plan.peak_clients(), plan.connect.source_addrs.len())
    {
        eprintln!("warning: {warning}");
    }
    if !options.quiet {
        println!(
            "wsstorm: {} in {n} worker processes ({} clients at the peak, up to {per_process} per process), starting {start}, results in {}",
            plan.name,
            plan.peak_clients(),
            dir.display()
        );
    }
    let args = (0..n).map(|i| {
        let mut a: Vec<OsString> = vec!["run".into(), options.scenario.clone().into()];
        let o = &options.overrides;
        if let Some(t) = &o.target {
            a.extend(["--target".into(), t.into()]);
        }
        if let Some(d) = o.duration {
            a.extend(["--duration".into(), scenario::duration::show(d).into()]);
        }
        if let Some(r) = o.requests {
            a.extend(["--requests".into(), r.to_string().into()]);
        }
        if o.insecure {
            a.push("--insecure".into());
        }
        for set in &o.sets {
            a.extend([
                "--set".into(),
                format!("{}={}", set.path.join("."), set.value).into(),
            ]);
        }
        a.extend([
            "--segment".into(),
            format!("{i}/{n}").into(),
            "--start-at".into(),
            start.clone().into(),
            "--out".into(),
            worker_dir(&dir, i).into(),
            "--quiet".into(),
            "--progress-json".into(),
        ]);
        a
    });
    let pool = Pool::spawn(args).map_err(|e| RunError::Io {
        context: "cannot start the worker processes".into(),
        source: e,
    })?;
    let mut progress = Progress::new(options.quiet, plan.duration);
    let mut latest = vec![Snapshot::default(); n as usize];
    let statuses = pool
        .wait(&controls, |i, line| {
            match serde_json::from_str::<Snapshot>(line) {
                Ok(s) => {
                    latest[i] = s;
                    progress.show(&Snapshot::sum(&latest), plan.duration);
                }
                Err(_) => eprintln!("worker {i}: {line}"),
            }
        })
        .await;
    progress.finish();

    let dirs: Vec<PathBuf> = (0..n)
        .map(|i| worker_dir(&dir, i))
        .filter(|d| d.join("summary.json").exists())
        .collect();
    for (i, status) in statuses.iter().enumerate() {
        match status {
            Some(s) if s.success() || s.code() == Some(Exit::ThresholdsCrossed as i32) => {}
            Some(s) => eprintln!("warning: worker {i} exited with {s}"),
            None => eprintln!("warning: worker {i} could not be waited for"),
        }
    }
    if dirs.is_empty() {
        return Err(RunError::Unusable(format!(
            "no worker wrote its results (see the errors above; their directories are under {})",
            dir.join("workers").display()
        )));
    }
    let merged = report::merge::merge(&dirs, &dir)
        .map_err(|e| RunError::Unusable(format!("merging the workers: {e}")))?;
    if !options.quiet {
        print!("{}", merged.summary.render_text());
        println!("results     {} ({n} workers merged)", dir.display());
    }
    if !merged.missing.is_empty() {
        let list: Vec<String> = merged.missing.iter().map(ToString::to_string).collect();
        eprintln!(
            "error: worker(s) for segment {} wrote no results: the merged totals leave out their load",
            list.join(", ")
        );
        return Ok(Exit::RunFailed);
    }
    Ok(merged.exit())
}
