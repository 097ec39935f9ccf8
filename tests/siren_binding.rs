//! Who an organisation belongs to, over HTTP: applying for a SIREN takes
//! nothing. Competing applications reach the RA, the applicant holds a role
//! only once the RA validates his request, and an RA operator withdraws a
//! role given in error (journaled) so that the SIREN is free again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::back_office::{self, *};
use support::db::{Arg, TestDb};
use uuid::Uuid;

/// The roles held in organisation `entity`, as (subject, role): read from the
/// database, as an auditor would.
async fn holders(db: &TestDb, entity: &str) -> Vec<(String, String)> {
    db.text_rows(
        "SELECT subject, role FROM role_assignments WHERE entity_id = $1 ORDER BY subject, role",
        vec![Arg::Text(entity.to_owned())],
    )
    .await
    .into_iter()
    .map(|row| (row[0].clone(), row[1].clone()))
    .collect()
}

/// The kinds and details of the journal's entries from `from` on.
async fn journal_since(w: &BackOffice, from: u64) -> Vec<(String, Value)> {
    support::journal::entries_since(&w.service.state.journal, from, &[])
        .await
        .into_iter()
        .map(|(_, kind, details)| (kind, details))
        .collect()
}

fn problem_type(problem: &Value) -> &str {
    problem["type"].as_str().unwrap_or("(none)")
}

#[test]
fn a_siren_is_bound_only_when_the_ra_validates_and_a_wrong_binding_is_withdrawn() {
    let Some(softhsm) = support::hsm::isolated(
        "a_siren_is_bound_only_when_the_ra_validates_and_a_wrong_binding_is_withdrawn",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;

        // rccs-b squats organisation A's SIREN, under a name of his own.
        let mut squat = application(SIREN_A, None);
        squat["organisation"]["legal_name"] = json!("Squat SARL");
        let (status, squatted) = w
            .call("POST", "/ra/v1/requests", "rccs-b", Some(squat))
            .await;
        assert_eq!(status, 201, "{squatted}");
        let squatted_id = squatted["id"].as_str().unwrap().to_owned();
        let entity = squatted["entity"]["id"].as_str().unwrap().to_owned();
        assert_eq!(squatted["entity"]["legal_name"], "Squat SARL");
        assert_eq!(holders(&db, &entity).await, vec![], "applying binds no one");

        // The real company applies too: not 409, a competing application.
        let (status, real) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "the SIREN is not taken by applying: {real}");
        let real_id = real["id"].as_str().unwrap().to_owned();
        assert_eq!(real["entity"]["id"], entity.as_str(), "one organisation");
        assert_eq!(real["entity"]["legal_name"], "Alpha Factures SA");
        assert_eq!(
            squatted["allowed_moves"],
            json!(["submit"]),
            "the applicant acts as the RCCS of his request: {squatted}"
        );

        // Each applicant reaches his own request only.
        let (status, problem) = w
            .call("GET", &format!("/ra/v1/requests/{real_id}"), "rccs-b", None)
            .await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:not-found");
        let (status, page) = w.call("GET", "/ra/v1/requests", "rccs-b", None).await;
        assert_eq!(status, 200, "{page}");
        let listed: Vec<&str> = page["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, vec![squatted_id.as_str()]);

        // Both complete and submit; the RA sees both and decides.
        for (id, who) in [(&squatted_id, "rccs-b"), (&real_id, "rccs-a")] {
            w.complete(id, who).await;
            let (status, view) = w.do_move(id, who, "submit").await;
            assert_eq!(status, 200, "{who}: {view}");
            assert_eq!(w.do_move(id, "op-1", "start_review").await.0, 200);
        }
        let (status, page) = w
            .call("GET", "/ra/v1/requests?state=in_review", "op-1", None)
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["requests"].as_array().unwrap().len(), 2, "{page}");
        let (status, view) = w.do_move(&squatted_id, "op-1", "reject").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "rejected");
        assert_eq!(
            holders(&db, &entity).await,
            vec![],
            "a rejection binds no one"
        );

        assert_eq!(w.do_move(&real_id, "op-1", "approve").await.0, 200);
        let (status, view) = w.do_move(&real_id, "op-2", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "issued", "{view}");
        assert_eq!(
            holders(&db, &entity).await,
            vec![("rccs-a".to_owned(), "rccs".to_owned())],
            "validation binds the applicant, and him only"
        );
        let stored = db
            .text_rows(
                "SELECT legal_name FROM entities WHERE id = $1",
                vec![Arg::Text(entity.clone())],
            )
            .await;
        assert_eq!(
            stored,
            vec![vec!["Alpha Factures SA".to_owned()]],
            "the organisation is what the validated request declared"
        );
        let certificate = view["certificate"]["pem"].as_str().unwrap();
        let subject = {
            use x509_cert::der::DecodePem as _;
            x509_cert::Certificate::from_pem(certificate.as_bytes())
                .unwrap()
                .tbs_certificate
                .subject
                .to_string()
        };
        assert!(
            subject.contains("O=Alpha Factures SA") && !subject.contains("Squat"),
            "the certificate names the validated organisation: {subject}"
        );

        // Now the SIREN is bound: the squatter cannot apply again.
        let (status, problem) = w.apply("rccs-b", SIREN_A, None).await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:conflict");

        // A role given in error: an RA operator withdraws it, journaled.
        let person = view["persons"]["rccs"]["id"].as_str().unwrap().to_owned();
        let withdrawal = format!("/ra/v1/persons/{person}/role-withdrawal");
        let reason = || Some(json!({ "reason": "the registry extract names another RCCS" }));
        let (status, problem) = w.call("POST", &withdrawal, "rccs-a", reason()).await;
        assert_eq!(status, 403, "not staff: {problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:forbidden");
        let (status, problem) = w
            .call("POST", &withdrawal, "op-1", Some(json!({ "reason": " " })))
            .await;
        assert_eq!(status, 422, "no reason: {problem}");
        assert_eq!(problem["field"], "reason");
        let unknown = format!("/ra/v1/persons/{}/role-withdrawal", Uuid::new_v4());
        let (status, problem) = w.call("POST", &unknown, "op-1", reason()).await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:not-found");

        let before = w.service.state.journal.size().await.unwrap();
        let (status, withdrawn) = w.call("POST", &withdrawal, "op-1", reason()).await;
        assert_eq!(status, 200, "{withdrawn}");
        assert_eq!(withdrawn["withdrawn"], json!(["rccs"]));
        assert_eq!(holders(&db, &entity).await, vec![], "nothing held any more");
        let entries = journal_since(&w, before).await;
        let kinds: Vec<&str> = entries.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(kinds, vec!["role.withdrawing", "role.withdrawn"]);
        let details = &entries[1].1["withdrawal"];
        assert_eq!(details["person"], person.as_str());
        assert_eq!(details["subject"], "rccs-a");
        assert_eq!(details["roles"], json!(["rccs"]));
        assert_eq!(details["reason"], "the registry extract names another RCCS");
        let (status, problem) = w.call("POST", &withdrawal, "op-1", reason()).await;
        assert_eq!(status, 409, "withdrawn already: {problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:conflict");

        // The withdrawn RCCS acts for the organisation no more; the SIREN
        // is free for whoever the RA validates next.
        let serial = view["certificate"]["serial"].as_str().unwrap();
        let (status, problem) = w
            .call(
                "POST",
                &format!("/ra/v1/certificates/{serial}/renewal"),
                "rccs-a",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:forbidden");
        // Nor through the request he applied with: past validation it is the
        // organisation's, reached through a role he no longer holds.
        let (status, problem) = w.do_move(&real_id, "rccs-a", "accept").await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:not-found");
        let (status, problem) = w
            .call("GET", &format!("/ra/v1/requests/{real_id}"), "rccs-a", None)
            .await;
        assert_eq!(status, 404, "{problem}");
        let (status, still) = w
            .call("GET", &format!("/ra/v1/requests/{real_id}"), "op-1", None)
            .await;
        assert_eq!(status, 200, "{still}");
        assert_eq!(still["state"], "issued", "not accepted: {still}");
        let (status, view) = w.apply("rccs-b", SIREN_A, None).await;
        assert_eq!(status, 201, "the SIREN is free again: {view}");
        w.service.stop().await;
    });
}

/// An RA operator who applies for an organisation holds no role in it, yet is
/// a party to his request: he does not review it (a guard for the binding at
/// validation: before it, roles alone no longer say who is a party).
#[test]
fn an_applicant_operator_is_a_party_before_holding_any_role() {
    let Some(softhsm) =
        support::hsm::isolated("an_applicant_operator_is_a_party_before_holding_any_role")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let mut applied = application(SIREN_B, None);
        applied
            .as_object_mut()
            .unwrap()
            .remove("identity_verification");
        let (status, view) = w
            .call("POST", "/ra/v1/requests", "op-1", Some(applied))
            .await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        w.complete(&id, "op-1").await;
        assert_eq!(w.do_move(&id, "op-1", "submit").await.0, 200);
        let (status, view) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None)
            .await;
        assert_eq!(status, 200, "{view}");
        let entity = view["entity"]["id"].as_str().unwrap().to_owned();
        assert_eq!(holders(&db, &entity).await, vec![]);
        let (status, problem) = w.do_move(&id, "op-1", "start_review").await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem_type(&problem), "urn:sceau:problem:forbidden");
        w.service.stop().await;
    });
}
