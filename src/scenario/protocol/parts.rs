//! What the presets build with: a located mistake, the walk over every program's steps, and
//! rules and tests written the way a scenario would write them.

use std::ops::Range;

use toml::Spanned;

use crate::scenario::raw::{RawCheck, RawMatch, RawRule, RawScenario, RawStep};

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
        },
    )
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
    }
}
