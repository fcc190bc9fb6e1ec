//! The built-in target's JSON-RPC 2.0 (`--protocol jsonrpc`): a few methods, error replies
//! with the specification's codes, and subscriptions in the manner of Ethereum's
//! `eth_subscribe`, each sent a notification on the push timer.

use serde_json::{Value, json};

/// The most subscriptions a connection holds (a client that subscribes in a loop is refused
/// with -32005, so the server's memory stays bounded).
const MAX_SUBSCRIPTIONS: usize = 64;

/// One connection's JSON-RPC state: its subscriptions.
pub(super) struct JsonRpc {
    /// The connection's number, in its subscriptions' ids.
    conn: u64,
    made: u64,
    subscriptions: Vec<String>,
}

impl JsonRpc {
    pub(super) fn new(conn: u64) -> Self {
        JsonRpc {
            conn,
            made: 0,
            subscriptions: Vec::new(),
        }
    }

    /// The reply to a message, or None for a notification (no id).
    pub(super) fn answer(&mut self, text: &str) -> Option<String> {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Some(error(&Value::Null, -32700, "Parse error"));
        };
        let id = message.get("id").cloned();
        let method = message.get("method").and_then(Value::as_str);
        let (Some(method), Some("2.0")) = (method, message.get("jsonrpc").and_then(Value::as_str)) else {
            return Some(error(&id.unwrap_or(Value::Null), -32600, "Invalid Request"));
        };
        let id = id?;
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let result = match method {
            "echo" => params,
            "fail" => return Some(error(&id, -32000, "failed as asked")),
            "eth_subscribe" if self.subscriptions.len() >= MAX_SUBSCRIPTIONS => {
                return Some(error(&id, -32005, "too many subscriptions"));
            }
            "eth_subscribe" => {
                self.made += 1;
                let sub = format!("0x{:x}{:08x}", self.conn, self.made);
                self.subscriptions.push(sub.clone());
                Value::String(sub)
            }
            "eth_unsubscribe" => {
                let sub = params.get(0).and_then(Value::as_str).unwrap_or_default();
                let before = self.subscriptions.len();
                self.subscriptions.retain(|s| s != sub);
                Value::Bool(self.subscriptions.len() < before)
            }
            _ => return Some(error(&id, -32601, "Method not found")),
        };
        Some(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
    }

    /// The notifications of push number `seq`: one to each subscription.
    pub(super) fn notifications(&self, seq: u64, sent_at_us: u128) -> impl Iterator<Item = String> + '_ {
        self.subscriptions.iter().map(move |sub| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"eth_subscription","params":{{"subscription":"{sub}","result":{{"seq":{seq},"sent_at_us":{sent_at_us}}}}}}}"#
            )
        })
    }
}

fn error(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_errors_and_subscriptions() {
        let mut rpc = JsonRpc::new(7);
        let echo = rpc.answer(r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":[1,"a"]}"#);
        assert_eq!(
            echo.as_deref(),
            Some(r#"{"id":1,"jsonrpc":"2.0","result":[1,"a"]}"#)
        );
        let missing = rpc
            .answer(r#"{"jsonrpc":"2.0","id":"x","method":"nope"}"#)
            .unwrap();
        assert!(
            missing.contains("-32601") && missing.contains(r#""id":"x""#),
            "{missing}"
        );
        assert!(
            rpc.answer(r#"{"jsonrpc":"2.0","method":"echo"}"#).is_none(),
            "a notification"
        );
        assert!(rpc.answer("{").unwrap().contains("-32700"));
        assert!(
            rpc.answer(r#"{"id":2,"method":"echo"}"#)
                .unwrap()
                .contains("-32600")
        );
        let sub = rpc.answer(r#"{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["newHeads"]}"#);
        let sub: Value = serde_json::from_str(&sub.unwrap()).unwrap();
        let id = sub["result"].as_str().unwrap().to_string();
        let sent: Vec<String> = rpc.notifications(1, 5).collect();
        assert_eq!(sent.len(), 1);
        let n: Value = serde_json::from_str(&sent[0]).unwrap();
        assert_eq!(n["params"]["subscription"], id.as_str());
        let gone = rpc.answer(&format!(
            r#"{{"jsonrpc":"2.0","id":4,"method":"eth_unsubscribe","params":["{id}"]}}"#
        ));
        assert!(gone.unwrap().contains("true"));
        assert_eq!(rpc.notifications(2, 5).count(), 0);
        for i in 0..MAX_SUBSCRIPTIONS + 1 {
            let r = rpc.answer(&format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_subscribe"}}"#
            ));
            assert_eq!(r.unwrap().contains("-32005"), i == MAX_SUBSCRIPTIONS);
        }
    }
}
