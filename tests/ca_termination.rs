//! The end of the issuing CA: two distinct CA administrators approve over HTTP
//! (the same one twice is refused, and one alone cannot start it), the
//! termination runs, and then the final CRL, the final OCSP responses, the ARL,
//! the tokens and the journal are checked with OpenSSL and pkilint, on the
//! running service and on one started again afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use der::{Decode, EncodePem};
use sceau::config::{Callers, IdentityProviderSettings, TokenRole};
use sceau::error::{ErrorKind, HasErrorKind};
use sceau::hsm::{Hsm, KeyId};
use sceau::pki::issuance::{IssuanceError, IssuanceRequest, KeySource};
use sceau::revocation::Reason;
use sceau::store::ra::{Effect, RaChange, Revocation};
use sceau::store::status::SerialStatus;
use serde_json::{Value, json};
use support::ca;
use support::db::TestDb;
use support::hsm::SoftHsm;
use support::idp::{AUDIENCE, Client, TestIdp};
use support::service::{self, Service};
use support::tools;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::{OcspResponse, OcspResponseStatus};

/// Who runs the terminations here.
const TEST_ACTOR: sceau::journal::Actor = sceau::journal::Actor::Task("test");

fn people() -> Vec<(&'static str, Value)> {
    let otp = |roles: &[&str]| json!({ "amr": ["pwd", "otp"], "sceau_roles": roles });
    vec![
        ("admin-1", otp(&["ca_admin"])),
        ("admin-2", otp(&["ca_admin"])),
        ("operator", otp(&["ra_operator"])),
    ]
}

async fn call(
    service: &Service,
    idp: &TestIdp,
    method: &str,
    path: &str,
    who: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = idp.token(who, AUDIENCE, None).await;
    support::back_office::bearer_call(
        &reqwest::Client::new(),
        method,
        &service.url(path),
        &token,
        body,
    )
    .await
}

async fn get_bytes(service: &Service, path: &str) -> Vec<u8> {
    let response = reqwest::get(service.url(path)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    response.bytes().await.unwrap().to_vec()
}

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

fn pem(der: &[u8]) -> String {
    Certificate::from_der(der)
        .unwrap()
        .to_pem(der::pem::LineEnding::LF)
        .unwrap()
}

/// The serials listed by a CRL, with their reason as OpenSSL prints it.
fn crl_text(file: &Path) -> String {
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        file.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{text}");
    text
}

fn ocsp_request(issuing: &Certificate, serial: &str) -> Vec<u8> {
    let serial =
        x509_cert::serial_number::SerialNumber::new(&hex::decode(serial).unwrap()).unwrap();
    let single = x509_ocsp::Request::from_issuer::<sha2::Sha256>(issuing, serial).unwrap();
    der::Encode::to_der(&OcspRequestBuilder::default().with_request(single).build()).unwrap()
}

async fn post_ocsp(service: &Service, body: Vec<u8>) -> Vec<u8> {
    let response = reqwest::Client::new()
        .post(service.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

/// `openssl ocsp` against the service for `cert`, trusting only the issuing CA
/// certificate (`-VAfile`): the final responses must verify with it alone.
fn final_ocsp_by_openssl(
    service: &Service,
    files: &Files,
    cert: &str,
    digest: &str,
    respout: &str,
) -> String {
    let issuing = files.path("issuing.pem");
    let url = service.url("/ocsp");
    let (ok, text) = openssl(&[
        "ocsp",
        digest,
        "-issuer",
        issuing.to_str().unwrap(),
        "-VAfile",
        issuing.to_str().unwrap(),
        "-cert",
        &files.path(cert).to_string_lossy(),
        "-url",
        &url,
        "-no_nonce",
        "-respout",
        &files.path(respout).to_string_lossy(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains(&format!("{cert}: revoked")), "{text}");
    assert!(
        text.contains("Next Update: Dec 31 23:59:59 9999 GMT"),
        "{text}"
    );
    text
}

async fn scenario(softhsm: &SoftHsm, db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let clients: Vec<Client> = people()
        .into_iter()
        .map(|(id, claims)| Client {
            id,
            certificate_bound: false,
            claims,
        })
        .collect();
    let idp = TestIdp::start(&clients, None, "ca-admin-provider-key");
    let mut settings = service::settings(softhsm, db, dir.path(), None);
    settings.auth.identity_providers = vec![IdentityProviderSettings {
        issuer: idp.issuer.clone(),
        audience: AUDIENCE.to_owned(),
        callers: Callers::People,
        roles_claim: Some("sceau_roles".to_owned()),
        acr_values: vec![],
        allowed: people().iter().map(|(id, _)| (*id).to_owned()).collect(),
        require_typ: true,
    }];
    settings.auth.staff = support::back_office::roster(
        &idp.issuer,
        &[("admin-1", 1), ("admin-2", 2), ("operator", 3)],
        &[],
    );
    settings.ra.sweep_interval_secs = 24 * 3600;
    // The serving instance learns of the TSU's revocation by this poll.
    settings.tsa.clock_sync_check_secs = 1;
    let service = Service::start(settings.clone(), service::clock_now()).await;
    let store = service.state.store.clone();

    // Two seal certificates; the second revoked earlier for key compromise.
    let entity = service.entity("Exemple SA", "NTRFR-732829320").await;
    let mut issued = Vec::new();
    for _ in 0..2 {
        let credential = service.active_credential(entity, "seal-ca-managed").await;
        issued.push(
            store
                .certificate_of_credential(credential)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let earlier = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let change = RaChange::new().with(Effect::Revoke(Revocation {
        serial: issued[1].serial.clone(),
        reason: "key_compromise".to_owned(),
        reason_code: Some(Reason::KeyCompromise),
        revoked_at: earlier,
        requested_by: "test".to_owned(),
        requester_role: "ca_admin".to_owned(),
        comment: None,
        journal_index: 0,
        invalidity_date: None,
    }));
    store
        .apply_ra_change(&change, "sceau.invalid", earlier)
        .await
        .unwrap()
        .settled()
        .await;
    let active = store.active_ca_certificates().await.unwrap();
    let record = |purpose: &str| {
        active
            .iter()
            .find(|c| c.purpose == purpose)
            .unwrap()
            .clone()
    };
    let (root, issuing) = (record("root"), record("issuing"));
    let services: Vec<String> = ["ocsp", "tsa"].iter().map(|p| record(p).serial).collect();
    let issuing_cert = Certificate::from_der(&issuing.der).unwrap();
    // An issuer made before the termination: it must refuse afterwards.
    let issuer_before = sceau::ca::issuer(
        &store,
        &service.state.hsm,
        &service.state.journal,
        &service.state.clock,
        service.state.policies.clone(),
    )
    .await
    .unwrap();

    // Approvals: only CA administrators, naming the right CA, once each.
    let (status, body) = call(&service, &idp, "GET", "/ca/v1/termination", "admin-1", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ca_serial"], json!(issuing.serial));
    assert_eq!(body["ready"], json!(false));
    let approve = |serial: &str| json!({ "ca_serial": serial, "reason": "the service ends" });
    let path = "/ca/v1/termination/approvals";
    let (status, body) = call(
        &service,
        &idp,
        "POST",
        path,
        "operator",
        Some(approve(&issuing.serial)),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(
        &service,
        &idp,
        "POST",
        path,
        "admin-1",
        Some(approve(&root.serial)),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "ca_serial");
    let (status, body) = call(
        &service,
        &idp,
        "POST",
        path,
        "admin-1",
        Some(json!({ "ca_serial": issuing.serial, "reason": " " })),
    )
    .await;
    assert_eq!((status, body["field"].clone()), (422, json!("reason")));
    let (status, body) = call(
        &service,
        &idp,
        "POST",
        path,
        "admin-1",
        Some(approve(&issuing.serial)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(body["ready"], json!(false));
    // The same administrator again, even with another token: refused.
    let (status, body) = call(
        &service,
        &idp,
        "POST",
        path,
        "admin-1",
        Some(approve(&issuing.serial)),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already approved"),
        "{body}"
    );

    // One approval is not enough: nothing happens.
    let hsm = Hsm::connect(&settings.hsm, &TokenRole::ALL).await.unwrap();
    let clock = service.state.clock.clone();
    let refused = sceau::ca::terminate_issuing_ca(&settings, &store, &hsm, &clock, &TEST_ACTOR)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(refused.to_string().contains("it has 1"), "{refused}");
    assert!(store.termination(&issuing.serial).await.unwrap().is_none());

    let (status, body) = call(
        &service,
        &idp,
        "POST",
        path,
        "admin-2",
        Some(approve(&issuing.serial)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ready"], json!(true));

    // The termination.
    let report = sceau::ca::terminate_issuing_ca(&settings, &store, &hsm, &clock, &TEST_ACTOR)
        .await
        .unwrap();
    assert_eq!(report.ca_serial, issuing.serial);
    assert_eq!(report.certificates_revoked, 1 + services.len() as u64);
    assert_eq!(report.final_ocsp_responses, 2 * (2 + services.len() as u64));
    assert_eq!(report.seal_keys_destroyed, 2);
    let again = sceau::ca::terminate_issuing_ca(&settings, &store, &hsm, &clock, &TEST_ACTOR)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    let (status, _) = call(
        &service,
        &idp,
        "POST",
        path,
        "admin-1",
        Some(approve(&issuing.serial)),
    )
    .await;
    assert_eq!(status, 409);

    // Every certificate reads revoked; the first for the CA's end, the second
    // keeps its earlier reason and time.
    for certificate in &issued {
        let found = store.certificate_status(&certificate.serial).await.unwrap();
        assert!(
            matches!(found.status, SerialStatus::Revoked { .. }),
            "{found:?}"
        );
        assert!(found.final_response);
    }
    assert_eq!(
        store
            .certificate_status(&issued[1].serial)
            .await
            .unwrap()
            .status,
        SerialStatus::Revoked {
            at: earlier,
            reason_code: Some(Reason::KeyCompromise)
        }
    );
    for serial in &services {
        let found = store.certificate_status(serial).await.unwrap();
        assert!(
            matches!(found.status, SerialStatus::Revoked { .. }),
            "{found:?}"
        );
    }

    // The CA key and the subscribers' keys are gone from their tokens.
    let issuing_token = hsm.token(TokenRole::Issuing).unwrap().clone();
    let ca_key = KeyId::from_bytes(&issuing.key.key_id).unwrap();
    assert!(issuing_token.find_key(ca_key).await.is_err());
    let seal_token = hsm.token(TokenRole::Seal).unwrap().clone();
    for certificate in &issued {
        let credential = store
            .seal_credential(certificate.credential_id.unwrap())
            .await
            .unwrap();
        let key = KeyId::from_bytes(&credential.key.key_id).unwrap();
        assert!(seal_token.clone().find_key(key).await.is_err());
    }

    // Nothing more is issued, by an issuer made before or by the RA.
    let refused = issuer_before
        .issue(
            sceau::pki::signing::Grant::validated_request(vec!["test".to_owned()]),
            IssuanceRequest {
                request_id: uuid::Uuid::new_v4(),
                policy_id: "seal-ca-managed".to_owned(),
                entity_id: entity,
                seal_name: "After the end".to_owned(),
                validity_days: Some(30),
                key: KeySource::Generate { algorithm: None },
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, IssuanceError::CaTerminated), "{refused}");

    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    files.write("root.pem", pem(&root.der));
    files.write("issuing.pem", pem(&issuing.der));
    for (i, certificate) in issued.iter().enumerate() {
        files.write(&format!("cert{i}.pem"), pem(&certificate.der));
    }
    check_served(
        &service,
        &files,
        &issuing_cert,
        &issued_serials(&issued),
        &services,
    )
    .await;
    service.stop().await;

    // Started again: the key is gone, yet the final CRL and responses are served.
    let restarted = Service::start(settings.clone(), service::clock_now()).await;
    check_served(
        &restarted,
        &files,
        &issuing_cert,
        &issued_serials(&issued),
        &services,
    )
    .await;
    restarted.stop().await;
    drop(hsm);

    // Every step is in the journal, and the journal verifies.
    for kind in [
        "ca.termination_approved",
        "ca.termination_started",
        "certificates.revoked_for_ca_termination",
        "ca.service_certificates_revoked",
        "crl.final",
        "ocsp.final_responses",
        "ca.revoked",
        "arl.published",
        "ca.key_destroyed",
        "key.destroyed",
        "ca.terminated",
    ] {
        assert!(
            db.count(&format!("journal_entries WHERE kind = '{kind}'"))
                .await
                > 0,
            "no {kind} in the journal"
        );
    }
    let verify = support::app::audit_verify(db, dir.path());
    assert!(
        verify.status.success(),
        "sceau audit verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

fn issued_serials(issued: &[sceau::store::certificates::IssuedCertificate]) -> Vec<String> {
    issued.iter().map(|c| c.serial.clone()).collect()
}

/// What a terminated CA's service must still serve: the final CRL, the ARL
/// listing the CA, and the final OCSP responses.
async fn check_served(
    service: &Service,
    files: &Files,
    issuing: &Certificate,
    seal_serials: &[String],
    service_serials: &[String],
) {
    // The TSU's certificate is revoked: the TSA refuses every query with
    // systemFailure (the instance that served before the end notices within
    // its poll; polled with a deadline).
    let data = files.write("after-the-end.txt", "a document stamped after the end");
    let query = files.path("after-the-end.tsq");
    let (ok, out) = openssl(&[
        "ts",
        "-query",
        "-data",
        &data,
        "-sha256",
        "-cert",
        "-out",
        query.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let query = std::fs::read(&query).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = reqwest::Client::new()
            .post(service.url("/tsa"))
            .header("content-type", "application/timestamp-query")
            .body(query.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (status, fail) = tools::tsa_status(&reply);
        if status == 2
            && fail
                .as_deref()
                .is_some_and(|bits| tools::fail_bit(bits, 25))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the TSA still answers status {status} after the end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The final CRL: nextUpdate 99991231235959Z, every certificate listed,
    // signed by the CA; the revoked seal certificate fails -crl_check.
    let crl_der = get_bytes(service, "/crl/issuing.crl").await;
    let crl = CertificateList::from_der(&crl_der).unwrap();
    let next_update = der::Encode::to_der(&crl.tbs_cert_list.next_update.unwrap()).unwrap();
    // A GeneralizedTime (tag 24) of exactly 99991231235959Z.
    assert_eq!(next_update, [&[0x18, 15][..], b"99991231235959Z"].concat());
    let listed: Vec<String> = crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|r| hex::encode(r.serial_number.as_bytes()))
        .collect();
    for serial in seal_serials.iter().chain(service_serials) {
        assert!(listed.contains(serial), "{serial} not on the final CRL");
    }
    let crl_file = files.write("final.crl", &crl_der);
    let text = crl_text(Path::new(&crl_file));
    assert!(
        text.contains("Next Update: Dec 31 23:59:59 9999 GMT"),
        "{text}"
    );
    assert!(text.contains("Cessation Of Operation"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &crl_file,
        "-CAfile",
        &files.path("issuing.pem").to_string_lossy(),
        "-noout",
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
    let findings = tools::pkilint_errors(
        "lint_crl",
        &["-t", "CRL", "-p", "PKIX"],
        Path::new(&crl_file),
    );
    assert!(findings.is_empty(), "{findings}");
    let crl_pem = files.path("final.crl.pem");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &crl_file,
        "-out",
        &crl_pem.to_string_lossy(),
    ]);
    assert!(ok, "{text}");

    // The ARL lists the issuing CA, revoked for cessation of operation.
    let arl_der = get_bytes(service, "/crl/root.crl").await;
    let arl_file = files.write("root.crl", &arl_der);
    let issuing_serial = hex::encode(issuing.tbs_certificate.serial_number.as_bytes());
    let arl = CertificateList::from_der(&arl_der).unwrap();
    assert!(
        arl.tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| hex::encode(r.serial_number.as_bytes()) == issuing_serial),
        "the ARL lists the issuing CA"
    );
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &arl_file,
        "-CAfile",
        &files.path("root.pem").to_string_lossy(),
        "-noout",
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
    let findings = tools::pkilint_errors(
        "lint_crl",
        &["-t", "ARL", "-p", "PKIX"],
        Path::new(&arl_file),
    );
    assert!(findings.is_empty(), "{findings}");

    // The final OCSP responses, for SHA-1 and SHA-256 CertIDs, verify with the
    // issuing CA certificate alone and pass pkilint.
    for (i, reason) in [(0, "cessationOfOperation"), (1, "keyCompromise")] {
        for digest in ["-sha1", "-sha256"] {
            let respout = format!("final{i}{digest}.der");
            let text =
                final_ocsp_by_openssl(service, files, &format!("cert{i}.pem"), digest, &respout);
            assert!(text.contains(&format!("Reason: {reason}")), "{text}");
            let findings = tools::pkilint_errors("lint_ocsp_response", &[], &files.path(&respout));
            assert!(findings.is_empty(), "pkilint on {respout}: {findings}");
        }
    }
    // A serial the CA never issued: no key may answer for it any more.
    let unknown = post_ocsp(service, ocsp_request(issuing, "5ce4ab0c0ffee0ddba11")).await;
    assert_eq!(
        OcspResponse::from_der(&unknown).unwrap().response_status,
        OcspResponseStatus::Unauthorized
    );
}

#[test]
fn a_terminated_ca_leaves_final_crl_and_ocsp_responses_and_no_key() {
    let Some(softhsm) =
        support::hsm::isolated("a_terminated_ca_leaves_final_crl_and_ocsp_responses_and_no_key")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        scenario(&softhsm, &db).await;
    });
}

#[test]
fn a_terminated_ca_leaves_final_crl_and_ocsp_responses_and_no_key_on_postgres() {
    let Some(softhsm) = support::hsm::isolated(
        "a_terminated_ca_leaves_final_crl_and_ocsp_responses_and_no_key_on_postgres",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        let Some(db) = support::db::postgres().await else {
            return;
        };
        scenario(&softhsm, &db).await;
    });
}
