//! CRLs end to end: a revoked seal certificate is listed with its reason and
//! invalidity date, OpenSSL verifies the CRL and refuses the revoked certificate,
//! pkilint finds nothing in the CRL and the ARL, the HTTP endpoint serves the
//! same DER with caching headers, numbers only grow (two instances on one
//! database, SQLite and PostgreSQL), and revoked certificates stay listed after
//! they expire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use der::Decode;
use sceau::app::AppState;
use sceau::journal::event::CertificateRevoked;
use sceau::journal::{Actor, Event};
use sceau::pki::crl::{CrlPublisher, EXPIRED_CERTS_ON_CRL, INVALIDITY_DATE};
use sceau::revocation::Reason;
use sceau::store::ra::{Effect, RaChange, Revocation};
use support::ca;
use support::db::TestDb;
use support::hsm::SoftHsm;
use support::service::{self, Service};
use support::tools;
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;

const HOUR: Duration = Duration::from_secs(3600);

async fn start(softhsm: &SoftHsm, db: &TestDb, dir: &Path) -> Service {
    let mut settings = service::settings(softhsm, db, dir, None);
    // The background poll runs once at start; the tests call the publisher themselves.
    settings.crl.poll_interval_ms = 3_600_000;
    Service::start(settings, service::clock_now()).await
}

/// Issues a CA-managed seal certificate; returns its serial (hex) and DER.
async fn seal_certificate(service: &Service, entity: uuid::Uuid) -> (String, Vec<u8>) {
    let credential = service.active_credential(entity, "seal-ca-managed").await;
    let issued = service
        .state
        .store
        .certificate_of_credential(credential)
        .await
        .unwrap()
        .unwrap();
    (issued.serial, issued.der)
}

/// Records a revocation as the RA does (journal first, then the change).
async fn revoke(state: &AppState, serial: &str, reason_code: Option<Reason>) {
    let now = OffsetDateTime::from(state.clock.now());
    let journal_index = state
        .journal
        .append(
            &Actor::Task("test"),
            Event::CertificateRevoked(CertificateRevoked {
                serial: serial.to_owned(),
                certificate_sha256: String::new(),
                activation_credentials: Vec::new(),
                entity: uuid::Uuid::nil(),
                reason: "key_compromise".to_owned(),
                reason_code: reason_code.map(Reason::code),
                requester_role: "ca_admin".to_owned(),
                comment: None,
                invalidity_date: None,
                effective: now.into(),
            }),
        )
        .await
        .unwrap();
    let change = RaChange::new().with(Effect::Revoke(Revocation {
        serial: serial.to_owned(),
        reason: "key_compromise".to_owned(),
        reason_code,
        revoked_at: now,
        requested_by: "test".to_owned(),
        requester_role: "ca_admin".to_owned(),
        comment: None,
        journal_index,
        invalidity_date: None,
    }));
    state
        .store
        .apply_ra_change(&change, "sceau.test", now)
        .await
        .unwrap()
        .settled()
        .await;
}

fn listed_serials(der: &[u8]) -> Vec<String> {
    let crl = CertificateList::from_der(der).unwrap();
    crl.tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|r| hex::encode(r.serial_number.as_bytes()))
        .collect()
}

fn openssl(args: &[&str]) -> std::process::Output {
    tools::run(Path::new("openssl"), args)
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_revoked_seal_certificate_is_listed_and_refused_by_openssl() {
    let Some(softhsm) =
        support::hsm::isolated("a_revoked_seal_certificate_is_listed_and_refused_by_openssl")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let service = start(&softhsm, &db, dir.path()).await;
        let state = service.state.clone();
        let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
        let (good_serial, good_der) = seal_certificate(&service, entity).await;
        let (bad_serial, bad_der) = seal_certificate(&service, entity).await;
        // Before the revocation the CRLs from the start are current: nothing to publish.
        assert!(state.crl.publish_if_needed().await.unwrap().is_empty());

        revoke(&state, &bad_serial, Some(Reason::KeyCompromise)).await;
        let invalid_since = OffsetDateTime::from(state.clock.now()) - time::Duration::days(2);
        state
            .store
            .set_invalidity_date(&bad_serial, invalid_since)
            .await
            .unwrap();
        let published = state.crl.publish_now().await.unwrap();
        let issuing = published
            .iter()
            .find(|p| p.issuer == "issuing")
            .expect("the revocation is published at once");
        assert_eq!(issuing.entries, 1);

        // Served over HTTP: the same DER, with its caching headers.
        let http = reqwest::Client::new();
        let response = http
            .get(service.url("/crl/issuing.crl"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/pkix-crl");
        assert_eq!(headers["cache-control"], "public, max-age=300");
        assert!(headers.contains_key("last-modified"));
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert_eq!(etag, format!("\"{}\"", issuing.sha256));
        let crl_der = response.bytes().await.unwrap().to_vec();
        let stored = state.store.latest_crl("issuing").await.unwrap().unwrap();
        assert_eq!(crl_der, stored.der);
        assert_eq!(stored.number, issuing.number);
        let again = http
            .get(service.url("/crl/issuing.crl"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 304);
        let unknown = http.get(service.url("/crl/ocsp.crl")).send().await.unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
        assert_eq!(
            unknown.headers()["content-type"],
            "application/problem+json"
        );

        // The entry: serial, keyCompromise, the invalidity date.
        let crl = CertificateList::from_der(&crl_der).unwrap();
        let entries = crl.tbs_cert_list.revoked_certificates.clone().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(hex::encode(entries[0].serial_number.as_bytes()), bad_serial);
        let extensions = entries[0].crl_entry_extensions.clone().unwrap();
        let reason = extensions
            .iter()
            .find(|e| e.extn_id == const_oid::db::rfc5912::ID_CE_CRL_REASONS)
            .unwrap();
        assert_eq!(reason.extn_value.as_bytes(), [0x0a, 0x01, 0x01]);
        let invalidity = extensions
            .iter()
            .find(|e| e.extn_id == INVALIDITY_DATE)
            .unwrap();
        let invalidity =
            der::asn1::GeneralizedTime::from_der(invalidity.extn_value.as_bytes()).unwrap();
        assert_eq!(
            invalidity.to_unix_duration().as_secs(),
            invalid_since.unix_timestamp() as u64
        );
        let expired_on_crl = crl
            .tbs_cert_list
            .crl_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == EXPIRED_CERTS_ON_CRL)
            .expect("ExpiredCertsOnCRL");
        assert!(!expired_on_crl.critical);

        // OpenSSL: the CRL's signature, then the chain with the CRL.
        let out = tempfile::tempdir().unwrap();
        let path = |name: &str| out.path().join(name).to_str().unwrap().to_owned();
        for name in ["root", "issuing"] {
            let pem = http
                .get(service.url(&format!("/certs/{name}.pem")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            std::fs::write(path(&format!("{name}.pem")), pem).unwrap();
        }
        std::fs::write(path("issuing.crl"), &crl_der).unwrap();
        std::fs::write(path("good.pem"), sceau::crypto::certificate_pem(&good_der)).unwrap();
        std::fs::write(path("bad.pem"), sceau::crypto::certificate_pem(&bad_der)).unwrap();
        let checked = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &path("issuing.crl"),
            "-CAfile",
            &path("issuing.pem"),
            "-noout",
        ]);
        assert!(
            checked.status.success() && text(&checked).contains("verify OK"),
            "{}",
            text(&checked)
        );
        let printed = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &path("issuing.crl"),
            "-noout",
            "-text",
        ]);
        let printed = text(&printed);
        assert!(printed.contains("Key Compromise"), "{printed}");
        assert!(printed.contains("Invalidity Date"), "{printed}");
        let converted = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &path("issuing.crl"),
            "-out",
            &path("issuing.crl.pem"),
        ]);
        assert!(converted.status.success(), "{}", text(&converted));
        let verify = |leaf: &str| {
            openssl(&[
                "verify",
                "-crl_check",
                "-x509_strict",
                "-CAfile",
                &path("root.pem"),
                "-untrusted",
                &path("issuing.pem"),
                "-CRLfile",
                &path("issuing.crl.pem"),
                &path(leaf),
            ])
        };
        let good = verify("good.pem");
        assert!(good.status.success(), "{}", text(&good));
        let bad = verify("bad.pem");
        assert!(!bad.status.success(), "{}", text(&bad));
        assert!(text(&bad).contains("certificate revoked"), "{}", text(&bad));
        assert!(!listed_serials(&crl_der).contains(&good_serial));

        // pkilint: nothing at ERROR or above, for the CRL and the ARL.
        let findings = tools::pkilint_errors(
            "lint_crl",
            &["-t", "CRL", "-p", "PKIX"],
            Path::new(&path("issuing.crl")),
        );
        assert!(findings.is_empty(), "{findings}");
        let arl = http.get(service.url("/crl/root.crl")).send().await.unwrap();
        assert_eq!(arl.status().as_u16(), 200, "the dev ceremony issues an ARL");
        std::fs::write(path("root.crl"), arl.bytes().await.unwrap()).unwrap();
        let findings = tools::pkilint_errors(
            "lint_crl",
            &["-t", "ARL", "-p", "PKIX"],
            Path::new(&path("root.crl")),
        );
        assert!(findings.is_empty(), "{findings}");
        let arl_checked = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &path("root.crl"),
            "-CAfile",
            &path("root.pem"),
            "-noout",
        ]);
        assert!(
            text(&arl_checked).contains("verify OK"),
            "{}",
            text(&arl_checked)
        );
        service.stop().await;
    });
}

/// Numbers grow across publications and across two publishers sharing the
/// database; a new revocation publishes, nothing new publishes nothing, a
/// nearing nextUpdate re-issues.
async fn numbers_and_republication(softhsm: &SoftHsm, db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let service = start(softhsm, &db, dir.path()).await;
    let state = service.state.clone();
    let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
    let (first, _) = seal_certificate(&service, entity).await;
    let (second, _) = seal_certificate(&service, entity).await;
    let (third, _) = seal_certificate(&service, entity).await;

    // The start published the first CRLs.
    assert!(state.crl.publish_if_needed().await.unwrap().is_empty());
    let mut number = state
        .store
        .latest_crl("issuing")
        .await
        .unwrap()
        .unwrap()
        .number;
    assert!(
        state
            .store
            .latest_crl("client-auth")
            .await
            .unwrap()
            .is_some()
    );

    // A second instance: its own pool on the same database.
    let other = CrlPublisher::new(
        db.store().await,
        state.journal.clone(),
        state.hsm.clone(),
        state.clock.clone(),
        state.settings.crl.clone(),
    );
    assert!(other.publish_if_needed().await.unwrap().is_empty());

    revoke(&state, &first, Some(Reason::Superseded)).await;
    let published = other.publish_if_needed().await.unwrap();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].issuer, "issuing");
    assert_eq!(published[0].entries, 1);
    assert!(published[0].number > number);
    number = published[0].number;
    assert!(state.crl.publish_if_needed().await.unwrap().is_empty());

    // Both instances see the next revocation at the same time.
    revoke(&state, &second, None).await;
    let (a, b) = tokio::join!(state.crl.publish_if_needed(), other.publish_if_needed());
    let mut numbers: Vec<u64> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|p| p.number)
        .collect();
    assert!(!numbers.is_empty());
    numbers.sort_unstable();
    numbers.dedup();
    assert!(numbers[0] > number, "{numbers:?} after {number}");
    number = *numbers.last().unwrap();
    let latest = state.store.latest_crl("issuing").await.unwrap().unwrap();
    assert_eq!(latest.number, number);
    assert_eq!(latest.entries, 2);

    revoke(&state, &third, Some(Reason::CessationOfOperation)).await;
    let published = state.crl.publish_if_needed().await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].number, number + 1);
    number += 1;
    assert!(state.crl.publish_if_needed().await.unwrap().is_empty());

    // Near the nextUpdate (24 h validity, re-issued 6 h before): both CAs re-issue.
    service.clock.advance(17 * HOUR);
    assert!(state.crl.publish_if_needed().await.unwrap().is_empty());
    service.clock.advance(HOUR + Duration::from_secs(60));
    let published = state.crl.publish_if_needed().await.unwrap();
    let issuers: Vec<&str> = published.iter().map(|p| p.issuer.as_str()).collect();
    assert!(issuers.contains(&"issuing"), "{issuers:?}");
    assert!(issuers.contains(&"client-auth"), "{issuers:?}");
    let issuing = published.iter().find(|p| p.issuer == "issuing").unwrap();
    assert_eq!(issuing.number, number + 1);
    assert_eq!(issuing.entries, 3);
    assert!(other.publish_if_needed().await.unwrap().is_empty());
    service.stop().await;
}

#[test]
fn crl_numbers_grow_across_instances_and_crls_are_reissued() {
    let Some(softhsm) =
        support::hsm::isolated("crl_numbers_grow_across_instances_and_crls_are_reissued")
    else {
        return;
    };
    ca::runtime().block_on(numbers_and_republication(&softhsm, support::db::sqlite()));
}

#[test]
fn crl_numbers_grow_across_instances_and_crls_are_reissued_on_postgres() {
    let Some(softhsm) = support::hsm::isolated(
        "crl_numbers_grow_across_instances_and_crls_are_reissued_on_postgres",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        if let Some(db) = support::db::postgres().await {
            numbers_and_republication(&softhsm, db).await;
        }
    });
}

#[test]
fn revoked_certificates_stay_listed_after_they_expire() {
    let Some(softhsm) =
        support::hsm::isolated("revoked_certificates_stay_listed_after_they_expire")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let service = start(&softhsm, &db, dir.path()).await;
        let state = service.state.clone();
        let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
        let (serial, der) = seal_certificate(&service, entity).await;
        revoke(&state, &serial, Some(Reason::KeyCompromise)).await;
        state.crl.publish_now().await.unwrap();
        let before = state.store.latest_crl("issuing").await.unwrap().unwrap();
        assert_eq!(listed_serials(&before.der), vec![serial.clone()]);

        let certificate = x509_cert::Certificate::from_der(&der).unwrap();
        let not_after = certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time();
        service.clock.set(not_after + 30 * 24 * HOUR);
        let published = state.crl.publish_if_needed().await.unwrap();
        let issuing = published.iter().find(|p| p.issuer == "issuing").unwrap();
        assert_eq!(issuing.entries, 1);
        let after = state.store.latest_crl("issuing").await.unwrap().unwrap();
        assert!(after.number > before.number);
        assert!(std::time::SystemTime::from(after.this_update) > not_after);
        assert_eq!(listed_serials(&after.der), vec![serial]);
        service.stop().await;
    });
}
