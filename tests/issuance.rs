//! Seal certificate issuance: every shipped policy yields certificates that
//! pkilint (ETSI and PKIX) and OpenSSL accept and that say what the policy file
//! says; CA-managed keys stay locked in the seal token; CSR intake refuses bad
//! requests and stores nothing; the pre-signing lint stops a bad certificate
//! before any C_Sign; serial numbers are unique, positive and short.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, EncodePem};
use sceau::config::TokenRole;
use sceau::pki::csr::CsrError;
use sceau::pki::issuance::{DeviceEvidence, IssuanceError, IssuanceRequest, Issued, KeySource};
use sceau::pki::qc::{self, QcSummary};
use support::ca::{self, CaEnv};
use support::db::TestDb;
use support::hsm::SoftHsm;
use support::tools;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::ext::pkix::CertificatePolicies;

fn request(env: &CaEnv, policy: &str, key: KeySource) -> IssuanceRequest {
    IssuanceRequest {
        request_id: Uuid::new_v4(),
        policy_id: policy.to_owned(),
        entity_id: env.entity.id,
        seal_name: "Cachet des factures".to_owned(),
        validity_days: None,
        key,
    }
}

/// Who the RA names as responsible for these issuances.
const ACTOR: &str = "ra:test-operator-1+test-operator-2";

fn grant() -> sceau::pki::signing::Grant {
    sceau::pki::signing::Grant::validated_request(vec![
        "test-operator-1".to_owned(),
        "test-operator-2".to_owned(),
    ])
}

fn extension(certificate: &Certificate, oid: ObjectIdentifier) -> &[u8] {
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .unwrap_or_else(|| panic!("no extension {oid}"))
        .extn_value
        .as_bytes()
}

/// The key source each kind of policy needs; CSR keys are made by OpenSSL.
fn key_source_for(generation: &str, dir: &Path, name: &str) -> KeySource {
    let csr = || ca::openssl_csr(dir, name, "rsa:4096");
    match generation {
        "ca" | "ca-qscd" => KeySource::Generate { algorithm: None },
        "entity" => KeySource::Csr {
            csr: csr(),
            device: None,
        },
        "entity-qscd" => KeySource::Csr {
            csr: csr(),
            device: Some(DeviceEvidence::Qscd {
                model: "Example QSealCD 2 (certified)".to_owned(),
                proof_sha256: hex::encode([7u8; 32]),
            }),
        },
        "chip" => KeySource::Csr {
            csr: csr(),
            device: Some(DeviceEvidence::Chip {
                reference: "CHIP-2026-000042".to_owned(),
            }),
        },
        other => panic!("unknown generation {other}"),
    }
}

/// Warnings pkilint may leave on a seal certificate, each justified in the
/// closing note of the issue; anything else fails the test.
const ACCEPTED_WARNINGS: &[&str] = &[];

#[test]
fn every_policy_issues_certificates_that_pkilint_and_openssl_accept() {
    let Some(softhsm) =
        support::hsm::isolated("every_policy_issues_certificates_that_pkilint_and_openssl_accept")
    else {
        return;
    };
    ca::runtime().block_on(every_policy(softhsm, support::db::sqlite()));
}

async fn every_policy(softhsm: SoftHsm, db: TestDb) {
    let env = ca::set_up(&softhsm, &db, &ca::public_ceremony()).await;
    let issuer = env.issuer(&ca::shipped_policies()).await;
    let out = tempfile::tempdir().unwrap();
    let (root_pem, issuing_pem) = env.write_chain(out.path());
    let openssl = tools::tool("openssl");

    let mut files: Vec<_> = std::fs::read_dir(ca::shipped_policies())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "five shipped policies: {files:?}");
    let mut ca_managed = 0;
    for file in files {
        let id = file.file_stem().unwrap().to_str().unwrap().to_owned();
        // Read the policy file independently of sceau's loader.
        let declared: toml::Value =
            toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let generation = declared["key"]["generation"].as_str().unwrap().to_owned();
        let issued: Issued = issuer
            .issue(
                grant(),
                request(&env, &id, key_source_for(&generation, out.path(), &id)),
            )
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let pem_path = out.path().join(format!("{id}.pem"));
        std::fs::write(
            &pem_path,
            issued.certificate.to_pem(der::pem::LineEnding::LF).unwrap(),
        )
        .unwrap();

        // pkilint, ETSI: detected as a legal-person certificate, no ERROR or FATAL.
        let (findings, detected) =
            tools::pkilint_report("lint_etsi_cert", &["-d", "-o"], &pem_path);
        // pkilint 0.13 has no QCP-l type of its own: a seal certificate outside the
        // web profiles is its legal-person type, which runs EN 319 412-3 and -5.
        assert_eq!(
            detected, "NCP-LEGAL-PERSON-CERTIFICATE",
            "{id}: pkilint detected {detected:?}"
        );
        eprintln!("{id}: lint_etsi_cert detected {detected}:\n{findings}");
        for line in findings.lines() {
            assert!(
                !line.contains("ERROR") && !line.contains("FATAL"),
                "{id}: lint_etsi_cert: {findings}"
            );
            if line.contains("WARNING") {
                assert!(
                    ACCEPTED_WARNINGS.iter().any(|w| line.contains(w)),
                    "{id}: unexpected warning: {line}\n{findings}"
                );
            }
        }
        let pkix = tools::pkilint_errors("lint_pkix_cert", &[], &pem_path);
        assert!(pkix.is_empty(), "{id}: lint_pkix_cert: {pkix}");

        // OpenSSL, strict, up to the root.
        let verify = tools::run(
            &openssl,
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                root_pem.to_str().unwrap(),
                "-untrusted",
                issuing_pem.to_str().unwrap(),
                pem_path.to_str().unwrap(),
            ],
        );
        assert!(
            verify.status.success(),
            "{id}: openssl verify: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );

        // Policy OIDs, QcType and QcSSCD are the file's.
        let certificate = Certificate::from_der(&issued.der).unwrap();
        let CertificatePolicies(policies) = CertificatePolicies::from_der(extension(
            &certificate,
            rfc5912::ID_CE_CERTIFICATE_POLICIES,
        ))
        .unwrap();
        let found: BTreeSet<String> = policies
            .iter()
            .map(|p| p.policy_identifier.to_string())
            .collect();
        let expected: BTreeSet<String> = [
            declared["etsi_policy_oid"].as_str().unwrap().to_owned(),
            declared["ca_policy_oid"].as_str().unwrap().to_owned(),
        ]
        .into();
        assert_eq!(found, expected, "{id}: certificate policies");
        let statements =
            QcSummary::from_der(extension(&certificate, qc::ID_PE_QC_STATEMENTS)).unwrap();
        let types: Vec<ObjectIdentifier> = declared["qc_statements"]["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| match t.as_str().unwrap() {
                "eseal" => qc::QC_TYPE_ESEAL,
                other => panic!("{id}: unexpected type {other}"),
            })
            .collect();
        assert_eq!(statements.types, types, "{id}: QcType");
        assert_eq!(
            statements.sscd,
            declared["qc_statements"]["sscd"].as_bool().unwrap(),
            "{id}: QcSSCD"
        );
        assert_eq!(
            statements.sscd,
            declared["level"].as_str().unwrap() == "QCP-l-qscd",
            "{id}: QcSSCD exactly for QCP-l-qscd"
        );

        // The stored certificate is the returned one.
        let stored = env.store.issued_certificate(&issued.serial).await.unwrap();
        assert_eq!(stored.der, issued.der);
        assert_eq!(stored.policy_id, id);

        // CA-managed: the key is on the seal token, labelled with the credential id,
        // and its public key is the certificate's.
        if generation.starts_with("ca") {
            ca_managed += 1;
            let credential = issued.credential_id.unwrap();
            let key = issued.key.as_ref().unwrap();
            assert_eq!(key.label, credential.to_string());
            let seal = env.hsm.token(TokenRole::Seal).unwrap().clone();
            let found = seal.find_key_blocking(&key.id).unwrap();
            assert_eq!(
                found.public_key,
                certificate.tbs_certificate.subject_public_key_info
            );
            assert_eq!(
                seal.key_ids_with_label_blocking(&credential.to_string())
                    .unwrap(),
                vec![key.id]
            );
            let stored = env.store.seal_credential(credential).await.unwrap();
            assert_eq!(stored.certificate.as_deref(), Some(issued.der.as_slice()));
            assert_eq!(stored.key.key_id, key.id.as_bytes().to_vec());
            assert_eq!(stored.entity_id, env.entity.id);
        } else {
            assert!(issued.credential_id.is_none() && issued.key.is_none());
        }
    }
    assert_eq!(ca_managed, 2);
    // Independently of sceau: every private key on the seal token is sensitive,
    // never extractable, and cannot be read or wrapped.
    assert_eq!(
        support::hsm::assert_private_keys_locked_down(&softhsm, "sceau-seal"),
        2
    );
    env.journal.shutdown().await.unwrap();
}

// One CA-managed issuance per backend: the records, the journal entry, the key.
#[test]
fn ca_managed_issuance_on_sqlite() {
    let Some(softhsm) = support::hsm::isolated("ca_managed_issuance_on_sqlite") else {
        return;
    };
    ca::runtime().block_on(ca_managed_issuance(softhsm, support::db::sqlite()));
}

#[test]
fn ca_managed_issuance_on_postgres() {
    let Some(softhsm) = support::hsm::isolated("ca_managed_issuance_on_postgres") else {
        return;
    };
    ca::runtime().block_on(async {
        if let Some(db) = support::db::postgres().await {
            ca_managed_issuance(softhsm, db).await;
        }
    });
}

async fn ca_managed_issuance(softhsm: SoftHsm, db: TestDb) {
    let env = ca::set_up(&softhsm, &db, &ca::public_ceremony()).await;
    let issuer = env.issuer(&ca::shipped_policies()).await;
    let size_before = env.journal.size().await.unwrap();
    let mut request = request(
        &env,
        "seal-ca-managed",
        KeySource::Generate {
            algorithm: Some(sceau::hsm::KeyAlgorithm::Rsa3072),
        },
    );
    request.validity_days = Some(365);
    let issued = issuer.issue(grant(), request.clone()).await.unwrap();
    let certificate = &issued.certificate;
    let validity = &certificate.tbs_certificate.validity;
    let days = validity
        .not_after
        .to_system_time()
        .duration_since(validity.not_before.to_system_time())
        .unwrap()
        .as_secs()
        / 86_400;
    assert_eq!(days, 365);
    assert_eq!(
        certificate.tbs_certificate.subject.to_string(),
        "CN=Cachet des factures,2.5.4.97=#0c0f4e545246522d313233343536373832,\
         O=Société Exemple de Scellement,C=FR"
    );

    // The journal holds the issuance, with the certificate itself.
    assert_eq!(env.journal.size().await.unwrap(), size_before + 1);
    let entry = env.journal.entry(issued.journal_index).await.unwrap();
    assert_eq!(entry.kind, "certificate.issued");
    let event = entry.event().unwrap().unwrap();
    let details = &event.details;
    assert_eq!(details["request_id"], request.request_id.to_string());
    assert_eq!(details["policy"], "seal-ca-managed");
    assert_eq!(details["serial"], issued.serial);
    assert_eq!(details["certificate_sha256"], issued.sha256);
    assert_eq!(
        details["key"]["key_id"],
        issued.key.as_ref().unwrap().id.to_string()
    );
    assert_eq!(details["key"]["algorithm"], "rsa-3072");
    assert!(
        details["subject"]
            .as_str()
            .unwrap()
            .contains("Cachet des factures")
    );
    assert_eq!(event.actor, ACTOR);

    let stored = env.store.issued_certificate(&issued.serial).await.unwrap();
    assert_eq!(stored.journal_index, issued.journal_index);
    assert_eq!(stored.request_id, request.request_id);
    assert_eq!(stored.credential_id, issued.credential_id);
    assert_eq!(env.store.certificate_counts().await.unwrap(), (0, 1));
    let credential = env
        .store
        .seal_credential(issued.credential_id.unwrap())
        .await
        .unwrap();
    assert_eq!(
        credential.status,
        sceau::store::entities::CredentialStatus::Pending,
        "not usable before the RCCS accepts it"
    );

    // Renewal is a new key: the same key is never certified twice.
    let again = issuer.issue(grant(), request).await.unwrap();
    assert_ne!(
        again.key.as_ref().unwrap().id,
        issued.key.as_ref().unwrap().id
    );
    assert_ne!(again.serial, issued.serial);
    env.journal.shutdown().await.unwrap();
}

#[test]
fn csr_intake_refuses_bad_requests_and_stores_nothing() {
    let Some(softhsm) =
        support::hsm::isolated("csr_intake_refuses_bad_requests_and_stores_nothing")
    else {
        return;
    };
    ca::runtime().block_on(csr_intake(softhsm, support::db::sqlite()));
}

async fn csr_intake(softhsm: SoftHsm, db: TestDb) {
    let env = ca::set_up(&softhsm, &db, &ca::public_ceremony()).await;
    let issuer = env.issuer(&ca::shipped_policies()).await;
    let dir = tempfile::tempdir().unwrap();
    let entity_csr = |csr: Vec<u8>| KeySource::Csr { csr, device: None };

    // One good RSA-4096 request, issued, to test "already certified" afterwards.
    let good = ca::openssl_csr(dir.path(), "good", "rsa:4096");
    issuer
        .issue(
            grant(),
            request(&env, "seal-entity", entity_csr(good.clone())),
        )
        .await
        .unwrap();
    let counts = env.store.certificate_counts().await.unwrap();
    let journal_size = env.journal.size().await.unwrap();
    let signs = env.sign_calls(TokenRole::Issuing);

    let mut bad_signature = good.clone();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"\x00\x00extra");
    let rsa_2048 = ca::openssl_csr(dir.path(), "small", "rsa:2048");
    let explicit_key = dir.path().join("explicit.key");
    let generated = tools::run(
        &tools::tool("openssl"),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-param_enc",
            "explicit",
            "-genkey",
            "-out",
            explicit_key.to_str().unwrap(),
        ],
    );
    assert!(generated.status.success());
    let explicit = ca::openssl_csr_for_key(dir.path(), "explicit", &explicit_key);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad signature", bad_signature, "proof of possession"),
        ("RSA-2048", rsa_2048, "2048 bits is below the 4096"),
        ("explicit curve", explicit, "explicit curve parameters"),
        (
            "garbage",
            b"this is not a certification request".to_vec(),
            "not a PKCS#10",
        ),
        ("trailing data", trailing, "trailing data"),
        ("already certified", good, "already certified"),
    ];
    for (name, csr, reason) in cases {
        let error = issuer
            .issue(grant(), request(&env, "seal-entity", entity_csr(csr)))
            .await
            .expect_err(name);
        assert!(
            error.to_string().contains(reason),
            "{name}: {error} does not say {reason:?}"
        );
        match (name, &error) {
            ("already certified", IssuanceError::KeyAlreadyCertified)
            | ("bad signature", IssuanceError::Csr(CsrError::BadSignature))
            | ("RSA-2048", IssuanceError::Csr(CsrError::KeyPolicy(_)))
            | ("explicit curve", IssuanceError::Csr(CsrError::ExplicitCurve))
            | ("garbage", IssuanceError::Csr(CsrError::Malformed(_)))
            | ("trailing data", IssuanceError::Csr(CsrError::TrailingData(_))) => {}
            _ => panic!("{name}: unexpected error {error:?}"),
        }
        // Stores nothing, journals nothing, signs nothing.
        assert_eq!(
            env.store.certificate_counts().await.unwrap(),
            counts,
            "{name}"
        );
        assert_eq!(env.journal.size().await.unwrap(), journal_size, "{name}");
        assert_eq!(env.sign_calls(TokenRole::Issuing), signs, "{name}");
    }

    // The policy's device evidence is required, and only where it belongs.
    let fresh = ca::openssl_csr(dir.path(), "fresh", "rsa:4096");
    for (policy, device, reason) in [
        ("seal-entity-qscd", None, "QSealCD model"),
        ("seal-chip", None, "chip handed over"),
        (
            "seal-entity",
            Some(DeviceEvidence::Chip {
                reference: "CHIP-1".to_owned(),
            }),
            "no device evidence",
        ),
    ] {
        let error = issuer
            .issue(
                grant(),
                request(
                    &env,
                    policy,
                    KeySource::Csr {
                        csr: fresh.clone(),
                        device,
                    },
                ),
            )
            .await
            .unwrap_err();
        assert!(error.to_string().contains(reason), "{policy}: {error}");
    }
    let error = issuer
        .issue(grant(), request(&env, "seal-ca-managed", entity_csr(fresh)))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("a CSR is not accepted"),
        "{error}"
    );
    assert_eq!(env.store.certificate_counts().await.unwrap(), counts);
    env.journal.shutdown().await.unwrap();
}

#[test]
fn a_certificate_that_fails_the_lint_is_never_signed() {
    let Some(softhsm) = support::hsm::isolated("a_certificate_that_fails_the_lint_is_never_signed")
    else {
        return;
    };
    ca::runtime().block_on(lint_before_sign(softhsm, support::db::sqlite()));
}

async fn lint_before_sign(softhsm: SoftHsm, db: TestDb) {
    let env = ca::set_up(&softhsm, &db, &ca::public_ceremony()).await;
    let dir = tempfile::tempdir().unwrap();
    let managed = ca::shipped_policy("seal-ca-managed");
    let entity = ca::shipped_policy("seal-entity");
    // Profiles the loader accepts (they are well-formed) but that make TBSCertificates
    // EN 319 412 forbids: only the pre-signing lint stands between them and the CA key.
    let policies = ca::policies_dir(
        dir.path(),
        &[
            (
                "no-qc-type",
                ca::edit(&managed, r#"types = ["eseal"]"#, "types = []"),
            ),
            (
                "extra-key-usage",
                ca::edit(
                    &entity,
                    r#"key_usage = ["non_repudiation"]"#,
                    r#"key_usage = ["non_repudiation", "key_encipherment"]"#,
                ),
            ),
            (
                "esign-type",
                ca::edit(
                    &ca::edit(&managed, r#"types = ["eseal"]"#, r#"types = ["esign"]"#),
                    "10.3.3.",
                    "10.3.9.",
                ),
            ),
        ],
    );
    let issuer = env.issuer(&policies).await;
    let seal = env.hsm.token(TokenRole::Seal).unwrap().clone();
    for (policy, key, rule) in [
        (
            "no-qc-type",
            KeySource::Generate { algorithm: None },
            "en319412-5.qc_type",
        ),
        (
            "esign-type",
            KeySource::Generate { algorithm: None },
            "en319412-5.qc_type",
        ),
        (
            "extra-key-usage",
            KeySource::Csr {
                csr: ca::openssl_csr(dir.path(), "eku", "rsa:4096"),
                device: None,
            },
            "seal.key_usage",
        ),
    ] {
        let signs = (
            env.sign_calls(TokenRole::Issuing),
            env.sign_calls(TokenRole::Seal),
            env.sign_calls(TokenRole::Services),
        );
        let journal_size = env.journal.size().await.unwrap();
        let error = issuer
            .issue(grant(), request(&env, policy, key))
            .await
            .expect_err(policy);
        let IssuanceError::LintFailed {
            findings,
            journal_index,
        } = &error
        else {
            panic!("{policy}: {error:?}");
        };
        assert!(
            findings.iter().any(|f| f.rule == rule),
            "{policy}: {findings:?}"
        );
        // Zero C_Sign calls on any token: nothing was signed.
        assert_eq!(
            (
                env.sign_calls(TokenRole::Issuing),
                env.sign_calls(TokenRole::Seal),
                env.sign_calls(TokenRole::Services),
            ),
            signs,
            "{policy}"
        );
        // One journal entry that says why.
        assert_eq!(env.journal.size().await.unwrap(), journal_size + 1);
        let entry = env.journal.entry(*journal_index).await.unwrap();
        assert_eq!(entry.kind, "certificate.lint_refused");
        let details = entry.event().unwrap().unwrap().details;
        assert_eq!(details["policy"], policy);
        assert!(details["findings"].to_string().contains(rule), "{details}");
        // No certificate, no reservation, and no key left behind.
        assert_eq!(env.store.certificate_counts().await.unwrap(), (0, 0));
        assert!(
            env.store
                .seal_credentials_of(env.entity.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(
        support::hsm::assert_private_keys_locked_down(&softhsm, "sceau-seal"),
        0,
        "the keys generated for refused certificates are destroyed"
    );
    drop(seal);
    env.journal.shutdown().await.unwrap();
}

/// The seed CA's own numbering (seed 000 §6) works by configuration alone.
#[test]
fn the_seed_ca_numbering_needs_no_code_change() {
    let Some(softhsm) = support::hsm::isolated("the_seed_ca_numbering_needs_no_code_change") else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let env = ca::set_up(&softhsm, &db, &ca::public_ceremony()).await;
        let dir = tempfile::tempdir().unwrap();
        // Type n of seed 000: CP 1.3.6.1.4.1.142057.10.3.n.1.1, CGU …10.3.n.2.1.
        let files: Vec<(&str, String)> = [
            ("seal-entity", 1),
            ("seal-entity-qscd", 2),
            ("seal-ca-managed", 3),
            ("seal-chip", 4),
        ]
        .into_iter()
        .map(|(id, n)| {
            let text = ca::shipped_policy(id);
            let text = ca::edit(
                &text,
                &format!("1.3.6.1.4.1.32473.10.3.{n}.1.1"),
                &format!("1.3.6.1.4.1.142057.10.3.{n}.1.1"),
            );
            let text = ca::edit(
                &text,
                &format!("1.3.6.1.4.1.32473.10.3.{n}.2.1"),
                &format!("1.3.6.1.4.1.142057.10.3.{n}.2.1"),
            );
            (id, text)
        })
        .collect();
        let policies = ca::policies_dir(dir.path(), &files);
        let issuer = env.issuer(&policies).await;
        assert_eq!(issuer.policies().len(), 4);
        let managed = issuer.policies().get("seal-ca-managed").unwrap();
        assert_eq!(
            managed.terms.oid.to_string(),
            "1.3.6.1.4.1.142057.10.3.3.2.1"
        );
        let issued = issuer
            .issue(
                grant(),
                request(
                    &env,
                    "seal-ca-managed",
                    KeySource::Generate { algorithm: None },
                ),
            )
            .await
            .unwrap();
        let CertificatePolicies(policies) = CertificatePolicies::from_der(extension(
            &issued.certificate,
            rfc5912::ID_CE_CERTIFICATE_POLICIES,
        ))
        .unwrap();
        let oids: Vec<String> = policies
            .iter()
            .map(|p| p.policy_identifier.to_string())
            .collect();
        assert_eq!(oids, ["0.4.0.194112.1.1", "1.3.6.1.4.1.142057.10.3.3.1.1"]);
        env.journal.shutdown().await.unwrap();
    });
}

/// 10,000 certificates from one CA: every serial unique, positive, at most 20
/// octets and at least 64 bits. (An EC issuing CA and software-made P-256 CSRs
/// keep this to seconds; the serial logic does not depend on the key types.)
#[test]
fn ten_thousand_serial_numbers_are_unique_positive_and_short() {
    let Some(softhsm) =
        support::hsm::isolated("ten_thousand_serial_numbers_are_unique_positive_and_short")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let ceremony = dir.path().join("ceremony.toml");
        let text = std::fs::read_to_string(ca::public_ceremony()).unwrap();
        let text = ca::edit(&text, "algorithm = \"rsa-4096\"", "algorithm = \"ec-p384\"");
        let text = ca::edit(&text, "algorithm = \"rsa-3072\"", "algorithm = \"ec-p256\"");
        std::fs::write(&ceremony, text).unwrap();
        let env = ca::set_up(&softhsm, &db, &ceremony).await;
        let policy = ca::edit(
            &ca::shipped_policy("seal-entity"),
            r#"algorithms = ["rsa-4096"]"#,
            r#"algorithms = ["ec-p256"]"#,
        );
        let policies = ca::policies_dir(dir.path(), &[("volume", policy)]);
        let issuer = env.issuer(&policies).await;

        const TOTAL: usize = 10_000;
        const WORKERS: usize = 8;
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let issuer = issuer.clone();
            let entity = env.entity.id;
            tasks.push(tokio::spawn(async move {
                let mut serials = Vec::new();
                for _ in 0..TOTAL / WORKERS {
                    let issued = issuer
                        .issue(
                            sceau::pki::signing::Grant::validated_request(vec!["test".to_owned()]),
                            IssuanceRequest {
                                request_id: Uuid::new_v4(),
                                policy_id: "volume".to_owned(),
                                entity_id: entity,
                                seal_name: "Volume".to_owned(),
                                validity_days: Some(30),
                                key: KeySource::Csr {
                                    csr: ca::p256_csr(),
                                    device: None,
                                },
                            },
                        )
                        .await
                        .unwrap();
                    serials.push(issued.certificate.tbs_certificate.serial_number.clone());
                }
                serials
            }));
        }
        let mut serials = Vec::new();
        for task in tasks {
            serials.extend(task.await.unwrap());
        }
        assert_eq!(serials.len(), TOTAL);
        let mut unique = BTreeSet::new();
        for serial in &serials {
            let bytes = serial.as_bytes();
            assert!(bytes.len() <= 20, "{serial:?} longer than 20 octets");
            assert!(bytes[0] & 0x80 == 0, "{serial:?} negative");
            let significant = bytes.iter().skip_while(|b| **b == 0).count();
            assert!(significant >= 8, "{serial:?} below 64 bits");
            assert!(unique.insert(bytes.to_vec()), "{serial:?} issued twice");
        }
        // The database holds exactly those, each once.
        let stored = env.store.issued_serials().await.unwrap();
        assert_eq!(stored.len(), TOTAL);
        let stored: BTreeSet<Vec<u8>> = stored.iter().map(|s| hex::decode(s).unwrap()).collect();
        assert_eq!(stored, unique);
        env.journal.shutdown().await.unwrap();
    });
}
