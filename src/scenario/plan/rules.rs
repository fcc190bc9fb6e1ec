//! `[[on_message]]`: what a client does with a server message that is not a reply to one of
//! its requests, and the names of the counters rules add to.

use serde_json::Value;

use super::steps::Capture;
use crate::scenario::check::Check;
use crate::scenario::pointer::JsonPointer;
use crate::scenario::template::Template;

/// One rule: when `matches` holds, its actions apply in this order: capture, count, send,
/// close.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Tests that must all hold.
    pub matches: Vec<Check>,
    /// It also applies to replies (else only to messages that are not).
    pub replies: bool,
    pub captures: Vec<Capture>,
    pub count: Option<CounterName>,
    pub send: Option<Template>,
    pub close: Option<u16>,
    /// The name number of an HTTP step: the time since its last request is recorded.
    pub since: Option<u16>,
    /// The next match must come within this long, else the connection drops
    /// (`server_ping_timeout`).
    pub lapse: Option<Lapse>,
    /// The message is fatal: drop the connection with this cause.
    pub drop: Option<RuleDrop>,
    /// Keep the first message counted as the counter's example.
    pub example: bool,
}

/// The drop causes a rule may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleDrop {
    /// A STOMP ERROR frame.
    StompError,
    /// A Socket.IO CONNECT_ERROR packet (`44`): the namespace refused the connection.
    SocketioConnectError,
}

/// The cause's name, as drop counts show it.
pub fn rule_drop_name(drop: RuleDrop) -> &'static str {
    match drop {
        RuleDrop::StompError => "stomp_error",
        RuleDrop::SocketioConnectError => "socketio_connect_error",
    }
}

/// How long a rule's next match may take: a fixed part plus the sum of captured values in
/// milliseconds (by index; none armed while one has no value, or when they add up to 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapse {
    pub fixed: std::time::Duration,
    pub vars_ms: Vec<u16>,
}

impl Rule {
    /// Whether it reads the message as JSON (parsed once for all the rules).
    pub fn needs_json(&self) -> bool {
        self.matches.iter().any(Check::needs_json)
            || self.captures.iter().any(|c| c.from.needs_json())
            || matches!(&self.count, Some(CounterName::Template(t)) if t.needs_json())
    }
}

/// The counter a rule adds to: a fixed name (its index among the plan's counters), or one
/// made from the message.
#[derive(Debug, Clone)]
pub enum CounterName {
    Fixed(u32),
    Template(NameTemplate),
}

/// The longest counter name; a value of the message is cut to fit.
pub const MAX_COUNTER_NAME: usize = 100;

/// A counter name with values of the message in it: "error_{{/error/code}}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    source: String,
    parts: Vec<NamePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePart {
    Literal(String),
    Pointer(JsonPointer),
}

pub const NAME_EXPECTED: &str = "expected a name of letters, digits, `_`, `-` and `.`, with `{{/json/pointer}}` for a value of the message, such as \"error_{{/error/code}}\"";

impl NameTemplate {
    /// A counter name: a fixed one (`Ok(None)` parts only literal) or with pointers.
    pub fn parse(source: &str) -> Result<NameTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find("{{") {
                Some(0) => {
                    let end = rest
                        .find("}}")
                        .ok_or_else(|| format!("unclosed `{{{{` in {source:?}: {NAME_EXPECTED}"))?;
                    let pointer =
                        JsonPointer::parse(rest[2..end].trim()).map_err(|e| format!("in {source:?}: {e}"))?;
                    parts.push(NamePart::Pointer(pointer));
                    rest = &rest[end + 2..];
                }
                at => {
                    let end = at.unwrap_or(rest.len());
                    let literal = &rest[..end];
                    if !literal.chars().all(name_char) {
                        return Err(format!("{source:?}: {NAME_EXPECTED}"));
                    }
                    parts.push(NamePart::Literal(literal.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        if parts.is_empty() || source.len() > MAX_COUNTER_NAME {
            return Err(format!(
                "{source:?}: at most {MAX_COUNTER_NAME} characters; {NAME_EXPECTED}"
            ));
        }
        Ok(NameTemplate {
            source: source.to_string(),
            parts,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The name when it takes nothing from the message.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [NamePart::Literal(name)] => Some(name),
            _ => None,
        }
    }

    pub fn needs_json(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, NamePart::Pointer(_)))
    }

    /// Whether `name` is one this template can make (for thresholds on it): its literal parts
    /// in order, anything between them.
    pub fn could_make(&self, name: &str) -> bool {
        let mut rest = name;
        let mut anything = false;
        for part in &self.parts {
            match part {
                NamePart::Pointer(_) => anything = true,
                NamePart::Literal(lit) if anything => match rest.find(lit.as_str()) {
                    Some(at) => {
                        rest = &rest[at + lit.len()..];
                        anything = false;
                    }
                    None => return false,
                },
                NamePart::Literal(lit) => match rest.strip_prefix(lit.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                },
            }
        }
        anything || rest.is_empty()
    }

    /// The name for a message: each value as its text (a string as it is), characters that
    /// may not be in a name as `_`, "none" when the message has no value there; cut to
    /// `MAX_COUNTER_NAME`.
    pub fn render(&self, json: Option<&Value>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                NamePart::Literal(lit) => out.push_str(lit),
                NamePart::Pointer(p) => {
                    let value = json.and_then(|j| j.pointer(p.as_str()));
                    let text = match value {
                        None | Some(Value::Null) => "none".to_string(),
                        Some(Value::String(s)) => s.chars().take(MAX_COUNTER_NAME).collect(),
                        Some(other) => other.to_string().chars().take(MAX_COUNTER_NAME).collect(),
                    };
                    out.extend(text.chars().map(|c| if name_char(c) { c } else { '_' }));
                }
            }
        }
        let cut = out
            .char_indices()
            .nth(MAX_COUNTER_NAME)
            .map_or(out.len(), |(i, _)| i);
        out.truncate(cut);
        out
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_take_values_of_the_message() {
        let t = NameTemplate::parse("error_code_{{/error/code}}").unwrap();
        let msg: Value = serde_json::from_str(r#"{"error":{"code":429}}"#).unwrap();
        assert_eq!(t.render(Some(&msg)), "error_code_429");
        assert_eq!(t.render(None), "error_code_none");
        let odd: Value = serde_json::from_str(r#"{"error":{"code":"a b/c"}}"#).unwrap();
        assert_eq!(t.render(Some(&odd)), "error_code_a_b_c");
        let huge: Value = serde_json::json!({"error": {"code": "x".repeat(10_000)}});
        assert_eq!(t.render(Some(&huge)).len(), MAX_COUNTER_NAME);
        assert!(t.could_make("error_code_429") && !t.could_make("warning_429"));
        assert!(NameTemplate::parse("pongs").unwrap().fixed() == Some("pongs"));
        assert!(NameTemplate::parse("bad name").is_err());
        assert!(NameTemplate::parse("x_{{error}}").is_err());
        assert!(NameTemplate::parse("x_{{/e").is_err());
        let mid = NameTemplate::parse("e_{{/a}}_x").unwrap();
        assert!(mid.could_make("e_7_x") && !mid.could_make("e_7_y"));
    }
}
