//! `wsstorm validate`: the scenario checked (after the flags), and the resolved plan printed.

use super::common::{CmdError, Outcome};
use super::run::overrides;
use crate::cli::ValidateArgs;
use crate::exit::Exit;
use crate::report::Console;
use crate::scenario;

pub fn validate(args: ValidateArgs, console: &Console) -> Outcome {
    let overrides = overrides(&args.scenario)?;
    let plan = scenario::load(&args.scenario.scenario, &overrides).map_err(CmdError::Scenario)?;
    crate::redact::register(&plan.secrets);
    console.print(&format!("{plan}valid: nothing was sent\n"));
    Ok(Exit::Success)
}
