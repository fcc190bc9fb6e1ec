//! What a connection keeps only when its scenario needs it, boxed, so that a scenario without
//! timers, HTTP steps or rules with `lapse` pays one word per connection for all of it.

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::heart::Timers;
use super::http::Done;
use crate::metrics::event::Name;
use crate::scenario::{Plan, Step};

pub(super) struct Extra {
    /// `[[every]]`: when each timer fires next.
    pub timers: Option<Timers>,
    /// The HTTP step waiting for its response: its request, and its step's index.
    pub http: Option<(JoinHandle<Done>, usize)>,
    /// When each named HTTP step last sent, for rules with `since`, until a rule matched.
    pub since: Vec<(Name, Instant)>,
    /// A rule with `lapse` matched: its next match is due by then (this long after), and the
    /// rule's index.
    pub lapse: Option<(Instant, std::time::Duration, usize)>,
}

impl Extra {
    /// The connection's extra state, if its plan needs any.
    pub(super) fn of(plan: &Plan, now: Instant) -> Option<Box<Extra>> {
        let http = plan.all_steps().any(|s| matches!(s, Step::Http(_)));
        let lapse = plan.rules.iter().any(|r| r.lapse.is_some());
        (http || lapse || !plan.timers.is_empty()).then(|| {
            Box::new(Extra {
                timers: (!plan.timers.is_empty()).then(|| Timers::new(&plan.timers, now)),
                http: None,
                since: Vec::new(),
                lapse: None,
            })
        })
    }
}

/// The response of the HTTP step under way (its task is then done with); pending forever when
/// none is.
pub(super) async fn wait_http(extra: &mut Option<Box<Extra>>) -> (Done, usize) {
    let Some((task, index)) = extra.as_mut().and_then(|e| e.http.as_mut()) else {
        return std::future::pending().await;
    };
    let index = *index;
    let done = task.await.unwrap_or_else(|e| Done::failed(e.to_string()));
    if let Some(e) = extra.as_mut() {
        e.http = None;
    }
    (done, index)
}
