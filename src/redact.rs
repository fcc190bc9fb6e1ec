//! Secrets never leave the process: values taken from the environment (`${env:NAME}`) or from
//! the scenario's `[secrets]` table (`${secret:NAME}`) are registered here when a plan is
//! loaded, and every way out — logs at any level, the summary's target, validate's plan, and
//! through them summary.txt/json, report.html and junit.xml — replaces them with
//! `[redacted]`. Templates are shown by their source (`${env:NAME}`), never their values.
//!
//! Values shorter than `MIN_LEN` are not redacted (replacing every "ab" would garble the
//! output without protecting anything).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::RwLock;

use aho_corasick::{AhoCorasick, MatchKind};

pub const MIN_LEN: usize = 4;
const MASK: &str = "[redacted]";

/// The values, and one automaton that finds any of them in one pass over a text (a feed's
/// secret column may give a hundred thousand values: a line is not searched once per value).
struct Secrets {
    values: BTreeSet<String>,
    finder: Option<AhoCorasick>,
}

static SECRETS: RwLock<Secrets> = RwLock::new(Secrets {
    values: BTreeSet::new(),
    finder: None,
});

/// Adds values to redact from now on.
pub fn register<'a>(values: impl IntoIterator<Item = &'a String>) {
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    let before = secrets.values.len();
    for v in values {
        // Also as JSON writes it (--log-format json escapes quotes, backslashes, controls).
        let escaped = serde_json::to_string(v).unwrap_or_default();
        let escaped = escaped.trim_matches('"').to_string();
        for form in [v.clone(), escaped] {
            if form.len() >= MIN_LEN {
                secrets.values.insert(form);
            }
        }
    }
    if secrets.values.len() != before {
        // Leftmost-longest, so that a secret containing another is masked whole.
        secrets.finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&secrets.values)
            .ok();
    }
}

/// `text` with every registered secret masked.
pub fn text(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let Some(finder) = secrets.finder.as_ref().filter(|f| f.is_match(text)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    finder.replace_all_with(text, &mut out, |_, _, out| {
        out.push_str(MASK);
        true
    });
    Cow::Owned(out)
}

/// An excerpt of what a server sent, for a reason or an example: masked, then cut to
/// `max_chars` characters, with `…` when it was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let masked = self::text(text);
    let mut cut: String = masked.chars().take(max_chars).collect();
    if cut.len() < masked.len() {
        cut.push('…');
    }
    cut
}

/// Standard error with secrets masked: the log writer.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let masked = text(&String::from_utf8_lossy(buf)).into_owned();
        io::stderr().write_all(masked.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Self::Writer {
        Stderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_masks_before_it_cuts() {
        register(&["tail-s3cr3t-9876".to_string()]);
        let text = format!("{}tail-s3cr3t-9876 and more", "x".repeat(195));
        let shown = excerpt(&text, 200);
        assert_eq!(shown, format!("{}[reda…", "x".repeat(195)));
        assert_eq!(excerpt("short", 200), "short");
    }

    #[test]
    fn secrets_are_masked_longest_first_and_short_ones_left() {
        register(&[
            "abc".to_string(),
            "s3cr3t".to_string(),
            "s3cr3t-longer".to_string(),
        ]);
        assert_eq!(
            text("x s3cr3t-longer y s3cr3t z abc"),
            "x [redacted] y [redacted] z abc"
        );
        assert!(matches!(text("nothing here"), Cow::Borrowed(_)));
    }
}
