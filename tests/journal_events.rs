//! The journal's events are evidence, so their bytes must not drift:
//! `tests/golden/journal-events.jsonl` holds entries of every kind the service
//! records, each shape once, as the service wrote them (captured from a run of
//! the whole suite, plus the refusal outcomes no test reaches, shaped as the
//! code writes them). Each must read back and serialise again byte for byte.
#![expect(
    clippy::expect_used,
    reason = "a malformed golden file is a test failure"
)]

use sceau::journal::JournalEvent;

#[test]
fn every_golden_entry_serialises_byte_for_byte() {
    let golden = include_str!("golden/journal-events.jsonl");
    let mut kinds = std::collections::BTreeSet::new();
    for line in golden.lines() {
        let envelope: JournalEvent = serde_json::from_str(line).expect("a golden line is an entry");
        let bytes = serde_json::to_vec(&envelope).expect("encodes");
        assert_eq!(
            String::from_utf8(bytes).expect("UTF-8"),
            line,
            "{}",
            envelope.kind
        );
        kinds.insert(envelope.kind);
    }
    assert_eq!(kinds.len(), 66, "{kinds:?}");
}
