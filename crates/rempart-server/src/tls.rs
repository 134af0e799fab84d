//! TLS for the listener that serves the API, the gateway and the console.
//!
//! [`Tls`] holds the rustls configuration built from `[server.tls]` (TLS 1.3 and 1.2 with
//! rustls's suites only: ECDHE with AES-GCM or ChaCha20-Poly1305) and rebuilds it when one of
//! its files changes, so a renewed certificate is served without a restart; a file that does
//! not load leaves the configuration in force and says why. The listener
//! ([`crate::listen`]) handshakes each connection in its own task, within a time limit.
//! [`Peer`] is what a request learns of its connection: the remote address and, with mutual
//! TLS, the names and fingerprint of the client's verified certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rempart_config::ServerTls;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The listener's TLS configuration, rebuilt when its files change.
#[derive(Debug)]
pub struct Tls {
    settings: ServerTls,
    current: RwLock<Arc<ServerConfig>>,
    /// Modification times of the files the configuration was built from.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

fn files(settings: &ServerTls) -> Vec<&Path> {
    let mut f = vec![settings.cert_file.as_path(), settings.key_file.as_path()];
    f.extend(settings.client_ca_file.as_deref());
    f.extend(settings.crl_files.iter().map(PathBuf::as_path));
    f
}

fn stamps(settings: &ServerTls) -> Vec<Option<SystemTime>> {
    files(settings)
        .into_iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

fn build(settings: &ServerTls) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.cert_file)
        .and_then(Iterator::collect)
        .map_err(|e| format!("`{}`: {e}", settings.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no certificate", settings.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .map_err(|e| format!("`{}`: {e}", settings.key_file.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("`{}`: {e}", ca.display()))? {
                let cert = cert.map_err(|e| format!("`{}`: {e}", ca.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("`{}`: not a CA certificate: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("`{}` holds no certificate", ca.display()));
            }
            let mut crls = Vec::new();
            for file in &settings.crl_files {
                let bytes = std::fs::read(file).map_err(|e| format!("`{}`: {e}", file.display()))?;
                if bytes.starts_with(b"-----BEGIN") {
                    for crl in CertificateRevocationListDer::pem_slice_iter(&bytes) {
                        crls.push(crl.map_err(|e| format!("`{}`: {e}", file.display()))?);
                    }
                } else {
                    crls.push(CertificateRevocationListDer::from(bytes));
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).with_crls(crls);
            let verifier = if settings.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("client certificates: {e}"))?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "`{}` and `{}`: {e}",
            settings.cert_file.display(),
            settings.key_file.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Tls {
    /// Builds the configuration, or says which file is wrong and why.
    pub fn load(settings: &ServerTls) -> Result<Tls, String> {
        let stamps = stamps(settings);
        Ok(Tls {
            current: RwLock::new(build(settings)?),
            settings: settings.clone(),
            stamps: Mutex::new(stamps),
        })
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the configuration if a file changed since the last build: `Ok(true)` if it was
    /// replaced, `Err` (the old one kept) if the new files do not load.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamps(&self.settings);
        let mut seen = self.stamps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *seen == now {
            return Ok(false);
        }
        // Remember the attempt either way: a broken file is reported once, not every poll.
        *seen = now;
        let config = build(&self.settings)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(true)
    }
}

/// A verified client certificate, as requests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Its subject's common names and its DNS, e-mail and URI alternative names.
    pub names: Vec<String>,
    /// Hex SHA-256 of the certificate.
    pub fingerprint: String,
}

impl ClientCert {
    /// Reads the names of a DER certificate (already verified by the handshake).
    pub fn from_der(der: &[u8]) -> ClientCert {
        let mut names = Vec::new();
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
            for cn in cert.subject().iter_common_name() {
                if let Ok(s) = cn.as_str() {
                    names.push(s.to_owned());
                }
            }
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for n in &san.value.general_names {
                    match n {
                        x509_parser::extensions::GeneralName::DNSName(s)
                        | x509_parser::extensions::GeneralName::RFC822Name(s)
                        | x509_parser::extensions::GeneralName::URI(s) => names.push((*s).to_owned()),
                        _ => {}
                    }
                }
            }
        }
        ClientCert {
            names,
            fingerprint: hex::encode(Sha256::digest(der)),
        }
    }
}

/// What a request knows of its connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client's certificate, verified against `client_ca_file`, when it sent one.
    pub cert: Option<Arc<ClientCert>>,
    /// Whether the connection is TLS.
    pub tls: bool,
}
