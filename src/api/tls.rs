//! The mutual-TLS listener (rustls, TLS 1.2 and 1.3, the ring provider installed
//! explicitly): client certificates are checked at the handshake against the
//! configured client CAs and their CRLs (expired, revoked, unknown, or a CRL
//! past its nextUpdate: refused) and against sceau's own client-authentication
//! CA from the store with the CRL sceau last published for it; the CRLs are
//! re-read periodically, and the peer chain reaches handlers as a request
//! extension. The handshake's check is the first one only: kept-alive and
//! resumed connections never repeat it, so each request checks the
//! certificate's standing in the database again (`auth::mtls`). A client may also connect without a certificate (to present
//! an access token instead); routes that need one say so.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use der::Decode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use x509_cert::name::Name;

use crate::auth::mtls::PeerCertificates;
use crate::config::TlsSettings;
use crate::store::Store;

/// The purpose under which the client-authentication CA's CRLs are stored.
const CLIENT_AUTH_CRL: &str = "client-auth";

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

/// Builds the server configuration from the files named in `settings` and, when
/// the CA hierarchy has one, the client-authentication CA's certificate (DER,
/// from the store) with the latest CRL sceau published for it: certificates it
/// issued are accepted too, unless that CRL lists them.
pub fn server_config(
    settings: &TlsSettings,
    client_auth_ca: Option<&[u8]>,
    client_auth_crl: Option<&[u8]>,
) -> Result<ServerConfig, TlsError> {
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
    if roots.is_empty() && client_auth_ca.is_none() {
        return Err(TlsError::Config(
            "server.tls.client_ca_files names no client CA, and the CA hierarchy has no \
             client-authentication CA"
                .to_owned(),
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
    // The configured CAs: their CRLs come from the CAs themselves, and a
    // certificate whose status no CRL gives is refused (the builder's default),
    // as is one whose CRL is past its nextUpdate: a stale CRL is no CRL.
    let configured = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(crls.clone())
                .only_check_end_entity_revocation()
                .enforce_revocation_expiration()
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?,
        )
    };
    let own = match client_auth_ca {
        None => None,
        Some(der) => {
            if let Some(crl) = client_auth_crl {
                crls.push(CertificateRevocationListDer::from(crl.to_vec()));
            }
            Some(own_client_ca_verifier(
                der,
                crls,
                client_auth_crl.is_some(),
                provider.clone(),
            )?)
        }
    };
    let verifier: Arc<dyn ClientCertVerifier> = match (configured, own) {
        (Some(configured), None) => configured,
        (None, Some((own, _))) => own,
        (Some(configured), Some((own, own_subject))) => {
            Arc::new(ClientCaVerifier::new(configured, own, own_subject))
        }
        (None, None) => {
            return Err(TlsError::Config("no client CA".to_owned()));
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Each of `settings.client_crl_files` with whether every CRL in it is still
/// current at `now` (before its nextUpdate) and readable: what `/readyz` reports.
pub fn client_crl_freshness(
    settings: &TlsSettings,
    now: std::time::SystemTime,
) -> Vec<(String, bool)> {
    settings
        .client_crl_files
        .iter()
        .map(|path| {
            let fresh = std::fs::read(path).ok().is_some_and(|bytes| {
                let ders: Vec<Vec<u8>> = if bytes.starts_with(b"-----BEGIN") {
                    CertificateRevocationListDer::pem_slice_iter(&bytes)
                        .map(|crl| crl.map(|crl| crl.as_ref().to_vec()))
                        .collect::<Result<_, _>>()
                        .unwrap_or_default()
                } else {
                    vec![bytes]
                };
                !ders.is_empty()
                    && ders.iter().all(|der| {
                        x509_cert::crl::CertificateList::from_der(der).is_ok_and(|crl| {
                            crl.tbs_cert_list
                                .next_update
                                .is_none_or(|next| now < next.to_system_time())
                        })
                    })
            });
            (path.display().to_string(), fresh)
        })
        .collect()
}

/// The verifier for sceau's own client-authentication CA, the trust anchor
/// itself (not the root: seal certificates under the issuing CA must not
/// authenticate), with its subject. With the CRL sceau published for it
/// (`has_own_crl`), a certificate it lists is refused as revoked. Before the
/// first one is published the status is not checked here; each request's
/// database check still refuses a revoked certificate. Its nextUpdate is not
/// enforced: the publisher renews it, and the database is the authority.
fn own_client_ca_verifier(
    der: &[u8],
    crls: Vec<CertificateRevocationListDer<'static>>,
    has_own_crl: bool,
    provider: Arc<CryptoProvider>,
) -> Result<(Arc<dyn ClientCertVerifier>, Name), TlsError> {
    let subject = x509_cert::Certificate::from_der(der)
        .map_err(|e| TlsError::Config(format!("the client-authentication CA certificate: {e}")))?
        .tbs_certificate
        .subject;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(der.to_vec()))
        .map_err(|e| TlsError::Config(format!("the client-authentication CA certificate: {e}")))?;
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .allow_unauthenticated();
    if !has_own_crl {
        builder = builder.allow_unknown_revocation_status();
    }
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok((verifier, subject))
}

/// Both kinds of client CA on one listener, each with its own revocation
/// rule: a certificate whose issuer is the client-authentication CA goes to
/// that CA's verifier, any other to the configured CAs'.
#[derive(Debug)]
struct ClientCaVerifier {
    configured: Arc<dyn ClientCertVerifier>,
    own: Arc<dyn ClientCertVerifier>,
    own_subject: Name,
    hints: Vec<DistinguishedName>,
}

impl ClientCaVerifier {
    fn new(
        configured: Arc<dyn ClientCertVerifier>,
        own: Arc<dyn ClientCertVerifier>,
        own_subject: Name,
    ) -> Self {
        let mut hints = configured.root_hint_subjects().to_vec();
        hints.extend_from_slice(own.root_hint_subjects());
        Self {
            configured,
            own,
            own_subject,
            hints,
        }
    }
}

impl ClientCertVerifier for ClientCaVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // A client may connect without a certificate and present a token.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let certificate = x509_cert::Certificate::from_der(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if certificate.tbs_certificate.issuer == self.own_subject {
            self.own.verify_client_cert(end_entity, intermediates, now)
        } else {
            self.configured
                .verify_client_cert(end_entity, intermediates, now)
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.configured.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.configured.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.configured.supported_verify_schemes()
    }
}

/// The configuration in use; swapped when the CRLs are read again.
#[derive(Debug, Clone)]
pub struct ReloadableConfig {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    settings: TlsSettings,
    /// The client-authentication CA's certificate (DER), fixed for the process.
    client_auth_ca: Option<Vec<u8>>,
    /// Where the client-authentication CA's published CRLs are read.
    store: Option<Store>,
}

impl ReloadableConfig {
    pub fn load(
        settings: &TlsSettings,
        client_auth_ca: Option<Vec<u8>>,
        store: Option<Store>,
    ) -> Result<Self, TlsError> {
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(server_config(
                settings,
                client_auth_ca.as_deref(),
                None,
            )?))),
            settings: settings.clone(),
            client_auth_ca,
            store,
        })
    }

    /// The latest CRL sceau published for its client-authentication CA.
    async fn published_client_auth_crl(&self) -> Result<Option<Vec<u8>>, TlsError> {
        let (Some(store), Some(_)) = (&self.store, &self.client_auth_ca) else {
            return Ok(None);
        };
        store
            .latest_crl(CLIENT_AUTH_CRL)
            .await
            .map(|crl| crl.map(|crl| crl.der))
            .map_err(|e| TlsError::Config(format!("reading the client-auth CRL: {e}")))
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files and the published CRL again; on failure the previous
    /// configuration stays.
    pub async fn reload(&self) -> Result<(), TlsError> {
        let own_crl = self.published_client_auth_crl().await?;
        let fresh = Arc::new(server_config(
            &self.settings,
            self.client_auth_ca.as_deref(),
            own_crl.as_deref(),
        )?);
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
                match config.reload().await {
                    Ok(()) => tracing::debug!("client CRLs re-read"),
                    Err(error) => {
                        tracing::error!(%error, "re-reading the client CRLs failed; keeping the previous ones")
                    }
                }
                tokio::time::sleep(refresh).await;
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
