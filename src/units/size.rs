//! Byte sizes ("64KiB", "1.5MB", "300") and byte rates ("100KiB/s") for scenario files and
//! command-line flags; parsing is bytesize's, with its units (B, KB, KiB, MB, MiB, …).

use bytesize::ByteSize;

pub const SIZE_EXPECTED: &str = "expected a size in bytes such as 4096, \"64KiB\" or \"1MB\"";
pub const RATE_EXPECTED: &str = "expected a rate above zero such as \"100KiB/s\" or \"1MB/s\"";

pub fn size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("invalid size {text:?}: {SIZE_EXPECTED}"))
}

/// Bytes per second; "/s" is required so that a rate is never mistaken for a size.
pub fn byte_rate(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid rate {text:?}: {RATE_EXPECTED}");
    let per_second = text.trim().strip_suffix("/s").ok_or_else(bad)?;
    match size(per_second) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_rates() {
        assert_eq!(size("300"), Ok(300));
        assert_eq!(size("64KiB"), Ok(65_536));
        assert_eq!(size("1 MB"), Ok(1_000_000));
        assert!(size("lots").is_err());
        assert_eq!(byte_rate("100KiB/s"), Ok(102_400));
        assert_eq!(byte_rate("10B/s"), Ok(10));
        assert!(byte_rate("100KiB").is_err(), "a rate says per second");
        assert!(byte_rate("0B/s").is_err());
    }
}
