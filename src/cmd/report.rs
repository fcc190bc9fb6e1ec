//! `wsstorm report DIR`: summary.txt, junit.xml and report.html rendered again from a results
//! directory.

use super::common::{CmdError, Outcome};
use crate::cli::ReportArgs;
use crate::exit::Exit;
use crate::report::{self, Console, Rendered};

pub fn report(args: ReportArgs, console: &Console) -> Outcome {
    let rendered = report::rerender(&args.dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => CmdError::Invalid(e.to_string()),
        _ => CmdError::Failed(e.to_string()),
    })?;
    match rendered {
        Rendered::Whole(summary) => console.say(format_args!(
            "{}: summary.txt, junit.xml and report.html rendered again ({})",
            args.dir.display(),
            summary.outcome
        )),
        Rendered::ChartsOnly => {
            console.warn(format_args!(
                "{}: no summary.json (the run did not end: it was killed?), so no counts, verdicts, summary.txt or junit.xml; report.html shows the charts of timeseries.csv and connections.csv",
                args.dir.display()
            ));
            console.say(format_args!(
                "{}: report.html rendered from the CSV files",
                args.dir.display()
            ));
        }
    }
    Ok(Exit::Success)
}
