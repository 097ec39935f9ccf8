//! The contract run: schemathesis generates requests from
//! `openapi/openapi.yaml` against a live service on mutual TLS, with a seal
//! client's certificate, and checks every answer against the contract: no
//! server error, only documented status codes, content types and headers,
//! and bodies that match their schemas. Its hooks (`tests/contract/hooks.py`)
//! give half the requests the real credential and a fresh SAD, so each
//! operation is also seen succeeding: the test fails unless every operation in
//! the run got a 2xx, and every operation that takes input at least 100 cases.
//!
//! Covered: the seal client's surface (CSC v2 and v1, the Seal API, activation)
//! and the public one (probes, certificates, CRLs, OCSP, TSA, the contract and
//! its page). The back office's operations (RA, RCCS, CA administration) are
//! not in this run yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use support::pades::Sealing;

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
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let work = &sealing.work;
        let calls = work.join("calls.jsonl");
        let context = work.join("contract.json");
        let base = sealing.service.tls_url("");
        let base = base.trim_end_matches('/');
        std::fs::write(
            &context,
            serde_json::to_vec(&json!({
                "url": base,
                "credential": sealing.credential,
                "client_cert": sealing.alice.certificate,
                "client_key": sealing.alice.key,
                "server_ca": sealing.pki.server_ca,
                "sample_pdf": manifest.join("deploy/demo/invoice.pdf"),
                "calls": calls,
                "seed": 20261122,
                "strip_authorization": true,
            }))
            .unwrap(),
        )
        .unwrap();
        let spec = manifest.join("openapi/openapi.yaml");
        let output = std::process::Command::new(schemathesis())
            .args([
                "run",
                spec.to_str().unwrap(),
                "--url",
                base,
                "--request-cert",
                sealing.alice.certificate.to_str().unwrap(),
                "--request-cert-key",
                sealing.alice.key.to_str().unwrap(),
                "--tls-verify",
                sealing.pki.server_ca.to_str().unwrap(),
                "--include-path-regex",
                &covered_regex(),
                "--max-examples",
                "100",
                "--phases",
                "examples,coverage,fuzzing",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance",
                "--seed",
                "20261122",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("PYTHONPATH", manifest.join("tests/contract"))
            .env("SCEAU_CONTRACT_CONTEXT", &context)
            .output()
            .expect("schemathesis (make deps installs it in .venv)");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "schemathesis found failures:\n{said}"
        );
        assert!(said.contains("passed"), "{said}");

        // Every operation of the run was called, succeeded at least once, and
        // (when it takes input) was tried with at least 100 cases.
        let mut statuses: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
        for line in std::fs::read_to_string(&calls).unwrap().lines() {
            let call: Value = serde_json::from_str(line).unwrap();
            statuses
                .entry((
                    call["method"].as_str().unwrap().to_owned(),
                    call["path"].as_str().unwrap().to_owned(),
                ))
                .or_default()
                .push(u16::try_from(call["status"].as_u64().unwrap()).unwrap());
        }
        let operations: BTreeSet<(String, String)> = sceau::api::documented_routes()
            .into_iter()
            .filter(|(_, path)| covered(path))
            .collect();
        assert!(operations.len() >= 25, "{operations:?}");
        let mut gaps = Vec::new();
        for operation in &operations {
            let seen = statuses.get(operation).cloned().unwrap_or_default();
            if !seen.iter().any(|s| (200..300).contains(s)) {
                gaps.push(format!("{operation:?}: no 2xx in {seen:?}"));
            }
            let takes_input = operation.0 == "POST" || operation.1.contains('{');
            if takes_input && seen.len() < 100 {
                gaps.push(format!("{operation:?}: only {} cases", seen.len()));
            }
        }
        assert!(gaps.is_empty(), "{gaps:#?}");
    });
}
