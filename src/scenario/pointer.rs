//! JSON pointers (RFC 6901) to the correlation id, checked when the scenario is validated and
//! looked up in each reply without building a JSON tree: the reply is walked with serde,
//! skipping everything off the path, so a lookup allocates nothing for ordinary ids.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub const EXPECTED: &str = "expected a JSON pointer such as \"/request_id\" or \"/meta/id\" (RFC 6901: starts with '/', '~' only as ~0 or ~1)";

/// A validated JSON pointer, split into its reference tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    source: String,
    tokens: Vec<String>,
}

/// The id found in a reply: text (borrowed from the frame when it has no escapes) or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundId<'a> {
    Text(Cow<'a, str>),
    Number(u64),
}

impl JsonPointer {
    pub fn parse(source: &str) -> Result<Self, String> {
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
            tokens.push(token);
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
        let mut de = serde_json::Deserializer::from_str(json);
        Walk(&self.tokens).deserialize(&mut de).ok().flatten()
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
struct Walk<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<FoundId<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<FoundId<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let Some((want, rest)) = self.0.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            // A repeated key: the last one counts, as in serde_json and JavaScript.
            if key == want.as_str() {
                found = map.next_value_seed(Walk(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let target = self
            .0
            .split_first()
            .and_then(|(t, rest)| Some((array_index(t)?, rest)));
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
        Ok(self.0.is_empty().then_some(FoundId::Text(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .is_empty()
            .then(|| FoundId::Text(Cow::Owned(v.to_string()))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then_some(FoundId::Number(v)))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
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
