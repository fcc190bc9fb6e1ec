//! `wsstorm run`: a scenario in this process, or in worker processes (`--workers`) whose
//! results are merged; the summary and where the results are, at the end.

use std::ffi::OsString;

use super::common::{CmdError, Globals, Outcome};
use super::signals;
use crate::cli::{RunArgs, ScenarioArgs};
use crate::report::summary::Summary;
use crate::report::{Console, Out};
use crate::run::workers::{self, Part};
use crate::run::{self, Controls};
use crate::scenario::segment::Segment;
use crate::scenario::{self, Overrides, Plan};
use crate::units::duration;

pub async fn run(args: RunArgs, globals: &Globals, console: &Console) -> Outcome {
    let live = args.metrics.options().map_err(CmdError::Invalid)?;
    let controls = Controls::default();
    signals::listen(controls.clone(), console.clone());
    let overrides = overrides(&args.scenario)?;
    let plan = scenario::load(&args.scenario.scenario, &overrides)?;
    if let Some(w) = args.workers {
        if plan.segment.is_some() {
            return Err(CmdError::Invalid(
                "--workers splits the run into segments itself: it does not combine with --segment or --segments"
                    .into(),
            ));
        }
        let n = workers::count(w, &plan);
        if n > 1 {
            return in_workers(&args, globals, (&plan, &live), n, console, &controls).await;
        }
    }
    let out = Out {
        dir: args.out.clone(),
        force: args.force,
    };
    let result = run::execute(plan, out, &live, console, controls).await?;
    show(&result.summary, console);
    console.say(format_args!("results     {}", result.dir.display()));
    Ok(result.exit())
}

/// The summary at the end of a run, and why it failed when no client could connect.
fn show(summary: &Summary, console: &Console) {
    console.show(&format!("\n{}", summary.render_text()));
    if summary.outcome == crate::report::summary::Outcome::RunFailed && summary.counts.connects == 0 {
        let cause = summary
            .connect_errors
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, _)| match summary.connect_error_reasons.get(k) {
                Some(why) => format!(" (most common error: {k}: {why})"),
                None => format!(" (most common error: {k})"),
            })
            .unwrap_or_default();
        // The summary's target, which is masked: the URL may carry a secret.
        console.say(format_args!(
            "no client could connect to {}{cause}",
            summary.target
        ));
    }
}

/// `--workers N`: N processes of this binary, each a segment, merged at the end.
async fn in_workers(
    args: &RunArgs,
    globals: &Globals,
    (plan, live): (&Plan, &crate::observe::Options),
    n: u32,
    console: &Console,
    controls: &Controls,
) -> Outcome {
    let argv = |part: &Part<'_>| {
        let mut a = worker_args(&args.scenario, globals, part);
        // The parent exports the sum of its workers' series.
        if live.exports() {
            a.push("--metrics-json".into());
        }
        a
    };
    let out = Out {
        dir: args.out.clone(),
        force: args.force,
    };
    let done = workers::run(plan, n, (&out, live), argv, console, controls).await?;
    let merged = &done.merged;
    console.show(&merged.summary.render_text());
    console.say(format_args!(
        "results     {} ({} workers merged)",
        done.dir.display(),
        done.workers
    ));
    if !merged.missing.is_empty() {
        return Err(CmdError::Failed(format!(
            "worker(s) for segment {} wrote no results: the merged totals leave out their load",
            crate::report::merge::missing_list(&merged.missing)
        )));
    }
    Ok(merged.exit())
}

/// The command line of a worker process: this run's options, built from what was parsed (so
/// that none is lost: `-v`, `--log-format`, every scenario flag), and its part of the run.
fn worker_args(args: &ScenarioArgs, globals: &Globals, part: &Part<'_>) -> Vec<OsString> {
    // Every field named, so that a new flag cannot be forgotten here.
    let ScenarioArgs {
        scenario,
        target,
        duration,
        requests,
        segment: _,
        segments: _,
        completion_index: _,
        start_at: _,
        insecure,
        sets,
    } = args;
    let mut a: Vec<OsString> = globals.args();
    a.extend(["run".into(), scenario.into()]);
    if let Some(t) = target {
        a.extend(["--target".into(), t.into()]);
    }
    if let Some(d) = duration {
        a.extend(["--duration".into(), duration::show(*d).into()]);
    }
    if let Some(r) = requests {
        a.extend(["--requests".into(), r.to_string().into()]);
    }
    if *insecure {
        a.push("--insecure".into());
    }
    for set in sets {
        a.extend([
            "--set".into(),
            format!("{}={}", set.path.join("."), set.value).into(),
        ]);
    }
    a.extend([
        "--segment".into(),
        format!("{}/{}", part.index, part.count).into(),
        "--start-at".into(),
        part.start_at.into(),
        "--out".into(),
        part.out.into(),
        "--quiet".into(),
        "--progress-json".into(),
    ]);
    a
}

/// The flags that replace the scenario's values; a bad one is bad input.
pub fn overrides(args: &ScenarioArgs) -> Result<Overrides, CmdError> {
    let segment = match (args.segment, args.segments) {
        (Some(s), _) => Some(s),
        (None, None) => None,
        (None, Some(count)) => {
            let index = args.completion_index.as_deref().ok_or_else(|| {
                CmdError::Invalid(
                    "--segments needs JOB_COMPLETION_INDEX in the environment (or use --segment INDEX/COUNT)"
                        .into(),
                )
            })?;
            Some(
                Segment::parse(&format!("{index}/{count}"))
                    .map_err(|e| CmdError::Invalid(format!("JOB_COMPLETION_INDEX: {e}")))?,
            )
        }
    };
    Ok(Overrides {
        target: args.target.clone(),
        duration: args.duration,
        requests: args.requests,
        segment,
        start_at: args.start_at,
        insecure: args.insecure,
        sets: args.sets.clone(),
    })
}
