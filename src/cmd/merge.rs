//! `wsstorm merge DIR… --out DIR`: the segments' results made one, the thresholds judged on
//! the whole.

use super::common::{CmdError, Outcome};
use crate::cli::MergeArgs;
use crate::report::Console;
use crate::report::merge::{self, MergeError, OutDir};

pub fn merge(args: MergeArgs, console: &Console) -> Outcome {
    let merged = merge::merge(
        &args.dirs,
        &args.out,
        if args.force {
            OutDir::Emptied
        } else {
            OutDir::Empty
        },
    )
    .map_err(|e| match e {
        MergeError::Refused(why) => CmdError::Invalid(why),
        // A missing or unreadable shard is bad input; a failed write is a failure.
        MergeError::Io(e) => match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => {
                CmdError::Invalid(e.to_string())
            }
            _ => CmdError::Failed(e.to_string()),
        },
    })?;
    console.show(&merged.summary.render_text());
    console.say(format_args!(
        "merged      {} segments into {}",
        args.dirs.len(),
        args.out.display()
    ));
    if !merged.missing.is_empty() {
        let list = merge::missing_list(&merged.missing);
        if !args.allow_partial {
            return Err(CmdError::Failed(format!(
                "a partial merge: no directory for segment {list}, so the totals and the verdict leave out their load (written to {} all the same; --allow-partial accepts it)",
                args.out.display()
            )));
        }
        console.warn(format_args!("a partial merge: no directory for segment {list}"));
    }
    Ok(merged.exit())
}
