//! `wsstorm compare BASE NEW`: old, new and change of the main figures; exit 3 when a gated
//! metric got worse than the limit.

use super::common::{CmdError, Outcome};
use crate::cli::CompareArgs;
use crate::exit::Exit;
use crate::report::{self, Console};

pub fn compare(args: CompareArgs, console: &Console) -> Outcome {
    let gates = if args.metrics.is_empty() {
        report::compare::DEFAULT_GATES
            .iter()
            .map(|g| g.to_string())
            .collect()
    } else {
        args.metrics
    };
    let invalid = |e: std::io::Error| CmdError::Invalid(e.to_string());
    let base = report::read_summary(&args.base).map_err(invalid)?;
    let new = report::read_summary(&args.new).map_err(invalid)?;
    if base.scenario != new.scenario {
        console.note(format_args!(
            "note: comparing different scenarios ({:?} and {:?})",
            base.scenario, new.scenario
        ));
    }
    let comparison =
        report::compare::compare(&base, &new, &gates, args.max_regression).map_err(CmdError::Invalid)?;
    console.print(&comparison.render(&args.base, &args.new, args.max_regression));
    if comparison.regressed() {
        console.print("result      REGRESSED\n");
        Ok(Exit::ThresholdsCrossed)
    } else {
        console.print(&format!(
            "result      no regression beyond {:.1}%\n",
            args.max_regression * 100.0
        ));
        Ok(Exit::Success)
    }
}
