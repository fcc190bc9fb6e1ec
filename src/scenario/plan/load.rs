//! How many clients are connected over time (closed-model phases), and how a client waits
//! before connecting again after a drop or a failed attempt.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// Closed-model load: phases that move the number of connected clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub clients: u64,
    pub ramp: Duration,
    pub hold: Duration,
}

impl Load {
    /// The largest number of clients any phase asks for.
    pub fn peak(&self) -> u64 {
        self.phases.iter().map(|p| p.clients).max().unwrap_or(0)
    }

    /// Total length of all phases.
    pub fn length(&self) -> Duration {
        self.phases.iter().map(|p| p.ramp + p.hold).sum()
    }

    /// The clients a run of `planned` length wants connected at `t` of its timeline, of
    /// `segment`'s share: the run's end (and the drain after it) counts as its last moment.
    pub fn target_of(
        &self,
        t: Duration,
        planned: Duration,
        segment: Option<crate::scenario::segment::Segment>,
    ) -> u64 {
        let whole = self.target_at(t.min(planned.saturating_sub(Duration::from_millis(1))));
        segment.map_or(whole, |s| s.share(whole))
    }

    /// How many clients the plan wants connected at `t` (linear during ramps).
    pub fn target_at(&self, t: Duration) -> u64 {
        let mut from = 0u64;
        let mut start = Duration::ZERO;
        for p in &self.phases {
            let ramp_end = start + p.ramp;
            if t < ramp_end {
                let f = (t - start).as_secs_f64() / p.ramp.as_secs_f64();
                let v = from as f64 + (p.clients as f64 - from as f64) * f;
                return v.floor().max(0.0) as u64;
            }
            if t < ramp_end + p.hold {
                return p.clients;
            }
            from = p.clients;
            start = ramp_end + p.hold;
        }
        from
    }
}

/// How a client waits before connecting again after a drop or a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    pub strategy: Strategy,
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub jitter: Jitter,
    /// Consecutive failed attempts after which the client gives up.
    pub max_attempts: Option<u32>,
    /// Resend requests in flight at a drop after reconnecting (else they are `lost`).
    pub replay_in_flight: bool,
    /// `[[reconnect.on]]`: what to do after a given cause (the first rule that names it);
    /// without one, the strategy above.
    pub rules: Vec<ReconnectRule>,
}

/// After a drop or a failed attempt with one of `causes`: `action`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectRule {
    pub causes: Vec<CausePattern>,
    pub action: ReconnectAction,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReconnectAction {
    /// The client stops (counted in `stopped`, by cause).
    Stop,
    /// Wait exactly this long.
    Delay(Duration),
    /// Wait what the refusal's `Retry-After` says (an HTTP 503 or 429; seconds or a date),
    /// else the strategy.
    RetryAfter,
    /// The strategy, as without a rule.
    Backoff,
    /// Connect again at once; the setup's HTTP steps run before it, as before every attempt
    /// (a fresh token after a 401).
    Setup,
}

/// A drop or connect-error cause as the summary names it (`close_1011`, `http_401`,
/// `pong_timeout`), where an `x` after the prefix stands for any digit (`http_5xx`,
/// `close_4xxx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CausePattern(pub String);

impl CausePattern {
    pub fn matches(&self, cause: &str) -> bool {
        let pattern = self.0.as_bytes();
        let cause = cause.as_bytes();
        pattern.len() == cause.len()
            && pattern
                .iter()
                .zip(cause)
                .all(|(p, c)| p == c || (*p == b'x' && c.is_ascii_digit()))
    }
}

impl Reconnect {
    /// The rule for `cause`, if one names it.
    pub fn rule_for(&self, cause: &str) -> Option<ReconnectAction> {
        self.rules
            .iter()
            .find(|r| r.causes.iter().any(|c| c.matches(cause)))
            .map(|r| r.action)
    }
}

/// How the wait grows from one attempt to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Constant,
    Exponential,
    /// AWS "decorrelated jitter": random between `initial` and 3× the previous delay.
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    None,
    /// Uniform in [0, delay].
    Full,
    /// delay/2 + uniform in [0, delay/2].
    Equal,
    /// delay + uniform in [0, d] (the "up to 1 s of jitter" many clients add); the sum may
    /// exceed `max` by up to d.
    Add(Duration),
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            strategy: Strategy::Exponential,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: Jitter::Full,
            max_attempts: None,
            replay_in_flight: false,
            rules: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_follows_ramps_and_holds() {
        let load = Load {
            phases: vec![
                Phase {
                    clients: 100,
                    ramp: Duration::from_secs(10),
                    hold: Duration::from_secs(10),
                },
                Phase {
                    clients: 50,
                    ramp: Duration::from_secs(5),
                    hold: Duration::ZERO,
                },
            ],
        };
        assert_eq!(load.target_at(Duration::ZERO), 0);
        assert_eq!(load.target_at(Duration::from_secs(5)), 50);
        assert_eq!(load.target_at(Duration::from_secs(15)), 100);
        assert_eq!(load.target_at(Duration::from_millis(22_500)), 75);
        assert_eq!(load.target_at(Duration::from_secs(60)), 50);
        assert_eq!(load.peak(), 100);
    }
}
