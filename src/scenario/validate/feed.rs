//! `[feed]`: the CSV file is read first (templates name its columns), then checked against
//! what uses it: enough rows for `unique`, values a header or the URL can carry.

use std::path::Path;

use toml::Spanned;

use super::connect::is_token;
use super::validator::Validator;
use crate::scenario::error::ScenarioError;
use crate::scenario::feed::{Feed, Mode};
use crate::scenario::plan::{Connect, Load, TargetUrl};
use crate::scenario::raw::{RawFeed, RawScenario};

/// Reads the `[feed]` file (relative to the scenario); an error points at its key.
pub(super) fn load(path: &Path, source: &str, raw: &Spanned<RawFeed>) -> Result<Feed, ScenarioError> {
    let f = raw.get_ref();
    let mode = f.mode.as_ref().map_or(Mode::Sequential, |m| *m.get_ref());
    let file = path.parent().unwrap_or(Path::new("")).join(f.file.get_ref());
    Feed::load(&file, mode)
        .map_err(|e| ScenarioError::at(path, source, f.file.span(), format!("feed.file: {e}")))
}

impl Validator<'_> {
    /// The values of the feed's secret columns (`secret = ["token"]`), to mask everywhere.
    pub(super) fn feed_secrets(&mut self, raw: &RawScenario, feed: &Feed) -> Vec<String> {
        let Some(columns) = raw.feed.as_ref().and_then(|f| f.get_ref().secret.as_ref()) else {
            return Vec::new();
        };
        let mut values = Vec::new();
        for name in columns.get_ref() {
            match feed.column(name) {
                Some(c) => values.extend(
                    feed.rows
                        .iter()
                        .filter_map(|row| row.get(c))
                        .map(|v| v.to_string()),
                ),
                None => self.error(
                    columns.span(),
                    format!(
                        "feed.secret: {} has no column {name:?}: expected one of {}",
                        feed.file.display(),
                        feed.columns.join(", ")
                    ),
                ),
            }
        }
        values
    }

    /// Checks the feed against its uses: each unique client has a row, each value a header
    /// takes can be sent in one, each row makes a valid URL.
    pub(super) fn feed_fits(&mut self, raw: &RawScenario, feed: &Feed, connect: &Connect, load: &Load) {
        let table = raw.feed.as_ref().expect("a feed comes from a [feed] table");
        let clients = load.peak();
        if feed.mode == Mode::Unique && clients > feed.rows.len() as u64 {
            let span = table.get_ref().mode.as_ref().map_or(table.span(), |m| m.span());
            self.error(
                span,
                format!(
                    "feed: mode \"unique\" gives each client its own row, but {} has {} rows for {clients} clients: expected at least {clients} rows, or mode \"sequential\"",
                    feed.file.display(),
                    feed.rows.len()
                ),
            );
            return;
        }
        let file_span = table.get_ref().file.span();
        let at = |n: usize| format!("{}:{}", feed.file.display(), n + 2);
        // A header takes feed values: each must be one an HTTP header can carry.
        if connect.headers.iter().any(|(_, t)| t.uses_feed()) {
            for (n, row) in feed.rows.iter().enumerate() {
                let bad = feed
                    .columns
                    .iter()
                    .zip(row.iter())
                    .find(|(_, value)| http::HeaderValue::from_str(value).is_err());
                if let Some((column, _)) = bad {
                    self.error(
                        file_span,
                        format!(
                            "feed.file: {}: the {column} value cannot go in an HTTP header (a header uses the feed): expected no line breaks or control characters",
                            at(n)
                        ),
                    );
                    return;
                }
            }
        }
        // A subprotocol takes feed values: each must stay a token.
        for p in connect.subprotocols.iter().filter(|t| t.uses_feed()) {
            if let Some(n) = feed
                .rows
                .iter()
                .position(|row| !is_token(&p.render_detached(0, 0, row, 0)))
            {
                self.error(
                    file_span.clone(),
                    format!(
                        "feed.file: {}: this row makes the subprotocol {:?} something other than a token: expected values without spaces or commas",
                        at(n),
                        p.source()
                    ),
                );
                return;
            }
        }
        // The URL takes feed values: each client's must be a valid URL.
        if let Some(url) = connect.url.as_ref().filter(|t| t.uses_feed()) {
            for (n, row) in feed.rows.iter().enumerate() {
                if let Err(e) = TargetUrl::parse(&url.render_detached(0, 0, row, 0)) {
                    self.error(
                        file_span,
                        format!(
                            "feed.file: {}: this row makes the target URL invalid ({:?} {e}): expected values a URL can carry (percent-encode them in the file)",
                            at(n),
                            url.source()
                        ),
                    );
                    return;
                }
            }
        }
    }
}
