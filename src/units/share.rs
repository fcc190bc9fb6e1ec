//! Shares ("50%", 0.5) and seeded picks: which keys fall within a share is decided by a hash
//! of the key, so the same connections, requests or clients are picked in every run.

/// A share written as a percentage ("50%") or a fraction (0.5), from 0 to 1.
pub fn share(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => text.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&value).then_some(value)
}

/// Whether `key` falls within `share` (0 to 1): a seeded, even split of keys, the same every
/// run (a fault's toxicity, a requests.csv sample).
pub fn picked(key: u64, share: f64) -> bool {
    ((mix(key) >> 11) as f64 / (1u64 << 53) as f64) < share
}

/// SplitMix64's finaliser: spreads any key over all 64 bits.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_and_picks_keep_about_their_share() {
        assert_eq!(share("50%"), Some(0.5));
        assert_eq!(share("0.25"), Some(0.25));
        assert_eq!(share("150%"), None);
        let kept = (0..10_000u64).filter(|k| picked(*k, 0.3)).count();
        assert!((2_700..3_300).contains(&kept), "{kept}");
    }
}
