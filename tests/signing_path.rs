//! Every certificate sceau signs goes through one path that lints it against
//! its kind's profile first. A service certificate renewed late in the issuing
//! CA's life would outlive its issuer: it is refused before any signature,
//! journaled, and the serving certificate stays as it was. Every serial is
//! reserved in one register before its certificate is signed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::db::Arg;
use support::service::{self, Service};

#[test]
fn a_service_certificate_that_would_outlive_its_ca_is_not_signed() {
    let Some(softhsm) =
        support::hsm::isolated("a_service_certificate_that_would_outlive_its_ca_is_not_signed")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let settings = service::settings(&softhsm, &db, dir.path(), None);
        let service = Service::start(settings.clone(), service::clock_now()).await;
        let store = service.state.store.clone();
        let active = || async {
            let mut serials: Vec<(String, String)> = store
                .active_ca_certificates()
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.purpose, c.serial))
                .collect();
            serials.sort();
            serials
        };
        let before = active().await;
        let issuing_ends = store
            .active_ca_certificates()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.purpose == "issuing")
            .unwrap()
            .not_after;
        // Thirty days before the issuing CA ends: a time-stamping unit of
        // several years would outlive it.
        let late = std::time::SystemTime::from(issuing_ends) - Duration::from_secs(30 * 86_400);
        service.clock.set(late);
        let hsm = sceau::hsm::Hsm::connect(&settings.hsm, &sceau::app::SERVING_ROLES)
            .await
            .unwrap();
        let clock: sceau::clock::SharedClock = service.clock.clone();
        let journal_before = service.state.journal.size().await.unwrap();
        let refused = sceau::ca::renew_time_stamping_unit(&settings, &store, &hsm, &clock).await;
        let error = refused.expect_err("a TSU certificate outliving its CA was signed");
        let text = error.to_string();
        assert!(
            text.contains("validity.within_issuer"),
            "the refusal names the rule: {text}"
        );
        // (The OCSP responder's maintenance may renew its own short-lived
        // certificate meanwhile: only the TSU is compared.)
        let tsa = |all: Vec<(String, String)>| all.into_iter().find(|(p, _)| p == "tsa");
        assert_eq!(
            tsa(active().await),
            tsa(before),
            "the serving TSU certificate is unchanged"
        );
        let entries = support::journal::entries_since(
            &service.state.journal,
            journal_before,
            // What the serving instance does meanwhile on its own.
            &["crl.published", "ocsp.responder_renewed"],
        )
        .await;
        let kinds: Vec<&str> = entries.iter().map(|(_, kind, _)| kind.as_str()).collect();
        assert_eq!(kinds, vec!["certificate.lint_refused"], "{entries:?}");
        let details = &entries[0].2;
        assert_eq!(details["kind"], "time_stamping_unit");
        assert_eq!(details["findings"][0]["rule"], "validity.within_issuer");
        drop(hsm);
        service.stop().await;
    });
}

/// Each grant is made by the layer that owns its kind, and only the signing
/// path turns a TBSCertificate into a certificate: read from the sources, so
/// a new caller anywhere else fails here.
#[test]
fn each_grant_is_made_by_its_owner_and_only_the_signing_path_signs() {
    let owners: [(&str, &[&str]); 4] = [
        ("Grant::validated_request(", &["src/ra/registry/issue.rs"]),
        ("Grant::checked_rccs(", &["src/ra/registry/enrolment.rs"]),
        ("Grant::service_renewal(", &["src/ca/renewal.rs"]),
        ("Grant::ceremony(", &["src/pki/ceremony.rs"]),
    ];
    // The development mode's TLS server certificate is self-signed by its own
    // software key (`demo.rs`): no CA of sceau signs it.
    let own_key_only = ["src/demo.rs"];
    let only_signing: [&str; 3] = [
        // A Certificate built around a TBSCertificate is a signature.
        "tbs_certificate: tbs",
        "CertificateBuilder",
        ".build::<",
    ];
    let mut sources = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    assert!(sources.len() > 50, "the sources were found");
    let mut violations = Vec::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        // Unit tests build what they inspect; production code is what counts.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let relative = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative == "src/pki/signing.rs" {
            continue;
        }
        for (constructor, allowed) in owners {
            if text.contains(constructor) && !allowed.contains(&relative.as_str()) {
                violations.push(format!("{relative} makes {constructor}…)"));
            }
        }
        for needle in only_signing {
            if text.contains(needle) && !own_key_only.contains(&relative.as_str()) {
                violations.push(format!("{relative} signs a certificate itself ({needle})"));
            }
        }
    }
    assert_eq!(violations, Vec::<String>::new());
}

/// Every certificate sceau signs, whatever its kind (the ceremony's
/// hierarchy, a renewed service certificate, a seal certificate, a TLS client
/// certificate), had its serial reserved in the one register, under its kind,
/// before it was signed; and no serial was drawn anywhere but there.
#[test]
fn every_certificate_signed_had_its_serial_reserved_first() {
    let Some(softhsm) =
        support::hsm::isolated("every_certificate_signed_had_its_serial_reserved_first")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let settings = service::settings(&softhsm, &db, dir.path(), None);
        let service = Service::start(settings.clone(), service::clock_now()).await;
        let store = service.state.store.clone();
        let entity = service.entity("Serial SA", "NTRFR-123456782").await;
        service.active_credential(entity, "seal-ca-managed").await;
        service
            .sceau_client_certificate(
                dir.path(),
                "serial",
                entity,
                ("Serial SA", "NTRFR-123456782"),
            )
            .await;
        let hsm = sceau::hsm::Hsm::connect(&settings.hsm, &sceau::app::SERVING_ROLES)
            .await
            .unwrap();
        let clock: sceau::clock::SharedClock = service.clock.clone();
        sceau::ca::renew_time_stamping_unit(&settings, &store, &hsm, &clock)
            .await
            .unwrap();
        drop(hsm);
        service.stop().await;

        let ca_rows = db
            .text_rows(
                "SELECT c.purpose, COALESCE(r.kind, 'none') FROM ca_certificates c \
                 LEFT JOIN serial_reservations r ON r.serial = c.serial \
                 AND r.reserved_at <= c.created_at ORDER BY c.purpose, c.created_at",
                vec![],
            )
            .await;
        let expected_kind = |purpose: &str| match purpose {
            "root" => "root",
            "issuing" => "issuing_ca",
            "client-auth" => "client_auth_ca",
            "ocsp" => "ocsp_responder",
            "tsa" => "time_stamping_unit",
            other => panic!("unexpected CA certificate purpose {other}"),
        };
        let purposes: Vec<&str> = ca_rows.iter().map(|row| row[0].as_str()).collect();
        for needed in ["root", "issuing", "client-auth", "ocsp", "tsa"] {
            assert!(
                purposes.contains(&needed),
                "a {needed} certificate: {ca_rows:?}"
            );
        }
        assert_eq!(
            purposes.iter().filter(|p| **p == "tsa").count(),
            2,
            "the ceremony's TSU and its renewal: {ca_rows:?}"
        );
        for row in &ca_rows {
            assert_eq!(row[1], expected_kind(&row[0]), "{ca_rows:?}");
        }
        let end_entity = db
            .text_rows(
                "SELECT c.policy_id, COALESCE(r.kind, 'none') FROM certificates c \
                 LEFT JOIN serial_reservations r ON r.serial = c.serial \
                 AND r.reserved_at <= c.reserved_at WHERE c.state = $1 ORDER BY c.policy_id",
                vec![Arg::Text("issued".to_owned())],
            )
            .await;
        let kinds: Vec<&str> = end_entity.iter().map(|row| row[1].as_str()).collect();
        assert_eq!(kinds, vec!["client_auth", "seal"], "{end_entity:?}");
        let register = db.count("serial_reservations").await;
        assert_eq!(
            register,
            i64::try_from(ca_rows.len() + end_entity.len()).unwrap(),
            "one reservation per certificate signed, none spent on nothing"
        );
    });
}

/// Serials are drawn in one place: the reservation, which records them.
#[test]
fn serials_are_drawn_only_by_the_reservation() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![root];
    let mut drawers = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                if text.contains("certificate::random_serial(") {
                    drawers.push(
                        path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
    }
    drawers.sort();
    assert_eq!(drawers, vec!["src/pki/serials.rs".to_owned()]);
}
