//! A CA ready to issue: the key ceremony run on test tokens, the journal open,
//! one registered entity, and issuers over any policy set. Also CSRs made with
//! OpenSSL, so intake is checked against requests sceau did not write.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use der::{Decode, EncodePem};
use sceau::clock::SharedClock;
use sceau::config::{Settings, TokenRole};
use sceau::hsm::Hsm;
use sceau::journal::Journal;
use sceau::pki::issuance::Issuer;
use sceau::pki::policy::PolicySet;
use sceau::store::Store;
use sceau::store::entities::{Entity, NewEntity};
use x509_cert::Certificate;

use super::db::TestDb;
use super::hsm::SoftHsm;
use super::tools;

pub struct CaEnv {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub hsm: Hsm,
    pub journal: Journal,
    pub clock: SharedClock,
    pub root: Certificate,
    pub issuing: Certificate,
    /// The client-authentication CA, when the ceremony file has `[client_auth]`.
    pub client_auth: Option<Certificate>,
    /// The ceremony file the CA was made from.
    pub ceremony: sceau::pki::ceremony::CeremonyFile,
    pub entity: Entity,
}

/// The project's shipped certificate policies.
pub fn shipped_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/certificates")
}

/// The ceremony with public-style URLs (what pkilint needs).
pub fn public_ceremony() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.toml")
}

/// The development ceremony (loopback URLs, quick keys).
pub fn dev_ceremony() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.dev.toml")
}

/// An OpenSSL P-256 key (PKCS#8 PEM) in `dir`; returns its path.
pub fn openssl_p256_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let output = tools::run(
        &tools::tool("openssl"),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "openssl genpkey: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    key
}

/// Runs `ceremony_file` on the test tokens and opens everything issuance needs.
pub async fn set_up(softhsm: &SoftHsm, db: &TestDb, ceremony_file: &Path) -> CaEnv {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database = db.settings();
    settings.hsm = softhsm.settings();
    settings.ca.ceremony_file = ceremony_file.to_owned();
    settings.ca.transcript_dir = dir.path().join("ceremony");
    settings.ca.policies_dir = shipped_policies();
    settings.journal.checkpoint_dir = dir.path().join("checkpoints");
    let store = db.store().await;
    let hsm = Hsm::connect(&settings.hsm, &TokenRole::ALL).await.unwrap();
    let clock = sceau::clock::system();
    sceau::ca::perform_ceremony(&settings, &store, &hsm, &clock, false)
        .await
        .unwrap();
    let journal = sceau::ca::open_journal(&settings, &store, &hsm, &clock)
        .await
        .unwrap();
    let mut root = None;
    let mut issuing = None;
    let mut client_auth = None;
    for certificate in store.active_ca_certificates().await.unwrap() {
        let parsed = Certificate::from_der(&certificate.der).unwrap();
        match certificate.purpose.as_str() {
            "root" => root = Some(parsed),
            "issuing" => issuing = Some(parsed),
            "client-auth" => client_auth = Some(parsed),
            _ => {}
        }
    }
    let entity = store
        .insert_entity(
            &NewEntity {
                legal_name: "Société Exemple de Scellement".to_owned(),
                organization_identifier: "NTRFR-123456782".to_owned(),
                country: "FR".to_owned(),
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    CaEnv {
        dir,
        store,
        hsm,
        journal,
        clock,
        root: root.unwrap(),
        issuing: issuing.unwrap(),
        client_auth,
        ceremony: sceau::pki::ceremony::CeremonyFile::load(ceremony_file)
            .unwrap()
            .0,
        entity,
    }
}

impl CaEnv {
    pub async fn issuer(&self, policies_dir: &Path) -> Issuer {
        let policies = Arc::new(PolicySet::load_dir(policies_dir).unwrap());
        sceau::ca::issuer(&self.store, &self.hsm, &self.journal, &self.clock, policies)
            .await
            .unwrap()
    }

    /// Writes the root and issuing CA certificates as PEM; returns (root, issuing).
    pub fn write_chain(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let root = dir.join("root.pem");
        let issuing = dir.join("issuing.pem");
        std::fs::write(&root, self.root.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
        std::fs::write(
            &issuing,
            self.issuing.to_pem(der::pem::LineEnding::LF).unwrap(),
        )
        .unwrap();
        (root, issuing)
    }

    /// The client-certificate issuer over the client-auth CA.
    pub async fn client_issuer(&self) -> sceau::pki::client_auth::ClientCertificateIssuer {
        sceau::ca::client_certificate_issuer(
            &self.store,
            &self.hsm,
            &self.journal,
            &self.clock,
            &self.ceremony,
        )
        .await
        .unwrap()
    }

    pub fn sign_calls(&self, role: TokenRole) -> u64 {
        self.hsm.token(role).unwrap().sign_calls()
    }
}

/// A key and CSR made by OpenSSL: `spec` is an `-newkey` argument
/// (`rsa:4096`, `ec:<params file>`); returns the DER CSR.
pub fn openssl_csr(dir: &Path, name: &str, newkey: &str) -> Vec<u8> {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let output = tools::run(
        &tools::tool("openssl"),
        &[
            "req",
            "-new",
            "-newkey",
            newkey,
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-subj",
            "/CN=ignored by the CA/O=Anything",
            "-outform",
            "DER",
            "-out",
            csr.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(csr).unwrap()
}

/// A CSR for an existing OpenSSL key file.
pub fn openssl_csr_for_key(dir: &Path, name: &str, key: &Path) -> Vec<u8> {
    let csr = dir.join(format!("{name}.csr"));
    let output = tools::run(
        &tools::tool("openssl"),
        &[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/CN=ignored",
            "-outform",
            "DER",
            "-out",
            csr.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(csr).unwrap()
}

/// A multi-thread runtime for tests that start synchronously (SoftHSM children).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A policies folder in `dir` holding the shipped terms and one file per
/// `(id, text)`; the texts refer to the terms as `../terms/seal-terms-1.0.md`.
pub fn policies_dir(dir: &Path, files: &[(&str, String)]) -> PathBuf {
    let terms = dir.join("terms");
    std::fs::create_dir_all(&terms).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/terms/seal-terms-1.0.md"),
        terms.join("seal-terms-1.0.md"),
    )
    .unwrap();
    let certificates = dir.join("certificates");
    std::fs::create_dir_all(&certificates).unwrap();
    for (id, text) in files {
        std::fs::write(certificates.join(format!("{id}.toml")), text).unwrap();
    }
    certificates
}

/// The text of a shipped policy file, to derive variants from.
pub fn shipped_policy(id: &str) -> String {
    std::fs::read_to_string(shipped_policies().join(format!("{id}.toml"))).unwrap()
}

/// Replaces `from` (which must occur) by `to`.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the policy text");
    text.replacen(from, to, 1)
}

/// A P-256 key and a CSR for it, made in software (fast: for volume tests).
pub fn p256_csr() -> Vec<u8> {
    use der::Encode;
    use p256::pkcs8::EncodePublicKey;
    use signature::Signer;
    let key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    let spki_der = key.verifying_key().to_public_key_der().unwrap();
    let info = x509_cert::request::CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: x509_cert::name::RdnSequence::default(),
        public_key: spki::SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap(),
        attributes: Default::default(),
    };
    let signature: p256::ecdsa::DerSignature = key.sign(&info.to_der().unwrap());
    x509_cert::request::CertReq {
        info,
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        },
        signature: der::asn1::BitString::from_bytes(signature.as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap()
}
