//! Bad configuration ends `sceau config check` and `sceau serve` with one line
//! naming the problem: no panic, and never a PIN in the output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::app::{Instance, Options, stderr, stdout};

/// Runs `args` and checks the failure is one line naming `expected`, without PINs.
fn assert_fails_naming(instance: &Instance, args: &[&str], expected: &str) {
    let output = instance.run(args);
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "{args:?} succeeded: {}",
        stdout(&output)
    );
    assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?} printed more than one line: {err}"
    );
    assert!(err.starts_with("sceau: error: "), "{err}");
    assert!(
        err.contains(expected),
        "{args:?}: expected {expected:?} in {err}"
    );
    for label in [
        "sceau-root",
        "sceau-issuing",
        "sceau-services",
        "sceau-seal",
    ] {
        let pin = instance.pin(label);
        assert!(
            !err.contains(&pin),
            "{args:?} printed the PIN of {label}: {err}"
        );
        assert!(
            !stdout(&output).contains(&pin),
            "{args:?} printed the PIN of {label}"
        );
    }
}

fn instance_with(extra: &str) -> Instance {
    let db = support::db::sqlite();
    let instance = Instance::new(
        &db,
        Options {
            extra: extra.to_owned(),
            ..Options::default()
        },
    );
    // The instance keeps its own directory; the database file lives in `db`'s.
    std::mem::forget(db);
    instance
}

/// Rewrites one token's settings in the generated file.
fn with_token(instance: &Instance, role: &str, replacement: &str) {
    let text = std::fs::read_to_string(&instance.config).unwrap();
    let header = format!("[hsm.tokens.{role}]\n");
    let start = text.find(&header).unwrap();
    let end = text[start + header.len()..]
        .find("[hsm.")
        .map_or(text.len(), |i| start + header.len() + i);
    let updated = format!("{}{header}{replacement}\n{}", &text[..start], &text[end..]);
    std::fs::write(&instance.config, updated).unwrap();
}

#[test]
fn a_good_configuration_checks() {
    let instance = instance_with("");
    let output = instance.run(&["config", "check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("configuration OK"));
}

#[test]
fn a_missing_module_is_named() {
    let instance = instance_with("");
    let pin = instance.dir.path().join("softhsm/pins/sceau-issuing.pin");
    with_token(
        &instance,
        "issuing",
        &format!(
            "module = \"/opt/nowhere/libvendor.so\"\ntoken_label = \"sceau-issuing\"\npin = {{ file = \"{}\" }}",
            pin.display()
        ),
    );
    for args in [&["config", "check"][..], &["serve"][..]] {
        assert_fails_naming(&instance, args, "/opt/nowhere/libvendor.so");
    }
}

#[test]
fn a_wrong_pin_is_named_and_not_printed() {
    let instance = instance_with("");
    let wrong = format!("{}9", instance.pin("sceau-seal"));
    with_token(
        &instance,
        "seal",
        &format!("token_label = \"sceau-seal\"\npin = {{ value = \"{wrong}\" }}"),
    );
    let output = instance.run(&["config", "check"]);
    assert!(!stderr(&output).contains(&wrong));
    assert_fails_naming(&instance, &["config", "check"], "role 'seal': wrong PIN");
}

#[test]
fn a_pin_file_that_group_or_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o640, 0o604, 0o660] {
        let instance = instance_with("");
        let pin = instance.dir.path().join("softhsm/pins/sceau-services.pin");
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(mode)).unwrap();
        with_token(
            &instance,
            "services",
            &format!(
                "token_label = \"sceau-services\"\npin = {{ file = \"{}\" }}",
                pin.display()
            ),
        );
        let expected = format!(
            "PIN for token role 'services': {} is open to group or others (mode {mode:o}); make it 0600",
            pin.display()
        );
        for args in [&["config", "check"][..], &["serve"][..]] {
            assert_fails_naming(&instance, args, &expected);
        }
        // 0600 and 0400 are accepted.
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(mode)).unwrap();
            let output = instance.run(&["config", "check"]);
            assert!(
                output.status.success(),
                "mode {mode:o}: {}",
                stderr(&output)
            );
        }
    }
}

#[test]
fn an_unknown_token_is_named() {
    let instance = instance_with("");
    let pin = instance.dir.path().join("softhsm/pins/sceau-services.pin");
    with_token(
        &instance,
        "services",
        &format!(
            "token_label = \"no-such-token\"\npin = {{ file = \"{}\" }}",
            pin.display()
        ),
    );
    for args in [&["config", "check"][..], &["serve"][..]] {
        assert_fails_naming(&instance, args, "token 'no-such-token' not found");
    }
}

#[test]
fn an_unreadable_policy_file_is_named() {
    let instance = instance_with("");
    let text = std::fs::read_to_string(&instance.config).unwrap();
    let text = text.replace(
        "ceremony_file = \"",
        "ceremony_file = \"/nonexistent/policies/ceremony.toml\"\n# was \"",
    );
    std::fs::write(&instance.config, text).unwrap();
    for args in [
        &["config", "check"][..],
        &["serve"][..],
        &["ca", "init"][..],
    ] {
        assert_fails_naming(&instance, args, "/nonexistent/policies/ceremony.toml");
    }
}

#[test]
fn a_missing_pin_source_and_bad_values_are_named() {
    let instance = instance_with("");
    with_token(
        &instance,
        "root",
        "token_label = \"sceau-root\"\npin = { env = \"SCEAU_TEST_NO_SUCH_PIN\" }",
    );
    assert_fails_naming(&instance, &["config", "check"], "SCEAU_TEST_NO_SUCH_PIN");

    let instance = instance_with("[log]\nformat = \"xml\"\n");
    assert_fails_naming(&instance, &["config", "check"], "xml");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sceau"))
        .args(["--config", "/nonexistent/sceau.toml", "config", "check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("/nonexistent/sceau.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unreadable_tls_files_and_a_bad_sender_are_named() {
    let missing = instance_with(
        "[server.tls]\nlisten = \"127.0.0.1:0\"\ncertificate_file = \"/nonexistent/server.pem\"\n\
         key_file = \"/nonexistent/server.key\"\nclient_ca_files = []\nclient_crl_files = []\n",
    );
    assert_fails_naming(&missing, &["config", "check"], "/nonexistent/server.pem");
    let sender = instance_with("[notify]\nfrom = \"not an address\"\n");
    assert_fails_naming(&sender, &["config", "check"], "notify.from");
}

/// A hierarchy made before the client-authentication CA existed still checks
/// and serves; `config check` says what is missing instead of failing.
#[test]
fn a_hierarchy_without_the_client_auth_ca_is_reported_not_fatal() {
    let instance = instance_with("");
    let dev = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/ceremony.dev.toml"),
    )
    .unwrap();
    let start = dev.find("[client_auth]").unwrap();
    let end = dev.find("[ocsp]").unwrap();
    let older = instance.dir.path().join("ceremony.older.toml");
    std::fs::write(&older, format!("{}{}", &dev[..start], &dev[end..])).unwrap();
    let text = std::fs::read_to_string(&instance.config).unwrap();
    let text = text.replace(
        "ceremony_file = \"",
        &format!("ceremony_file = \"{}\"\n# was \"", older.display()),
    );
    std::fs::write(&instance.config, text).unwrap();

    let init = instance.run(&["ca", "init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let check = instance.run(&["config", "check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let warnings = stderr(&check);
    assert!(
        warnings.contains("no client-authentication CA: the ceremony file has no [client_auth]"),
        "{warnings}"
    );
    assert!(
        warnings.contains("the recorded CA hierarchy has none"),
        "{warnings}"
    );
    assert!(!warnings.contains("panicked"), "{warnings}");
}

/// The development identity provider signs anyone in: `config check`
/// refuses it outside development mode, naming the setting.
#[test]
fn the_development_provider_is_refused_outside_development_mode() {
    let instance = instance_with("[portal]\ndev_provider = true\n");
    assert_fails_naming(
        &instance,
        &["config", "check"],
        "setting portal.dev_provider: the development identity provider signs anyone in: only in development mode (ca.dev_auto_init)",
    );
}
