//! What the built-in target does with each request: echo it, after an optional delay, or
//! withhold the reply. Shared by `wsstorm serve` flags and a scenario's `[embedded]` table.

use std::time::Duration;

/// Switchable behaviours of the built-in target. The default echoes everything at once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Behaviour {
    /// Delay added before each reply.
    pub latency: Duration,
    /// Uniform random extra delay in `0..=jitter` added to `latency`.
    pub jitter: Duration,
    /// Withhold the reply to every Nth message the server receives (deterministic: exactly
    /// `received / N` replies are withheld).
    pub no_reply_every: Option<u64>,
    /// Withhold each reply with this probability (seeded, so runs repeat).
    pub no_reply_fraction: f64,
    /// Seed for jitter and the withheld fraction.
    pub seed: u64,
}

impl Behaviour {
    /// One line for plans and logs.
    pub fn describe(&self) -> String {
        let mut parts = vec!["echo".to_string()];
        if !self.latency.is_zero() || !self.jitter.is_zero() {
            parts.push(format!(
                "latency {} + jitter 0..{}",
                crate::scenario::duration::show(self.latency),
                crate::scenario::duration::show(self.jitter)
            ));
        }
        if let Some(n) = self.no_reply_every {
            parts.push(format!("no reply to every {n}th message"));
        }
        if self.no_reply_fraction > 0.0 {
            parts.push(format!(
                "no reply to {:.3}% of messages",
                self.no_reply_fraction * 100.0
            ));
        }
        parts.join(", ")
    }
}
