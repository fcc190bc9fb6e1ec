//! Thin entry point: logging, CLI parsing, runtime, and the exit code.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wsstorm::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "wsstorm=debug,warn",
        _ => "wsstorm=trace,info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    runtime.block_on(cli::dispatch(cli)).into()
}
