//! The RCCS's flow in a real browser: the system Chromium, driven by
//! playwright-core (tests/portal-browser/flow.mjs), signs in at the test
//! provider's login page, orders in seven steps, uploads the evidence from
//! file inputs, accepts the terms, sends the request, lists the
//! requests, switches to English and signs out, once with JavaScript and
//! once without; then an RA operator filters the queue, opens the dossier,
//! starts the review and approves. axe-core runs on every portal page of the first run, in
//! both languages: no violation of impact serious or critical. Nothing is
//! asked of another host, the console shows no error (a CSP violation is
//! one), and each step is screenshotted under target/portal-screens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::back_office::{self, LOA_SUBSTANTIAL, jpeg, pdf, png};

/// The evidence files the RCCS uploads from his browser.
fn evidence_files(dir: &Path) {
    std::fs::write(dir.join("id.jpg"), jpeg()).unwrap();
    std::fs::write(dir.join("kbis.pdf"), pdf()).unwrap();
    std::fs::write(dir.join("mandate.png"), png()).unwrap();
}

/// Runs the flow (`rccs` or `operator`) for `login` on request `id`.
fn run_flow(base: &str, id: &str, flow: &str, login: &str, javascript: bool) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/portal-browser/node_modules/axe-core")
            .is_dir(),
        "axe-core and playwright-core are not installed in tests/portal-browser: run `make deps`"
    );
    let mode = match (flow, javascript) {
        ("rccs", true) => "js-on",
        ("rccs", false) => "js-off",
        _ => flow,
    };
    let shots = root.join("target/portal-screens").join(mode);
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let report = shots.join("report.json");
    evidence_files(&shots);
    let output = Command::new("node")
        .arg(root.join("tests/portal-browser/flow.mjs"))
        .args([base, id, login, LOA_SUBSTANTIAL])
        .env("FLOW", flow)
        .env("FILES_DIR", &shots)
        .arg(&shots)
        .arg(&report)
        .arg(if javascript { "on" } else { "off" })
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

const RCCS_STEPS: [&str; 19] = [
    "sign-in-needed",
    "provider-login",
    "order-1",
    "order-2",
    "order-3",
    "order-4",
    "order-5",
    "order-6",
    "order-7",
    "order-summary",
    "request-draft",
    "documents-added",
    "terms-accepted",
    "request-sent",
    "requests",
    "requests-en",
    "request-en",
    "home-en",
    "signed-out",
];

const OPERATOR_STEPS: [&str; 8] = [
    "queue",
    "queue-submitted",
    "dossier",
    "identity-recorded",
    "in-review",
    "approved",
    "approved-en",
    "sign-in-needed",
];

fn check(report: &Value, expected_steps: &[&str], javascript: bool) {
    assert_eq!(report["errors"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["outside"], serde_json::json!([]), "{report:#}");
    let steps = report["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for expected in expected_steps {
        assert!(names.contains(expected), "{expected} missing: {names:?}");
    }
    let mut languages = std::collections::BTreeSet::new();
    for step in steps {
        let portal = !matches!(
            step["name"].as_str().unwrap(),
            "provider-login" | "provider-sign-out"
        );
        if !portal {
            continue;
        }
        languages.insert(step["lang"].as_str().unwrap().to_owned());
        let serious: Vec<&Value> = step["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(serious.is_empty(), "{}: {serious:#?}", step["name"]);
        if javascript {
            assert!(
                step["passes"].as_u64().unwrap() > 10,
                "axe ran on {}",
                step["name"]
            );
        }
    }
    assert_eq!(
        languages.into_iter().collect::<Vec<_>>(),
        ["en", "fr"],
        "{report:#}"
    );
}

#[test]
fn the_rccs_flow_works_in_chromium_with_and_without_javascript() {
    let Some(softhsm) =
        support::hsm::isolated("the_rccs_flow_works_in_chromium_with_and_without_javascript")
    else {
        return;
    };
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is not installed: run `make deps` (Debian package chromium)"
    );
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = office.service.url("");
        for javascript in [true, false] {
            let report = tokio::task::spawn_blocking({
                let base = base.clone();
                move || run_flow(&base, "-", "rccs", "rccs-a", javascript)
            })
            .await
            .unwrap();
            check(&report, &RCCS_STEPS, javascript);
            let id = report["request"].as_str().unwrap().to_owned();
            let (_, view) = office
                .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
                .await;
            assert_eq!(view["state"], "submitted", "{view}");
            assert_eq!(view["terms"]["version"], "1.0", "{view}");
            let sessions = db
                .text_rows("SELECT person FROM portal_sessions", vec![])
                .await;
            assert!(
                sessions.iter().all(|row| !row[0].contains("\"rccs-a\"")),
                "the RCCS signed out: {sessions:?}"
            );
            if javascript {
                // An RA operator takes it from the queue and approves it.
                let report = tokio::task::spawn_blocking({
                    let base = base.clone();
                    let id = id.clone();
                    move || run_flow(&base, &id, "operator", "op-1", true)
                })
                .await
                .unwrap();
                check(&report, &OPERATOR_STEPS, true);
                let (_, view) = office
                    .call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None)
                    .await;
                assert_eq!(view["state"], "in_review", "{view}");
                assert_eq!(
                    view["identity_verification"]["method"], "face_to_face",
                    "{view}"
                );
                assert_eq!(
                    view["identity_verification"]["birth_date"], "1980-02-29",
                    "{view}"
                );
                assert_eq!(view["approvals"].as_array().unwrap().len(), 1, "{view}");
            }
        }
    });
}
