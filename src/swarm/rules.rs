//! `[[on_message]]`: a server message that is no reply to one of this connection's requests
//! (a push, an application ping, an error with no id) goes through the rules, in order; every
//! rule whose `match` holds applies its actions: capture, count, send, close.

use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::connection::{Conn, Cut};
use super::receive::{Lazy, capture};
use super::state::ClientState;
use super::stream::Ws;
use crate::metrics::{DropCause, Event};
use crate::scenario::template::RenderCtx;
use crate::scenario::{CounterName, Lapse, Rule, RuleDrop};

impl Conn<'_> {
    /// Applies the rules to a message (a reply to a request: only the rules for replies). Its
    /// JSON is parsed once, when a rule reads it, unless the correlation or a check parsed it
    /// already.
    pub(super) async fn apply_rules(
        &mut self,
        ws: &mut Ws,
        state: &mut ClientState,
        lazy: &mut Lazy<'_>,
        reply: bool,
    ) -> Result<(), Cut> {
        let text = lazy.text();
        let shared = self.shared;
        let plan = &shared.plan;
        let needed = plan
            .rules
            .iter()
            .filter(|r| r.replies || !reply)
            .any(Rule::needs_json);
        let json = lazy.get(needed);
        for (index, rule) in plan.rules.iter().enumerate() {
            if (reply && !rule.replies)
                || !rule
                    .matches
                    .iter()
                    .all(|m| m.holds_in(text, json, state.vars.values()))
            {
                continue;
            }
            self.capture_failures += capture(&rule.captures, text, json, state, &plan.vars);
            if let Some(count) = &rule.count {
                let id = match count {
                    CounterName::Fixed(id) => *id,
                    CounterName::Template(name) => shared.counters.id(&name.render(json)),
                };
                if rule.example {
                    shared.counters.keep_example(id, text);
                }
                shared.events.send(Event::Counted(id)).await;
            }
            if let Some(template) = rule.send.as_ref().filter(|_| !self.closed()) {
                state.next_seq += 1;
                let mut out = String::new();
                let mut ctx = RenderCtx {
                    client: state.index,
                    seq: state.next_seq,
                    rng: &mut state.rng,
                    row: shared.row(state.index),
                    vars: state.vars.values(),
                };
                if template.render(&mut ctx, &mut out) {
                    shared
                        .events
                        .send(Event::Sent {
                            bytes: out.len() as u32,
                            request: false,
                            replay: false,
                            name: 0,
                        })
                        .await;
                    self.send(ws, Message::Text(Utf8Bytes::from(out))).await?;
                } else {
                    shared.events.send(Event::CaptureMissing).await;
                }
            }
            if let Some(name) = rule.since
                && let Some(sent) = self.extra.as_mut().and_then(|e| {
                    let at = e.since.iter().position(|(n, _)| *n == name)?;
                    Some(e.since.swap_remove(at).1)
                })
            {
                let us = sent.elapsed().as_micros() as u64;
                shared.events.send(Event::Since { name, us }).await;
            }
            if let Some(code) = rule.close {
                self.close_after(code);
            }
            if let Some(drop) = rule.drop {
                let cause = match drop {
                    RuleDrop::StompError => DropCause::StompError,
                    RuleDrop::SocketioConnectError => DropCause::SocketioConnectError,
                };
                return Err(self.dropped(cause, || fatal_reason(text)));
            }
            if let Some(lapse) = &rule.lapse
                && let Some(within) = lapse_of(lapse, state.vars.values())
                && let Some(extra) = self.extra.as_mut()
            {
                extra.lapse = Some((tokio::time::Instant::now() + within, within, index));
            }
        }
        Ok(())
    }
}

/// How long a rule's next match may take: its fixed part plus the captured milliseconds (None
/// while one has no value or is no number, or when they add up to 0: no heartbeat announced).
fn lapse_of(lapse: &Lapse, vars: &[Option<Box<str>>]) -> Option<std::time::Duration> {
    if lapse.vars_ms.is_empty() {
        return Some(lapse.fixed);
    }
    let mut ms: u64 = 0;
    for id in &lapse.vars_ms {
        let value = vars.get(usize::from(*id))?.as_deref()?;
        ms = ms.saturating_add(value.trim().parse::<u64>().ok()?);
    }
    // A day at most: a hostile announcement cannot make it never fire.
    (ms > 0).then(|| lapse.fixed + std::time::Duration::from_millis(ms.min(86_400_000)))
}

/// What a fatal message said: its first line and `message` header (a STOMP ERROR's, escapes
/// undone), secrets masked, cut to 120 characters.
fn fatal_reason(text: &str) -> String {
    let mut lines = text.lines().map(str::trim_end).skip_while(|l| l.is_empty());
    let first = lines.next().unwrap_or_default();
    // The header lines (up to the blank line): a malformed frame's are read too.
    let said = lines
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("message:"))
        .map_or_else(String::new, |m| format!(": {}", crate::units::stomp::unescape(m)));
    crate::redact::excerpt(&format!("the server sent {first}{said}"), 120)
}

#[cfg(test)]
mod tests {
    use super::fatal_reason;

    #[test]
    fn a_fatal_reason_reads_the_message_header_escapes_undone_also_of_a_malformed_frame() {
        let error = "ERROR\nmessage:bad\\cframe\ncontent-type:text/plain\n\nthe body";
        // No NUL: malformed, and its message header still read.
        assert_eq!(fatal_reason(error), "the server sent ERROR: bad:frame");
        assert_eq!(
            fatal_reason(&format!("{error}\0")),
            "the server sent ERROR: bad:frame"
        );
        // A body line that looks like a header is no header.
        assert_eq!(
            fatal_reason("ERROR\n\nmessage:not a header\0"),
            "the server sent ERROR"
        );
        assert_eq!(
            fatal_reason(r#"44{"message":"not authorized"}"#),
            r#"the server sent 44{"message":"not authorized"}"#
        );
    }
}
