//! The contract run: schemathesis generates requests from
//! `openapi/openapi.yaml` against a live service on mutual TLS, with a seal
//! client's certificate, and checks every answer against the contract: no
//! server error, only documented status codes, content types and headers,
//! and bodies that match their schemas. Its hooks (`tests/contract/hooks.py`)
//! give half the requests the real credential and a fresh SAD, so each
//! operation is also seen succeeding: the test fails unless every operation in
//! the run got a 2xx and at least 100 cases.
//!
//! Two runs. The first authenticates by the TLS client certificate alone, over
//! the seal client's surface (CSC v2 and v1, the Seal API, activation) and the
//! public one (probes, certificates, CRLs, OCSP, TSA, the contract and its
//! page). The second covers every operation of the contract with OAuth bearer
//! tokens from the test OpenID provider: each operation gets the token of the
//! person or server it is meant for (RCCS, legal representative, RA operator,
//! CA administrator, a certificate-bound seal server), and the back office's
//! state (requests in each state, issued certificates, a locked credential,
//! enrolment links from the mail sink) is set up so that each can succeed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::back_office::{self, BackOffice};
use support::idp::{AUDIENCE, Client};
use support::pades::Sealing;
use support::smtp::{self, SmtpSink};
use support::test_ca::MtlsPki;

/// The operations of the run: paths starting with these (exact where `$`).
const COVERED: [&str; 11] = [
    "/csc/",
    "/api/v1/seal/",
    "/api/v1/credentials/{id}/authorize$",
    "/healthz",
    "/readyz",
    "/certs/",
    "/crl/",
    "/ocsp",
    "/tsa$",
    "/openapi.yaml",
    "/docs",
];

fn covered(path: &str) -> bool {
    COVERED.iter().any(|prefix| match prefix.strip_suffix('$') {
        Some(exact) => path == exact,
        None => path.starts_with(prefix),
    })
}

/// The same selection as a Python regular expression for schemathesis.
fn covered_regex() -> String {
    let alternatives: Vec<String> = COVERED
        .iter()
        .map(|p| {
            p.replace('.', "\\.")
                .replace('{', "\\{")
                .replace('}', "\\}")
        })
        .collect();
    format!("^(?:{})", alternatives.join("|"))
}

fn schemathesis() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/schemathesis");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "schemathesis".to_owned()
    }
}

/// The seed of both runs, schemathesis's and the hooks'.
const SEED: u64 = 20261122;

/// Runs schemathesis over the operations matching `include` on `base`, the
/// hooks reading `context` (the run's own fields) with what every run gives
/// them: the URL, the TLS files, the sample PDF, the seed and where to write
/// the calls. Fails the test on any failure; the calls file.
fn schemathesis_run(
    work: &Path,
    base: &str,
    tls: &TlsFiles<'_>,
    include: &str,
    mut context: Value,
) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let calls = work.join("calls.jsonl");
    let context_file = work.join("contract.json");
    for (name, value) in [
        ("url", json!(base)),
        ("client_cert", json!(tls.certificate)),
        ("client_key", json!(tls.key)),
        ("server_ca", json!(tls.server_ca)),
        (
            "sample_pdf",
            json!(manifest.join("deploy/demo/invoice.pdf")),
        ),
        ("calls", json!(calls)),
        ("seed", json!(SEED)),
    ] {
        context[name] = value;
    }
    std::fs::write(&context_file, serde_json::to_vec(&context).unwrap()).unwrap();
    let spec = manifest.join("openapi/openapi.yaml");
    let junit = work.join("schemathesis.xml");
    let output = std::process::Command::new(schemathesis())
        .args([
            "--config-file",
            manifest
                .join("tests/contract/schemathesis.toml")
                .to_str()
                .unwrap(),
            "run",
            spec.to_str().unwrap(),
            "--url",
            base,
            "--request-cert",
            tls.certificate.to_str().unwrap(),
            "--request-cert-key",
            tls.key.to_str().unwrap(),
            "--tls-verify",
            tls.server_ca.to_str().unwrap(),
            "--include-path-regex",
            include,
            "--max-examples",
            "100",
            "--phases",
            "examples,coverage,fuzzing",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--seed",
            &SEED.to_string(),
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            junit.to_str().unwrap(),
        ])
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", manifest.join("tests/contract"))
        .env("SCEAU_CONTRACT_CONTEXT", &context_file)
        .output()
        .expect("schemathesis (make deps installs it in .venv)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // `SCEAU_CONTRACT_OUTPUT=file`: what schemathesis said, even when it passed.
    if let Ok(file) = std::env::var("SCEAU_CONTRACT_OUTPUT") {
        std::fs::write(file, &said).unwrap();
    }
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{said}"
    );
    // The verdict is read from the JUnit report, not from what was printed.
    let report = std::fs::read_to_string(&junit)
        .unwrap_or_else(|e| panic!("schemathesis wrote no report ({e}):\n{said}"));
    let counts = |name: &str| junit_count(&report, name);
    assert!(counts("tests") > 0, "no operation tested:\n{report}");
    assert_eq!(
        (counts("failures"), counts("errors")),
        (0, 0),
        "schemathesis' report:\n{report}"
    );
    calls
}

/// An attribute of the report's `<testsuites>` element, as a number.
fn junit_count(report: &str, attribute: &str) -> u64 {
    let start = report
        .find("<testsuites")
        .unwrap_or_else(|| panic!("no <testsuites> in {report}"));
    let tag = &report[start..start + report[start..].find('>').unwrap()];
    let key = format!(" {attribute}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attribute} in {tag}"))
        + key.len();
    let value = &tag[at..at + tag[at..].find('"').unwrap()];
    value
        .parse()
        .unwrap_or_else(|_| panic!("{attribute}={value:?}"))
}

/// The client certificate every request of a run presents, and the server's CA.
struct TlsFiles<'a> {
    certificate: &'a Path,
    key: &'a Path,
    server_ca: &'a Path,
}

/// Every operation of `operations` was called with at least 100 cases and
/// succeeded at least once, by the calls the hooks wrote down. (Every
/// operation takes input: at least the caller's `x-request-id`.)
fn assert_each_operation_succeeded(calls: &Path, operations: &BTreeSet<(String, String)>) {
    let mut seen: BTreeMap<(String, String), Vec<(u16, String)>> = BTreeMap::new();
    for line in std::fs::read_to_string(calls).unwrap().lines() {
        let call: Value = serde_json::from_str(line).unwrap();
        seen.entry((
            call["method"].as_str().unwrap().to_owned(),
            call["path"].as_str().unwrap().to_owned(),
        ))
        .or_default()
        .push((
            u16::try_from(call["status"].as_u64().unwrap()).unwrap(),
            call["said"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let mut gaps = Vec::new();
    for operation in operations {
        let calls = seen.get(operation).cloned().unwrap_or_default();
        if !calls.iter().any(|(status, _)| (200..300).contains(status)) {
            let refusals: BTreeSet<String> = calls
                .iter()
                .map(|(status, said)| format!("{status} {said}"))
                .collect();
            gaps.push(format!(
                "{operation:?}: no 2xx in {} calls: {:#?}",
                calls.len(),
                refusals.iter().take(8).collect::<Vec<_>>()
            ));
        }
        if calls.len() < 100 {
            gaps.push(format!("{operation:?}: only {} cases", calls.len()));
        }
    }
    // `SCEAU_CONTRACT_REPORT=file`: each operation's case count and statuses.
    if let Ok(report) = std::env::var("SCEAU_CONTRACT_REPORT") {
        let lines: String = operations
            .iter()
            .map(|operation| {
                let calls = seen.get(operation).cloned().unwrap_or_default();
                let ok = calls.iter().filter(|(s, _)| (200..300).contains(s)).count();
                format!(
                    "{} {}\t{} cases\t{ok} 2xx\n",
                    operation.0,
                    operation.1,
                    calls.len()
                )
            })
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(report)
            .unwrap();
        std::io::Write::write_all(&mut file, lines.as_bytes()).unwrap();
    }
    assert!(gaps.is_empty(), "{gaps:#?}");
}

#[test]
fn the_service_keeps_its_openapi_contract_under_generated_requests() {
    let Some(softhsm) =
        support::hsm::isolated("the_service_keeps_its_openapi_contract_under_generated_requests")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        // Generated SADs fail by the thousand: the lock and the strangers'
        // rate limit would otherwise end the run after a few requests.
        let sealing = Sealing::start_with(&softhsm, &db, |settings| {
            settings.auth.max_failed_activations = 1_000_000;
            settings.auth.stranger_refusals_per_minute = 1_000_000;
        })
        .await;
        let base = sealing.service.tls_url("");
        let tls = TlsFiles {
            certificate: &sealing.alice.certificate,
            key: &sealing.alice.key,
            server_ca: &sealing.pki.server_ca,
        };
        let calls = schemathesis_run(
            &sealing.work,
            base.trim_end_matches('/'),
            &tls,
            &covered_regex(),
            json!({ "mode": "mtls", "credential": sealing.credential }),
        );
        let operations: BTreeSet<(String, String)> = sceau::api::documented_routes()
            .into_iter()
            .filter(|(_, path)| covered(path))
            .collect();
        assert!(operations.len() >= 25, "{operations:?}");
        assert_each_operation_succeeded(&calls, &operations);
    });
}

/// A certificate issued through the RA and accepted by the RCCS: its request,
/// serial and credential.
async fn accepted_certificate(w: &BackOffice, validity_days: u32) -> (String, String, String) {
    let mut application = back_office::application(back_office::SIREN_A, None);
    application["validity_days"] = json!(validity_days);
    let (status, view) = w
        .call("POST", "/ra/v1/requests", "rccs-a", Some(application))
        .await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    w.complete(&id, "rccs-a").await;
    for (who, step) in [
        ("rccs-a", "submit"),
        ("op-1", "start_review"),
        ("op-1", "approve"),
        ("op-2", "approve"),
        ("rccs-a", "accept"),
    ] {
        let (status, view) = w.do_move(&id, who, step).await;
        assert_eq!(status, 200, "{step}: {view}");
    }
    let (_, view) = w
        .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
        .await;
    assert_eq!(view["state"], "accepted", "{view}");
    let certificate = &view["certificate"];
    (
        id,
        certificate["serial"].as_str().unwrap().to_owned(),
        certificate["credential_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_operation_keeps_the_contract_with_bearer_tokens() {
    let Some(softhsm) =
        support::hsm::isolated("every_operation_keeps_the_contract_with_bearer_tokens")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let tls_dir = tempfile::tempdir().unwrap();
        let pki = MtlsPki::new(tls_dir.path(), 60);
        let alice = pki.clients.issue("alice", false, None);
        let maildir = tls_dir.path().join("maildir");
        let sink = SmtpSink::start(smtp::free_port(), &maildir);
        let smtp_port = sink.port;
        let seal_server = Client {
            id: "seal-server",
            certificate_bound: true,
            claims: json!({}),
        };
        let w = back_office::start_with_clients(&softhsm, &db, vec![seal_server], |s| {
            s.server.tls = Some(pki.tls.clone());
            s.notify.enabled = true;
            s.notify.smtp_port = smtp_port;
            s.notify.security = sceau::config::SmtpSecurity::None;
            s.notify.poll_interval_ms = 100;
            s.notify.max_backoff_secs = 1;
            s.auth.max_failed_activations = 1_000_000;
            s.auth.stranger_refusals_per_minute = 1_000_000;
        })
        .await;

        // The certificates the run spends: one to seal with (and renew),
        // three for the RCCS or an operator to revoke, three for the legal
        // representative, one more to renew. All but the first have their
        // credential locked, for the unlock calls.
        let mut certificates = Vec::new();
        for validity_days in [60, 365, 365, 365, 365, 365, 365, 60] {
            certificates.push(accepted_certificate(&w, validity_days).await);
        }
        let (main_request, main_serial, credential) = certificates[0].clone();
        // A person whose roles an operator withdraws: organisation B's RCCS.
        let (_, b_issued) = w.issued("rccs-b", back_office::SIREN_B).await;
        let withdrawable = b_issued["persons"]["rccs"]["id"].clone();
        let (_, view) = w
            .call(
                "GET",
                &format!("/ra/v1/requests/{main_request}"),
                "op-1",
                None,
            )
            .await;
        let entity = view["entity"]["id"].as_str().unwrap().to_owned();
        let document = view["documents"][0]["id"].as_str().unwrap().to_owned();

        // The legal representative enrols with one of the links mailed to him.
        let enrolled = 'mailed: {
            for _ in 0..100 {
                for token in smtp::enrolment_links(&maildir, "legal@alpha.example") {
                    let body = Some(json!({ "token": token }));
                    if w.call("POST", "/ra/v1/enrolments", "legal-a", body).await.0 == 200 {
                        break 'mailed true;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            false
        };
        assert!(enrolled, "the legal representative enrolled");

        // The organisation's seal server: its provider, and its two ways in
        // (its TLS certificate, its certificate-bound tokens).
        let (status, registered) = w
            .call(
                "POST",
                &format!("/api/v1/entities/{entity}/identity-providers"),
                "op-1",
                Some(json!({
                    "issuer": w.idp.issuer,
                    "audience": AUDIENCE,
                    "callers": "servers",
                    "allowed": ["seal-server"],
                })),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        for binding in [
            json!({ "type": "client_certificate", "certificate": alice.certificate_pem() }),
            json!({ "type": "oidc", "issuer": w.idp.issuer, "subject": "seal-server" }),
        ] {
            let (status, registered) = w
                .call(
                    "POST",
                    &format!("/api/v1/credentials/{credential}/activation-credentials"),
                    "rccs-a",
                    Some(binding),
                )
                .await;
            assert_eq!(status, 201, "{registered}");
        }
        let mut locked = Vec::new();
        for (_, _, credential) in &certificates[1..] {
            let (_, now_locked) = w
                .service
                .state
                .store
                .record_activation_failure(
                    uuid::Uuid::parse_str(credential).unwrap(),
                    1,
                    time::OffsetDateTime::now_utc(),
                )
                .await
                .unwrap();
            assert!(now_locked);
            locked.push(credential.clone());
        }

        let serials = |range: std::ops::Range<usize>| -> Vec<String> {
            certificates[range].iter().map(|c| c.1.clone()).collect()
        };
        let base = w.service.tls_url("");
        // The run lasts minutes and the provider dates its tokens by the real
        // time: a service clock left where the set-up found it would refuse
        // them as issued in the future.
        let real_time = support::service::follow_real_time(w.service.clock.clone());
        let tls = TlsFiles {
            certificate: &alice.certificate,
            key: &alice.key,
            server_ca: &pki.server_ca,
        };
        let calls = schemathesis_run(
            w.dir.path(),
            base.trim_end_matches('/'),
            &tls,
            "^/",
            json!({
                "mode": "bearer",
                "token_url": format!("http://127.0.0.1:{}/token", w.idp.port),
                "client_secret": support::idp::SECRET,
                "audience": AUDIENCE,
                "issuer": w.idp.issuer,
                "credential": credential,
                "entity": entity,
                "request": main_request,
                "document": document,
                "locked_credentials": locked,
                "revocable": serials(1..4),
                "revocable_by_legal_representative": serials(4..7),
                "renewable": [main_serial, certificates[7].1],
                "withdrawable": [withdrawable],
                "application": back_office::application(back_office::SIREN_A, None),
                "maildir": maildir,
            }),
        );
        let operations: BTreeSet<(String, String)> =
            sceau::api::documented_routes().into_iter().collect();
        assert!(operations.len() >= 51, "{operations:?}");
        real_time.abort();
        assert_each_operation_succeeded(&calls, &operations);
        w.service.stop().await;
        sink.stop();
    });
}
