//! Command-line interface: clap definitions and the dispatch of each command to the library.
//! Flag relations and value parsing live in clap attributes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::exit::Exit;
use crate::run::{self, Controls, RunOptions};
use crate::scenario::{self, Overrides, duration};
use crate::target::{self, Behaviour};

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its results.
    Run(RunArgs),
    /// Parse and check a scenario without connecting; print the resolved plan.
    Validate(ValidateArgs),
    /// Run the built-in target server.
    Serve(ServeArgs),
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
}

impl ScenarioArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            target: self.target.clone(),
            duration: self.duration,
        }
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
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
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
    /// Seed for jitter and the withheld fraction.
    #[arg(long, default_value = "1")]
    pub seed: u64,
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction between 0.0 and 1.0, found {text:?}")),
    }
}

/// Runs a parsed command line inside a tokio runtime.
pub async fn dispatch(cli: Cli) -> Exit {
    match cli.command {
        Command::Run(args) => {
            let controls = Controls::default();
            listen_for_signals(controls.clone());
            let options = RunOptions {
                overrides: args.scenario.overrides(),
                scenario: args.scenario.scenario,
                out: args.out,
                quiet: args.quiet,
            };
            match run::run(options, controls).await {
                Ok(result) => result.outcome.exit(),
                Err(e) => {
                    eprintln!("{}", error_text(&e));
                    e.exit()
                }
            }
        }
        Command::Validate(args) => {
            match scenario::load(&args.scenario.scenario, &args.scenario.overrides()) {
                Ok(plan) => {
                    print!("{plan}");
                    println!("valid: nothing was sent");
                    Exit::Success
                }
                Err(e) => {
                    eprintln!("{e}");
                    Exit::InvalidInput
                }
            }
        }
        Command::Serve(args) => serve(args).await,
    }
}

fn error_text(e: &run::RunError) -> String {
    match e {
        run::RunError::Invalid(errors) => format!("{errors}\nnothing was sent"),
        other => format!("error: {other}"),
    }
}

async fn serve(args: ServeArgs) -> Exit {
    let behaviour = Behaviour {
        latency: args.latency,
        jitter: args.jitter,
        no_reply_every: args.no_reply_every,
        no_reply_fraction: args.no_reply_fraction,
        seed: args.seed,
        ..Behaviour::default()
    };
    let description = behaviour.describe();
    let server = match target::start(args.listen, behaviour).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return Exit::RunFailed;
        }
    };
    println!(
        "wsstorm serve: listening on {} ({description}); Ctrl-C to stop",
        server.url()
    );
    let _ = tokio::signal::ctrl_c().await;
    let counts = server.shutdown().await;
    println!(
        "served {} connections, {} messages received, {} answered, {} withheld",
        counts.connections, counts.received, counts.answered, counts.withheld
    );
    Exit::Success
}

/// First Ctrl-C or SIGTERM stops gracefully, the second at once.
fn listen_for_signals(controls: Controls) {
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
            if first {
                eprintln!(
                    "\ninterrupted: stopping gracefully, waiting for replies in flight (Ctrl-C again to stop at once)"
                );
            } else {
                eprintln!("\nstopping now");
            }
        }
    });
}
