//! HTTP requests of HTTP steps: a request made from a step's templates, sent by [`crate::httpc`]
//! (HTTP/1.1 over TCP, or TLS with the plan's configuration). This file knows nothing of
//! WebSocket connections.

use bytes::Bytes;
use http_body_util::Full;

use super::state::ClientState;
pub use crate::httpc::{Done, Outgoing, Reply, exchange};
use crate::scenario::HttpStep;
use crate::scenario::template::RenderCtx;

/// Renders step `step` for client `state`: None when a `{{var.…}}` it takes has no value, or
/// the URL or a header it makes is not valid.
pub fn render(
    step: &HttpStep,
    state: &mut ClientState,
    row: &[Box<str>],
    max_body: usize,
) -> Option<Outgoing> {
    let mut ctx = RenderCtx {
        client: state.index,
        seq: state.next_seq,
        rng: &mut state.rng,
        row,
        vars: state.vars.values(),
    };
    let mut url = String::new();
    let mut complete = step.url.render(&mut ctx, &mut url);
    let mut builder = http::Request::builder().method(step.method.clone()).uri(&url);
    for (name, template) in &step.headers {
        let mut value = String::new();
        complete &= template.render(&mut ctx, &mut value);
        builder = builder.header(name, value);
    }
    let mut body = String::new();
    if let Some(template) = &step.body {
        complete &= template.render(&mut ctx, &mut body);
    }
    let request = builder.body(Full::new(Bytes::from(body))).ok()?;
    (complete && request.uri().host().is_some()).then_some(Outgoing {
        request,
        timeout: step.timeout,
        max_body,
    })
}
