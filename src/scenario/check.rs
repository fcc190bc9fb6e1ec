//! Predicates on a message: a reply's `checks`, the marker of a stream's last reply and the
//! message a `wait_for` step waits for; and the correlation id found by a regular expression,
//! for text protocols that are not JSON.

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use serde_json::Value;

use super::pointer::{Found, FoundId, JsonPointer};

pub const EXPECTED: &str = "expected a table such as { pointer = \"/status\", equals = \"ok\" }, { pointer = \"/data\", exists = true } or { matches = \"^pong\" } (a regular expression on the value at `pointer`, or on the whole message; `not_matches` negates it)";

/// One test of a message: the value at `pointer` (or the whole message without one).
#[derive(Debug, Clone)]
pub struct Check {
    /// RFC 6901, already validated by [`JsonPointer::parse`].
    pointer: Option<String>,
    test: Test,
}

#[derive(Debug, Clone)]
pub enum Test {
    /// The value is there (`true`) or not (`false`).
    Exists(bool),
    /// The value equals this JSON value (numbers compare by value: 1 equals 1.0).
    Equals(Value),
    /// A string value (or the JSON text of another value, or the whole message) matches.
    Matches(Regex),
    /// As `Matches`, negated: also when the value is not there (or the message is no JSON).
    NotMatches(Regex),
    /// The value equals a value this connection captured (`equals = "{{var.sub}}"`): the
    /// variable's index and name. Never holds while the variable has no value.
    EqualsVar(u16, String),
}

impl Check {
    pub fn new(pointer: Option<&str>, test: Test) -> Result<Self, String> {
        if let Some(p) = pointer {
            JsonPointer::parse(p)?;
        }
        if pointer.is_none() && !matches!(test, Test::Matches(_) | Test::NotMatches(_)) {
            return Err(format!(
                "`equals` and `exists` test the value at a `pointer`: {EXPECTED}"
            ));
        }
        Ok(Self {
            pointer: pointer.map(str::to_string),
            test,
        })
    }

    /// Whether the check looks into the message's JSON (so the message is parsed once).
    pub fn needs_json(&self) -> bool {
        self.pointer.is_some()
    }

    /// Tests `text`; `json` is its parse, when it is JSON and a check needed it.
    pub fn holds(&self, text: &str, json: Option<&Value>) -> bool {
        self.holds_in(text, json, &[])
    }

    /// As `holds`, with the connection's captured values (for `EqualsVar`).
    pub fn holds_in(&self, text: &str, json: Option<&Value>, vars: &[Option<Box<str>>]) -> bool {
        let Some(pointer) = &self.pointer else {
            return match &self.test {
                Test::Matches(re) => re.is_match(text),
                Test::NotMatches(re) => !re.is_match(text),
                _ => false,
            };
        };
        let value = json.and_then(|j| j.pointer(pointer));
        match (&self.test, value) {
            (Test::NotMatches(re), Some(Value::String(s))) => !re.is_match(s),
            (Test::NotMatches(re), Some(v)) => !re.is_match(&v.to_string()),
            (Test::NotMatches(_), None) => true,
            (Test::Exists(want), v) => v.is_some() == *want,
            (_, None) => false,
            (Test::Equals(want), Some(v)) => same(want, v),
            (Test::Matches(re), Some(Value::String(s))) => re.is_match(s),
            (Test::Matches(re), Some(v)) => re.is_match(&v.to_string()),
            (Test::EqualsVar(i, _), Some(v)) => match vars.get(usize::from(*i)).and_then(Option::as_deref) {
                None => false,
                Some(want) => match v {
                    Value::String(s) => s == want,
                    // A number or a boolean compares as its JSON text ("5", "true").
                    other => {
                        let text = other.to_string();
                        text == want
                    }
                },
            },
        }
    }
}

/// JSON equality where numbers compare by value (a scenario's `1` equals a reply's `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.pointer.as_deref().unwrap_or("the message");
        match &self.test {
            Test::Exists(true) => write!(f, "{at} exists"),
            Test::Exists(false) => write!(f, "{at} is absent"),
            Test::Equals(v) => write!(f, "{at} == {v}"),
            Test::Matches(re) => write!(f, "{at} matches /{re}/"),
            Test::NotMatches(re) => write!(f, "{at} does not match /{re}/ (or is absent)"),
            Test::EqualsVar(_, name) => write!(f, "{at} == {{{{var.{name}}}}}"),
        }
    }
}

/// The message's JSON, when one of `checks` needs it (so it is parsed once, and only then).
pub fn json_for<'a>(mut checks: impl Iterator<Item = &'a Check>, text: &str) -> Option<Value> {
    checks
        .any(Check::needs_json)
        .then(|| serde_json::from_str::<Value>(text).ok())
        .flatten()
}

/// Tests a message against checks.
pub fn all_hold(checks: &[Check], text: &str) -> bool {
    let json = json_for(checks.iter(), text);
    checks.iter().all(|c| c.holds(text, json.as_ref()))
}

/// Where a reply carries its correlation id.
#[derive(Debug, Clone)]
pub enum IdFinder {
    /// At a JSON pointer.
    Pointer(JsonPointer),
    /// The first capture group of a regular expression, for text that is not JSON.
    Regex(Regex),
}

pub const REGEX_EXPECTED: &str =
    "expected a regular expression with one capture group around the id, such as \"id=(\\\\S+)\"";

impl IdFinder {
    pub fn regex(source: &str) -> Result<Self, String> {
        let re = Regex::new(source).map_err(|e| format!("{e}; {REGEX_EXPECTED}"))?;
        if re.captures_len() != 2 {
            return Err(format!(
                "{} capture groups: {REGEX_EXPECTED}",
                re.captures_len() - 1
            ));
        }
        Ok(IdFinder::Regex(re))
    }

    pub fn find<'a>(&self, text: &'a str) -> Option<FoundId<'a>> {
        self.find_all(text).last()
    }

    /// Every id the message carries (several in a batch, through a pattern's `*`).
    pub fn find_all<'a>(&self, text: &'a str) -> Found<'a> {
        match self {
            IdFinder::Pointer(p) => p.find_all(text),
            IdFinder::Regex(re) => re
                .captures(text)
                .and_then(|c| c.get(1))
                .map_or(Found::None, |id| {
                    Found::One(FoundId::Text(Cow::Borrowed(id.as_str())))
                }),
        }
    }
}

impl fmt::Display for IdFinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdFinder::Pointer(p) => write!(f, "{p}"),
            IdFinder::Regex(re) => write!(f, "/{re}/ (first group)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pointer: Option<&str>, test: Test) -> Check {
        Check::new(pointer, test).unwrap()
    }

    #[test]
    fn equals_exists_and_matches() {
        let reply = r#"{"status":"ok","n":1.0,"data":{"items":[3]},"msg":"hello world","flag":null}"#;
        let json: Value = serde_json::from_str(reply).unwrap();
        let holds = |c: Check| c.holds(reply, Some(&json));
        assert!(holds(check(Some("/status"), Test::Equals("ok".into()))));
        assert!(!holds(check(Some("/status"), Test::Equals("fail".into()))));
        assert!(holds(check(Some("/n"), Test::Equals(1.into()))), "1 equals 1.0");
        assert!(holds(check(Some("/data/items/0"), Test::Equals(3.into()))));
        assert!(holds(check(Some("/flag"), Test::Exists(true))), "null is there");
        assert!(holds(check(Some("/missing"), Test::Exists(false))));
        assert!(!holds(check(Some("/missing"), Test::Equals(Value::Null))));
        let re = |s: &str| Test::Matches(Regex::new(s).unwrap());
        assert!(holds(check(Some("/msg"), re("^hello"))));
        assert!(
            holds(check(Some("/n"), re(r"^1\.0$"))),
            "a number matches as its JSON text"
        );
        assert!(holds(check(None, re("\"status\":\"ok\""))));
        assert!(!check(Some("/status"), Test::Exists(true)).holds("not json", None));
        assert!(all_hold(
            &[check(Some("/status"), Test::Exists(true)), check(None, re("ok"))],
            reply
        ));
        let not = |s: &str| Test::NotMatches(Regex::new(s).unwrap());
        assert!(!holds(check(Some("/status"), not("^(ok|fine)$"))));
        assert!(holds(check(Some("/status"), not("^fine$"))));
        assert!(holds(check(Some("/missing"), not("x"))), "absent: no match");
        assert!(
            check(Some("/status"), not("ok")).holds("not json", None),
            "no JSON: no match"
        );
        assert!(holds(check(None, not("^pong"))));
        assert!(!holds(check(None, not("status"))));
    }

    #[test]
    fn a_test_without_pointer_must_be_a_regex() {
        assert!(Check::new(None, Test::Exists(true)).is_err());
        assert!(Check::new(Some("status"), Test::Exists(true)).is_err());
    }

    #[test]
    fn regex_ids() {
        let f = IdFinder::regex(r"^RESP (\S+) ").unwrap();
        assert_eq!(f.find("RESP 3-7 done"), Some(FoundId::Text("3-7".into())));
        assert_eq!(f.find("PUSH 3-7 done"), None);
        assert!(IdFinder::regex("no groups").is_err());
        assert!(IdFinder::regex("(a)(b)").is_err());
        assert!(IdFinder::regex("(").is_err());
    }
}
