//! TLS client certificates from the client-authentication CA: the ceremony makes
//! the CA, OpenSSL and pkilint accept it and what it issues for an OpenSSL CSR,
//! the issuance is journaled and recorded, bad requests get typed errors, and
//! the mutual-TLS listener completes the handshake with such a certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use der::{Decode, EncodePem};
use rustls::HandshakeKind;
use sceau::error::{ErrorKind, HasErrorKind};
use sceau::pki::client_auth::{
    ClientCertificateError, ClientCertificateRequest, IssuedClientCertificate,
};
use sceau::pki::csr::CsrError;
use support::ca;
use support::service::{self, Service};
use support::test_ca::{Issued, MtlsPki, TestCa};
use support::tls_session::{Answer, TlsClient, alert_of, attempt};
use support::tools;
use uuid::Uuid;
use x509_cert::Certificate;

fn request(entity: Uuid, csr_der: Vec<u8>) -> ClientCertificateRequest {
    ClientCertificateRequest {
        request_id: Uuid::new_v4(),
        entity_id: entity,
        organization: "Société Exemple de Scellement".to_owned(),
        organization_identifier: "NTRFR-123456782".to_owned(),
        country: "FR".to_owned(),
        common_name: "Camille Martin".to_owned(),
        csr_der,
        validity_days: 365,
    }
}

fn grant() -> sceau::pki::signing::Grant {
    sceau::pki::signing::Grant::checked_rccs(sceau::journal::Actor::Principal(
        "ra:test-operator".to_owned(),
    ))
}

fn write_pem(dir: &Path, name: &str, certificate: &Certificate) -> PathBuf {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, certificate.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.der")),
        der::Encode::to_der(certificate).unwrap(),
    )
    .unwrap();
    path
}

#[test]
fn client_certificates_pass_openssl_and_pkilint_and_are_journaled() {
    let Some(softhsm) =
        support::hsm::isolated("client_certificates_pass_openssl_and_pkilint_and_are_journaled")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let env = ca::set_up(&softhsm, &db, &ca::dev_ceremony()).await;
        let client_auth_ca = env.client_auth.clone().expect("the dev ceremony makes it");
        let issuer = env.client_issuer().await;
        let out = tempfile::tempdir().unwrap();
        let key = ca::openssl_p256_key(out.path(), "rccs");
        let csr = ca::openssl_csr_for_key(out.path(), "rccs", &key);

        let issued: IssuedClientCertificate = issuer
            .issue(grant(), request(env.entity.id, csr.clone()))
            .await
            .unwrap();
        let leaf = Certificate::from_der(&issued.der).unwrap();
        assert_eq!(
            issued.serial,
            hex::encode(leaf.tbs_certificate.serial_number.as_bytes())
        );
        assert_eq!(
            issued.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&issued.der))
        );
        assert_eq!(
            leaf.tbs_certificate.issuer,
            client_auth_ca.tbs_certificate.subject
        );
        let not_after: time::OffsetDateTime = leaf
            .tbs_certificate
            .validity
            .not_after
            .to_system_time()
            .into();
        assert_eq!(issued.not_after, not_after);

        // OpenSSL: the chain root → client-auth CA → leaf, for TLS clients.
        let root_pem = write_pem(out.path(), "root", &env.root);
        let ca_pem = write_pem(out.path(), "client-auth", &client_auth_ca);
        let leaf_pem = write_pem(out.path(), "leaf", &leaf);
        let openssl = tools::tool("openssl");
        let verify = |purpose: &str, target: &Path, untrusted: bool| {
            let mut args = vec!["verify", "-x509_strict", "-purpose", purpose];
            args.extend(["-CAfile", root_pem.to_str().unwrap()]);
            if untrusted {
                args.extend(["-untrusted", ca_pem.to_str().unwrap()]);
            }
            args.push(target.to_str().unwrap());
            tools::run(&openssl, &args)
        };
        let output = verify("sslclient", &leaf_pem, true);
        assert!(
            output.status.success(),
            "openssl verify: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The CA's extended key usage limits it: its leaves are no TLS servers.
        assert!(!verify("sslserver", &leaf_pem, true).status.success());

        let text = |pem: &Path| {
            let output = tools::run(
                &openssl,
                &["x509", "-noout", "-text", "-in", pem.to_str().unwrap()],
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let leaf_text = text(&leaf_pem);
        for needle in [
            "TLS Web Client Authentication",
            "X509v3 Basic Constraints: critical",
            "CA:FALSE",
            "X509v3 Key Usage: critical",
            "Digital Signature",
            "http://127.0.0.1:8080/crl/client-auth.crl",
            "CA Issuers - URI:http://127.0.0.1:8080/certs/client-auth.der",
            "Subject: C = FR, O = Soci",
            "organizationIdentifier = NTRFR-123456782, CN = Camille Martin",
        ] {
            assert!(
                leaf_text.contains(needle),
                "{needle:?} not in:\n{leaf_text}"
            );
        }
        assert!(!leaf_text.contains("ignored"), "{leaf_text}");
        let ca_text = text(&ca_pem);
        for needle in [
            "CA:TRUE, pathlen:0",
            "Certificate Sign, CRL Sign",
            "TLS Web Client Authentication",
            "http://127.0.0.1:8080/crl/root.crl",
            "CA Issuers - URI:http://127.0.0.1:8080/certs/root.der",
            "X509v3 Certificate Policies",
        ] {
            assert!(ca_text.contains(needle), "{needle:?} not in:\n{ca_text}");
        }

        // No waiver needed: lint_pkix_cert finds nothing at ERROR or above,
        // loopback URLs included.
        for (name, pem) in [("client-auth CA", &ca_pem), ("client", &leaf_pem)] {
            let findings = tools::pkilint_errors("lint_pkix_cert", &[], &pem.with_extension("der"));
            assert!(
                findings.is_empty(),
                "pkilint on the {name} certificate:\n{findings}"
            );
        }

        // Journaled with the certificate, and recorded under its own policy id.
        let entry = env.journal.entry(issued.journal_index).await.unwrap();
        assert_eq!(entry.kind, "client_certificate.issued");
        let event = entry.event().unwrap().unwrap();
        assert_eq!(event.details["serial"], issued.serial.as_str());
        assert_eq!(event.details["certificate_sha256"], issued.sha256.as_str());
        assert_eq!(event.details["entity_id"], env.entity.id.to_string());
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(event.details["certificate"].as_str().unwrap())
                .unwrap(),
            issued.der
        );
        let stored = env.store.issued_certificate(&issued.serial).await.unwrap();
        assert_eq!(stored.policy_id, "client-auth");
        assert_eq!(stored.der, issued.der);
        assert_eq!(stored.journal_index, issued.journal_index);

        // Bad requests: typed errors, nothing stored.
        let before = env.store.certificate_counts().await.unwrap();
        let error = issuer
            .issue(grant(), request(env.entity.id, b"not a CSR".to_vec()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientCertificateError::Csr(CsrError::Malformed(_))),
            "{error}"
        );
        assert_eq!(error.kind(), ErrorKind::Unprocessable);
        assert_eq!(error.field(), Some("csr"));
        let mut tampered = csr.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        let error = issuer
            .issue(grant(), request(env.entity.id, tampered))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ClientCertificateError::Csr(CsrError::BadSignature | CsrError::Malformed(_))
            ),
            "{error}"
        );
        let small = ca::openssl_csr(out.path(), "small", "rsa:1024");
        let error = issuer
            .issue(grant(), request(env.entity.id, small))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientCertificateError::Csr(CsrError::KeyPolicy(_))),
            "{error}"
        );
        assert_eq!(error.kind(), ErrorKind::Unprocessable);
        // The same key again: a new certificate needs a new key.
        let error = issuer
            .issue(grant(), request(env.entity.id, csr.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientCertificateError::KeyAlreadyCertified),
            "{error}"
        );
        let fresh = || ca::p256_csr();
        let mut too_long = request(env.entity.id, fresh());
        too_long.validity_days = 826;
        let error = issuer.issue(grant(), too_long).await.unwrap_err();
        assert_eq!(error.field(), Some("validity_days"), "{error}");
        let mut bad_identifier = request(env.entity.id, fresh());
        bad_identifier.organization_identifier = "123456782".to_owned();
        let error = issuer.issue(grant(), bad_identifier).await.unwrap_err();
        assert_eq!(error.field(), Some("organization_identifier"), "{error}");
        assert_eq!(error.kind(), ErrorKind::Unprocessable);
        assert_eq!(env.store.certificate_counts().await.unwrap(), before);

        // RSA-2048 is accepted for a client key.
        let rsa = ca::openssl_csr(out.path(), "rsa2048", "rsa:2048");
        issuer
            .issue(grant(), request(env.entity.id, rsa))
            .await
            .unwrap();
        env.journal.shutdown().await.unwrap();
    });
}

#[test]
fn client_certificates_complete_the_mutual_tls_handshake() {
    let Some(softhsm) =
        support::hsm::isolated("client_certificates_complete_the_mutual_tls_handshake")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 300);
        let alice = pki.clients.issue("alice", false, None);
        let strangers = TestCa::new(dir.path(), "unknown-ca");
        let mallory = strangers.issue("mallory", false, None);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let (ceremony_file, _) =
            sceau::pki::ceremony::CeremonyFile::load(&settings.ca.ceremony_file).unwrap();
        let service = Service::start(settings, service::clock_now()).await;
        let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
        let state = &service.state;

        // The client-auth CA is published with the others.
        let published = reqwest::get(service.url("/certs/client-auth.der"))
            .await
            .unwrap();
        assert_eq!(published.status().as_u16(), 200);
        let ca_der = published.bytes().await.unwrap().to_vec();

        let issuer = sceau::ca::client_certificate_issuer(
            &state.store,
            &state.hsm,
            &state.journal,
            &state.clock,
            &ceremony_file,
        )
        .await
        .unwrap();
        assert_eq!(
            der::Encode::to_der(issuer.ca_certificate()).unwrap(),
            ca_der
        );
        let key = ca::openssl_p256_key(dir.path(), "rccs");
        let csr = ca::openssl_csr_for_key(dir.path(), "rccs", &key);
        let mut asked = request(entity, csr);
        asked.organization = "Alpha SA".to_owned();
        let issued = issuer.issue(grant(), asked).await.unwrap();
        let certificate = dir.path().join("rccs.pem");
        std::fs::write(
            &certificate,
            Certificate::from_der(&issued.der)
                .unwrap()
                .to_pem(der::pem::LineEnding::LF)
                .unwrap(),
        )
        .unwrap();
        let rccs = Issued { certificate, key };

        // Registered as an activation credential of its organisation's seal
        // credential, it authorizes: the handshake completed and the
        // certificate reached the application.
        let credential = service.active_credential(entity, "seal-ca-managed").await;
        state
            .store
            .insert_activation_credential(
                credential,
                entity,
                &sceau::store::auth::ActivationBinding::ClientCertificate {
                    sha256: sceau::auth::mtls::fingerprint(&issued.der),
                },
                "test:rccs",
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        let url = service.tls_url(&format!("/api/v1/credentials/{credential}/authorize"));
        let body = serde_json::json!({ "num_signatures": 1 });
        let response = pki
            .client(Some(&rccs))
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);

        // The configured client CA still works (its certificate completes the
        // handshake, then is refused as unregistered); an unknown CA does not.
        let response = pki
            .client(Some(&alice))
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let stranger = TlsClient::new(&pki.server_ca, &mallory, service.tls_port.unwrap());
        let refused = match stranger.connect().await {
            Ok((mut connection, _)) => connection
                .post_json(
                    &format!("/api/v1/credentials/{credential}/authorize"),
                    &body,
                )
                .await
                .map(|answer| answer.status),
            Err(error) => Err(error),
        };
        let alert = refused.map_err(|error| alert_of(&error));
        assert_eq!(alert, Err(Some(rustls::AlertDescription::UnknownCA)));

        // Without configured client CAs, the client-auth CA alone is enough.
        let mut own_only = pki.tls.clone();
        own_only.client_ca_files.clear();
        sceau::api::tls::server_config(&own_only, Some(&ca_der), None).unwrap();
        let error = sceau::api::tls::server_config(&own_only, None, None).unwrap_err();
        assert!(error.to_string().contains("client_ca_files"), "{error}");
        service.stop().await;
    });
}

/// Revoking a client certificate through the RA ends it everywhere at once:
/// the next request on a connection opened before (keep-alive) and on a
/// session resumed after are refused, its activation credential is revoked
/// in the same change with the journal entry naming it, and once the
/// listener has read the CRL sceau published, a full handshake with it is
/// refused as revoked.
#[test]
fn a_revoked_client_certificate_authenticates_nowhere() {
    let Some(softhsm) =
        support::hsm::isolated("a_revoked_client_certificate_authenticates_nowhere")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        // The listener reads its CRLs again every second.
        let pki = MtlsPki::new(dir.path(), 1);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let service = Service::start(settings, service::clock_now()).await;
        let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
        let state = &service.state;
        let (rccs, issued) = service
            .sceau_client_certificate(dir.path(), "rccs", entity, ("Alpha SA", "NTRFR-123456782"))
            .await;
        let credential = service.active_credential(entity, "seal-ca-managed").await;
        let activation = state
            .store
            .insert_activation_credential(
                credential,
                entity,
                &sceau::store::auth::ActivationBinding::ClientCertificate {
                    sha256: issued.sha256.clone(),
                },
                "test:rccs",
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();

        let path = format!("/api/v1/credentials/{credential}/authorize");
        let body = serde_json::json!({ "num_signatures": 1 });
        let client = TlsClient::new(&pki.server_ca, &rccs, service.tls_port.unwrap());
        let (mut kept, kind) = client.connect().await.unwrap();
        assert_eq!(kind, HandshakeKind::Full);
        let answer = kept.post_json(&path, &body).await.unwrap();
        assert_eq!(answer.status, 200, "{:?}", answer.json());
        // A second connection resumes the first one's session.
        let (mut resumed_before, kind) = client.connect().await.unwrap();
        assert_eq!(kind, HandshakeKind::Resumed);
        assert_eq!(
            resumed_before.post_json(&path, &body).await.unwrap().status,
            200
        );

        let operator = service::ra_operator();
        let revoked = state
            .ra
            .revoke(
                &operator,
                &issued.serial,
                "key_compromise",
                None,
                None,
                false,
            )
            .await
            .unwrap();

        // The change: the activation credential is revoked with the certificate,
        // and the revocation's journal entry names it.
        let stored = state
            .store
            .activation_credential(activation.id)
            .await
            .unwrap();
        assert!(!stored.active, "{stored:?}");
        let micros = |t: time::OffsetDateTime| t.unix_timestamp_nanos() / 1000;
        assert_eq!(
            stored.revoked_at.map(micros),
            Some(micros(revoked.revoked_at))
        );
        let entry = state.journal.entry(revoked.journal_index).await.unwrap();
        assert_eq!(entry.kind, "certificate.revoked");
        let event = entry.event().unwrap().unwrap();
        assert_eq!(event.details["serial"], issued.serial.as_str());
        assert_eq!(
            event.details["activation_credentials"],
            serde_json::json!([activation.id.to_string()])
        );

        // Requests on connections that were open, and on a session resumed
        // after the revocation, are refused: the handshake is not repeated.
        let refused = |answer: Answer| {
            assert_eq!(answer.status, 401, "{:?}", answer.json());
            let problem = answer.json();
            assert_eq!(problem["type"], "urn:sceau:problem:unauthenticated");
            assert_eq!(
                problem["detail"],
                "authentication required: this client certificate is not registered as an \
                 activation credential"
            );
        };
        refused(kept.post_json(&path, &body).await.unwrap());
        refused(resumed_before.post_json(&path, &body).await.unwrap());
        let (mut resumed_after, kind) = client.connect().await.unwrap();
        assert_eq!(kind, HandshakeKind::Resumed);
        refused(resumed_after.post_json(&path, &body).await.unwrap());

        // Registering it again is refused: a revoked certificate stays out.
        let again = state
            .store
            .insert_activation_credential(
                credential,
                entity,
                &sceau::store::auth::ActivationBinding::ClientCertificate {
                    sha256: issued.sha256.clone(),
                },
                "test:rccs",
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(again, sceau::store::StoreError::Conflict(ref why) if why.contains("revoked")),
            "{again}"
        );

        // The listener applies the CRL sceau published: a full handshake (a
        // fresh client, no session to resume) is refused as revoked.
        let mut alert = None;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let port = service.tls_port.unwrap();
            if let Err(refused) = attempt(&pki.server_ca, &rccs, port, &path).await {
                alert = Some(refused);
                break;
            }
        }
        assert_eq!(alert, Some(rustls::AlertDescription::CertificateRevoked));
        service.stop().await;
    });
}

/// A configured CA's CRL past its nextUpdate is no CRL: its certificates are
/// refused at the handshake and `/readyz` names that CRL, until a current one
/// is read again.
#[test]
fn a_stale_client_crl_refuses_its_certificates_and_names_itself() {
    let Some(softhsm) =
        support::hsm::isolated("a_stale_client_crl_refuses_its_certificates_and_names_itself")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 1);
        let alice = pki.clients.issue("alice", false, None);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let service = Service::start(settings, service::clock_now()).await;
        let path = "/api/v1/credentials/00000000-0000-4000-8000-000000000000/authorize";
        let port = service.tls_port.unwrap();
        // The handshake's outcome: a status once it passed, else the alert.
        let attempt = || attempt(&pki.server_ca, &alice, port, path);
        let ready = || async {
            let response = reqwest::get(service.url("/readyz")).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        };
        let crl_check = format!("client CRL {}", pki.crl.display());
        // Current CRL: the handshake passes (the certificate is not registered).
        assert_eq!(attempt().await, Ok(401));
        let (status, body_ready) = ready().await;
        assert_eq!(status, 200, "{body_ready}");
        assert_eq!(body_ready["checks"][&crl_check], "ok");

        pki.clients.write_stale_crl(&pki.crl);
        let (status, problem) = ready().await;
        assert_eq!(status, 503, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:unavailable");
        assert_eq!(problem["checks"][&crl_check], "unavailable");
        assert_eq!(
            problem["detail"],
            format!("not ready: {crl_check} unavailable")
        );
        let mut refused = None;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Err(alert) = attempt().await {
                refused = Some(alert);
                break;
            }
        }
        // rustls answers a CRL past its nextUpdate with unknown_ca.
        assert_eq!(refused, Some(rustls::AlertDescription::UnknownCA));

        pki.clients.write_crl(&pki.crl);
        let mut accepted = None;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Ok(status) = attempt().await {
                accepted = Some(status);
                break;
            }
        }
        assert_eq!(accepted, Some(401));
        assert_eq!(ready().await.0, 200);
        service.stop().await;
    });
}
