//! Latency histograms (also used for small counts such as reconnect attempts): HdrHistogram in microseconds (1 µs .. 1 h, 3 significant digits),
//! serialised in the standard compressed V2 form, base64-encoded (`HISTF...`), so results
//! can be re-reported and merged losslessly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds. Values above one hour are clamped to one hour.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
                .expect("static bounds are valid"),
        )
    }

    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(LOWEST_US, HIGHEST_US));
    }

    /// Each value recorded, as its bucket's lowest and middle value (µs), with how many times
    /// it was: for fixed-bucket exports (a value on a bound counts as under it).
    pub fn each(&self, mut f: impl FnMut(u64, u64, u64)) {
        for v in self.0.iter_recorded() {
            let at = v.value_iterated_to();
            f(
                self.0.lowest_equivalent(at),
                self.0.median_equivalent(at),
                v.count_at_value(),
            );
        }
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Percentile in milliseconds (0 when empty).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.0.value_at_quantile(p / 100.0) as f64 / 1000.0
        }
    }

    /// Percentile of the raw recorded values (for histograms of counts, not durations).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.0.value_at_quantile(p / 100.0)
        }
    }

    pub fn mean(&self) -> f64 {
        if self.is_empty() { 0.0 } else { self.0.mean() }
    }

    pub fn min(&self) -> u64 {
        if self.is_empty() { 0 } else { self.0.min() }
    }

    pub fn max(&self) -> u64 {
        self.0.max()
    }

    pub fn mean_ms(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.0.mean() / 1000.0
        }
    }

    pub fn min_ms(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.0.min() as f64 / 1000.0
        }
    }

    pub fn max_ms(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.0.max() as f64 / 1000.0
        }
    }

    /// Adds all of `other` (exact: same bounds and precision on both sides).
    pub fn merge(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("histograms share bounds");
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// Compressed V2 encoding, base64 (the form HdrHistogram's log tools read).
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .expect("writing to a Vec cannot fail");
        STANDARD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode: {e:?}"))?;
        let mut out = Self::new();
        out.0
            .add(&h)
            .map_err(|e| format!("histogram out of range: {e:?}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentiles_in_ms() {
        let mut h = Latency::new();
        for us in 1..=1000u64 {
            h.record_us(us * 20);
        }
        assert!((h.percentile_ms(50.0) - 10.0).abs() < 0.02);
        assert!((h.max_ms() - 20.0).abs() < 0.02);
    }

    proptest! {
        /// Merging k histograms (each through its summary.json encoding, as a merge of shards
        /// reads them) equals the histogram of the union of their samples.
        #[test]
        fn merge_of_k_parts_equals_the_whole_and_survives_encoding(
            values in proptest::collection::vec(1u64..10_000_000, 1..500),
            parts in proptest::collection::vec(0usize..8, 500),
            k in 1usize..8,
        ) {
            let mut whole = Latency::new();
            let mut shards = vec![Latency::new(); k];
            for (i, v) in values.iter().enumerate() {
                whole.record_us(*v);
                shards[parts[i] % k].record_us(*v);
            }
            let mut merged = Latency::new();
            for shard in &shards {
                merged.merge(&Latency::decode(&shard.encode()).unwrap());
            }
            prop_assert_eq!(merged.count(), whole.count());
            prop_assert_eq!((merged.min(), merged.max()), (whole.min(), whole.max()));
            for p in [1.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
                prop_assert_eq!(merged.percentile_ms(p), whole.percentile_ms(p));
            }
        }
    }
}
