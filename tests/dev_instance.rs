//! The development instance (`make run`'s settings) verifiable end to end by
//! a relying party holding nothing but the root: on a port of its own, every
//! URL in every certificate it makes points at the running instance
//! (`server.public_url`), and pyHanko, fetching revocation data online with
//! hard-fail checking, validates the demo seal at B-B.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use der::{Decode as _, DecodePem as _, EncodePem as _};
use sceau::seal::Level;
use sceau::seal::pades::PadesOptions;
use serde_json::Value;
use support::service::{self, Service};
use x509_cert::Certificate;

/// Every URI a certificate names (CRL distribution points, AIA).
fn uris(certificate: &Certificate) -> Vec<String> {
    let text = certificate.to_pem(der::pem::LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pem");
    std::fs::write(&file, text).unwrap();
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .split("URI:")
        .skip(1)
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_development_instance_seals_what_a_relying_party_validates_online_from_the_root() {
    let Some(softhsm) = support::hsm::isolated(
        "the_development_instance_seals_what_a_relying_party_validates_online_from_the_root",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        // Not 8080: the URLs must come from public_url, not from a file.
        let port = support::smtp::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut settings = service::settings(&softhsm, &db, dir.path(), None);
        settings.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        settings.server.public_url = base.clone();
        let service = Service::start(settings, service::clock_now()).await;
        let state = service.state.clone();
        let demo = sceau::demo::ensure_credential(&state, &dir.path().join("demo"))
            .await
            .unwrap();

        // The certificates of the chain and the seal's: every URL points here.
        let active = state.store.active_ca_certificates().await.unwrap();
        let credential = state
            .store
            .seal_credential(demo.credential_id)
            .await
            .unwrap();
        let mut certificates: Vec<(String, Certificate)> = active
            .iter()
            .map(|c| (c.purpose.clone(), Certificate::from_der(&c.der).unwrap()))
            .collect();
        let seal_der = credential
            .certificate
            .expect("the demo credential is issued");
        certificates.push(("seal".to_owned(), Certificate::from_der(&seal_der).unwrap()));
        for (purpose, certificate) in &certificates {
            for uri in uris(certificate) {
                assert!(
                    uri.starts_with(&format!("{base}/")),
                    "{purpose}: {uri} does not point at the instance ({base})"
                );
            }
        }
        let seal_uris = uris(&certificates.last().unwrap().1);
        assert_eq!(seal_uris.len(), 3, "CRL, OCSP, caIssuers: {seal_uris:?}");

        // The demo seal, as its client would have it made.
        let client_pem = std::fs::read(&demo.client_cert_pem).unwrap();
        let client_der = der::Encode::to_der(&Certificate::from_pem(&client_pem).unwrap()).unwrap();
        let principal = sceau::auth::mtls::principal(&state.store, &client_der)
            .await
            .unwrap();
        let pdf = support::pdf_bombs::sound_file(4_000);
        let sealed = state
            .sealer
            .pades(
                &principal,
                demo.credential_id,
                None,
                Level::BB,
                &PadesOptions::default(),
                bytes::Bytes::from(pdf),
            )
            .await
            .unwrap()
            .into_vec();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let file = work.join("demo-sealed.pdf");
        std::fs::write(&file, sealed).unwrap();
        let root = active.iter().find(|c| c.purpose == "root").unwrap();
        let root_pem = Certificate::from_der(&root.der)
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap();
        let root_file = work.join("root.pem");
        std::fs::write(&root_file, root_pem).unwrap();

        // pyHanko: the root only, revocation fetched online, hard-fail.
        let found = support::pades::python_result(
            &support::pades::script("validate_pades.py"),
            &[
                file.to_str().unwrap(),
                root_file.to_str().unwrap(),
                "--online",
            ],
        );
        let verdicts: Vec<Value> = serde_json::from_str(&found).unwrap();
        assert_eq!(verdicts.len(), 1, "{verdicts:?}");
        let seal = &verdicts[0];
        for key in ["intact", "valid", "trusted", "bottom_line"] {
            assert_eq!(seal[key], true, "{key}: {seal}");
        }
        service.stop().await;
    });
}
