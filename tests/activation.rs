//! Strong authentication and activation: the mutual-TLS matrix (certificates
//! made by OpenSSL), lockout after counted failures only, and SADs that cannot
//! be replayed, stretched or moved, even across two instances on one database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use rustls::AlertDescription;
use sceau::auth::activation::{ActivationError, AuthorizeRequest};
use sceau::auth::{Principal, mtls};
use sceau::crypto::DigestAlgorithm;
use sceau::store::auth::ActivationBinding;
use sceau::store::entities::CredentialStatus;
use serde_json::{Value, json};
use support::service::{self, Service};
use support::test_ca::{Issued, MtlsPki, TestCa};
use support::tls_session::attempt;
use uuid::Uuid;

async fn register(service: &Service, credential: Uuid, entity: Uuid, who: &Issued) {
    service
        .state
        .store
        .insert_activation_credential(
            credential,
            entity,
            &ActivationBinding::ClientCertificate {
                sha256: mtls::fingerprint(&who.der()),
            },
            "test:rccs",
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
}

/// A self-signed client certificate (CA:false, clientAuth) and its key.
fn self_signed_client(dir: &std::path::Path) -> Issued {
    let certificate = dir.join("self-signed.pem");
    let key = dir.join("self-signed.key");
    let output = support::tools::run(
        &support::tools::tool("openssl"),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=self-signed client",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=clientAuth",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            certificate.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    Issued { certificate, key }
}

/// Sends an authorize request; `Err` when the TLS connection itself was refused.
async fn authorize(
    client: &reqwest::Client,
    url: &str,
    body: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client.post(url).json(&body).send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

#[test]
fn mutual_tls_accepts_only_registered_valid_certificates_for_their_organisation() {
    let Some(softhsm) = support::hsm::isolated(
        "mutual_tls_accepts_only_registered_valid_certificates_for_their_organisation",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 1);
        let alice = pki.clients.issue("alice", false, None);
        let bob = pki.clients.issue("bob", false, None);
        let carol = pki.clients.issue("carol-unregistered", false, None);
        let expired = pki.clients.issue(
            "expired",
            false,
            Some(("20200101000000Z", "20210101000000Z")),
        );
        let revoked = pki.clients.issue("revoked", false, None);
        let dave = pki.clients.issue("dave", false, None);
        pki.clients.revoke(&revoked);
        pki.clients.write_crl(&pki.crl);
        let strangers = TestCa::new(dir.path(), "unknown-ca");
        let mallory = strangers.issue("mallory", false, None);
        let selfsigned = self_signed_client(dir.path());

        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let service = Service::start(settings, service::clock_now()).await;
        let a = service.entity("Alpha SA", "NTRFR-123456782").await;
        let b = service.entity("Beta SAS", "NTRFR-732829320").await;
        let credential_a = service.active_credential(a, "seal-ca-managed").await;
        let credential_b = service.active_credential(b, "seal-ca-managed").await;
        for who in [&alice, &expired, &revoked, &dave] {
            register(&service, credential_a, a, who).await;
        }
        register(&service, credential_b, b, &bob).await;
        let url = service.tls_url(&format!("/api/v1/credentials/{credential_a}/authorize"));
        let body = json!({ "num_signatures": 1 });

        // Refused at the handshake, each for its reason: unknown CA,
        // self-signed, expired, revoked on the CRL.
        let port = service.tls_port.unwrap();
        let path = format!("/api/v1/credentials/{credential_a}/authorize");
        for (name, who, alert) in [
            ("unknown CA", &mallory, AlertDescription::UnknownCA),
            ("self-signed", &selfsigned, AlertDescription::UnknownCA),
            ("expired", &expired, AlertDescription::CertificateExpired),
            ("revoked", &revoked, AlertDescription::CertificateRevoked),
        ] {
            let outcome = attempt(&pki.server_ca, who, port, &path).await;
            assert_eq!(outcome, Err(alert), "{name}");
        }
        // No certificate: the connection is allowed (tokens may follow), the route is not.
        let (status, problem) = authorize(&pki.client(None), &url, body.clone())
            .await
            .unwrap();
        assert_eq!(status, 401, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:unauthenticated");
        // Valid but not registered.
        let (status, problem) = authorize(&pki.client(Some(&carol)), &url, body.clone())
            .await
            .unwrap();
        assert_eq!(status, 401, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("not registered")
        );
        // Registered for organisation B, used on A's credential.
        let (status, problem) = authorize(&pki.client(Some(&bob)), &url, body.clone())
            .await
            .unwrap();
        assert_eq!(status, 403, "{problem}");
        // Registered, valid, right organisation.
        let (status, sad) = authorize(&pki.client(Some(&alice)), &url, body.clone())
            .await
            .unwrap();
        assert_eq!(status, 200, "{sad}");
        assert_eq!(sad["scal"], 1);
        assert_eq!(sad["num_signatures"], 1);
        assert!(sad["sad"].as_str().unwrap().len() >= 43);
        // The plain listener never sees a client certificate.
        let plain = reqwest::Client::new()
            .post(service.url(&format!("/api/v1/credentials/{credential_a}/authorize")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status().as_u16(), 401);

        // The CRL is read again: dave works, is revoked, and is refused after the refresh.
        let dave_client = pki.client(Some(&dave));
        assert_eq!(
            authorize(&dave_client, &url, body.clone()).await.unwrap().0,
            200
        );
        pki.clients.revoke(&dave);
        pki.clients.write_crl(&pki.crl);
        let mut refused = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // A fresh client: a new handshake each time.
            match attempt(&pki.server_ca, &dave, port, &path).await {
                Ok(200) => {}
                outcome => {
                    assert_eq!(outcome, Err(AlertDescription::CertificateRevoked));
                    refused = true;
                    break;
                }
            }
        }
        assert!(
            refused,
            "a certificate revoked after start-up is refused once the CRL is re-read"
        );

        // A real SAD of organisation A, presented by organisation B's server:
        // on B's credential it was issued for another one, on A's B is no
        // client; it stays A's, unspent, for A's own seal.
        let (status, sad) = authorize(&pki.client(Some(&alice)), &url, body.clone())
            .await
            .unwrap();
        assert_eq!(status, 200, "{sad}");
        let sad = sad["sad"].as_str().unwrap().to_owned();
        let seal = |who: &Issued, credential: Uuid| {
            let client = pki.client(Some(who));
            let url = service.tls_url(&format!(
                "/api/v1/seal/cades?credential={credential}&level=B-B&packaging=detached"
            ));
            let sad = sad.clone();
            async move {
                let response = client
                    .post(url)
                    .header("x-sad", sad)
                    .body(b"a document".to_vec())
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap();
                (
                    status,
                    serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
                )
            }
        };
        let (status, problem) = seal(&bob, credential_b).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:forbidden");
        assert_eq!(
            problem["detail"],
            "the SAD was refused: it was issued for another credential"
        );
        let (status, problem) = seal(&bob, credential_a).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:forbidden");
        assert_eq!(
            problem["detail"],
            "this principal may not activate this credential"
        );
        let (status, answer) = seal(&alice, credential_a).await;
        assert_eq!(status, 200, "{answer}");
        service.stop().await;
    });
}

/// The principal a registered client certificate stands for.
async fn principal_of(service: &Service, who: &Issued) -> Principal {
    mtls::principal(&service.state.store, &who.der())
        .await
        .unwrap()
}

async fn journal_kinds(service: &Service, from: u64) -> Vec<String> {
    let journal = &service.state.journal;
    let size = journal.size().await.unwrap();
    let mut kinds = Vec::new();
    for index in from..size {
        kinds.push(journal.entry(index).await.unwrap().kind);
    }
    kinds
}

#[test]
fn counted_failures_lock_the_credential_and_strangers_never_do() {
    let Some(softhsm) =
        support::hsm::isolated("counted_failures_lock_the_credential_and_strangers_never_do")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(dir.path(), 1);
        let alice = pki.clients.issue("alice", false, None);
        let bob = pki.clients.issue("bob", false, None);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let limit = settings.auth.max_failed_activations;
        let service = Service::start(settings, service::clock_now()).await;
        let a = service.entity("Alpha SA", "NTRFR-123456782").await;
        let b = service.entity("Beta SAS", "NTRFR-732829320").await;
        let credential = service.active_credential(a, "seal-ca-managed").await;
        let other = service.active_credential(b, "seal-ca-managed").await;
        register(&service, credential, a, &alice).await;
        register(&service, other, b, &bob).await;
        let alice_principal = principal_of(&service, &alice).await;
        let bob_principal = principal_of(&service, &bob).await;
        let activation = &service.state.activation;
        let digest = [0u8; 32];

        // 100 attempts by a principal of another organisation: refused, never counted.
        let before = service.state.journal.size().await.unwrap();
        let mut rate_limited = 0;
        for _ in 0..100 {
            match activation
                .spend(&bob_principal, credential, "stolen", &digest)
                .await
            {
                Err(ActivationError::NotEntitled) => {}
                Err(ActivationError::RateLimited) => rate_limited += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(rate_limited > 0, "a stranger is rate-limited");
        let credential_row = service
            .state
            .store
            .seal_credential(credential)
            .await
            .unwrap();
        assert_eq!(credential_row.status, CredentialStatus::Active);
        let kinds = journal_kinds(&service, before).await;
        assert_eq!(
            kinds.len(),
            100 - rate_limited,
            "each refusal within the rate is journaled"
        );
        assert!(kinds.iter().all(|k| k == "activation.refused"), "{kinds:?}");

        // Counted failures by the entitled principal: the limit locks.
        let before = service.state.journal.size().await.unwrap();
        for n in 1..=limit {
            let error = activation
                .spend(&alice_principal, credential, "not-a-sad", &digest)
                .await
                .unwrap_err();
            assert!(matches!(error, ActivationError::Sad(_)), "{n}: {error:?}");
        }
        let url = service.tls_url(&format!("/api/v1/credentials/{credential}/authorize"));
        let (status, problem) = authorize(
            &pki.client(Some(&alice)),
            &url,
            json!({ "num_signatures": 1 }),
        )
        .await
        .unwrap();
        assert_eq!(status, 423, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:locked");
        let mut expected: Vec<String> =
            (0..limit).map(|_| "activation.failed".to_owned()).collect();
        expected.push("credential.locked".to_owned());
        expected.push("activation.refused".to_owned());
        let mut kinds = journal_kinds(&service, before).await;
        // `credential.locked` follows the last failure.
        kinds.sort_by_key(|k| match k.as_str() {
            "activation.failed" => 0,
            "credential.locked" => 1,
            _ => 2,
        });
        assert_eq!(kinds, expected);

        // Unlocked by an RA operator, it activates again.
        let operator = service::ra_operator();
        activation.unlock(&operator, credential).await.unwrap();
        assert!(matches!(
            activation.unlock(&operator, credential).await,
            Err(ActivationError::NotLocked)
        ));
        let (status, _) = authorize(
            &pki.client(Some(&alice)),
            &url,
            json!({ "num_signatures": 1 }),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        let last = service.state.journal.size().await.unwrap() - 2;
        assert_eq!(
            journal_kinds(&service, last).await,
            ["credential.unlocked", "activation.authorized"]
        );
        service.stop().await;
    });
}

// SAD refusals, and the ledger shared by two server instances on one database.
#[test]
fn sads_cannot_be_replayed_stretched_or_moved_on_sqlite() {
    let Some(softhsm) =
        support::hsm::isolated("sads_cannot_be_replayed_stretched_or_moved_on_sqlite")
    else {
        return;
    };
    support::ca::runtime().block_on(sads(softhsm, support::db::sqlite()));
}

#[test]
fn sads_cannot_be_replayed_stretched_or_moved_on_postgres() {
    let Some(softhsm) =
        support::hsm::isolated("sads_cannot_be_replayed_stretched_or_moved_on_postgres")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        if let Some(db) = support::db::postgres().await {
            sads(softhsm, db).await;
        }
    });
}

async fn sads(softhsm: support::hsm::SoftHsm, db: support::db::TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let pki = MtlsPki::new(dir.path(), 1);
    let alice = pki.clients.issue("alice", false, None);
    let dave = pki.clients.issue("dave", false, None);
    let settings = service::settings(&softhsm, &db, dir.path(), None);
    let clock = service::clock_now();
    let service = Service::start(settings.clone(), clock.clone()).await;
    let a = service.entity("Alpha SA", "NTRFR-123456782").await;
    let scal1 = service.active_credential(a, "seal-ca-managed").await;
    let scal1_other = service.active_credential(a, "seal-ca-managed").await;
    let scal2 = service.active_credential(a, "seal-remote-qscd").await;
    for credential in [scal1, scal1_other, scal2] {
        register(&service, credential, a, &alice).await;
        register(&service, credential, a, &dave).await;
    }
    let alice_p = principal_of(&service, &alice).await;
    let dave_p = principal_of(&service, &dave).await;
    let one = &service.state.activation;
    // A second server instance on the same database (its own pools, journal
    // writer and activation service): the SAD ledger must hold across both.
    let second_dir = tempfile::tempdir().unwrap();
    let second = Service::start(
        service::settings(&softhsm, &db, second_dir.path(), None),
        clock.clone(),
    )
    .await;
    let two = &second.state.activation;
    let digest = |n: u8| [n; 32].to_vec();
    let scal1_request = |count| AuthorizeRequest {
        num_signatures: Some(count),
        ..AuthorizeRequest::default()
    };
    let reason = |result: Result<(), ActivationError>| match result {
        Err(ActivationError::Sad(reason)) => reason,
        other => panic!("expected a SAD refusal, got {other:?}"),
    };

    // Spent: one signature, then replayed on the other instance.
    let sad = one
        .authorize(&alice_p, scal1, &scal1_request(1))
        .await
        .unwrap();
    two.spend(&alice_p, scal1, &sad.sad, &digest(1))
        .await
        .unwrap();
    assert!(
        reason(one.spend(&alice_p, scal1, &sad.sad, &digest(1)).await).contains("every signature")
    );
    // Beyond its count.
    let sad = one
        .authorize(&alice_p, scal1, &scal1_request(2))
        .await
        .unwrap();
    one.spend(&alice_p, scal1, &sad.sad, &digest(1))
        .await
        .unwrap();
    two.spend(&alice_p, scal1, &sad.sad, &digest(2))
        .await
        .unwrap();
    assert!(
        reason(one.spend(&alice_p, scal1, &sad.sad, &digest(3)).await).contains("every signature")
    );
    // On another credential.
    let sad = one
        .authorize(&alice_p, scal1, &scal1_request(1))
        .await
        .unwrap();
    assert!(
        reason(two.spend(&alice_p, scal1_other, &sad.sad, &digest(1)).await)
            .contains("another credential")
    );
    // By another principal (entitled to the credential, but not the SAD's).
    assert!(
        reason(two.spend(&dave_p, scal1, &sad.sad, &digest(1)).await).contains("another principal")
    );
    // After it expired.
    service
        .clock
        .advance(Duration::from_secs(settings.auth.sad_lifetime_secs + 1));
    assert!(reason(one.spend(&alice_p, scal1, &sad.sad, &digest(1)).await).contains("expired"));

    // SCAL2: the exact digests, each once.
    let scal2_request = AuthorizeRequest {
        num_signatures: None,
        digests: vec![digest(7), digest(8)],
        digest_algorithm: Some(DigestAlgorithm::Sha256),
    };
    let error = one
        .authorize(&alice_p, scal2, &scal1_request(1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("SCAL2"), "{error}");
    let sad = one
        .authorize(&alice_p, scal2, &scal2_request)
        .await
        .unwrap();
    assert_eq!((sad.scal, sad.num_signatures), (2, 2));
    assert!(reason(two.spend(&alice_p, scal2, &sad.sad, &digest(9)).await).contains("not bound"));
    one.spend(&alice_p, scal2, &sad.sad, &digest(7))
        .await
        .unwrap();
    assert!(reason(two.spend(&alice_p, scal2, &sad.sad, &digest(7)).await).contains("not bound"));
    two.spend(&alice_p, scal2, &sad.sad, &digest(8))
        .await
        .unwrap();

    // A race between the instances for a single signature: exactly one wins.
    for _ in 0..10 {
        let sad = one
            .authorize(&alice_p, scal1, &scal1_request(1))
            .await
            .unwrap();
        let same = digest(1);
        let (first, second) = tokio::join!(
            one.spend(&alice_p, scal1, &sad.sad, &same),
            two.spend(&alice_p, scal1, &sad.sad, &same),
        );
        assert_eq!(
            usize::from(first.is_ok()) + usize::from(second.is_ok()),
            1,
            "{first:?} {second:?}"
        );
    }
    // Ten counted failures above would have locked it: successes reset the count.
    let row = service.state.store.seal_credential(scal1).await.unwrap();
    assert_eq!(row.status, CredentialStatus::Active);
    second.stop().await;
    service.stop().await;
}
