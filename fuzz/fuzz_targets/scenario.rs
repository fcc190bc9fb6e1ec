//! `scenario`: any UTF-8 text as the contents of a scenario file.
//!
//! Checks that `wsstorm::scenario::parse` never panics: it returns a `Plan` or a list of
//! errors, both fine. An accepted plan is printed with `Display` (what `wsstorm run` shows
//! first); rejected text has every error formatted with `Display`, which exercises the code
//! that turns a byte span into line, column and a caret under the source line.
//!
//! The file is named `fuzz.toml` in the current directory, so a `[feed]` or `[tls]` file the
//! input names is looked up relative to where the fuzzer runs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wsstorm::scenario::{self, Overrides};

/// One environment variable is set, so `${env:TOKEN}` resolves and `${env:OTHER}` does not.
fn env(name: &str) -> Option<String> {
    (name == "TOKEN").then(|| "s3cret".to_string())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scenario::parse(Path::new("fuzz.toml"), text, &Overrides::default(), &env) {
        Ok(plan) => {
            let shown = plan.to_string();
            assert!(!shown.is_empty());
            let _ = (plan.load.peak(), plan.load.length());
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an Err carries at least one error");
            let all = errors.to_string();
            for e in &errors.0 {
                assert!(e.line >= 1 && e.column >= 1, "1-based positions: {e:?}");
                let one = e.to_string();
                assert!(all.contains(&one));
            }
        }
    }
});
