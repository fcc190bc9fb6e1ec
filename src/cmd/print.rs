//! Commands that print a document: the scenario schema, a shell completion script, the man page.

use clap::CommandFactory;

use super::common::{CmdError, Outcome};
use crate::cli::Cli;
use crate::exit::Exit;
use crate::report::Console;

pub fn schema(console: &Console) -> Outcome {
    console.print(&crate::scenario::json_schema());
    Ok(Exit::Success)
}

pub fn completions(shell: clap_complete::Shell, console: &Console) -> Outcome {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "wsstorm", &mut script);
    console.print(&String::from_utf8_lossy(&script));
    Ok(Exit::Success)
}

pub fn man(console: &Console) -> Outcome {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| CmdError::Failed(format!("cannot render the man page: {e}")))?;
    console.print(&String::from_utf8_lossy(&page));
    Ok(Exit::Success)
}
