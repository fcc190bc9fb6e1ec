//! One run, end to end: plan → results directory → embedded target and chaos proxy (if asked)
//! → collector, report stream and swarm → totals → thresholds → summary and reports. Used by
//! `wsstorm run` and by tests in-process. It prints nothing itself: what it has to say goes
//! through the `Console` it is given, and its result goes back to the caller.

pub mod pool;
pub mod workers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::exit::Exit;
use crate::limits;
use crate::metrics::collector::Watch;
use crate::metrics::requests::RequestLog;
use crate::metrics::{self, LiveExport, ProxyCounts, Reasons, ServerCounts, Totals};
use crate::observe::{self, Live};
use crate::proxy::Proxy;
use crate::report::requests::RequestsWriter;
use crate::report::summary::{Outcome, RunInfo};
use crate::report::{self, Console, Out, Progress, Summary, WriteFailure};
use crate::scenario::{Fault, Plan, ScenarioErrors, Target};
use crate::server::{self, Server};
use crate::swarm::{self, Endpoint, FaultSwitch, Shared, Surroundings, Wiring};
use crate::units::duration::show;

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
    WriteFailed { first: WriteFailure, also: String },
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

impl From<Outcome> for Exit {
    fn from(outcome: Outcome) -> Exit {
        match outcome {
            Outcome::Passed => Exit::Success,
            Outcome::ThresholdsCrossed => Exit::ThresholdsCrossed,
            Outcome::RunFailed => Exit::RunFailed,
            Outcome::Interrupted => Exit::Interrupted,
        }
    }
}

/// Stop buttons: the first interrupt stops gracefully, the second at once.
#[derive(Clone, Default)]
pub struct Controls {
    pub stop: CancellationToken,
    pub halt: CancellationToken,
    interrupts: Arc<AtomicU8>,
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

pub struct RunResult {
    pub dir: PathBuf,
    pub summary: Summary,
    pub totals: Totals,
    /// The embedded target's own counts, when it was used.
    pub server: Option<ServerCounts>,
}

impl RunResult {
    pub fn outcome(&self) -> Outcome {
        self.summary.outcome
    }

    /// The process's exit code. A segment's thresholds are judged on its share alone, for the
    /// record: what counts is `wsstorm merge`'s verdict on the whole run, so crossing them does
    /// not fail the shard (an `abort_on_fail` that stopped it still does).
    pub fn exit(&self) -> Exit {
        let shard = self.summary.segment.is_some_and(|s| s.count > 1);
        if shard && self.outcome() == Outcome::ThresholdsCrossed && self.summary.aborted.is_none() {
            Exit::Success
        } else {
            self.outcome().into()
        }
    }
}

/// The results directory.
struct Results {
    dir: PathBuf,
    started_at: DateTime<Utc>,
}

/// The files written while the run goes, and the live export's feed.
struct Files {
    streams: report::Streams,
    requests: Option<RequestsWriter>,
    live: Option<Box<dyn Watch>>,
}

impl Results {
    /// Creates the directory and its streamed files: a place that cannot take them is an
    /// error before anything is sent.
    fn open(plan: &Plan, out: &Out) -> Result<(Results, Files), RunError> {
        let started_at = Utc::now();
        let dir = results_dir(plan, out, started_at)?;
        let cannot_write = || format!("cannot write the results in {} (nothing was sent)", dir.display());
        report::check_space(&dir).map_err(RunError::io(cannot_write()))?;
        let streams = report::open_stream(&dir).map_err(RunError::io(cannot_write()))?;
        let requests = plan
            .requests
            .map(|_| RequestsWriter::create(&dir, &plan.step_names))
            .transpose()
            .map_err(RunError::io(cannot_write()))?;
        let files = Files {
            streams,
            requests,
            live: None,
        };
        Ok((Results { dir, started_at }, files))
    }
}

/// What a run starts besides its clients: the embedded target, the chaos proxy and the live
/// export.
struct Around {
    server: Option<Server>,
    proxy: Option<Proxy>,
    endpoint: Endpoint,
    live: Option<Live>,
}

impl Around {
    async fn start(plan: &Plan, live: Option<Live>) -> Result<Around, RunError> {
        let (server, uri, authority) = match &plan.target {
            Target::Embedded(behaviour) => {
                let server = server::start(([127, 0, 0, 1], 0).into(), behaviour.clone())
                    .await
                    .map_err(RunError::io("cannot start the embedded target"))?;
                let (uri, authority) = (server.uri(), server.addr.to_string());
                (Some(server), uri, authority)
            }
            Target::Url(url) => (None, url.uri.clone(), url.authority.clone()),
        };
        // With network chaos, clients connect to the proxy; the URL (Host header, path) stays
        // the target's.
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
        Ok(Around {
            server,
            proxy,
            endpoint: Endpoint { uri, connect_to },
            live,
        })
    }

    /// Stops what it started; the live export delivers the run's last series first (unless
    /// `halt`: stop at once).
    async fn shutdown(
        self,
        halt: &CancellationToken,
    ) -> (Option<ServerCounts>, Option<ProxyCounts>, Option<LiveExport>) {
        let live = match self.live {
            Some(live) => Some(live.finish(halt).await),
            None => None,
        };
        let proxy = match self.proxy {
            Some(proxy) => Some(proxy.shutdown().await),
            None => None,
        };
        let server = match self.server {
            Some(server) => Some(server.shutdown().await),
            None => None,
        };
        (server, proxy, live)
    }
}

impl FaultSwitch for Proxy {
    fn begin(&self, id: u64, fault: Fault) -> u32 {
        Proxy::begin(self, id, fault)
    }

    fn end(&self, id: u64) {
        Proxy::end(self, id)
    }
}

/// When the timeline begins, and how it relates to `--start-at`.
struct Start {
    at: Instant,
    started_at: DateTime<Utc>,
    /// Seconds after `--start-at` that this run began.
    late_s: Option<f64>,
}

/// Waits for `--start-at`; a late start keeps the anchor (the timeline's first moments happen
/// at once) and says so, so shards stay aligned. None: stopped while waiting.
async fn wait_for_start(
    plan: &Plan,
    now: DateTime<Utc>,
    controls: &Controls,
    console: &Console,
) -> Option<Start> {
    let Some(at) = plan.start_at else {
        return Some(Start {
            at: Instant::now(),
            started_at: now,
            late_s: None,
        });
    };
    match (at - Utc::now()).to_std() {
        Ok(wait) => {
            console.say(format_args!(
                "waiting {:.1}s for --start-at {}",
                wait.as_secs_f64(),
                at.to_rfc3339()
            ));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = controls.stop.cancelled() => return None,
            }
            Some(Start {
                at: Instant::now(),
                started_at: at,
                late_s: None,
            })
        }
        Err(_) => {
            let late = (Utc::now() - at).to_std().unwrap_or_default();
            console.warn(format_args!(
                "started {:.3}s after --start-at {}: the timeline is not shifted, its first {:.3}s happen at once",
                late.as_secs_f64(),
                at.to_rfc3339(),
                late.as_secs_f64()
            ));
            Some(Start {
                at: Instant::now().checked_sub(late).unwrap_or_else(Instant::now),
                started_at: at,
                late_s: Some(late.as_secs_f64()),
            })
        }
    }
}

/// The results directory of a run, created now; a place that cannot take it is an error
/// before anything is sent.
pub fn results_dir(plan: &Plan, out: &Out, started: DateTime<Utc>) -> Result<PathBuf, RunError> {
    report::results_dir(out, &plan.name, started).map_err(|e| match e.kind() {
        std::io::ErrorKind::DirectoryNotEmpty => RunError::Unusable(format!("--out {e} (nothing was sent)")),
        _ => RunError::Io {
            context: format!(
                "cannot create the results directory {} (nothing was sent)",
                out.dir
                    .as_ref()
                    .map_or_else(|| "under results/".to_string(), |o| o.display().to_string())
            ),
            source: e,
        },
    })
}

/// Runs a validated plan; `out` says where its results go, `live` where its series go while
/// it runs.
pub async fn execute(
    plan: Plan,
    out: Out,
    live: &observe::Options,
    console: &Console,
    controls: Controls,
) -> Result<RunResult, RunError> {
    crate::redact::register(&plan.secrets);
    if let Some((ip, e)) = limits::foreign_source(&plan.connect.source_addrs) {
        return Err(RunError::Unusable(format!(
            "{}: connect.source_addrs: {ip} is not an address of this machine ({e}); nothing was sent",
            plan.file.display()
        )));
    }
    let bound = Live::bind(live).map_err(RunError::Unusable)?;
    let (results, mut files) = Results::open(&plan, &out)?;
    let exported = start_live((&plan.name, plan.segment), live, bound, &results.dir, console)?;
    files.live = match (&exported, live.to_parent) {
        (Some(l), _) => Some(l.feed(&plan)),
        (None, true) => {
            let console = console.clone();
            Some(observe::Feed::to_parent(
                &plan,
                Box::new(move |line| console.machine(line)),
            ))
        }
        (None, false) => None,
    };
    let around = Around::start(&plan, exported).await?;
    announce(&plan, &results, &around, console);
    let Some(start) = wait_for_start(&plan, results.started_at, &controls, console).await else {
        // Stopped before the timeline began: nothing was sent.
        return finish(&plan, results, around, None, &controls).await;
    };
    let plan = Arc::new(plan);
    let measured = measure(plan.clone(), files, &results, &around, &start, console, &controls).await;
    finish(&plan, results, around, Some((start, measured)), &controls).await
}

/// The live export `options` ask for on `bound`, labelled with the scenario, the segment and
/// the run id (by default the results directory's name), and said.
pub(crate) fn start_live(
    (scenario, segment): (&str, Option<crate::scenario::segment::Segment>),
    options: &observe::Options,
    bound: Option<std::net::TcpListener>,
    dir: &std::path::Path,
    console: &Console,
) -> Result<Option<Live>, RunError> {
    let run_id = options.run_id.clone().unwrap_or_else(|| {
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    });
    let labels = observe::labels(scenario, &run_id, segment);
    let warner = console.clone();
    let live = Live::start(options, bound, labels, Box::new(move |w| warner.warn(w)))
        .map_err(RunError::io("cannot serve --metrics-listen"))?;
    if let Some(addr) = live.as_ref().and_then(Live::listening) {
        console.say(format_args!("metrics     http://{addr}/metrics"));
    }
    Ok(live)
}

/// The start of a run, said before it begins: what runs against what, and what this machine
/// allows.
fn announce(plan: &Plan, results: &Results, around: &Around, console: &Console) {
    let via = around
        .proxy
        .as_ref()
        .map(|p| format!(" (through the chaos proxy on {})", p.addr()))
        .unwrap_or_default();
    console.say(format_args!(
        "wsstorm: {} against {}{via} for {}, results in {}",
        plan.name,
        around.endpoint.uri,
        show(plan.duration),
        results.dir.display()
    ));
    // Every client holds a socket (and the embedded target one more, the proxy two): raise the
    // soft descriptor limit to the hard one and say so, before connecting, when even that is
    // too low or the ephemeral ports are too few.
    let per_client = limits::descriptors_per_client(plan);
    if let Some(w) = limits::open_files_warning(plan.peak_clients(), per_client, plan.segment.is_none()) {
        console.warn(w);
    }
    // The workers of `run --workers` share this machine's ports: their parent judges them.
    if !console.is_worker()
        && let Some(w) = limits::ports_warning(plan.peak_clients(), plan.connect.source_addrs.len())
    {
        console.warn(w);
    }
}

/// What the timeline produced.
struct Measured {
    collected: metrics::Collected,
    exec: Vec<metrics::ExecReport>,
    elapsed: Duration,
    /// Files that could not be written (the first stopped the run).
    write_failures: Vec<WriteFailure>,
    /// The first message of each connect error and drop cause.
    reasons: (BTreeMap<String, String>, BTreeMap<String, String>),
}

/// Runs the timeline: the collector, the report stream and the swarm, until every client has
/// ended and every event is counted.
async fn measure(
    plan: Arc<Plan>,
    files: Files,
    results: &Results,
    around: &Around,
    start: &Start,
    console: &Console,
    controls: &Controls,
) -> Measured {
    let start = start.at;
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
    let counters = Arc::new(metrics::Counters::new(&plan.counters));
    let totals = metrics::Totals {
        registry: Some(counters.clone()),
        steps: metrics::steps::Steps::named(&plan.step_names),
        sockets: vec![Default::default(); plan.sockets.len()],
        ..Default::default()
    };
    let collector = tokio::spawn(metrics::collect(
        events_rx,
        start,
        samples_tx,
        gate,
        plan.recovery,
        totals,
        files.live,
    ));
    let streamer = tokio::spawn(report::stream(
        samples_rx,
        files.streams,
        Progress::of(console, plan.duration),
        plan.load.clone(),
        plan.segment,
        plan.duration,
        controls.stop.clone(),
    ));
    let (requests, request_writer) = match (plan.requests, files.requests) {
        (Some(filter), Some(file)) => {
            let (log, rows) = RequestLog::new(filter);
            let writer = tokio::spawn(file.write(rows, start, controls.stop.clone()));
            (Some(log), Some(writer))
        }
        _ => (None, None),
    };
    let reasons = Arc::new(Reasons::default());
    let wiring = Wiring {
        events,
        requests,
        stop: controls.stop.clone(),
        halt: controls.halt.clone(),
        reasons: reasons.clone(),
        counters,
    };
    let shared = Arc::new(Shared::new(plan, around.endpoint.clone(), wiring));
    let surroundings = Surroundings {
        faults: around.proxy.as_ref().map(|p| p as &dyn FaultSwitch),
        results: &results.dir,
    };
    let exec = swarm::run(shared, start, surroundings).await;
    // Every client has ended, so every request row has been sent.
    let requests_written = match request_writer {
        Some(writer) => Some(writer.await.expect("the requests writer does not panic")),
        None => None,
    };
    let elapsed = start.elapsed();
    let collected = collector.await.expect("collector does not panic");
    let streamed = streamer.await.expect("report stream does not panic");
    // A file that could not be written stopped the run: the first failure is the run's error,
    // and every failure is a warning.
    let mut write_failures: Vec<_> = [streamed.err(), requests_written.and_then(Result::err)]
        .into_iter()
        .flatten()
        .collect();
    write_failures.sort_by_key(|f| f.at);
    Measured {
        collected,
        exec,
        elapsed,
        write_failures,
        reasons: reasons.by_name(),
    }
}

/// How many of this run's clients (of the peak, this segment's) take each flow.
fn flow_clients(plan: &Plan) -> BTreeMap<String, u64> {
    let mut clients: BTreeMap<String, u64> = plan.flows.iter().map(|f| (f.name.clone(), 0)).collect();
    for client in (0..plan.load.peak()).filter(|c| plan.owns(*c)) {
        if let Some(flow) = plan.flow_of(client) {
            *clients.entry(plan.flows[flow].name.clone()).or_default() += 1;
        }
    }
    clients
}

/// Judges the run, writes its summary and reports, and hands back its result.
async fn finish(
    plan: &Plan,
    results: Results,
    around: Around,
    ran: Option<(Start, Measured)>,
    controls: &Controls,
) -> Result<RunResult, RunError> {
    let uri = around.endpoint.uri.to_string();
    let (server, proxy, live) = around.shutdown(&controls.halt).await;
    let (start, measured) = match ran {
        Some((start, measured)) => (Some(start), Some(measured)),
        None => (None, None),
    };
    let (totals, recovery, aborted, exec, elapsed, write_failures, reasons) = match measured {
        Some(m) => (
            m.collected.totals,
            m.collected.recovery,
            m.collected.aborted,
            m.exec,
            m.elapsed,
            m.write_failures,
            m.reasons,
        ),
        None => Default::default(),
    };
    let verdicts = totals.verdicts(&plan.thresholds);
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
    let mut warnings = Vec::new();
    if plan.tls.as_ref().is_some_and(|t| t.insecure) {
        warnings.push("TLS certificates were NOT verified (insecure = true or --insecure): the server's identity is unchecked".to_string());
    }
    warnings.extend(write_failures.iter().map(ToString::to_string));
    let info = RunInfo {
        scenario: plan.name.clone(),
        scenario_file: plan.file.display().to_string(),
        target: crate::redact::text(&uri).into_owned(),
        embedded: matches!(plan.target, Target::Embedded(_)),
        started_at: start
            .as_ref()
            .map_or(results.started_at, |s| s.started_at)
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        planned_duration_s: plan.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        peak_clients: plan.peak_clients(),
        segment: plan.segment,
        late_start_s: start.and_then(|s| s.late_s),
        warnings,
        outcome,
        embedded_server: server,
        proxy,
        live,
        exec,
        aborted,
        reasons,
        flow_clients: flow_clients(plan),
        socket_clients: plan
            .sockets
            .iter()
            .map(|s| (s.name.clone(), plan.peak_clients()))
            .collect(),
    };
    let summary = Summary::new(info, &totals, &verdicts, recovery, &plan.chaos);
    // After a write error, the summary is still attempted (it may fit where a CSV did not).
    let reports = report::write_reports(&results.dir, &summary);
    if let Some(first) = write_failures.into_iter().next() {
        let also = reports
            .err()
            .map(|r| format!("; the summary could not be written either ({r})"))
            .unwrap_or_default();
        return Err(RunError::WriteFailed { first, also });
    }
    reports.map_err(RunError::io(format!(
        "cannot write the summary in {}",
        results.dir.display()
    )))?;
    Ok(RunResult {
        dir: results.dir,
        summary,
        totals,
        server,
    })
}
