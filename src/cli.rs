//! The command line: clap definitions only, with flag relations and value parsing in clap
//! attributes. What each command does is in `cmd`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::run::workers::Workers;
use crate::scenario::segment::Segment;
use crate::scenario::set::Set;
use crate::scenario::{Compression, Direction, Protocol, RequestFilter};
use crate::units::{close_code, duration, share, size};

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
    /// Where the merged results go: an empty or new directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Empty a non-empty --out directory first, instead of refusing it.
    #[arg(long)]
    pub force: bool,
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
    /// The index --segments runs: JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job sets it.
    #[arg(long = "segment-index", env = "JOB_COMPLETION_INDEX", hide = true)]
    pub completion_index: Option<String>,
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

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Results directory (default: results/<name>-<UTC timestamp>). It must be empty or new:
    /// results are never mixed with another run's.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Empty a non-empty --out directory first, instead of refusing it.
    #[arg(long, requires = "out")]
    pub force: bool,
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
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// The live export of a run's series to Prometheus.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve the run's series for Prometheus to scrape at http://ADDR/metrics (text format, or
    /// OpenMetrics when asked) while it runs; with --workers, their sum.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Write the run's series to a Prometheus remote-write receiver (remote write 1.0), every
    /// --metrics-interval: prometheus-rw=URL (a user:password@ in the URL is sent as basic
    /// authorization, never shown).
    // Checked after parsing (`options`): clap would quote a bad value, password and all.
    #[arg(
        long,
        value_name = "prometheus-rw=URL",
        env = "WSSTORM_METRICS_OUT",
        hide_env_values = true
    )]
    pub metrics_out: Option<String>,
    /// How often the remote write sends, in whole seconds.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::observe::parse_interval)]
    pub metrics_interval: Duration,
    /// The run_id label of the series (default: the results directory's name). Give every
    /// segment of one run the same id, so that PromQL sums them.
    #[arg(long, value_name = "ID", env = "WSSTORM_RUN_ID", hide_env_values = true)]
    pub run_id: Option<String>,
    /// Series as one JSON line per second on stdout (what --workers reads from its workers).
    #[arg(long, hide = true)]
    pub metrics_json: bool,
}

impl MetricsArgs {
    /// What the flags ask of the live export; a bad --metrics-out is said without its value.
    pub fn options(&self) -> Result<crate::observe::Options, String> {
        let remote_write = self
            .metrics_out
            .as_deref()
            .map(crate::observe::parse_out)
            .transpose()
            .map_err(|e| format!("--metrics-out (or WSSTORM_METRICS_OUT): {e}"))?;
        Ok(crate::observe::Options {
            listen: self.metrics_listen,
            remote_write,
            interval: self.metrics_interval,
            run_id: self.run_id.clone(),
            to_parent: self.metrics_json,
        })
    }
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
    #[arg(long, value_parser = sendable_close_code, default_value = "1012", conflicts_with = "close_by_reset")]
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
    /// Answer in batches of this many replies: `{"type":"batch","messages":[...]}` (not with
    /// --protocol jsonrpc or socketio).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch: u32,
    /// Speak JSON-RPC 2.0 (`jsonrpc`: methods echo, fail, eth_subscribe, notified every
    /// --push-every, and eth_unsubscribe) or Socket.IO v5 (`socketio`: namespaces, events
    /// acknowledged with their arguments, the heartbeat every --ping-every) or GraphQL over
    /// WebSocket (`graphql-ws`: each subscribe answered with --batch `next` messages, then
    /// `complete`) or STOMP 1.2 (`stomp`: CONNECTED with heart-beats every --ping-every,
    /// RECEIPTs, SENDs delivered as MESSAGEs to the connection's own subscriptions) instead of
    /// echoing.
    #[arg(long, value_parser = protocol)]
    pub protocol: Option<Protocol>,
    /// Accept a client's permessage-deflate offer (`deflate`, RFC 7692), granting what it asks.
    #[arg(long, value_parser = compression)]
    pub compression: Option<Compression>,
}

fn compression(text: &str) -> Result<Compression, String> {
    match text {
        "deflate" => Ok(Compression::Deflate),
        other => Err(format!("unknown compression {other:?}: expected \"deflate\"")),
    }
}

fn protocol(text: &str) -> Result<Protocol, String> {
    match text {
        "jsonrpc" => Ok(Protocol::Jsonrpc),
        "socketio" => Ok(Protocol::Socketio),
        "graphql-ws" => Ok(Protocol::GraphqlWs),
        "stomp" => Ok(Protocol::Stomp),
        other => Err(format!(
            "unknown protocol {other:?}: expected \"jsonrpc\", \"socketio\", \"graphql-ws\" or \"stomp\""
        )),
    }
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
    #[arg(long, value_parser = size::byte_rate)]
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
    #[arg(long, value_enum, default_value = "downstream")]
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

fn positive_size(text: &str) -> Result<u64, String> {
    match size::size(text)? {
        0 => Err(format!("expected at least 1 byte, found {text:?}")),
        n => Ok(n),
    }
}

fn toxicity(text: &str) -> Result<f64, String> {
    share::share(text).ok_or_else(|| format!("expected a share such as \"50%\" or 0.5, found {text:?}"))
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration::parse(text)? {
        d if d.is_zero() => Err(format!("expected a duration above zero, found {text:?}")),
        d => Ok(d),
    }
}

/// A close code that may be sent.
fn sendable_close_code(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(c) if close_code::sendable(u64::from(c)) => Ok(c),
        _ => Err(format!("{}, found {text:?}", close_code::EXPECTED)),
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
