//! Execution segments: shard `index` of `count` runs the clients whose number ≡ index (mod
//! count) on the scenario's shared timeline, so that the shards together run exactly the
//! scenario's clients, each client number (and so each request id) in exactly one shard, and
//! at every moment the shards' client counts differ by at most one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// 0-based, like a Kubernetes Indexed Job's completion index.
    pub index: u32,
    pub count: u32,
}

/// The most segments a run may be split into: what `merge` can bring together (and list the
/// missing ones of) in bounded time and memory.
pub const MAX_SEGMENTS: u32 = 10_000;

impl Segment {
    /// "i/n" with 0 ≤ i < n ≤ `MAX_SEGMENTS`.
    pub fn parse(text: &str) -> Result<Segment, String> {
        let expected = "expected INDEX/COUNT with 0 <= INDEX < COUNT <= 10000, such as 0/4 (0-based, like JOB_COMPLETION_INDEX)";
        let (i, n) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: {expected}"))?;
        match (i.trim().parse::<u32>(), n.trim().parse::<u32>()) {
            (Ok(index), Ok(count)) if index < count && count <= MAX_SEGMENTS => Ok(Segment { index, count }),
            _ => Err(format!("{text:?}: {expected}")),
        }
    }

    /// Whether client number `client` is this shard's.
    pub fn owns(self, client: u64) -> bool {
        client % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the first `total` client numbers are this shard's: its share of a count.
    pub fn share(self, total: u64) -> u64 {
        let (i, n) = (u64::from(self.index), u64::from(self.count));
        (total + n - 1 - i) / n
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(Segment::parse("2/4"), Ok(Segment { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "a/b", "3", "-1/2", "0/4294967295", "0/10001"] {
            assert!(Segment::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// For any count and any number of shards, the shares sum exactly to the whole, differ
        /// by at most one, and are exactly the client numbers each shard owns.
        #[test]
        fn shares_sum_to_the_whole_and_differ_by_at_most_one(total in 0u64..100_000, n in 1u32..64) {
            let shares: Vec<u64> = (0..n).map(|index| Segment { index, count: n }.share(total)).collect();
            prop_assert_eq!(shares.iter().sum::<u64>(), total);
            let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            prop_assert!(max - min <= 1);
            if total <= 2_000 {
                for index in 0..n {
                    let s = Segment { index, count: n };
                    prop_assert_eq!((0..total).filter(|c| s.owns(*c)).count() as u64, s.share(total));
                }
            }
        }
    }
}
