//! `[tls]` for wss:// targets: certificates verified against the system's roots by default
//! (or only `ca_file`'s, for a private CA), a client certificate for mutual TLS, and
//! `insecure = true` (or `--insecure`) to skip verification by explicit choice, which every
//! summary then warns about. The rustls configuration is built while the scenario is checked,
//! so a missing or broken file is a scenario error that names it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::ParsedCertificate;
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What the client's TLS is, resolved.
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    /// Server certificates are not verified.
    pub insecure: bool,
    /// Where the roots came from, for `validate`.
    pub roots: String,
    pub client_cert: Option<PathBuf>,
    /// The name the server's certificate must carry: the target's host.
    pub server_name: ServerName<'static>,
}

/// The parts of `[tls]`, with relative paths resolved against the scenario's folder.
#[derive(Debug, Default)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub insecure: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Builds the client configuration for a server named `host`; an error names the key and the
/// file.
pub fn build(options: &TlsOptions, host: &str) -> Result<Tls, (&'static str, String)> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls", e.to_string()))?;
    let (builder, roots) = if options.insecure {
        let verifier = Arc::new(NoVerification(provider()));
        (
            builder.dangerous().with_custom_certificate_verifier(verifier),
            "none: certificates are NOT verified (insecure)".to_string(),
        )
    } else {
        let mut store = RootCertStore::empty();
        // ca_file's certificates, which a server may also present itself (pinning).
        let mut pinned = Vec::new();
        let roots = match &options.ca_file {
            Some(file) => {
                let certs = read_certs(file).map_err(|e| ("tls.ca_file", e))?;
                pinned.clone_from(&certs);
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err((
                        "tls.ca_file",
                        format!("{}: no usable CA certificate in it", file.display()),
                    ));
                }
                format!("{} ({added} certificate(s))", file.display())
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err((
                        "tls",
                        "no system root certificates found: expected `ca_file = \"ca.pem\"` (or install ca-certificates)".to_string(),
                    ));
                }
                format!("the system's ({added} certificates)")
            }
        };
        if pinned.is_empty() {
            (builder.with_root_certificates(store), roots)
        } else {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
                .build()
                .map_err(|e| ("tls.ca_file", e.to_string()))?;
            let verifier = Arc::new(Pinned { webpki, pinned });
            (
                builder.dangerous().with_custom_certificate_verifier(verifier),
                format!("{roots}, or a server certificate that is one of them (pinned)"),
            )
        }
    };
    let config = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert).map_err(|e| ("tls.client_cert", e))?;
            let pem = super::files::read_bounded(key, MAX_PEM).map_err(|e| ("tls.client_key", e))?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                (
                    "tls.client_key",
                    format!("{}: {e}: expected a PEM private key", key.display()),
                )
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                (
                    "tls.client_key",
                    format!("the key does not fit the certificate: {e}"),
                )
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err((
                "tls",
                "a client certificate needs both `client_cert` and `client_key`".to_string(),
            ));
        }
    };
    Ok(Tls {
        config: Arc::new(config),
        insecure: options.insecure,
        roots,
        client_cert: options.client_cert.clone(),
        // A host that is no valid name fails the handshake's name check, as it should.
        server_name: server_name(host)
            .unwrap_or_else(|| ServerName::try_from("invalid").expect("a valid name")),
    })
}

/// The largest PEM file (certificates, key) read: far above any real bundle.
const MAX_PEM: u64 = 16 << 20;

fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = super::files::read_bounded(file, MAX_PEM)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}: expected PEM certificates", file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it: expected PEM certificates",
            file.display()
        ));
    }
    Ok(certs)
}

/// The name the server's certificate must carry: the URL's host.
fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).ok()
}

/// Full verification against `ca_file`'s roots; and a server certificate that is exactly one of
/// `ca_file`'s certificates is trusted as itself (pinning), its name still checked. A
/// self-signed staging certificate made with `openssl req -x509` carries CA:TRUE, which webpki
/// refuses as an end entity (CaUsedAsEndEntity) while curl `--cacert`, Python, Node and Go
/// accept it: this is what they do. Its validity period is not checked (it is pinned).
#[derive(Debug)]
struct Pinned {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(_) if self.pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                let parsed = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `insecure`: any certificate is accepted (signatures are still checked, so the handshake is
/// real TLS; only the identity is not).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
