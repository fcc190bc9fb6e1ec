//! wss:// with rustls against a TLS echo server on loopback whose certificate comes from a
//! private CA made here (rcgen): refused without `ca_file` (cause `tls`), accepted with it or
//! with `insecure` (and then the summary warns); mutual TLS with and without a client
//! certificate.

use std::path::Path;
use std::sync::Arc;

use crate::support::run;
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// A private CA, a server certificate for "localhost" and a client certificate, all signed
/// by it, written as PEM files into `dir`.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    server: (rcgen::Certificate, KeyPair),
}

fn pki(dir: &Path) -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    Pki {
        ca,
        server: (server, server_key),
    }
}

/// A TLS WebSocket echo server on 127.0.0.1:0; with `client_ca`, it requires a client
/// certificate signed by it.
async fn tls_echo(pki: &Pki, require_client_cert: bool) -> u16 {
    tls_server(pki, require_client_cert, None).await
}

/// As [`tls_echo`]; with `unclean`, each connection ends after that many echoes by closing TCP
/// without TLS's close_notify (nor a WebSocket close).
async fn tls_server(pki: &Pki, require_client_cert: bool, unclean: Option<usize>) -> u16 {
    let (cert, key) = &pki.server;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let builder = ServerConfig::builder();
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.der().clone()).unwrap();
        builder.with_client_cert_verifier(WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap())
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(vec![cert.der().clone()], private)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                let mut echoed = 0;
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        break;
                    }
                    echoed += 1;
                    if unclean == Some(echoed) {
                        // Dropped without shutdown: a FIN, no close_notify.
                        return;
                    }
                }
            });
        }
    });
    port
}

fn scenario(dir: &Path, tls: &str) -> String {
    let file = dir.join("tls.toml");
    let text = format!(
        "name = \"tls\"\ntarget = \"embedded\"\nduration = \"1s\"\n[connect]\ntimeout = \"2s\"\n\
         [reconnect]\nmax_attempts = 1\n[correlation]\nrequest_id = \"/id\"\n[[phases]]\nclients = 3\n\
         [[steps]]\nsend = '{{\"id\":\"{{{{id}}}}\"}}'\nexpect = \"response\"\n[[steps]]\nsleep = \"50ms\"\n{tls}"
    );
    std::fs::write(&file, &text).unwrap();
    text
}

/// Runs the scenario text as if it were `dir/tls.toml` (so relative paths resolve there).
async fn run_in(
    dir: &Path,
    text: &str,
    url: &str,
    insecure: bool,
) -> (wsstorm::run::RunResult, tempfile::TempDir) {
    let overrides = wsstorm::scenario::Overrides {
        target: Some(url.to_string()),
        insecure,
        ..Default::default()
    };
    let plan = wsstorm::scenario::parse(&dir.join("tls.toml"), text, &overrides, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    run(plan).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_verified_unless_insecure_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = tls_echo(&pki, false).await;
    let url = format!("wss://localhost:{port}/");

    // The system's roots do not know this CA.
    let text = scenario(dir.path(), "");
    let (r, _d) = run_in(dir.path(), &text, &url, false).await;
    let c = &r.totals.counts;
    assert_eq!(c.connects, 0, "{c:?}");
    assert_eq!(
        r.summary.connect_errors.get("tls"),
        Some(&3),
        "{:?}",
        r.summary.connect_errors
    );
    assert!(r.summary.warnings.is_empty());
    // Field finding 21 (issue 19): and why, at the default level.
    let why = &r.summary.connect_error_reasons["tls"];
    assert!(why.contains("UnknownIssuer"), "{why}");

    // With the private CA: verified, and answered.
    let text = scenario(dir.path(), "[tls]\nca_file = \"ca.pem\"\n");
    let (r, _d) = run_in(dir.path(), &text, &url, false).await;
    let c = &r.totals.counts;
    assert_eq!((c.connects, c.connect_errors), (3, 0), "{c:?}");
    assert!(c.answered > 10 && c.answered == c.requests, "{c:?}");
    assert!(r.summary.warnings.is_empty());

    // Insecure, by the scenario or by --insecure: connects, and the summary says so.
    for (tls, flag) in [("[tls]\ninsecure = true\n", false), ("", true)] {
        let text = scenario(dir.path(), tls);
        let (r, _d) = run_in(dir.path(), &text, &url, flag).await;
        assert_eq!(r.totals.counts.connects, 3);
        assert_eq!(r.summary.warnings.len(), 1, "{:?}", r.summary.warnings);
        assert!(r.summary.warnings[0].contains("NOT verified"));
        let txt = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
        assert!(
            txt.contains("warning     TLS certificates were NOT verified"),
            "{txt}"
        );
        crate::support::check_summary_schema(&r);
    }

    // The wrong name: a certificate for "localhost" does not do for 127.0.0.1.
    let text = scenario(dir.path(), "[tls]\nca_file = \"ca.pem\"\n");
    let (r, _d) = run_in(dir.path(), &text, &format!("wss://127.0.0.1:{port}/"), false).await;
    assert_eq!(r.summary.connect_errors.get("tls"), Some(&3));
    let why = &r.summary.connect_error_reasons["tls"];
    assert!(why.contains("not valid for name"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = tls_echo(&pki, true).await;
    let url = format!("wss://localhost:{port}/");

    let text = scenario(dir.path(), "[tls]\nca_file = \"ca.pem\"\n");
    let (r, _d) = run_in(dir.path(), &text, &url, false).await;
    assert_eq!(r.totals.counts.connects, 0);
    assert_eq!(
        r.summary.connect_errors.get("tls"),
        Some(&3),
        "{:?}",
        r.summary.connect_errors
    );

    let text = scenario(
        dir.path(),
        "[tls]\nca_file = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"\n",
    );
    let (r, _d) = run_in(dir.path(), &text, &url, false).await;
    let c = &r.totals.counts;
    assert_eq!((c.connects, c.connect_errors), (3, 0), "{c:?}");
    assert_eq!(c.answered, c.requests);
}

/// A server that ends TLS without close_notify: a categorised drop, not a crash or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclean_tls_close_is_a_drop_cause() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = tls_server(&pki, false, Some(3)).await;
    let text = scenario(dir.path(), "[tls]\nca_file = \"ca.pem\"\n");
    let started = std::time::Instant::now();
    let (r, _d) = run_in(dir.path(), &text, &format!("wss://localhost:{port}/"), false).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(6));
    let drops: Vec<&String> = r.summary.drops.keys().collect();
    assert_eq!(drops, ["tls_unclean_close"], "{:?}", r.summary.drops);
    assert!(r.totals.counts.drops >= 3);
    crate::support::assert_requests_reconcile(&r);
}

#[test]
fn tls_mistakes_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    for (tls, target, why) in [
        (
            "[tls]\nca_file = \"missing.pem\"\n",
            "wss://localhost:1/",
            "tls.ca_file: ",
        ),
        (
            "[tls]\nca_file = \"junk.pem\"\n",
            "wss://localhost:1/",
            "no certificate in it",
        ),
        (
            "[tls]\nclient_cert = \"junk.pem\"\n",
            "wss://localhost:1/",
            "both `client_cert` and `client_key`",
        ),
        (
            "[tls]\ninsecure = true\n",
            "ws://localhost:1/",
            "applies to wss:// targets only",
        ),
    ] {
        let text = scenario(dir.path(), tls);
        let overrides = wsstorm::scenario::Overrides {
            target: Some(target.to_string()),
            ..Default::default()
        };
        let e = wsstorm::scenario::parse(&dir.path().join("tls.toml"), &text, &overrides, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why) && e.contains("tls.toml:"), "{why}: {e}");
    }
}

/// Field finding 20 (issue 19): a self-signed certificate made as `openssl req -x509 …` makes
/// it (CA:TRUE, the name in subjectAltName) given as `ca_file` failed every connect as `tls`
/// (webpki: CaUsedAsEndEntity), while curl `--cacert`, Python, Node and Go accept it. Against
/// the Python `websockets` server over wss: such a certificate is accepted (pinned); a proper
/// CA chain too; a pinned certificate for another name is still refused. The server's own
/// counts are the tool's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_20_a_self_signed_staging_certificate_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // As openssl req -x509 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1.
    let self_signed = |names: Vec<String>, file: &str| {
        let mut params = CertificateParams::new(names).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(d.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(d.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    };
    self_signed(vec!["localhost".into(), "127.0.0.1".into()], "staging");
    self_signed(vec!["elsewhere.example".into()], "other");
    let pki = pki(d);
    std::fs::write(d.join("leaf.pem"), pki.server.0.pem()).unwrap();
    std::fs::write(d.join("leaf.key"), pki.server.1.serialize_pem()).unwrap();

    let path = |f: &str| d.join(f).display().to_string();
    for (cert, ca, host, connects) in [
        ("staging", "staging.pem", "localhost", 3),
        ("staging", "staging.pem", "127.0.0.1", 3),
        ("leaf", "ca.pem", "localhost", 3),
        ("other", "other.pem", "localhost", 0),
    ] {
        let Some(server) = crate::support::ThirdParty::start(
            "field_20_a_self_signed_staging_certificate_is_pinned",
            "websockets",
            "websockets_echo.py",
            &[
                "--cert",
                &path(&format!("{cert}.pem")),
                "--key",
                &path(&format!("{cert}.key")),
            ],
        ) else {
            return;
        };
        let url = format!("wss://{host}:{}/", server.port);
        let text = scenario(d, &format!("[tls]\nca_file = \"{ca}\"\n"));
        let (r, _dir) = run_in(d, &text, &url, false).await;
        let seen = server.finish();
        let c = &r.totals.counts;
        assert_eq!(
            c.connects, connects,
            "{cert} via {ca} at {host}: {:?}",
            r.summary.connect_errors
        );
        assert_eq!(seen["connections"], c.connects, "{cert}: the server's count");
        assert_eq!(seen["messages"], c.requests, "{cert}: every request reached it");
        if connects == 0 {
            assert_eq!(r.summary.connect_errors.get("tls"), Some(&3));
        } else {
            assert_eq!(c.answered, c.requests, "{c:?}");
        }
    }
}
