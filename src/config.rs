//! Typed settings: a TOML file plus `SCEAU_*` environment overrides, validated once.
//! Secrets (PINs, database passwords) are wrapped so they never print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use crate::error::{ErrorKind, HasErrorKind};

mod portal;
mod staff;
pub use portal::{Assurance, PortalProvider, PortalSettings};
pub use sceau_core::{Callers, TokenRole};
pub use sceau_hsm::settings::{
    DEFAULT_SOFTHSM_MODULE, HsmSettings, PinError, PinSource, TokenRoles, TokenSettings,
};
pub use sceau_store::{DatabaseBackend, DatabaseSettings};
pub use staff::{SignIn, StaffMember, StaffRoster};

/// Everything that can be wrong with the configuration, each naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} not found")]
    FileMissing { path: PathBuf },
    #[error("configuration is invalid: {0}")]
    Parse(String),
    #[error("setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

impl From<sceau_store::UnknownBackend> for ConfigError {
    fn from(error: sceau_store::UnknownBackend) -> Self {
        Self::Invalid {
            setting: "database.url",
            reason: error.to_string(),
        }
    }
}

impl HasErrorKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The whole configuration of one sceau instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the instance keeps its local state (SQLite file, SoftHSM tokens in dev, transcripts).
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub hsm: HsmSettings,
    pub journal: JournalSettings,
    pub ca: CaSettings,
    pub auth: AuthSettings,
    pub notify: NotifySettings,
    pub ra: RaSettings,
    pub crl: CrlSettings,
    pub ocsp: OcspSettings,
    pub tsa: TsaSettings,
    pub seal: SealSettings,
    pub portal: PortalSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("var"),
            server: ServerSettings::default(),
            log: LogSettings::default(),
            database: DatabaseSettings::default(),
            hsm: HsmSettings::default(),
            journal: JournalSettings::default(),
            ca: CaSettings::default(),
            auth: AuthSettings::default(),
            notify: NotifySettings::default(),
            ra: RaSettings::default(),
            crl: CrlSettings::default(),
            ocsp: OcspSettings::default(),
            tsa: TsaSettings::default(),
            seal: SealSettings::default(),
            portal: PortalSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the public HTTP listener binds to; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The externally visible base URL of the public endpoints.
    pub public_url: String,
    /// Largest request body accepted, in bytes (413 above it).
    pub body_limit_bytes: usize,
    /// How long in-flight requests may run after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// The mutual-TLS listener for seal clients; absent: none.
    pub tls: Option<TlsSettings>,
}

/// The mutual-TLS listener: the server's certificate, and the CAs (with their
/// CRLs) whose client certificates may be presented. A client certificate still
/// has to be registered as an activation credential to act.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// The server certificate chain, PEM, leaf first.
    pub certificate_file: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that issue client certificates.
    pub client_ca_files: Vec<PathBuf>,
    /// Their CRLs (PEM or DER). A client certificate whose status no CRL gives
    /// is refused.
    pub client_crl_files: Vec<PathBuf>,
    /// How often the CRL files are read again.
    #[serde(default = "default_crl_refresh_secs")]
    pub crl_refresh_secs: u64,
}

fn default_crl_refresh_secs() -> u64 {
    300
}

/// Activation of seal credentials.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Consecutive counted failures that lock a credential.
    pub max_failed_activations: u32,
    /// How long a SAD may be used.
    pub sad_lifetime_secs: u64,
    /// How long after its issue a SAD may still be used, however often it is
    /// extended (CSC `credentials/extendTransaction`).
    pub sad_max_lifetime_secs: u64,
    /// The most signatures one SAD may allow.
    pub max_signatures_per_sad: u32,
    /// Refusals journaled per principal and minute for callers with no right to the
    /// credential; beyond, they are refused without a journal entry each.
    pub stranger_refusals_per_minute: u32,
    /// The back office's identity providers (RA operators, CA administrators,
    /// auditors, RCCS). Organisations' own providers are registered in the database.
    pub identity_providers: Vec<IdentityProviderSettings>,
    /// The registered staff (`[[auth.staff]]`): each person in a trusted role,
    /// his identity (name, birth date) and his back-office sign-ins. Staff roles
    /// a token claims are given only to these sign-ins.
    pub staff: StaffRoster,
    /// How long discovery and JWKS are trusted without refetching; past it, an
    /// unreachable provider means its tokens are refused.
    pub oidc_cache_secs: u64,
    /// At most one refetch per provider this often when a token names an unknown key.
    pub oidc_refetch_secs: u64,
    /// Clock skew allowed on exp/nbf/iat, at most 60 s.
    pub token_leeway_secs: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP: only for a relay on loopback or a trusted network.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// The e-mail notices: the outbox worker and its SMTP relay.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Runs the delivery worker; notices are written to the outbox either way.
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security: SmtpSecurity,
    /// The From address of every notice.
    pub from: String,
    /// The right-hand side of each notice's Message-ID.
    pub message_id_domain: String,
    /// How often the outbox is read for due notices.
    pub poll_interval_ms: u64,
    /// The longest wait between two attempts at one notice.
    pub max_backoff_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            smtp_host: "127.0.0.1".to_owned(),
            smtp_port: 25,
            security: SmtpSecurity::Starttls,
            from: "Sceau <no-reply@sceau.invalid>".to_owned(),
            message_id_domain: "sceau.invalid".to_owned(),
            poll_interval_ms: 1000,
            max_backoff_secs: 3600,
        }
    }
}

/// The registration back office: evidence uploads, enrolment links and the
/// maintenance sweep (reminders, evidence purge, issuance retries).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RaSettings {
    /// Largest evidence document accepted, in bytes (413 above it). Also bounded
    /// by `server.body_limit_bytes`.
    pub max_document_bytes: u64,
    /// How long an enrolment link sent to a legal representative or an agent works.
    pub enrolment_lifetime_hours: u32,
    /// How often the maintenance sweep runs.
    pub sweep_interval_secs: u64,
    /// The page the links in notices point to (the portal); defaults to `server.public_url`.
    pub portal_url: Option<String>,
}

impl Default for RaSettings {
    fn default() -> Self {
        Self {
            max_document_bytes: 10 * 1024 * 1024,
            enrolment_lifetime_hours: 72,
            sweep_interval_secs: 60,
            portal_url: None,
        }
    }
}

/// Certificate revocation lists: how long each is valid, when it is re-issued,
/// and how often every instance looks for new revocations.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CrlSettings {
    /// nextUpdate − thisUpdate of the issuing and client-auth CRLs.
    pub validity_hours: u32,
    /// A CRL is re-issued when its nextUpdate is this close.
    pub refresh_before_hours: u32,
    /// How often each instance checks for revocations not yet on a CRL.
    pub poll_interval_ms: u64,
    /// nextUpdate − thisUpdate of the root's ARL (`sceau ca arl`).
    pub arl_validity_days: u32,
}

impl Default for CrlSettings {
    fn default() -> Self {
        Self {
            validity_hours: 24,
            refresh_before_hours: 6,
            poll_interval_ms: 1000,
            arl_validity_days: 365,
        }
    }
}

/// The OCSP responder (RFC 6960, RFC 5019 profile).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OcspSettings {
    /// nextUpdate - thisUpdate of every response; a cached response is re-signed
    /// once less than half of it remains.
    pub validity_secs: u64,
    /// Fresh signatures per second for requests that need one (a nonce, an
    /// unknown serial, several certificates): the token bucket's rate.
    pub nonce_signatures_per_second: u32,
    /// The token bucket's size: signatures allowed in one burst.
    pub nonce_burst: u32,
    /// Signatures in flight at once (the HSM is shared with other services).
    pub signing_concurrency: usize,
    /// What a request past the bound gets.
    pub over_limit: OcspOverLimit,
    /// Largest OCSP request accepted, in bytes (malformedRequest above it).
    pub max_request_bytes: usize,
    /// How often an instance re-reads the active responder certificate and
    /// renews it when it nears expiry (`ocsp.renew_before_days` of the ceremony file).
    pub maintenance_interval_secs: u64,
}

impl Default for OcspSettings {
    fn default() -> Self {
        Self {
            validity_secs: 3600,
            nonce_signatures_per_second: 50,
            nonce_burst: 50,
            signing_concurrency: 2,
            over_limit: OcspOverLimit::TryLater,
            max_request_bytes: 4096,
            maintenance_interval_secs: 300,
        }
    }
}

/// Seals.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SealSettings {
    /// Document seals (the document is in the request) made at once by this
    /// instance; past it, 503 with Retry-After. With `server.body_limit_bytes`
    /// it bounds the memory documents take.
    pub max_concurrent_documents: usize,
    /// The memory the documents being sealed may take together, in MiB, each
    /// reckoned by `seal::pdf_reservation` (a PDF's body, its index and, at
    /// B-LT and above, its sealed copy) or `seal::CMS_MEMORY_FACTOR`.
    /// Past it, 503 with Retry-After; a document that
    /// would need more than all of it alone, 413.
    pub max_document_memory_mib: u64,
    /// The Retry-After of that 503, in seconds.
    pub retry_after_secs: u64,
    /// An external RFC 3161 TSA for seals at B-T and above; the built-in TSA
    /// when absent.
    pub tsa_url: Option<String>,
    /// How long a call to the external TSA may take.
    pub tsa_timeout_secs: u64,
}

impl Default for SealSettings {
    fn default() -> Self {
        Self {
            max_concurrent_documents: 8,
            max_document_memory_mib: 2048,
            retry_after_secs: 2,
            tsa_url: None,
            tsa_timeout_secs: 10,
        }
    }
}

/// The time-stamping authority (RFC 3161).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TsaSettings {
    /// The time-stamping policy (policy OID, declared accuracy, digests accepted).
    pub policy_file: PathBuf,
    /// A command that prints `yes` when the system clock is synchronised (e.g.
    /// `["timedatectl", "show", "-p", "NTPSynchronized", "--value"]`). Empty:
    /// not checked. When set, the TSA refuses to time-stamp (timeNotAvailable)
    /// unless the last check said `yes`.
    pub clock_sync_command: Vec<String>,
    /// How often the clock check runs, and the active TSU certificate is re-read.
    pub clock_sync_check_secs: u64,
    /// Largest time-stamp request accepted, in bytes (badDataFormat above it).
    pub max_request_bytes: usize,
    /// Time-stamps per second `POST /tsa` answers (each costs an HSM
    /// signature): the token bucket's rate. Seals' own time-stamps are not
    /// counted.
    pub requests_per_second: u32,
    /// The token bucket's size: requests answered in one burst.
    pub burst: u32,
}

impl Default for TsaSettings {
    fn default() -> Self {
        Self {
            policy_file: PathBuf::from("policies/tsa.toml"),
            clock_sync_command: Vec::new(),
            clock_sync_check_secs: 10,
            max_request_bytes: 8192,
            requests_per_second: 50,
            burst: 100,
        }
    }
}

/// The answer to a request that needs a fresh signature when the bound is reached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OcspOverLimit {
    /// `tryLater` (status 3).
    TryLater,
    /// The cached response for the certificate, without the nonce (when there is
    /// one; `tryLater` otherwise).
    Cached,
}

/// A back-office identity provider.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderSettings {
    /// Exactly the `iss` of its tokens and of its discovery document.
    pub issuer: String,
    /// The `aud` sceau's tokens carry.
    pub audience: String,
    #[serde(default = "default_people")]
    pub callers: Callers,
    /// A claim holding role names (`ra_operator`, `ca_admin`, `auditor`, …).
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// `acr` values that count as strong authentication.
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// Subjects (people) or client ids (servers) accepted; empty: any.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// Require `typ` `at+jwt` (RFC 9068).
    #[serde(default = "default_true")]
    pub require_typ: bool,
}

fn default_people() -> Callers {
    Callers::People
}

fn default_true() -> bool {
    true
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            max_failed_activations: 5,
            sad_lifetime_secs: 300,
            sad_max_lifetime_secs: 3600,
            max_signatures_per_sad: 1000,
            stranger_refusals_per_minute: 20,
            identity_providers: Vec::new(),
            staff: StaffRoster::default(),
            oidc_cache_secs: 600,
            oidc_refetch_secs: 30,
            token_leeway_secs: 30,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            body_limit_bytes: 64 * 1024 * 1024,
            shutdown_grace_secs: 20,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `sceau=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalSettings {
    /// Where signed checkpoints are also written, outside the database.
    pub checkpoint_dir: PathBuf,
    /// How often a new checkpoint is signed when the log has grown.
    pub checkpoint_interval_secs: u64,
    /// Most appends committed together in one transaction (1 = one commit per append).
    pub max_batch: usize,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            checkpoint_dir: PathBuf::from("var/checkpoints"),
            checkpoint_interval_secs: 60,
            max_batch: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaSettings {
    /// The key ceremony file (`policies/ceremony.toml`).
    pub ceremony_file: PathBuf,
    /// Where ceremony transcripts are written.
    pub transcript_dir: PathBuf,
    /// The certificate policies, one `*.toml` per policy (`policies/certificates`).
    pub policies_dir: PathBuf,
    /// Development only: run the ceremony on first start when none was done.
    pub dev_auto_init: bool,
}

impl Default for CaSettings {
    fn default() -> Self {
        Self {
            ceremony_file: PathBuf::from("policies/ceremony.toml"),
            transcript_dir: PathBuf::from("var/ceremony"),
            policies_dir: PathBuf::from("policies/certificates"),
            dev_auto_init: false,
        }
    }
}

impl Settings {
    /// Loads the TOML file (when given) then applies `SCEAU_*` environment overrides,
    /// where `__` separates levels: `SCEAU_DATABASE__URL`, `SCEAU_SERVER__LISTEN`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::FileMissing {
                    path: path.to_owned(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("SCEAU_").split("__").filter(|key| {
            // Read directly by the CLI, the token script or the test suite, not
            // settings. figment keeps the variable's case: compare without it.
            let key = key.as_str().to_ascii_lowercase();
            !(matches!(
                key.as_str(),
                "config" | "hsm_pin" | "dev_pin" | "require_pg"
            ) || key.starts_with("test_"))
        }));
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Parse(one_line(&e.to_string())))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what can be checked without touching the HSM or the database.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.portal.validate()?;
        if self.portal.dev_provider && !self.ca.dev_auto_init {
            return Err(ConfigError::Invalid {
                setting: "portal.dev_provider",
                reason: "the development identity provider signs anyone in: only in \
                         development mode (ca.dev_auto_init)"
                    .to_owned(),
            });
        }
        if self.portal.dev_provider && !cfg!(feature = "dev-idp") {
            return Err(ConfigError::Invalid {
                setting: "portal.dev_provider",
                reason: "this build leaves the development identity provider out (build with \
                         --features dev-idp, as `make run` does)"
                    .to_owned(),
            });
        }
        let url = &self.server.public_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                setting: "server.public_url",
                reason: format!("{url:?} is not an http(s) URL"),
            });
        }
        if let Some(url) = &self.seal.tsa_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                setting: "seal.tsa_url",
                reason: format!("{url:?} is not an http(s) URL"),
            });
        }
        if self.server.body_limit_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "server.body_limit_bytes",
                reason: "must be greater than zero".to_owned(),
            });
        }
        self.database.backend()?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid {
                setting: "database.max_connections",
                reason: "must be greater than zero".to_owned(),
            });
        }
        if self.journal.max_batch == 0 {
            return Err(ConfigError::Invalid {
                setting: "journal.max_batch",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.crl.validity_hours == 0 || self.crl.refresh_before_hours >= self.crl.validity_hours
        {
            return Err(ConfigError::Invalid {
                setting: "crl.refresh_before_hours",
                reason: "must be less than crl.validity_hours, which must be at least 1".to_owned(),
            });
        }
        if self.crl.poll_interval_ms == 0 || self.crl.arl_validity_days == 0 {
            return Err(ConfigError::Invalid {
                setting: "crl",
                reason: "poll_interval_ms and arl_validity_days must be greater than zero"
                    .to_owned(),
            });
        }
        for role in TokenRole::ALL {
            let token = self.hsm.tokens.get(role);
            if token.token_label.is_none() && token.slot.is_none() {
                return Err(ConfigError::Invalid {
                    setting: "hsm.tokens",
                    reason: format!("role '{role}' needs token_label or slot"),
                });
            }
        }
        Ok(())
    }

    pub fn public_url(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }
}

/// figment errors may span lines; the CLI prints one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
