//! The time-stamping authority: `openssl ts` makes the queries and verifies the
//! replies against our root; refusals (policy, digest, garbage, clock not
//! synchronised, key past its usage period) are rejections that say why; the
//! unit rotates by command and serving switches to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use der::{Decode, Encode, EncodePem};
use sceau::clock::Clock;
use support::ca;
use support::db::TestDb;
use support::hsm::SoftHsm;
use support::service::{self, Service};
use support::tools;
use x509_cert::Certificate;

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
}

async fn post(service: &Service, body: Vec<u8>, media_type: &str) -> (u16, String, Vec<u8>) {
    let response = reqwest::Client::new()
        .post(service.url("/tsa"))
        .header("content-type", media_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// `openssl ts -query` for `data` with `extra` options; returns the query file.
fn query(files: &Files, name: &str, extra: &[&str]) -> String {
    let out = files.path(&format!("{name}.tsq"));
    let data = files.path("data.txt");
    let mut args = vec!["ts", "-query", "-data", &data];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-out", &out]);
    let (ok, text) = openssl(&args);
    assert!(ok, "{text}");
    out
}

/// Posts a query file and writes the reply next to it.
async fn ask(service: &Service, files: &Files, name: &str, extra: &[&str]) -> (String, String) {
    let query_file = query(files, name, extra);
    let (status, content_type, reply) = post(
        service,
        std::fs::read(&query_file).unwrap(),
        "application/timestamp-query",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/timestamp-reply");
    let reply_file = files.path(&format!("{name}.tsr"));
    std::fs::write(&reply_file, reply).unwrap();
    (query_file, reply_file)
}

fn reply_text(reply_file: &str) -> String {
    let (ok, text) = openssl(&["ts", "-reply", "-in", reply_file, "-text"]);
    assert!(ok, "{text}");
    text
}

/// `openssl ts -verify` trusting the root alone, given `untrusted`
/// certificates besides the token's own when the relying party brings some.
fn verify(
    files: &Files,
    query_file: &str,
    reply_file: &str,
    untrusted: Option<&str>,
) -> (bool, String) {
    let root = files.path("root.pem");
    let mut args = vec![
        "ts",
        "-verify",
        "-queryfile",
        query_file,
        "-in",
        reply_file,
        "-CAfile",
        &root,
    ];
    if let Some(untrusted) = untrusted {
        args.extend(["-untrusted", untrusted]);
    }
    openssl(&args)
}

fn pem(der: &[u8]) -> String {
    Certificate::from_der(der)
        .unwrap()
        .to_pem(der::pem::LineEnding::LF)
        .unwrap()
}

async fn scenario(softhsm: &SoftHsm, db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let sync_file = dir.path().join("synchronised");
    std::fs::write(&sync_file, "yes\n").unwrap();
    let mut settings = service::settings(softhsm, db, dir.path(), None);
    settings.tsa.clock_sync_command = vec!["cat".to_owned(), sync_file.display().to_string()];
    settings.tsa.clock_sync_check_secs = 1;
    let service = Service::start(settings.clone(), service::clock_now()).await;
    let store = service.state.store.clone();
    let active = store.active_ca_certificates().await.unwrap();
    let der_of = |purpose: &str| {
        active
            .iter()
            .find(|c| c.purpose == purpose)
            .unwrap()
            .der
            .clone()
    };
    let files = Files(tempfile::tempdir().unwrap());
    std::fs::write(files.path("data.txt"), b"an invoice to time-stamp").unwrap();
    std::fs::write(files.path("root.pem"), pem(&der_of("root"))).unwrap();
    std::fs::write(files.path("issuing.pem"), pem(&der_of("issuing"))).unwrap();
    std::fs::write(
        files.path("chain.pem"),
        pem(&der_of("issuing")) + &pem(&der_of("tsa")),
    )
    .unwrap();

    // The TSU certificate declares its key's usage period.
    std::fs::write(files.path("tsu.pem"), pem(&der_of("tsa"))).unwrap();
    let (ok, text) = openssl(&["x509", "-in", &files.path("tsu.pem"), "-noout", "-text"]);
    assert!(ok && text.contains("Private Key Usage Period"), "{text}");

    // Granted, with the TSU certificate (certReq) and a nonce; verified by
    // OpenSSL against our root, the policy and accuracy as declared.
    let (query_file, reply_file) = ask(&service, &files, "first", &["-sha256", "-cert"]).await;
    let text = reply_text(&reply_file);
    assert!(text.contains("Status: Granted."), "{text}");
    assert!(
        text.contains("Policy OID: 1.3.6.1.4.1.32473.10.4.1"),
        "{text}"
    );
    assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
    assert!(text.contains("Nonce: 0x"), "{text}");
    // certReq: the token carries the TSU's path, and the root alone verifies it.
    let (ok, text) = verify(&files, &query_file, &reply_file, None);
    assert!(ok && text.contains("Verification: OK"), "{text}");
    // Against the data itself too.
    let (ok, text) = openssl(&[
        "ts",
        "-verify",
        "-data",
        &files.path("data.txt"),
        "-in",
        &reply_file,
        "-CAfile",
        &files.path("root.pem"),
    ]);
    assert!(ok && text.contains("Verification: OK"), "{text}");

    // Without certReq the token carries no certificate: it verifies when the
    // relying party brings the TSU certificate.
    let (query_file, reply_file) = ask(&service, &files, "nocert", &["-sha512"]).await;
    let (ok, _) = verify(&files, &query_file, &reply_file, None);
    assert!(!ok, "no TSU certificate in the token, none given");
    let (ok, text) = verify(
        &files,
        &query_file,
        &reply_file,
        Some(&files.path("chain.pem")),
    );
    assert!(ok && text.contains("Verification: OK"), "{text}");

    // Unique serial numbers, each recorded.
    let serial = |reply_file: &str| {
        reply_text(reply_file)
            .lines()
            .find(|l| l.starts_with("Serial number:"))
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        serial(&files.path("first.tsr")),
        serial(&files.path("nocert.tsr"))
    );
    assert_eq!(db.count("timestamps").await, 2);

    // Refusals: a policy we do not apply, a digest we do not accept, garbage,
    // a body of another media type.
    let (_, reply_file) = ask(
        &service,
        &files,
        "policy",
        &["-sha256", "-tspolicy", "1.3.6.1.4.1.32473.99"],
    )
    .await;
    let (status, fail) = tools::tsa_status(&std::fs::read(&reply_file).unwrap());
    assert_eq!(status, 2);
    assert!(tools::fail_bit(&fail.unwrap(), 15), "unacceptedPolicy");
    let (_, reply_file) = ask(&service, &files, "sha1", &["-sha1"]).await;
    let (status, fail) = tools::tsa_status(&std::fs::read(&reply_file).unwrap());
    assert_eq!(status, 2);
    assert!(tools::fail_bit(&fail.unwrap(), 0), "badAlg");
    let text = reply_text(&reply_file);
    assert!(text.contains("Status: Rejected."), "{text}");
    assert!(text.contains("is not accepted"), "{text}");
    let (status, _, reply) = post(
        &service,
        b"\x30\x03garbage".to_vec(),
        "application/timestamp-query",
    )
    .await;
    assert_eq!(status, 200);
    let (status, fail) = tools::tsa_status(&reply);
    assert_eq!(status, 2);
    assert!(tools::fail_bit(&fail.unwrap(), 5), "badDataFormat");
    let (status, content_type, _) = post(&service, b"hello".to_vec(), "text/plain").await;
    assert_eq!(status, 415);
    assert_eq!(content_type, "application/problem+json");

    // The clock reports itself unsynchronised: refused (timeNotAvailable) until
    // it is synchronised again.
    std::fs::write(&sync_file, "no\n").unwrap();
    assert!(!service.state.tsa.check_clock().await);
    let (_, reply_file) = ask(&service, &files, "unsynchronised", &["-sha256"]).await;
    let (status, fail) = tools::tsa_status(&std::fs::read(&reply_file).unwrap());
    assert_eq!(status, 2);
    assert!(tools::fail_bit(&fail.unwrap(), 14), "timeNotAvailable");
    std::fs::write(&sync_file, "yes\n").unwrap();
    assert!(service.state.tsa.check_clock().await);

    // Past the key's usage period: refused; after `renew-tsu` the serving TSA
    // switches to the new unit by itself (polled, with a deadline).
    let old_unit = service.state.tsa.unit().serial().to_owned();
    let usage_ends = service.state.tsa.unit().usage_ends();
    service.clock.set(usage_ends + Duration::from_secs(3600));
    let (_, reply_file) = ask(&service, &files, "expired", &["-sha256"]).await;
    let (status, fail) = tools::tsa_status(&std::fs::read(&reply_file).unwrap());
    assert_eq!(status, 2);
    assert!(tools::fail_bit(&fail.unwrap(), 25), "systemFailure");
    let hsm = sceau::hsm::Hsm::connect(&settings.hsm, &sceau::app::SERVING_ROLES)
        .await
        .unwrap();
    let clock: sceau::clock::SharedClock = service.clock.clone();
    let renewed = sceau::ca::renew_time_stamping_unit(&settings, &store, &hsm, &clock)
        .await
        .unwrap();
    assert_ne!(renewed.serial, old_unit);
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.state.tsa.unit().serial() != renewed.serial {
        assert!(Instant::now() < deadline, "the TSA did not switch units");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, reply_file) = ask(&service, &files, "renewed", &["-sha256", "-cert"]).await;
    let reply = std::fs::read(&reply_file).unwrap();
    assert_eq!(tools::tsa_status(&reply).0, 0);
    // The token names the new unit (its certificate is valid from the moved
    // clock's date, so OpenSSL, on the real clock, is not asked).
    let text = reply_text(&reply_file);
    assert!(text.contains("Status: Granted."), "{text}");
    let token = cms_signer_serial(&reply);
    assert_eq!(token, renewed.serial);
    assert_eq!(
        service.clock.now(),
        usage_ends + Duration::from_secs(3600),
        "the manual clock stayed where the test put it"
    );
    drop(hsm);
    service.stop().await;

    let verify = support::app::audit_verify(db, dir.path());
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// The serial (hex) of the certificate named by a token's SignerInfo.
fn cms_signer_serial(reply: &[u8]) -> String {
    let any = der::Any::from_der(reply).unwrap();
    let mut reader = der::SliceReader::new(any.value()).unwrap();
    let _status: der::Any = der::Decode::decode(&mut reader).unwrap();
    let token: cms::content_info::ContentInfo = der::Decode::decode(&mut reader).unwrap();
    let signed = cms::signed_data::SignedData::from_der(&token.content.to_der().unwrap()).unwrap();
    let signer = signed.signer_infos.0.iter().next().unwrap();
    match &signer.sid {
        cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(id) => {
            hex::encode(id.serial_number.as_bytes())
        }
        other => panic!("unexpected signer identifier {other:?}"),
    }
}

#[test]
fn openssl_verifies_time_stamps_and_refusals_say_why() {
    let Some(softhsm) = support::hsm::isolated("openssl_verifies_time_stamps_and_refusals_say_why")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let db = support::db::sqlite();
        scenario(&softhsm, &db).await;
    });
}

#[test]
fn openssl_verifies_time_stamps_and_refusals_say_why_on_postgres() {
    let Some(softhsm) =
        support::hsm::isolated("openssl_verifies_time_stamps_and_refusals_say_why_on_postgres")
    else {
        return;
    };
    ca::runtime().block_on(async {
        let Some(db) = support::db::postgres().await else {
            return;
        };
        scenario(&softhsm, &db).await;
    });
}
