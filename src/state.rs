//! The application's state: every service a request handler or a background
//! task can reach, behind one shared reference. Built by `app`, read by `api`.

use std::sync::Arc;

use crate::auth::activation::Activation;
use crate::auth::oidc::OidcVerifier;
use crate::auth::providers::ProviderRegistry;
use crate::ca::ServingCa;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::hsm::Hsm;
use crate::journal::Journal;
use crate::pki::crl::CrlPublisher;
use crate::pki::policy::PolicySet;
use crate::pki::publication::Publication;
use crate::store::Store;

/// What every request handler can reach: one shared `Services`. Handlers and
/// middleware take the state by value for every request, so a clone is one
/// reference count, not one per service (a profile of the OCSP route under
/// load put 8% of the server's time in cloning and dropping the fields).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

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

/// The serving instance's CA parts, for the CA upkeep (`ca::maintenance`).
impl ServingCa for AppState {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn hsm(&self) -> &Hsm {
        &self.hsm
    }

    fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn journal(&self) -> &Journal {
        &self.journal
    }

    fn ocsp(&self) -> &crate::pki::ocsp::OcspResponder {
        &self.ocsp
    }

    fn tsa(&self) -> &crate::pki::tsa::Tsa {
        &self.tsa
    }
}
