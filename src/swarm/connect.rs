//! Opening one WebSocket connection: resolve, TCP connect, upgrade, all under the connect
//! timeout, timed in parts, with failures mapped to a `ConnectError` kind.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::client::ClientState;
use super::stream::{ClientStream, Transport};
use super::{Shared, handshake};
use crate::metrics::ConnectError;
use crate::scenario::template::RenderCtx;

pub type Ws = WebSocketStream<ClientStream>;

/// An open connection and how long its parts took.
pub struct Opened {
    pub ws: Ws,
    pub tcp_us: u64,
    pub upgrade_us: u64,
}

/// Connects client `state`.
pub async fn open(shared: &Shared, state: &mut ClientState) -> Result<Opened, ConnectError> {
    let request = request(shared, state)?;
    let attempt = async {
        let started = Instant::now();
        let addr = tokio::net::lookup_host(&shared.authority)
            .await
            .map_err(|_| ConnectError::Dns)?
            .next()
            .ok_or(ConnectError::Dns)?;
        let tcp = match shared.source_addrs.as_slice() {
            [] => TcpStream::connect(addr).await,
            sources => {
                let source = sources[(state.index % sources.len() as u64) as usize];
                connect_from(source, addr).await
            }
        }
        .map_err(|e| io_kind(&e))?;
        let _ = tcp.set_nodelay(true);
        let connected = Instant::now();
        let transport = match &shared.tls {
            None => Transport::Plain(tcp),
            Some((connector, name)) => match connector.connect(name.clone(), tcp).await {
                Ok(tls) => Transport::Tls(Box::new(tls)),
                Err(e) => {
                    tracing::debug!("TLS handshake with {addr} failed: {e}");
                    return Err(ConnectError::Tls);
                }
            },
        };
        let ws = handshake::upgrade(
            ClientStream::new(transport, shared.connect_timeout),
            &request,
            shared.ws_config,
            shared.subprotocol.as_deref(),
        )
        .await?;
        Ok(Opened {
            ws,
            tcp_us: (connected - started).as_micros() as u64,
            upgrade_us: connected.elapsed().as_micros() as u64,
        })
    };
    timeout(shared.connect_timeout, attempt)
        .await
        .map_err(|_| ConnectError::Timeout)?
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

fn request(
    shared: &Shared,
    state: &mut ClientState,
) -> Result<tungstenite::handshake::client::Request, ConnectError> {
    let mut ctx = RenderCtx {
        client: state.index,
        seq: state.next_seq,
        rng: &mut state.rng,
        row: shared.row(state.index),
    };
    let mut url = match &shared.url_template {
        Some(template) => {
            let mut url = String::new();
            template.render(&mut ctx, &mut url);
            url
        }
        None => shared.url.clone(),
    };
    if let (Some(param), Some(last)) = (&shared.pushes.resume_param, state.last_push_seq) {
        let sep = if url.contains('?') { '&' } else { '?' };
        let _ = write!(url, "{sep}{param}={last}");
    }
    let mut request = url.into_client_request().map_err(|_| ConnectError::Handshake)?;
    let headers = request.headers_mut();
    for (name, template) in &shared.headers {
        let mut value = String::new();
        template.render(&mut ctx, &mut value);
        let value = HeaderValue::from_str(&value).map_err(|_| ConnectError::Handshake)?;
        headers.insert(name, value);
    }
    if let Some(protocols) = &shared.subprotocols {
        headers.insert("sec-websocket-protocol", protocols.clone());
    }
    Ok(request)
}

pub(super) fn io_kind(e: &io::Error) -> ConnectError {
    // rustls errors come wrapped in io errors (a TLS 1.3 server refuses a client certificate
    // after the client's handshake is done, so it shows on the first read).
    if e.get_ref()
        .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>())
    {
        return ConnectError::Tls;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ConnectError::Reset,
        io::ErrorKind::TimedOut => ConnectError::Timeout,
        _ => ConnectError::Io,
    }
}
