//! What a run writes besides its standard files: which request outcomes requests.csv gets.

use crate::units::share::{picked, share};

/// Which requests get a row in requests.csv.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RequestFilter {
    All,
    /// Every outcome but `answered`.
    Errors,
    /// This share of requests, picked by a hash of the id (the same ones in every run).
    Sample(f64),
}

impl RequestFilter {
    /// "all", "errors" or "sample:0.01".
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected \"all\", \"errors\" or \"sample:FRACTION\" such as \"sample:0.01\"";
        match text.trim() {
            "all" => Ok(RequestFilter::All),
            "errors" => Ok(RequestFilter::Errors),
            other => match other.strip_prefix("sample:").and_then(share) {
                Some(f) => Ok(RequestFilter::Sample(f)),
                None => Err(format!("{text:?}: {expected}")),
            },
        }
    }

    /// Whether request `seq` of client `client`, which ended as an answer (`answered`) or
    /// otherwise, gets a row.
    pub fn keeps(self, client: u32, seq: u64, answered: bool) -> bool {
        match self {
            RequestFilter::All => true,
            RequestFilter::Errors => !answered,
            RequestFilter::Sample(f) => picked(u64::from(client) << 40 ^ seq, f),
        }
    }
}

impl std::fmt::Display for RequestFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestFilter::All => f.write_str("all"),
            RequestFilter::Errors => f.write_str("errors"),
            RequestFilter::Sample(share) => write!(f, "sample:{share}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_a_sample_keeps_about_its_share() {
        assert_eq!(RequestFilter::parse("all"), Ok(RequestFilter::All));
        assert_eq!(RequestFilter::parse("sample:1%"), Ok(RequestFilter::Sample(0.01)));
        assert!(RequestFilter::parse("some").is_err());
        let f = RequestFilter::Sample(0.1);
        let kept = (0..10_000).filter(|s| f.keeps(3, *s, true)).count();
        assert!((850..1150).contains(&kept), "{kept}");
        assert!(!RequestFilter::Errors.keeps(0, 0, true));
        assert!(RequestFilter::Errors.keeps(0, 0, false));
    }
}
