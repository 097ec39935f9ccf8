//! Certificate policy files: the shipped ones load and say what the seed says;
//! a file with an unknown field, a missing OID, an impossible validity or an
//! inconsistent level is refused, naming the file and the field, by the loader
//! and by `sceau serve` at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sceau::hsm::KeyAlgorithm;
use sceau::pki::policy::{KeyGeneration, Level, PolicyError, PolicySet};
use support::ca;

#[test]
fn the_shipped_policies_load_with_their_levels_and_key_rules() {
    let set = PolicySet::load_dir(&ca::shipped_policies()).unwrap();
    let expect = [
        (
            "seal-ca-managed",
            Level::QcpL,
            KeyGeneration::Ca,
            "0.4.0.194112.1.1",
        ),
        (
            "seal-chip",
            Level::QcpLQscd,
            KeyGeneration::Chip,
            "0.4.0.194112.1.3",
        ),
        (
            "seal-entity",
            Level::QcpL,
            KeyGeneration::Entity,
            "0.4.0.194112.1.1",
        ),
        (
            "seal-entity-qscd",
            Level::QcpLQscd,
            KeyGeneration::EntityQscd,
            "0.4.0.194112.1.3",
        ),
        (
            "seal-remote-qscd",
            Level::QcpLQscd,
            KeyGeneration::CaQscd,
            "0.4.0.194112.1.3",
        ),
    ];
    assert_eq!(set.len(), expect.len());
    for (id, level, generation, etsi) in expect {
        let policy = set.get(id).unwrap();
        assert_eq!(policy.level, level, "{id}");
        assert_eq!(policy.key.generation, generation, "{id}");
        assert_eq!(policy.etsi_policy_oid.to_string(), etsi, "{id}");
        assert_eq!(policy.qc_statements.sscd, level == Level::QcpLQscd, "{id}");
        assert!(policy.max_validity_days <= 3 * 365 + 1, "{id}");
        // Example OIDs sit under the RFC 5612 documentation arc.
        assert!(
            policy
                .ca_policy_oid
                .to_string()
                .starts_with("1.3.6.1.4.1.32473."),
            "{id}"
        );
        if generation.is_ca_managed() {
            assert_eq!(
                policy.key.algorithms,
                [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa3072]
            );
        } else {
            // Entity keys: RSA of at least 4096 bits (seed 000 §12).
            assert_eq!(policy.key.algorithms, [KeyAlgorithm::Rsa4096]);
        }
    }
    assert!(
        set.get("seal-remote-qscd")
            .unwrap()
            .key
            .generation
            .requires_scal2()
    );
}

/// Each broken variant of a good file, and the field its error must name.
#[test]
fn a_broken_policy_file_is_refused_naming_the_file_and_the_field() {
    let good = ca::shipped_policy("seal-ca-managed");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown field",
            ca::edit(
                &good,
                "max_validity_days",
                "colour = \"blue\"\nmax_validity_days",
            ),
            "unknown field `colour`",
        ),
        (
            "unknown nested field",
            ca::edit(&good, "sscd = false", "sscd = false\nqcsscd = true"),
            "unknown field `qcsscd`",
        ),
        (
            "missing CA policy OID",
            ca::edit(
                &good,
                "ca_policy_oid = \"1.3.6.1.4.1.32473.10.3.3.1.1\"\n",
                "",
            ),
            "missing field `ca_policy_oid`",
        ),
        (
            "missing terms OID",
            ca::edit(&good, "oid = \"1.3.6.1.4.1.32473.10.3.3.2.1\"\n", ""),
            "missing field `oid`",
        ),
        (
            "malformed OID",
            ca::edit(&good, "\"1.3.6.1.4.1.32473.10.3.3.1.1\"", "\"1.3.six.1\""),
            "field `ca_policy_oid`",
        ),
        (
            "a portal sign-in below substantial",
            ca::edit(
                &good,
                "sign_in_level = \"substantial\"",
                "sign_in_level = \"low\"",
            ),
            "field `registration.sign_in_level`: acting on a request needs strong authentication",
        ),
        (
            "validity over three years",
            ca::edit(
                &good,
                "max_validity_days = 1095",
                "max_validity_days = 1200",
            ),
            "field `max_validity_days`: 1200 is impossible",
        ),
        (
            "zero validity",
            ca::edit(&good, "max_validity_days = 1095", "max_validity_days = 0"),
            "field `max_validity_days`: 0 is impossible",
        ),
        (
            "negative validity",
            ca::edit(&good, "max_validity_days = 1095", "max_validity_days = -5"),
            "field `max_validity_days`",
        ),
        (
            "ETSI OID of another level",
            ca::edit(&good, "\"0.4.0.194112.1.1\"", "\"0.4.0.194112.1.3\""),
            "field `etsi_policy_oid`",
        ),
        (
            "QcSSCD on a QCP-l policy",
            ca::edit(&good, "sscd = false", "sscd = true"),
            "field `qc_statements.sscd`",
        ),
        (
            "CA-managed key at the qscd level",
            ca::edit(
                &ca::edit(&good, "level = \"QCP-l\"", "level = \"QCP-l-qscd\""),
                "\"0.4.0.194112.1.1\"",
                "\"0.4.0.194112.1.3\"",
            ),
            "field `key.generation`",
        ),
        (
            "terms text changed",
            ca::edit(&good, "sha256 = \"", "sha256 = \"00"),
            "field `terms.sha256`",
        ),
        (
            "PDS over http",
            ca::edit(
                &good,
                "https://pki.sceau.eu/pds/seal-en.pdf",
                "http://pki.sceau.eu/pds/seal-en.pdf",
            ),
            "field `qc_statements.pds.url`",
        ),
        (
            "unknown key algorithm",
            ca::edit(&good, "\"rsa-3072\"]", "\"rsa-1024\"]"),
            "rsa-1024",
        ),
    ];
    for (name, text, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let certificates = ca::policies_dir(dir.path(), &[("broken", text)]);
        let error = PolicySet::load_dir(&certificates).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("broken.toml"),
            "{name}: the file is not named: {message}"
        );
        assert!(
            message.contains(needle),
            "{name}: {message:?} does not say {needle:?}"
        );
        assert!(
            matches!(
                error,
                PolicyError::Syntax { .. } | PolicyError::Field { .. }
            ),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn two_policies_with_one_oid_or_an_empty_folder_are_refused() {
    let good = ca::shipped_policy("seal-ca-managed");
    let dir = tempfile::tempdir().unwrap();
    let certificates = ca::policies_dir(
        dir.path(),
        &[("first", good.clone()), ("second", good.clone())],
    );
    let message = PolicySet::load_dir(&certificates).unwrap_err().to_string();
    assert!(
        message.contains("second.toml") && message.contains("first.toml"),
        "{message}"
    );
    let empty = tempfile::tempdir().unwrap();
    let message = PolicySet::load_dir(empty.path()).unwrap_err().to_string();
    assert!(message.contains("no certificate policy"), "{message}");
}

/// `sceau serve` stops at start-up on a bad policy file, before touching the
/// database or the HSM, and says which file and field.
#[test]
fn serve_refuses_to_start_on_a_bad_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = ca::policies_dir(
        dir.path(),
        &[(
            "typo",
            ca::edit(
                &ca::shipped_policy("seal-entity"),
                "[publication]",
                "[publication]\ncrl_uri = \"http://pki.sceau.eu/crl\"",
            ),
        )],
    );
    let db = support::db::sqlite();
    let instance = support::app::Instance::new(
        &db,
        support::app::Options {
            dev_auto_init: true,
            policies_dir: Some(certificates),
            ..Default::default()
        },
    );
    let output = instance.run(&["serve"]);
    assert!(!output.status.success());
    let stderr = support::app::stderr(&output);
    assert!(
        stderr.contains("typo.toml") && stderr.contains("unknown field `crl_uri`"),
        "{stderr}"
    );
    let check = instance.run(&["config", "check"]);
    assert!(!check.status.success());
    assert!(
        support::app::stderr(&check).contains("typo.toml"),
        "{}",
        support::app::stderr(&check)
    );
}
