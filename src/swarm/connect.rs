//! Opening one WebSocket connection: resolve, TCP connect, TLS, upgrade, all under the connect
//! timeout, timed in parts, with failures mapped to a `ConnectError` kind.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};

use super::causes::connect_error;
use super::handshake;
use super::http_step;
use super::shared::Shared;
use super::state::ClientState;
use super::stream::{ClientStream, Transport, Ws};
use crate::metrics::ConnectError;
use crate::scenario::template::RenderCtx;

/// An open connection and how long its parts took.
pub struct Opened {
    pub ws: Ws,
    pub tcp_us: u64,
    pub upgrade_us: u64,
}

/// Why an attempt failed, and the refusal's `Retry-After` (HTTP 503 or 429) in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub kind: ConnectError,
    pub retry_after: Option<u32>,
}

/// Connects client `state`, after the HTTP steps of its setup (a login whose token the
/// upgrade sends): one that does not succeed fails the attempt as `http_setup`.
pub async fn open(shared: &Shared, state: &mut ClientState) -> Result<Opened, Refused> {
    if shared.plan.http_setup && !http_step::before_connect(shared, state).await {
        return Err(Refused {
            kind: ConnectError::HttpSetup,
            retry_after: None,
        });
    }
    let mut retry_after = None;
    open_with(shared, state, &mut retry_after)
        .await
        .map_err(|kind| Refused { kind, retry_after })
}

async fn open_with(
    shared: &Shared,
    state: &mut ClientState,
    retry_after: &mut Option<u32>,
) -> Result<Opened, ConnectError> {
    let reasons = &shared.reasons;
    let request = request(shared, state).map_err(|why| {
        reasons.connect(ConnectError::Handshake, || why.to_string());
        ConnectError::Handshake
    })?;
    let connect_timeout = shared.plan.connect.timeout;
    let deadline = Instant::now() + connect_timeout;
    let connect_to = &shared.endpoint.connect_to;
    let attempt = async {
        let started = Instant::now();
        let dns = |why: String| {
            reasons.connect(ConnectError::Dns, || format!("{connect_to}: {why}"));
            ConnectError::Dns
        };
        let addr = tokio::net::lookup_host(connect_to)
            .await
            .map_err(|e| dns(e.to_string()))?
            .next()
            .ok_or_else(|| dns("no address".to_string()))?;
        let tcp = match shared.plan.connect.source_addrs.as_slice() {
            [] => TcpStream::connect(addr).await,
            sources => {
                let source = sources[(state.index % sources.len() as u64) as usize];
                connect_from(source, addr).await
            }
        }
        .map_err(|e| {
            let kind = connect_error(&e);
            reasons.connect(kind, || format!("connecting to {addr}: {e}"));
            kind
        })?;
        let _ = tcp.set_nodelay(true);
        let connected = Instant::now();
        let transport = match (&shared.tls, &shared.plan.tls) {
            (Some(connector), Some(tls)) => match connector.connect(tls.server_name.clone(), tcp).await {
                Ok(tls) => Transport::Tls(Box::new(tls)),
                Err(e) => {
                    tracing::debug!("TLS handshake with {addr} failed: {e}");
                    reasons.connect(ConnectError::Tls, || format!("TLS with {addr}: {e}"));
                    return Err(ConnectError::Tls);
                }
            },
            _ => Transport::Plain(tcp),
        };
        let ws = handshake::upgrade(
            ClientStream::new(transport, connect_timeout),
            &request,
            shared.ws_config,
            shared.plan.connect.subprotocol,
            shared.deflate.as_ref().map(|(offer, _)| offer),
            reasons,
            handshake::Refusal {
                retry_after,
                deadline,
            },
        )
        .await?;
        Ok(Opened {
            ws,
            tcp_us: (connected - started).as_micros() as u64,
            upgrade_us: connected.elapsed().as_micros() as u64,
        })
    };
    timeout_at(deadline, attempt).await.map_err(|_| {
        reasons.connect(ConnectError::Timeout, || {
            format!("no open connection within connect.timeout ({connect_timeout:?}) to {connect_to}")
        });
        ConnectError::Timeout
    })?
}

/// A TCP connection from `source` (any free port) to `addr`. The port is chosen at connect time
/// (IP_BIND_ADDRESS_NO_PORT), so one source address offers its ephemeral ports to every
/// destination rather than once in all.
async fn connect_from(source: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(target_os = "linux")]
    if source.is_ipv4() {
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::IpBindAddressNoPort, &true)
            .map_err(io::Error::from)?;
    }
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// The upgrade request of client `state`: its URL (per client when it takes feed values, and
/// with the push sequence to resume from) and its headers, rendered.
fn request(shared: &Shared, state: &mut ClientState) -> Result<Request, &'static str> {
    let plan = &shared.plan;
    let socket = plan.sockets.get(usize::from(state.socket()));
    let mut ctx = RenderCtx {
        client: state.index,
        seq: state.next_seq,
        rng: &mut state.rng,
        row: plan.row(state.index),
        // A value not captured yet (the first connect) is left out.
        vars: state.vars.values(),
    };
    let resume = plan.pushes.resume_param.as_ref().zip(state.last_push_seq);
    let uri = match (&plan.connect.url, resume) {
        // A socket's own path on the target.
        _ if socket.is_some() => {
            let mut url = shared.endpoint.uri.to_string();
            let path_start = url.find("://").map_or(0, |i| i + 3);
            let path_at = url[path_start..].find('/').map_or(url.len(), |i| path_start + i);
            url.truncate(path_at);
            url.push_str(&socket.expect("checked").path);
            if let Some((param, last)) = resume {
                let sep = if url.contains('?') { '&' } else { '?' };
                let _ = write!(url, "{sep}{param}={last}");
            }
            url.parse::<Uri>().map_err(|_| "the socket's URL is not valid")?
        }
        (None, None) => shared.endpoint.uri.clone(),
        (template, resume) => {
            let mut url = match template {
                Some(template) => {
                    let mut url = String::new();
                    template.render(&mut ctx, &mut url);
                    url
                }
                None => shared.endpoint.uri.to_string(),
            };
            if let Some((param, last)) = resume {
                let sep = if url.contains('?') { '&' } else { '?' };
                let _ = write!(url, "{sep}{param}={last}");
            }
            // Validation made sure every feed row gives a valid URL.
            url.parse::<Uri>().map_err(|_| "the client's URL is not valid")?
        }
    };
    let mut request = uri
        .into_client_request()
        .map_err(|_| "the URL makes no upgrade request")?;
    let headers = request.headers_mut();
    for (name, template) in &plan.connect.headers {
        let mut value = String::new();
        template.render(&mut ctx, &mut value);
        let value = HeaderValue::from_str(&value).map_err(|_| "a header value cannot be sent")?;
        headers.insert(name, value);
    }
    match &plan.connect.offer {
        Some(offer) => {
            headers.insert("sec-websocket-protocol", offer.clone());
        }
        // Per client: rendered now (validation checked every feed row gives tokens).
        None if !plan.connect.subprotocols.is_empty() => {
            let mut list = String::new();
            for (i, template) in plan.connect.subprotocols.iter().enumerate() {
                if i > 0 {
                    list.push_str(", ");
                }
                template.render(&mut ctx, &mut list);
            }
            let value = HeaderValue::from_str(&list).map_err(|_| "a subprotocol cannot be sent")?;
            headers.insert("sec-websocket-protocol", value);
        }
        None => {}
    }
    if let Some((_, offer)) = &shared.deflate {
        headers.insert("sec-websocket-extensions", offer.clone());
    }
    Ok(request)
}
