//! Staff are registered people: four eyes are counted on persons, not on
//! accounts. A staff member is refused on a request whose people include him,
//! whichever account he signs in with; a sign-in acts as staff or for an
//! organisation, never both; approvals name the staff person who gave them;
//! and staff roles a token claims count only for a registered sign-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::back_office::{self, *};
use support::db::Arg;
use support::idp::{Client, OTHER_AUDIENCE};

fn forbidden(what: &str, (status, problem): (u16, Value)) {
    assert_eq!(status, 403, "{what}: {problem}");
    assert_eq!(problem["type"], "urn:sceau:problem:forbidden", "{what}");
}

/// The application for organisation A whose RCCS is Odile Martin.
fn odile_is_the_rccs() -> Value {
    let mut application = application(SIREN_A, None);
    application["rccs"]["given_name"] = json!("Odile");
    application["rccs"]["family_name"] = json!("MARTIN");
    application
}

/// Odile Martin is an RA operator (`op-1` at the service's provider) and the
/// RCCS of organisation A, where she signs in through A's own provider
/// (`odile-a`). Neither account is linked to the other; her identity is.
#[test]
fn the_same_person_through_two_providers_is_refused_as_an_approver() {
    let Some(softhsm) =
        support::hsm::isolated("the_same_person_through_two_providers_is_refused_as_an_approver")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let odile_at_a = Client {
            id: "odile-a",
            certificate_bound: false,
            claims: otp(&["rccs"]),
        };
        let w = back_office::start_with_clients(&softhsm, &db, vec![odile_at_a], |s| {
            let issuer = s.auth.identity_providers[0].issuer.clone();
            s.auth.staff = staff_roster(&issuer, &[("op-1", "Odile", "Martin", "1979-05-02")]);
        })
        .await;
        let (status, view) = w
            .call(
                "POST",
                "/ra/v1/requests",
                "rccs-a",
                Some(odile_is_the_rccs()),
            )
            .await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        let entity = view["entity"]["id"].as_str().unwrap().to_owned();
        w.complete(&id, "rccs-a").await;
        assert_eq!(w.do_move(&id, "rccs-a", "submit").await.0, 200);

        // Organisation A's own provider, through which Odile acts as its RCCS.
        let (status, registered) = w
            .call(
                "POST",
                &format!("/api/v1/entities/{entity}/identity-providers"),
                "op-2",
                Some(json!({
                    "issuer": w.idp.issuer,
                    "audience": OTHER_AUDIENCE,
                    "callers": "people",
                    "allowed": ["odile-a"],
                })),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        let through_a = w.idp.token("odile-a", OTHER_AUDIENCE, None).await;
        let request_url = w.service.url(&format!("/ra/v1/requests/{id}"));
        let (status, seen) = bearer_call(&w.http, "GET", &request_url, &through_a, None).await;
        assert_eq!(status, 200, "Odile reads A's request as its RCCS: {seen}");

        assert_eq!(w.do_move(&id, "op-2", "start_review").await.0, 200);
        let identity = format!("/ra/v1/requests/{id}/identity-verification");
        let (status, problem) = w
            .call(
                "POST",
                &identity,
                "op-2",
                Some(json!({ "method": "face_to_face", "birth_date": "1979-02-30" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "identity_verification.birth_date");
        // op-2 reads Odile's identity document: her birth date is recorded.
        let face_to_face = Some(json!({ "method": "face_to_face", "birth_date": "1979-05-02" }));
        let (status, view) = w
            .call("POST", &identity, "op-2", face_to_face.clone())
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["identity_verification"]["birth_date"], "1979-05-02");
        assert_eq!(
            view["identity_verification"]["attested_by_person"],
            staff_id("op-2")
        );
        let before = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "op-2", None)
            .await
            .1;

        // As staff, Odile neither verifies nor approves her own organisation's request.
        forbidden(
            "Odile verifies",
            w.call("POST", &identity, "op-1", face_to_face).await,
        );
        forbidden("Odile approves", w.do_move(&id, "op-1", "approve").await);
        // Through A's provider she is not staff at all: the move is not hers.
        let moves = w.service.url(&format!("/ra/v1/requests/{id}/moves"));
        let (status, problem) = bearer_call(
            &w.http,
            "POST",
            &moves,
            &through_a,
            Some(json!({ "move": "approve" })),
        )
        .await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:conflict");
        assert_eq!(problem["allowed_moves"], json!([]));
        let after = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "op-2", None)
            .await
            .1;
        assert_eq!(after["state"], "in_review");
        assert_eq!(after["approvals"], json!([]));
        assert_eq!(
            after["version"], before["version"],
            "a refusal changes nothing"
        );
        w.service.stop().await;
    });
}

/// A staff member who holds a role in an organisation signs in as staff: his
/// staff sign-in carries no organisation role and cannot act for it. The
/// approvals of a request name the staff person who gave each.
#[test]
fn a_sign_in_acts_in_one_capacity_and_approvals_name_the_person() {
    let Some(softhsm) =
        support::hsm::isolated("a_sign_in_acts_in_one_capacity_and_approvals_name_the_person")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let (id, view) = w.issued("rccs-a", SIREN_A).await;
        let approvers: Vec<&Value> = view["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["person"])
            .collect();
        assert_eq!(
            approvers,
            [&json!(staff_id("op-1")), &json!(staff_id("op-2"))],
            "{view}"
        );
        let entity = view["entity"]["id"].as_str().unwrap().to_owned();
        let credential = view["certificate"]["credential_id"].as_str().unwrap().to_owned();
        // op-1 is also made an RCCS of A (the service's own seal, say).
        db.execute(
            "INSERT INTO role_assignments (issuer, subject, role, entity_id, created_by, created_at) \
             VALUES ($1, 'op-1', 'rccs', $2, 'test', 0)",
            vec![Arg::Text(w.idp.issuer.clone()), Arg::Text(entity)],
        )
        .await;
        let activation = format!("/api/v1/credentials/{credential}/activation-credentials");
        let (status, list) = w.call("GET", &activation, "rccs-a", None).await;
        assert_eq!(status, 200, "the RCCS: {list}");
        forbidden(
            "staff acting as the RCCS",
            w.call("GET", &activation, "op-1", None).await,
        );
        let (status, view) = w.call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None).await;
        assert_eq!(status, 200, "as staff he still reads requests: {view}");
        w.service.stop().await;
    });
}

/// A token that claims a staff role from a sign-in the roster does not name
/// gives no staff role.
#[test]
fn staff_roles_count_only_for_registered_people() {
    let Some(softhsm) = support::hsm::isolated("staff_roles_count_only_for_registered_people")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |s| {
            let issuer = s.auth.identity_providers[0].issuer.clone();
            let full = staff_roster(&issuer, &[]);
            // op-2 is not on this roster.
            let only_op_1 = json!([{
                "id": staff_id("op-1"),
                "given_name": "Staff",
                "family_name": "op-1",
                "birth_date": "1970-01-01",
                "sign_ins": [{ "issuer": issuer, "subject": "op-1" }],
            }]);
            s.auth.staff = serde_json::from_value(only_op_1).unwrap();
            assert_ne!(s.auth.staff, full);
        })
        .await;
        let id = w.submitted("rccs-a", SIREN_A).await;
        assert_eq!(w.do_move(&id, "op-1", "start_review").await.0, 200);
        let (status, problem) = w.do_move(&id, "op-2", "approve").await;
        assert_eq!(status, 404, "not staff, not a party: {problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:not-found");
        w.service.stop().await;
    });
}
