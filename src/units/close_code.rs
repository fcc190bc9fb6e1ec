//! WebSocket close codes a client or server may put in a close frame.

/// Whether a close code may be sent in a close frame (RFC 6455 §7.4: 1004–1006 and 1015 are
/// reserved, 1016–2999 are for future standards).
pub fn sendable(code: u64) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What close-code errors say they expected.
pub const EXPECTED: &str = "expected a close code that may be sent: 1000-1003, 1007-1014 or 3000-4999";
