//! PAdES seals over mutual TLS, on a PDF the test makes with reportlab: pyHanko
//! (our root the only anchor, no fetching) finds each seal intact, valid,
//! trusted and covering its whole revision, pdfsig finds it valid, qpdf finds
//! the file sound; B-T carries a valid signature time-stamp; a sealed file gets
//! a second seal and the first stays valid; non-PDFs, truncated and encrypted
//! files are refused with 422 naming the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use der::{Decode, EncodePem};
use sceau::auth::mtls;
use sceau::store::auth::ActivationBinding;
use serde_json::Value;
use support::service::{self, Service};
use support::test_ca::{Issued, MtlsPki};
use support::tools;
use uuid::Uuid;
use x509_cert::Certificate;

fn python() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".to_owned()
    }
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pdf")
        .join(name)
        .display()
        .to_string()
}

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

async fn seal(
    client: &reqwest::Client,
    service: &Service,
    query: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let response = client
        .post(service.tls_url(&format!("/api/v1/seal/pades?{query}")))
        .header("content-type", "application/pdf")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["content-type"], "application/pdf");
        assert!(response.headers().contains_key("sceau-journal-index"));
    }
    (status, response.bytes().await.unwrap().to_vec())
}

/// pyHanko's verdict on each signature of `pdf`.
fn validate(dir: &Path, pdf: &[u8]) -> Vec<Value> {
    validate_as(dir, pdf, None)
}

/// With `mode` (`--lt`, `--lta`), also pyHanko's LTV verdict from the
/// document's own DSS, fetching disabled.
fn validate_as(dir: &Path, pdf: &[u8], mode: Option<&str>) -> Vec<Value> {
    let file = dir.join("sealed.pdf");
    std::fs::write(&file, pdf).unwrap();
    let root = dir.join("root.pem");
    let issuing = dir.join("issuing.pem");
    let mut args = vec![
        script("validate_pades.py"),
        file.to_str().unwrap().to_owned(),
        root.to_str().unwrap().to_owned(),
    ];
    if let Some(mode) = mode {
        args.push(mode.to_owned());
    }
    args.push(issuing.to_str().unwrap().to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run(&python(), &args);
    assert!(ok, "pyHanko: {out}");
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str::<Vec<Value>>(last).unwrap_or_else(|_| panic!("pyHanko said: {out}"))
}

fn assert_sound(verdict: &Value) {
    for key in ["intact", "valid", "trusted"] {
        assert_eq!(verdict[key], true, "{key}: {verdict}");
    }
    assert_eq!(verdict["sub_filter"], "/ETSI.CAdES.detached", "{verdict}");
}

#[test]
fn pades_seals_pass_pyhanko_pdfsig_and_qpdf_and_bad_pdfs_get_422() {
    let Some(softhsm) =
        support::hsm::isolated("pades_seals_pass_pyhanko_pdfsig_and_qpdf_and_bad_pdfs_get_422")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let pki = MtlsPki::new(dir.path(), 60);
        let alice = pki.clients.issue("alice", false, None);
        let settings = service::settings(&softhsm, &db, dir.path(), Some(pki.tls.clone()));
        let service = Service::start(settings, service::clock_now()).await;
        let a = service.entity("Alpha SA", "NTRFR-123456782").await;
        let credential = service.active_credential(a, "seal-ca-managed").await;
        register(&service, credential, a, &alice).await;
        let active = service.state.store.active_ca_certificates().await.unwrap();
        for purpose in ["root", "issuing"] {
            let der = &active.iter().find(|c| c.purpose == purpose).unwrap().der;
            let pem = Certificate::from_der(der)
                .unwrap()
                .to_pem(der::pem::LineEnding::LF)
                .unwrap();
            std::fs::write(work.join(format!("{purpose}.pem")), pem).unwrap();
        }
        let invoice = work.join("invoice.pdf");
        let (ok, out) = run(
            &python(),
            &[&script("make_invoice.py"), invoice.to_str().unwrap()],
        );
        assert!(ok, "reportlab: {out}");
        let original = std::fs::read(&invoice).unwrap();
        let client = pki.client(Some(&alice));

        // B-B: the original bytes kept, one seal covering its whole revision.
        let query =
            format!("credential={credential}&level=B-B&reason=Facture%20conforme&location=Paris");
        let (status, sealed) = seal(&client, &service, &query, original.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&sealed));
        assert!(sealed.starts_with(&original), "an incremental update");
        let verdicts = validate(&work, &sealed);
        assert_eq!(verdicts.len(), 1);
        assert_sound(&verdicts[0]);
        assert_eq!(verdicts[0]["coverage"], "ENTIRE_FILE", "{}", verdicts[0]);
        assert_eq!(verdicts[0]["has_timestamp"], false);
        // pdfsig (without certificate checks: it has no trust store of ours).
        let file = work.join("bb.pdf");
        std::fs::write(&file, &sealed).unwrap();
        let (_, out) = run("pdfsig", &["-nocert", file.to_str().unwrap()]);
        assert!(out.contains("Signature is Valid"), "{out}");
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");

        // B-T on top of it: a second seal; the first stays valid.
        let query = format!("credential={credential}&level=B-T&field=Second");
        let (status, twice) = seal(&client, &service, &query, sealed.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&twice));
        let verdicts = validate(&work, &twice);
        assert_eq!(verdicts.len(), 2, "{verdicts:?}");
        for verdict in &verdicts {
            assert_sound(verdict);
        }
        let second = verdicts.iter().find(|v| v["field"] == "Second").unwrap();
        assert_eq!(second["coverage"], "ENTIRE_FILE");
        assert_eq!(second["has_timestamp"], true);
        assert_eq!(second["timestamp_valid"], true, "{second}");
        let first = verdicts.iter().find(|v| v["field"] != "Second").unwrap();
        assert_eq!(first["coverage"], "ENTIRE_REVISION", "{first}");
        let file = work.join("bt.pdf");
        std::fs::write(&file, &twice).unwrap();
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");

        // B-LT: the DSS lets pyHanko validate chain and revocation with
        // fetching disabled.
        let query = format!("credential={credential}&level=B-LT");
        let (status, lt) = seal(&client, &service, &query, original.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&lt));
        assert!(lt.windows(4).any(|w| w == b"/DSS"));
        let verdicts = validate_as(&work, &lt, Some("--lt"));
        assert_eq!(verdicts.len(), 1, "{verdicts:?}");
        assert_sound(&verdicts[0]);
        assert_eq!(verdicts[0]["has_timestamp"], true);
        assert_eq!(verdicts[0]["dss_bottom_line"], true, "{}", verdicts[0]);
        let file = work.join("blt.pdf");
        std::fs::write(&file, &lt).unwrap();
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");

        // B-LTA: a document time-stamp over everything, the DSS included.
        let query = format!("credential={credential}&level=B-LTA");
        let (status, lta) = seal(&client, &service, &query, original.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&lta));
        let verdicts = validate_as(&work, &lta, Some("--lta"));
        assert_eq!(verdicts.len(), 2, "{verdicts:?}");
        let stamp = verdicts
            .iter()
            .find(|v| v["document_time_stamp"] == true)
            .expect("a document time-stamp");
        assert_eq!(stamp["sub_filter"], "/ETSI.RFC3161");
        for key in ["intact", "valid", "trusted"] {
            assert_eq!(stamp[key], true, "{key}: {stamp}");
        }
        assert_eq!(stamp["coverage"], "ENTIRE_FILE");
        let seal_verdict = verdicts
            .iter()
            .find(|v| v["document_time_stamp"] != true)
            .unwrap();
        assert_sound(seal_verdict);
        assert_eq!(seal_verdict["dss_bottom_line"], true, "{seal_verdict}");
        assert_eq!(seal_verdict["ades_lta"], "AdESPassed.OK", "{seal_verdict}");
        let file = work.join("blta.pdf");
        std::fs::write(&file, &lta).unwrap();
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");
        let (_, out) = run("pdfsig", &["-nocert", file.to_str().unwrap()]);
        assert!(out.contains("Signature is Valid"), "{out}");

        // Refused with 422 naming the reason: not a PDF, truncated, encrypted.
        let encrypted = work.join("encrypted.pdf");
        let (ok, out) = run(
            "qpdf",
            &[
                "--encrypt",
                "user",
                "owner",
                "256",
                "--",
                invoice.to_str().unwrap(),
                encrypted.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        let query = format!("credential={credential}&level=B-B");
        for (name, body, words) in [
            ("not a PDF", b"hello, world".to_vec(), "not a PDF"),
            (
                "truncated",
                original[..original.len() / 2].to_vec(),
                "cannot be read",
            ),
            ("encrypted", std::fs::read(&encrypted).unwrap(), "encrypted"),
        ] {
            let (status, body) = seal(&client, &service, &query, body).await;
            assert_eq!(status, 422, "{name}: {}", String::from_utf8_lossy(&body));
            let problem: Value = serde_json::from_slice(&body).unwrap();
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(words), "{name}: {detail}");
            assert_eq!(problem["field"], "document");
        }
        let _ = tools::tool("openssl");
        service.stop().await;
    });
}
