//! Turns load phases into a timeline of client starts and stops. Ramps are linear; on a
//! ramp down the highest-numbered clients stop first, so client numbers stay dense.

use std::time::Duration;

use crate::scenario::Load;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
}

/// When client `index` starts or stops, relative to the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub at: Duration,
    pub index: u64,
    pub action: Action,
}

/// Every start and stop within `duration`, in time order.
pub fn timeline(load: &Load, duration: Duration) -> Vec<Change> {
    let mut out = Vec::new();
    let mut from = 0u64;
    let mut t0 = Duration::ZERO;
    for phase in &load.phases {
        let to = phase.clients;
        let span = from.abs_diff(to);
        let at = |k: u64| t0 + phase.ramp.mul_f64(k as f64 / span as f64);
        if to > from {
            out.extend((from..to).map(|i| Change {
                at: at(i - from + 1),
                index: i,
                action: Action::Start,
            }));
        } else {
            out.extend((to..from).rev().map(|i| Change {
                at: at(from - i),
                index: i,
                action: Action::Stop,
            }));
        }
        t0 += phase.ramp + phase.hold;
        from = to;
    }
    out.retain(|c| c.at < duration);
    out.sort_by_key(|c| c.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Phase;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ramps_up_then_down_highest_first() {
        let load = Load {
            phases: vec![
                Phase {
                    clients: 4,
                    ramp: secs(4),
                    hold: secs(1),
                },
                Phase {
                    clients: 2,
                    ramp: secs(2),
                    hold: secs(1),
                },
            ],
        };
        let t = timeline(&load, secs(100));
        let starts: Vec<_> = t
            .iter()
            .filter(|c| c.action == Action::Start)
            .map(|c| (c.at, c.index))
            .collect();
        assert_eq!(
            starts,
            vec![(secs(1), 0), (secs(2), 1), (secs(3), 2), (secs(4), 3)]
        );
        let stops: Vec<_> = t
            .iter()
            .filter(|c| c.action == Action::Stop)
            .map(|c| (c.at, c.index))
            .collect();
        assert_eq!(stops, vec![(secs(6), 3), (secs(7), 2)]);
    }

    #[test]
    fn no_ramp_starts_everyone_at_once_and_duration_cuts() {
        let load = Load {
            phases: vec![Phase {
                clients: 3,
                ramp: Duration::ZERO,
                hold: secs(5),
            }],
        };
        assert!(timeline(&load, secs(5)).iter().all(|c| c.at.is_zero()));
        let load = Load {
            phases: vec![Phase {
                clients: 10,
                ramp: secs(10),
                hold: Duration::ZERO,
            }],
        };
        assert_eq!(timeline(&load, secs(5)).len(), 4, "clients 1..4 start before 5 s");
    }

    proptest! {
        #[test]
        fn started_minus_stopped_matches_the_last_phase(phases in proptest::collection::vec((0u64..50, 0u64..5), 1..5)) {
            let load = Load { phases: phases.iter().map(|&(c, r)| Phase { clients: c, ramp: secs(r), hold: secs(1) }).collect() };
            let t = timeline(&load, secs(10_000));
            let starts = t.iter().filter(|c| c.action == Action::Start).count() as i64;
            let stops = t.iter().filter(|c| c.action == Action::Stop).count() as i64;
            prop_assert_eq!(starts - stops, phases.last().unwrap().0 as i64);
        }
    }
}
