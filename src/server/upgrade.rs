//! The upgrade handshake: refuse it (503) while restarting, reject it (401) without the
//! required token, read `resume_from` from the URL, echo the first offered subprotocol, and
//! with `compression`, accept a permessage-deflate offer (then start its transcoder).

use std::sync::atomic::Ordering::Relaxed;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::state::Shared;
use crate::deflate::{self, Limits, Params, Role, Socket, Transcoder};

/// What the upgrade request asked for, besides the upgrade itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Asked {
    /// `?resume_from=N`: the last push seq the client saw.
    pub resume_from: Option<u64>,
    /// The permessage-deflate parameters agreed to.
    pub deflate: Option<Params>,
}

/// The handshake callback: accepts (filling `asked`) or answers with an HTTP error.
// The error type is fixed by tungstenite's callback trait.
#[allow(clippy::result_large_err)]
pub(super) fn check(
    shared: &Shared,
    request: &Request,
    mut response: Response,
    asked: &mut Asked,
) -> Result<Response, ErrorResponse> {
    if let Some(left) = shared.refusing() {
        shared.stats.refused.fetch_add(1, Relaxed);
        let mut error = reject(StatusCode::SERVICE_UNAVAILABLE, "restarting, try again later");
        let retry = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if let Ok(value) = retry.max(1).to_string().parse() {
            error.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Err(error);
    }
    let query = request.uri().query().unwrap_or("");
    if let Some(token) = &shared.behaviour.require_token
        && !authorized(request, query, token)
    {
        shared.stats.unauthorized.fetch_add(1, Relaxed);
        let mut error = reject(StatusCode::UNAUTHORIZED, "a valid token is required");
        error.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return Err(error);
    }
    asked.resume_from = query_param(query, "resume_from").and_then(|v| v.parse().ok());
    let first = request
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|p| p.trim().parse().ok());
    if let Some(first) = first {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, first);
    }
    if shared.behaviour.compression.is_some() {
        let offers: Vec<&str> = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let Some((params, answer)) = deflate::answer(&offers.join(", "))
            && let Ok(value) = answer.parse()
        {
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
            asked.deflate = Some(params);
        }
    }
    Ok(response)
}

/// Starts permessage-deflate on an upgraded socket, when the handshake agreed to it.
pub(super) fn start_deflate(
    shared: &Shared,
    socket: &mut Socket<TcpStream>,
    asked: &Asked,
    config: &WebSocketConfig,
) {
    let Some(params) = asked.deflate else { return };
    let limits = Limits {
        max_message: config.max_message_size.unwrap_or(usize::MAX),
        max_frame: config.max_frame_size.unwrap_or(usize::MAX),
    };
    socket.start(Transcoder::new(Role::Server, params, limits, Vec::new()));
    shared.stats.deflated.fetch_add(1, Relaxed);
}

fn reject(status: StatusCode, text: &str) -> ErrorResponse {
    let mut error = ErrorResponse::new(Some(format!("{text}\n")));
    *error.status_mut() = status;
    error
}

/// `Authorization: Bearer <token>` (scheme case-insensitive) or `token=<token>` in the query.
fn authorized(request: &Request, query: &str, token: &str) -> bool {
    let bearer = request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.trim().split_once(' '))
        .any(|(scheme, value)| scheme.eq_ignore_ascii_case("bearer") && value.trim() == token);
    bearer || query_param(query, "token").is_some_and(|v| v == token)
}

/// The first value of `name` in a query string, percent-decoded (`+` stays `+`).
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| crate::units::percent::decode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_and_decoded() {
        assert_eq!(query_param("a=1&token=s%20t&b", "token").as_deref(), Some("s t"));
        assert_eq!(query_param("resume_from=7", "resume_from").as_deref(), Some("7"));
        assert_eq!(query_param("b&tokens=x", "token"), None);
        assert_eq!(query_param("b", "b").as_deref(), Some(""));
        assert_eq!(query_param("token=%zz", "token"), None);
        assert_eq!(query_param("token=%4", "token"), None);
    }

    #[test]
    fn bearer_header_or_query_token_authorizes() {
        let request = |auth: Option<&str>| {
            let mut r = Request::builder().uri("/ws");
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            r.body(()).unwrap()
        };
        assert!(authorized(&request(Some("Bearer sekrit")), "", "sekrit"));
        assert!(authorized(&request(Some("bearer  sekrit")), "", "sekrit"));
        assert!(!authorized(&request(Some("Basic sekrit")), "", "sekrit"));
        assert!(!authorized(&request(Some("Bearer other")), "", "sekrit"));
        assert!(!authorized(&request(None), "", "sekrit"));
        assert!(authorized(&request(None), "x=1&token=sekrit", "sekrit"));
        assert!(!authorized(&request(None), "token=sekrit2", "sekrit"));
    }
}
