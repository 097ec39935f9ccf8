//! `sceau audit verify`, the command auditors run: each kind of tampering makes it
//! exit non-zero and name the entry's index; an untouched journal verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::app::audit_verify;
use support::db::{Arg, TestDb, on_both_backends};
use support::journal::twenty_entries;

/// Each scenario: SQL that tampers, and what the report must say.
const SCENARIOS: &[(&str, &[&str], &[&str])] = &[
    (
        "one changed byte",
        &[
            "UPDATE journal_entries SET payload = CAST(REPLACE(CAST(payload AS TEXT), 'tester', 'testor') AS BLOB) WHERE seq = 12",
        ],
        &["entry 12"],
    ),
    (
        "one deleted entry",
        &["DELETE FROM journal_entries WHERE seq = 5"],
        &["entry 5"],
    ),
    (
        "two swapped entries",
        &[
            "UPDATE journal_entries SET seq = 1000000 WHERE seq = 3",
            "UPDATE journal_entries SET seq = 3 WHERE seq = 7",
            "UPDATE journal_entries SET seq = 7 WHERE seq = 1000000",
        ],
        &["entry 3", "entry 7"],
    ),
    (
        "a truncated log",
        &["DELETE FROM journal_entries WHERE seq >= 15"],
        &["entry 15"],
    ),
    (
        "log, head and database checkpoints truncated together",
        &[
            "DELETE FROM journal_entries WHERE seq >= 15",
            "UPDATE journal_head SET next_seq = 15, last_leaf_hash = (SELECT leaf_hash FROM journal_entries WHERE seq = 14)",
            "DELETE FROM journal_checkpoints WHERE tree_size > 15",
        ],
        &["15"],
    ),
];

async fn every_tampering_is_named(db: TestDb) {
    for (name, statements, expected) in SCENARIOS {
        // A fresh database per scenario, of the backend this variant runs on.
        let db = if db.is_postgres() {
            support::db::postgres().await.unwrap()
        } else {
            support::db::sqlite()
        };
        let (store, dir) = twenty_entries(&db).await;
        store.close().await;
        let clean = audit_verify(&db, &dir);
        assert!(
            clean.status.success(),
            "{name}: untouched journal: {}{}",
            String::from_utf8_lossy(&clean.stdout),
            String::from_utf8_lossy(&clean.stderr)
        );
        for statement in *statements {
            let sql = if db.is_postgres() {
                statement.replace(
                        "CAST(REPLACE(CAST(payload AS TEXT), 'tester', 'testor') AS BLOB)",
                        "convert_to(replace(convert_from(payload, 'UTF8'), 'tester', 'testor'), 'UTF8')",
                    )
            } else {
                statement.to_string()
            };
            db.execute(&sql, Vec::<Arg>::new()).await;
        }
        let tampered = audit_verify(&db, &dir);
        let report = String::from_utf8_lossy(&tampered.stdout);
        assert_eq!(tampered.status.code(), Some(1), "{name}: {report}");
        for needle in *expected {
            assert!(
                report.contains(needle),
                "{name}: expected {needle:?} in:\n{report}"
            );
        }
    }
}

on_both_backends!(
    audit_verify_names_each_tampering,
    audit_verify_names_each_tampering_on_postgres,
    every_tampering_is_named
);
