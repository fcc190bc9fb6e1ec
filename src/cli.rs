//! Command-line interface: clap definitions and the dispatch of each command to the library.
//! Flag relations and value parsing live in clap attributes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::exit::Exit;
use crate::metrics::requests::RequestFilter;
use crate::proxy::{Direction, Fault, Proxy, Toxic};
use crate::report;
use crate::run::{self, Controls, RunOptions};
use crate::scenario::segment::Segment;
use crate::scenario::set::Set;
use crate::scenario::{self, Overrides, duration, units};
use crate::target::{self, Behaviour, ServerCounts};
use crate::workers::{self, Workers};

#[derive(Debug, Parser)]
#[command(
    name = "wsstorm",
    version,
    about = "Load and chaos testing for WebSocket services"
)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text, or as one JSON object per line (for log collectors).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its results.
    Run(RunArgs),
    /// Parse and check a scenario without connecting; print the resolved plan.
    Validate(ValidateArgs),
    /// Run the built-in target server.
    Serve(ServeArgs),
    /// Run the fault-injecting TCP proxy on its own, in front of any server and any client.
    Proxy(ProxyArgs),
    /// Render summary.txt, junit.xml and report.html again from a results directory.
    Report(ReportArgs),
    /// Compare two results directories; exit 3 when a chosen metric regressed past the limit.
    Compare(CompareArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `wsstorm man > wsstorm.1`.
    Man,
    /// Print the JSON Schema of scenario files (for editors: taplo, VS Code "Even Better TOML").
    Schema,
    /// Merge the results directories of a scenario's segments into one, judging the thresholds
    /// on the merged result (exit 3 when one is crossed).
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The segments' results directories.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged results go.
    #[arg(long)]
    pub out: PathBuf,
    /// No summary on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Accept a merge that lacks some segments (their load is missing from the totals, so the
    /// verdict covers only part of the run); without it such a merge exits 1.
    #[arg(long)]
    pub allow_partial: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline results directory.
    pub base: PathBuf,
    /// The results directory to judge against it.
    pub new: PathBuf,
    /// Largest change for the worse allowed in the gated metrics (e.g. 10%).
    #[arg(long, value_parser = toxicity, default_value = "10%")]
    pub max_regression: f64,
    /// A metric to gate on (repeatable): rtt.p99, rtt.p99.9, connect_time.p95, reconnect_time.max,
    /// timeout_rate, error_rate, requests_per_s, or a count such as lost. Default: rtt.p99 and
    /// error_rate.
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory (with summary.json, and timeseries.csv for the charts).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Target URL, replacing the scenario's (ws://host:port/path or "embedded").
    #[arg(long)]
    pub target: Option<String>,
    /// Run length, replacing the scenario's (e.g. 30s, 2m).
    #[arg(long, value_parser = duration::parse)]
    pub duration: Option<Duration>,
    /// Write requests.csv, one row per request outcome: all, errors or sample:0.01.
    #[arg(long, value_parser = RequestFilter::parse)]
    pub requests: Option<RequestFilter>,
    /// Run shard INDEX of COUNT (0-based): the clients numbered INDEX mod COUNT.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = Segment::parse, conflicts_with = "segments")]
    pub segment: Option<Segment>,
    /// Run one of COUNT shards, the index taken from JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job's completion index).
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub segments: Option<u32>,
    /// Begin the timeline at this time, so that shards start together: RFC 3339
    /// (2026-11-23T15:00:00Z) or a delay from now (+30s).
    #[arg(long, value_name = "TIME", value_parser = start_at)]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Do not verify the TLS certificate of a wss:// target (the summary warns).
    #[arg(long)]
    pub insecure: bool,
    /// Change one value of the scenario before it is checked: PATH=VALUE, the path dotted
    /// with numbers for array entries (phases.0.clients=5000, connect.timeout=5s). Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = Set::parse)]
    pub sets: Vec<Set>,
}

fn start_at(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Some(delay) = text.strip_prefix('+') {
        let d = duration::parse(delay)?;
        let d = chrono::Duration::from_std(d).map_err(|e| e.to_string())?;
        return Ok(chrono::Utc::now() + d);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?}: {e}: expected an RFC 3339 time such as 2026-11-23T15:00:00Z or a delay such as +30s"))
}

impl ScenarioArgs {
    /// The flags that replace the file's values; a bad one is reported here (exit 2).
    fn overrides(&self) -> Result<Overrides, Exit> {
        self.try_overrides().map_err(|e| {
            eprintln!("error: {e}");
            Exit::InvalidInput
        })
    }

    fn try_overrides(&self) -> Result<Overrides, String> {
        let segment = match (self.segment, self.segments) {
            (Some(s), _) => Some(s),
            (None, None) => None,
            (None, Some(count)) => {
                let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                    "--segments needs JOB_COMPLETION_INDEX in the environment (or use --segment INDEX/COUNT)"
                        .to_string()
                })?;
                Some(
                    Segment::parse(&format!("{index}/{count}"))
                        .map_err(|e| format!("JOB_COMPLETION_INDEX: {e}"))?,
                )
            }
        };
        Ok(Overrides {
            target: self.target.clone(),
            duration: self.duration,
            requests: self.requests,
            segment,
            start_at: self.start_at,
            insecure: self.insecure,
            sets: self.sets.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Results directory (default: results/<name>-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress and no summary on stdout (the results directory is still written).
    #[arg(long, short)]
    pub quiet: bool,
    /// Run in this many local processes (or "auto": enough for the scenario under the
    /// open-files limit), each a segment of the scenario; one progress line, one merged
    /// results directory (the workers' own under workers/).
    #[arg(long, value_name = "N|auto", value_parser = Workers::parse)]
    pub workers: Option<Workers>,
    /// Progress as one JSON line per second on stdout (what --workers reads from its workers).
    #[arg(long, hide = true)]
    pub progress_json: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; repeat it to listen on several (ports or addresses).
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: Vec<SocketAddr>,
    /// Serve from this many processes, which share the listening addresses (SO_REUSEPORT: the
    /// kernel spreads connections between them), each under its own open-files limit.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// Bind with SO_REUSEPORT (what each --workers process does).
    #[arg(long, hide = true)]
    pub reuse_port: bool,
    /// Print the counts as one JSON line per second, and at the end (for the --workers parent).
    #[arg(long, hide = true)]
    pub counts_json: bool,
    /// Delay added before each reply (e.g. 20ms).
    #[arg(long, value_parser = duration::parse, default_value = "0s")]
    pub latency: Duration,
    /// Random extra delay up to this much, added to --latency.
    #[arg(long, value_parser = duration::parse, default_value = "0s")]
    pub jitter: Duration,
    /// Withhold the reply to every Nth message received.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub no_reply_every: Option<u64>,
    /// Withhold each reply with this probability (0.0 to 1.0).
    #[arg(long, value_parser = fraction, default_value = "0")]
    pub no_reply_fraction: f64,
    /// Print a line of counts (open connections; accepted, received, answered, refused in the
    /// interval) this often.
    #[arg(long, value_parser = positive_duration)]
    pub stats_every: Option<Duration>,
    /// Seed for jitter and the withheld fraction.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Close every open connection every this often (e.g. 10s).
    #[arg(long, value_parser = positive_duration)]
    pub close_every: Option<Duration>,
    /// Close every open connection at these times after start (comma separated: 5s,12s).
    #[arg(long, value_parser = duration::parse, value_delimiter = ',')]
    pub close_at: Vec<Duration>,
    /// Close code of those closes (1012: service restart).
    #[arg(long, value_parser = close_code, default_value = "1012", conflicts_with = "close_by_reset")]
    pub close_code: u16,
    /// Close by TCP reset instead of a close frame.
    #[arg(long)]
    pub close_by_reset: bool,
    /// After each of those closes, answer upgrades with HTTP 503 for this long.
    #[arg(long, value_parser = duration::parse, default_value = "0s")]
    pub refuse_for: Duration,
    /// Answer upgrades with HTTP 401 unless they carry `Authorization: Bearer TOKEN` or
    /// `?token=TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    pub require_token: Option<String>,
    /// Push `{"type":"push","seq":N,"sent_at_us":T}` to every connection this often (e.g.
    /// 100ms); `?resume_from=N` in the URL continues at N+1.
    #[arg(long, value_parser = positive_duration)]
    pub push_every: Option<Duration>,
    /// Push sequence numbers to leave out, as lost messages (comma separated: 5,9).
    #[arg(long, value_delimiter = ',', requires = "push_every")]
    pub push_skip: Vec<u64>,
    /// Ping every connection this often; close it (1011) when a ping goes unanswered for
    /// --ping-timeout.
    #[arg(long, value_parser = positive_duration)]
    pub ping_every: Option<Duration>,
    /// How long a ping may go unanswered (no pong, no other frame).
    #[arg(long, value_parser = positive_duration, default_value = "5s", requires = "ping_every")]
    pub ping_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9002")]
    pub listen: SocketAddr,
    /// Where to forward every connection (host:port).
    #[arg(long)]
    pub upstream: String,
    /// Delay added to every chunk of bytes (e.g. 50ms).
    #[arg(long, value_parser = duration::parse)]
    pub latency: Option<Duration>,
    /// Random variation of that delay, ± this much.
    #[arg(long, value_parser = duration::parse, requires = "latency")]
    pub jitter: Option<Duration>,
    /// Bandwidth limit (e.g. 100KiB/s).
    #[arg(long, value_parser = units::rate)]
    pub bandwidth: Option<u64>,
    /// Cut chunks into pieces of about this many bytes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub slicer: Option<u32>,
    /// Variation of the slice size, ± this many bytes.
    #[arg(long, default_value = "0", requires = "slicer")]
    pub slicer_variation: u32,
    /// Pause between slices.
    #[arg(long, value_parser = duration::parse, default_value = "0s", requires = "slicer")]
    pub slicer_delay: Duration,
    /// Delay a close from one side before passing it to the other.
    #[arg(long, value_parser = duration::parse)]
    pub slow_close: Option<Duration>,
    /// Close a connection once this many bytes have passed (e.g. 64KiB).
    #[arg(long, value_parser = positive_size)]
    pub limit_data: Option<u64>,
    /// Direction those faults act on: upstream (client → server), downstream, or both.
    #[arg(long, value_parser = direction, default_value = "downstream")]
    pub direction: Direction,
    /// Share of connections the faults hit (e.g. 50%).
    #[arg(long, value_parser = toxicity, default_value = "100%")]
    pub toxicity: f64,
    /// Seed for jitter, slice sizes and the connections a partial toxicity picks.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Print a line of counts this often.
    #[arg(long, value_parser = positive_duration)]
    pub stats_every: Option<Duration>,
}

fn positive_size(text: &str) -> Result<u64, String> {
    match units::size(text)? {
        0 => Err(format!("expected at least 1 byte, found {text:?}")),
        n => Ok(n),
    }
}

impl ProxyArgs {
    fn faults(&self) -> Vec<Fault> {
        let mut toxics = Vec::new();
        if let Some(add) = self.latency {
            toxics.push(Toxic::Latency {
                add,
                jitter: self.jitter.unwrap_or_default(),
            });
        }
        if let Some(bytes_per_s) = self.bandwidth {
            toxics.push(Toxic::Bandwidth { bytes_per_s });
        }
        if let Some(average) = self.slicer {
            toxics.push(Toxic::Slicer {
                average: average as usize,
                variation: self.slicer_variation as usize,
                delay: self.slicer_delay,
            });
        }
        if let Some(delay) = self.slow_close {
            toxics.push(Toxic::SlowClose { delay });
        }
        if let Some(bytes) = self.limit_data {
            toxics.push(Toxic::LimitData { bytes });
        }
        toxics
            .into_iter()
            .map(|toxic| Fault {
                toxic,
                direction: self.direction,
                toxicity: self.toxicity,
            })
            .collect()
    }
}

fn direction(text: &str) -> Result<Direction, String> {
    Direction::parse(text).ok_or_else(|| format!("expected upstream, downstream or both, found {text:?}"))
}

fn toxicity(text: &str) -> Result<f64, String> {
    scenario::share(text).ok_or_else(|| format!("expected a share such as \"50%\" or 0.5, found {text:?}"))
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration::parse(text)? {
        d if d.is_zero() => Err(format!("expected a duration above zero, found {text:?}")),
        d => Ok(d),
    }
}

/// A close code that may be sent (see `scenario::sendable_close_code`).
fn close_code(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(c) if scenario::sendable_close_code(u64::from(c)) => Ok(c),
        _ => Err(format!("{}, found {text:?}", scenario::CLOSE_CODE_EXPECTED)),
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction between 0.0 and 1.0, found {text:?}")),
    }
}

impl Cli {
    /// Whether this process is one of the workers of `run --workers` or `serve --workers`.
    pub fn is_worker_process(&self) -> bool {
        match &self.command {
            Command::Run(args) => args.progress_json,
            Command::Serve(args) => args.counts_json,
            _ => false,
        }
    }
}

/// Runs a parsed command line inside a tokio runtime.
pub async fn dispatch(cli: Cli) -> Exit {
    match cli.command {
        Command::Run(args) => {
            let mut controls = Controls::default();
            controls.progress_json = args.progress_json;
            listen_for_signals(controls.clone());
            let overrides = match args.scenario.overrides() {
                Ok(o) => o,
                Err(exit) => return exit,
            };
            if let Some(workers) = args.workers {
                let options = workers::RunWorkers {
                    scenario: args.scenario.scenario,
                    overrides,
                    out: args.out,
                    quiet: args.quiet,
                    workers,
                };
                return match workers::run(options, controls).await {
                    Ok(exit) => exit,
                    Err(e) => {
                        eprintln!("{}", error_text(&e));
                        e.exit()
                    }
                };
            }
            let options = RunOptions {
                overrides,
                scenario: args.scenario.scenario,
                out: args.out,
                quiet: args.quiet,
            };
            match run::run(options, controls).await {
                Ok(result) => result.exit(),
                Err(e) => {
                    eprintln!("{}", error_text(&e));
                    e.exit()
                }
            }
        }
        Command::Validate(args) => {
            let overrides = match args.scenario.overrides() {
                Ok(o) => o,
                Err(exit) => return exit,
            };
            match scenario::load(&args.scenario.scenario, &overrides) {
                Ok(plan) => {
                    crate::redact::register(&plan.secrets);
                    out(&format!("{plan}valid: nothing was sent\n"));
                    Exit::Success
                }
                Err(e) => {
                    eprintln!("{e}");
                    Exit::InvalidInput
                }
            }
        }
        Command::Serve(args) => serve(args).await,
        Command::Proxy(args) => proxy(args).await,
        Command::Compare(args) => compare(args),
        Command::Merge(args) => match report::merge::merge(&args.dirs, &args.out) {
            Ok(merged) => {
                if !args.quiet {
                    print!("{}", merged.summary.render_text());
                    println!(
                        "merged      {} segments into {}",
                        args.dirs.len(),
                        args.out.display()
                    );
                }
                if !merged.missing.is_empty() {
                    let list: Vec<String> = merged.missing.iter().map(ToString::to_string).collect();
                    let list = list.join(", ");
                    if !args.allow_partial {
                        eprintln!(
                            "error: a partial merge: no directory for segment {list}, so the totals and \
                             the verdict leave out their load (written to {} all the same; \
                             --allow-partial accepts it)",
                            args.out.display()
                        );
                        return Exit::RunFailed;
                    }
                    eprintln!("warning: a partial merge: no directory for segment {list}");
                }
                merged.exit()
            }
            Err(report::merge::MergeError::Refused(why)) => {
                eprintln!("error: {why}");
                Exit::InvalidInput
            }
            Err(report::merge::MergeError::Io(e)) => {
                eprintln!("error: {e}");
                // A missing or unreadable shard is bad input; a failed write is a failure.
                match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => Exit::InvalidInput,
                    _ => Exit::RunFailed,
                }
            }
        },
        Command::Schema => {
            out(&scenario::json_schema());
            Exit::Success
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "wsstorm", &mut std::io::stdout());
            Exit::Success
        }
        Command::Man => match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
            Ok(()) => Exit::Success,
            Err(e) => {
                eprintln!("error: {e}");
                Exit::RunFailed
            }
        },
        Command::Report(args) => match report::rerender(&args.dir) {
            Ok(summary) => {
                println!(
                    "{}: summary.txt, junit.xml and report.html rendered again ({})",
                    args.dir.display(),
                    summary.outcome
                );
                Exit::Success
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::InvalidInput
            }
        },
    }
}

/// Writes to stdout; a reader that went away (`wsstorm validate s.toml | head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn error_text(e: &run::RunError) -> String {
    match e {
        run::RunError::Invalid(errors) => format!("{errors}\nnothing was sent"),
        other => format!("error: {other}"),
    }
}

/// The warning for a listener other machines can reach: the built-in target and the proxy
/// listen on loopback unless told otherwise, and say so when they are not.
fn not_loopback(what: &str, addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    let reach = if ip.is_unspecified() {
        "every interface of this machine"
    } else {
        "an address other machines may reach"
    };
    (!ip.is_loopback()).then(|| {
        format!(
            "warning: {what} listens on {addr}, {reach}, not loopback: anyone who can reach it can connect"
        )
    })
}

async fn serve(args: ServeArgs) -> Exit {
    // The processes of --workers (started with --reuse-port) leave this to their parent.
    if !args.reuse_port {
        for warning in args
            .listen
            .iter()
            .filter_map(|a| not_loopback("wsstorm serve", *a))
        {
            eprintln!("{warning}");
        }
    }
    if args.workers > 1 {
        return serve_workers(args).await;
    }
    let behaviour = Behaviour {
        latency: args.latency,
        jitter: args.jitter,
        no_reply_every: args.no_reply_every,
        no_reply_fraction: args.no_reply_fraction,
        seed: args.seed,
        close_every: args.close_every,
        close_at: args.close_at,
        close_code: args.close_code,
        close_by_reset: args.close_by_reset,
        refuse_for: args.refuse_for,
        require_token: args.require_token,
        push_every: args.push_every,
        push_skip: args.push_skip,
        ping_every: args.ping_every,
        ping_timeout: args.ping_timeout,
    };
    let description = behaviour.describe();
    let server = match target::start_on(&args.listen, args.reuse_port, behaviour).await {
        Ok(s) => s,
        Err(e) => {
            let listen: Vec<String> = args.listen.iter().map(ToString::to_string).collect();
            eprintln!("error: cannot listen on {}: {e}", listen.join(", "));
            return Exit::RunFailed;
        }
    };
    if args.counts_json {
        let json = |c: ServerCounts| println!("{}", serde_json::to_string(&c).expect("counts serialize"));
        until_ctrl_c(Some(Duration::from_secs(1)), || json(server.counts())).await;
        json(server.shutdown().await);
        return Exit::Success;
    }
    let urls: Vec<String> = server.addrs.iter().map(|a| format!("ws://{a}/")).collect();
    println!(
        "wsstorm serve: listening on {} ({description}); Ctrl-C to stop",
        urls.join(", ")
    );
    let mut stats = ServeStats::new(server.started());
    until_ctrl_c(args.stats_every, || stats.line(server.counts())).await;
    print_served(server.shutdown().await);
    Exit::Success
}

/// The interval lines of `serve --stats-every`.
struct ServeStats {
    started: tokio::time::Instant,
    last: ServerCounts,
}

impl ServeStats {
    fn new(started: tokio::time::Instant) -> Self {
        ServeStats {
            started,
            last: ServerCounts::default(),
        }
    }

    fn line(&mut self, now: ServerCounts) {
        let last = self.last;
        println!(
            "{:>9.3}s  open {:>7}  accepted {:>6}  received {:>8}  answered {:>8}  refused {:>5}",
            self.started.elapsed().as_secs_f64(),
            now.open,
            now.connections - last.connections,
            now.received - last.received,
            now.answered - last.answered,
            now.refused - last.refused,
        );
        self.last = now;
    }
}

fn print_served(counts: ServerCounts) {
    println!(
        "served {} connections, {} messages received, {} answered, {} withheld",
        counts.connections, counts.received, counts.answered, counts.withheld
    );
    println!(
        "closed {} on schedule, {} idle; refused {} upgrades (503), {} unauthorized (401); \
         {} pushes, {} pings sent, {} pongs received",
        counts.closed_by_schedule,
        counts.idle_closed,
        counts.refused,
        counts.unauthorized,
        counts.pushes,
        counts.pings_sent,
        counts.pongs_received
    );
}

/// `serve --workers N`: N processes of `serve` sharing the addresses (SO_REUSEPORT), their
/// counts added up.
async fn serve_workers(args: ServeArgs) -> Exit {
    if let Some(any) = args.listen.iter().find(|a| a.port() == 0) {
        eprintln!("error: --workers needs fixed ports to share between its processes, not {any}");
        return Exit::InvalidInput;
    }
    let n = args.workers as usize;
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    let mut raw = std::env::args_os().skip(1);
    while let Some(a) = raw.next() {
        match a.to_str() {
            Some("--workers") => {
                raw.next();
            }
            Some(s) if s.starts_with("--workers=") => {}
            _ => argv.push(a),
        }
    }
    argv.extend(["--reuse-port".into(), "--counts-json".into()]);
    let pool = match workers::Pool::spawn(std::iter::repeat_n(argv, n)) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: cannot start the server processes: {e}");
            return Exit::RunFailed;
        }
    };
    let urls: Vec<String> = args.listen.iter().map(|a| format!("ws://{a}/")).collect();
    println!(
        "wsstorm serve: listening on {} in {n} processes (SO_REUSEPORT); Ctrl-C to stop",
        urls.join(", ")
    );
    // Ctrl-C or SIGTERM reaches every server process (a supervisor's SIGTERM must not leave
    // them holding the ports).
    let controls = Controls::default();
    on_interrupts(controls.clone(), |_| {});
    let mut latest = vec![ServerCounts::default(); n];
    let mut stats = ServeStats::new(tokio::time::Instant::now());
    let mut due = args
        .stats_every
        .map(|every| (every, tokio::time::Instant::now() + every));
    let statuses = pool
        .wait(&controls, |i, line| {
            match serde_json::from_str::<ServerCounts>(line) {
                Ok(c) => {
                    latest[i] = c;
                    if let Some((every, at)) = &mut due
                        && tokio::time::Instant::now() >= *at
                    {
                        *at += *every;
                        stats.line(latest.iter().fold(ServerCounts::default(), |a, b| a + *b));
                    }
                }
                Err(_) => println!("server {i}: {line}"),
            }
        })
        .await;
    print_served(latest.iter().fold(ServerCounts::default(), |a, b| a + *b));
    let failed = statuses
        .iter()
        .filter(|s| !s.is_some_and(|s| s.success()))
        .count();
    if failed > 0 {
        eprintln!("error: {failed} of the {n} server processes failed (see above)");
        return Exit::RunFailed;
    }
    Exit::Success
}

fn compare(args: CompareArgs) -> Exit {
    let gates = if args.metrics.is_empty() {
        report::compare::DEFAULT_GATES
            .iter()
            .map(|g| g.to_string())
            .collect()
    } else {
        args.metrics
    };
    let summaries = report::read_summary(&args.base).and_then(|b| Ok((b, report::read_summary(&args.new)?)));
    let (base, new) = match summaries {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::InvalidInput;
        }
    };
    if base.scenario != new.scenario {
        eprintln!(
            "note: comparing different scenarios ({:?} and {:?})",
            base.scenario, new.scenario
        );
    }
    match report::compare::compare(&base, &new, &gates, args.max_regression) {
        Ok(comparison) => {
            print!(
                "{}",
                comparison.render(&args.base, &args.new, args.max_regression)
            );
            if comparison.regressed() {
                println!("result      REGRESSED");
                Exit::ThresholdsCrossed
            } else {
                println!(
                    "result      no regression beyond {:.1}%",
                    args.max_regression * 100.0
                );
                Exit::Success
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::InvalidInput
        }
    }
}

async fn proxy(args: ProxyArgs) -> Exit {
    let faults = args.faults();
    if let Some(warning) = not_loopback("wsstorm proxy", args.listen) {
        eprintln!("{warning}");
    }
    let proxy = match Proxy::start(args.listen, args.upstream.clone(), args.seed).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return Exit::RunFailed;
        }
    };
    for (id, fault) in faults.iter().enumerate() {
        proxy.begin(id as u64, *fault);
    }
    let described = if faults.is_empty() {
        "no faults".to_string()
    } else {
        faults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "wsstorm proxy: {} -> {} ({described}); Ctrl-C to stop",
        proxy.addr(),
        args.upstream
    );
    until_ctrl_c(args.stats_every, || {
        let c = proxy.counts();
        println!(
            "open {:>7}  accepted {:>8}  bytes up {:>12}  down {:>12}  upstream failures {}",
            c.open, c.connections, c.bytes_upstream, c.bytes_downstream, c.upstream_failures
        );
    })
    .await;
    let c = proxy.shutdown().await;
    println!(
        "proxied {} connections ({} upstream failures, {} closed by limit_data); {} bytes upstream, {} downstream",
        c.connections, c.upstream_failures, c.limited, c.bytes_upstream, c.bytes_downstream
    );
    Exit::Success
}

/// Runs until Ctrl-C, calling `stats` every `every` (when given) for a line of counts.
async fn until_ctrl_c(every: Option<Duration>, mut stats: impl FnMut()) {
    let mut ticker = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = ticker.tick(), if every.is_some() => stats(),
        }
    }
}

/// First Ctrl-C or SIGTERM stops gracefully, the second at once.
fn listen_for_signals(controls: Controls) {
    on_interrupts(controls, |first| {
        if first {
            eprintln!(
                "\ninterrupted: stopping gracefully, waiting for replies in flight (Ctrl-C again to stop at once)"
            );
        } else {
            eprintln!("\nstopping now");
        }
    });
}

/// Counts each Ctrl-C or SIGTERM as an interrupt of `controls`, telling `say` whether it was
/// the first.
fn on_interrupts(controls: Controls, say: impl Fn(bool) + Send + 'static) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = terminated => {}
            }
            let first = !controls.interrupted();
            controls.interrupt();
            say(first);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_off_loopback_is_said_to_be_so() {
        for quiet in ["127.0.0.1:9001", "127.0.0.2:80", "[::1]:9001"] {
            assert_eq!(
                not_loopback("wsstorm serve", quiet.parse().unwrap()),
                None,
                "{quiet}"
            );
        }
        let all = not_loopback("wsstorm serve", "0.0.0.0:9001".parse().unwrap()).unwrap();
        assert!(
            all.contains("0.0.0.0:9001, every interface") && all.contains("not loopback"),
            "{all}"
        );
        let lan = not_loopback("wsstorm proxy", "192.168.1.5:9002".parse().unwrap()).unwrap();
        assert!(
            lan.starts_with("warning: wsstorm proxy listens on 192.168.1.5:9002"),
            "{lan}"
        );
        let any6 = not_loopback("wsstorm serve", "[::]:9001".parse().unwrap()).unwrap();
        assert!(any6.contains("every interface"), "{any6}");
    }
}
