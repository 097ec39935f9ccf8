//! The application built and served in the test process (zero2prod style), on
//! port 0, with its own tokens (run inside `hsm::isolated`), database, data
//! folder, optional mutual-TLS listener and a clock the test can move.

use std::path::Path;
use std::sync::Arc;

use sceau::app::{AppState, Application};
use sceau::clock::{ManualClock, SharedClock};
use sceau::config::{Settings, TlsSettings};
use sceau::pki::issuance::{IssuanceRequest, KeySource};
use sceau::store::entities::{CredentialStatus, NewEntity};
use uuid::Uuid;

use super::db::TestDb;
use super::hsm::SoftHsm;

pub struct Service {
    pub port: u16,
    pub tls_port: Option<u16>,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

/// Settings for a test instance; `tls` adds the mutual-TLS listener.
pub fn settings(softhsm: &SoftHsm, db: &TestDb, dir: &Path, tls: Option<TlsSettings>) -> Settings {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = Settings {
        data_dir: dir.join("var"),
        database: db.settings(),
        hsm: softhsm.settings(),
        ..Settings::default()
    };
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.shutdown_grace_secs = 2;
    settings.server.tls = tls;
    settings.ca.ceremony_file = root.join("policies/ceremony.dev.toml");
    settings.ca.transcript_dir = dir.join("ceremony");
    settings.ca.policies_dir = root.join("policies/certificates");
    settings.tsa.policy_file = root.join("policies/tsa.toml");
    settings.ca.dev_auto_init = true;
    settings.journal.checkpoint_dir = dir.join("checkpoints");
    settings
}

impl Service {
    /// Builds (running the ceremony on first use of the database) and serves.
    pub async fn start(settings: Settings, clock: Arc<ManualClock>) -> Self {
        log_to_file_when_asked();
        let dir = tempfile::tempdir().unwrap();
        let shared: SharedClock = clock.clone();
        let app = Application::build(settings, shared).await.unwrap();
        let port = app.port();
        let tls_port = app.tls_port();
        let state = app.state().clone();
        // The first CRLs are published (and journaled) at start: wait for them,
        // so a test sees a quiet journal. Whichever of this call and the
        // background task runs first publishes; the other finds nothing to do.
        state.crl.publish_if_needed().await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            port,
            tls_port,
            state,
            clock,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port.unwrap())
    }

    /// Stops serving and waits for the journal to close.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("the service stops within 30 s")
                .unwrap();
        }
    }

    /// Registers an organisation.
    pub async fn entity(&self, name: &str, identifier: &str) -> Uuid {
        self.state
            .store
            .insert_entity(
                &NewEntity {
                    legal_name: name.to_owned(),
                    organization_identifier: identifier.to_owned(),
                    country: "FR".to_owned(),
                },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap()
            .id
    }

    /// Issues a CA-managed seal certificate under `policy` and makes its credential
    /// usable (what acceptance by the RCCS will do).
    pub async fn active_credential(&self, entity: Uuid, policy: &str) -> Uuid {
        let state = &self.state;
        let issuer = sceau::ca::issuer(
            &state.store,
            &state.hsm,
            &state.journal,
            &state.clock,
            state.policies.clone(),
        )
        .await
        .unwrap();
        let issued = issuer
            .issue(
                sceau::pki::signing::Grant::validated_request(vec!["test".to_owned()]),
                IssuanceRequest {
                    request_id: Uuid::new_v4(),
                    policy_id: policy.to_owned(),
                    entity_id: entity,
                    seal_name: "Test seal".to_owned(),
                    validity_days: Some(365),
                    key: KeySource::Generate { algorithm: None },
                },
            )
            .await
            .unwrap();
        let credential = issued.credential_id.unwrap();
        state
            .store
            .set_seal_credential_status(
                credential,
                CredentialStatus::Active,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        credential
    }
}

/// `SCEAU_TEST_LOG=file`: the services' logs (filtered by `RUST_LOG`, else
/// `info`) are appended to `file`, for whoever debugs a run; the tests keep
/// them quiet otherwise.
fn log_to_file_when_asked() {
    let Ok(path) = std::env::var("SCEAU_TEST_LOG") else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Several services in one process: the first one's subscriber stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// The service's clock kept on the real time (every 100 ms) until the
/// returned task is aborted: for runs that take minutes and present tokens
/// the provider dates by the real time.
pub fn follow_real_time(clock: Arc<ManualClock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            clock.set(std::time::SystemTime::now());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}

/// A manual clock at the current time.
pub fn clock_now() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(std::time::SystemTime::now()))
}

impl Service {
    /// A TLS client certificate from sceau's client-authentication CA for
    /// `entity` (named `organization`, `identifier`), on a key OpenSSL made
    /// in `dir` as `name`: its PEM files, and what the issuer answered.
    pub async fn sceau_client_certificate(
        &self,
        dir: &Path,
        name: &str,
        entity: Uuid,
        (organization, identifier): (&str, &str),
    ) -> (
        super::test_ca::Issued,
        sceau::pki::client_auth::IssuedClientCertificate,
    ) {
        use der::{Decode, EncodePem};
        let state = &self.state;
        let (ceremony_file, _) =
            sceau::pki::ceremony::CeremonyFile::load(&state.settings.ca.ceremony_file).unwrap();
        let issuer = sceau::ca::client_certificate_issuer(
            &state.store,
            &state.hsm,
            &state.journal,
            &state.clock,
            &ceremony_file,
        )
        .await
        .unwrap();
        let key = super::ca::openssl_p256_key(dir, name);
        let csr = super::ca::openssl_csr_for_key(dir, name, &key);
        let issued = issuer
            .issue(
                sceau::pki::signing::Grant::checked_rccs(sceau::journal::Actor::Task("test")),
                sceau::pki::client_auth::ClientCertificateRequest {
                    request_id: Uuid::new_v4(),
                    entity_id: entity,
                    organization: organization.to_owned(),
                    organization_identifier: identifier.to_owned(),
                    country: "FR".to_owned(),
                    common_name: format!("{organization} {name}"),
                    csr_der: csr,
                    validity_days: 30,
                },
            )
            .await
            .unwrap();
        let certificate = dir.join(format!("{name}.pem"));
        let pem = x509_cert::Certificate::from_der(&issued.der)
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap();
        std::fs::write(&certificate, pem).unwrap();
        (super::test_ca::Issued { certificate, key }, issued)
    }
}

/// An RA operator signed in with strong authentication, for calls made
/// straight to the registry.
pub fn ra_operator() -> sceau::auth::Principal {
    sceau::auth::Principal {
        id: "oidc:https://idp.test#operator-1".to_owned(),
        entity: None,
        method: sceau::auth::AuthMethod::Oidc {
            issuer: "https://idp.test".to_owned(),
            subject: "operator-1".to_owned(),
            client_id: None,
            binding: "bearer",
            acr: None,
        },
        roles: [sceau::auth::Role::RaOperator].into(),
        strength: sceau::auth::Strength::Strong,
        staff: Some(std::sync::Arc::new(sceau::config::StaffMember {
            id: uuid::Uuid::from_u128(1),
            given_name: "Staff".to_owned(),
            family_name: "operator-1".to_owned(),
            birth_date: time::Date::MIN,
            sign_ins: vec![sceau::config::SignIn {
                issuer: "https://idp.test".to_owned(),
                subject: "operator-1".to_owned(),
            }],
        })),
    }
}
