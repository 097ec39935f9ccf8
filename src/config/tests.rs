//! The configuration's unit tests: files, PIN sources and the names of bad values.

use super::*;

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("sceau.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const MINIMAL: &str = r#"
[hsm.tokens.root]
token_label = "r"
pin = { value = "1234" }
[hsm.tokens.issuing]
token_label = "i"
pin = { env = "NOPE_NOT_SET" }
[hsm.tokens.services]
slot = 3
pin = { file = "/nonexistent/pin" }
[hsm.tokens.seal]
token_label = "s"
pin = { value = "9999" }
"#;

#[test]
fn loads_a_minimal_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(Some(&write(dir.path(), MINIMAL))).unwrap();
    assert_eq!(settings.hsm.tokens.services.slot, Some(3));
    assert_eq!(
        settings.database.backend().unwrap(),
        DatabaseBackend::Sqlite
    );
}

#[test]
fn reads_the_ocsp_section() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{MINIMAL}\n[ocsp]\nvalidity_secs = 600\nover_limit = \"cached\"\nnonce_signatures_per_second = 5\n"
    );
    let settings = Settings::load(Some(&write(dir.path(), &text))).unwrap();
    assert_eq!(settings.ocsp.validity_secs, 600);
    assert_eq!(settings.ocsp.over_limit, OcspOverLimit::Cached);
    assert_eq!(settings.ocsp.nonce_signatures_per_second, 5);
    assert_eq!(
        settings.ocsp.nonce_burst,
        OcspSettings::default().nonce_burst
    );
    let unknown = format!("{MINIMAL}\n[ocsp]\nover_limit = \"drop\"\n");
    assert!(Settings::load(Some(&write(dir.path(), &unknown))).is_err());
}

#[test]
fn pins_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(Some(&write(dir.path(), MINIMAL))).unwrap();
    let printed = format!("{settings:?}");
    assert!(!printed.contains("1234"), "{printed}");
    assert!(!printed.contains("9999"), "{printed}");
}

#[test]
fn pin_sources_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(Some(&write(dir.path(), MINIMAL))).unwrap();
    let env = settings.hsm.tokens.issuing.pin.resolve(TokenRole::Issuing);
    assert!(env.unwrap_err().to_string().contains("NOPE_NOT_SET"));
    let file = settings
        .hsm
        .tokens
        .services
        .pin
        .resolve(TokenRole::Services);
    assert!(file.unwrap_err().to_string().contains("/nonexistent/pin"));
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("{MINIMAL}\n[server]\nlisten = \"nowhere\"\n");
    let err = Settings::load(Some(&write(dir.path(), &bad))).unwrap_err();
    assert!(err.to_string().contains("listen"), "{err}");
    let unknown = format!("colour = \"blue\"\n{MINIMAL}");
    let err = Settings::load(Some(&write(dir.path(), &unknown))).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn a_missing_token_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Settings::load(Some(&write(dir.path(), "data_dir = \"x\"\n"))).unwrap_err();
    assert!(err.to_string().contains("role 'root'"), "{err}");
}
