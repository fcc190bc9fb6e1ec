//! `[connect] compression` and its parameters: permessage-deflate's window and context
//! takeover, which mean nothing without it.

use super::validator::Validator;
use crate::scenario::plan::{Compression, Deflate};
use crate::scenario::raw::RawConnect;

impl Validator<'_> {
    /// The permessage-deflate offer, if any; None (reported) when a parameter is wrong.
    pub(super) fn compression(&mut self, raw: &RawConnect) -> Option<Option<Deflate>> {
        let Some(compression) = &raw.compression else {
            let mut ok = true;
            for (key, span) in [
                (
                    "client_max_window_bits",
                    raw.client_max_window_bits.as_ref().map(|b| b.span()),
                ),
                (
                    "no_context_takeover",
                    raw.no_context_takeover.as_ref().map(|b| b.span()),
                ),
            ] {
                if let Some(span) = span {
                    self.error(
                        span,
                        format!("connect.{key}: a parameter of compression: expected it with compression = \"deflate\""),
                    );
                    ok = false;
                }
            }
            return ok.then_some(None);
        };
        match compression.get_ref() {
            Compression::Deflate => {}
        }
        let client_max_window_bits = match &raw.client_max_window_bits {
            None => None,
            Some(bits) if (8..=15).contains(bits.get_ref()) => Some(*bits.get_ref() as u8),
            Some(bits) => {
                self.error(
                    bits.span(),
                    format!(
                        "connect.client_max_window_bits: {} is out of range: expected 8 to 15 (a window of 2^N bytes, 256 B to 32 KiB)",
                        bits.get_ref()
                    ),
                );
                return None;
            }
        };
        Some(Some(Deflate {
            client_max_window_bits,
            no_context_takeover: raw.no_context_takeover.as_ref().is_some_and(|b| *b.get_ref()),
        }))
    }
}
