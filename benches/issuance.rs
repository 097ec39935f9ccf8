//! Seal certificates issued per second, CA-managed P-256 and RSA-3072 keys, with
//! key generation (the whole issuance) and without (the same certification from a
//! CSR whose key already exists), beside the raw HSM limits measured in the same
//! run on the same tokens: C_GenerateKeyPair/s and the issuing CA key's C_Sign/s.
//! Numbers, not pass/fail. SQLite (temp file, synchronous=FULL) and SoftHSM.
//!
//! SoftHSM reads its configuration once per process, so the bench makes its
//! tokens and re-runs itself with SOFTHSM2_CONF pointing at them.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use der::{Decode, Encode};
use sceau::config::{DatabaseSettings, HsmSettings, Settings, TokenRole};
use sceau::hsm::{Hsm, KeyAlgorithm, TokenPool};
use sceau::pki::issuance::{IssuanceRequest, Issuer, KeySource};
use sceau::pki::policy::PolicySet;
use sceau::store::entities::NewEntity;
use secrecy::SecretString;
use uuid::Uuid;

/// Threads for the raw limits (the machine has 2 cores; SoftHSM signs on both).
const WORKERS: usize = 2;
/// Concurrent issuances: enough to overlap database and journal commits with
/// signing, as a loaded server would.
const ISSUERS: usize = 16;

struct Sizes {
    p256: usize,
    rsa3072: usize,
    raw_sign: Duration,
}

fn sizes() -> Sizes {
    if std::env::args().any(|arg| arg == "--bench") {
        Sizes {
            p256: 400,
            rsa3072: 24,
            raw_sign: Duration::from_secs(2),
        }
    } else {
        // `cargo test --all-targets` runs this without `--bench`: a smoke pass.
        Sizes {
            p256: 4,
            rsa3072: 2,
            raw_sign: Duration::from_millis(100),
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = support::softhsm_tokens(root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&dir, root));
}

async fn run(tokens: &Path, root: &Path) {
    let sizes = sizes();
    let work = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        database: DatabaseSettings {
            url: SecretString::from(format!(
                "sqlite://{}",
                work.path().join("bench.db").display()
            )),
            max_connections: 8,
            ..DatabaseSettings::default()
        },
        hsm: HsmSettings {
            tokens: support::token_roles(tokens),
        },
        ..Settings::default()
    };
    settings.ca.ceremony_file = root.join("policies/ceremony.toml");
    settings.ca.transcript_dir = work.path().join("ceremony");
    settings.journal.checkpoint_dir = work.path().join("checkpoints");

    let store = sceau::store::Store::connect(&settings.database)
        .await
        .unwrap();
    let hsm = Hsm::connect(&settings.hsm, &TokenRole::ALL).await.unwrap();
    let clock = sceau::clock::system();
    sceau::ca::perform_ceremony(&settings, &store, &hsm, &clock, false)
        .await
        .unwrap();
    let journal = sceau::ca::open_journal(&settings, &store, &hsm, &clock)
        .await
        .unwrap();
    let entity = store
        .insert_entity(
            &NewEntity {
                legal_name: "Bench SA".to_owned(),
                organization_identifier: "NTRFR-123456782".to_owned(),
                country: "FR".to_owned(),
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();

    // The shipped CA-managed policy, plus an entity policy that takes the same key
    // types from a CSR: the "without key generation" path.
    let policies_dir = work.path().join("policies");
    std::fs::create_dir_all(policies_dir.join("certificates")).unwrap();
    std::fs::create_dir_all(policies_dir.join("terms")).unwrap();
    std::fs::copy(
        root.join("policies/terms/seal-terms-1.0.md"),
        policies_dir.join("terms/seal-terms-1.0.md"),
    )
    .unwrap();
    let managed =
        std::fs::read_to_string(root.join("policies/certificates/seal-ca-managed.toml")).unwrap();
    std::fs::write(
        policies_dir.join("certificates/seal-ca-managed.toml"),
        &managed,
    )
    .unwrap();
    let from_csr = managed
        .replace("generation = \"ca\"", "generation = \"entity\"")
        .replace("10.3.3.", "10.3.9.");
    std::fs::write(policies_dir.join("certificates/bench-csr.toml"), from_csr).unwrap();
    let policies = Arc::new(PolicySet::load_dir(&policies_dir.join("certificates")).unwrap());
    let issuer = sceau::ca::issuer(&store, &hsm, &journal, &clock, policies)
        .await
        .unwrap();

    let seal = hsm.token(TokenRole::Seal).unwrap().clone();
    let issuing = hsm.token(TokenRole::Issuing).unwrap().clone();
    let issuing_key = store
        .active_ca_certificates()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.purpose == "issuing")
        .unwrap();
    let issuing_key = issuing
        .clone()
        .find_key(sceau::hsm::KeyId::from_bytes(&issuing_key.key.key_id).unwrap())
        .await
        .unwrap();

    let mut rows: Vec<(String, f64)> = Vec::new();
    // Raw limits, same tokens, same concurrency.
    let sign_rate = raw_sign_rate(&issuing, &issuing_key, sizes.raw_sign).await;
    rows.push((
        format!(
            "raw C_Sign/s, issuing CA key ({}), {WORKERS} threads",
            issuing_key.algorithm
        ),
        sign_rate,
    ));
    let keygen_p256 = raw_keygen_rate(&seal, KeyAlgorithm::EcP256, sizes.p256).await;
    rows.push((
        format!("raw C_GenerateKeyPair/s, P-256, {WORKERS} threads"),
        keygen_p256,
    ));
    let keygen_rsa = raw_keygen_rate(&seal, KeyAlgorithm::Rsa3072, sizes.rsa3072).await;
    rows.push((
        format!("raw C_GenerateKeyPair/s, RSA-3072, {WORKERS} threads"),
        keygen_rsa,
    ));

    for (algorithm, count, keygen) in [
        (KeyAlgorithm::EcP256, sizes.p256, keygen_p256),
        (KeyAlgorithm::Rsa3072, sizes.rsa3072, keygen_rsa),
    ] {
        let with = issue_rate(&issuer, entity.id, count, move |_| {
            (
                "seal-ca-managed",
                KeySource::Generate {
                    algorithm: Some(algorithm),
                },
            )
        })
        .await;
        // The raw limit of one issuance with key generation: one key pair and one
        // CA signature, in sequence.
        let raw_with = 1.0 / (1.0 / keygen + 1.0 / sign_rate);
        rows.push((
            format!("issued/s, CA-managed {algorithm}, key generated"),
            with,
        ));
        rows.push((
            format!("  ratio to raw keygen+sign ({raw_with:.1}/s)"),
            with / raw_with,
        ));

        // Without key generation: the keys exist (made before timing), CSRs certify them.
        let csrs = make_csrs(&seal, algorithm, count).await;
        let csrs = Arc::new(std::sync::Mutex::new(csrs));
        let without = issue_rate(&issuer, entity.id, count, move |_| {
            let csr = csrs.lock().unwrap().pop().unwrap();
            ("bench-csr", KeySource::Csr { csr, device: None })
        })
        .await;
        rows.push((
            format!("issued/s, {algorithm} key already made (CSR)"),
            without,
        ));
        rows.push((
            format!("  ratio to raw C_Sign ({sign_rate:.1}/s)"),
            without / sign_rate,
        ));
    }
    journal.shutdown().await.unwrap();

    println!(
        "\nissuance ({ISSUERS} concurrent issuances, raw rates on {WORKERS} threads; SQLite, SoftHSM)"
    );
    for (label, value) in rows {
        if label.starts_with("  ratio") {
            println!("  {label:<58} {value:>8.2}");
        } else {
            println!("  {label:<58} {value:>8.1}");
        }
    }
}

async fn raw_sign_rate(pool: &Arc<TokenPool>, key: &sceau::hsm::HsmKey, run_for: Duration) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..WORKERS {
        let pool = pool.clone();
        let key = key.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let mut count = 0u64;
            let deadline = Instant::now() + run_for;
            while Instant::now() < deadline {
                pool.sign_blocking(&key.id, key.algorithm.signature_algorithm(), b"tbs")
                    .unwrap();
                count += 1;
            }
            count
        }));
    }
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn raw_keygen_rate(pool: &Arc<TokenPool>, algorithm: KeyAlgorithm, count: usize) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for worker in 0..WORKERS {
        let pool = pool.clone();
        let share = count / WORKERS + usize::from(worker < count % WORKERS);
        handles.push(tokio::task::spawn_blocking(move || {
            for _ in 0..share {
                let key = pool
                    .generate_key_pair_blocking("bench-raw", algorithm)
                    .unwrap();
                pool.destroy_key_blocking(&key.id).unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    // Destroying is part of the loop but costs microseconds next to generation.
    count as f64 / started.elapsed().as_secs_f64()
}

/// CSRs for keys generated (untimed) in the seal token, signed there.
async fn make_csrs(pool: &Arc<TokenPool>, algorithm: KeyAlgorithm, count: usize) -> Vec<Vec<u8>> {
    let mut csrs = Vec::with_capacity(count);
    for _ in 0..count {
        let key = pool
            .clone()
            .generate_key_pair("bench-csr".to_owned(), algorithm)
            .await
            .unwrap();
        let info = x509_cert::request::CertReqInfo {
            version: x509_cert::request::Version::V1,
            subject: Default::default(),
            public_key: key.public_key.clone(),
            attributes: Default::default(),
        };
        let signature_algorithm = algorithm.signature_algorithm();
        let signature = pool
            .clone()
            .sign(key.id, signature_algorithm, info.to_der().unwrap())
            .await
            .unwrap();
        let csr = x509_cert::request::CertReq {
            info,
            algorithm: signature_algorithm.algorithm_identifier(),
            signature: der::asn1::BitString::from_bytes(&signature).unwrap(),
        };
        let der = csr.to_der().unwrap();
        // Parses back: what intake will see.
        x509_cert::request::CertReq::from_der(&der).unwrap();
        csrs.push(der);
    }
    csrs
}

async fn issue_rate(
    issuer: &Issuer,
    entity: Uuid,
    count: usize,
    source: impl Fn(usize) -> (&'static str, KeySource) + Send + Sync + 'static,
) -> f64 {
    let source = Arc::new(source);
    let started = Instant::now();
    let mut handles = Vec::new();
    for worker in 0..ISSUERS {
        let issuer = issuer.clone();
        let source = source.clone();
        let share = count / ISSUERS + usize::from(worker < count % ISSUERS);
        handles.push(tokio::spawn(async move {
            for n in 0..share {
                let (policy, key) = source(n);
                issuer
                    .issue(
                        sceau::pki::signing::Grant::validated_request(vec!["bench".to_owned()]),
                        IssuanceRequest {
                            request_id: Uuid::new_v4(),
                            policy_id: policy.to_owned(),
                            entity_id: entity,
                            seal_name: "Bench".to_owned(),
                            validity_days: Some(365),
                            key,
                        },
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}
