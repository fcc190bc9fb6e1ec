//! Human durations ("250ms", "5s", "2m", "1h30m") for scenario files and command-line flags.

use std::time::Duration;

/// What every duration error says it expected.
pub const EXPECTED: &str = "expected a duration such as \"250ms\", \"5s\", \"2m\" or \"1h30m\"";

/// The longest duration a scenario may give (longer ones would overflow clock arithmetic).
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses a human duration; zero is allowed (callers that need a positive one check it).
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration: {EXPECTED}"));
    }
    humantime::parse_duration(trimmed).map_err(|_| format!("invalid duration {text:?}: {EXPECTED}"))
}

/// Formats a duration the way users write them ("1m30s", "250ms").
pub fn show(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("5 parsecs").is_err());
        assert!(parse("").is_err());
        assert!(parse("10").is_err());
    }

    #[test]
    fn shows_compactly() {
        assert_eq!(show(Duration::from_secs(90)), "1m30s");
        assert_eq!(show(Duration::from_millis(250)), "250ms");
    }
}
