//! `exec` chaos: a command run at a point of the timeline (restart the server under test, say),
//! with its output saved in the results directory and its exit status in the summary. It runs
//! without a shell unless the scenario asks for one; its arguments come from the scenario
//! only, never from anything a server sent. At its time limit (or an immediate stop) its whole
//! process group is killed; the run goes on either way.

use std::fs::File;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::Command as Process;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::ExecReport;
use crate::scenario::{Command, Exec};

/// Runs `exec` (firing `n` of chaos action `chaos`, at `at_s` into the run) and waits for it,
/// at most its time limit. Output goes to `exec-<chaos>-<n>.stdout|.stderr` in `dir`.
pub async fn run(
    exec: &Exec,
    chaos: u32,
    n: usize,
    at_s: f64,
    dir: &Path,
    halt: &CancellationToken,
) -> ExecReport {
    let base = format!("exec-{chaos}-{n}");
    let mut report = ExecReport {
        chaos,
        at_s,
        command: exec.command.to_string(),
        outcome: "failed_to_start".to_string(),
        exit_code: None,
        signal: None,
        duration_s: 0.0,
        stdout: format!("{base}.stdout"),
        stderr: format!("{base}.stderr"),
        error: None,
    };
    let started = Instant::now();
    let spawned = (|| {
        let stdout = File::create(dir.join(&report.stdout))?;
        let stderr = File::create(dir.join(&report.stderr))?;
        let mut process = match &exec.command {
            Command::Direct(argv) => {
                let mut p = Process::new(&argv[0]);
                p.args(&argv[1..]);
                p
            }
            Command::Shell(script) => {
                let mut p = Process::new("sh");
                p.arg("-c").arg(script);
                p
            }
        };
        process
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .env("WSSTORM_RESULTS_DIR", dir)
            .kill_on_drop(true);
        // Its own process group, so that the time limit ends what it started too.
        #[cfg(unix)]
        process.process_group(0);
        // wsstorm ignores SIGXFSZ (see main); the command gets the default back.
        // SAFETY: between fork and exec, only signal(2), which is async-signal-safe.
        #[cfg(unix)]
        unsafe {
            process.pre_exec(|| {
                use nix::sys::signal::{SigHandler, Signal, signal};
                signal(Signal::SIGXFSZ, SigHandler::SigDfl)
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        process.spawn()
    })();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let ended = tokio::select! {
        status = child.wait() => Ended::Exited(status.ok()),
        _ = tokio::time::sleep(exec.timeout) => Ended::TimedOut,
        _ = halt.cancelled() => Ended::Stopped,
    };
    let status = match ended {
        Ended::Exited(status) => {
            report.outcome = "exited".to_string();
            status
        }
        Ended::TimedOut | Ended::Stopped => {
            report.outcome = if matches!(ended, Ended::TimedOut) {
                "timed_out"
            } else {
                "stopped"
            }
            .to_string();
            kill_group(&mut child).await
        }
    };
    report.duration_s = started.elapsed().as_secs_f64();
    if let Some(status) = status {
        report.exit_code = status.code();
        report.signal = signal(&status);
    }
    report
}

enum Ended {
    Exited(Option<ExitStatus>),
    TimedOut,
    Stopped,
}

/// Kills the command's process group (it leads it) and reaps it.
async fn kill_group(child: &mut tokio::process::Child) -> Option<ExitStatus> {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let _ = child.start_kill();
    tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .ok()
        .and_then(Result::ok)
}

#[cfg(unix)]
fn signal(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn signal(_: &ExitStatus) -> Option<i32> {
    None
}
