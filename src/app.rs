//! Wiring: builds the application state from settings, performs the key ceremony
//! when asked, opens the journal with the HSM audit key, and serves HTTP.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use der::{Decode, EncodePem};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::auth::activation::Activation;
use crate::auth::oidc::OidcVerifier;
use crate::auth::providers::ProviderRegistry;
use crate::clock::SharedClock;
use crate::config::{ConfigError, Settings, TokenRole};
use crate::crypto::SignatureAlgorithm;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{Hsm, HsmError, HsmSigner, KeyId};
use crate::journal::{CheckpointSigner, Journal, JournalError, JournalEvent};
use crate::pki::ceremony::{self, CeremonyError, CeremonyFile, CertifiedKey, Transcript};
use crate::pki::client_auth::{ClientAuthUrls, ClientCertificateIssuer};
use crate::pki::crl::{self, CrlError, CrlPublisher};
use crate::pki::issuance::Issuer;
use crate::pki::policy::{PolicyError, PolicySet};
use crate::pki::publication::{Publication, PublishedCertificate};
use crate::pki::serials::{self, CeremonySerials};
use crate::pki::signing::{self, Grant, ServiceKind, SigningError};
use crate::store::ca::{CaCertificate, CeremonyRecord, ServiceKey};
use crate::store::entities::KeyReference;
use crate::store::{Store, StoreError};

/// What every request handler can reach: one shared `Services`. Handlers and
/// middleware take the state by value for every request, so a clone is one
/// reference count, not one per service (a profile of the OCSP route under
/// load put 8% of the server's time in cloning and dropping the fields).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind `AppState`.
#[derive(Debug)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub store: Store,
    pub hsm: Arc<Hsm>,
    pub publication: Publication,
    pub journal: Journal,
    /// The certificate policies, checked at start-up.
    pub policies: Arc<PolicySet>,
    /// Activation of seal credentials: SADs, lockout.
    pub activation: Activation,
    /// Access tokens from registered identity providers.
    pub oidc: OidcVerifier,
    /// Organisations' identity providers: registration and removal.
    pub identity_providers: ProviderRegistry,
    /// The registration authority: requests, evidence, revocation; the only
    /// holder of the issuance engine.
    pub ra: crate::ra::registry::Registry,
    /// The CRLs of the issuing and client-auth CAs: the RA calls `publish_now`
    /// after a revocation; a background task polls for the rest.
    pub crl: CrlPublisher,
    /// The OCSP responder for the issuing CA.
    pub ocsp: crate::pki::ocsp::OcspResponder,
    /// The time-stamping authority (`POST /tsa`, and the seals' time-stamps).
    pub tsa: crate::pki::tsa::Tsa,
    /// Seals with the credentials' keys on the seal token.
    pub sealer: crate::seal::Sealer,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Ceremony(#[from] CeremonyError),
    #[error(transparent)]
    Serial(#[from] crate::pki::serials::SerialError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Tls(#[from] crate::api::tls::TlsError),
    #[error(transparent)]
    Crl(#[from] CrlError),
    #[error(transparent)]
    Termination(#[from] crate::pki::termination::TerminationError),
    #[error("no CA hierarchy in the database: run `sceau ca init` first")]
    NoCeremony,
    #[error(
        "a ceremony ('{name}', {at}) is already recorded in the database; run with --force to make a new hierarchy"
    )]
    CeremonyRecorded { name: String, at: String },
    #[error("the database holds no active {0} certificate or key")]
    Incomplete(&'static str),
    #[error(
        "no client-authentication CA: {0} (hierarchies made before it existed lack it; \
         a ceremony with a [client_auth] section makes one)"
    )]
    NoClientAuthCa(&'static str),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl HasErrorKind for AppError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Hsm(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::Ceremony(e) => e.kind(),
            Self::Policy(e) => e.kind(),
            Self::Tls(e) => e.kind(),
            Self::Crl(e) => e.kind(),
            Self::Termination(e) => e.kind(),
            Self::CeremonyRecorded { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}

/// The token roles a serving instance keeps open. The root's token is not among
/// them: after the ceremony it can be taken offline.
pub const SERVING_ROLES: [TokenRole; 3] =
    [TokenRole::Issuing, TokenRole::Services, TokenRole::Seal];
/// The token roles the key ceremony needs.
pub const CEREMONY_ROLES: [TokenRole; 3] =
    [TokenRole::Root, TokenRole::Issuing, TokenRole::Services];

/// A built application, bound to its port(s), not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The mutual-TLS listener and its configuration, when one is configured.
    tls: Option<(TcpListener, crate::api::tls::ReloadableConfig)>,
    /// The outbox worker, when notices are enabled.
    notifier: Option<crate::notify::Notifier>,
    state: AppState,
    port: u16,
}

impl Application {
    /// Connects the database and the HSM, opens the journal, loads the published
    /// certificates and binds the listener. In development mode (`ca.dev_auto_init`)
    /// it runs the key ceremony first when none was recorded.
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Self, AppError> {
        let (ceremony_file, _) = ceremony_file(&settings)?;
        // A bad policy file stops the start, naming the file and the field.
        let policies = Arc::new(certificate_policies(&settings)?);
        let store = Store::connect(&settings.database).await?;
        // Open the serving tokens first: a wrong module, token or PIN is the
        // first thing to report.
        let hsm = Arc::new(Hsm::connect(&settings.hsm, &SERVING_ROLES).await?);
        if store.latest_ceremony().await?.is_none() {
            if !settings.ca.dev_auto_init {
                return Err(AppError::NoCeremony);
            }
            tracing::warn!(
                "development mode: no CA yet, running the key ceremony automatically \
                 (in production, `sceau ca init` is an explicit step)"
            );
            let ceremony_hsm = Hsm::connect(&settings.hsm, &CEREMONY_ROLES).await?;
            perform_ceremony(&settings, &store, &ceremony_hsm, &clock, false).await?;
            // The root token is at hand: issue the first ARL, so `/crl/root.crl` exists.
            issue_arl(&settings, &store, &ceremony_hsm, &clock, "sceau ca init").await?;
        }
        let journal = open_journal(&settings, &store, &hsm, &clock).await?;
        let publication = Publication::default();
        publication.replace(published_certificates(&store).await?);
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .map_err(|source| AppError::Bind {
                address: settings.server.listen,
                source,
            })?;
        let port = local_port(&listener)?;
        let tls = match &settings.server.tls {
            None => None,
            Some(tls_settings) => {
                crate::api::tls::install_crypto_provider();
                let client_auth_ca = active_client_auth_ca(&store).await?;
                if client_auth_ca.is_none() {
                    tracing::warn!(
                        "{}; the mutual-TLS listener trusts only server.tls.client_ca_files",
                        AppError::NoClientAuthCa("the recorded CA hierarchy has none")
                    );
                }
                let config = crate::api::tls::ReloadableConfig::load(
                    tls_settings,
                    client_auth_ca.map(|c| c.der),
                    Some(store.clone()),
                )?;
                let tls_listener =
                    TcpListener::bind(tls_settings.listen)
                        .await
                        .map_err(|source| AppError::Bind {
                            address: tls_settings.listen,
                            source,
                        })?;
                Some((tls_listener, config))
            }
        };
        let oidc = OidcVerifier::new(store.clone(), clock.clone(), &settings.auth)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let activation = Activation::new(
            store.clone(),
            journal.clone(),
            clock.clone(),
            policies.clone(),
            settings.auth.clone(),
        );
        let identity_providers = ProviderRegistry::new(
            store.clone(),
            journal.clone(),
            clock.clone(),
            &settings.auth,
            settings.ca.dev_auto_init,
        );
        let vault = crate::ra::evidence::EvidenceVault::open(
            hsm.token(TokenRole::Services)?.clone(),
            format!(
                "{}-{}",
                ceremony_file.name,
                crate::ra::evidence::EvidenceVault::KEK_LABEL_SUFFIX
            ),
        )
        .await
        .map_err(|e| AppError::Internal(format!("evidence vault: {e}")))?;
        let notifier = if settings.notify.enabled {
            // Enrolment tokens are sealed by the vault's key: the outbox opens
            // them with it, only to build the message.
            let opener_vault = vault.clone();
            let secrets: crate::notify::SecretOpener = Arc::new(move |sealed, context| {
                let vault = opener_vault.clone();
                Box::pin(async move {
                    vault
                        .open_secret(&sealed, &context)
                        .await
                        .map_err(|e| e.to_string())
                })
            });
            Some(
                crate::notify::Notifier::new(
                    store.clone(),
                    journal.clone(),
                    clock.clone(),
                    settings.notify.clone(),
                    Some(secrets),
                )
                .map_err(|e| AppError::Internal(e.to_string()))?,
            )
        } else {
            None
        };
        let crl = CrlPublisher::new(
            store.clone(),
            journal.clone(),
            hsm.clone(),
            clock.clone(),
            settings.crl.clone(),
        );
        // A terminated issuing CA has no key: the service still starts, serving
        // its final CRL and OCSP responses, and issues nothing.
        let seal_issuer = if issuing_ca_terminating(&store).await? {
            tracing::warn!("the issuing CA was terminated: no certificate will be issued");
            None
        } else {
            Some(issuer(&store, &hsm, &journal, &clock, policies.clone()).await?)
        };
        let ra = crate::ra::registry::Registry::new(
            store.clone(),
            journal.clone(),
            clock.clone(),
            policies.clone(),
            seal_issuer,
            match client_certificate_issuer(&store, &hsm, &journal, &clock, &ceremony_file).await {
                Ok(client_issuer) => Some(client_issuer),
                Err(error) => {
                    tracing::warn!(%error, "no client certificates for activation from this CA");
                    None
                }
            },
            hsm.token(TokenRole::Seal)?.clone(),
            crl.clone(),
            vault,
            settings.ra.clone(),
            &settings.server.public_url,
            settings.notify.message_id_domain.clone(),
        );
        let ocsp = ocsp_responder(&settings, &store, &hsm, &clock).await?;
        let tsa = time_stamping_authority(&settings, &store, &hsm, &clock).await?;
        tsa.check_clock().await;
        retire_if_revoked(&tsa, &store).await?;
        let time_stamper = match &settings.seal.tsa_url {
            Some(url) => crate::seal::TimeStamper::External(
                crate::pki::tsa::TsaClient::new(
                    url,
                    std::time::Duration::from_secs(settings.seal.tsa_timeout_secs.max(1)),
                )
                .map_err(|e| AppError::Internal(e.to_string()))?,
            ),
            None => crate::seal::TimeStamper::Local(tsa.clone()),
        };
        let sealer = crate::seal::Sealer::new(
            store.clone(),
            journal.clone(),
            clock.clone(),
            activation.clone(),
            time_stamper,
            crate::seal::TokenKeys(hsm.token(TokenRole::Seal)?.clone()),
            settings.seal.clone(),
        );
        tracing::info!(
            ceremony = %ceremony_file.name,
            policies = policies.len(),
            port,
            "sceau is ready"
        );
        Ok(Self {
            listener,
            state: AppState(Arc::new(Services {
                settings: Arc::new(settings),
                clock,
                store,
                hsm,
                publication,
                journal,
                policies,
                activation,
                oidc,
                identity_providers,
                ra,
                crl,
                ocsp,
                tsa,
                sealer,
            })),
            tls,
            notifier,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mutual-TLS listener's port, when one is configured.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
            .map(|address| address.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains requests and closes the
    /// journal (flushing appends, signing a last checkpoint).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let journal = self.state.journal.clone();
        let grace = std::time::Duration::from_secs(self.state.settings.server.shutdown_grace_secs);
        // One shutdown request stops both listeners.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
            // An error means the sender is gone: stop too.
            let _ = receiver.wait_for(|stop| *stop).await;
        };
        let tls = self.tls.map(|(listener, config)| {
            let app = crate::api::router(self.state.clone());
            tokio::spawn(crate::api::tls::serve(
                listener,
                app,
                config,
                grace,
                stopped(stop_rx.clone()),
            ))
        });
        let notifier = self
            .notifier
            .map(|notifier| tokio::spawn(notifier.run(stop_rx.clone())));
        let sweeper = tokio::spawn(self.state.ra.clone().run_sweeps(stop_rx.clone()));
        let crl_publisher = tokio::spawn(self.state.crl.clone().run(stop_rx.clone()));
        let ocsp_maintenance =
            tokio::spawn(run_ocsp_maintenance(self.state.clone(), stop_rx.clone()));
        let tsa_maintenance =
            tokio::spawn(run_tsa_maintenance(self.state.clone(), stop_rx.clone()));
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let plain = crate::api::serve(self.listener, self.state, stopped(stop_rx));
        let (served, ()) = tokio::join!(plain, signal);
        let served = served.map_err(|source| AppError::Io {
            what: "serving HTTP".to_owned(),
            source,
        });
        if let Err(e) = ocsp_maintenance.await {
            tracing::error!(error = %e, "the OCSP maintenance task ended abnormally");
        }
        if let Err(e) = tsa_maintenance.await {
            tracing::error!(error = %e, "the TSA maintenance task ended abnormally");
        }
        if let Err(e) = sweeper.await {
            tracing::error!(error = %e, "the RA maintenance task ended abnormally");
        }
        if let Err(e) = crl_publisher.await {
            tracing::error!(error = %e, "the CRL publication task ended abnormally");
        }
        if let Some(notifier) = notifier
            && let Err(e) = notifier.await
        {
            tracing::error!(error = %e, "the notification worker ended abnormally");
        }
        if let Some(tls) = tls {
            match tls.await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    return Err(AppError::Io {
                        what: "serving mutual TLS".to_owned(),
                        source,
                    });
                }
                Err(e) => return Err(AppError::Internal(format!("TLS listener task: {e}"))),
            }
        }
        journal.shutdown().await?;
        served
    }
}

fn local_port(listener: &TcpListener) -> Result<u16, AppError> {
    Ok(listener
        .local_addr()
        .map_err(|source| AppError::Io {
            what: "reading the bound address".to_owned(),
            source,
        })?
        .port())
}

/// The journal's audit key: an HSM key on the services token.
#[derive(Debug)]
pub struct AuditKey(HsmSigner);

impl CheckpointSigner for AuditKey {
    fn key_id(&self) -> String {
        crate::crypto::spki_sha256(&self.0.key().public_key)
            .map(hex::encode)
            .unwrap_or_default()
    }

    fn public_key(&self) -> spki::SubjectPublicKeyInfoOwned {
        self.0.key().public_key.clone()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign_message(message).map_err(|e| e.to_string())
    }
}

/// Opens the journal with the active audit key from the database.
pub async fn open_journal(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<Journal, AppError> {
    let audit = store
        .active_service_key("audit")
        .await?
        .ok_or(AppError::Incomplete("audit"))?;
    let signer = hsm_signer(hsm, &audit.key).await?;
    Ok(Journal::open(
        store.clone(),
        &settings.journal,
        Arc::new(AuditKey(signer)),
        clock.clone(),
    )
    .await?)
}

async fn hsm_signer(hsm: &Hsm, key: &KeyReference) -> Result<HsmSigner, AppError> {
    let pool = hsm.token(key.token_role)?.clone();
    let id = KeyId::from_bytes(&key.key_id).ok_or_else(|| {
        AppError::Internal(format!("key id of {} is not 16 bytes", key.key_label))
    })?;
    let found = pool.clone().find_key(id).await?;
    Ok(HsmSigner::new(pool, found))
}

/// The issuance engine over the active issuing CA key. Only the RA is handed one.
pub async fn issuer(
    store: &Store,
    hsm: &Hsm,
    journal: &Journal,
    clock: &SharedClock,
    policies: Arc<PolicySet>,
) -> Result<Issuer, AppError> {
    let issuing = store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == "issuing")
        .ok_or(AppError::Incomplete("issuing"))?;
    let certificate = x509_cert::Certificate::from_der(&issuing.der)
        .map_err(|e| AppError::Internal(format!("stored issuing certificate: {e}")))?;
    let signer = hsm_signer(hsm, &issuing.key).await?;
    Ok(Issuer::new(
        policies,
        store.clone(),
        journal.clone(),
        clock.clone(),
        signer,
        certificate,
        hsm.token(TokenRole::Seal)?.clone(),
    ))
}

/// Whether the termination of the active issuing CA started.
pub async fn issuing_ca_terminating(store: &Store) -> Result<bool, AppError> {
    let issuing = store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == "issuing");
    Ok(match issuing {
        Some(ca) => store.termination(&ca.serial).await?.is_some(),
        None => false,
    })
}

/// `sceau ca terminate`: runs (or resumes) the approved termination of the
/// issuing CA with its own journal handle, on tokens that include the root's
/// (for the ARL) and the seal token (for the subscribers' keys).
pub async fn terminate_issuing_ca(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    actor: &str,
) -> Result<crate::pki::termination::TerminationReport, AppError> {
    let journal = open_journal(settings, store, hsm, clock).await?;
    let terminator = crate::pki::termination::Terminator {
        store,
        journal: &journal,
        hsm,
        clock,
        crl: &settings.crl,
        message_id_domain: &settings.notify.message_id_domain,
        actor,
    };
    let outcome = terminator.terminate().await;
    journal.shutdown().await?;
    Ok(outcome?)
}

/// The active client-authentication CA certificate, if the hierarchy has one.
pub async fn active_client_auth_ca(store: &Store) -> Result<Option<CaCertificate>, AppError> {
    let purpose = ceremony::KeyPurpose::ClientAuth.name();
    Ok(store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == purpose))
}

/// The client-certificate issuer over the active client-authentication CA key,
/// with the URLs of the ceremony file's `[client_auth]` section. Only the RA is
/// handed one. A hierarchy without that CA is reported, not a panic.
pub async fn client_certificate_issuer(
    store: &Store,
    hsm: &Hsm,
    journal: &Journal,
    clock: &SharedClock,
    ceremony_file: &CeremonyFile,
) -> Result<ClientCertificateIssuer, AppError> {
    let spec = ceremony_file
        .client_auth
        .as_ref()
        .ok_or(AppError::NoClientAuthCa(
            "the ceremony file has no [client_auth] section",
        ))?;
    let record = active_client_auth_ca(store)
        .await?
        .ok_or(AppError::NoClientAuthCa(
            "the recorded CA hierarchy has none",
        ))?;
    let certificate = x509_cert::Certificate::from_der(&record.der)
        .map_err(|e| AppError::Internal(format!("stored client-auth certificate: {e}")))?;
    let signer = hsm_signer(hsm, &record.key).await?;
    Ok(ClientCertificateIssuer::new(
        store.clone(),
        journal.clone(),
        clock.clone(),
        signer,
        certificate,
        ClientAuthUrls::from(spec),
    ))
}

/// The CA certificates to serve, by their stable names.
pub async fn published_certificates(store: &Store) -> Result<Vec<PublishedCertificate>, AppError> {
    let mut published = Vec::new();
    for certificate in store.active_ca_certificates().await? {
        let parsed = x509_cert::Certificate::from_der(&certificate.der).map_err(|e| {
            AppError::Internal(format!("stored {} certificate: {e}", certificate.purpose))
        })?;
        let pem = parsed
            .to_pem(der::pem::LineEnding::LF)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        published.push(PublishedCertificate {
            name: certificate.purpose.clone(),
            der: certificate.der,
            pem,
        });
    }
    Ok(published)
}

/// The key ceremony with everything around it: refuses when the database already
/// has one (unless forced), generates and certifies in the HSM, records the
/// result, writes the transcript file, and journals it before returning.
/// The ceremony file and its SHA-256; in development mode (`ca.dev_auto_init`)
/// with its URLs under `server.public_url`, so that the instance's
/// certificates point at the instance wherever it listens.
pub fn ceremony_file(settings: &Settings) -> Result<(CeremonyFile, String), AppError> {
    let (file, sha256) = CeremonyFile::load(&settings.ca.ceremony_file)?;
    if settings.ca.dev_auto_init {
        Ok((file.served_at(&settings.server.public_url), sha256))
    } else {
        Ok((file, sha256))
    }
}

/// The certificate policies; in development mode with their CRL, OCSP and
/// caIssuers URLs under `server.public_url`, as [`ceremony_file`].
pub fn certificate_policies(settings: &Settings) -> Result<PolicySet, AppError> {
    let policies = PolicySet::load_dir(&settings.ca.policies_dir)?;
    if settings.ca.dev_auto_init {
        Ok(policies.served_at(&settings.server.public_url))
    } else {
        Ok(policies)
    }
}

pub async fn perform_ceremony(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    force: bool,
) -> Result<Transcript, AppError> {
    if !force && let Some(previous) = store.latest_ceremony().await? {
        return Err(AppError::CeremonyRecorded {
            name: previous.name,
            at: crate::clock::format::rfc3339(previous.completed_at),
        });
    }
    let (file, file_sha256) = ceremony_file(settings)?;
    let serials = CeremonySerials::reserve(store, file.client_auth.is_some(), clock.now()).await?;
    let outcome = {
        let hsm = hsm.clone();
        let file = file.clone();
        let clock = clock.clone();
        tokio::task::spawn_blocking(move || {
            ceremony::run(&file, &file_sha256, &hsm, clock.as_ref(), force, serials)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??
    };
    let transcript_json = serde_json::to_vec_pretty(&outcome.transcript)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let now = time::OffsetDateTime::from(clock.now());
    let certificates = [&outcome.root, &outcome.issuing, &outcome.ocsp, &outcome.tsa]
        .into_iter()
        .chain(outcome.client_auth.as_ref())
        .map(|certified| ca_certificate(certified, now))
        .collect::<Result<Vec<_>, _>>()?;
    let audit_spki = der::Encode::to_der(&outcome.audit.public_key)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    store
        .record_ceremony(
            &CeremonyRecord {
                id: uuid::Uuid::new_v4().to_string(),
                name: file.name.clone(),
                file_sha256: outcome.transcript.ceremony_file_sha256.clone(),
                completed_at: now,
                transcript: transcript_json.clone(),
            },
            &certificates,
            &[ServiceKey {
                purpose: "audit".to_owned(),
                key: KeyReference {
                    token_role: TokenRole::Services,
                    key_id: outcome.audit.id.as_bytes().to_vec(),
                    key_label: outcome.audit.label.clone(),
                },
                algorithm: outcome.audit.algorithm.to_string(),
                public_key: audit_spki,
                active: true,
                created_at: now,
            }],
        )
        .await?;
    let transcript_file = write_transcript(settings, &file.name, now, &transcript_json)?;

    let journal = open_journal(settings, store, hsm, clock).await?;
    let details =
        serde_json::to_value(&outcome.transcript).map_err(|e| AppError::Internal(e.to_string()))?;
    let index = journal
        .append(JournalEvent::new("ca.ceremony", "sceau ca init", details))
        .await?;
    journal.checkpoint().await?;
    journal.shutdown().await?;
    tracing::info!(journal_index = index, transcript = %transcript_file.display(), "ceremony recorded");
    Ok(outcome.transcript)
}

fn ca_certificate(
    certified: &CertifiedKey,
    now: time::OffsetDateTime,
) -> Result<CaCertificate, AppError> {
    let der = certified
        .der()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let validity = &certified.certificate.tbs_certificate.validity;
    Ok(CaCertificate {
        serial: hex::encode(
            certified
                .certificate
                .tbs_certificate
                .serial_number
                .as_bytes(),
        ),
        purpose: certified.purpose.name().to_owned(),
        key: KeyReference {
            token_role: certified.purpose.token_role(),
            key_id: certified.key.id.as_bytes().to_vec(),
            key_label: certified.key.label.clone(),
        },
        sha256: hex::encode(Sha256::digest(&der)),
        der,
        not_before: validity.not_before.to_system_time().into(),
        not_after: validity.not_after.to_system_time().into(),
        active: true,
        created_at: now,
    })
}

fn write_transcript(
    settings: &Settings,
    name: &str,
    at: time::OffsetDateTime,
    json: &[u8],
) -> Result<PathBuf, AppError> {
    let dir = &settings.ca.transcript_dir;
    let io = |what: String| move |source| AppError::Io { what, source };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let stamp = at.unix_timestamp();
    let path = dir.join(format!("ceremony-{name}-{stamp}.json"));
    std::fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;
    Ok(path)
}

/// Renews the delegated OCSP responder certificate with a new key, and journals it
/// (`sceau ca renew-ocsp`, with its own journal handle).
pub async fn renew_ocsp_responder(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<CaCertificate, AppError> {
    let journal = open_journal(settings, store, hsm, clock).await?;
    let renewed = renew_ocsp_responder_in(
        settings,
        store,
        hsm,
        clock,
        &journal,
        ("ca.ocsp_responder_renewed", "sceau ca renew-ocsp"),
    )
    .await;
    journal.shutdown().await?;
    renewed
}

/// The renewal itself, journaled on `journal` as `(event, actor)`.
async fn renew_ocsp_responder_in(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    journal: &Journal,
    (event, actor): (&str, &str),
) -> Result<CaCertificate, AppError> {
    renew_service_certificate(
        settings,
        store,
        hsm,
        clock,
        journal,
        ceremony::KeyPurpose::Ocsp,
        (event, actor),
    )
    .await
}

/// A new key and certificate for one of the issuing CA's services (OCSP
/// responder, time-stamping unit), recorded as the active one and journaled
/// as `(event, actor)`. Refused once the issuing CA's termination started.
async fn renew_service_certificate(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    journal: &Journal,
    purpose: ceremony::KeyPurpose,
    (event, actor): (&str, &str),
) -> Result<CaCertificate, AppError> {
    let (file, _) = ceremony_file(settings)?;
    let issuing_record = store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == "issuing")
        .ok_or(AppError::Incomplete("issuing"))?;
    if store.termination(&issuing_record.serial).await?.is_some() {
        return Err(AppError::Internal(format!(
            "the issuing CA was terminated: it certifies no new {} key",
            purpose.name()
        )));
    }
    let issuing_signer = hsm_signer(hsm, &issuing_record.key).await?;
    let issuing = CertifiedKey {
        purpose: ceremony::KeyPurpose::Issuing,
        key: issuing_signer.key().clone(),
        certificate: x509_cert::Certificate::from_der(&issuing_record.der)
            .map_err(|e| AppError::Internal(e.to_string()))?,
    };
    let now = clock.now();
    let service = match purpose {
        ceremony::KeyPurpose::Ocsp => ServiceKind::OcspResponder,
        _ => ServiceKind::TimeStampingUnit,
    };
    // The CA operations renew their services' certificates: the one place
    // such a certificate is granted after the ceremony.
    let grant = Grant::service_renewal(service, actor.to_owned());
    let serial = serials::reserve(store, grant.kind(), now).await?;
    let (grant, outcome) = {
        let hsm = hsm.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = ceremony::issue_service_certificate(
                (&grant, serial),
                &file,
                &hsm,
                &issuing,
                now,
                purpose,
            );
            (grant, outcome)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
    };
    let renewed = match outcome {
        Ok(renewed) => renewed,
        Err(CeremonyError::Signing(SigningError::Lint { kind, findings })) => {
            signing::journal_refusal(
                journal,
                &grant,
                serde_json::json!({ "issuer_serial": issuing_record.serial }),
                &findings,
            )
            .await?;
            return Err(CeremonyError::Signing(SigningError::Lint { kind, findings }).into());
        }
        Err(e) => return Err(e.into()),
    };
    let record = ca_certificate(&renewed, now.into())?;
    store.replace_ca_certificate(&record).await?;
    journal
        .append(JournalEvent::new(
            event,
            actor,
            serde_json::json!({
                "serial": record.serial,
                "sha256": record.sha256,
                "key_id": hex::encode(&record.key.key_id),
                "not_after": crate::clock::format::rfc3339(record.not_after),
            }),
        ))
        .await?;
    Ok(record)
}

/// Issues a new time-stamping unit key and certificate (`sceau ca renew-tsu`),
/// journaled `ca.tsu_renewed`. Serving instances switch to it at their next
/// TSA maintenance pass (`tsa.clock_sync_check_secs`).
pub async fn renew_time_stamping_unit(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<CaCertificate, AppError> {
    let journal = open_journal(settings, store, hsm, clock).await?;
    let renewed = renew_service_certificate(
        settings,
        store,
        hsm,
        clock,
        &journal,
        ceremony::KeyPurpose::Tsa,
        ("ca.tsu_renewed", "sceau ca renew-tsu"),
    )
    .await;
    journal.shutdown().await?;
    renewed
}

/// The active certificate record of a service key (`ocsp`, `tsa`).
async fn active_service_record(
    store: &Store,
    purpose: ceremony::KeyPurpose,
) -> Result<CaCertificate, AppError> {
    store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == purpose.name())
        .ok_or(AppError::Incomplete(purpose.name()))
}

/// A service key's record, its certificate parsed and its signer found in the HSM.
async fn service_signer(
    record: &CaCertificate,
    hsm: &Hsm,
) -> Result<(HsmSigner, x509_cert::Certificate), AppError> {
    let certificate = x509_cert::Certificate::from_der(&record.der)
        .map_err(|e| AppError::Internal(format!("stored {} certificate: {e}", record.purpose)))?;
    Ok((hsm_signer(hsm, &record.key).await?, certificate))
}

/// The time-stamping unit over a `tsa` certificate record, with the CA
/// certificates between it and the root (its issuing CA) for tokens that ask
/// for certificates.
async fn time_stamping_unit(
    record: &CaCertificate,
    store: &Store,
    hsm: &Hsm,
) -> Result<crate::pki::tsa::TimeStampingUnit, AppError> {
    let (signer, certificate) = service_signer(record, hsm).await?;
    let mut chain = Vec::new();
    for ca in store.active_ca_certificates().await? {
        if ca.purpose != "issuing" {
            continue;
        }
        let parsed = x509_cert::Certificate::from_der(&ca.der)
            .map_err(|e| AppError::Internal(format!("stored issuing CA certificate: {e}")))?;
        if parsed.tbs_certificate.subject == certificate.tbs_certificate.issuer {
            chain.push(parsed);
        }
    }
    crate::pki::tsa::TimeStampingUnit::new(signer, certificate, chain)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// The TSA under the policy of `tsa.policy_file`, signing with the active unit.
pub async fn time_stamping_authority(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<crate::pki::tsa::Tsa, AppError> {
    let policy = crate::pki::tsa::TsaPolicy::load(&settings.tsa.policy_file)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(crate::pki::tsa::Tsa::new(
        store.clone(),
        clock.clone(),
        policy,
        settings.tsa.clone(),
        time_stamping_unit(
            &active_service_record(store, ceremony::KeyPurpose::Tsa).await?,
            store,
            hsm,
        )
        .await?,
    ))
}

/// Retires the TSA once its unit's certificate is revoked (`sceau ca
/// terminate`, run by another process, revokes it).
async fn retire_if_revoked(tsa: &crate::pki::tsa::Tsa, store: &Store) -> Result<(), AppError> {
    if tsa.is_retired() {
        return Ok(());
    }
    let serial = tsa.unit().serial().to_owned();
    if !store
        .unrevoked_service_certificates()
        .await?
        .contains(&serial)
    {
        tsa.retire();
    }
    Ok(())
}

/// Every `tsa.clock_sync_check_secs`: checks the clock, retires the TSA once
/// its unit is revoked, and switches to the active unit when another process
/// renewed it.
async fn run_tsa_maintenance(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(state.settings.tsa.clock_sync_check_secs.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        state.tsa.check_clock().await;
        if let Err(error) = retire_if_revoked(&state.tsa, &state.store).await {
            tracing::error!(error = %crate::error::chain(&error), "reading the TSU's revocation failed");
        }
        // The HSM is asked for the key only when another process renewed the unit.
        let renewed = match active_service_record(&state.store, ceremony::KeyPurpose::Tsa).await {
            Ok(record) if record.serial != state.tsa.unit().serial() => {
                time_stamping_unit(&record, &state.store, &state.hsm)
                    .await
                    .map(Some)
            }
            Ok(_) => Ok(None),
            Err(error) => Err(error),
        };
        match renewed {
            Ok(Some(unit)) => {
                tracing::info!(serial = %unit.serial(), "the TSA now signs with a new unit");
                state.tsa.replace_unit(unit);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(error = %crate::error::chain(&error), "reading the time-stamping unit failed");
            }
        }
    }
}

/// Issues the root's CRL (the ARL) with the root token, stores it and journals
/// it (`arl.published`): a ceremony step, since the root token may be offline.
pub async fn issue_arl(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    actor: &str,
) -> Result<crl::Published, AppError> {
    let journal = open_journal(settings, store, hsm, clock).await?;
    let published = crl::publish_arl(store, &journal, hsm, clock, &settings.crl, actor).await;
    journal.shutdown().await?;
    Ok(published?)
}

/// The responder key over the active `ocsp` certificate record.
async fn ocsp_responder_key(
    store: &Store,
    hsm: &Hsm,
) -> Result<crate::pki::ocsp::ResponderKey, AppError> {
    let record = active_service_record(store, ceremony::KeyPurpose::Ocsp).await?;
    let (signer, certificate) = service_signer(&record, hsm).await?;
    Ok(crate::pki::ocsp::ResponderKey::new(signer, certificate))
}

/// The OCSP responder for the active issuing CA, signing with the active
/// delegated responder key (on the services token).
pub async fn ocsp_responder(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<crate::pki::ocsp::OcspResponder, AppError> {
    let issuing = store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == "issuing")
        .ok_or(AppError::Incomplete("issuing"))?;
    let certificate = x509_cert::Certificate::from_der(&issuing.der)
        .map_err(|e| AppError::Internal(format!("stored issuing certificate: {e}")))?;
    let served = crate::pki::ocsp::ServedCa::new("issuing", &certificate)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(crate::pki::ocsp::OcspResponder::new(
        store.clone(),
        clock.clone(),
        settings.ocsp.clone(),
        vec![served],
        ocsp_responder_key(store, hsm).await?,
    ))
}

/// One maintenance pass: renews the responder certificate when it is within the
/// ceremony file's `ocsp.renew_before_days` of expiry (journaled as
/// `ocsp.responder_renewed`), and makes the responder use the active certificate
/// (which another instance may have renewed). Returns whether the key changed.
pub async fn maintain_ocsp_responder(state: &AppState) -> Result<bool, AppError> {
    // The certificate would come from a CA whose key is gone or going.
    if issuing_ca_terminating(&state.store).await? {
        return Ok(false);
    }
    let (file, _) = ceremony_file(&state.settings)?;
    let renew_before = std::time::Duration::from_secs(
        u64::from(file.ocsp.renew_before_days.unwrap_or(0)) * 86_400,
    );
    let current = ocsp_responder_key(&state.store, &state.hsm).await?;
    if current.not_after() <= state.clock.now() + renew_before {
        let record = renew_ocsp_responder_in(
            &state.settings,
            &state.store,
            &state.hsm,
            &state.clock,
            &state.journal,
            ("ocsp.responder_renewed", "sceau ocsp maintenance"),
        )
        .await?;
        tracing::info!(serial = %record.serial, "OCSP responder certificate renewed");
    }
    let active = ocsp_responder_key(&state.store, &state.hsm).await?;
    if active.serial() == state.ocsp.key().serial() {
        return Ok(false);
    }
    tracing::info!(serial = %active.serial(), "OCSP responder now signs with a new certificate");
    state.ocsp.replace_key(active);
    Ok(true)
}

/// Runs [`maintain_ocsp_responder`] every `ocsp.maintenance_interval_secs` until stopped.
async fn run_ocsp_maintenance(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every =
        std::time::Duration::from_secs(state.settings.ocsp.maintenance_interval_secs.max(1));
    loop {
        if let Err(error) = maintain_ocsp_responder(&state).await {
            tracing::error!(error = %crate::error::chain(&error), "OCSP responder maintenance failed");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
