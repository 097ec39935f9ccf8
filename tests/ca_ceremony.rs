//! The key ceremony makes a CA hierarchy that OpenSSL and pkilint accept, keeps
//! every private key locked in its token, and refuses to run twice unless forced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sceau::clock::SystemClock;
use std::path::Path;

use der::{Encode, EncodePem};
use sceau::config::TokenRole;
use sceau::hsm::Hsm;
use sceau::pki::ceremony::{self, CeremonyError, CeremonyFile};
use support::tools;

fn write_pem(dir: &Path, name: &str, certificate: &x509_cert::Certificate) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, certificate.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.der")),
        certificate.to_der().unwrap(),
    )
    .unwrap();
    path
}

/// The serials of a ceremony's certificates, reserved in a store of their
/// own (what `sceau ca init` does in its database before the ceremony).
fn serials(file: &CeremonyFile) -> sceau::pki::serials::CeremonySerials {
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let store = db.store().await;
        sceau::pki::serials::CeremonySerials::reserve(
            &store,
            file.client_auth.is_some(),
            std::time::SystemTime::now(),
        )
        .await
        .unwrap()
    })
}

#[test]
fn ceremony_hierarchy_passes_openssl_and_pkilint() {
    let Some(softhsm) = support::hsm::isolated("ceremony_hierarchy_passes_openssl_and_pkilint")
    else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.toml");
    let (file, sha256) = CeremonyFile::load(&path).unwrap();
    let roles = [TokenRole::Root, TokenRole::Issuing, TokenRole::Services];
    let hsm = Hsm::open(&softhsm.settings(), &roles).unwrap();
    // The ceremony reads time from the clock it is given (tests move it).
    let start = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let clock = sceau::clock::ManualClock::new(start);
    let outcome = ceremony::run(&file, &sha256, &hsm, &clock, false, serials(&file)).unwrap();
    assert_eq!(
        outcome
            .root
            .certificate
            .tbs_certificate
            .validity
            .not_before
            .to_system_time(),
        start
    );
    assert_eq!(outcome.transcript.started_at, "2027-01-15T08:00:00Z");

    let out = tempfile::tempdir().unwrap();
    let root = write_pem(out.path(), "root", &outcome.root.certificate);
    let issuing = write_pem(out.path(), "issuing", &outcome.issuing.certificate);
    let ocsp = write_pem(out.path(), "ocsp", &outcome.ocsp.certificate);
    let tsa = write_pem(out.path(), "tsa", &outcome.tsa.certificate);
    let client_auth = write_pem(
        out.path(),
        "client-auth",
        &outcome.client_auth.as_ref().unwrap().certificate,
    );

    let openssl = tools::tool("openssl");
    let verify = |leaf: &Path, purpose: Option<&str>| {
        // The certificates start at the manual clock's time: verify at that time.
        let mut args = vec!["verify", "-x509_strict", "-attime", "1800000060"];
        args.extend(["-CAfile", root.to_str().unwrap()]);
        if leaf != issuing {
            args.extend(["-untrusted", issuing.to_str().unwrap()]);
        }
        if let Some(purpose) = purpose {
            args.extend(["-purpose", purpose]);
        }
        args.push(leaf.to_str().unwrap());
        let output = tools::run(&openssl, &args);
        assert!(
            output.status.success(),
            "openssl verify {}: {}{}",
            leaf.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    verify(&issuing, None);
    verify(&ocsp, Some("ocsphelper"));
    verify(&tsa, Some("timestampsign"));
    verify(&root, None);
    verify(&client_auth, None);

    for (name, pem) in [
        ("root", &root),
        ("issuing", &issuing),
        ("ocsp", &ocsp),
        ("tsa", &tsa),
        ("client-auth", &client_auth),
    ] {
        let der = pem.with_extension("der");
        let findings = tools::pkilint_errors("lint_pkix_cert", &[], &der);
        assert!(
            findings.is_empty(),
            "pkilint on the {name} certificate:\n{findings}"
        );
    }

    // What the standards and the issue ask of each certificate, read back by OpenSSL.
    let text = |pem: &Path| {
        let output = tools::run(
            &openssl,
            &["x509", "-noout", "-text", "-in", pem.to_str().unwrap()],
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let ocsp_text = text(&ocsp);
    assert!(ocsp_text.contains("OCSP Signing"), "{ocsp_text}");
    assert!(ocsp_text.contains("OCSP No Check"), "{ocsp_text}");
    let tsa_text = text(&tsa);
    assert!(
        tsa_text.contains("X509v3 Extended Key Usage: critical"),
        "{tsa_text}"
    );
    assert!(tsa_text.contains("Time Stamping"), "{tsa_text}");
    let issuing_text = text(&issuing);
    assert!(
        issuing_text.contains("http://pki.sceau.eu/crl/root.crl"),
        "{issuing_text}"
    );
    assert!(
        issuing_text.contains("CA Issuers - URI:http://pki.sceau.eu/certs/root.der"),
        "{issuing_text}"
    );
    assert!(issuing_text.contains("pathlen:0"), "{issuing_text}");
    // The client-authentication CA: a root-signed sub-CA limited to clientAuth.
    let client_text = text(&client_auth);
    for needle in [
        "X509v3 Basic Constraints: critical",
        "CA:TRUE, pathlen:0",
        "X509v3 Key Usage: critical",
        "Certificate Sign, CRL Sign",
        "TLS Web Client Authentication",
        "http://pki.sceau.eu/crl/root.crl",
        "CA Issuers - URI:http://pki.sceau.eu/certs/root.der",
        "X509v3 Certificate Policies",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(client_text.contains(needle), "{needle:?} in {client_text}");
    }
    assert_eq!(
        outcome.client_auth.as_ref().unwrap().key.label,
        "sceau-example-2026-client-auth"
    );

    // The transcript names every key and certificate.
    assert_eq!(outcome.transcript.keys.len(), 6);
    assert_eq!(outcome.transcript.certificates.len(), 5);
    assert!(
        outcome
            .transcript
            .certificates
            .iter()
            .any(|c| c.purpose == ceremony::KeyPurpose::ClientAuth)
    );
    assert_eq!(outcome.transcript.ceremony_file_sha256, sha256);

    // Every private key on every token is locked down (read through PKCS#11 directly).
    let mut keys = 0;
    for label in softhsm.labels() {
        keys += support::hsm::assert_private_keys_locked_down(&softhsm, label);
    }
    assert_eq!(
        keys, 6,
        "root, issuing, client-auth, ocsp, tsa and audit keys"
    );

    // A second run on the same tokens is refused, unless forced.
    let again =
        ceremony::run(&file, &sha256, &hsm, &SystemClock, false, serials(&file)).unwrap_err();
    assert!(
        matches!(again, CeremonyError::AlreadyDone { .. }),
        "{again}"
    );
    assert!(again.to_string().contains("--force"));
    let forced = ceremony::run(&file, &sha256, &hsm, &SystemClock, true, serials(&file)).unwrap();
    assert!(forced.transcript.forced);
    assert_ne!(forced.root.key.id, outcome.root.key.id);
}

#[test]
fn ceremony_files_are_checked_before_anything_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.toml"),
    )
    .unwrap();
    for (broken, expected) in [
        (
            good.replace("validity_days = 30 ", "validity_days = 400 "),
            "ocsp.validity_days",
        ),
        (good.replace("\"rsa-3072\"", "\"rsa-1024\""), "rsa-1024"),
        (
            good.replace("country = \"FR\"", "country = \"France\""),
            "country",
        ),
        (
            good.replace("http://ocsp.sceau.eu", "ftp://ocsp"),
            "ftp://ocsp",
        ),
        (good.replace("[audit]", "[audit]\nextra = 1"), "extra"),
        (
            good.replace("key_usage_days = 365", "key_usage_days = 4000"),
            "tsa.key_usage_days exceeds",
        ),
        (
            good.replace("key_usage_days = 365", ""),
            "tsa.key_usage_days is required",
        ),
        (
            good.replace(
                "http://pki.sceau.eu/crl/client-auth.crl",
                "ldap://pki/client-auth",
            ),
            "client_auth",
        ),
    ] {
        let path = dir.path().join("ceremony.toml");
        std::fs::write(&path, &broken).unwrap();
        let error = CeremonyFile::load(&path).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "expected {expected:?} in: {error}"
        );
    }
    // A ceremony file written before the client-auth CA existed still loads.
    let start = good.find("[client_auth]").unwrap();
    let end = good.find("[ocsp]").unwrap();
    let older = format!("{}{}", &good[..start], &good[end..]);
    let path = dir.path().join("older.toml");
    std::fs::write(&path, older).unwrap();
    assert!(CeremonyFile::load(&path).unwrap().0.client_auth.is_none());
    let missing = CeremonyFile::load(&dir.path().join("nope.toml")).unwrap_err();
    assert!(missing.to_string().contains("nope.toml"));
    CeremonyFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.dev.toml"))
        .unwrap();
}

/// The same adapter lets the cms builder sign: OpenSSL verifies a detached
/// CMS signature made with a token key and its ceremony certificate.
#[test]
fn cms_builder_signs_with_a_token_key() {
    use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
    use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
    use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
    use sceau::hsm::{HsmSignature, HsmSigner};
    use sha2::Digest;

    let Some(softhsm) = support::hsm::isolated("cms_builder_signs_with_a_token_key") else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.dev.toml");
    let (file, sha256) = CeremonyFile::load(&path).unwrap();
    let roles = [TokenRole::Root, TokenRole::Issuing, TokenRole::Services];
    let hsm = Hsm::open(&softhsm.settings(), &roles).unwrap();
    let outcome = ceremony::run(&file, &sha256, &hsm, &SystemClock, false, serials(&file)).unwrap();

    let document = b"an invoice to seal".to_vec();
    let digest = sha2::Sha256::digest(&document).to_vec();
    let content = EncapsulatedContentInfo {
        econtent_type: const_oid::db::rfc5911::ID_DATA,
        econtent: None,
    };
    let tsa = &outcome.tsa;
    let signer = HsmSigner::new(
        hsm.token(TokenRole::Services).unwrap().clone(),
        tsa.key.clone(),
    );
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: tsa.certificate.tbs_certificate.issuer.clone(),
        serial_number: tsa.certificate.tbs_certificate.serial_number.clone(),
    });
    let sha256_alg = spki::AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_256,
        parameters: None,
    };
    let signer_info =
        SignerInfoBuilder::new(&signer, sid, sha256_alg.clone(), &content, Some(&digest)).unwrap();
    let signed = SignedDataBuilder::new(&content)
        .add_digest_algorithm(sha256_alg)
        .unwrap()
        .add_certificate(CertificateChoices::Certificate(tsa.certificate.clone()))
        .unwrap()
        .add_certificate(CertificateChoices::Certificate(
            outcome.issuing.certificate.clone(),
        ))
        .unwrap()
        .add_signer_info::<HsmSigner, HsmSignature>(signer_info)
        .unwrap()
        .build()
        .unwrap();

    let out = tempfile::tempdir().unwrap();
    let cms_path = out.path().join("seal.p7s");
    std::fs::write(&cms_path, signed.to_der().unwrap()).unwrap();
    let content_path = out.path().join("document.txt");
    std::fs::write(&content_path, &document).unwrap();
    let root = write_pem(out.path(), "root", &outcome.root.certificate);
    let openssl = tools::tool("openssl");
    let verify = |content: &Path| {
        tools::run(
            &openssl,
            &[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                cms_path.to_str().unwrap(),
                "-content",
                content.to_str().unwrap(),
                "-CAfile",
                root.to_str().unwrap(),
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ],
        )
    };
    let output = verify(&content_path);
    assert!(
        output.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let other = out.path().join("other.txt");
    std::fs::write(&other, b"another document").unwrap();
    assert!(
        !verify(&other).status.success(),
        "a changed document must not verify"
    );
}
