//! CAdES seals over mutual TLS: B-B, B-T and B-LT, detached and enveloping,
//! and hash sealing, verified by OpenSSL against our root (the time-stamp token
//! by `openssl ts`, the embedded CRL by `-crl_check`); refusals for strangers,
//! locked, pending and revoked credentials leave no seal; a signer that returns
//! a wrong signature yields no seal and a journal entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use base64::Engine as _;
use der::{Decode, Encode, EncodePem};
use p256::ecdsa::signature::Signer as _;
use sceau::auth::mtls;
use sceau::crypto::{MessageSigner, SignatureAlgorithm};
use sceau::error::{ErrorKind, HasErrorKind};
use sceau::seal::cades::Packaging;
use sceau::seal::{Level, SealError, SealKeys, Sealer};
use sceau::store::entities::{CredentialStatus, KeyReference};
use serde_json::{Value, json};
use sha2::Digest;
use support::pades::register;
use support::service::{self, Service};
use support::test_ca::MtlsPki;
use support::tools;
use x509_cert::Certificate;

const DOCUMENT: &[u8] = b"Facture 2026-0042: 1 200,00 EUR, payable a 30 jours.\n";

fn openssl(args: &[&str]) -> (bool, String) {
    let output = tools::run(&tools::tool("openssl"), args);
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

struct Files(tempfile::TempDir);

impl Files {
    fn path(&self, name: &str) -> String {
        self.0.path().join(name).to_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// POSTs `body` to the CAdES route; returns status, headers' journal index, body.
async fn seal(
    client: &reqwest::Client,
    service: &Service,
    query: &str,
    body: &[u8],
) -> (u16, Option<u64>, Vec<u8>) {
    let response = client
        .post(service.tls_url(&format!("/api/v1/seal/cades?{query}")))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let index = response
        .headers()
        .get("sceau-journal-index")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    if status == 200 {
        assert_eq!(
            response.headers()["content-type"],
            "application/pkcs7-signature"
        );
    }
    (status, index, response.bytes().await.unwrap().to_vec())
}

fn problem(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

/// What `openssl cms -cmsout -print` says of a seal.
fn printed(files: &Files, der: &[u8]) -> String {
    let file = files.write("print.p7s", der);
    let (ok, text) = openssl(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", &file]);
    assert!(ok, "{text}");
    text
}

/// `openssl cms -verify` trusting `ca_file` (the root alone: what a relying
/// party holds; OpenSSL builds the chain from the CMS's own certificates).
fn verify_cms(
    files: &Files,
    der: &[u8],
    detached: bool,
    ca_file: &str,
    extra: &[&str],
) -> (bool, String) {
    let file = files.write("seal.p7s", der);
    let content = files.path("document.txt");
    let root = files.path(ca_file);
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        &file,
        "-CAfile",
        &root,
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ];
    if detached {
        args.extend_from_slice(&["-content", &content]);
    }
    args.extend_from_slice(extra);
    openssl(&args)
}

/// The signature-time-stamp token of the first SignerInfo, and the SHA-256 of
/// its signature value (what the token must cover).
fn time_stamp_token(der: &[u8]) -> Option<(Vec<u8>, String)> {
    let info = cms::content_info::ContentInfo::from_der(der).unwrap();
    let signed = cms::signed_data::SignedData::from_der(&info.content.to_der().unwrap()).unwrap();
    let signer = signed.signer_infos.0.iter().next().unwrap();
    let imprint = hex::encode(sha2::Sha256::digest(signer.signature.as_bytes()));
    signer.unsigned_attrs.as_ref().and_then(|attrs| {
        attrs
            .iter()
            .find(|a| a.oid.to_string() == "1.2.840.113549.1.9.16.2.14")
            .map(|a| {
                (
                    a.values.iter().next().unwrap().to_der().unwrap(),
                    imprint.clone(),
                )
            })
    })
}

async fn seal_count(service: &Service) -> u64 {
    let journal = &service.state.journal;
    let size = journal.size().await.unwrap();
    let mut count = 0;
    for index in 0..size {
        if journal.entry(index).await.unwrap().kind == "seal.created" {
            count += 1;
        }
    }
    count
}

#[test]
fn cades_seals_verify_with_openssl_at_each_level_and_refusals_leave_none() {
    let Some(softhsm) = support::hsm::isolated(
        "cades_seals_verify_with_openssl_at_each_level_and_refusals_leave_none",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 60);
        let alice = pki.clients.issue("alice", false, None);
        let bob = pki.clients.issue("bob", false, None);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let service = Service::start(settings, service::clock_now()).await;
        let a = service.entity("Alpha SA", "NTRFR-123456782").await;
        let b = service.entity("Beta SAS", "NTRFR-732829320").await;
        let credential = service.active_credential(a, "seal-ca-managed").await;
        let other = service.active_credential(b, "seal-ca-managed").await;
        register(&service, credential, a, &alice).await;
        register(&service, other, b, &bob).await;
        let files = Files(tempfile::tempdir().unwrap());
        files.write("document.txt", DOCUMENT);
        let active = service.state.store.active_ca_certificates().await.unwrap();
        for purpose in ["root", "issuing"] {
            let der = &active.iter().find(|c| c.purpose == purpose).unwrap().der;
            let pem = Certificate::from_der(der)
                .unwrap()
                .to_pem(der::pem::LineEnding::LF)
                .unwrap();
            files.write(&format!("{purpose}.pem"), pem);
        }
        let client = pki.client(Some(&alice));
        let query = |level: &str, packaging: &str| {
            format!("credential={credential}&level={level}&packaging={packaging}")
        };

        // B-B detached: the four signed attributes, no time-stamp; the seal
        // carries its chain up to the root, which is all a relying party holds.
        let (status, index, der) =
            seal(&client, &service, &query("B-B", "detached"), DOCUMENT).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&der));
        let first_index = index.expect("the journal index header");
        assert_eq!(
            service.state.journal.entry(first_index).await.unwrap().kind,
            "seal.created"
        );
        let text = printed(&files, &der);
        for attribute in [
            "contentType",
            "messageDigest",
            "signingTime",
            "id-smime-aa-signingCertificateV2",
        ] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        assert!(!text.contains("id-smime-aa-timeStampToken"), "{text}");
        let (ok, out) = verify_cms(&files, &der, true, "root.pem", &[]);
        assert!(ok && out.contains("Verification successful"), "{out}");
        std::fs::write(files.path("other.txt"), b"another document").unwrap();
        let (ok, _) = openssl(&[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &files.path("seal.p7s"),
            "-content",
            &files.path("other.txt"),
            "-CAfile",
            &files.path("root.pem"),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ]);
        assert!(!ok, "a seal does not verify over another document");
        // Without validation data, a CRL check cannot succeed.
        let (ok, _) = verify_cms(&files, &der, true, "root.pem", &["-crl_check"]);
        assert!(!ok, "B-B carries no CRL");

        // B-T enveloping: the content inside, a signature time-stamp over the
        // signature value that `openssl ts` verifies against our root.
        let (status, _, der) = seal(&client, &service, &query("B-T", "enveloping"), DOCUMENT).await;
        assert_eq!(status, 200);
        let (ok, out) = verify_cms(&files, &der, false, "root.pem", &[]);
        assert!(ok, "{out}");
        assert!(printed(&files, &der).contains("id-smime-aa-timeStampToken"));
        let (token, imprint) = time_stamp_token(&der).expect("a signature time-stamp");
        let token_file = files.write("token.der", token);
        let (ok, out) = openssl(&[
            "ts",
            "-verify",
            "-token_in",
            "-in",
            &token_file,
            "-digest",
            &imprint,
            "-CAfile",
            &files.path("root.pem"),
        ]);
        assert!(ok && out.contains("Verification: OK"), "{out}");

        // B-LT detached: the chain and the CRL inside; OpenSSL verifies with the
        // root alone and checks revocation from the embedded CRL.
        let (status, _, der) = seal(&client, &service, &query("B-LT", "detached"), DOCUMENT).await;
        assert_eq!(status, 200);
        let (ok, out) = verify_cms(&files, &der, true, "root.pem", &["-crl_check"]);
        assert!(ok && out.contains("Verification successful"), "{out}");
        let text = printed(&files, &der);
        assert!(
            text.contains("crls:") && text.contains("id-smime-aa-timeStampToken"),
            "{text}"
        );
        assert!(time_stamp_token(&der).is_some());

        // Hash sealing: the document stays with the client; the signature
        // verifies over the document.
        let digest =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(DOCUMENT));
        let response = client
            .post(service.tls_url("/api/v1/seal/hashes"))
            .json(&json!({
                "credential": credential,
                "level": "B-T",
                "hashes": [{ "digest": digest, "algorithm": "2.16.840.1.101.3.4.2.1" }],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        let signature = base64::engine::general_purpose::STANDARD
            .decode(body["signatures"][0]["signature"].as_str().unwrap())
            .unwrap();
        let (ok, out) = verify_cms(&files, &signature, true, "root.pem", &[]);
        assert!(ok && out.contains("Verification successful"), "{out}");
        // A digest of the wrong length or algorithm is named.
        let response = client
            .post(service.tls_url("/api/v1/seal/hashes"))
            .json(&json!({
                "credential": credential,
                "hashes": [{ "digest": "AAAA", "algorithm": "1.3.14.3.2.26" }],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], "hashes");

        // Every document place taken: 503 with Retry-After, nothing sealed;
        // free again once a place is.
        let sealer = &service.state.sealer;
        let max = service.state.settings.seal.max_concurrent_documents;
        let taken: Vec<_> = (0..max)
            .map(|_| sealer.document_slot(1, 1).unwrap())
            .collect();
        let cades_url =
            service.tls_url(&format!("/api/v1/seal/cades?{}", query("B-B", "detached")));
        let busy = || async {
            let response = client
                .post(&cades_url)
                .body(DOCUMENT.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(response.headers()["retry-after"], "2");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        };
        busy().await;
        drop(taken);
        // The memory budget taken (one place is enough to hold it all): 503
        // too; a document that alone would need more than all of it: 413.
        let budget = usize::try_from(service.state.settings.seal.max_document_memory_mib).unwrap()
            * 1024
            * 1024;
        let all_memory = sealer.document_slot(budget, 1).unwrap();
        busy().await;
        drop(all_memory);
        let Err(too_large) = sealer.document_slot(budget / 2 + 1, 2) else {
            panic!("a document over the whole budget got a place");
        };
        assert!(
            matches!(too_large, sceau::seal::SealError::TooLarge { .. }),
            "{too_large}"
        );
        assert_eq!(seal_count(&service).await, 4);

        // Bad parameters: 422 naming the field, and nothing sealed.
        let sealed_so_far = seal_count(&service).await;
        assert_eq!(sealed_so_far, 4);
        for (query, field) in [
            (query("B-LTA", "detached"), "level"),
            (query("B-X", "detached"), "level"),
            (query("B-B", "attached"), "packaging"),
            ("credential=nope&level=B-B".to_owned(), "credential"),
        ] {
            let (status, _, body) = seal(&client, &service, &query, DOCUMENT).await;
            assert_eq!(status, 422, "{query}");
            assert_eq!(problem(&body)["field"], field, "{query}");
        }

        // Access: another organisation's server gets 403; a locked credential
        // 423; a pending (not accepted) or revoked one 409 with a reason.
        let (status, _, _) = seal(
            &pki.client(Some(&bob)),
            &service,
            &query("B-B", "detached"),
            DOCUMENT,
        )
        .await;
        assert_eq!(status, 403);
        let store = &service.state.store;
        for (state, expected, words) in [
            (CredentialStatus::Locked, 423, "locked"),
            (CredentialStatus::Pending, 409, "not accepted"),
            (CredentialStatus::Revoked, 409, "revoked"),
        ] {
            store
                .set_seal_credential_status(credential, state, time::OffsetDateTime::now_utc())
                .await
                .unwrap();
            let (status, _, body) =
                seal(&client, &service, &query("B-B", "detached"), DOCUMENT).await;
            assert_eq!(status, expected, "{state:?}");
            let detail = problem(&body)["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains(words), "{detail}");
        }
        assert_eq!(
            seal_count(&service).await,
            sealed_so_far,
            "no refusal made a seal"
        );

        // A faulty signer: no seal, a journal entry, an internal error.
        store
            .set_seal_credential_status(
                credential,
                CredentialStatus::Active,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        let state = &service.state;
        let faulty = Sealer::new(
            state.store.clone(),
            state.journal.clone(),
            state.clock.clone(),
            state.activation.clone(),
            sceau::seal::TimeStamper::Local(state.tsa.clone()),
            FaultyKeys,
            Default::default(),
        );
        let principal = mtls::principal(store, &alice.der()).await.unwrap();
        let failed = faulty
            .cades(
                &principal,
                credential,
                None,
                Level::BB,
                Packaging::Detached,
                DOCUMENT,
            )
            .await
            .unwrap_err();
        assert!(matches!(failed, SealError::SelfCheck), "{failed}");
        assert_eq!(failed.kind(), ErrorKind::Internal);
        let size = state.journal.size().await.unwrap();
        assert_eq!(
            state.journal.entry(size - 1).await.unwrap().kind,
            "seal.failed"
        );
        assert_eq!(seal_count(&service).await, sealed_so_far);

        // Past the certificate's notAfter (the clock moved), sealing is refused
        // with a problem that says why, even before any sweep marks it expired.
        let not_after = store
            .certificate_of_credential(credential)
            .await
            .unwrap()
            .unwrap()
            .not_after;
        service
            .clock
            .set(std::time::SystemTime::from(not_after) + std::time::Duration::from_secs(60));
        let (status, _, body) = seal(&client, &service, &query("B-B", "detached"), DOCUMENT).await;
        assert_eq!(status, 409);
        let detail = problem(&body)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("expired"), "{detail}");
        assert_eq!(seal_count(&service).await, sealed_so_far);
        service.stop().await;
    });
}

/// Signs with a key of its own: a signature the certificate's key rejects, as
/// a faulty HSM would return.
#[derive(Debug)]
struct FaultyKeys;

struct WrongKey(p256::ecdsa::SigningKey);

impl MessageSigner for WrongKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaSha256
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signature: p256::ecdsa::Signature = self.0.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

impl SealKeys for FaultyKeys {
    async fn signer(
        &self,
        _key: &KeyReference,
    ) -> Result<Arc<dyn MessageSigner + Send + Sync>, SealError> {
        Ok(Arc::new(WrongKey(p256::ecdsa::SigningKey::random(
            &mut rand::rngs::OsRng,
        ))))
    }
}

/// A retry with the same Idempotency-Key and request returns the same seal
/// without making another; another request under that key gets 409. The RCCS
/// lists the credential's seals and checks one's inclusion proof against the
/// signed checkpoint with the audit key; another organisation's RCCS cannot.
#[test]
fn idempotent_retries_make_one_seal_and_the_rccs_can_prove_each_seal() {
    let Some(softhsm) =
        support::hsm::isolated("idempotent_retries_make_one_seal_and_the_rccs_can_prove_each_seal")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        use sceau::config::{Callers, IdentityProviderSettings};
        use support::idp::{AUDIENCE, Client, TestIdp};

        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 60);
        let alice = pki.clients.issue("alice", false, None);
        let otp = json!({ "amr": ["pwd", "otp"], "sceau_roles": [] });
        let people = ["rccs-a", "rccs-b", "auditor"];
        let clients: Vec<Client> = people
            .iter()
            .map(|id| Client {
                id,
                certificate_bound: false,
                claims: if *id == "auditor" {
                    json!({ "amr": ["pwd", "otp"], "sceau_roles": ["auditor"] })
                } else {
                    otp.clone()
                },
            })
            .collect();
        let idp = TestIdp::start(&clients, None, "seal-transparency-key");
        let mut settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        settings.auth.identity_providers = vec![IdentityProviderSettings {
            issuer: idp.issuer.clone(),
            audience: AUDIENCE.to_owned(),
            callers: Callers::People,
            roles_claim: Some("sceau_roles".to_owned()),
            acr_values: vec![],
            allowed: people.iter().map(|p| (*p).to_owned()).collect(),
            require_typ: true,
        }];
        settings.auth.staff = support::back_office::roster(&idp.issuer, &[("auditor", 1)], &[]);
        let service = Service::start(settings, service::clock_now()).await;
        let a = service.entity("Alpha SA", "NTRFR-123456782").await;
        let b = service.entity("Beta SAS", "NTRFR-732829320").await;
        let credential = service.active_credential(a, "seal-ca-managed").await;
        register(&service, credential, a, &alice).await;
        let now = time::OffsetDateTime::now_utc();
        let store = &service.state.store;
        store
            .assign_role(&idp.issuer, "rccs-a", "rccs", Some(a), "test", now)
            .await
            .unwrap();
        store
            .assign_role(&idp.issuer, "rccs-b", "rccs", Some(b), "test", now)
            .await
            .unwrap();
        let client = pki.client(Some(&alice));
        let url = service.tls_url(&format!(
            "/api/v1/seal/cades?credential={credential}&level=B-B"
        ));
        let post = |key: Option<&'static str>, body: &'static [u8]| {
            let mut request = client.post(&url).body(body.to_vec());
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            request.send()
        };

        let first = post(Some("invoice-42"), DOCUMENT).await.unwrap();
        assert_eq!(first.status().as_u16(), 200);
        let index = first.headers()["sceau-journal-index"]
            .to_str()
            .unwrap()
            .to_owned();
        let seal = first.bytes().await.unwrap();
        let retry = post(Some("invoice-42"), DOCUMENT).await.unwrap();
        assert_eq!(retry.status().as_u16(), 200);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(
            retry.headers()["sceau-journal-index"].to_str().unwrap(),
            index
        );
        assert_eq!(
            retry.bytes().await.unwrap(),
            seal,
            "the same seal, byte for byte"
        );
        assert_eq!(seal_count(&service).await, 1, "a retry made no second seal");
        let other = post(Some("invoice-42"), b"another document").await.unwrap();
        assert_eq!(other.status().as_u16(), 409);
        assert_eq!(seal_count(&service).await, 1);
        // Without a key, each call is a seal of its own.
        for _ in 0..2 {
            assert_eq!(post(None, DOCUMENT).await.unwrap().status().as_u16(), 200);
        }
        assert_eq!(seal_count(&service).await, 3);

        // Seal transparency for the RCCS of the organisation (and an auditor).
        let http = reqwest::Client::new();
        let get = |who: &'static str, path: String| {
            let idp = &idp;
            let http = &http;
            let service = &service;
            async move {
                let token = idp.token(who, AUDIENCE, None).await;
                let response = http
                    .get(service.url(&path))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (status, listed) =
            get("rccs-a", format!("/api/v1/credentials/{credential}/seals")).await;
        assert_eq!(status, 200, "{listed}");
        let seals = listed["seals"].as_array().unwrap();
        assert_eq!(seals.len(), 3);
        assert_eq!(seals[2]["journal_index"].to_string(), index, "oldest last");
        assert_eq!(
            seals[2]["document_sha256"],
            hex::encode(sha2::Sha256::digest(DOCUMENT))
        );
        let (status, _) = get("rccs-b", format!("/api/v1/credentials/{credential}/seals")).await;
        assert_eq!(status, 403, "another organisation's RCCS");
        let (status, _) = get("auditor", format!("/api/v1/credentials/{credential}/seals")).await;
        assert_eq!(status, 200);
        let (status, paged) = get(
            "rccs-a",
            format!("/api/v1/credentials/{credential}/seals?limit=2"),
        )
        .await;
        assert_eq!(status, 200);
        let before = paged["next_before"].as_u64().unwrap();
        let (_, rest) = get(
            "rccs-a",
            format!("/api/v1/credentials/{credential}/seals?limit=2&before={before}"),
        )
        .await;
        assert_eq!(rest["seals"].as_array().unwrap().len(), 1);

        // No checkpoint covers the seals yet: proofs wait for the schedule's
        // next one (never signed per request).
        let checkpoints = service
            .state
            .store
            .journal_checkpoints()
            .await
            .unwrap()
            .len();
        let response = http
            .get(service.url(&format!(
                "/api/v1/credentials/{credential}/seals/{index}/proof"
            )))
            .bearer_auth(idp.token("rccs-a", AUDIENCE, None).await)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 409);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1, "{retry_after}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:sceau:problem:conflict", "{problem}");
        assert_eq!(
            service
                .state
                .store
                .journal_checkpoints()
                .await
                .unwrap()
                .len(),
            checkpoints,
            "no checkpoint signed for a request"
        );
        service.state.journal.checkpoint().await.unwrap();
        let (status, proof) = get(
            "rccs-a",
            format!("/api/v1/credentials/{credential}/seals/{index}/proof"),
        )
        .await;
        assert_eq!(status, 200, "{proof}");
        assert_eq!(proof["entry_kind"], "seal.created");
        let hash = |text: &Value| -> [u8; 32] {
            hex::decode(text.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        };
        let path: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        let checkpoint = &proof["checkpoint"];
        assert!(sceau::journal::merkle::verify_inclusion(
            index.parse().unwrap(),
            proof["tree_size"].as_u64().unwrap(),
            &hash(&proof["leaf_hash"]),
            &path,
            &hash(&checkpoint["root_hash"]),
        ));
        // The checkpoint is signed by the audit key it names.
        let b64 = |v: &Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap()
        };
        let spki = spki::SubjectPublicKeyInfoOwned::from_der(&b64(&checkpoint["audit_public_key"]))
            .unwrap();
        let message = b64(&checkpoint["message"]);
        let signature = b64(&checkpoint["signature"]);
        let verified = [
            SignatureAlgorithm::EcdsaSha256,
            SignatureAlgorithm::RsaPkcs1Sha256,
        ]
        .into_iter()
        .any(|alg| sceau::crypto::verify(&spki, alg, &message, &signature).is_ok());
        assert!(verified, "the checkpoint verifies with the audit key");
        // A seal index of another credential, or no seal, is not found.
        let (status, _) = get(
            "rccs-a",
            format!("/api/v1/credentials/{credential}/seals/0/proof"),
        )
        .await;
        assert_eq!(status, 404);
        service.stop().await;
    });
}

/// With `seal.tsa_url`, B-T seals are time-stamped by that TSA over HTTP: here
/// another instance's `/tsa`. An unreachable one fails the seal (503 with
/// Retry-After; which TSA and why go to the log) and makes none; B-B needs no TSA.
#[test]
fn seals_use_the_external_tsa_when_one_is_configured() {
    let Some(softhsm) = support::hsm::isolated("seals_use_the_external_tsa_when_one_is_configured")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 60);
        let alice = pki.clients.issue("alice", false, None);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let tsa_instance = Service::start(settings.clone(), service::clock_now()).await;

        let mut unreachable = settings.clone();
        unreachable.seal.tsa_url = Some("http://127.0.0.1:9/tsa".to_owned());
        unreachable.seal.tsa_timeout_secs = 2;
        let sealing = Service::start(unreachable, service::clock_now()).await;
        let a = sealing.entity("Alpha SA", "NTRFR-123456782").await;
        let credential = sealing.active_credential(a, "seal-ca-managed").await;
        register(&sealing, credential, a, &alice).await;
        let client = pki.client(Some(&alice));
        let query = |level: &str| format!("credential={credential}&level={level}");
        let (status, _, body) = seal(&client, &sealing, &query("B-T"), DOCUMENT).await;
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        let detail = problem(&body)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("time-stamping authority"), "{detail}");
        assert_eq!(seal_count(&sealing).await, 0);
        let (status, _, _) = seal(&client, &sealing, &query("B-B"), DOCUMENT).await;
        assert_eq!(status, 200, "B-B needs no time-stamp");
        sealing.stop().await;

        let mut external = settings.clone();
        external.seal.tsa_url = Some(tsa_instance.url("/tsa"));
        let sealing = Service::start(external, service::clock_now()).await;
        let (status, _, der) = seal(&client, &sealing, &query("B-T"), DOCUMENT).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&der));
        let (token, imprint) = time_stamp_token(&der).expect("a signature time-stamp");
        let info = sceau::pki::tsa::tst_info_of(&token).unwrap();
        assert_eq!(
            hex::encode(info.message_imprint.hashed_message.as_bytes()),
            imprint
        );
        sealing.stop().await;
        tsa_instance.stop().await;
    });
}
