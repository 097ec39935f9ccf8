//! The registration back office over HTTP, against the real OpenID provider and
//! an SMTP sink: the whole path from application to revocation by the legal
//! representative, a credential that seals over mutual TLS only once its RCCS
//! accepted it and never once expired or revoked, the role × transition
//! matrix, and bad input refused with nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sceau::clock::Clock;
use sceau::ra::request::{Move, RequestState};
use serde_json::{Value, json};
use support::back_office::{self, *};
use support::smtp::{self, SmtpSink};
use support::tools;

fn rfc3339(text: &Value) -> SystemTime {
    let parsed = time::OffsetDateTime::parse(
        text.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    SystemTime::from(parsed)
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn the_whole_registration_path_end_to_end() {
    let Some(softhsm) = support::hsm::isolated("the_whole_registration_path_end_to_end") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let mail_root = tempfile::tempdir().unwrap();
        let maildir: PathBuf = mail_root.path().join("maildir");
        let sink = SmtpSink::start(smtp::free_port(), &maildir);
        let smtp_port = sink.port;
        let w = back_office::start(&softhsm, &db, |s| {
            s.notify.enabled = true;
            s.notify.smtp_port = smtp_port;
            s.notify.security = sceau::config::SmtpSecurity::None;
            s.notify.poll_interval_ms = 100;
            s.notify.max_backoff_secs = 1;
            // Published under a public name, as a qualified service is: in
            // development the certificates name this URL, and pkilint's ETSI
            // linter refuses an internal one (127.0.0.1) in a seal certificate.
            s.server.public_url = "http://pki.sceau.eu".to_owned();
        })
        .await;

        // 1. Apply, upload evidence, accept the terms.
        let (status, view) = w.apply("rccs-a", SIREN_A, Some(SIRET_A)).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["state"], "draft");
        assert_eq!(
            view["entity"]["organization_identifier"],
            format!("NTRFR-{SIREN_A}")
        );
        assert_eq!(view["identity_verification"]["method"], "eid_substantial");
        assert_eq!(view["identity_verification"]["acr"], EID_ACR);
        let id = view["id"].as_str().unwrap().to_owned();
        // The legal representative's enrolment link went out by e-mail.
        smtp::wait_until("the enrolment e-mails", || {
            smtp::messages(&maildir).len() >= 2
        });
        let links_to_legal = || smtp::enrolment_links(&maildir, "legal@alpha.example");
        let first_link = links_to_legal()
            .pop()
            .expect("an enrolment link for the legal representative");
        // The RCCS has a new link sent (say the first was lost): the old one stops working.
        let legal_id = view["persons"]["legal_representative"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, person) = w
            .call(
                "POST",
                &format!("/ra/v1/persons/{legal_id}/enrolment"),
                "rccs-a",
                None,
            )
            .await;
        assert_eq!(status, 202, "{person}");
        smtp::wait_until("the second enrolment e-mail", || {
            links_to_legal().len() >= 2
        });
        let token = links_to_legal()
            .into_iter()
            .find(|link| *link != first_link)
            .expect("a new link");
        // The links travel in the e-mails only: the outbox keeps neither,
        // nor, once a notice is sent, the sealed secret it was made from.
        for link in [&first_link, &token] {
            assert_eq!(
                db.count(&format!("notices WHERE instr(body, '{link}') > 0"))
                    .await,
                0,
                "an enrolment link is stored in clear"
            );
        }
        assert_eq!(
            db.count("notices WHERE sent_at IS NOT NULL AND sealed_secret IS NOT NULL")
                .await,
            0
        );
        assert!(db.count("notices WHERE kind = 'ra.enrolment'").await >= 2);
        let (status, problem) = w
            .call(
                "POST",
                "/ra/v1/enrolments",
                "legal-a",
                Some(json!({ "token": first_link })),
            )
            .await;
        assert_eq!(status, 422, "the replaced link: {problem}");
        // The legal representative binds his own identity with the link (it
        // expires after 72 hours); before that he cannot revoke.
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/legal-representative/certificates/{SIREN_A}/revocation"),
                "legal-a",
                Some(json!({ "reason": "cessation_of_operation" })),
            )
            .await;
        assert_eq!(status, 403, "not enrolled yet: {problem}");
        let (status, person) = w
            .call(
                "POST",
                "/ra/v1/enrolments",
                "legal-a",
                Some(json!({ "token": token })),
            )
            .await;
        assert_eq!(status, 200, "{person}");
        assert_eq!(person["role"], "legal_representative");
        let (status, again) = w
            .call(
                "POST",
                "/ra/v1/enrolments",
                "stranger",
                Some(json!({ "token": token })),
            )
            .await;
        assert_eq!(status, 422, "a link binds once: {again}");
        w.complete(&id, "rccs-a").await;
        let (status, view) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(view["terms"]["version"], "1.0");
        assert_eq!(
            view["terms"]["principal"],
            format!("oidc:{}#rccs-a", w.idp.issuer)
        );
        assert_eq!(view["documents"].as_array().unwrap().len(), 3);
        assert_eq!(view["allowed_moves"], json!(["submit"]));
        // Documents are stored encrypted: the database never holds the plaintext.
        let stored = w
            .service
            .state
            .store
            .evidence_documents(uuid::Uuid::parse_str(&id).unwrap())
            .await
            .unwrap();
        for doc in &stored {
            let ciphertext = doc.ciphertext.as_ref().unwrap();
            assert!(
                !ciphertext
                    .windows(5)
                    .any(|w| w == b"%PDF-" || w == b"IHDR\0"),
                "{}",
                doc.kind
            );
        }
        // An operator reads a document back, intact.
        let registry_extract = stored
            .iter()
            .find(|d| d.kind == "registry_extract")
            .unwrap();
        let token_op = w.token("op-1").await;
        let response = w
            .http
            .get(w.service.url(&format!(
                "/ra/v1/requests/{id}/documents/{}",
                registry_extract.id
            )))
            .bearer_auth(token_op)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/pdf");
        // Evidence is downloaded, never rendered or sniffed by a browser.
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            response.headers()["content-disposition"],
            format!("attachment; filename=\"{}.pdf\"", registry_extract.id)
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.bytes().await.unwrap().to_vec(), pdf());
        let (status, view) = w.do_move(&id, "rccs-a", "submit").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "submitted");

        // 2. One operator reviews, a second validates.
        assert_eq!(w.do_move(&id, "op-1", "start_review").await.0, 200);
        let (status, view) = w.do_move(&id, "op-1", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "in_review");
        let (status, problem) = w.do_move(&id, "op-1", "approve").await;
        assert_eq!(status, 409, "the same operator twice: {problem}");
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/requests/{id}/moves"),
                "op-1",
                Some(json!({ "move": "approve", "on_behalf_of": "op-2" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "on_behalf_of");
        let (status, view) = w.do_move(&id, "op-2", "approve").await;
        assert_eq!(status, 200, "{view}");

        // 3. Issued at once; pkilint accepts the certificate.
        assert_eq!(view["state"], "issued", "{view}");
        let certificate = view["certificate"].clone();
        let serial = certificate["serial"].as_str().unwrap().to_owned();
        let pem_path = w.dir.path().join("issued.pem");
        std::fs::write(&pem_path, certificate["pem"].as_str().unwrap()).unwrap();
        let pkix = tools::pkilint_errors("lint_pkix_cert", &[], &pem_path);
        assert!(pkix.is_empty(), "lint_pkix_cert: {pkix}");
        let etsi = tools::pkilint_errors("lint_etsi_cert", &["-d"], &pem_path);
        assert!(etsi.is_empty(), "lint_etsi_cert: {etsi}");

        // 4. Not usable before acceptance; usable after.
        assert_eq!(certificate["credential_status"], "pending");
        assert_eq!(certificate["usable"], false);
        let (status, view) = w.do_move(&id, "rccs-a", "accept").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "accepted");
        assert_eq!(view["certificate"]["credential_status"], "active");
        assert_eq!(view["certificate"]["usable"], true);
        let not_after = rfc3339(&view["certificate"]["not_after"]);

        // The RCCS gets a TLS client certificate for activation from sceau's
        // client-authentication CA, through the RA, from his own CSR.
        let credential_id = view["certificate"]["credential_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let csr = support::ca::openssl_csr(w.dir.path(), "rccs-client", "rsa:2048");
        let csr_pem =
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &csr).unwrap();
        let (status, registered) = w
            .call(
                "POST",
                &format!("/api/v1/credentials/{credential_id}/activation-credentials"),
                "rccs-a",
                Some(json!({ "type": "client_certificate_request", "csr": csr_pem })),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        let client_pem = registered["issued_certificate"].as_str().unwrap();
        let (_, client_der) = der::pem::decode_vec(client_pem.as_bytes()).unwrap();
        assert_eq!(
            registered["certificate_sha256"],
            sceau::auth::mtls::fingerprint(&client_der)
        );
        let client_cert = {
            use der::Decode;
            x509_cert::Certificate::from_der(&client_der).unwrap()
        };
        let subject = client_cert.tbs_certificate.subject.to_string();
        assert!(
            subject.contains("CN=Camille Rccs") && subject.contains("Alpha Factures SA"),
            "{subject}"
        );
        // The serial, which revoking the certificate needs, comes with it.
        let client_serial = hex::encode(client_cert.tbs_certificate.serial_number.as_bytes());
        assert_eq!(
            registered["issued_certificate_serial"], client_serial,
            "{registered}"
        );
        assert!(
            w.service
                .state
                .store
                .issued_certificate(&client_serial)
                .await
                .is_ok(),
            "the answered serial is the one recorded"
        );
        let (status, problem) = w
            .call(
                "POST",
                &format!("/api/v1/credentials/{credential_id}/activation-credentials"),
                "rccs-a",
                Some(json!({ "type": "client_certificate_request", "csr": "not a CSR" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "csr");

        // 5. Reminders on the right days (90, 45, 30, 15 before expiry).
        let ra = &w.service.state.ra;
        let mut reminded = Vec::new();
        for (days_before, expected) in [
            (91, None),
            (90, Some(90)),
            (46, None),
            (45, Some(45)),
            (31, None),
            (30, Some(30)),
            (16, None),
            (15, Some(15)),
        ] {
            w.set_clock(not_after - DAY * days_before);
            let report = ra.sweep().await.unwrap();
            let got: Vec<u32> = report.reminders.iter().map(|(_, d)| *d).collect();
            assert_eq!(
                got,
                expected.into_iter().collect::<Vec<_>>(),
                "{days_before} days before expiry"
            );
            reminded.extend(got);
        }
        assert_eq!(reminded, vec![90, 45, 30, 15]);
        // Each went to the RCCS and the agent.
        smtp::wait_until("the reminders", || {
            smtp::messages(&maildir)
                .iter()
                .filter(|m| {
                    m.contains(&serial)
                        && smtp::header(m, "to").is_some_and(|t| t.contains("rccs@alpha.example"))
                })
                .count()
                >= 5
        });

        // 6. Renewal (in the window) yields a new key.
        let (status, renewal) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/renewal"),
                "rccs-a",
                Some(json!({ "terms": { "version": "1.0" } })),
            )
            .await;
        assert_eq!(status, 201, "{renewal}");
        assert_eq!(
            renewal["identity_required"], false,
            "optional at the first renewal"
        );
        let renewal_id = renewal["id"].as_str().unwrap().to_owned();
        assert_eq!(w.do_move(&renewal_id, "rccs-a", "submit").await.0, 200);
        assert_eq!(w.do_move(&renewal_id, "op-2", "start_review").await.0, 200);
        assert_eq!(w.do_move(&renewal_id, "op-2", "approve").await.0, 200);
        let (status, renewed) = w.do_move(&renewal_id, "op-1", "approve").await;
        assert_eq!(status, 200, "{renewed}");
        assert_eq!(renewed["state"], "issued");
        let renewed_serial = renewed["certificate"]["serial"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(renewed_serial, serial);
        let store = &w.service.state.store;
        let old = store.issued_certificate(&serial).await.unwrap();
        let new = store.issued_certificate(&renewed_serial).await.unwrap();
        assert_ne!(
            old.spki_sha256, new.spki_sha256,
            "renewal brings a new key pair"
        );
        assert_ne!(old.credential_id, new.credential_id);
        assert_eq!(w.do_move(&renewal_id, "rccs-a", "accept").await.0, 200);

        // 7. The legal representative (enrolled above) revokes; the RCCS, the
        // agent and he himself are told the effective date.
        let (status, revocation) = w
            .call(
                "POST",
                &format!("/ra/v1/legal-representative/certificates/{renewed_serial}/revocation"),
                "legal-a",
                Some(json!({ "reason": "cessation_of_operation", "comment": "activity stopped" })),
            )
            .await;
        assert_eq!(status, 200, "{revocation}");
        assert_eq!(revocation["reason_code"], 5);
        assert_eq!(revocation["requester_role"], "legal_representative");
        let effective = revocation["revoked_at"].as_str().unwrap().to_owned();
        assert_eq!(
            store
                .seal_credential(new.credential_id.unwrap())
                .await
                .unwrap()
                .status,
            sceau::store::entities::CredentialStatus::Revoked
        );
        let revocation_mails = || -> Vec<String> {
            smtp::messages(&maildir)
                .into_iter()
                .filter(|m| {
                    let body = smtp::body(m);
                    body.contains(&renewed_serial) && body.contains(&effective)
                })
                .collect()
        };
        smtp::wait_until("the revocation e-mails", || revocation_mails().len() >= 3);
        let revocation_mails = revocation_mails();
        let recipients: BTreeSet<String> = revocation_mails
            .iter()
            .filter_map(|m| smtp::header(m, "to"))
            .collect();
        assert!(
            recipients.iter().any(|r| r.contains("rccs@alpha.example"))
                && recipients.iter().any(|r| r.contains("agent@alpha.example")),
            "the RCCS and the agent are told the effective date {effective}: {recipients:?}"
        );

        // The journal holds every step, in order; `sceau audit verify` passes.
        let journal = &w.service.state.journal;
        let size = journal.size().await.unwrap();
        let mut steps = Vec::new();
        for index in 0..size {
            let entry = journal.entry(index).await.unwrap();
            let event = entry.event().unwrap().unwrap();
            let step = match event.kind.as_str() {
                "request.moved" => format!("move:{}", event.details["move"].as_str().unwrap()),
                "evidence.received" => {
                    format!("evidence:{}", event.details["kind"].as_str().unwrap())
                }
                kind @ ("request.created"
                | "terms.accepted"
                | "certificate.issued"
                | "certificate.accepted"
                | "client_certificate.issued"
                | "renewal.started"
                | "person.enrolled"
                | "certificate.revoked") => kind.to_owned(),
                _ => continue,
            };
            steps.push(step);
        }
        let expected = [
            "request.created",
            "person.enrolled",
            "evidence:identity_document",
            "evidence:registry_extract",
            "evidence:mandate",
            "terms.accepted",
            "move:submit",
            "move:start_review",
            "move:approve",
            "move:approve",
            "certificate.issued",
            "move:issue",
            "move:accept",
            "certificate.accepted",
            "client_certificate.issued",
            "renewal.started",
            "move:submit",
            "move:start_review",
            "move:approve",
            "move:approve",
            "certificate.issued",
            "move:issue",
            "move:accept",
            "certificate.accepted",
            "certificate.revoked",
        ];
        assert_eq!(steps, expected, "the journal's steps");
        let mut sent = 0;
        for index in 0..size {
            if journal.entry(index).await.unwrap().kind == "notice.sent" {
                sent += 1;
            }
        }
        assert!(sent >= 10, "each notice sent is journaled ({sent})");
        w.service.stop().await;
        sink.stop();
        let verify = support::app::audit_verify(&db, w.dir.path());
        assert!(
            verify.status.success(),
            "sceau audit verify: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    });
}

/// The seal API behind the RA: a credential issued through the back office
/// seals (CAdES over mutual TLS, with the client certificate the RCCS got from
/// the RA) only once the RCCS has accepted it; once its certificate has
/// expired (the clock moved) or been revoked, a seal call gets a problem body
/// and no seal is made.
#[test]
fn a_credential_seals_only_once_accepted_and_never_once_expired_or_revoked() {
    let Some(softhsm) = support::hsm::isolated(
        "a_credential_seals_only_once_accepted_and_never_once_expired_or_revoked",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let tls_dir = tempfile::tempdir().unwrap();
        let pki = support::test_ca::MtlsPki::new(tls_dir.path(), 60);
        let w = back_office::start(&softhsm, &db, |s| s.server.tls = Some(pki.tls.clone())).await;
        let (id, view) = w.issued("rccs-a", SIREN_A).await;
        assert_eq!(view["certificate"]["credential_status"], "pending");
        let credential = view["certificate"]["credential_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let serial = view["certificate"]["serial"].as_str().unwrap().to_owned();
        let not_after = rfc3339(&view["certificate"]["not_after"]);

        // The organisation's server gets its client certificate through the RA.
        let key = w.dir.path().join("seal-server.key");
        let generated = tools::run(
            &tools::tool("openssl"),
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                key.to_str().unwrap(),
            ],
        );
        assert!(generated.status.success());
        let csr = support::ca::openssl_csr_for_key(w.dir.path(), "seal-server", &key);
        let csr_pem =
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &csr).unwrap();
        let (status, registered) = w
            .call(
                "POST",
                &format!("/api/v1/credentials/{credential}/activation-credentials"),
                "rccs-a",
                Some(json!({ "type": "client_certificate_request", "csr": csr_pem })),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        let certificate = w.dir.path().join("seal-server.pem");
        std::fs::write(
            &certificate,
            registered["issued_certificate"].as_str().unwrap(),
        )
        .unwrap();
        let client = pki.client(Some(&support::test_ca::Issued {
            certificate,
            key: key.clone(),
        }));
        let seal = || async {
            let response = client
                .post(w.service.tls_url(&format!(
                    "/api/v1/seal/cades?credential={credential}&level=B-B"
                )))
                .header("content-type", "application/octet-stream")
                .body(b"Facture 2026-0042".to_vec())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let media_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            (status, media_type, response.bytes().await.unwrap().to_vec())
        };
        let seals = || async {
            w.service
                .state
                .store
                .seals_of(uuid::Uuid::parse_str(&credential).unwrap(), None, 100)
                .await
                .unwrap()
                .len()
        };
        let refused = |(status, media_type, body): (u16, String, Vec<u8>), words: &str| {
            assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
            assert_eq!(media_type, "application/problem+json");
            let problem: Value = serde_json::from_slice(&body).unwrap();
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(words), "{detail}");
        };

        // Issued but not accepted: refused, nothing sealed.
        refused(seal().await, "not accepted");
        assert_eq!(seals().await, 0);

        // Accepted by the RCCS: it seals.
        assert_eq!(w.do_move(&id, "rccs-a", "accept").await.0, 200);
        let (status, media_type, body) = seal().await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(media_type, "application/pkcs7-signature");
        assert_eq!(seals().await, 1);

        // Past its notAfter (sceau's clock moved): refused.
        let now = w.service.clock.now();
        w.set_clock(not_after + Duration::from_secs(1));
        refused(seal().await, "expired");
        w.set_clock(now);
        assert_eq!(seals().await, 1);

        // Revoked by the RCCS: refused.
        let (status, revocation) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/revocation"),
                "rccs-a",
                Some(json!({ "reason": "cessation_of_operation" })),
            )
            .await;
        assert_eq!(status, 200, "{revocation}");
        refused(seal().await, "revoked");
        assert_eq!(seals().await, 1);
        w.service.stop().await;
    });
}

/// Every move by every kind of caller on requests in each state: only the moves
/// the lifecycle allows to the caller's role succeed; the others are 409 with
/// the state and the allowed moves, or 403 for roles that move nothing; an
/// RCCS of another organisation gets 404 on everything of organisation A.
#[test]
fn role_and_transition_matrix() {
    let Some(softhsm) = support::hsm::isolated("role_and_transition_matrix") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        // Organisation B exists with its own RCCS (validated by the RA).
        w.issued("rccs-b", SIREN_B).await;
        let (_, issued) = w.issued("rccs-a", SIREN_A).await;
        let issued_id = issued["id"].as_str().unwrap().to_owned();
        let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();

        // RCCS of B: 404 on everything of A.
        let b_paths: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/ra/v1/requests/{issued_id}"), None),
            (
                "POST",
                format!("/ra/v1/requests/{issued_id}/terms"),
                Some(json!({ "version": "1.0" })),
            ),
            (
                "POST",
                format!("/ra/v1/requests/{issued_id}/moves"),
                Some(json!({ "move": "accept" })),
            ),
            (
                "POST",
                format!("/ra/v1/requests/{issued_id}/identity-verification"),
                Some(json!({ "method": "eid_substantial" })),
            ),
            (
                "POST",
                format!("/ra/v1/certificates/{serial}/renewal"),
                Some(json!({})),
            ),
            (
                "POST",
                format!("/ra/v1/certificates/{serial}/revocation"),
                Some(json!({ "reason": "key_compromise" })),
            ),
        ];
        for (method, path, body) in b_paths {
            let (status, problem) = w.call(method, &path, "rccs-b", body).await;
            assert_eq!(status, 404, "{method} {path} as RCCS of B: {problem}");
        }
        let (status, problem) = w
            .upload(&issued_id, "mandate", "rccs-b", pdf(), "m.pdf")
            .await;
        assert_eq!(status, 404, "upload as RCCS of B: {problem}");
        let (status, list) = w.call("GET", "/ra/v1/requests", "rccs-b", None).await;
        assert_eq!(status, 200);
        assert!(
            list["requests"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["entity"]["siren"] == SIREN_B),
            "B lists only its own: {list}"
        );
        // Paging: one at a time, the pages make up the whole listing, in order.
        let (status, all) = w
            .call("GET", "/ra/v1/requests?limit=200", "op-1", None)
            .await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(all["next_before"], Value::Null, "{all}");
        let ids = |page: &Value| -> Vec<String> {
            page["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let everything = ids(&all);
        assert!(everything.len() >= 2, "{all}");
        let mut paged = Vec::new();
        let mut path = "/ra/v1/requests?limit=1".to_owned();
        for _ in 0..everything.len() {
            let (status, page) = w.call("GET", &path, "op-1", None).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(ids(&page).len(), 1, "{page}");
            paged.extend(ids(&page));
            match page["next_before"].as_str() {
                Some(next) => path = format!("/ra/v1/requests?limit=1&before={next}"),
                None => break,
            }
        }
        assert_eq!(paged, everything, "the pages, one after the other");
        let a_request = everything
            .iter()
            .find(|id| !ids(&list).contains(id))
            .unwrap();
        for (query, who, why) in [
            ("limit=0", "op-1", "limit"),
            ("limit=201", "op-1", "limit"),
            (
                &format!("before={}", uuid::Uuid::new_v4()) as &str,
                "op-1",
                "before",
            ),
            // B may not page from a request of A: it would learn it exists.
            (&format!("before={a_request}"), "rccs-b", "before"),
        ] {
            let (status, problem) = w
                .call("GET", &format!("/ra/v1/requests?{query}"), who, None)
                .await;
            assert_eq!(status, 422, "{query} as {who}: {problem}");
            assert_eq!(problem["field"], why, "{query}: {problem}");
        }
        let (status, problem) = w
            .call("GET", "/ra/v1/requests?before=yesterday", "op-1", None)
            .await;
        assert_eq!(status, 400, "{problem}");

        // Identity verification: face to face is an operator's attestation.
        let (status, view) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{view}");
        let draft = view["id"].as_str().unwrap().to_owned();
        let path = format!("/ra/v1/requests/{draft}/identity-verification");
        let (status, problem) = w
            .call(
                "POST",
                &path,
                "rccs-a",
                Some(json!({ "method": "face_to_face" })),
            )
            .await;
        assert_eq!(status, 403, "{problem}");
        let (status, problem) = w
            .call(
                "POST",
                &path,
                "rccs-a",
                Some(json!({ "method": "remote_provider", "provider": "PVID-X" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "identity_verification.reference");
        let (status, view) = w
            .call(
                "POST",
                &path,
                "op-1",
                Some(json!({ "method": "face_to_face" })),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["identity_verification"]["method"], "face_to_face");
        assert_eq!(
            view["identity_verification"]["attested_by"],
            format!("oidc:{}#op-1", w.idp.issuer)
        );

        // Revocation by a CA administrator; an auditor may not.
        let revocation = format!("/ra/v1/certificates/{serial}/revocation");
        let body = json!({ "reason": "obligations_not_met" });
        assert_eq!(
            w.call("POST", &revocation, "auditor", Some(body.clone()))
                .await
                .0,
            403
        );
        let (status, revoked) = w.call("POST", &revocation, "ca-admin", Some(body)).await;
        assert_eq!(status, 200, "{revoked}");
        assert_eq!(revoked["requester_role"], "ca_admin");
        assert_eq!(revoked["reason_code"], 9);
        w.service.stop().await;
    });
}

/// Each bad input is a 4xx problem naming the field, and stores nothing.
#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let Some(softhsm) = support::hsm::isolated("bad_input_is_refused_and_nothing_is_stored") else {
        return;
    };
    support::ca::runtime().block_on(bad_input(softhsm, support::db::sqlite()));
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored_on_postgres() {
    let Some(softhsm) =
        support::hsm::isolated("bad_input_is_refused_and_nothing_is_stored_on_postgres")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        if let Some(db) = support::db::postgres().await {
            bad_input(softhsm, db).await;
        }
    });
}

async fn bad_input(softhsm: support::hsm::SoftHsm, db: support::db::TestDb) {
    {
        let w = back_office::start(&softhsm, &db, |s| s.ra.max_document_bytes = 64 * 1024).await;
        let journal = &w.service.state.journal;

        // Wrong SIREN and SIRET check digits.
        let before = (
            db.count("entities").await,
            db.count("registration_requests").await,
            journal.size().await.unwrap(),
        );
        for (siren, siret, field) in [
            ("732829321", None, "organisation.siren"),
            ("73282932", None, "organisation.siren"),
            (SIREN_A, Some("73282932000008"), "organisation.siret"),
            (SIREN_A, Some(SIRET_B), "organisation.siret"),
        ] {
            let (status, problem) = w.apply("rccs-a", siren, siret).await;
            assert_eq!(status, 422, "{siren} {siret:?}: {problem}");
            assert_eq!(problem["field"], field, "{problem}");
        }
        let (status, problem) = w
            .call(
                "POST",
                "/ra/v1/requests",
                "rccs-a",
                Some({
                    let mut a = application(SIREN_A, None);
                    a["terms"] = json!({ "version": "0.9" });
                    a
                }),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "terms.version");
        let (status, problem) = w.apply("rccs-low", "552100554", None).await;
        assert_eq!(
            status, 422,
            "an acr the provider is not trusted for: {problem}"
        );
        assert_eq!(problem["field"], "identity_verification.method");
        let after = (
            db.count("entities").await,
            db.count("registration_requests").await,
            journal.size().await.unwrap(),
        );
        assert_eq!(before, after, "nothing stored, nothing journaled");

        // CSR intake for the entity-generated profiles: the engine's typed errors.
        let entity_application = |csr: Option<String>| {
            let mut a = application(SIREN_A, None);
            a["policy"] = json!("seal-entity");
            a["csr"] = json!(csr);
            a
        };
        let rsa_2048 = support::ca::openssl_csr(w.dir.path(), "small", "rsa:2048");
        let b64 = |der: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(der)
        };
        for (csr, expected) in [
            (None, "send its CSR"),
            (Some("AAAA".to_owned()), "PKCS#10"),
            (Some(b64(&rsa_2048)), "policy"),
        ] {
            let (status, problem) = w
                .call(
                    "POST",
                    "/ra/v1/requests",
                    "rccs-a",
                    Some(entity_application(csr)),
                )
                .await;
            assert_eq!(status, 422, "{problem}");
            assert_eq!(problem["field"], "csr", "{problem}");
            assert!(
                problem["detail"].as_str().unwrap().contains(expected),
                "{problem}"
            );
        }
        let (status, problem) = w
            .call(
                "POST",
                "/ra/v1/requests",
                "rccs-a",
                Some({
                    let mut a = application(SIREN_A, None);
                    a["csr"] = json!(b64(&rsa_2048));
                    a
                }),
            )
            .await;
        assert_eq!(status, 422, "a CSR for a CA-managed policy: {problem}");
        assert_eq!(problem["field"], "csr");
        assert_eq!(
            (
                db.count("entities").await,
                db.count("registration_requests").await,
                journal.size().await.unwrap()
            ),
            before,
            "nothing stored, nothing journaled"
        );
        let rsa_4096 = support::ca::openssl_csr(w.dir.path(), "large", "rsa:4096");
        let (status, view) = w
            .call(
                "POST",
                "/ra/v1/requests",
                "rccs-a",
                Some(entity_application(Some(b64(&rsa_4096)))),
            )
            .await;
        assert_eq!(status, 201, "an acceptable CSR: {view}");
        assert_eq!(
            view["approvals_needed"], 1,
            "the entity's own key: one approval"
        );

        // A draft to upload to.
        let (status, view) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        let documents = db.count("evidence_documents").await;
        let size = journal.size().await.unwrap();
        let (status, problem) = w
            .upload(
                &id,
                "identity_document",
                "rccs-a",
                executable(),
                "passport.pdf",
            )
            .await;
        assert_eq!(status, 422, "an executable renamed .pdf: {problem}");
        assert_eq!(problem["field"], "document");
        assert!(
            problem["detail"].as_str().unwrap().contains("document"),
            "{problem}"
        );
        let mut big = pdf();
        big.splice(9..9, std::iter::repeat_n(b' ', 65 * 1024));
        let (status, problem) = w
            .upload(&id, "identity_document", "rccs-a", big, "big.pdf")
            .await;
        assert_eq!(status, 413, "a document over the limit: {problem}");
        assert_eq!(problem["field"], "document");
        assert!(
            problem["detail"].as_str().unwrap().contains("document"),
            "{problem}"
        );
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/requests/{id}/terms"),
                "rccs-a",
                Some(json!({ "version": "2.0" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "terms.version");
        let (status, problem) = w.do_move(&id, "rccs-a", "submit").await;
        assert_eq!(status, 422, "incomplete file: {problem}");
        assert_eq!(db.count("evidence_documents").await, documents);
        assert_eq!(
            journal.size().await.unwrap(),
            size,
            "refusals journal nothing"
        );

        // Validating twice, revoking twice, renewing outside the window.
        let (issued_id, issued) = w.issued("rccs-a", SIREN_A).await;
        let (status, problem) = w.do_move(&issued_id, "op-2", "approve").await;
        assert_eq!(status, 409, "validating twice: {problem}");
        assert_eq!(problem["state"], "issued");
        let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
        assert_eq!(w.do_move(&issued_id, "rccs-a", "accept").await.0, 200);
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/renewal"),
                "rccs-a",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 422, "a renewal outside the window: {problem}");
        assert_eq!(problem["field"], "serial");
        assert!(
            problem["detail"].as_str().unwrap().contains("opens on"),
            "{problem}"
        );
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/revocation"),
                "rccs-a",
                Some(json!({ "reason": "bored" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "reason");
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/revocation"),
                "rccs-a",
                Some(json!({ "reason": "key_compromise", "invalidity_date": "2999-01-01T00:00:00Z" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "invalidity_date");
        let compromised =
            time::OffsetDateTime::from(w.service.clock.now()) - time::Duration::hours(2);
        let compromised = compromised.replace_nanosecond(0).unwrap();
        let (status, revoked) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/revocation"),
                "rccs-a",
                Some(json!({
                    "reason": "key_compromise",
                    "invalidity_date": compromised.format(&time::format_description::well_known::Rfc3339).unwrap(),
                })),
            )
            .await;
        assert_eq!(status, 200, "{revoked}");
        assert_eq!(revoked["reason_code"], 1);
        // On the issuing CA's CRL as soon as the call returned, with the
        // reason and the invalidity date.
        let crl = w
            .http
            .get(w.service.url("/crl/issuing.crl"))
            .send()
            .await
            .unwrap();
        assert_eq!(crl.status(), 200);
        let crl = {
            use der::Decode;
            x509_cert::crl::CertificateList::from_der(&crl.bytes().await.unwrap()).unwrap()
        };
        let entry = crl
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .find(|r| hex::encode(r.serial_number.as_bytes()) == serial)
            .expect("the revoked certificate is on the CRL at once");
        let oids: Vec<String> = entry
            .crl_entry_extensions
            .iter()
            .flatten()
            .map(|e| e.extn_id.to_string())
            .collect();
        assert!(
            oids.contains(&"2.5.29.21".to_owned()) && oids.contains(&"2.5.29.24".to_owned()),
            "{oids:?}"
        );
        let revocations = db.count("revocations").await;
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/revocation"),
                "op-1",
                Some(json!({ "reason": "key_compromise" })),
            )
            .await;
        assert_eq!(status, 409, "revoking a revoked certificate: {problem}");
        assert_eq!(db.count("revocations").await, revocations);
        w.service.stop().await;
    }
}

/// Evidence is kept for the policy's retention period (10 years), then its
/// content and wrapped key are erased with a journal entry; the record and its
/// SHA-256 stay.
#[test]
fn evidence_is_purged_at_the_end_of_its_retention() {
    let Some(softhsm) = support::hsm::isolated("evidence_is_purged_at_the_end_of_its_retention")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let (status, view) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        let (status, document) = w
            .upload(&id, "mandate", "rccs-a", pdf(), "mandate.pdf")
            .await;
        assert_eq!(status, 201, "{document}");
        let document_id = uuid::Uuid::parse_str(document["id"].as_str().unwrap()).unwrap();
        let retain_until = rfc3339(&document["retain_until"]);
        let uploaded_at = rfc3339(&document["uploaded_at"]);
        let kept = retain_until.duration_since(uploaded_at).unwrap();
        assert!(
            kept >= DAY * 3652 && kept <= DAY * 3653,
            "ten years: {kept:?}"
        );
        let ra = &w.service.state.ra;
        let store = &w.service.state.store;

        w.set_clock(retain_until - DAY);
        assert!(
            ra.sweep().await.unwrap().purged_documents.is_empty(),
            "kept until the end"
        );
        assert!(
            store
                .evidence_document(document_id)
                .await
                .unwrap()
                .ciphertext
                .is_some()
        );

        w.set_clock(retain_until + Duration::from_secs(1));
        let report = ra.sweep().await.unwrap();
        assert_eq!(report.purged_documents, vec![document_id]);
        let record = store.evidence_document(document_id).await.unwrap();
        assert!(record.ciphertext.is_none() && record.wrapped_key.is_none());
        assert!(record.purged_at.is_some());
        assert_eq!(record.sha256, document["sha256"].as_str().unwrap());
        let index = record.journal_index.unwrap();
        let entry = w.service.state.journal.entry(index).await.unwrap();
        let event = entry.event().unwrap().unwrap();
        assert_eq!(event.kind, "evidence.purged");
        assert_eq!(event.details["document"], document_id.to_string());
        // Purged once: the next pass finds nothing.
        assert!(ra.sweep().await.unwrap().purged_documents.is_empty());
        let (status, problem) = w
            .call(
                "GET",
                &format!("/ra/v1/requests/{id}/documents/{document_id}"),
                "op-1",
                None,
            )
            .await;
        assert_eq!(status, 409, "{problem}");
        w.service.stop().await;
    });
}

/// A CA-managed seal key is destroyed in the HSM when its certificate is
/// revoked (at once) or expires (found by the sweep, with the clock moved),
/// each with a journal entry.
#[test]
fn seal_keys_are_destroyed_on_revocation_and_expiry() {
    let Some(softhsm) = support::hsm::isolated("seal_keys_are_destroyed_on_revocation_and_expiry")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let state = &w.service.state;
        let seal = state
            .hsm
            .token(sceau::config::TokenRole::Seal)
            .unwrap()
            .clone();
        let key_of = |credential: &str| {
            let store = state.store.clone();
            let credential = uuid::Uuid::parse_str(credential).unwrap();
            async move {
                let record = store.seal_credential(credential).await.unwrap();
                sceau::hsm::KeyId::from_bytes(&record.key.key_id).unwrap()
            }
        };
        let present = |id: sceau::hsm::KeyId| {
            let seal = seal.clone();
            async move { seal.find_key(id).await.is_ok() }
        };
        let mut credentials = Vec::new();
        for _ in 0..2 {
            let (id, view) = w.issued("rccs-a", SIREN_A).await;
            assert_eq!(w.do_move(&id, "rccs-a", "accept").await.0, 200);
            credentials.push((
                view["certificate"]["serial"].as_str().unwrap().to_owned(),
                view["certificate"]["credential_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                rfc3339(&view["certificate"]["not_after"]),
            ));
        }
        let (revoked_serial, revoked_credential, _) = &credentials[0];
        let (_, expiring_credential, not_after) = &credentials[1];
        let revoked_key = key_of(revoked_credential).await;
        let expiring_key = key_of(expiring_credential).await;
        assert!(present(revoked_key).await && present(expiring_key).await);

        let (status, revoked) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{revoked_serial}/revocation"),
                "rccs-a",
                Some(json!({ "reason": "activation_data_compromise" })),
            )
            .await;
        assert_eq!(status, 200, "{revoked}");
        assert!(
            !present(revoked_key).await,
            "the revoked certificate's key is gone at once"
        );
        assert!(present(expiring_key).await);

        // One second before expiry the key stays; just after, the sweep destroys it.
        w.set_clock(*not_after - Duration::from_secs(1));
        assert!(state.ra.sweep().await.unwrap().destroyed_keys.is_empty());
        assert!(present(expiring_key).await);
        w.set_clock(*not_after + Duration::from_secs(1));
        let report = state.ra.sweep().await.unwrap();
        assert_eq!(
            report.destroyed_keys,
            vec![uuid::Uuid::parse_str(expiring_credential).unwrap()]
        );
        assert!(
            !present(expiring_key).await,
            "the expired certificate's key is gone"
        );
        let credential = state
            .store
            .seal_credential(uuid::Uuid::parse_str(expiring_credential).unwrap())
            .await
            .unwrap();
        assert_eq!(
            credential.status,
            sceau::store::entities::CredentialStatus::Expired
        );
        assert!(
            state.ra.sweep().await.unwrap().destroyed_keys.is_empty(),
            "once"
        );

        let journal = &state.journal;
        let mut destroyed = Vec::new();
        for index in 0..journal.size().await.unwrap() {
            let entry = journal.entry(index).await.unwrap();
            if entry.kind == "key.destroyed" {
                let event = entry.event().unwrap().unwrap();
                destroyed.push(event.details["reason"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(destroyed, ["revoked", "expired"]);
        w.service.stop().await;
    });
}

/// The identity record the approvers saw is the one that validates: changing
/// it after an approval clears the approvals, with the journal saying so; and
/// an organisation's own identity provider never attests an eID level for
/// that organisation's people.
#[test]
fn changing_the_identity_record_clears_the_approvals() {
    let Some(softhsm) = support::hsm::isolated("changing_the_identity_record_clears_the_approvals")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let id = w.submitted("rccs-a", SIREN_A).await;
        let identity = format!("/ra/v1/requests/{id}/identity-verification");
        assert_eq!(w.do_move(&id, "op-1", "start_review").await.0, 200);
        let (status, view) = w
            .call(
                "POST",
                &identity,
                "op-1",
                Some(json!({ "method": "face_to_face" })),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        let (status, view) = w.do_move(&id, "op-1", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["approvals"].as_array().unwrap().len(), 1, "{view}");

        // The RCCS swaps the operator's face-to-face record for a declared one.
        let journal = &w.service.state.journal;
        let mark = journal.size().await.unwrap();
        let (status, view) = w
            .call(
                "POST",
                &identity,
                "rccs-a",
                Some(json!({ "method": "remote_provider", "provider": "Declared Inc.", "reference": "self" })),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["approvals"], json!([]), "{view}");
        assert_eq!(view["state"], "in_review");
        let entry = journal.entry(mark).await.unwrap();
        assert_eq!(entry.kind, "identity.verified");
        let details = entry.event().unwrap().unwrap().details;
        assert_eq!(details["approvals_cleared"].as_array().unwrap().len(), 1, "{details}");
        // One more approval is not enough: both are needed again.
        let (status, view) = w.do_move(&id, "op-2", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "in_review", "{view}");
        w.service.stop().await;
    });
}

/// An organisation's own identity provider cannot vouch for the identity of
/// that organisation's people: its acr is no eID evidence, where the service's
/// own provider's is.
#[test]
fn an_organisations_provider_never_attests_an_eid_level() {
    let Some(softhsm) =
        support::hsm::isolated("an_organisations_provider_never_attests_an_eid_level")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let id = w.submitted("rccs-a", SIREN_A).await;
        let (status, view) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(status, 200, "{view}");
        let entity = view["entity"]["id"].as_str().unwrap().to_owned();
        // The organisation's provider, for its people, trusted for the same acr.
        let (status, registered) = w
            .call(
                "POST",
                &format!("/api/v1/entities/{entity}/identity-providers"),
                "op-1",
                Some(json!({
                    "issuer": w.idp.issuer,
                    "audience": support::idp::OTHER_AUDIENCE,
                    "callers": "people",
                    "allowed": ["rccs-a"],
                    "acr_values": [EID_ACR],
                })),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        let identity = w
            .service
            .url(&format!("/ra/v1/requests/{id}/identity-verification"));
        let eid = Some(json!({ "method": "eid_substantial" }));
        let through_organisation = w
            .idp
            .token("rccs-a", support::idp::OTHER_AUDIENCE, None)
            .await;
        let (status, problem) = bearer_call(
            &w.http,
            "POST",
            &identity,
            &through_organisation,
            eid.clone(),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:unprocessable");
        assert_eq!(problem["field"], "identity_verification.method");
        // The service's own provider, same person, same acr: accepted.
        let (status, view) =
            bearer_call(&w.http, "POST", &identity, &w.token("rccs-a").await, eid).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["identity_verification"]["acr"], EID_ACR);
        w.service.stop().await;
    });
}

/// Four eyes hold against one insider: an RA operator who applies for an
/// organisation (and so becomes its RCCS) cannot review, verify or approve
/// that organisation's request; and even under a one-approval policy an
/// issuance needs two distinct staff people, the one who verified the
/// identity never giving the final approval.
#[test]
fn an_operator_who_applies_never_reaches_issued_alone() {
    let Some(softhsm) =
        support::hsm::isolated("an_operator_who_applies_never_reaches_issued_alone")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let csrs = [
            support::ca::openssl_csr(w.dir.path(), "insider", "rsa:4096"),
            support::ca::openssl_csr(w.dir.path(), "control", "rsa:4096"),
        ];
        let one_approval = |siren: &str, csr: &[u8]| {
            use base64::Engine as _;
            let mut a = application(siren, None);
            a["policy"] = json!("seal-entity");
            a["csr"] = json!(base64::engine::general_purpose::STANDARD.encode(csr));
            a.as_object_mut().unwrap().remove("identity_verification");
            Some(a)
        };
        let forbidden = |name: &str, (status, problem): (u16, Value)| {
            assert_eq!(status, 403, "{name}: {problem}");
            assert_eq!(problem["type"], "urn:sceau:problem:forbidden", "{name}");
        };
        let face_to_face = || Some(json!({ "method": "face_to_face" }));

        // op-1 applies for organisation B and completes his own request.
        let applied = one_approval(SIREN_B, &csrs[0]);
        let (status, view) = w.call("POST", "/ra/v1/requests", "op-1", applied).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["approvals_needed"], 1);
        let id = view["id"].as_str().unwrap().to_owned();
        w.complete(&id, "op-1").await;
        assert_eq!(w.do_move(&id, "op-1", "submit").await.0, 200);
        let identity = format!("/ra/v1/requests/{id}/identity-verification");
        forbidden("own review", w.do_move(&id, "op-1", "start_review").await);
        assert_eq!(w.do_move(&id, "op-2", "start_review").await.0, 200);
        forbidden(
            "own identity",
            w.call("POST", &identity, "op-1", face_to_face()).await,
        );
        forbidden("own approval", w.do_move(&id, "op-1", "approve").await);
        // op-2 alone: he verifies and approves, and that is not enough.
        let (status, view) = w.call("POST", &identity, "op-2", face_to_face()).await;
        assert_eq!(status, 200, "{view}");
        let (status, view) = w.do_move(&id, "op-2", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "in_review", "one staff person: {view}");

        // The control: two staff people, the verifier not approving last.
        let applied = one_approval(SIREN_A, &csrs[1]);
        let (status, view) = w.call("POST", "/ra/v1/requests", "rccs-a", applied).await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        w.complete(&id, "rccs-a").await;
        assert_eq!(w.do_move(&id, "rccs-a", "submit").await.0, 200);
        assert_eq!(w.do_move(&id, "op-1", "start_review").await.0, 200);
        let identity = format!("/ra/v1/requests/{id}/identity-verification");
        assert_eq!(
            w.call("POST", &identity, "op-1", face_to_face()).await.0,
            200
        );
        let (status, view) = w.do_move(&id, "op-1", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "in_review", "the verifier alone: {view}");
        let (status, view) = w.do_move(&id, "op-2", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "issued", "two staff people: {view}");
        w.service.stop().await;
    });
}

/// What each caller gets for each move in each state, written out here (not
/// read from the lifecycle): the RCCS submits from draft and needs
/// information and answers an issued certificate; an RA operator starts the
/// review, asks for information, approves and rejects in review; nobody but
/// the RA issues; the CA administrator, who sees every request, moves none;
/// and the auditor, an agent or legal representative not enrolled, a
/// stranger and another organisation's RCCS do not see the request.
fn expected(who: &str, state: RequestState, attempted: Move) -> u16 {
    use Move::*;
    use RequestState::*;
    match who {
        "rccs-a" => match (state, attempted) {
            (Draft | NeedsInformation, Submit) | (Issued, Accept | Refuse) => 200,
            _ => 409,
        },
        "op-2" => match (state, attempted) {
            (Submitted, StartReview) | (InReview, RequestInformation | Approve | Reject) => 200,
            _ => 409,
        },
        // Whoever neither holds a role in the organisation, nor applied
        // with this request, nor is staff does not see it.
        "rccs-b" | "stranger" | "legal-a" | "agent-a" | "auditor" => 404,
        _ => 403,
    }
}

/// Every move in each of the nine states, over HTTP, by every kind of caller:
/// the exact answer, and a refused move leaves the request and the journal
/// as they were.
#[test]
fn every_move_in_every_state_by_every_caller() {
    let Some(softhsm) = support::hsm::isolated("every_move_in_every_state_by_every_caller") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        assert_eq!(w.apply("rccs-b", SIREN_B, None).await.0, 201);

        // `validated` lasts only while an issuance fails (the sweep retries):
        // the one state set by hand here, from a request in review, with
        // what validation gives (the applicant's RCCS role): past validation
        // the applicant reaches the request through that role.
        let validated = w.submitted("rccs-a", SIREN_A).await;
        let (status, view) = w.do_move(&validated, "op-1", "start_review").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(
            db.execute(
                "UPDATE registration_requests SET state = 'validated' WHERE id = $1",
                vec![support::db::Arg::Text(validated.clone())],
            )
            .await,
            1
        );
        let entity = view["entity"]["id"].as_str().unwrap().to_owned();
        db.execute(
            "INSERT INTO role_assignments (issuer, subject, role, entity_id, created_by, created_at) \
             VALUES ($1, 'rccs-a', 'rccs', $2, 'test', 0)",
            vec![
                support::db::Arg::Text(w.idp.issuer.clone()),
                support::db::Arg::Text(entity),
            ],
        )
        .await;

        async fn build(w: &BackOffice, state: RequestState, validated: &str) -> String {
            let in_review = || async {
                let id = w.submitted("rccs-a", SIREN_A).await;
                assert_eq!(w.do_move(&id, "op-1", "start_review").await.0, 200);
                id
            };
            let then = |id: String, who: &'static str, name: &'static str| async move {
                let (status, view) = w.do_move(&id, who, name).await;
                assert_eq!(status, 200, "{name}: {view}");
                id
            };
            match state {
                RequestState::Draft => {
                    let (status, view) = w.apply("rccs-a", SIREN_A, None).await;
                    assert_eq!(status, 201, "{view}");
                    let id = view["id"].as_str().unwrap().to_owned();
                    w.complete(&id, "rccs-a").await;
                    id
                }
                RequestState::Submitted => w.submitted("rccs-a", SIREN_A).await,
                RequestState::InReview => in_review().await,
                RequestState::NeedsInformation => {
                    then(in_review().await, "op-1", "request_information").await
                }
                RequestState::Rejected => then(in_review().await, "op-1", "reject").await,
                RequestState::Validated => validated.to_owned(),
                RequestState::Issued => w.issued("rccs-a", SIREN_A).await.0,
                RequestState::Accepted => {
                    then(w.issued("rccs-a", SIREN_A).await.0, "rccs-a", "accept").await
                }
                RequestState::Refused => {
                    then(w.issued("rccs-a", SIREN_A).await.0, "rccs-a", "refuse").await
                }
            }
        }
        let callers = [
            "rccs-a", "op-2", "ca-admin", "auditor", "agent-a", "legal-a", "stranger", "rccs-b",
        ];
        let journal = &w.service.state.journal;
        let states = [
            RequestState::Draft,
            RequestState::Submitted,
            RequestState::InReview,
            RequestState::NeedsInformation,
            RequestState::Validated,
            RequestState::Issued,
            RequestState::Accepted,
            RequestState::Refused,
            RequestState::Rejected,
        ];
        for state in states {
            let mut id = build(&w, state, &validated).await;
            for who in callers {
                for attempted in Move::ALL {
                    let (_, before) = w
                        .call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None)
                        .await;
                    assert_eq!(before["state"], state.name(), "{before}");
                    let size = journal.size().await.unwrap();
                    let (status, answer) = w.do_move(&id, who, attempted.name()).await;
                    let context = format!("{state} {attempted} by {who}: {answer}");
                    let wanted = expected(who, state, attempted);
                    assert_eq!(status, wanted, "{context}");
                    if status == 200 {
                        // Used up: a fresh request in this state for the rest.
                        id = build(&w, state, &validated).await;
                        continue;
                    }
                    let slug = match status {
                        403 => "forbidden",
                        404 => "not-found",
                        409 => "conflict",
                        other => panic!("{other}: {context}"),
                    };
                    assert_eq!(
                        answer["type"],
                        format!("urn:sceau:problem:{slug}"),
                        "{context}"
                    );
                    let (_, after) = w
                        .call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None)
                        .await;
                    assert_eq!(after["state"], before["state"], "{context}");
                    assert_eq!(after["version"], before["version"], "{context}");
                    assert_eq!(journal.size().await.unwrap(), size, "journaled: {context}");
                }
            }
        }
        w.service.stop().await;
    });
}

/// The answer to an application is the request as a GET right after shows
/// it: the same moves allowed to the applicant (it once said none, where the
/// GET said `submit`), state and version.
#[test]
fn the_answer_to_apply_is_the_request_as_read_back() {
    let Some(softhsm) = support::hsm::isolated("the_answer_to_apply_is_the_request_as_read_back")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let (status, applied) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{applied}");
        let id = applied["id"].as_str().unwrap();
        let (status, read) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(status, 200, "{read}");
        for field in ["allowed_moves", "state", "version", "approvals_needed"] {
            assert_eq!(applied[field], read[field], "{field}: {applied} / {read}");
        }
        assert_eq!(read["allowed_moves"], json!(["submit"]), "{read}");
        w.service.stop().await;
    });
}

/// A submit that lacks several things names them all in one answer: the
/// terms and each missing document, not one at a time.
#[test]
fn a_submit_names_everything_it_lacks_at_once() {
    let Some(softhsm) = support::hsm::isolated("a_submit_names_everything_it_lacks_at_once") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let (status, applied) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{applied}");
        let id = applied["id"].as_str().unwrap().to_owned();
        let (status, problem) = w.do_move(&id, "rccs-a", "submit").await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(
            problem["type"], "urn:sceau:problem:unprocessable",
            "{problem}"
        );
        assert_eq!(problem["field"], "terms", "{problem}");
        let missing: Vec<&str> = problem["missing"]
            .as_array()
            .unwrap_or_else(|| panic!("no list of what is missing: {problem}"))
            .iter()
            .map(|m| m["field"].as_str().unwrap())
            .collect();
        assert_eq!(missing, ["terms", "documents"], "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        for named in [
            "terms of use",
            "identity_document",
            "registry_extract",
            "mandate",
        ] {
            assert!(detail.contains(named), "{named} not named: {detail}");
        }
        // Nothing moved: still a draft, nothing journaled as a move.
        let (_, read) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(read["state"], "draft", "{read}");
        assert_eq!(read["version"], applied["version"], "{read}");
        // The request says what it lacks before anyone tries, the same list,
        // the missing documents by kind.
        assert_eq!(read["missing"], problem["missing"], "{read}");
        assert_eq!(
            read["missing"][1]["documents"],
            json!(["identity_document", "registry_extract", "mandate"]),
            "{read}"
        );
        w.complete(&id, "rccs-a").await;
        let (_, read) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(read["missing"], json!([]), "{read}");
        let (status, read) = w.do_move(&id, "rccs-a", "submit").await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(
            read["missing"],
            json!([]),
            "nothing is missing outside a draft: {read}"
        );
        w.service.stop().await;
    });
}

/// Anyone may read a policy's terms of use before applying: the version an
/// acceptance names, the text and its SHA-256 (once, only a refused
/// acceptance revealed the version). An unknown policy is a 404 problem.
#[test]
fn a_policys_terms_of_use_are_published() {
    let Some(softhsm) = support::hsm::isolated("a_policys_terms_of_use_are_published") else {
        return;
    };
    support::ca::runtime().block_on(async {
        use sha2::Digest as _;
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        // No token: a client that has not signed in.
        let response = w
            .http
            .get(w.service.url("/policies/seal-ca-managed/terms"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{:?}",
            response.headers()
        );
        let terms: Value = response.json().await.unwrap();
        assert_eq!(terms["policy"], "seal-ca-managed");
        assert_eq!(terms["version"], "1.0", "{terms}");
        let text = terms["text"].as_str().unwrap();
        let on_disk = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies/terms/seal-terms-1.0.md"),
        )
        .unwrap();
        assert_eq!(text, on_disk);
        assert_eq!(
            terms["sha256"],
            hex::encode(sha2::Sha256::digest(text.as_bytes()))
        );
        // The version read is the one an acceptance names.
        let (status, applied) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{applied}");
        let id = applied["id"].as_str().unwrap();
        let (status, view) = w
            .call(
                "POST",
                &format!("/ra/v1/requests/{id}/terms"),
                "rccs-a",
                Some(json!({ "version": terms["version"] })),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        let response = w
            .http
            .get(w.service.url("/policies/no-such-policy/terms"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:sceau:problem:not-found", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("no-such-policy"),
            "{problem}"
        );
        w.service.stop().await;
    });
}
