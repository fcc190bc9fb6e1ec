//! `--metrics-listen`: the run's series for Prometheus to scrape, over HTTP/1.1, rendered from
//! the latest one-second snapshot at each request (what the run does costs the scrape
//! nothing). At most `MAX_CONNECTIONS` connections at once (one more is answered 503 at once),
//! one request each, each with a time limit, so a scraper that misbehaves can neither grow the
//! run's memory nor make the others wait.

use std::convert::Infallible;
use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::families::Families;
use super::text::{Format, render};

const MAX_CONNECTIONS: usize = 32;
/// How long a scraper may take over one connection (one request).
const CONNECTION_TIME: Duration = Duration::from_secs(10);

/// The scrape endpoint, serving until `stop`.
pub struct Listener {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    stop: CancellationToken,
}

/// What a scrape reads: the latest series and the run's labels.
#[derive(Clone)]
pub struct Exposed {
    pub latest: watch::Receiver<Arc<Families>>,
    pub common: Arc<Vec<(String, String)>>,
}

impl Listener {
    /// Binds `addr` (before anything else of the run: an address that cannot be had is an
    /// error before anything is sent or written).
    pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Serves on a listener [`Listener::bind`] made.
    pub fn serve(listener: std::net::TcpListener, exposed: Exposed) -> std::io::Result<Listener> {
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, exposed, stop.clone()));
        Ok(Listener { addr, task, stop })
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn serve(listener: TcpListener, exposed: Exposed, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let mut tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of descriptors, a connection reset before accept: try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        // Over the limit: told at once (and closed), so that a scraper never waits behind
        // connections that hold the slots.
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let busy =
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(busy)).await;
            });
            continue;
        };
        let exposed = exposed.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, exposed.clone()));
            // One request a connection: a scrape is one GET.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .keep_alive(false)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_TIME, connection) => {}
                () = stop.cancelled() => {}
            }
            drop(permit);
        });
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    exposed: Exposed,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a static response is valid")
    };
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET /metrics\n".into(),
        ));
    }
    match request.uri().path() {
        "/metrics" => {
            let accept = request
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let format = Format::accepted(accept);
            let latest = exposed.latest.borrow().clone();
            // Label values are masked where they are made (`labels`, `build`): masking the
            // body would corrupt it (a secret `0.25` in a bucket bound).
            let body = render(&latest, &exposed.common, format);
            Ok(reply(StatusCode::OK, format.content_type(), body))
        }
        "/" => Ok(reply(
            StatusCode::OK,
            "text/html",
            "<a href=\"/metrics\">wsstorm metrics</a>\n".into(),
        )),
        _ => Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "GET /metrics\n".into(),
        )),
    }
}
