//! Child processes of this binary: the workers of `run --workers` and `serve --workers`. Each
//! child gets its own process group, so a Ctrl-C at the terminal reaches the parent alone,
//! which passes each one on to every child exactly once.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::Controls;

/// Child processes of this binary, each in its own process group, their stdout read line by
/// line into one channel (worker index, line); stderr is shared with the parent. Each child is
/// owned by a task that waits for it and signals it (by its id, only while it is not reaped).
pub struct Pool {
    waits: Vec<JoinHandle<std::io::Result<ExitStatus>>>,
    /// How many interrupts every child should have had.
    interrupts: watch::Sender<u8>,
    /// A line, or None once the child's stdout closed (it ended, or died).
    lines: mpsc::UnboundedReceiver<(usize, Option<String>)>,
}

impl Pool {
    pub fn spawn(args: impl IntoIterator<Item = Vec<OsString>>) -> std::io::Result<Pool> {
        let exe = std::env::current_exe()?;
        let (tx, lines) = mpsc::unbounded_channel();
        let interrupts = watch::Sender::new(0u8);
        let mut waits = Vec::new();
        let parent = nix::unistd::getpid();
        for (i, args) in args.into_iter().enumerate() {
            let mut command = Command::new(&exe);
            command
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .process_group(0)
                .kill_on_drop(true);
            // SAFETY: runs in the child between fork and exec, and makes only two system calls
            // (prctl and getppid), both async-signal-safe; it allocates nothing.
            unsafe {
                command.pre_exec(move || die_with(parent));
            }
            let mut child = command.spawn()?;
            let stdout = child.stdout.take().expect("piped stdout");
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send((i, Some(line)));
                }
                let _ = tx.send((i, None));
            });
            waits.push(tokio::spawn(own(child, interrupts.subscribe())));
        }
        Ok(Pool {
            waits,
            interrupts,
            lines,
        })
    }

    /// Waits for every child, handing each stdout line to `line` (and None when a child's
    /// stdout closes); passes each of the parent's
    /// interrupts (Ctrl-C, SIGTERM) on to every child as one SIGINT. With `all_or_none`, a
    /// child that fails stops the others at once (a server that cannot bind its port makes
    /// the others pointless).
    pub async fn wait(
        mut self,
        controls: &Controls,
        all_or_none: bool,
        mut line: impl FnMut(usize, Option<&str>),
    ) -> Vec<Option<ExitStatus>> {
        let mut pending: futures_util::stream::FuturesUnordered<_> = self
            .waits
            .into_iter()
            .enumerate()
            .map(|(i, wait)| async move { (i, wait.await.ok().and_then(Result::ok)) })
            .collect();
        let mut statuses = vec![None; pending.len()];
        let mut reading = true;
        loop {
            tokio::select! {
                done = futures_util::StreamExt::next(&mut pending) => match done {
                    Some((i, status)) => {
                        statuses[i] = status;
                        if all_or_none && !status.is_some_and(|s| s.success()) {
                            self.interrupts.send_replace(2);
                        }
                    }
                    None => break,
                },
                got = self.lines.recv(), if reading => match got {
                    Some((i, text)) => line(i, text.as_deref()),
                    None => reading = false,
                },
                _ = controls.stop.cancelled(), if *self.interrupts.borrow() < 1 => {
                    self.interrupts.send_replace(1);
                }
                _ = controls.halt.cancelled(), if *self.interrupts.borrow() < 2 => {
                    self.interrupts.send_replace(2);
                }
            }
        }
        // The lines still on their way once the children have ended.
        while let Some((i, text)) = self.lines.recv().await {
            line(i, text.as_deref());
        }
        statuses
    }
}

/// In a child about to become a worker: it gets SIGTERM (a graceful stop for `run`, the end
/// for `serve`) when the parent dies, so no worker outlives it to load the target alone or keep
/// the ports. A parent that died before this (the signal would never come) ends the child
/// now. Linux only; elsewhere workers end with their parent's Ctrl-C as before.
fn die_with(parent: nix::unistd::Pid) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
        if nix::unistd::getppid() != parent {
            return Err(std::io::Error::other("the parent process has already ended"));
        }
    }
    let _ = parent;
    Ok(())
}

/// Waits for one child, signalling it each time the pool's interrupt count goes up (SIGINT,
/// then SIGTERM; wsstorm treats both as an interrupt).
async fn own(mut child: Child, mut interrupts: watch::Receiver<u8>) -> std::io::Result<ExitStatus> {
    let (mut sent, mut open) = (0u8, true);
    loop {
        tokio::select! {
            status = child.wait() => return status,
            changed = interrupts.changed(), if open => {
                open = changed.is_ok();
                let wanted = *interrupts.borrow_and_update();
                while sent < wanted {
                    // The second as SIGTERM: two SIGINTs in a row may arrive as one.
                    let signal = if sent == 0 { Signal::SIGINT } else { Signal::SIGTERM };
                    if let Some(pid) = child.id() {
                        let _ = kill(Pid::from_raw(pid as i32), signal);
                    }
                    sent += 1;
                }
            }
        }
    }
}
