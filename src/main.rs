//! Thin entry point: logging, CLI parsing, runtime, and the exit code.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wsstorm::cli::{Cli, LogFormat};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // SIGXFSZ ignored: past a file size limit (ulimit -f) a write then fails with EFBIG, which
    // stops the run with that error and still writes its reports, where the signal would
    // kill the process.
    // SAFETY: no other thread exists yet, and ignoring a signal installs no handler code.
    unsafe {
        use nix::sys::signal::{SigHandler, Signal, signal};
        let _ = signal(Signal::SIGXFSZ, SigHandler::SigIgn);
    }
    let default = match cli.verbose {
        0 => "warn",
        1 => "wsstorm=debug,warn",
        _ => "wsstorm=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Secrets (values from the environment or [secrets]) are masked in every log line.
        .with_writer(wsstorm::redact::Stderr)
        // Colours only on a terminal: a CI log or a file gets plain text.
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // The worker processes of `run --workers` and `serve --workers` are the parallelism
    // already: each runs on one thread, without the cross-thread wake-ups of a thread pool.
    let runtime = if cli.is_worker_process() {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    }
    .expect("cannot start the tokio runtime");
    runtime.block_on(wsstorm::cmd::dispatch(cli)).into()
}
