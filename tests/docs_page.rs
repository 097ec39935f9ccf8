//! `/docs` in a real browser with no network: the system Chromium, driven by
//! playwright-core (tests/docs-page/check.mjs), loads the page from a running
//! service with every request outside 127.0.0.1 blocked and recorded. Redoc
//! renders every operation of openapi/openapi.yaml, nothing is asked of any
//! other host, the console shows no error, and a screenshot is taken.
//! `/openapi.yaml` serves the committed file byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::service::{self, Service};

/// Every operationId of the committed contract.
fn operation_ids(spec: &str) -> BTreeSet<String> {
    let spec: serde_yaml::Value = serde_yaml::from_str(spec).unwrap();
    let mut ids = BTreeSet::new();
    for (_, item) in spec["paths"].as_mapping().unwrap() {
        for (_, operation) in item.as_mapping().unwrap() {
            if let Some(id) = operation.get("operationId").and_then(|v| v.as_str()) {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

#[test]
fn the_docs_page_renders_every_operation_offline() {
    let Some(softhsm) = support::hsm::isolated("the_docs_page_renders_every_operation_offline")
    else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/docs-page/check.mjs");
    assert!(
        root.join("tests/docs-page/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is not installed in tests/docs-page: run `make deps`"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is not installed: run `make deps` (Debian package chromium)"
    );
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let settings = service::settings(&softhsm, &db, dir.path(), None);
        let service = Service::start(settings, service::clock_now()).await;

        let spec_file = std::fs::read_to_string(root.join("openapi/openapi.yaml")).unwrap();
        let served = reqwest::get(service.url("/openapi.yaml")).await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["content-type"], "application/yaml");
        assert_eq!(served.text().await.unwrap(), spec_file);

        let screenshot = dir.path().join("docs.png");
        let report_file = dir.path().join("report.json");
        let url = service.url("/docs");
        let report_path = report_file.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(script)
                .arg(url)
                .arg(&screenshot)
                .arg(&report_path)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "check.mjs: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();

        let rendered: BTreeSet<String> = report["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let documented = operation_ids(&spec_file);
        assert!(documented.len() > 30, "{documented:?}");
        assert_eq!(rendered, documented, "Redoc renders every operation");
        assert_eq!(report["title"], "sceau API");
        assert_eq!(report["outside"], serde_json::json!([]), "{report}");
        let local = format!("http://127.0.0.1:{}/", service.port);
        for url in report["requested"].as_array().unwrap() {
            assert!(url.as_str().unwrap().starts_with(&local), "{url}");
        }
        assert_eq!(report["errors"], serde_json::json!([]), "{report}");

        let png = std::fs::read(dir.path().join("docs.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(
            png.len() > 20_000,
            "a blank screenshot: {} bytes",
            png.len()
        );
        service.stop().await;
    });
}
