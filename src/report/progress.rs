//! Live progress while a run goes: an indicatif line on a terminal, a plain line every few
//! seconds when stdout is not a terminal, nothing when quiet, or one JSON line per second for
//! the parent of `--workers` (which adds its workers' lines up and shows them as one). Fed by
//! the collector's samples; made by the `Console`, which the plain and JSON lines go through.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use std::io::IsTerminal;

use super::console::{Console, Show};
use crate::metrics::{Counts, Sample};
use crate::units::duration::show;

const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What a progress line shows: one second of one run, or of several workers added up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds since the run started, at the end of the window.
    pub elapsed_s: f64,
    /// Length of the window, in seconds.
    pub window_s: f64,
    /// Clients meant to be connected now.
    pub target: u64,
    /// Cumulative counts.
    pub total: Counts,
    /// Requests sent within the window.
    pub requests: u64,
    /// rtt p99 of the replies within the window (the worst worker's, when added up).
    pub p99_ms: f64,
}

impl Snapshot {
    pub fn of(sample: &Sample, target: u64) -> Self {
        Snapshot {
            elapsed_s: sample.elapsed.as_secs_f64(),
            window_s: sample.window.as_secs_f64(),
            target,
            total: sample.total,
            requests: sample.delta.requests,
            p99_ms: sample.rtt.percentile_ms(99.0),
        }
    }

    /// The workers' latest snapshots as one.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Snapshot>) -> Snapshot {
        parts.into_iter().fold(Snapshot::default(), |a, b| Snapshot {
            elapsed_s: a.elapsed_s.max(b.elapsed_s),
            window_s: a.window_s.max(b.window_s),
            target: a.target + b.target,
            total: a.total + b.total,
            requests: a.requests + b.requests,
            p99_ms: a.p99_ms.max(b.p99_ms),
        })
    }

    fn line(&self, planned: Duration) -> String {
        let t = &self.total;
        format!(
            "{}/{}  clients {}/{} (connecting {}, backing off {})  in flight {}  {:.0} req/s  p99 {:.2}ms  timeouts {}  errors {}",
            show(Duration::from_secs(self.elapsed_s as u64)),
            show(planned),
            t.connected(),
            self.target,
            t.connecting(),
            t.backing_off(),
            t.in_flight(),
            self.requests as f64 / self.window_s.max(0.001),
            self.p99_ms,
            t.timeouts,
            t.connect_errors + t.drops + t.lost,
        )
    }
}

pub enum Progress {
    Bar(ProgressBar),
    Plain {
        console: Console,
        last: f64,
    },
    /// One JSON [`Snapshot`] per line on stdout, for a `--workers` parent.
    Json(Console),
    Quiet,
}

impl Progress {
    /// The live display `console` calls for, of a run planned to last `planned`.
    pub fn of(console: &Console, planned: Duration) -> Progress {
        match console.show_mode() {
            Show::Quiet => Progress::Quiet,
            Show::Json => Progress::Json(console.clone()),
            Show::Human if std::io::stdout().is_terminal() => Progress::bar(planned),
            Show::Human => Progress::Plain {
                console: console.clone(),
                last: 0.0,
            },
        }
    }

    /// The status line on a terminal.
    pub fn bar(planned: Duration) -> Self {
        let bar = ProgressBar::with_draw_target(Some(planned.as_secs().max(1)), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{bar:24} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress::Bar(bar)
    }

    pub fn update(&mut self, sample: &Sample, target: u64, planned: Duration) {
        self.show(&Snapshot::of(sample, target), planned);
    }

    pub fn show(&mut self, snapshot: &Snapshot, planned: Duration) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(snapshot.elapsed_s as u64);
                // Masked: the line is built from counts, but the bar is not the console's.
                bar.set_message(crate::redact::text(&snapshot.line(planned)).into_owned());
            }
            Progress::Plain { console, last } => {
                if snapshot.elapsed_s >= *last + PLAIN_EVERY.as_secs_f64() {
                    *last = snapshot.elapsed_s;
                    console.say(snapshot.line(planned));
                }
            }
            // The parent may be gone (it was killed); the run goes on regardless.
            Progress::Json(console) => {
                // Numbers only: nothing to mask, and masking could corrupt them.
                if let Ok(line) = serde_json::to_string(snapshot) {
                    console.machine(&line);
                }
            }
            Progress::Quiet => {}
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
