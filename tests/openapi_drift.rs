//! The HTTP contract and the router must agree: every (method, path) the router
//! serves is in `openapi/openapi.yaml`, and everything the spec documents is served.
#![expect(
    clippy::expect_used,
    reason = "test helpers: a malformed spec is a test failure"
)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_yaml::Value;

type Route = (String, String);

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.yaml")
}

fn load_spec() -> Value {
    let text = std::fs::read_to_string(spec_path()).expect("openapi/openapi.yaml is readable");
    serde_yaml::from_str(&text).expect("openapi/openapi.yaml is valid YAML")
}

/// Every (METHOD, path) the spec documents.
fn spec_routes(spec: &Value) -> BTreeSet<Route> {
    let paths = spec
        .get("paths")
        .and_then(Value::as_mapping)
        .expect("the spec has a paths object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("paths are strings");
        let item = item.as_mapping().expect("path items are objects");
        for (key, _) in item {
            if let Some(method) = key.as_str().filter(|k| METHODS.contains(k)) {
                routes.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    routes
}

/// One line per difference, empty when they agree.
fn differences(served: &BTreeSet<Route>, documented: &BTreeSet<Route>) -> Vec<String> {
    let missing_in_spec = served
        .difference(documented)
        .map(|(m, p)| format!("served but not in openapi.yaml: {m} {p}"));
    let missing_in_router = documented
        .difference(served)
        .map(|(m, p)| format!("in openapi.yaml but not served: {m} {p}"));
    missing_in_spec.chain(missing_in_router).collect()
}

fn served() -> BTreeSet<Route> {
    sceau::api::documented_routes().into_iter().collect()
}

#[test]
fn the_router_and_the_spec_agree() {
    let documented = spec_routes(&load_spec());
    let served = served();
    assert!(!served.is_empty(), "the router lists no routes");
    assert!(!documented.is_empty(), "the spec lists no routes");
    let differences = differences(&served, &documented);
    assert!(
        differences.is_empty(),
        "router and {} disagree:\n  {}",
        spec_path().display(),
        differences.join("\n  ")
    );
}

#[test]
fn a_route_missing_from_the_spec_is_reported() {
    let documented = spec_routes(&load_spec());
    let mut served = served();
    served.insert(("POST".to_owned(), "/made-up/{id}".to_owned()));
    assert_eq!(
        differences(&served, &documented),
        ["served but not in openapi.yaml: POST /made-up/{id}"]
    );
}

#[test]
fn a_route_missing_from_the_router_is_reported() {
    let mut spec = load_spec();
    let paths = spec
        .get_mut("paths")
        .and_then(Value::as_mapping_mut)
        .unwrap();
    let mut item = serde_yaml::Mapping::new();
    item.insert("delete".into(), Value::Mapping(serde_yaml::Mapping::new()));
    item.insert("parameters".into(), Value::Sequence(vec![]));
    paths.insert("/healthz/extra".into(), Value::Mapping(item));
    assert_eq!(
        differences(&served(), &spec_routes(&spec)),
        ["in openapi.yaml but not served: DELETE /healthz/extra"]
    );
}

#[test]
fn the_spec_is_openapi_3_1_with_problems_and_security_schemes() {
    let spec = load_spec();
    let version = spec["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    let schemes = spec["components"]["securitySchemes"].as_mapping().unwrap();
    let types: Vec<&str> = schemes
        .values()
        .filter_map(|s| s["type"].as_str())
        .collect();
    assert!(types.contains(&"mutualTLS"), "{types:?}");
    assert!(types.contains(&"http"), "{types:?}");
    let problem_types: Vec<&str> =
        spec["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
    for kind in sceau::error::ErrorKind::ALL {
        let uri = sceau::api::problem::ProblemType::Kind(kind).uri();
        assert!(
            problem_types.contains(&uri.as_ref()),
            "{uri} is not documented"
        );
    }
}
