//! The command edge: one file per command, each turning its parsed flags into calls to the
//! library and its result into output and an exit code. Every command reports failure with
//! the one error type, `CmdError`, printed in one place (`dispatch`) through the `Console`,
//! which masks secrets and survives a closed stdout.

mod common;
mod compare;
mod merge;
mod print;
mod proxy;
mod report;
mod run;
mod serve;
mod signals;
mod validate;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::report::{Console, Show};
pub use common::{CmdError, Globals, Outcome};

/// Runs a parsed command line inside a tokio runtime; prints any error and gives the exit
/// code.
pub async fn dispatch(cli: Cli) -> Exit {
    let console = console_for(&cli);
    let globals = Globals {
        verbose: cli.verbose,
        log_format: cli.log_format,
    };
    let outcome = match cli.command {
        Command::Run(args) => run::run(args, &globals, &console).await,
        Command::Validate(args) => validate::validate(args, &console),
        Command::Serve(args) => serve::serve(args, &globals, &console).await,
        Command::Proxy(args) => proxy::proxy(args, &console).await,
        Command::Compare(args) => compare::compare(args, &console),
        Command::Merge(args) => merge::merge(args, &console),
        Command::Report(args) => report::report(args, &console),
        Command::Schema => print::schema(&console),
        Command::Completions { shell } => print::completions(shell, &console),
        Command::Man => print::man(&console),
    };
    outcome.unwrap_or_else(|e| {
        e.print(&console);
        e.exit()
    })
}

/// How much a command shows on stdout.
fn console_for(cli: &Cli) -> Console {
    let show = match &cli.command {
        Command::Run(args) if args.progress_json => Show::Json,
        Command::Run(args) if args.quiet => Show::Quiet,
        Command::Merge(args) if args.quiet => Show::Quiet,
        _ => Show::Human,
    };
    Console::new(show)
}
