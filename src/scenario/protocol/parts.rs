//! What the presets build with: a located mistake, the walk over every program's steps, and
//! rules and tests written the way a scenario would write them.

use std::ops::Range;

use toml::Spanned;

use crate::scenario::raw::{RawCheck, RawCorrelation, RawMatch, RawRule, RawScenario, RawStep, Text};

/// A mistake in a protocol step: where, and what was expected.
pub struct Mistake {
    pub span: Range<usize>,
    pub message: String,
}

/// Calls `f` on every step of every program, with the table it is in.
pub(super) fn each_step(raw: &mut RawScenario, f: &mut dyn FnMut(&str, &mut Spanned<RawStep>)) {
    let mut lists: Vec<(String, &mut Vec<Spanned<RawStep>>)> = vec![
        ("setup".into(), &mut raw.setup),
        ("steps".into(), &mut raw.steps),
        ("every".into(), &mut raw.every),
    ];
    for (i, flow) in raw.flows.iter_mut().enumerate() {
        let flow = flow.get_mut();
        lists.push((format!("flows[{i}].setup"), &mut flow.setup));
        lists.push((format!("flows[{i}].steps"), &mut flow.steps));
    }
    for (i, socket) in raw.sockets.iter_mut().enumerate() {
        let socket = socket.get_mut();
        lists.push((format!("sockets[{i}].setup"), &mut socket.setup));
        lists.push((format!("sockets[{i}].steps"), &mut socket.steps));
    }
    for (table, list) in lists {
        for (i, step) in list.iter_mut().enumerate() {
            f(&format!("{table}[{i}]"), step);
        }
    }
}

pub(super) fn rule(span: &Range<usize>, matches: RawMatch, count: &str, replies: bool) -> Spanned<RawRule> {
    Spanned::new(
        span.clone(),
        RawRule {
            matches: Spanned::new(span.clone(), matches),
            capture: None,
            count: Some(Spanned::new(span.clone(), count.to_string())),
            send: None,
            close: None,
            since: None,
            replies,
            lapse: None,
            lapse_ms: None,
            drop: None,
            example: false,
        },
    )
}

/// A rule counting a protocol's malformed messages (replies too), keeping the first as the
/// counter's example.
pub(super) fn malformed(span: &Range<usize>, matches: RawMatch, count: &str) -> Spanned<RawRule> {
    let mut r = rule(span, matches, count, true);
    r.get_mut().example = true;
    r
}

/// `{ pointer = P, exists = true }`.
pub(super) fn present(pointer: &str) -> RawCheck {
    exists(pointer, true)
}

/// `{ pointer = P, exists = false }`.
pub(super) fn absent(pointer: &str) -> RawCheck {
    exists(pointer, false)
}

pub(super) fn exists(pointer: &str, exists: bool) -> RawCheck {
    RawCheck {
        pointer: Some(Spanned::new(0..0, pointer.to_string())),
        equals: None,
        exists: Some(exists),
        matches: None,
        not_matches: None,
    }
}

/// The step's action besides a preset's form (`send`, `sleep`…), if it has one: a step has
/// one action.
pub(super) fn other_action(s: &RawStep) -> Option<&'static str> {
    [
        (s.send.is_some(), "send"),
        (s.send_binary.is_some(), "send_binary"),
        (s.http.is_some(), "http"),
        (s.wait_for.is_some(), "wait_for"),
        (s.sleep.is_some(), "sleep"),
        (s.close.is_some(), "close"),
    ]
    .into_iter()
    .find_map(|(set, key)| set.then_some(key))
}

/// The preset's id finder, by `pointer` or by a `regex` on the whole message, unless the
/// scenario's `[correlation]` names its own (a `[correlation]` with only `timeout` or
/// `max_in_flight` keeps the preset's finder). The correlation, when the finder is the
/// preset's (a preset may then add what its replies are).
pub(super) fn correlate<'a>(
    raw: &'a mut RawScenario,
    span: &Range<usize>,
    pointer: Option<&str>,
    regex: Option<&str>,
) -> Option<&'a mut RawCorrelation> {
    let at = |v: &str| Spanned::new(span.clone(), v.to_string());
    let correlation = raw.correlation.get_or_insert_with(|| {
        Spanned::new(
            span.clone(),
            RawCorrelation {
                request_id: None,
                request_id_regex: None,
                timeout: None,
                max_in_flight: None,
                reply_if_any: None,
            },
        )
    });
    let c = correlation.get_mut();
    if c.request_id.is_some() || c.request_id_regex.is_some() {
        return None;
    }
    c.request_id = pointer.map(at);
    c.request_id_regex = regex.map(at);
    Some(c)
}

/// How long a handshake's answer may take: `connect.timeout` as written, else 5 s.
pub(super) fn handshake_timeout(raw: &RawScenario, span: &Range<usize>) -> Text {
    raw.connect
        .timeout
        .clone()
        .unwrap_or_else(|| Spanned::new(span.clone(), "5s".to_string()))
}

/// Puts a handshake's steps first on the connection in every program's setup: each flow's
/// and each socket's, else the scenario's. They go after the setup's leading HTTP steps,
/// which run before the connect (a login whose token the handshake may send).
pub(super) fn prepend_setup<I: IntoIterator<Item = Spanned<RawStep>>>(
    raw: &mut RawScenario,
    handshake: impl Fn() -> I,
) {
    let mut setups: Vec<&mut Vec<Spanned<RawStep>>> = Vec::new();
    setups.extend(raw.flows.iter_mut().map(|f| &mut f.get_mut().setup));
    setups.extend(raw.sockets.iter_mut().map(|s| &mut s.get_mut().setup));
    if setups.is_empty() {
        setups.push(&mut raw.setup);
    }
    for setup in setups {
        let http = setup.iter().take_while(|s| s.get_ref().http.is_some()).count();
        setup.splice(http..http, handshake());
    }
}

/// `{ matches = RE }` on the whole message.
pub(super) fn matching(re: &str) -> RawCheck {
    RawCheck {
        matches: Some(Spanned::new(0..0, re.to_string())),
        ..Default::default()
    }
}
