//! Event rates such as "5/s" or "300/m" (requests, connection attempts), per second.

/// A rate such as "5/s" or "300/m", per second; `None` unless above zero.
pub fn per_second(text: &str) -> Option<f64> {
    text.trim().split_once('/').and_then(|(n, unit)| {
        let n: f64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n > 0.0)?;
        match unit.trim() {
            "s" => Some(n),
            "m" => Some(n / 60.0),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_per_second_and_minute() {
        assert_eq!(per_second("5/s"), Some(5.0));
        assert_eq!(per_second("30 / m"), Some(0.5));
        assert_eq!(per_second("0/s"), None);
        assert_eq!(per_second("5/h"), None);
    }
}
