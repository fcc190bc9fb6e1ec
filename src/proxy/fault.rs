//! The network faults the proxy injects (Toxiproxy's toxics, by the names users know), which
//! connections and directions they hit, and what the set active at one moment does to one
//! chunk of bytes.

use std::fmt;
use std::time::Duration;

use crate::scenario::duration::show;
use crate::scenario::{mix, picked};

/// Which way the bytes go: upstream is client → server, downstream server → client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

impl Direction {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "upstream" | "up" => Some(Direction::Upstream),
            "downstream" | "down" => Some(Direction::Downstream),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Both => "both",
        }
    }

    fn covers(self, way: Direction) -> bool {
        self == Direction::Both || self == way
    }
}

/// One kind of fault with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Toxic {
    /// Every chunk is held `add` ± up to `jitter` (order kept).
    Latency { add: Duration, jitter: Duration },
    /// At most this many bytes per second.
    Bandwidth { bytes_per_s: u64 },
    /// Bytes stop both ways and connections stay open, as in a network partition: nothing is
    /// read or written until the fault ends, then what TCP kept flows on (late, not lost).
    Blackhole,
    /// New TCP connections are refused (the listener closes: the server is down); with a
    /// toxicity below 1, that share of new connections is reset on accept instead.
    Refuse,
    /// Every open connection is reset (RST both ways), once.
    Reset,
    /// When one side closes, the close reaches the other side this much later.
    SlowClose { delay: Duration },
    /// Chunks are cut into pieces of about `average` ± `variation` bytes, `delay` apart.
    Slicer {
        average: usize,
        variation: usize,
        delay: Duration,
    },
    /// The connection is closed once this many bytes have passed while the fault is on.
    LimitData { bytes: u64 },
}

impl Toxic {
    pub fn name(&self) -> &'static str {
        match self {
            Toxic::Latency { .. } => "latency",
            Toxic::Bandwidth { .. } => "bandwidth",
            Toxic::Blackhole => "blackhole",
            Toxic::Refuse => "refuse",
            Toxic::Reset => "reset",
            Toxic::SlowClose { .. } => "slow_close",
            Toxic::Slicer { .. } => "slicer",
            Toxic::LimitData { .. } => "limit_data",
        }
    }

    /// Whether the direction matters (blackhole, refuse and reset act on whole connections).
    pub fn has_direction(&self) -> bool {
        !matches!(self, Toxic::Blackhole | Toxic::Refuse | Toxic::Reset)
    }
}

impl fmt::Display for Toxic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Toxic::Latency { add, jitter } if jitter.is_zero() => write!(f, "latency {}", show(add)),
            Toxic::Latency { add, jitter } => write!(f, "latency {} ± {}", show(add), show(jitter)),
            Toxic::Bandwidth { bytes_per_s } => write!(f, "bandwidth {bytes_per_s} B/s"),
            Toxic::SlowClose { delay } => write!(f, "slow_close {}", show(delay)),
            Toxic::Slicer {
                average,
                variation,
                delay,
            } => write!(f, "slicer {average} ± {variation} B every {}", show(delay)),
            Toxic::LimitData { bytes } => write!(f, "limit_data {bytes} B"),
            other => f.write_str(other.name()),
        }
    }
}

/// A toxic, the direction it acts on and the share of connections it hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub toxic: Toxic,
    pub direction: Direction,
    /// Share of connections affected, 0.0 to 1.0; each connection is in or out by a seeded
    /// hash of its number, so the same connections are hit for the fault's whole window.
    pub toxicity: f64,
}

impl Fault {
    pub fn new(toxic: Toxic) -> Self {
        Self {
            toxic,
            direction: if toxic.has_direction() {
                Direction::Downstream
            } else {
                Direction::Both
            },
            toxicity: 1.0,
        }
    }

    /// Whether connection `conn` is among those this fault (instance `id`) hits.
    pub fn hits(&self, seed: u64, id: u64, conn: u64) -> bool {
        if self.toxicity >= 1.0 {
            return true;
        }
        picked(seed ^ mix(id) ^ mix(conn.wrapping_add(0x9E37)), self.toxicity)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.toxic)?;
        if self.toxic.has_direction() {
            write!(f, " {}", self.direction.name())?;
        }
        if self.toxicity < 1.0 {
            write!(f, " on {}% of connections", self.toxicity * 100.0)?;
        }
        Ok(())
    }
}

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
    fn toxicity_hits_about_its_share_and_always_the_same_connections() {
        let fault = Fault {
            toxicity: 0.3,
            ..Fault::new(Toxic::Blackhole)
        };
        let hit = (0..10_000).filter(|&c| fault.hits(7, 1, c)).count();
        assert!((2_800..3_200).contains(&hit), "{hit} of 10 000");
        assert!((0..100).all(|c| fault.hits(7, 1, c) == fault.hits(7, 1, c)));
        let none = Fault {
            toxicity: 0.0,
            ..fault
        };
        assert!((0..1000).all(|c| !none.hits(7, 1, c)));
    }

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
