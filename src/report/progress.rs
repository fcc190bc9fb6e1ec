//! Live progress while a run goes: an indicatif line on a terminal, a plain line every few
//! seconds when stdout is not a terminal, nothing when quiet. Fed by the collector's samples.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics::Sample;
use crate::scenario::duration::show;

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Bar(ProgressBar),
    Plain { last: Duration },
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool, planned: Duration) -> Self {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stdout().is_terminal() {
            return Progress::Plain { last: Duration::ZERO };
        }
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
        let line = || {
            let t = &sample.total;
            let secs = sample.window.as_secs_f64().max(0.001);
            format!(
                "{}/{}  clients {}/{} (connecting {}, backing off {})  in flight {}  {:.0} req/s  p99 {:.2}ms  timeouts {}  errors {}",
                show(Duration::from_secs(sample.elapsed.as_secs())),
                show(planned),
                t.connected(),
                target,
                t.connecting(),
                t.backing_off(),
                t.in_flight(),
                sample.delta.requests as f64 / secs,
                sample.rtt.percentile_ms(99.0),
                t.timeouts,
                t.connect_errors + t.drops + t.lost,
            )
        };
        match self {
            Progress::Bar(bar) => {
                bar.set_position(sample.elapsed.as_secs());
                bar.set_message(line());
            }
            Progress::Plain { last } => {
                if sample.elapsed >= *last + PLAIN_EVERY {
                    *last = sample.elapsed;
                    println!("{}", line());
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
