//! The client side of the HTTP upgrade, done here rather than by tungstenite so that an open
//! connection keeps only its small read buffer: tungstenite's own handshake hands its 4 KiB
//! read buffer on to the connection, which would be the largest part of an idle client.
//! Validation follows RFC 6455 §4.1: status 101, `Upgrade: websocket`, `Connection: upgrade`,
//! the accept key, and a subprotocol only if one was offered (and then one of those, or the
//! one the scenario expects); an extension only if one was offered (permessage-deflate, RFC 7692
//! §5: then its parameters must be ones the offer allows).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::causes::connect_error;
use super::stream::{ClientStream, Ws};
use crate::deflate::{self, Limits, Offer, Role as Side, Transcoder};
use crate::metrics::{ConnectError, Reasons};

/// Upper bound for the response head; a server sending more is broken or hostile.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// At most this much of a refused upgrade's body is read, to show it, for at most this long.
const BODY_SHOWN: usize = 2048;
const BODY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Sends the upgrade request on `stream` and checks the response.
/// `required`: the subprotocol the server must choose, as an index into those the request
/// offers (else any offered one, or none); `deflate`: the permessage-deflate offer the request
/// carries. Why a response was refused goes to `reasons` (once per kind), and when to come
/// back to `refusal`.
pub async fn upgrade(
    mut stream: ClientStream,
    request: &Request,
    config: WebSocketConfig,
    required: Option<usize>,
    deflate: Option<&Offer>,
    reasons: &Reasons,
    refusal: Refusal<'_>,
) -> Result<Ws, ConnectError> {
    let refused = |kind: ConnectError, why: &dyn Fn() -> String| {
        reasons.connect(kind, why);
        kind
    };
    let io = |e: std::io::Error| {
        let kind = connect_error(&e);
        refused(kind, &|| format!("the upgrade: {e}"))
    };
    let head = request_head(request);
    stream.inner.write_all(&head).await.map_err(io)?;

    let mut buf = Vec::with_capacity(512);
    let (head_len, status, accept, upgrade, connection, protocol, after, extensions, length, chunked) = loop {
        let mut chunk = [0u8; 512];
        let n = stream.inner.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(refused(ConnectError::Reset, &|| {
                "the server closed the connection before answering the upgrade".into()
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let get = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                break (
                    len,
                    response.code.unwrap_or(0),
                    get("sec-websocket-accept"),
                    get("upgrade"),
                    get("connection"),
                    get("sec-websocket-protocol"),
                    get("retry-after"),
                    // Every Sec-WebSocket-Extensions line, as one list.
                    response
                        .headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    get("content-length").and_then(|l| l.trim().parse::<usize>().ok()),
                    get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")),
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return Err(refused(ConnectError::Handshake, &|| {
                    format!("the response head is over {MAX_RESPONSE_HEAD} bytes")
                }));
            }
            Err(e) => {
                let start = crate::redact::excerpt(&String::from_utf8_lossy(&buf), 80);
                return Err(refused(ConnectError::Handshake, &|| {
                    format!("the answer to the upgrade is not HTTP ({e}): {start:?}")
                }));
            }
        }
    };
    if status != 101 {
        let kind = ConnectError::HttpStatus(status);
        if matches!(status, 429 | 503) {
            *refusal.retry_after = after.as_deref().and_then(retry_after_secs);
        }
        // The body that explains a refusal may come after the head. It is read when it will
        // be shown (the first of its kind, or -v), and within the connect timeout.
        let bodiless = status < 200 || matches!(status, 204 | 304);
        if !bodiless && (!reasons.knows_connect(kind) || tracing::enabled!(tracing::Level::DEBUG)) {
            let until = head_len + length.unwrap_or(BODY_SHOWN).min(BODY_SHOWN);
            let deadline = refusal.deadline.min(Instant::now() + BODY_WAIT);
            let read = read_more(&mut stream.inner, &mut buf, until, chunked);
            let _ = tokio::time::timeout_at(deadline, read).await;
        }
        // -v shows what the server said (users debug 401/403/429 on upgrade with this).
        tracing::debug!(
            status,
            // Masked before it is cut, so that no part of a secret it echoes is shown.
            response = %crate::redact::excerpt(&String::from_utf8_lossy(&buf), head_len + BODY_SHOWN),
            "upgrade refused"
        );
        return Err(refused(kind, &|| {
            let text = String::from_utf8_lossy(&buf);
            let first = text.lines().next().unwrap_or_default();
            let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
            format!("{first}: {}", crate::redact::excerpt(body, 200))
        }));
    }
    if let Err((kind, why)) = check_upgrade(request, &upgrade, &connection, &accept, &protocol, required) {
        return Err(refused(kind, &|| why.clone()));
    }
    let agreed = deflate::accept(deflate, &extensions).map_err(|why| {
        tracing::debug!(why, "extensions refused");
        refused(ConnectError::Handshake, &|| why.clone())
    })?;
    let tail = buf[head_len..].to_vec();
    let Some(params) = agreed else {
        stream.upgraded(None);
        return Ok(if tail.is_empty() {
            WebSocketStream::from_raw_socket(stream, Role::Client, Some(config)).await
        } else {
            WebSocketStream::from_partially_read(stream, tail, Role::Client, Some(config)).await
        });
    };
    // Frames that came with the response go through the transcoder too.
    let limits = Limits {
        max_message: config.max_message_size.unwrap_or(usize::MAX),
        max_frame: config.max_frame_size.unwrap_or(usize::MAX),
    };
    stream.upgraded(Some(Transcoder::new(Side::Client, params, limits, tail)));
    Ok(WebSocketStream::from_raw_socket(stream, Role::Client, Some(config)).await)
}

/// When to come back after a refused upgrade, and until when its body may be read.
pub struct Refusal<'a> {
    /// A 429's or 503's `Retry-After`, in seconds.
    pub retry_after: &'a mut Option<u32>,
    /// The connect timeout's end.
    pub deadline: Instant,
}

/// Reads on until `buf` holds `until` bytes, the last chunk of a `chunked` body has come, or
/// the server closes or fails: a refused upgrade's body, for `-v` and the connect error's
/// reason.
async fn read_more<S: tokio::io::AsyncRead + Unpin>(
    inner: &mut S,
    buf: &mut Vec<u8>,
    until: usize,
    chunked: bool,
) {
    let mut chunk = [0u8; 512];
    while buf.len() < until && !(chunked && buf.ends_with(b"\r\n0\r\n\r\n")) {
        match inner.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n.min(until - buf.len())]),
        }
    }
}

/// A 101 is an upgrade only with `Upgrade: websocket`, `Connection: upgrade`, the accept key
/// for the key sent, and a subprotocol the client offered (the one required, if any).
fn check_upgrade(
    request: &Request,
    upgrade: &Option<String>,
    connection: &Option<String>,
    accept: &Option<String>,
    protocol: &Option<String>,
    required: Option<usize>,
) -> Result<(), (ConnectError, String)> {
    let key = request.headers().get("sec-websocket-key").ok_or((
        ConnectError::Handshake,
        "no Sec-WebSocket-Key to send".to_string(),
    ))?;
    let expected_accept = derive_accept_key(key.as_bytes());
    let broken = if !upgrade
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    {
        Some(format!("101 without `Upgrade: websocket` (Upgrade: {upgrade:?})"))
    } else if !connection
        .as_deref()
        .is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    {
        Some(format!(
            "101 without `Connection: upgrade` (Connection: {connection:?})"
        ))
    } else if accept.as_deref() != Some(expected_accept.as_str()) {
        Some(format!(
            "101 with the wrong Sec-WebSocket-Accept: {accept:?}, expected {expected_accept:?}"
        ))
    } else {
        None
    };
    if let Some(why) = broken {
        tracing::debug!(why, "upgrade response refused");
        return Err((ConnectError::Handshake, why));
    }
    let offered = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok());
    let expected = required.and_then(|i| offered?.split(',').nth(i)).map(str::trim);
    // RFC 6455 §4.1: a subprotocol the client did not offer fails the connection; so does
    // one other than the scenario expects. None at all is the server's right, unless one
    // is expected.
    let protocol_ok = match (offered, protocol.as_deref(), expected) {
        (_, chosen, Some(expected)) => chosen == Some(expected),
        (_, None, None) => true,
        (Some(offered), Some(chosen), None) => offered.split(',').any(|p| p.trim() == chosen),
        (None, Some(_), None) => false,
    };
    if !protocol_ok {
        tracing::debug!(chosen = ?protocol, offered, expected, "subprotocol refused");
        return Err((
            ConnectError::Subprotocol,
            format!(
                "the server chose the subprotocol {protocol:?}; offered {offered:?}, required {expected:?}"
            ),
        ));
    }
    Ok(())
}

/// `GET /path HTTP/1.1` and the request's headers.
fn request_head(request: &Request) -> Vec<u8> {
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"GET ");
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The longest `Retry-After` honoured (a server may ask for days).
const MAX_RETRY_AFTER: u32 = 3600;

/// A `Retry-After` value in seconds: a number of seconds, or an HTTP date (RFC 9110: IMF-fixdate,
/// which RFC 2822 parsing takes); a date in the past is 0. At most an hour.
fn retry_after_secs(value: &str) -> Option<u32> {
    let secs = match value.trim().parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
            (at.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64
        }
    };
    Some(secs.min(u64::from(MAX_RETRY_AFTER)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after_secs("5"), Some(5));
        assert_eq!(retry_after_secs(" 120 "), Some(120));
        assert_eq!(retry_after_secs("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(0),
            "in the past"
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        assert!(retry_after_secs(&soon).is_some_and(|s| (28..=30).contains(&s)));
        assert_eq!(retry_after_secs("soon"), None);
        assert_eq!(retry_after_secs("-1"), None);
    }
}
