//! The OCSP responder over HTTP: OpenSSL verifies good, revoked and unknown
//! answers (with and without nonce, POST and GET), pkilint finds nothing, a
//! revocation on one instance is seen at once by another, a nonce flood stays
//! within the signing bound, and bad requests never get a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use der::{Decode, Encode, EncodePem};
use sceau::config::{OcspOverLimit, TokenRole};
use sceau::revocation::Reason;
use sceau::store::ra::{Effect, RaChange, Revocation};
use support::ca;
use support::db::TestDb;
use support::hsm::SoftHsm;
use support::service::{self, Service};
use support::tools;
use x509_cert::Certificate;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

/// A served instance with one issued seal certificate, and the PEM files OpenSSL needs.
struct Fixture {
    service: Service,
    issuing: Certificate,
    /// Serial (hex) and PEM file of the issued certificate.
    serial: String,
    cert_pem: PathBuf,
    issuing_pem: PathBuf,
    /// Root + issuing: what `-CAfile` needs to verify the delegated responder.
    chain_pem: PathBuf,
    dir: tempfile::TempDir,
}

fn pem(certificate: &Certificate) -> String {
    certificate.to_pem(der::pem::LineEnding::LF).unwrap()
}

async fn start(
    softhsm: &SoftHsm,
    db: &TestDb,
    tweak: impl FnOnce(&mut sceau::config::Settings),
) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = service::settings(softhsm, db, dir.path(), None);
    tweak(&mut settings);
    let service = Service::start(settings, service::clock_now()).await;
    // The settings' folders must outlive the service: keep them with the test.
    std::mem::forget(dir);
    service
}

async fn fixture(service: Service) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = &service.state.store;
    let active = store.active_ca_certificates().await.unwrap();
    let find = |purpose: &str| {
        Certificate::from_der(&active.iter().find(|c| c.purpose == purpose).unwrap().der).unwrap()
    };
    let (root, issuing) = (find("root"), find("issuing"));
    let entity = service.entity("Exemple SA", "NTRFR-732829320").await;
    let credential = service.active_credential(entity, "seal-ca-managed").await;
    let issued = store
        .certificate_of_credential(credential)
        .await
        .unwrap()
        .unwrap();
    let cert = Certificate::from_der(&issued.der).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Fixture {
        serial: issued.serial.clone(),
        cert_pem: write("cert.pem", pem(&cert)),
        issuing_pem: write("issuing.pem", pem(&issuing)),
        chain_pem: write("chain.pem", pem(&root) + &pem(&issuing)),
        issuing,
        service,
        dir,
    }
}

async fn revoke(
    service: &Service,
    serial: &str,
    reason_code: Option<Reason>,
) -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let change = RaChange::new().with(Effect::Revoke(Revocation {
        serial: serial.to_owned(),
        reason: "keyCompromise".to_owned(),
        reason_code,
        revoked_at: now,
        requested_by: "test".to_owned(),
        requester_role: "ca-admin".to_owned(),
        comment: None,
        journal_index: 0,
        invalidity_date: None,
    }));
    service
        .state
        .store
        .apply_ra_change(&change, "sceau.invalid", now)
        .await
        .unwrap()
        .settled()
        .await;
    now
}

/// Runs `openssl ocsp` against the service; returns (success, stdout + stderr).
fn openssl_ocsp(f: &Fixture, target: &[&str], extra: &[&str], respout: &Path) -> (bool, String) {
    let url = f.service.url("/ocsp");
    let mut args = vec![
        "ocsp",
        "-issuer",
        f.issuing_pem.to_str().unwrap(),
        "-url",
        &url,
        "-CAfile",
        f.chain_pem.to_str().unwrap(),
        "-respout",
        respout.to_str().unwrap(),
    ];
    args.extend_from_slice(target);
    args.extend_from_slice(extra);
    let output = tools::run(&tools::tool("openssl"), &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn assert_verified(text: &str) {
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(!text.contains("nonce"), "nonce problem: {text}");
    assert!(!text.contains("Nonce"), "nonce problem: {text}");
}

fn pkilint_clean(file: &Path) {
    let findings = tools::pkilint_errors("lint_ocsp_response", &[], file);
    assert!(
        findings.is_empty(),
        "pkilint on {}: {findings}",
        file.display()
    );
}

/// The OCSP status and, when successful, the first certificate status and the nonce.
/// The first certificate status and the echoed nonce of a successful response.
type Single = (CertStatus, Option<Vec<u8>>);

fn decode(der: &[u8]) -> (OcspResponseStatus, Option<Single>) {
    let response = OcspResponse::from_der(der).unwrap();
    let single = response.response_bytes.map(|bytes| {
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        let nonce = basic.nonce().map(|n| n.0.as_bytes().to_vec());
        (basic.tbs_response_data.responses[0].cert_status, nonce)
    });
    (response.response_status, single)
}

fn request(issuing: &Certificate, serial: &str, nonce: Option<&[u8]>) -> Vec<u8> {
    let serial =
        x509_cert::serial_number::SerialNumber::new(&hex::decode(serial).unwrap()).unwrap();
    let single = x509_ocsp::Request::from_issuer::<sha2::Sha256>(issuing, serial).unwrap();
    let mut builder = OcspRequestBuilder::default().with_request(single);
    if let Some(nonce) = nonce {
        builder = builder.with_extension(Nonce::new(nonce).unwrap()).unwrap();
    }
    builder.build().to_der().unwrap()
}

async fn post(client: &reqwest::Client, service: &Service, body: Vec<u8>) -> (u16, Vec<u8>) {
    post_to(client, &service.url("/ocsp"), body).await
}

async fn post_to(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = client
        .post(url)
        .header("content-type", "application/ocsp-request")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[test]
fn openssl_verifies_good_revoked_and_unknown_answers_and_pkilint_finds_nothing() {
    let Some(softhsm) = support::hsm::isolated(
        "openssl_verifies_good_revoked_and_unknown_answers_and_pkilint_finds_nothing",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let f = fixture(start(&softhsm, &db, |_| {}).await).await;
        let out = |name: &str| f.dir.path().join(name);
        let cert = ["-cert", f.cert_pem.to_str().unwrap()];

        // Good, with a nonce (OpenSSL's default) and without.
        let (ok, text) = openssl_ocsp(&f, &cert, &[], &out("good-nonce.der"));
        assert!(ok, "{text}");
        assert_verified(&text);
        assert!(text.contains("cert.pem: good"), "{text}");
        let (ok, text) = openssl_ocsp(&f, &cert, &["-no_nonce"], &out("good.der"));
        assert!(ok && text.contains("cert.pem: good"), "{text}");
        assert_verified(&text);
        pkilint_clean(&out("good.der"));
        pkilint_clean(&out("good-nonce.der"));

        // Unknown: a serial never issued.
        let serial = "0x5ce4ab0c0ffee0ddba11";
        let (ok, text) = openssl_ocsp(&f, &["-serial", serial], &[], &out("unknown.der"));
        assert!(ok, "{text}");
        assert_verified(&text);
        assert!(text.contains(&format!("{serial}: unknown")), "{text}");
        pkilint_clean(&out("unknown.der"));

        // Revoked, with the reason and the time; the cached "good" is not reused.
        let revoked_at = revoke(&f.service, &f.serial, Some(Reason::KeyCompromise)).await;
        for (extra, file) in [
            (&[][..], "revoked-nonce.der"),
            (&["-no_nonce"][..], "revoked.der"),
        ] {
            let (ok, text) = openssl_ocsp(&f, &cert, extra, &out(file));
            assert!(ok, "{text}");
            assert_verified(&text);
            assert!(text.contains("cert.pem: revoked"), "{text}");
            assert!(text.contains("Reason: keyCompromise"), "{text}");
            let month_day = revoked_at
                .format(time::macros::format_description!(
                    "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
                ))
                .unwrap();
            assert!(
                text.contains(&format!("Revocation Time: {month_day} GMT")),
                "{month_day} in {text}"
            );
            pkilint_clean(&out(file));
        }
        f.service.stop().await;
    });
}

#[test]
fn the_get_form_answers_with_rfc5019_cache_headers() {
    let Some(softhsm) = support::hsm::isolated("the_get_form_answers_with_rfc5019_cache_headers")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let f = fixture(start(&softhsm, &db, |_| {}).await).await;
        let req = f.dir.path().join("req.der");
        let resp = f.dir.path().join("resp.der");
        let openssl = tools::tool("openssl");
        let output = tools::run(
            &openssl,
            &[
                "ocsp",
                "-issuer",
                f.issuing_pem.to_str().unwrap(),
                "-cert",
                f.cert_pem.to_str().unwrap(),
                "-no_nonce",
                "-reqout",
                req.to_str().unwrap(),
            ],
        );
        assert!(output.status.success());
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
        let escaped = encoded
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let response = reqwest::get(f.service.url(&format!("/ocsp/{escaped}")))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/ocsp-response");
        let cache_control = headers["cache-control"].to_str().unwrap();
        assert!(
            cache_control.starts_with("max-age=")
                && cache_control.ends_with(", public, no-transform, must-revalidate"),
            "{cache_control}"
        );
        for name in ["last-modified", "expires", "etag"] {
            assert!(headers.contains_key(name), "{name} missing: {headers:?}");
        }
        std::fs::write(&resp, response.bytes().await.unwrap()).unwrap();
        let output = tools::run(
            &openssl,
            &[
                "ocsp",
                "-reqin",
                req.to_str().unwrap(),
                "-respin",
                resp.to_str().unwrap(),
                "-issuer",
                f.issuing_pem.to_str().unwrap(),
                "-cert",
                f.cert_pem.to_str().unwrap(),
                "-CAfile",
                f.chain_pem.to_str().unwrap(),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains("cert.pem: good"), "{text}");
        // Unpadded URL-safe base64 (not percent-encoded) is read too.
        let unpadded =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(std::fs::read(&req).unwrap());
        let response = reqwest::get(f.service.url(&format!("/ocsp/{unpadded}")))
            .await
            .unwrap();
        let body = response.bytes().await.unwrap();
        assert!(matches!(
            decode(&body),
            (
                OcspResponseStatus::Successful,
                Some((CertStatus::Good(_), None))
            )
        ));
        f.service.stop().await;
    });
}

#[test]
fn bad_requests_get_malformed_request_or_4xx_never_5xx() {
    let Some(softhsm) =
        support::hsm::isolated("bad_requests_get_malformed_request_or_4xx_never_5xx")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        // A small body limit: an oversized body fits in the socket buffers, so the
        // client has sent it all before the 413 comes back (no reset mid-send).
        let f = fixture(start(&softhsm, &db, |s| s.server.body_limit_bytes = 8192).await).await;
        let client = reqwest::Client::new();
        let good = request(&f.issuing, &f.serial, None);
        // The SHA-256 OID's last arc changed to an unassigned one (same length).
        let sha256_oid = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        ];
        let at = good
            .windows(sha256_oid.len())
            .position(|w| w == sha256_oid)
            .unwrap();
        let mut other_hash = good.clone();
        other_hash[at + sha256_oid.len() - 1] = 0x7f;
        let limit = f.service.state.ocsp.settings().max_request_bytes;
        let body_limit = f.service.state.settings.server.body_limit_bytes;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("garbage", b"this is not DER at all".to_vec()),
            ("truncated", good[..good.len() - 3].to_vec()),
            ("trailing bytes", [good.clone(), vec![0]].concat()),
            ("unsupported hash", other_hash),
            ("over the OCSP limit", vec![0x30; limit + 1]),
            ("over the body limit", vec![0x30; body_limit + 1]),
        ];
        for (what, body) in cases {
            let (status, bytes) = post(&client, &f.service, body).await;
            if what == "over the body limit" {
                // The general limit answers before any route reads.
                assert_eq!(status, 413, "{what}");
                continue;
            }
            assert_eq!(status, 200, "{what}");
            assert_eq!(
                decode(&bytes).0,
                OcspResponseStatus::MalformedRequest,
                "{what}"
            );
        }
        for path in ["/ocsp/%%%", "/ocsp/bm90IERFUg", "/ocsp/!!!!"] {
            let response = client.get(f.service.url(path)).send().await.unwrap();
            let status = response.status().as_u16();
            assert!(status < 500, "{path}: HTTP {status}");
            if status == 200 {
                let bytes = response.bytes().await.unwrap();
                assert_eq!(
                    decode(&bytes).0,
                    OcspResponseStatus::MalformedRequest,
                    "{path}"
                );
            }
        }
        // A CA we do not run: unauthorized.
        let stranger = Certificate::from_der(
            &f.service
                .state
                .store
                .active_ca_certificates()
                .await
                .unwrap()
                .into_iter()
                .find(|c| c.purpose == "root")
                .unwrap()
                .der,
        )
        .unwrap();
        let (status, bytes) = post(&client, &f.service, request(&stranger, &f.serial, None)).await;
        assert_eq!(status, 200);
        assert_eq!(decode(&bytes).0, OcspResponseStatus::Unauthorized);
        // Still serving good answers.
        let (_, bytes) = post(&client, &f.service, good).await;
        assert!(matches!(
            decode(&bytes),
            (
                OcspResponseStatus::Successful,
                Some((CertStatus::Good(_), _))
            )
        ));
        f.service.stop().await;
    });
}

/// Two instances on one database: B caches "good", A revokes, B says revoked at once,
/// idle or busy; cached answers read nothing while the status lease holds.
async fn freshness_across_instances(softhsm: &SoftHsm, db: &TestDb) {
    let f = fixture(start(softhsm, db, |_| {}).await).await;
    let b = start(softhsm, db, |_| {}).await;
    let client = reqwest::Client::new();
    let ask = request(&f.issuing, &f.serial, None);
    let (_, first) = post(&client, &b, ask.clone()).await;
    let (_, second) = post(&client, &b, ask.clone()).await;
    assert!(matches!(
        decode(&first),
        (
            OcspResponseStatus::Successful,
            Some((CertStatus::Good(_), None))
        )
    ));
    assert_eq!(first, second, "the second answer comes from B's cache");

    revoke(&f.service, &f.serial, Some(Reason::KeyCompromise)).await;
    // The revocation call has returned: B's next answer must already say revoked.
    // Polled with a deadline only so that a failure reports instead of hanging.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (_, answer) = post(&client, &b, ask.clone()).await;
        if matches!(decode(&answer).1, Some((CertStatus::Revoked(_), _))) {
            break;
        }
        assert!(Instant::now() < deadline, "B still answers good");
    }
    assert_eq!(
        attempts, 1,
        "B served a stale good after the revocation returned"
    );

    // Now with B busy: its requests keep its view of the status generation
    // renewed, so it answers from its cache, without reading, right up to the
    // revocation. The first answer after the revocation returns must say
    // revoked, and once B has said revoked it never says good again.
    let busy_entity = f.service.entity("Occupée SA", "NTRFR-732829304").await;
    let busy_credential = f
        .service
        .active_credential(busy_entity, "seal-ca-managed")
        .await;
    let busy = f
        .service
        .state
        .store
        .certificate_of_credential(busy_credential)
        .await
        .unwrap()
        .unwrap()
        .serial;
    let busy_ask = request(&f.issuing, &busy, None);
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (client, b_ocsp, ask, stop) = (
            client.clone(),
            b.url("/ocsp"),
            busy_ask.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut said = Vec::new();
            // Bounded: stopped by the flag, or after 20,000 requests.
            for _ in 0..20_000 {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let (_, answer) = post_to(&client, &b_ocsp, ask.clone()).await;
                said.push(match decode(&answer).1 {
                    Some((CertStatus::Good(_), _)) => 'g',
                    Some((CertStatus::Revoked(_), _)) => 'r',
                    other => panic!("B answered {other:?}"),
                });
            }
            said
        })
    };
    // Several status leases of busy answers before the revocation.
    let busy_until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < busy_until {
        let (_, answer) = post(&client, &b, busy_ask.clone()).await;
        assert!(matches!(decode(&answer).1, Some((CertStatus::Good(_), _))));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    revoke(&f.service, &busy, Some(Reason::Superseded)).await;
    let (_, answer) = post(&client, &b, busy_ask.clone()).await;
    stop.store(true, Ordering::Release);
    assert!(
        matches!(decode(&answer).1, Some((CertStatus::Revoked(_), _))),
        "busy B served a stale good after the revocation returned"
    );
    let said: String = hammer.await.unwrap().into_iter().collect();
    assert!(said.starts_with('g'), "{said}");
    assert!(
        !said.trim_start_matches('g').contains('g'),
        "B said good again after saying revoked: {said}"
    );

    // Concurrent requests have their status reads made together: each still
    // gets its own certificate's status.
    let entity = f.service.entity("Autre SA", "NTRFR-123456782").await;
    let credential = f.service.active_credential(entity, "seal-ca-managed").await;
    let good = f
        .service
        .state
        .store
        .certificate_of_credential(credential)
        .await
        .unwrap()
        .unwrap()
        .serial;
    let asked: Vec<(&str, bool)> = (0..60)
        .map(|i| {
            if i % 2 == 0 {
                (f.serial.as_str(), true)
            } else {
                (good.as_str(), false)
            }
        })
        .collect();
    let answers = futures_util::future::join_all(
        asked
            .iter()
            .map(|(serial, _)| post(&client, &b, request(&f.issuing, serial, None))),
    )
    .await;
    for ((serial, revoked), (status, answer)) in asked.iter().zip(answers) {
        assert_eq!(status, 200);
        let said = decode(&answer).1.map(|(status, _)| status);
        if *revoked {
            assert!(
                matches!(said, Some(CertStatus::Revoked(_))),
                "{serial}: {said:?}"
            );
        } else {
            assert!(
                matches!(said, Some(CertStatus::Good(_))),
                "{serial}: {said:?}"
            );
        }
    }

    // Cached answers are served without reading the database while the
    // status lease holds; with a lease of 0, every request reads.
    let again = request(&f.issuing, &good, None);
    let queries = status_queries_for_30_good_answers(&client, &b, &again).await;
    assert!(
        queries < 10,
        "{queries} status queries for 30 cached answers"
    );
    let c = start(softhsm, db, |settings| {
        settings.database.status_lease_ms = 0
    })
    .await;
    let queries = status_queries_for_30_good_answers(&client, &c, &again).await;
    assert_eq!(queries, 30, "no lease: one read per request");
    let (_, renewals) = c.state.ocsp.database_reads();
    assert_eq!(renewals, 0, "no lease: nothing to renew");
    c.stop().await;
    b.stop().await;
    f.service.stop().await;
}

/// The status queries `service` makes for 30 requests `ask` answered "good",
/// after one request that fills its cache.
async fn status_queries_for_30_good_answers(
    client: &reqwest::Client,
    service: &Service,
    ask: &[u8],
) -> u64 {
    post(client, service, ask.to_vec()).await;
    let (before, _) = service.state.ocsp.database_reads();
    for _ in 0..30 {
        let (_, answer) = post(client, service, ask.to_vec()).await;
        assert!(matches!(decode(&answer).1, Some((CertStatus::Good(_), _))));
    }
    service.state.ocsp.database_reads().0 - before
}

#[test]
fn a_revocation_on_one_instance_is_seen_at_once_by_another() {
    let Some(softhsm) =
        support::hsm::isolated("a_revocation_on_one_instance_is_seen_at_once_by_another")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        freshness_across_instances(&softhsm, &db).await;
    });
}

#[test]
fn a_revocation_on_one_instance_is_seen_at_once_by_another_on_postgres() {
    let Some(softhsm) = support::hsm::isolated(
        "a_revocation_on_one_instance_is_seen_at_once_by_another_on_postgres",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        let Some(db) = support::db::postgres().await else {
            eprintln!("no PostgreSQL: skipped");
            return;
        };
        freshness_across_instances(&softhsm, &db).await;
    });
}

#[test]
fn a_nonce_flood_stays_within_the_signing_bound_and_cached_answers_stay_fast() {
    let Some(softhsm) = support::hsm::isolated(
        "a_nonce_flood_stays_within_the_signing_bound_and_cached_answers_stay_fast",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        const RATE: u32 = 20;
        const BURST: u32 = 10;
        const FLOOD: usize = 10_000;
        let db = support::db::sqlite();
        let f = fixture(
            start(&softhsm, &db, |s| {
                s.ocsp.nonce_signatures_per_second = RATE;
                s.ocsp.nonce_burst = BURST;
                s.ocsp.over_limit = OcspOverLimit::TryLater;
            })
            .await,
        )
        .await;
        let service = Arc::new(f.service);
        let client = reqwest::Client::new();
        let cached = request(&f.issuing, &f.serial, None);
        // Warm the cache (one signature), then count signatures from here on.
        let (_, warm) = post(&client, &service, cached.clone()).await;
        assert!(matches!(decode(&warm).0, OcspResponseStatus::Successful));
        let services = service.state.hsm.token(TokenRole::Services).unwrap().clone();
        let signed_before = services.sign_calls();
        let started = Instant::now();

        let limit = Arc::new(tokio::sync::Semaphore::new(32));
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..FLOOD {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (task_client, task_service, issuing, serial) =
                (client.clone(), service.clone(), f.issuing.clone(), f.serial.clone());
            flood.spawn(async move {
                let nonce = (i as u64).to_be_bytes();
                let asked = request(&issuing, &serial, Some(&nonce));
                let (status, bytes) = post(&task_client, &task_service, asked).await;
                drop(permit);
                assert_eq!(status, 200);
                match decode(&bytes) {
                    (OcspResponseStatus::Successful, Some((_, Some(echoed)))) => {
                        assert_eq!(echoed, nonce);
                        true
                    }
                    (OcspResponseStatus::TryLater, None) => false,
                    other => panic!("unexpected answer {other:?}"),
                }
            });
            // Cached answers, timed, while the flood runs.
            if i % 500 == 0 {
                let asked = Instant::now();
                let (_, bytes) = post(&client, &service, cached.clone()).await;
                let latency = asked.elapsed();
                assert_eq!(bytes, warm, "the cached answer is served");
                assert!(latency < Duration::from_secs(2), "cached answer took {latency:?}");
            }
        }
        let mut signed_with_nonce = 0u64;
        while let Some(result) = flood.join_next().await {
            signed_with_nonce += u64::from(result.unwrap());
        }
        let elapsed = started.elapsed();
        let signed = services.sign_calls() - signed_before;
        // The bound: the bucket's size plus its rate over the elapsed time, plus
        // a few journal checkpoints (the audit key is on the same token).
        let bound = u64::from(BURST) + (f64::from(RATE) * elapsed.as_secs_f64()).ceil() as u64 + 5;
        eprintln!(
            "{FLOOD} nonce requests in {elapsed:?}: {signed_with_nonce} signed, {signed} HSM signatures (bound {bound})"
        );
        assert!(signed <= bound, "{signed} signatures > bound {bound} in {elapsed:?}");
        assert!(signed_with_nonce >= u64::from(BURST), "{signed_with_nonce}");
        assert!(signed_with_nonce < FLOOD as u64);
        Arc::into_inner(service).unwrap().stop().await;
    });
}

#[test]
fn the_responder_certificate_is_renewed_before_expiry_and_used_at_once() {
    let Some(softhsm) = support::hsm::isolated(
        "the_responder_certificate_is_renewed_before_expiry_and_used_at_once",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let f = fixture(
            start(&softhsm, &db, |s| {
                // Only the explicit passes below: no race with the timer.
                s.ocsp.maintenance_interval_secs = 86_400;
                s.ocsp.validity_secs = 3600;
            })
            .await,
        )
        .await;
        let state = &f.service.state;
        let client = reqwest::Client::new();
        let ask = request(&f.issuing, &f.serial, None);
        let responder_serial = |der: &[u8]| {
            let response = OcspResponse::from_der(der).unwrap();
            let basic =
                BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes())
                    .unwrap();
            hex::encode(
                basic.certs.unwrap()[0]
                    .tbs_certificate
                    .serial_number
                    .as_bytes(),
            )
        };
        let (_, before) = post(&client, &f.service, ask.clone()).await;
        let old = state.ocsp.key().serial().to_owned();
        assert_eq!(responder_serial(&before), old);
        // Far from expiry (30 days, renewed 10 days before): nothing to do.
        assert!(!sceau::ca::maintain_ocsp_responder(state).await.unwrap());
        f.service.clock.advance(Duration::from_secs(21 * 86_400));
        assert!(sceau::ca::maintain_ocsp_responder(state).await.unwrap());
        let new = state.ocsp.key().serial().to_owned();
        assert_ne!(new, old);
        let active = state
            .store
            .active_ca_certificates()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.purpose == "ocsp")
            .unwrap();
        assert_eq!(active.serial, new);
        let (_, after) = post(&client, &f.service, ask).await;
        assert_eq!(
            responder_serial(&after),
            new,
            "answers are signed by the new responder"
        );
        assert!(!sceau::ca::maintain_ocsp_responder(state).await.unwrap());
        let journaled = db
            .count("journal_entries WHERE kind = 'ocsp.responder_renewed'")
            .await;
        assert_eq!(journaled, 1);
        f.service.stop().await;
    });
}

#[test]
fn past_the_bound_nonce_requests_get_the_cached_answer_when_configured() {
    let Some(softhsm) = support::hsm::isolated(
        "past_the_bound_nonce_requests_get_the_cached_answer_when_configured",
    ) else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let f = fixture(
            start(&softhsm, &db, |s| {
                s.ocsp.nonce_signatures_per_second = 0;
                s.ocsp.nonce_burst = 1;
                s.ocsp.over_limit = OcspOverLimit::Cached;
            })
            .await,
        )
        .await;
        let client = reqwest::Client::new();
        let first = request(&f.issuing, &f.serial, Some(b"first nonce"));
        let (_, bytes) = post(&client, &f.service, first).await;
        assert!(matches!(
            decode(&bytes),
            (OcspResponseStatus::Successful, Some((CertStatus::Good(_), Some(n)))) if n == b"first nonce"
        ));
        // The bucket is empty and never refills: the cached answer, without the nonce.
        let second = request(&f.issuing, &f.serial, Some(b"second nonce"));
        let (_, bytes) = post(&client, &f.service, second).await;
        let (_, plain) = post(&client, &f.service, request(&f.issuing, &f.serial, None)).await;
        assert!(matches!(
            decode(&bytes),
            (OcspResponseStatus::Successful, Some((CertStatus::Good(_), None)))
        ));
        assert_eq!(bytes, plain);
        // An unknown serial is not signed past the bound: tryLater.
        let (_, bytes) = post(&client, &f.service, request(&f.issuing, "5ce4ab", None)).await;
        assert_eq!(decode(&bytes).0, OcspResponseStatus::TryLater);
        f.service.stop().await;
    });
}
