//! JSON pointers (RFC 6901) to the correlation id, checked when the scenario is validated and
//! looked up in each reply without building a JSON tree: the reply is walked with serde,
//! skipping everything off the path, so a lookup allocates nothing for ordinary ids.
//!
//! A pattern (`JsonPointer::pattern`, for `correlation.request_id`) may also have `*` tokens:
//! every element of an array or member of an object there, so a batch reply
//! (`{"messages":[{"request_id":…},…]}` with `/messages/*/request_id`) gives every id it carries.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub const EXPECTED: &str = "expected a JSON pointer such as \"/request_id\" or \"/meta/id\" (RFC 6901: starts with '/', '~' only as ~0 or ~1)";

/// A validated JSON pointer, split into its reference tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Key(String),
    /// `*` in a pattern: every element or member.
    Any,
}

/// The ids a reply carries: none, one (nothing allocated), or several (a batch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Found<'a> {
    #[default]
    None,
    One(FoundId<'a>),
    Many(Vec<FoundId<'a>>),
}

impl<'a> Found<'a> {
    fn add(&mut self, more: Found<'a>) {
        *self = match (std::mem::take(self), more) {
            (Found::None, more) => more,
            (this, Found::None) => this,
            (Found::One(a), Found::One(b)) => Found::Many(vec![a, b]),
            (Found::One(a), Found::Many(mut v)) => {
                v.insert(0, a);
                Found::Many(v)
            }
            (Found::Many(mut v), Found::One(b)) => {
                v.push(b);
                Found::Many(v)
            }
            (Found::Many(mut v), Found::Many(w)) => {
                v.extend(w);
                Found::Many(v)
            }
        };
    }

    /// The last id found (the one a pointer without `*` finds).
    pub fn last(self) -> Option<FoundId<'a>> {
        match self {
            Found::None => None,
            Found::One(id) => Some(id),
            Found::Many(mut ids) => ids.pop(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Found::None => 0,
            Found::One(_) => 1,
            Found::Many(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every id, in the order the reply carries them.
    pub fn into_vec(self) -> Vec<FoundId<'a>> {
        match self {
            Found::None => Vec::new(),
            Found::One(id) => vec![id],
            Found::Many(ids) => ids,
        }
    }
}

/// The id found in a reply: text (borrowed from the frame when it has no escapes) or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundId<'a> {
    Text(Cow<'a, str>),
    Number(u64),
}

impl JsonPointer {
    pub fn parse(source: &str) -> Result<Self, String> {
        Self::read(source, false)
    }

    /// A pointer whose `*` tokens stand for every element or member. RFC 6901 has no escape for
    /// `*`, so a pattern cannot name a key that is `*` itself.
    pub fn pattern(source: &str) -> Result<Self, String> {
        Self::read(source, true)
    }

    /// Whether it has a `*` token.
    pub fn has_wildcard(&self) -> bool {
        self.tokens.contains(&Token::Any)
    }

    fn read(source: &str, wildcards: bool) -> Result<Self, String> {
        if source.is_empty() {
            return Err(format!(
                "an empty pointer names the whole reply, not an id in it: {EXPECTED}"
            ));
        }
        let Some(body) = source.strip_prefix('/') else {
            return Err(format!("pointer {source:?} does not start with '/': {EXPECTED}"));
        };
        let mut tokens = Vec::new();
        for raw in body.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    token.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => token.push('~'),
                    Some('1') => token.push('/'),
                    _ => return Err(format!("pointer {source:?} has a bad '~' escape: {EXPECTED}")),
                }
            }
            tokens.push(if wildcards && raw == "*" {
                Token::Any
            } else {
                Token::Key(token)
            });
        }
        Ok(Self {
            source: source.to_string(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Finds the id in a JSON text; `None` when the text is not JSON, the path is absent, or
    /// the value there is neither a string nor a non-negative integer.
    pub fn find<'a>(&self, json: &'a str) -> Option<FoundId<'a>> {
        self.find_all(json).last()
    }

    /// Every id at the pointer (several only through `*` tokens); none when the text is not
    /// JSON (a batch cut short finds nothing).
    pub fn find_all<'a>(&self, json: &'a str) -> Found<'a> {
        let mut de = serde_json::Deserializer::from_str(json);
        Walk(&self.tokens).deserialize(&mut de).unwrap_or_default()
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// An array index as RFC 6901 writes one: "0", or digits without a leading zero (no sign).
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    (digits && (token == "0" || !token.starts_with('0')))
        .then(|| token.parse().ok())
        .flatten()
}

/// Follows the remaining tokens; at the end, reads the id.
struct Walk<'p>(&'p [Token]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Found::None;
        let Some((want, rest)) = self.0.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Found::None);
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match want {
                Token::Any => found.add(map.next_value_seed(Walk(rest))?),
                // A repeated key: the last one counts, as in serde_json and JavaScript.
                Token::Key(want) if key == want.as_str() => found = map.next_value_seed(Walk(rest))?,
                Token::Key(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = Found::None;
        if let Some((Token::Any, rest)) = self.0.split_first() {
            while let Some(v) = seq.next_element_seed(Walk(rest))? {
                found.add(v);
            }
            return Ok(found);
        }
        let target = self.0.split_first().and_then(|(t, rest)| match t {
            Token::Key(t) => Some((array_index(t)?, rest)),
            Token::Any => None,
        });
        let mut index = 0;
        loop {
            match target {
                Some((want, rest)) if index == want => match seq.next_element_seed(Walk(rest))? {
                    Some(v) => found = v,
                    None => break,
                },
                _ => {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            index += 1;
        }
        Ok(found)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(leaf(self.0, || FoundId::Text(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(leaf(self.0, || FoundId::Text(Cow::Owned(v.to_string()))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(leaf(self.0, || FoundId::Number(v)))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Found::None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Found::None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Found::None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Found::None)
    }
}

/// An id where the path ends; nothing when tokens remain.
fn leaf<'de>(rest: &[Token], id: impl FnOnce() -> FoundId<'de>) -> Found<'de> {
    if rest.is_empty() {
        Found::One(id())
    } else {
        Found::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<FoundId<'_>> {
        Some(FoundId::Text(Cow::Borrowed(s)))
    }

    #[test]
    fn finds_ids_at_any_depth() {
        let p = JsonPointer::parse("/request_id").unwrap();
        assert_eq!(
            p.find(r#"{"a":[1,{"b":2}],"request_id":"3-4","z":null}"#),
            text("3-4")
        );
        assert_eq!(p.find(r#"{"request_id":17}"#), Some(FoundId::Number(17)));
        assert_eq!(p.find(r#"{"other":"x"}"#), None);
        assert_eq!(p.find("not json"), None);
        assert_eq!(
            p.find(r#"{"request_id":"1-2""#),
            None,
            "truncated JSON is no match"
        );
        let nested = JsonPointer::parse("/meta/ids/1").unwrap();
        assert_eq!(nested.find(r#"{"meta":{"ids":["a","b","c"]}}"#), text("b"));
        let escaped = JsonPointer::parse("/a~1b/c~0d").unwrap();
        assert_eq!(escaped.find(r#"{"a/b":{"c~d":"ok"}}"#), text("ok"));
    }

    /// Issue 17: a batch reply answers each id it carries.
    #[test]
    fn a_pattern_finds_every_id_of_a_batch() {
        let p = JsonPointer::pattern("/messages/*/request_id").unwrap();
        assert!(p.has_wildcard());
        let batch = r#"{"type":"batch","messages":[{"request_id":"0-1"},{"x":1},{"request_id":7}]}"#;
        assert_eq!(
            p.find_all(batch).into_vec(),
            vec![FoundId::Text("0-1".into()), FoundId::Number(7)]
        );
        assert_eq!(p.find_all(r#"{"messages":[]}"#), Found::None);
        assert_eq!(
            p.find_all(r#"{"messages":[{"request_id":"1-2"}"#),
            Found::None,
            "cut short"
        );
        let members = JsonPointer::pattern("/*/id").unwrap();
        assert_eq!(members.find_all(r#"{"a":{"id":1},"b":{"id":2}}"#).len(), 2);
        // Outside a pattern, `*` is a key like any other.
        let literal = JsonPointer::parse("/*").unwrap();
        assert!(!literal.has_wildcard());
        assert_eq!(literal.find(r#"{"*":"x","y":"z"}"#), text("x"));
        // A deep batch costs no more than its text: nesting past serde_json's limit is no id.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(JsonPointer::pattern("/*/*").unwrap().find_all(&deep), Found::None);
    }

    #[test]
    fn rejects_malformed_pointers() {
        assert!(JsonPointer::parse("request_id").is_err());
    }

    /// Found by the `correlation` fuzz target (fuzz/regressions/correlation-duplicate-key.bin):
    /// the first of two equal keys was taken, where serde_json takes the last.
    #[test]
    fn fuzz_correlation_duplicate_key() {
        let p = JsonPointer::parse("/id").unwrap();
        assert_eq!(p.find(r#"{"id":"a","id":"b"}"#), Some(FoundId::Text("b".into())));
        assert_eq!(p.find(r#"{"id":"a","id":{"x":1}}"#), None);
    }

    /// Found by the `correlation` fuzz target (fuzz/regressions/correlation-leading-zero-index.bin):
    /// "/00" and "/+1" were read as indexes 0 and 1; RFC 6901 allows neither.
    #[test]
    fn fuzz_correlation_leading_zero_index() {
        let at = |p: &str| JsonPointer::parse(p).unwrap().find("[2,3]");
        assert_eq!(at("/00"), None);
        assert_eq!(at("/01"), None);
        assert_eq!(at("/+1"), None);
        assert_eq!(at("/0"), Some(FoundId::Number(2)));
        assert_eq!(at("/1"), Some(FoundId::Number(3)));
        assert!(JsonPointer::parse("").is_err());
        assert!(JsonPointer::parse("/a~2").is_err());
    }
}
