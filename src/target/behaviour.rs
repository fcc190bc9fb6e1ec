//! What the built-in target does with each request: echo it, after an optional delay, or
//! withhold the reply. Shared by `wsstorm serve` flags and a scenario's `[embedded]` table.

use std::time::Duration;

/// Switchable behaviours of the built-in target. The default echoes everything at once.
#[derive(Debug, Clone, PartialEq)]
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
    /// Close every open connection every this often (first at this time after start).
    pub close_every: Option<Duration>,
    /// Close every open connection at these times after the server started.
    pub close_at: Vec<Duration>,
    /// How those closes happen: a close frame with this code (1012 "service restart" by
    /// default) or, with `close_by_reset`, a TCP reset.
    pub close_code: u16,
    pub close_by_reset: bool,
    /// After each of those closes, answer upgrades with HTTP 503 for this long, as a
    /// restarting server would.
    pub refuse_for: Duration,
    /// Require `Authorization: Bearer <token>` (or `?token=<token>` in the URL) on upgrade;
    /// answer 401 without it.
    pub require_token: Option<String>,
    /// Push a numbered message `{"type":"push","seq":N,"sent_at_us":T}` to every connection
    /// this often (seq counts per connection from 1, or resumes from `?resume_from=N`).
    pub push_every: Option<Duration>,
    /// Sequence numbers the pushes skip (to make gaps on purpose).
    pub push_skip: Vec<u64>,
    /// Server-side heartbeat: ping each connection this often and close it (code 1011, or
    /// the connection is dropped) when no pong and no data came back within `ping_timeout`.
    pub ping_every: Option<Duration>,
    pub ping_timeout: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            no_reply_every: None,
            no_reply_fraction: 0.0,
            seed: 1,
            close_every: None,
            close_at: Vec::new(),
            close_code: 1012,
            close_by_reset: false,
            refuse_for: Duration::ZERO,
            require_token: None,
            push_every: None,
            push_skip: Vec::new(),
            ping_every: None,
            ping_timeout: Duration::from_secs(5),
        }
    }
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
