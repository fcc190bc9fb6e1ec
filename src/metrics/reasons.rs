//! Why: the first message of each connect-error kind and drop cause (a TLS verifier's
//! complaint, an HTTP status line with the start of its body, the close reason a server gave,
//! the handshake check that failed), so a summary says more than "tls 19". Kept once per
//! cause: a storm of the same failure takes the lock to read, never to write; at most
//! `MAX_CAUSES` causes, each message masked (secrets) and cut to `MAX_LEN` bytes.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::event::{ConnectError, DropCause};

const MAX_CAUSES: usize = 64;
const MAX_LEN: usize = 300;

#[derive(Debug, Default)]
pub struct Reasons {
    connect: RwLock<BTreeMap<ConnectError, String>>,
    drops: RwLock<BTreeMap<DropCause, String>>,
}

impl Reasons {
    /// Keeps `why()` for `kind`, if it is the first of that kind (called only then).
    pub fn connect(&self, kind: ConnectError, why: impl FnOnce() -> String) {
        keep(&self.connect, kind, why);
    }

    /// Whether a reason for `kind` is kept already.
    pub fn knows_connect(&self, kind: ConnectError) -> bool {
        self.connect
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&kind)
    }

    /// Keeps `why()` for `cause`, if it is the first of that cause.
    pub fn dropped(&self, cause: DropCause, why: impl FnOnce() -> String) {
        keep(&self.drops, cause, why);
    }

    /// (connect errors, drops) by cause name, as the summary shows them.
    pub fn by_name(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        (named(&self.connect), named(&self.drops))
    }
}

fn keep<K: Ord + Copy>(map: &RwLock<BTreeMap<K, String>>, key: K, why: impl FnOnce() -> String) {
    let known = map.read().unwrap_or_else(|e| e.into_inner()).contains_key(&key);
    if known {
        return;
    }
    let mut map = map.write().unwrap_or_else(|e| e.into_inner());
    if map.len() < MAX_CAUSES && !map.contains_key(&key) {
        map.insert(key, shown(&why()));
    }
}

/// Masked, on one line, at most `MAX_LEN` bytes (cut on a character boundary).
fn shown(text: &str) -> String {
    let masked = crate::redact::text(text);
    let line: String = masked.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = line.len().min(MAX_LEN);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    if end < line.len() {
        format!("{}…", &line[..end])
    } else {
        line
    }
}

fn named<K: std::fmt::Display>(map: &RwLock<BTreeMap<K, String>>) -> BTreeMap<String, String> {
    map.read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_of_each_cause_is_kept_on_one_line_and_cut() {
        let r = Reasons::default();
        r.connect(ConnectError::Tls, || {
            "invalid peer certificate:\n UnknownIssuer".into()
        });
        r.connect(ConnectError::Tls, || {
            unreachable!("a second of the same kind is not asked")
        });
        r.dropped(DropCause::ServerClose(1012), || "x".repeat(1000));
        let (connect, drops) = r.by_name();
        assert_eq!(connect["tls"], "invalid peer certificate: UnknownIssuer");
        assert!(drops["close_1012"].len() <= MAX_LEN + "…".len());
    }
}
