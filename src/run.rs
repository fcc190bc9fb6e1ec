//! One run, end to end: plan → results directory → embedded target (if asked) → collector,
//! report stream and swarm → totals → thresholds → summary. Used by `wsstorm run` and by
//! tests in-process.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use chrono::{SecondsFormat, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::exit::Exit;
use crate::limits;
use crate::metrics::requests::RequestLog;
use crate::metrics::{self, Totals};
use crate::proxy::Proxy;
use crate::report::requests::RequestsWriter;
use crate::report::summary::RunInfo;
use crate::report::{self, Progress, Summary};
use crate::scenario::{self, Overrides, Plan, ScenarioErrors, Target};
use crate::swarm::{self, Shared, Surroundings};
use crate::target::{self, ServerCounts};

/// What went wrong before or around a run (a run whose thresholds fail is not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Invalid(#[from] ScenarioErrors),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// A valid scenario this machine cannot run as written.
    #[error("{0}")]
    Unusable(String),
    /// A results file could not be written during the run, which stopped it.
    #[error("{first}{also}")]
    WriteFailed {
        first: report::WriteFailure,
        also: String,
    },
}

impl RunError {
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Invalid(_) | RunError::Unusable(_) => Exit::InvalidInput,
            RunError::Io { .. } | RunError::WriteFailed { .. } => Exit::RunFailed,
        }
    }

    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| RunError::Io { context, source }
    }
}

/// How a completed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    ThresholdsCrossed,
    /// No client ever connected.
    RunFailed,
    Interrupted,
}

impl Outcome {
    pub fn exit(self) -> Exit {
        match self {
            Outcome::Passed => Exit::Success,
            Outcome::ThresholdsCrossed => Exit::ThresholdsCrossed,
            Outcome::RunFailed => Exit::RunFailed,
            Outcome::Interrupted => Exit::Interrupted,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::ThresholdsCrossed => "thresholds_crossed",
            Outcome::RunFailed => "run_failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Stop buttons: the first interrupt stops gracefully, the second at once.
#[derive(Clone, Default)]
pub struct Controls {
    pub stop: CancellationToken,
    pub halt: CancellationToken,
    interrupts: Arc<AtomicU8>,
    /// Progress as JSON lines on stdout, for the parent of `--workers` (see `workers`).
    pub progress_json: bool,
}

impl Controls {
    pub fn interrupt(&self) {
        match self.interrupts.fetch_add(1, Ordering::SeqCst) {
            0 => self.stop.cancel(),
            _ => self.halt.cancel(),
        }
    }

    pub fn interrupted(&self) -> bool {
        self.interrupts.load(Ordering::SeqCst) > 0
    }
}

pub struct RunOptions {
    pub scenario: PathBuf,
    pub overrides: Overrides,
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

pub struct RunResult {
    pub dir: PathBuf,
    pub summary: Summary,
    pub totals: Totals,
    pub outcome: Outcome,
    /// The embedded target's own counts, when it was used.
    pub server: Option<ServerCounts>,
}

impl RunResult {
    /// The process's exit code. A segment's thresholds are judged on its share alone, for the
    /// record: what counts is `wsstorm merge`'s verdict on the whole run, so crossing them does
    /// not fail the shard (an `abort_on_fail` that stopped it still does).
    pub fn exit(&self) -> Exit {
        let shard = self.summary.segment.is_some_and(|s| s.count > 1);
        if shard && self.outcome == Outcome::ThresholdsCrossed && self.summary.aborted.is_none() {
            Exit::Success
        } else {
            self.outcome.exit()
        }
    }
}

/// Loads the scenario and runs it.
pub async fn run(options: RunOptions, controls: Controls) -> Result<RunResult, RunError> {
    let plan = scenario::load(&options.scenario, &options.overrides)?;
    execute(plan, options.out, options.quiet, controls).await
}

/// Runs a validated plan.
pub async fn execute(
    plan: Plan,
    out: Option<PathBuf>,
    quiet: bool,
    controls: Controls,
) -> Result<RunResult, RunError> {
    crate::redact::register(&plan.secrets);
    if let Some((ip, e)) = limits::foreign_source(&plan.connect.source_addrs) {
        return Err(RunError::Unusable(format!(
            "{}: connect.source_addrs: {ip} is not an address of this machine ({e}); nothing was sent",
            plan.file.display()
        )));
    }
    let started_at = Utc::now();
    let dir = report::results_dir(out.as_deref(), &plan.name, started_at).map_err(RunError::io(format!(
        "cannot create the results directory {} (nothing was sent)",
        out.as_deref()
            .map_or_else(|| "under results/".to_string(), |o| o.display().to_string())
    )))?;
    let cannot_write = || format!("cannot write the results in {} (nothing was sent)", dir.display());
    report::check_space(&dir).map_err(RunError::io(cannot_write()))?;
    let writer = report::open_stream(&dir).map_err(RunError::io(cannot_write()))?;
    let requests_file = plan
        .requests
        .map(|_| RequestsWriter::create(&dir))
        .transpose()
        .map_err(RunError::io(cannot_write()))?;

    let embedded = match &plan.target {
        Target::Embedded(behaviour) => Some(
            target::start(([127, 0, 0, 1], 0).into(), behaviour.clone())
                .await
                .map_err(RunError::io("cannot start the embedded target"))?,
        ),
        Target::Url(_) => None,
    };
    let url = match (&plan.target, &embedded) {
        (Target::Url(url), _) => url.clone(),
        (Target::Embedded(_), Some(server)) => server.url(),
        (Target::Embedded(_), None) => unreachable!("embedded server started above"),
    };
    let authority = swarm::authority(&url);
    // With network chaos, clients connect to the proxy; the URL (Host header, path) stays the
    // target's.
    let proxy = if plan.needs_proxy() {
        Some(
            Proxy::start(([127, 0, 0, 1], 0).into(), authority.clone(), plan.seed)
                .await
                .map_err(RunError::io("cannot start the network chaos proxy"))?,
        )
    } else {
        None
    };
    let connect_to = proxy.as_ref().map_or(authority, |p| p.addr().to_string());
    if !quiet {
        let via = proxy
            .as_ref()
            .map(|p| format!(" (through the chaos proxy on {})", p.addr()))
            .unwrap_or_default();
        println!(
            "wsstorm: {} against {}{via} for {}, results in {}",
            plan.name,
            crate::redact::text(&url),
            scenario::duration::show(plan.duration),
            dir.display()
        );
    }

    // Every client holds a socket (and the embedded target one more, the proxy two): raise the
    // soft descriptor limit to the hard one and say so, before connecting, when even that is
    // too low or the ephemeral ports are too few.
    let per_client = limits::descriptors_per_client(&plan);
    let sources = plan.connect.source_addrs.len();
    let warnings = [
        limits::open_files_warning(plan.peak_clients(), per_client, plan.segment.is_none()),
        // The workers of `run --workers` share this machine's ports: their parent judges them.
        (!controls.progress_json)
            .then(|| limits::ports_warning(plan.peak_clients(), sources))
            .flatten(),
    ];
    for warning in warnings.into_iter().flatten() {
        eprintln!("warning: {warning}");
    }

    // --start-at: wait for the shared start; a late start keeps the anchor (the timeline's
    // first moments happen at once) and says so, so shards stay aligned.
    let mut started_at = started_at;
    let mut late_start_s = None;
    let start = match plan.start_at {
        None => Instant::now(),
        Some(at) => {
            started_at = at;
            match (at - Utc::now()).to_std() {
                Ok(wait) => {
                    if !quiet {
                        println!(
                            "waiting {:.1}s for --start-at {}",
                            wait.as_secs_f64(),
                            at.to_rfc3339()
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = controls.stop.cancelled() => {}
                    }
                    Instant::now()
                }
                Err(_) => {
                    let late = (Utc::now() - at).to_std().unwrap_or_default();
                    eprintln!(
                        "warning: started {:.3}s after --start-at {}: the timeline is not shifted, its first {:.3}s happen at once",
                        late.as_secs_f64(),
                        at.to_rfc3339(),
                        late.as_secs_f64()
                    );
                    late_start_s = Some(late.as_secs_f64());
                    Instant::now().checked_sub(late).unwrap_or_else(Instant::now)
                }
            }
        }
    };
    let (events, events_rx) = metrics::channel();
    let (samples_tx, samples_rx) = mpsc::unbounded_channel();
    let gate = metrics::AbortGate {
        thresholds: plan
            .thresholds
            .iter()
            .filter(|t| t.abort_after.is_some())
            .cloned()
            .collect(),
        stop: controls.stop.clone(),
    };
    let collector = tokio::spawn(metrics::collect(events_rx, start, samples_tx, gate));
    let streamer = tokio::spawn(report::stream(
        samples_rx,
        writer,
        if controls.progress_json {
            Progress::Json
        } else {
            Progress::new(quiet, plan.duration)
        },
        plan.load.clone(),
        plan.segment,
        plan.duration,
        controls.stop.clone(),
    ));
    let mut shared = Shared::new(
        &plan,
        &url,
        connect_to,
        events,
        controls.stop.clone(),
        controls.halt.clone(),
    );
    let request_writer = plan.requests.zip(requests_file).map(|(filter, file)| {
        let (log, rows) = RequestLog::new(filter);
        shared.requests = Some(log);
        tokio::spawn(file.write(rows, start, controls.stop.clone()))
    });
    let shared = Arc::new(shared);
    let around = Surroundings {
        proxy: proxy.as_ref(),
        results: &dir,
    };
    let exec = swarm::run(shared, &plan, start, around).await;
    // Every client has ended, so every request row has been sent.
    let requests_written = match request_writer {
        Some(writer) => Some(writer.await.expect("the requests writer does not panic")),
        None => None,
    };
    let elapsed = start.elapsed();
    let collected = collector.await.expect("collector does not panic");
    let totals = collected.totals;
    let streamed = streamer.await.expect("report stream does not panic");
    let proxy = match proxy {
        Some(proxy) => Some(proxy.shutdown().await),
        None => None,
    };
    let server = match embedded {
        Some(server) => Some(server.shutdown().await),
        None => None,
    };

    // A file that could not be written stopped the run: the first failure is the run's error,
    // and every failure is a warning.
    let mut write_failures: Vec<_> = [streamed.err(), requests_written.and_then(Result::err)]
        .into_iter()
        .flatten()
        .collect();
    write_failures.sort_by_key(|f| f.at);
    let verdicts = totals.verdicts(&plan.thresholds);
    let aborted = collected.aborted;
    let outcome = if !write_failures.is_empty() {
        Outcome::RunFailed
    } else if controls.interrupted() {
        Outcome::Interrupted
    } else if totals.counts.connects == 0 && plan.peak_clients() > 0 {
        Outcome::RunFailed
    } else if aborted.is_some() || verdicts.iter().any(|v| !v.passed) {
        Outcome::ThresholdsCrossed
    } else {
        Outcome::Passed
    };
    let info = RunInfo {
        scenario: plan.name.clone(),
        scenario_file: plan.file.display().to_string(),
        target: crate::redact::text(&url).into_owned(),
        embedded: embedded_flag(&plan),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        planned_duration_s: plan.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        peak_clients: plan.peak_clients(),
        segment: plan.segment,
        late_start_s,
        warnings: plan
            .tls
            .iter()
            .filter(|t| t.insecure)
            .map(|_| "TLS certificates were NOT verified (insecure = true or --insecure): the server's identity is unchecked".to_string())
            .chain(write_failures.iter().map(ToString::to_string))
            .collect(),
        outcome: outcome.name().to_string(),
        embedded_server: server,
        proxy,
        exec,
        aborted,
    };
    let summary = Summary::new(info, &totals, &verdicts, collected.recovery, &plan.chaos);
    // After a write error, the summary is still attempted (it may fit where a CSV did not).
    let reports = report::write_reports(&dir, &summary);
    if !quiet {
        print!("\n{}", summary.render_text());
        if outcome == Outcome::RunFailed && write_failures.is_empty() {
            let cause = totals
                .connect_errors
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(k, _)| k.to_string());
            println!(
                "no client could connect to {url}{}",
                cause
                    .map(|c| format!(" (most common error: {c})"))
                    .unwrap_or_default()
            );
        }
        println!("results     {}", dir.display());
    }
    if let Some(first) = write_failures.into_iter().next() {
        let also = reports
            .err()
            .map(|r| format!("; the summary could not be written either ({r})"))
            .unwrap_or_default();
        return Err(RunError::WriteFailed { first, also });
    }
    reports.map_err(RunError::io(format!(
        "cannot write the summary in {}",
        dir.display()
    )))?;
    Ok(RunResult {
        dir,
        summary,
        totals,
        outcome,
        server,
    })
}

fn embedded_flag(plan: &Plan) -> bool {
    matches!(plan.target, Target::Embedded(_))
}
