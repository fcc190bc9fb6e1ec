//! The built-in target's Socket.IO v5 over Engine.IO v4 (`--protocol socketio`), the subset
//! the quick start uses: the open packet, a namespace connect (any namespace), events
//! acknowledged with their arguments (or, without an ack id, sent back as events), and the
//! Engine.IO heartbeat (`2`, on the ping timer) whose `3` counts as the client's answer.

use std::time::Duration;

/// The open packet: the session id, and the heartbeat the client should expect.
pub fn open(conn: u64, ping_every: Option<Duration>, ping_timeout: Duration) -> String {
    let interval = ping_every.map_or(25_000, |d| d.as_millis());
    format!(
        r#"0{{"sid":"s{conn}","upgrades":[],"pingInterval":{interval},"pingTimeout":{},"maxPayload":1000000}}"#,
        ping_timeout.as_millis()
    )
}

/// The answer to a client's packet, if any.
pub fn answer(text: &str, conn: u64) -> Option<String> {
    let packet = text.strip_prefix('4')?;
    let mut chars = packet.chars();
    let kind = chars.next()?;
    let rest = chars.as_str();
    let (ns, rest) = match rest.strip_prefix('/') {
        Some(_) => {
            let end = rest.find(',')?;
            (&rest[..=end], &rest[end + 1..])
        }
        None => ("", rest),
    };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (id, payload) = rest.split_at(digits);
    match kind {
        '0' => Some(format!(
            r#"40{ns}{{"sid":"s{conn}{}"}}"#,
            ns.trim_end_matches(',')
        )),
        '2' if !id.is_empty() => {
            // The ack carries the event's arguments (everything after its name).
            let args = match serde_json::from_str::<serde_json::Value>(payload) {
                Ok(serde_json::Value::Array(mut list)) if !list.is_empty() => {
                    list.remove(0);
                    serde_json::Value::Array(list).to_string()
                }
                _ => "[]".to_string(),
            };
            Some(format!("43{ns}{id}{args}"))
        }
        '2' => Some(format!("42{ns}{payload}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets() {
        assert!(
            open(3, None, Duration::from_secs(20))
                .starts_with(r#"0{"sid":"s3","upgrades":[],"pingInterval":25000,"pingTimeout":20000"#)
        );
        assert_eq!(answer("40", 1).as_deref(), Some(r#"40{"sid":"s1"}"#));
        assert_eq!(
            answer("40/chat,{\"token\":1}", 1).as_deref(),
            Some(r#"40/chat,{"sid":"s1/chat"}"#)
        );
        assert_eq!(
            answer(r#"42/chat,17["msg",{"a":1},2]"#, 1).as_deref(),
            Some(r#"43/chat,17[{"a":1},2]"#)
        );
        assert_eq!(answer(r#"4212["msg"]"#, 1).as_deref(), Some("4312[]"));
        assert_eq!(answer(r#"42["msg",1]"#, 1).as_deref(), Some(r#"42["msg",1]"#));
        for nothing in ["3", "2", "41", "4", "", "hello", "42/chat", "43[1]"] {
            assert_eq!(answer(nothing, 1), None, "{nothing:?}");
        }
    }
}
