//! Wiring: builds the application state from settings (running the key ceremony
//! in development mode through `ca`), and serves HTTP with the CA upkeep beside it.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::activation::Activation;
use crate::auth::oidc::OidcVerifier;
use crate::auth::providers::ProviderRegistry;
use crate::ca::{self, CaError};
use crate::clock::SharedClock;
use crate::config::{ConfigError, Settings, TokenRole};
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{Hsm, HsmError};
use crate::journal::{Actor, JournalError};
use crate::pki::crl::CrlPublisher;
use crate::pki::publication::Publication;
pub use crate::state::{AppState, Services};
use crate::store::{Store, StoreError};

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
    Ca(#[from] CaError),
    #[error(transparent)]
    Tls(#[from] crate::api::tls::TlsError),
    #[error("no CA hierarchy in the database: run `sceau ca init` first")]
    NoCeremony,
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
            Self::Ca(e) => e.kind(),
            Self::Tls(e) => e.kind(),
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
    pub async fn build(
        #[cfg_attr(
            not(feature = "dev-idp"),
            expect(unused_mut, reason = "only the development provider adds to it")
        )]
        mut settings: Settings,
        clock: SharedClock,
    ) -> Result<Self, AppError> {
        #[cfg(feature = "dev-idp")]
        if settings.portal.dev_provider && settings.ca.dev_auto_init {
            crate::portal::dev_provider::configure(&mut settings);
        }
        let (ceremony_file, _) = ca::ceremony_file(&settings)?;
        // A bad policy file stops the start, naming the file and the field.
        let policies = Arc::new(ca::certificate_policies(&settings)?);
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
            ca::perform_ceremony(&settings, &store, &ceremony_hsm, &clock, false).await?;
            // The root token is at hand: issue the first ARL, so `/crl/root.crl` exists.
            ca::issue_arl(
                &settings,
                &store,
                &ceremony_hsm,
                &clock,
                &Actor::Task("sceau ca init"),
            )
            .await?;
        }
        let journal = ca::open_journal(&settings, &store, &hsm, &clock).await?;
        let publication = Publication::default();
        publication.replace(ca::published_certificates(&store).await?);
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
                let client_auth_ca = ca::active_client_auth_ca(&store).await?;
                if client_auth_ca.is_none() {
                    tracing::warn!(
                        "{}; the mutual-TLS listener trusts only server.tls.client_ca_files",
                        CaError::NoClientAuthCa("the recorded CA hierarchy has none")
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
        let seal_issuer = if ca::issuing_ca_terminating(&store).await? {
            tracing::warn!("the issuing CA was terminated: no certificate will be issued");
            None
        } else {
            Some(ca::issuer(&store, &hsm, &journal, &clock, policies.clone()).await?)
        };
        let ra = crate::ra::registry::Registry::new(
            store.clone(),
            journal.clone(),
            clock.clone(),
            policies.clone(),
            seal_issuer,
            match ca::client_certificate_issuer(&store, &hsm, &journal, &clock, &ceremony_file)
                .await
            {
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
        let ocsp = ca::ocsp_responder(&settings, &store, &hsm, &clock).await?;
        let tsa = ca::time_stamping_authority(&settings, &store, &hsm, &clock).await?;
        tsa.check_clock().await;
        ca::maintenance::retire_if_revoked(&tsa, &store).await?;
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
            state: AppState::new(Services {
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
            }),
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
        let ocsp_maintenance = tokio::spawn(ca::maintenance::run_ocsp_maintenance(
            self.state.clone(),
            stop_rx.clone(),
        ));
        let tsa_maintenance = tokio::spawn(ca::maintenance::run_tsa_maintenance(
            self.state.clone(),
            stop_rx.clone(),
        ));
        let portal_upkeep = tokio::spawn(crate::portal::run_upkeep(
            self.state.clone(),
            stop_rx.clone(),
        ));
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        // The portal is served on the plain listener only: the mutual-TLS
        // one asks every browser for a certificate.
        let pages = crate::portal::router(self.state.settings.clone())
            .map_err(|e| AppError::Internal(format!("the portal: {e}")))?;
        let plain = crate::api::serve_with(self.listener, self.state, pages, stopped(stop_rx));
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
        if let Err(e) = portal_upkeep.await {
            tracing::error!(error = %e, "the portal upkeep task ended abnormally");
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
