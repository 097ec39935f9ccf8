//! The RA's journal never records as done a change the database rolled back:
//! each entry announcing a change is followed by its outcome, `ra.applied`
//! or `ra.not_applied` with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::back_office::{self, *};

/// The journal's entries from `from` on, notices left out.
async fn journal_since(w: &BackOffice, from: u64) -> Vec<(u64, String, Value)> {
    support::journal::entries_since(&w.service.state.journal, from, &["notice.sent"]).await
}

#[test]
fn a_change_the_database_refuses_is_journaled_as_not_applied() {
    let Some(softhsm) =
        support::hsm::isolated("a_change_the_database_refuses_is_journaled_as_not_applied")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = back_office::start(&softhsm, &db, |_| {}).await;
        let (status, view) = w.apply("rccs-a", SIREN_A, None).await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        w.complete(&id, "rccs-a").await;

        // The database refuses every change of a request from now on.
        db.execute(
            "CREATE TRIGGER refuse_request_updates BEFORE UPDATE ON registration_requests \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            vec![],
        )
        .await;
        let before = w.service.state.journal.size().await.unwrap();
        let (status, problem) = w.do_move(&id, "rccs-a", "submit").await;
        assert_eq!(status, 500, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:internal");
        let entries = journal_since(&w, before).await;
        let kinds: Vec<&str> = entries.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            vec!["request.moved", "ra.not_applied"],
            "{entries:?}"
        );
        assert_eq!(entries[1].2["intents"], json!([entries[0].0]));
        assert!(
            entries[1].2["reason"]
                .as_str()
                .unwrap()
                .contains("refused by the test"),
            "{entries:?}"
        );
        let (_, view) = w
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(view["state"], "draft", "nothing moved: {view}");

        // Once the database accepts it again, the move is applied and says so.
        db.execute("DROP TRIGGER refuse_request_updates", vec![])
            .await;
        let before = w.service.state.journal.size().await.unwrap();
        let (status, view) = w.do_move(&id, "rccs-a", "submit").await;
        assert_eq!(status, 200, "{view}");
        let entries = journal_since(&w, before).await;
        let kinds: Vec<&str> = entries.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(kinds, vec!["request.moved", "ra.applied"], "{entries:?}");
        assert_eq!(entries[1].2["intents"], json!([entries[0].0]));
        w.service.stop().await;
    });
}
