//! The journal's events are evidence, so their bytes never drift:
//! `tests/golden/journal-events.jsonl` holds each shape of every kind once, as
//! the service recorded it before the events were typed (captured from a run
//! of the whole suite, plus the refusal outcomes no test reaches), and each
//! must read back into its typed [`Event`] and serialise again byte for byte. `docs/JOURNAL-EVENTS.md`, the auditors' list
//! of events, is rendered from the same catalogue and must match
//! (`BLESS_GOLDEN=1 cargo test --test journal_events` rewrites it).
#![expect(
    clippy::expect_used,
    reason = "a malformed golden file is a test failure"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use sceau::journal::event::{self, Actor};
use sceau::journal::{Event, JournalEvent};

fn golden() -> Vec<(String, JournalEvent)> {
    include_str!("golden/journal-events.jsonl")
        .lines()
        .map(|line| {
            let envelope = serde_json::from_str(line).expect("a golden line is an entry");
            (line.to_owned(), envelope)
        })
        .collect()
}

#[test]
fn every_kind_reads_back_and_serialises_byte_for_byte() {
    let mut seen = BTreeSet::new();
    for (line, envelope) in golden() {
        let kind = envelope.kind.clone();
        let typed = event::decode(&envelope).unwrap_or_else(|e| panic!("{kind}: {e}"));
        // The actor is recorded as text; any variant recording it will do.
        let actor = Actor::Principal(envelope.actor.clone());
        let (encoded_kind, bytes) = event::encode(&actor, &typed).expect("encodes");
        assert_eq!(encoded_kind, kind);
        assert_eq!(String::from_utf8(bytes).expect("UTF-8"), line, "{kind}");
        seen.insert(kind);
    }
    let declared: BTreeSet<String> = Event::CATALOGUE
        .iter()
        .map(|(kind, _)| (*kind).to_owned())
        .collect();
    let missing: Vec<_> = declared.difference(&seen).collect();
    let unknown: Vec<_> = seen.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "kinds without a golden entry: {missing:?}; golden entries of no kind: {unknown:?}"
    );
}

#[test]
fn a_changed_field_does_not_serialise_as_recorded() {
    let (line, envelope) = golden()
        .into_iter()
        .find(|(_, e)| e.kind == "certificate.revoked")
        .expect("the golden file has a revocation");
    let mut changed = envelope.clone();
    changed.details["reason"] = serde_json::json!("superseded");
    let typed = event::decode(&changed).expect("still a revocation");
    let (_, bytes) = event::encode(&Actor::Principal(envelope.actor), &typed).expect("encodes");
    assert_ne!(String::from_utf8(bytes).expect("UTF-8"), line);
    let mut unknown = envelope.details.clone();
    unknown["smuggled"] = serde_json::json!(1);
    let with_unknown = JournalEvent {
        details: unknown,
        ..changed
    };
    let typed = event::decode(&with_unknown).expect("unknown fields are ignored on read");
    let (_, bytes) = event::encode(&Actor::Service, &typed).expect("encodes");
    assert!(
        !String::from_utf8(bytes)
            .expect("UTF-8")
            .contains("smuggled")
    );
}

/// The auditors' page: every kind, what it records and its fields.
fn render() -> String {
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, entry) in golden() {
        let names = fields.entry(entry.kind).or_default();
        if let Some(details) = entry.details.as_object() {
            names.extend(details.keys().cloned());
        }
    }
    let mut page = String::from(
        "# Journal events\n\n\
         Every entry of the audit journal is one of these kinds. An entry's payload is\n\
         `{\"kind\":…,\"actor\":…,\"details\":…}`; the details' keys are in lexical order.\n\
         The kinds and their payload types are `src/journal/event.rs` and its\n\
         children; `tests/journal_events.rs` renders this page from them and fails\n\
         when it is out of date. Times are RFC 3339 in UTC, to the second.\n\n\
         | Kind | What it records | Details |\n|---|---|---|\n",
    );
    for (kind, doc) in Event::CATALOGUE {
        let names: Vec<String> = fields
            .get(*kind)
            .map(|n| n.iter().map(|name| format!("`{name}`")).collect())
            .unwrap_or_default();
        let names = names.join(", ");
        let doc = doc.trim().replace('\n', " ");
        page.push_str(&format!("| `{kind}` | {doc} | {names} |\n"));
    }
    page
}

#[test]
fn the_auditors_list_of_events_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/JOURNAL-EVENTS.md");
    let rendered = render();
    if std::env::var_os("BLESS_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).expect("docs/JOURNAL-EVENTS.md is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/JOURNAL-EVENTS.md is out of date: run `BLESS_GOLDEN=1 cargo test --test journal_events`"
    );
}
