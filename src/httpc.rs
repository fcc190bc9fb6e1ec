//! One HTTP/1.1 request on a connection of its own (over TCP, or TLS with a given rustls
//! configuration), its response read up to a bound, within a time limit. hyper does the HTTP.
//! Shared by the HTTP steps of scenarios and the Prometheus remote write: no second HTTP
//! client crate for either.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

/// A request ready to go: everything rendered, nothing borrowed.
pub struct Outgoing {
    pub request: http::Request<Full<Bytes>>,
    pub timeout: Duration,
    /// The largest response body read.
    pub max_body: usize,
}

/// What came back.
#[derive(Debug)]
pub enum Reply {
    /// A response: its status and body.
    Response { status: u16, body: Bytes },
    /// The request failed (connect, TLS, a broken response); the reason for `-v`.
    Failed(String),
    /// No response within the step's timeout.
    TimedOut,
}

/// The exchange: what came back, and how long it took.
#[derive(Debug)]
pub struct Done {
    pub reply: Reply,
    pub rtt: Duration,
}

impl Done {
    /// An exchange that could not run (its task ended without an answer).
    pub fn failed(why: String) -> Done {
        Done {
            reply: Reply::Failed(why),
            rtt: Duration::ZERO,
        }
    }
}

/// Sends `out` and reads the response.
pub async fn exchange(out: Outgoing, tls: Option<Arc<ClientConfig>>) -> Done {
    let started = Instant::now();
    let limit = out.timeout;
    let reply = match timeout(limit, send(out, tls)).await {
        Ok(Ok((status, body))) => Reply::Response { status, body },
        Ok(Err(why)) => Reply::Failed(why),
        Err(_) => Reply::TimedOut,
    };
    Done {
        reply,
        rtt: started.elapsed(),
    }
}

async fn send(out: Outgoing, tls: Option<Arc<ClientConfig>>) -> Result<(u16, Bytes), String> {
    let Outgoing {
        mut request,
        max_body,
        ..
    } = out;
    let uri = request.uri().clone();
    let host = uri
        .host()
        .ok_or("no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let secure = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    // HTTP/1.1 wants the authority in Host and the path in the request line.
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    if let Ok(value) = http::HeaderValue::from_str(&authority) {
        request.headers_mut().entry(http::header::HOST).or_insert(value);
    }
    *request.uri_mut() = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| "no path")?;
    if secure {
        let config = tls.ok_or("https without TLS")?;
        let name = ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        round_trip(TokioIo::new(stream), request, max_body).await
    } else {
        round_trip(TokioIo::new(tcp), request, max_body).await
    }
}

async fn round_trip<S>(
    io: S,
    request: http::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<(u16, Bytes), String>
where
    S: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"));
    let result = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            Limited::new(response.into_body(), max_body)
                .collect()
                .await
                .map(|b| (status, b.to_bytes()))
                .map_err(|e| format!("the response body: {e}"))
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}
