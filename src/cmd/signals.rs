//! Interrupts from outside: the first Ctrl-C or SIGTERM stops a run gracefully, the second at
//! once; a server or proxy runs until Ctrl-C.

use std::time::Duration;

use crate::report::Console;
use crate::run::Controls;

/// First Ctrl-C or SIGTERM stops gracefully, the second at once; each is said on stderr.
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

/// Counts each Ctrl-C or SIGTERM as an interrupt of `controls`, telling `say` whether it was
/// the first.
pub fn on_interrupts(controls: Controls, say: impl Fn(bool) + Send + 'static) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = terminated => {}
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
