//! `wsstorm report DIR`: summary.txt, junit.xml and report.html rendered again from a results
//! directory.

use super::common::{CmdError, Outcome};
use crate::cli::ReportArgs;
use crate::exit::Exit;
use crate::report::{self, Console};

pub fn report(args: ReportArgs, console: &Console) -> Outcome {
    let summary = report::rerender(&args.dir).map_err(|e| CmdError::Invalid(e.to_string()))?;
    console.say(format_args!(
        "{}: summary.txt, junit.xml and report.html rendered again ({})",
        args.dir.display(),
        summary.outcome
    ));
    Ok(Exit::Success)
}
