//! `[[reconnect.on]]`: what a client does after a given cause, instead of the strategy.

use super::validator::Validator;
use crate::scenario::plan::{CausePattern, ReconnectAction, ReconnectRule};
use crate::scenario::raw::{RawReconnectAction, RawReconnectOn};
use crate::scenario::threshold::{CONNECT_ERRORS, DROP_CAUSES};
use toml::Spanned;

const EXPECTED: &str = "expected exactly one of `action = \"stop\"`, `action = \"backoff\"`, `action = \"setup\"`, `delay = \"5s\"` or `retry_after = true`";

impl Validator<'_> {
    pub(super) fn reconnect_rules(&mut self, raw: &[Spanned<RawReconnectOn>]) -> Option<Vec<ReconnectRule>> {
        let mut rules = Vec::new();
        let mut ok = true;
        for (i, entry) in raw.iter().enumerate() {
            let r = entry.get_ref();
            let what = format!("reconnect.on[{i}]");
            let mut causes = Vec::new();
            if r.causes.is_empty() {
                self.error(
                    entry.span(),
                    format!(
                        "{what}.causes: expected one or more causes, such as [\"close_1000\", \"http_401\"]"
                    ),
                );
                ok = false;
            }
            for c in &r.causes {
                if is_cause(c.get_ref()) {
                    causes.push(CausePattern(c.get_ref().clone()));
                } else {
                    self.error(
                        c.span(),
                        format!("{what}.causes: {:?} is no cause: expected a drop cause (close_NNNN, close_4xxx, {}) or a connect error (http_NNN, http_5xx, {})", c.get_ref(), DROP_CAUSES.join(", "), CONNECT_ERRORS.join(", ")),
                    );
                    ok = false;
                }
            }
            let action = match (r.action, &r.delay, r.retry_after) {
                (Some(RawReconnectAction::Stop), None, None) => Some(ReconnectAction::Stop),
                (Some(RawReconnectAction::Backoff), None, None) => Some(ReconnectAction::Backoff),
                (Some(RawReconnectAction::Setup), None, None) => Some(ReconnectAction::Setup),
                (None, Some(d), None) => self
                    .duration(d, &format!("{what}.delay"))
                    .map(ReconnectAction::Delay),
                (None, None, Some(true)) => Some(ReconnectAction::RetryAfter),
                _ => {
                    self.error(entry.span(), format!("{what}: {EXPECTED}"));
                    None
                }
            };
            match action {
                Some(action) => rules.push(ReconnectRule { causes, action }),
                None => ok = false,
            }
        }
        ok.then_some(rules)
    }
}

/// A cause name or pattern: a known drop cause or connect error, or `close_`/`http_` with
/// digits or `x` for any digit (4 after close_, 3 after http_).
fn is_cause(text: &str) -> bool {
    let numbered = |prefix: &str, len: usize| {
        text.strip_prefix(prefix)
            .is_some_and(|n| n.len() == len && n.bytes().all(|b| b.is_ascii_digit() || b == b'x'))
    };
    DROP_CAUSES.contains(&text)
        || CONNECT_ERRORS.contains(&text)
        || numbered("close_", 4)
        || numbered("http_", 3)
}
