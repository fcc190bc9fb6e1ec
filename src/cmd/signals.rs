//! Interrupts from outside: the first Ctrl-C, SIGTERM or SIGHUP stops a run gracefully, the second at
//! once; a server or proxy runs until Ctrl-C.

use std::time::Duration;

use crate::report::Console;
use crate::run::Controls;

/// The first Ctrl-C, SIGTERM or SIGHUP stops gracefully, the second at once; each is said on stderr.
pub fn listen(controls: Controls, console: Console) {
    on_interrupts(controls, move |first| {
        if first {
            console.note(
                "\ninterrupted: stopping gracefully, waiting for replies in flight (Ctrl-C again to stop at once)",
            );
        } else {
            console.note("\nstopping now");
        }
    });
}

/// Counts each Ctrl-C, SIGTERM or SIGHUP (the terminal went away) as an interrupt of
/// `controls`, telling `say` whether it was the first.
pub fn on_interrupts(controls: Controls, say: impl Fn(bool) + Send + 'static) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut hangup = signal(SignalKind::hangup()).ok();
        loop {
            let terminated = async {
                match term.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hung_up = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = terminated => {}
                _ = hung_up => {}
            }
            let first = !controls.interrupted();
            controls.interrupt();
            say(first);
        }
    });
}

/// Runs until Ctrl-C, calling `stats` every `every` (when given) for a line of counts.
pub async fn until_ctrl_c(every: Option<Duration>, mut stats: impl FnMut()) {
    let mut ticker = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = ticker.tick(), if every.is_some() => stats(),
        }
    }
}
