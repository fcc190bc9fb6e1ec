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
    lines: mpsc::UnboundedReceiver<(usize, String)>,
}

impl Pool {
    pub fn spawn(args: impl IntoIterator<Item = Vec<OsString>>) -> std::io::Result<Pool> {
        let exe = std::env::current_exe()?;
        let (tx, lines) = mpsc::unbounded_channel();
        let interrupts = watch::Sender::new(0u8);
        let mut waits = Vec::new();
        for (i, args) in args.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().expect("piped stdout");
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send((i, line));
                }
            });
            waits.push(tokio::spawn(own(child, interrupts.subscribe())));
        }
        Ok(Pool {
            waits,
            interrupts,
            lines,
        })
    }

    /// Waits for every child, handing each stdout line to `line`; passes each of the parent's
    /// interrupts (Ctrl-C, SIGTERM) on to every child as one SIGINT.
    pub async fn wait(
        mut self,
        controls: &Controls,
        mut line: impl FnMut(usize, &str),
    ) -> Vec<Option<ExitStatus>> {
        let all = futures_util::future::join_all(self.waits);
        let mut all = std::pin::pin!(all);
        let mut reading = true;
        let statuses = loop {
            tokio::select! {
                done = &mut all => break done,
                got = self.lines.recv(), if reading => match got {
                    Some((i, text)) => line(i, &text),
                    None => reading = false,
                },
                _ = controls.stop.cancelled(), if *self.interrupts.borrow() < 1 => {
                    self.interrupts.send_replace(1);
                }
                _ = controls.halt.cancelled(), if *self.interrupts.borrow() < 2 => {
                    self.interrupts.send_replace(2);
                }
            }
        };
        // The lines still on their way once the children have ended.
        while let Some((i, text)) = self.lines.recv().await {
            line(i, &text);
        }
        statuses
            .into_iter()
            .map(|s| s.ok().and_then(Result::ok))
            .collect()
    }
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
