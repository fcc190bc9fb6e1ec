//! Message templates: compiled once when the scenario is validated into a list of parts, then
//! rendered per message by appending to a buffer. Nothing is parsed on the hot path.
//!
//! Syntax: `{{id}}`, `{{client}}`, `{{seq}}` (also `{{id_num}}`), `{{timestamp}}` (Unix ms),
//! `{{timestamp_us}}`, `{{random N}}` (N alphanumeric characters), `{{random_int A B}}` (A..=B),
//! `{{feed.COLUMN}}`, `{{var.NAME}}` (a value captured from the server), and environment
//! variables as `${env:NAME}` or `{{env NAME}}` and `[secrets]` as `${secret:NAME}`, resolved once
//! at validation (both are secrets: see `crate::redact`).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// The forms a user may write, for error messages.
pub const EXPECTED: &str = "expected one of {{id}}, {{client}}, {{seq}}, {{id_num}}, {{timestamp}}, \
{{timestamp_us}}, {{random N}}, {{random_int A B}}, {{feed.COLUMN}}, {{var.NAME}}, {{env NAME}}, ${env:NAME} or ${secret:NAME}";

/// The longest value a capture keeps (a longer one is a capture failure): a token, an id, a
/// session, not a document.
pub const MAX_CAPTURE: usize = 64 << 10;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(Box<str>),
    Id,
    Client,
    Seq,
    TimestampMs,
    TimestampUs,
    Random(u16),
    RandomInt(i64, i64),
    /// A column of the client's `[feed]` row.
    Feed(u16),
    /// A value captured from the server (`{{var.NAME}}`), by its index in the plan's variables.
    Var(u16),
}

/// A compiled template. `source` is kept for display (it shows `${env:X}`, never its value).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Box<[Part]>,
}

/// A compile error at a byte offset inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// Per-message values a template may use.
pub struct RenderCtx<'a> {
    pub client: u64,
    pub seq: u64,
    pub rng: &'a mut SmallRng,
    /// The client's `[feed]` row (empty without a feed).
    pub row: &'a [Box<str>],
    /// The values captured so far, by variable (None: not captured, or cleared by a drop).
    pub vars: &'a [Option<Box<str>>],
}

/// Writes the request id that correlation later parses back (see [`parse_request_id`]).
pub fn write_request_id(out: &mut String, client: u64, seq: u64) {
    let _ = write!(out, "{client}-{seq}");
}

/// Parses an id written by [`write_request_id`] into (client, seq): exactly the form it
/// writes, two decimal numbers without a sign or a leading zero, so `0-+5` and `00-05` are not
/// request `0-5`.
pub fn parse_request_id(id: &str) -> Option<(u64, u64)> {
    let (client, seq) = id.split_once('-')?;
    Some((decimal(client)?, decimal(seq)?))
}

/// A number as `write!` writes a u64: ASCII digits only, no leading zero (but "0" itself).
pub fn parse_decimal(text: &str) -> Option<u64> {
    decimal(text)
}

fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// What the names in a template resolve to: environment variables (injected, so tests need no
/// process environment), `[secrets]` and the columns of the `[feed]` file. A plain closure
/// answers environment variables only.
pub trait Names {
    fn env(&self, name: &str) -> Option<String>;

    fn secret(&self, _name: &str) -> Option<String> {
        None
    }

    /// The index of a `[feed]` column.
    fn column(&self, _name: &str) -> Option<usize> {
        None
    }

    /// The index of a captured variable.
    fn var(&self, _name: &str) -> Option<usize> {
        None
    }
}

impl<F: Fn(&str) -> Option<String>> Names for F {
    fn env(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl Template {
    /// Compiles `source`, resolving `${env:…}`, `${secret:…}` and `{{feed.…}}` by `names`.
    pub fn compile(source: &str, names: &dyn Names) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        let mut offset = 0;
        while !rest.is_empty() {
            let (open, close) = if rest.starts_with("{{") {
                ("{{", "}}")
            } else if rest.starts_with("${") {
                ("${", "}")
            } else {
                let ch = rest.chars().next().expect("non-empty");
                literal.push(ch);
                rest = &rest[ch.len_utf8()..];
                offset += ch.len_utf8();
                continue;
            };
            let Some(end) = rest[open.len()..].find(close) else {
                return Err(TemplateError {
                    offset,
                    message: format!("unclosed `{open}` in template: {EXPECTED}"),
                });
            };
            let inner = rest[open.len()..open.len() + end].trim();
            let part = if open == "${" {
                match (inner.strip_prefix("env:"), inner.strip_prefix("secret:")) {
                    (Some(name), _) => Part::Literal(lookup_env(name.trim(), names, offset)?.into()),
                    (_, Some(name)) => {
                        let name = name.trim();
                        Part::Literal(
                            names
                                .secret(name)
                                .ok_or_else(|| TemplateError {
                                    offset,
                                    message: format!("secret {name:?} is not in the [secrets] table"),
                                })?
                                .into(),
                        )
                    }
                    _ => {
                        return Err(TemplateError {
                            offset,
                            message: format!("unknown substitution `${{{inner}}}`: {EXPECTED}"),
                        });
                    }
                }
            } else {
                parse_variable(inner, names, offset)?
            };
            match part {
                Part::Literal(text) => literal.push_str(&text),
                other => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                    }
                    parts.push(other);
                }
            }
            let consumed = open.len() + end + close.len();
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        Ok(Self {
            source: source.to_string(),
            parts: parts.into(),
        })
    }

    /// The text as written in the scenario.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template takes a column of the client's `[feed]` row.
    pub fn uses_feed(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Feed(_)))
    }

    /// Whether the template carries the correlated request id (`{{id}}`, or the request's
    /// number alone, `{{seq}}`).
    pub fn uses_id(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Id | Part::Seq))
    }

    /// The captured variables it takes, by index.
    pub fn vars(&self) -> impl Iterator<Item = u16> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(i) => Some(*i),
            _ => None,
        })
    }

    /// Whether rendering gives the same text every time (no per-message parts).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The text for `client` and `seq` with `row`, outside any connection (when a scenario is
    /// checked, in tests), random parts drawn from `seed`.
    pub fn render_detached(&self, client: u64, seq: u64, row: &[Box<str>], seed: u64) -> String {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut out = String::new();
        let mut ctx = RenderCtx {
            client,
            seq,
            rng: &mut rng,
            row,
            vars: &[],
        };
        self.render(&mut ctx, &mut out);
        out
    }

    /// The most bytes a rendering can take, when a feed column is at most `column(i)` bytes.
    pub fn max_len(&self, column: impl Fn(u16) -> usize) -> usize {
        // A u64 or i64 in decimal is at most 20 characters; an id is two of them and a dash.
        const NUMBER: usize = 20;
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.len(),
                Part::Id => 2 * NUMBER + 1,
                Part::Client | Part::Seq | Part::TimestampMs | Part::TimestampUs | Part::RandomInt(..) => {
                    NUMBER
                }
                Part::Random(len) => usize::from(*len),
                Part::Feed(i) => column(*i),
                Part::Var(_) => MAX_CAPTURE,
            })
            .fold(0, usize::saturating_add)
    }

    /// Appends the rendered text to `out`. False when a captured variable it takes has no
    /// value (it is rendered empty): a send is then not sent (`capture_missing`), while a
    /// connect's URL or header goes without it (a resume token before the first capture).
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) -> bool {
        let mut complete = true;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Id => write_request_id(out, ctx.client, ctx.seq),
                Part::Client => {
                    let _ = write!(out, "{}", ctx.client);
                }
                Part::Seq => {
                    let _ = write!(out, "{}", ctx.seq);
                }
                Part::TimestampMs => {
                    let _ = write!(out, "{}", unix_now().as_millis());
                }
                Part::TimestampUs => {
                    let _ = write!(out, "{}", unix_now().as_micros());
                }
                Part::Random(len) => {
                    out.extend(
                        (0..*len).map(|_| ALPHANUMERIC[ctx.rng.random_range(0..ALPHANUMERIC.len())] as char),
                    );
                }
                Part::RandomInt(lo, hi) => {
                    let _ = write!(out, "{}", ctx.rng.random_range(*lo..=*hi));
                }
                Part::Feed(column) => {
                    if let Some(value) = ctx.row.get(usize::from(*column)) {
                        out.push_str(value);
                    }
                }
                Part::Var(i) => match ctx.vars.get(usize::from(*i)).and_then(Option::as_deref) {
                    Some(value) => out.push_str(value),
                    None => complete = false,
                },
            }
        }
        complete
    }
}

fn unix_now() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn lookup_env(name: &str, names: &dyn Names, offset: usize) -> Result<String, TemplateError> {
    if name.is_empty() {
        return Err(TemplateError {
            offset,
            message: "empty environment variable name: expected ${env:NAME}".to_string(),
        });
    }
    names.env(name).ok_or_else(|| TemplateError {
        offset,
        message: format!("environment variable {name} is not set (referenced in a template)"),
    })
}

fn parse_variable(inner: &str, names: &dyn Names, offset: usize) -> Result<Part, TemplateError> {
    let err = |message: String| TemplateError { offset, message };
    let mut words = inner.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(err(format!(
                "`{{{{{inner}}}}}` takes {n} argument(s), found {}: {EXPECTED}",
                args.len()
            )))
        }
    };
    let number = |text: &str| {
        text.parse::<i64>()
            .map_err(|_| err(format!("`{text}` in `{{{{{inner}}}}}` is not an integer")))
    };
    Ok(match name {
        "id" => arity(0).map(|_| Part::Id)?,
        "client" => arity(0).map(|_| Part::Client)?,
        "seq" | "id_num" => arity(0).map(|_| Part::Seq)?,
        "timestamp" => arity(0).map(|_| Part::TimestampMs)?,
        "timestamp_us" => arity(0).map(|_| Part::TimestampUs)?,
        "random" => {
            arity(1)?;
            let len = number(args[0])?;
            let Some(len) = u16::try_from(len).ok().filter(|n| *n >= 1) else {
                return Err(err(format!(
                    "`{{{{random {len}}}}}`: the length must be between 1 and 65535"
                )));
            };
            Part::Random(len)
        }
        "random_int" => {
            arity(2)?;
            let (lo, hi) = (number(args[0])?, number(args[1])?);
            if lo > hi {
                return Err(err(format!(
                    "`{{{{random_int {lo} {hi}}}}}`: the lower bound is above the upper bound"
                )));
            }
            Part::RandomInt(lo, hi)
        }
        "env" => {
            arity(1)?;
            Part::Literal(lookup_env(args[0], names, offset)?.into())
        }
        feed if feed.starts_with("feed.") => {
            arity(0)?;
            let column = &feed["feed.".len()..];
            let index = names
                .column(column)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| {
                    err(format!(
                        "`{{{{{inner}}}}}`: no column {column:?} in the [feed] file (or no [feed])"
                    ))
                })?;
            Part::Feed(index)
        }
        var if var.starts_with("var.") => {
            arity(0)?;
            let var = &var["var.".len()..];
            let index = names
                .var(var)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| {
                    err(format!(
                        "`{{{{{inner}}}}}`: no step, setup step or rule captures {var:?}: expected `capture = {{ {var} = \"/json/pointer\" }}` on an earlier step"
                    ))
                })?;
            Part::Var(index)
        }
        _ => {
            return Err(err(format!(
                "unknown template variable `{{{{{inner}}}}}`: {EXPECTED}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    fn render(t: &Template, client: u64, seq: u64) -> String {
        t.render_detached(client, seq, &[], 1)
    }

    /// Found by the `template` fuzz target
    /// (fuzz/regressions/template-random-65536-renders-empty.bin): 65 536 was accepted and
    /// stored in 16 bits as 0, so `{{random 65536}}` rendered nothing.
    #[test]
    fn fuzz_template_random_65536_renders_empty() {
        assert!(Template::compile("{{random 65536}}", &env).is_err());
        let t = Template::compile("{{random 65535}}", &env).unwrap();
        assert_eq!(render(&t, 0, 0).len(), 65_535);
        assert!(Template::compile("{{random 0}}", &env).is_err());
    }

    #[test]
    fn renders_every_variable() {
        let t = Template::compile(
            r#"{"id":"{{id}}","c":{{client}},"s":{{ seq }},"r":"{{random 8}}","n":{{random_int 3 3}},"t":"${env:TOKEN}","e":"{{env TOKEN}}"}"#,
            &env,
        )
        .unwrap();
        let out = render(&t, 7, 42);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["id"], "7-42");
        assert_eq!(v["c"], 7);
        assert_eq!(v["s"], 42);
        assert_eq!(v["r"].as_str().unwrap().len(), 8);
        assert_eq!(v["n"], 3);
        assert_eq!(v["t"], "s3cret");
        assert_eq!(v["e"], "s3cret");
        assert!(t.uses_id());
        assert_eq!(parse_request_id("7-42"), Some((7, 42)));
    }

    #[test]
    fn a_rendering_is_never_longer_than_max_len() {
        let t = Template::compile(
            r#"{"id":"{{id}}","c":{{client}},"s":{{seq}},"r":"{{random 300}}","n":{{random_int -9223372036854775808 9223372036854775807}},"ms":{{timestamp}},"us":{{timestamp_us}},"t":"${env:TOKEN}"}"#,
            &env,
        )
        .unwrap();
        let most = t.max_len(|_| 0);
        for (client, seq) in [(0, 0), (7, 42), (u64::MAX, u64::MAX)] {
            let out = render(&t, client, seq);
            assert!(out.len() <= most, "{} > {most}: {out}", out.len());
        }
        // Fixed parts count exactly; the id at its longest is both numbers at u64::MAX.
        let fixed = Template::compile("ab{{random 5}}{{id}}", &env).unwrap();
        assert_eq!(fixed.max_len(|_| 0), 2 + 5 + 41);
        assert_eq!(render(&fixed, u64::MAX, u64::MAX).len(), 2 + 5 + 41);
    }

    #[test]
    fn env_is_resolved_at_compile_time_into_literals() {
        let t = Template::compile("Bearer ${env:TOKEN}", &env).unwrap();
        assert!(t.is_constant());
        assert_eq!(t.source(), "Bearer ${env:TOKEN}");
    }

    #[test]
    fn rejects_unknown_and_malformed_variables_with_offsets() {
        let e = Template::compile("ab{{nope}}", &env).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("unknown template variable `{{nope}}`"));
        assert!(Template::compile("{{id", &env).is_err());
        assert!(Template::compile("{{random}}", &env).is_err());
        assert!(Template::compile("{{random_int 5 1}}", &env).is_err());
        assert!(
            Template::compile("${env:MISSING}", &env)
                .unwrap_err()
                .message
                .contains("MISSING is not set")
        );
        assert!(Template::compile("${oops}", &env).is_err());
    }

    /// Field finding 4 (issue 19): `0-+5` and `00-05` counted as answers to request `0-5`.
    #[test]
    fn field_04_ids_parse_strictly() {
        assert_eq!(parse_request_id("0-5"), Some((0, 5)));
        assert_eq!(parse_request_id("12-0"), Some((12, 0)));
        for lenient in [
            "0-+5", "00-05", "0-05", "+0-5", "0- 5", "0-5 ", "-0-5", "0-", "-5", "0--5",
        ] {
            assert_eq!(parse_request_id(lenient), None, "{lenient:?}");
        }
        assert_eq!(parse_request_id("18446744073709551615-1"), Some((u64::MAX, 1)));
        assert_eq!(parse_request_id("18446744073709551616-1"), None, "beyond u64");
    }
}
