//! The mutual-TLS listener (rustls, TLS 1.2 and 1.3, the ring provider installed
//! explicitly): client certificates are checked at the handshake against the
//! configured client CAs and their CRLs (expired, revoked, unknown: refused), the
//! CRLs are re-read periodically, and the peer chain reaches handlers as a
//! request extension. A client may also connect without a certificate (to present
//! an access token instead); routes that need one say so.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::mtls::PeerCertificates;
use crate::config::TlsSettings;

/// Marks requests that came in over the mutual-TLS listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsConnection;

/// The handshake must finish within this, or the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

impl crate::error::HasErrorKind for TlsError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Internal
    }
}

/// The one crypto provider sceau uses for TLS.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process default, so any rustls user in the process
/// (the OIDC client too) agrees on it. Calling it twice is harmless.
pub fn install_crypto_provider() {
    let _already = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the server configuration from the files named in `settings`.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let file_error = |what, path: &std::path::Path, reason: String| TlsError::File {
        what,
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&settings.certificate_file)
        .map_err(|e| {
            file_error(
                "server certificate",
                &settings.certificate_file,
                e.to_string(),
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            file_error(
                "server certificate",
                &settings.certificate_file,
                e.to_string(),
            )
        })?;
    if chain.is_empty() {
        return Err(file_error(
            "server certificate",
            &settings.certificate_file,
            "no CERTIFICATE block".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .map_err(|e| file_error("server key", &settings.key_file, e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for path in &settings.client_ca_files {
        for certificate in CertificateDer::pem_file_iter(path)
            .map_err(|e| file_error("client CA", path, e.to_string()))?
        {
            let certificate =
                certificate.map_err(|e| file_error("client CA", path, e.to_string()))?;
            roots
                .add(certificate)
                .map_err(|e| file_error("client CA", path, e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Config(
            "server.tls.client_ca_files names no client CA".to_owned(),
        ));
    }
    let mut crls = Vec::new();
    for path in &settings.client_crl_files {
        let bytes =
            std::fs::read(path).map_err(|e| file_error("client CRL", path, e.to_string()))?;
        if bytes.starts_with(b"-----BEGIN") {
            for crl in CertificateRevocationListDer::pem_slice_iter(&bytes) {
                crls.push(crl.map_err(|e| file_error("client CRL", path, e.to_string()))?);
            }
        } else {
            crls.push(CertificateRevocationListDer::from(bytes));
        }
    }
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        // The CRLs come from the client CAs themselves; a certificate whose
        // status no CRL gives is refused (the builder's default).
        .only_check_end_entity_revocation()
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The configuration in use; swapped when the CRLs are read again.
#[derive(Debug, Clone)]
pub struct ReloadableConfig {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    settings: TlsSettings,
}

impl ReloadableConfig {
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(server_config(settings)?))),
            settings: settings.clone(),
        })
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files again; on failure the previous configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(server_config(&self.settings)?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }
}

/// Serves `app` over mutual TLS on `listener` until `shutdown`, re-reading the
/// CRLs every `crl_refresh_secs`; in-flight connections get `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ReloadableConfig,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresh = Duration::from_secs(config.settings.crl_refresh_secs.max(1));
    let reloader = {
        let config = config.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh).await;
                match config.reload() {
                    Ok(()) => tracing::debug!("client CRLs re-read"),
                    Err(error) => {
                        tracing::error!(%error, "re-reading the client CRLs failed; keeping the previous ones")
                    }
                }
            }
        })
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a TLS connection failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = TlsAcceptor::from(config.current());
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let chain: Option<PeerCertificates> =
                tls.get_ref().1.peer_certificates().map(|c| {
                    PeerCertificates(c.iter().map(|cert| cert.as_ref().to_vec()).collect())
                });
            let service = app.map_request(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(TlsConnection);
                    if let Some(chain) = &chain {
                        request.extensions_mut().insert(chain.clone());
                    }
                    request
                },
            );
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(tls),
                TowerToHyperService::new(service),
            );
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "TLS connection ended with an error");
            }
        });
    }
    reloader.abort();
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("TLS listener stopped"),
        () = tokio::time::sleep(grace) => tracing::warn!("TLS connections still open after the grace period: closing"),
    }
    Ok(())
}
