//! The built-in target's GraphQL over WebSocket (`--protocol graphql-ws`, the
//! graphql-transport-ws messages), the subset the quick start uses: `connection_init` is
//! acknowledged, `ping` answered `pong`, and each `subscribe` answered with `--batch` `next`
//! messages (one unless given) that carry the operation's variables back, then `complete`. No
//! GraphQL is executed. A message's answers go together through the server's behaviour
//! (latency, withheld replies: `connection`), as the other protocols' do.

use serde_json::{Value, json};

/// The answers to a client's message, in order.
pub fn answer(text: &str, nexts: u32) -> Vec<String> {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    match message.get("type").and_then(Value::as_str) {
        Some("connection_init") => vec![r#"{"type":"connection_ack"}"#.to_string()],
        Some("ping") => vec![r#"{"type":"pong"}"#.to_string()],
        Some("subscribe") => {
            let Some(id) = message.get("id").filter(|id| id.is_string()) else {
                return Vec::new();
            };
            let variables = message
                .pointer("/payload/variables")
                .cloned()
                .unwrap_or(Value::Null);
            let mut out: Vec<String> = (1..=nexts.max(1))
                .map(|n| {
                    json!({"id": id, "type": "next", "payload": {"data": {"n": n, "variables": variables}}})
                        .to_string()
                })
                .collect();
            out.push(json!({"id": id, "type": "complete"}).to_string());
            out
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            answer(r#"{"type":"connection_init","payload":{}}"#, 1),
            [r#"{"type":"connection_ack"}"#]
        );
        assert_eq!(answer(r#"{"type":"ping"}"#, 1), [r#"{"type":"pong"}"#]);
        let out = answer(
            r#"{"id":"7","type":"subscribe","payload":{"query":"q","variables":{"a":1}}}"#,
            2,
        );
        assert_eq!(out.len(), 3);
        assert!(
            out[1].contains(r#""n":2"#) && out[1].contains(r#""a":1"#),
            "{out:?}"
        );
        assert!(out[2].contains("complete") && out[2].contains(r#""id":"7""#));
        for nothing in ["", "{", r#"{"type":"pong"}"#, r#"{"id":7,"type":"subscribe"}"#] {
            assert!(answer(nothing, 1).is_empty(), "{nothing}");
        }
    }
}
