//! The deployment files stay true to the code: the Kubernetes configuration loads
//! with the real `Settings`, the probes hit routes the router serves, and the
//! set-up files are where the README says.
#![expect(
    clippy::expect_used,
    reason = "test helpers: an unreadable file is a test failure"
)]

use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml_documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo(path)).expect("readable");
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).expect("valid YAML"))
        .collect()
}

#[test]
fn the_kubernetes_configuration_loads() {
    let configmap = &yaml_documents("deploy/k8s/configmap.yaml")[0];
    let toml = configmap["data"]["sceau.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sceau.toml");
    std::fs::write(&file, toml).unwrap();
    let settings = sceau::config::Settings::load(Some(&file)).unwrap();
    assert!(
        !settings.ca.dev_auto_init,
        "production must not run the ceremony by itself"
    );
    assert_eq!(settings.log.format, sceau::config::LogFormat::Json);
}

#[test]
fn the_probes_hit_served_routes() {
    let deployment = &yaml_documents("deploy/k8s/deployment.yaml")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let served = sceau::api::documented_routes();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert!(
            served.contains(&("GET".to_owned(), path.to_owned())),
            "{path}"
        );
    }
}

#[test]
fn the_compose_file_parses() {
    let compose = &yaml_documents("deploy/compose.yaml")[0];
    assert!(compose["services"]["sceau"].is_mapping());
    assert!(compose["services"]["postgres"].is_mapping());
}

#[cfg(unix)]
#[test]
fn ci_run_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo(".ci/run"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, ".ci/run is not executable");
}
