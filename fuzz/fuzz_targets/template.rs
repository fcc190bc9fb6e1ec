//! `template`: any UTF-8 text as a message template.
//!
//! Checks that `Template::compile` never panics (with environment variables, `[secrets]` and
//! `[feed]` columns resolved by a small `Names`), and that a compiled template renders without
//! panicking. Properties of the result:
//! - text with no `{{` and no `${` compiles, is constant and renders to itself;
//! - a constant template renders to the same text twice, whatever the client, seq and rng;
//! - rendering is deterministic for a given client, seq and rng seed (unless the template
//!   reads the clock: `{{timestamp…}}`);
//! - a template that uses `{{id}}` renders the id `client-seq`, which `parse_request_id`
//!   reads back;
//! - the template alone `{{random N}}` renders N characters, and `{{random_int A B}}` a number
//!   in A..=B;
//! - no rendering is longer than `max_len` (which sizes the connection's write buffer), for
//!   the largest client and seq too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsstorm::scenario::template::{Names, Template, parse_request_id, write_request_id};

/// `${env:TOKEN}`, `${secret:API_KEY}` and `{{feed.user}}`, `{{feed.token}}` resolve; a column
/// past the row (`{{feed.extra}}`) and one whose index does not fit a u16 (`{{feed.huge}}`) are
/// there too.
struct FuzzNames;

impl Names for FuzzNames {
    fn env(&self, name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_string()),
            "EMPTY" => Some(String::new()),
            "BRACES" => Some("{{id}}".to_string()),
            _ => None,
        }
    }

    fn secret(&self, name: &str) -> Option<String> {
        (name == "API_KEY").then(|| "k-123".to_string())
    }

    fn column(&self, name: &str) -> Option<usize> {
        match name {
            "user" => Some(0),
            "token" => Some(1),
            "extra" => Some(5),
            "huge" => Some(70_000),
            _ => None,
        }
    }
}

const ROW: &[Box<str>] = &[];

fn render(t: &Template, client: u64, seq: u64, seed: u64) -> String {
    let row: Vec<Box<str>> = vec!["ann".into(), "t1".into()];
    t.render_detached(client, seq, &row, seed)
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let compiled = Template::compile(source, &FuzzNames);
    let plain = !source.contains("{{") && !source.contains("${");
    let t = match compiled {
        Ok(t) => t,
        Err(e) => {
            assert!(!plain, "plain text {source:?} rejected: {e:?}");
            assert!(e.offset <= source.len(), "offset {} past the end", e.offset);
            assert!(source.is_char_boundary(e.offset));
            return;
        }
    };
    assert_eq!(t.source(), source);
    let (client, seq) = (7, 42);
    let first = render(&t, client, seq, 1);
    if plain {
        assert!(t.is_constant());
        assert_eq!(first, source);
    }
    if t.is_constant() {
        assert_eq!(render(&t, 1_000_000, u64::MAX, 99), first);
    }
    if !source.contains("timestamp") {
        assert_eq!(render(&t, client, seq, 1), first, "same inputs, same text");
    }
    if t.uses_id() {
        let mut id = String::new();
        write_request_id(&mut id, client, seq);
        assert!(first.contains(&id));
        assert_eq!(parse_request_id(&id), Some((client, seq)));
    }
    // The feed row's widest value is 3 bytes ("ann").
    let most = t.max_len(|_| 3);
    for (client, seq) in [(client, seq), (u64::MAX, u64::MAX)] {
        let text = render(&t, client, seq, 5);
        assert!(text.len() <= most, "{} bytes rendered, max_len {most}", text.len());
    }
    // Empty row: a feed column renders as nothing rather than panicking.
    t.render_detached(0, 0, ROW, 3);
    // A template that is one variable: check what it renders.
    if let Some(inner) = source.strip_prefix("{{").and_then(|s| s.strip_suffix("}}")) {
        if !inner.contains('}') {
            let words: Vec<&str> = inner.split_whitespace().collect();
            match words.as_slice() {
                ["random", n] => {
                    let n: usize = n.parse().expect("compiled, so an integer");
                    assert_eq!(first.len(), n, "{{{{random {n}}}}} rendered {} chars", first.len());
                    assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
                }
                ["random_int", lo, hi] => {
                    let (lo, hi): (i64, i64) = (lo.parse().unwrap(), hi.parse().unwrap());
                    let v: i64 = first.parse().expect("an integer");
                    assert!((lo..=hi).contains(&v), "{v} outside {lo}..={hi}");
                }
                _ => {}
            }
        }
    }
});
