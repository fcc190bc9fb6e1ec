//! What the faults switched on at one moment (the plan's `Fault`s, each under the id of its
//! firing) do to one direction of one connection.

use std::time::Duration;

use crate::scenario::{Direction, Fault, Toxic};

/// A fault switched on, under a unique id (one per firing on the timeline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active {
    pub id: u64,
    pub fault: Fault,
}

/// What the active faults do to one direction of one connection.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Effects {
    /// Nothing moves.
    pub hold: bool,
    pub add: Duration,
    pub jitter: Duration,
    pub bytes_per_s: Option<u64>,
    pub slicer: Option<(usize, usize, Duration)>,
    /// (fault id, limit): the lowest limit wins.
    pub limit: Option<(u64, u64)>,
    pub slow_close: Option<Duration>,
}

impl Effects {
    pub fn of(active: &[Active], seed: u64, conn: u64, way: Direction) -> Self {
        let mut fx = Effects::default();
        for a in active {
            let f = &a.fault;
            if !f.direction.covers(way) || !f.hits(seed, a.id, conn) {
                continue;
            }
            match f.toxic {
                Toxic::Latency { add, jitter } => {
                    fx.add += add;
                    fx.jitter += jitter;
                }
                Toxic::Bandwidth { bytes_per_s } => {
                    fx.bytes_per_s = Some(fx.bytes_per_s.map_or(bytes_per_s, |r| r.min(bytes_per_s)));
                }
                Toxic::Blackhole => fx.hold = true,
                Toxic::SlowClose { delay } => {
                    fx.slow_close = Some(fx.slow_close.map_or(delay, |d| d.max(delay)));
                }
                Toxic::Slicer {
                    average,
                    variation,
                    delay,
                } => fx.slicer = fx.slicer.or(Some((average, variation, delay))),
                Toxic::LimitData { bytes } => {
                    if fx.limit.is_none_or(|(_, l)| bytes < l) {
                        fx.limit = Some((a.id, bytes));
                    }
                }
                Toxic::Refuse | Toxic::Reset => {}
            }
        }
        fx
    }

    /// Whether a chunk may go out as soon as it is read.
    pub fn immediate(&self) -> bool {
        !self.hold
            && self.add.is_zero()
            && self.jitter.is_zero()
            && self.bytes_per_s.is_none()
            && self.slicer.is_none()
            && self.limit.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_faults_combine() {
        let lat = |ms| {
            Fault::new(Toxic::Latency {
                add: Duration::from_millis(ms),
                jitter: Duration::ZERO,
            })
        };
        let active = [
            Active {
                id: 1,
                fault: lat(10),
            },
            Active { id: 2, fault: lat(5) },
            Active {
                id: 3,
                fault: Fault {
                    direction: Direction::Upstream,
                    ..Fault::new(Toxic::Bandwidth { bytes_per_s: 100 })
                },
            },
            Active {
                id: 4,
                fault: Fault::new(Toxic::LimitData { bytes: 50 }),
            },
            Active {
                id: 5,
                fault: Fault::new(Toxic::LimitData { bytes: 20 }),
            },
        ];
        let down = Effects::of(&active, 0, 0, Direction::Downstream);
        assert_eq!(down.add, Duration::from_millis(15));
        assert_eq!(down.bytes_per_s, None, "bandwidth is upstream only");
        assert_eq!(down.limit, Some((5, 20)));
        let up = Effects::of(&active, 0, 0, Direction::Upstream);
        assert_eq!(up.bytes_per_s, Some(100));
        assert!(up.add.is_zero());
        assert!(Effects::of(&[], 0, 0, Direction::Upstream).immediate());
    }
}
