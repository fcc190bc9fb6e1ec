//! Reconnect delays: constant, exponential or decorrelated, with none / full / equal jitter,
//! capped at `max`. Pure functions of the policy, the attempt number and a seeded RNG.

use std::time::Duration;

use rand::RngExt;
use rand::rngs::SmallRng;

use crate::scenario::{Jitter, Reconnect, Strategy};

/// The wait before attempt `attempt` (1-based) after a drop or a failed attempt; `previous`
/// is the last delay used (for decorrelated backoff).
pub fn delay(policy: &Reconnect, attempt: u32, previous: Duration, rng: &mut SmallRng) -> Duration {
    let base = match policy.strategy {
        Strategy::Constant => policy.initial,
        Strategy::Exponential => {
            let factor = policy.multiplier.powi(attempt.saturating_sub(1).min(1000) as i32);
            policy
                .initial
                .mul_f64(factor.min(policy.max.as_secs_f64() / policy.initial.as_secs_f64().max(1e-9)))
        }
        Strategy::Decorrelated => {
            let low = policy.initial.as_micros() as u64;
            let high = (previous.max(policy.initial).as_micros() as u64)
                .saturating_mul(3)
                .max(low);
            return Duration::from_micros(rng.random_range(low..=high)).min(policy.max);
        }
    }
    .min(policy.max);
    let us = base.as_micros() as u64;
    match policy.jitter {
        Jitter::None => base,
        Jitter::Full => Duration::from_micros(rng.random_range(0..=us)),
        Jitter::Equal => Duration::from_micros(us / 2 + rng.random_range(0..=us - us / 2)),
        Jitter::Add(extra) => base + Duration::from_micros(rng.random_range(0..=extra.as_micros() as u64)),
    }
}

/// Attempt counting between two open connections, with the policy's waits and its limit.
#[derive(Debug, Default)]
pub struct Retries {
    attempt: u32,
    previous: Duration,
}

impl Retries {
    /// A connection attempt begins; returns its number since the last open connection.
    pub fn begin(&mut self) -> u32 {
        self.attempt += 1;
        self.attempt
    }

    /// The attempt succeeded: counting starts over.
    pub fn connected(&mut self) {
        *self = Self::default();
    }

    /// The connection dropped: the wait before the first attempt to replace it.
    pub fn dropped(&mut self, policy: &Reconnect, rng: &mut SmallRng) -> Duration {
        self.wait(policy, rng)
    }

    /// The attempt failed: the wait before the next one, or None when the client gives up.
    pub fn failed(&mut self, policy: &Reconnect, rng: &mut SmallRng) -> Option<Duration> {
        if policy.max_attempts.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        Some(self.wait(policy, rng))
    }

    fn wait(&mut self, policy: &Reconnect, rng: &mut SmallRng) -> Duration {
        let d = delay(policy, self.attempt + 1, self.previous, rng);
        self.previous = d;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{Just, any, prop_assert, prop_assert_eq, prop_oneof, proptest};
    use rand::SeedableRng;

    fn policy(
        strategy: Strategy,
        jitter: Jitter,
        initial_ms: u64,
        max_ms: u64,
        multiplier: f64,
    ) -> Reconnect {
        Reconnect {
            strategy,
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            multiplier,
            jitter,
            max_attempts: None,
            replay_in_flight: false,
            rules: Vec::new(),
        }
    }

    #[test]
    fn exponential_without_jitter_doubles_up_to_the_cap() {
        let p = policy(Strategy::Exponential, Jitter::None, 1000, 30_000, 2.0);
        let mut rng = SmallRng::seed_from_u64(1);
        let got: Vec<u64> = (1..=7)
            .map(|a| delay(&p, a, Duration::ZERO, &mut rng).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    }

    proptest! {
        #[test]
        fn every_delay_is_within_zero_and_max(
            strategy in prop_oneof![Just(Strategy::Constant), Just(Strategy::Exponential), Just(Strategy::Decorrelated)],
            jitter in prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Add(Duration::from_millis(1000)))],
            initial in 1u64..5_000, extra in 0u64..60_000, multiplier in 1.0f64..10.0, seed in any::<u64>(),
        ) {
            let p = policy(strategy, jitter, initial, initial + extra, multiplier);
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut previous = Duration::ZERO;
            for attempt in 1..40 {
                let d = delay(&p, attempt, previous, &mut rng);
                let ceiling = match jitter {
                    Jitter::Add(extra) if strategy != Strategy::Decorrelated => p.max + extra,
                    _ => p.max,
                };
                prop_assert!(d <= ceiling, "{d:?} > {ceiling:?}");
                if jitter == Jitter::Equal && strategy != Strategy::Decorrelated {
                    let unjittered = delay(&Reconnect { jitter: Jitter::None, ..p.clone() }, attempt, previous, &mut rng);
                    prop_assert!(d >= unjittered / 2 - Duration::from_micros(1));
                }
                if strategy == Strategy::Decorrelated {
                    prop_assert!(d >= p.initial.min(p.max));
                }
                previous = d;
            }
        }

        #[test]
        fn attempts_never_exceed_max_attempts(max in proptest::option::of(1u32..20), drops in 0usize..5, seed in any::<u64>()) {
            let p = Reconnect { max_attempts: max, ..policy(Strategy::Exponential, Jitter::Full, 10, 1000, 2.0) };
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut r = Retries::default();
            // Some connections that open and drop, then a server that never comes back.
            for _ in 0..drops {
                prop_assert_eq!(r.begin(), 1);
                r.connected();
                prop_assert!(r.dropped(&p, &mut rng) <= p.max);
            }
            let attempts = loop {
                let attempt = r.begin();
                match r.failed(&p, &mut rng) {
                    Some(d) => prop_assert!(d <= p.max),
                    None => break attempt,
                }
                if attempt == 1000 {
                    break attempt;
                }
            };
            prop_assert_eq!(attempts, max.unwrap_or(1000));
        }

        #[test]
        fn exponential_grows_until_the_cap(initial in 1u64..2_000, extra in 0u64..100_000, multiplier in 1.0f64..4.0) {
            let p = policy(Strategy::Exponential, Jitter::None, initial, initial + extra, multiplier);
            let mut rng = SmallRng::seed_from_u64(0);
            let mut last = Duration::ZERO;
            for attempt in 1..60 {
                let d = delay(&p, attempt, last, &mut rng);
                prop_assert!(d >= last, "never shrinks");
                if d < p.max {
                    let expected = p.initial.as_secs_f64() * multiplier.powi(attempt as i32 - 1);
                    prop_assert!((d.as_secs_f64() - expected).abs() < 1e-6 * expected.max(1.0));
                }
                last = d;
            }
        }
    }
}
