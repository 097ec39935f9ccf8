//! The audit journal on SQLite and PostgreSQL: an untouched journal verifies; each kind
//! of tampering is reported with its index; proofs check out with a verifier written
//! here; key rotation keeps old checkpoints verifiable; purged payloads keep the tree.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

mod support;

use std::path::Path;
use std::sync::Arc;

use sceau::journal::entry::{entry_leaf_hash, sha256};
use sceau::journal::{self, Hash, ProblemKind, SoftwareSigner, VerifyReport};
use sceau::store::Store;
use sha2::{Digest, Sha256};
use support::db::{Arg, TestDb, on_both_backends};

use support::journal::{TESTER, event, open, twenty_entries};

async fn check(store: &Store, dir: &Path) -> VerifyReport {
    let report = journal::verify(store, &dir.join("checkpoints"))
        .await
        .unwrap();
    eprintln!("{report}");
    report
}

async fn untouched_journal_verifies(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    let report = check(&store, &dir).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.entries, 20);
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.external_checkpoints, 2);
    assert!(report.to_string().starts_with("journal verifies"));
}
on_both_backends!(
    untouched_journal_verifies_on_sqlite,
    untouched_journal_verifies_on_postgres,
    untouched_journal_verifies
);

/// A batch lands in order, contiguous, each entry with its own payload, and
/// the journal verifies; a bad kind refuses the batch before anything lands.
async fn a_batch_is_appended_in_order(db: TestDb) {
    let store = db.store().await;
    let dir = db.dir.path().to_owned();
    let journal = open(&store, &dir, Arc::new(SoftwareSigner::generate())).await;
    assert_eq!(journal.append(&TESTER, event(0)).await.unwrap(), 0);
    let indexes = journal
        .append_all(&TESTER, (1..=40).map(event).collect())
        .await
        .unwrap();
    assert_eq!(indexes, (1..=40).collect::<Vec<u64>>());
    for index in [1u64, 17, 40] {
        let entry = journal.entry(index).await.unwrap();
        let payload = entry.event().unwrap().unwrap();
        assert_eq!(payload.details["n"], index, "entry {index}");
    }
    assert_eq!(journal.size().await.unwrap(), 41);
    journal.checkpoint().await.unwrap();
    journal.shutdown().await.unwrap();
    let report = check(&store, &dir).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.entries, 41);
}
on_both_backends!(
    a_batch_is_appended_in_order_on_sqlite,
    a_batch_is_appended_in_order_on_postgres,
    a_batch_is_appended_in_order
);

async fn a_changed_byte_is_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    let mut payload = store
        .journal_row(17)
        .await
        .unwrap()
        .unwrap()
        .payload
        .unwrap();
    payload[5] ^= 0x01;
    db.execute(
        "UPDATE journal_entries SET payload = $1 WHERE seq = 17",
        vec![Arg::Blob(payload)],
    )
    .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Modified, 17), "{report}");
    assert!(
        report
            .to_string()
            .contains("entry 17: payload does not match its hash (modified)"),
        "{report}"
    );
    assert_eq!(report.problems.len(), 1, "{report}");
}
on_both_backends!(
    a_changed_byte_is_reported_on_sqlite,
    a_changed_byte_is_reported_on_postgres,
    a_changed_byte_is_reported
);

async fn a_changed_field_is_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    db.execute(
        "UPDATE journal_entries SET kind = 'test.evenT' WHERE seq = 4",
        vec![],
    )
    .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Modified, 4), "{report}");
    // Both checkpoints cover entry 4.
    assert!(report.has(ProblemKind::Checkpoint, 10), "{report}");
}
on_both_backends!(
    a_changed_field_is_reported_on_sqlite,
    a_changed_field_is_reported_on_postgres,
    a_changed_field_is_reported
);

async fn a_deleted_entry_is_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    db.execute("DELETE FROM journal_entries WHERE seq = 5", vec![])
        .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Deleted, 5), "{report}");
    assert!(
        report.to_string().contains("entry 5: missing (deleted)"),
        "{report}"
    );
}
on_both_backends!(
    a_deleted_entry_is_reported_on_sqlite,
    a_deleted_entry_is_reported_on_postgres,
    a_deleted_entry_is_reported
);

async fn swapped_entries_are_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    for (from, to) in [(3, 1_000_000), (7, 3), (1_000_000, 7)] {
        let n = db
            .execute(
                "UPDATE journal_entries SET seq = $1 WHERE seq = $2",
                vec![Arg::Int(to), Arg::Int(from)],
            )
            .await;
        assert_eq!(n, 1);
    }
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Reordered, 3), "{report}");
    assert!(report.has(ProblemKind::Reordered, 7), "{report}");
    assert!(
        report
            .to_string()
            .contains("entry 3: holds the entry recorded at index 7"),
        "{report}"
    );
}
on_both_backends!(
    swapped_entries_are_reported_on_sqlite,
    swapped_entries_are_reported_on_postgres,
    swapped_entries_are_reported
);

async fn an_inserted_entry_is_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    // Make room at 5, then forge an entry there that chains correctly to entry 4.
    db.execute(
        "UPDATE journal_entries SET seq = seq + 1000000 WHERE seq >= 5",
        vec![],
    )
    .await;
    db.execute(
        "UPDATE journal_entries SET seq = seq - 999999 WHERE seq >= 1000000",
        vec![],
    )
    .await;
    let before = store.journal_row(4).await.unwrap().unwrap();
    let prev: Hash = before.leaf_hash.as_slice().try_into().unwrap();
    let payload = br#"{"actor":"intruder","details":{},"kind":"test.event"}"#.to_vec();
    let payload_sha = sha256(&payload);
    let at = before.recorded_at_us + 1;
    let leaf = entry_leaf_hash(5, at, &prev, &payload_sha, "test.event");
    db.execute(
        "INSERT INTO journal_entries (seq, recorded_at, kind, payload, payload_sha256, prev_leaf_hash, leaf_hash) \
         VALUES (5, $1, 'test.event', $2, $3, $4, $5)",
        vec![Arg::Int(at), Arg::Blob(payload), Arg::Blob(payload_sha.to_vec()), Arg::Blob(prev.to_vec()), Arg::Blob(leaf.to_vec())],
    )
    .await;
    db.execute("UPDATE journal_head SET next_seq = 21", vec![])
        .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Inserted, 5), "{report}");
    assert!(report.has(ProblemKind::Reordered, 6), "{report}");
}
on_both_backends!(
    an_inserted_entry_is_reported_on_sqlite,
    an_inserted_entry_is_reported_on_postgres,
    an_inserted_entry_is_reported
);

async fn a_truncated_log_is_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    db.execute("DELETE FROM journal_entries WHERE seq >= 15", vec![])
        .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Truncated, 15), "{report}");
    assert!(
        report
            .to_string()
            .contains("entry 15: missing: the head records 20 entries"),
        "{report}"
    );
}
on_both_backends!(
    a_truncated_log_is_reported_on_sqlite,
    a_truncated_log_is_reported_on_postgres,
    a_truncated_log_is_reported
);

async fn truncating_log_and_checkpoints_together_is_caught_outside(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    // A careful intruder: cut the log, fix the head, drop the checkpoints that saw more.
    db.execute("DELETE FROM journal_entries WHERE seq >= 15", vec![])
        .await;
    db.execute(
        "UPDATE journal_head SET next_seq = 15, \
         last_leaf_hash = (SELECT leaf_hash FROM journal_entries WHERE seq = 14)",
        vec![],
    )
    .await;
    db.execute(
        "DELETE FROM journal_checkpoints WHERE tree_size > 15",
        vec![],
    )
    .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Truncated, 15), "{report}");
    // Only the external checkpoint can have seen it.
    for problem in &report.problems {
        assert!(problem.detail.contains("external checkpoint"), "{report}");
    }
}
on_both_backends!(
    truncating_log_and_checkpoints_together_is_caught_outside_on_sqlite,
    truncating_log_and_checkpoints_together_is_caught_outside_on_postgres,
    truncating_log_and_checkpoints_together_is_caught_outside
);

async fn a_forged_checkpoint_signature_is_reported(db: TestDb) {
    let (store, dir) = twenty_entries(&db).await;
    db.execute(
        "UPDATE journal_checkpoints SET signed_at = signed_at + 1 WHERE tree_size = 10",
        vec![],
    )
    .await;
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Checkpoint, 10), "{report}");
    assert!(
        report.to_string().contains("signature does not verify"),
        "{report}"
    );
}
on_both_backends!(
    a_forged_checkpoint_signature_is_reported_on_sqlite,
    a_forged_checkpoint_signature_is_reported_on_postgres,
    a_forged_checkpoint_signature_is_reported
);

async fn purged_payloads_keep_the_tree(db: TestDb) {
    let store = db.store().await;
    let dir = db.dir.path().to_owned();
    let journal = open(&store, &dir, Arc::new(SoftwareSigner::generate())).await;
    for n in 0..8 {
        journal.append(&TESTER, event(n)).await.unwrap();
    }
    let before = journal.checkpoint().await.unwrap();
    journal
        .purge_payload(3, &sceau::journal::Actor::Task("retention"))
        .await
        .unwrap();
    let entry = journal.entry(3).await.unwrap();
    assert!(entry.payload.is_none());
    let purge_record = journal.entry(8).await.unwrap();
    assert_eq!(purge_record.kind, "journal.payload_purged");
    assert_eq!(journal.root(8).await.unwrap(), before.root_hash);
    journal.shutdown().await.unwrap();
    let report = check(&store, &dir).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.purged, 1);
}
on_both_backends!(
    purged_payloads_keep_the_tree_on_sqlite,
    purged_payloads_keep_the_tree_on_postgres,
    purged_payloads_keep_the_tree
);

async fn rotated_keys_keep_old_checkpoints_verifiable(db: TestDb) {
    let store = db.store().await;
    let dir = db.dir.path().to_owned();
    let old = Arc::new(SoftwareSigner::generate());
    let new = Arc::new(SoftwareSigner::generate());
    let journal = open(&store, &dir, old.clone()).await;
    for n in 0..5 {
        journal.append(&TESTER, event(n)).await.unwrap();
    }
    let first = journal.checkpoint().await.unwrap();
    assert_eq!(
        first.key_id,
        sceau::journal::CheckpointSigner::key_id(old.as_ref())
    );
    journal.rotate_key(new.clone()).await.unwrap();
    assert_eq!(
        journal.key_id(),
        sceau::journal::CheckpointSigner::key_id(new.as_ref())
    );
    for n in 5..10 {
        journal.append(&TESTER, event(n)).await.unwrap();
    }
    let last = journal.checkpoint().await.unwrap();
    assert_eq!(last.key_id, journal.key_id());
    journal.shutdown().await.unwrap();

    let checkpoints = store.journal_checkpoints().await.unwrap();
    let signers: std::collections::HashSet<_> =
        checkpoints.iter().map(|c| c.key_id.clone()).collect();
    assert_eq!(signers.len(), 2, "{checkpoints:?}");
    assert_eq!(
        std::fs::read_dir(dir.join("checkpoints/keys"))
            .unwrap()
            .count(),
        2
    );
    let report = check(&store, &dir).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.checkpoints, 4); // 5 (old), 6 (old, after the rotation entry), 6 (new), 11 (new)

    // Without the old key, its checkpoints no longer verify: the check is real.
    let old_id = first.key_id.clone();
    db.execute(
        "DELETE FROM journal_checkpoints WHERE key_id = $1",
        vec![Arg::Text(old_id.clone())],
    )
    .await;
    db.execute(
        "DELETE FROM journal_keys WHERE key_id = $1",
        vec![Arg::Text(old_id.clone())],
    )
    .await;
    std::fs::remove_file(dir.join(format!("checkpoints/keys/{old_id}.der"))).unwrap();
    let report = check(&store, &dir).await;
    assert!(report.has(ProblemKind::Checkpoint, 5), "{report}");
    assert!(report.to_string().contains("which is unknown"), "{report}");
}
on_both_backends!(
    rotated_keys_keep_old_checkpoints_verifiable_on_sqlite,
    rotated_keys_keep_old_checkpoints_verifiable_on_postgres,
    rotated_keys_keep_old_checkpoints_verifiable
);

// An independent verifier, written from RFC 9162 §2.1.1 / 2.1.3 / 2.1.4 by recursion
// on the tree shape, not by the bit arithmetic the library uses.

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

fn split(n: u64) -> u64 {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// The root a leaf and its audit path lead to (the path's last element is the top sibling).
fn root_from_path(index: u64, size: u64, leaf: Hash, path: &[Hash]) -> Option<Hash> {
    if size == 1 {
        return path.is_empty().then_some(leaf);
    }
    let k = split(size);
    let (sibling, rest) = path.split_last()?;
    Some(if index < k {
        node(&root_from_path(index, k, leaf, rest)?, sibling)
    } else {
        node(sibling, &root_from_path(index - k, size - k, leaf, rest)?)
    })
}

/// The (old, new) roots a consistency proof rebuilds, following SUBPROOF's recursion.
fn roots_from_consistency(
    m: u64,
    n: u64,
    proof: &[Hash],
    complete: bool,
    old_root: Hash,
) -> Option<(Hash, Hash)> {
    if m == n {
        return match (complete, proof) {
            (true, []) => Some((old_root, old_root)),
            (false, [h]) => Some((*h, *h)),
            _ => None,
        };
    }
    let k = split(n);
    let (sibling, rest) = proof.split_last()?;
    if m <= k {
        let (old, new) = roots_from_consistency(m, k, rest, complete, old_root)?;
        Some((old, node(&new, sibling)))
    } else {
        let (old, new) = roots_from_consistency(m - k, n - k, rest, false, old_root)?;
        Some((node(sibling, &old), node(sibling, &new)))
    }
}

async fn proofs_verify_independently(db: TestDb) {
    let store = db.store().await;
    let dir = db.dir.path().to_owned();
    let journal = open(&store, &dir, Arc::new(SoftwareSigner::generate())).await;
    for n in 0..13 {
        journal.append(&TESTER, event(n)).await.unwrap();
    }
    let mut leaves = Vec::new();
    for i in 0..13 {
        leaves.push(journal.leaf_hash(i).await.unwrap());
    }
    let signed = journal.checkpoint().await.unwrap();
    assert_eq!(signed.root_hash, mth(&leaves));
    for size in 1..=13u64 {
        let root = journal.root(size).await.unwrap();
        assert_eq!(root, mth(&leaves[..size as usize]), "size {size}");
        for index in 0..size {
            let proof = journal.inclusion_proof(index, size).await.unwrap();
            assert_eq!(
                root_from_path(index, size, leaves[index as usize], &proof),
                Some(root),
                "{index} in {size}"
            );
            let wrong = root_from_path(index, size, leaves[((index + 1) % 13) as usize], &proof);
            assert_ne!(wrong, Some(root));
        }
        for old in 1..=size {
            let proof = journal.consistency_proof(old, size).await.unwrap();
            let old_root = mth(&leaves[..old as usize]);
            assert_eq!(
                roots_from_consistency(old, size, &proof, true, old_root),
                Some((old_root, root)),
                "{old} to {size}"
            );
        }
    }
    assert!(journal.inclusion_proof(13, 13).await.is_err());
    assert!(journal.inclusion_proof(0, 14).await.is_err());
    assert!(journal.consistency_proof(0, 5).await.is_err());
    journal.shutdown().await.unwrap();
    assert!(
        journal.append(&TESTER, event(99)).await.is_err(),
        "appends after shutdown must fail"
    );
}
on_both_backends!(
    proofs_verify_independently_on_sqlite,
    proofs_verify_independently_on_postgres,
    proofs_verify_independently
);

/// An inclusion proof comes from the stored hash tiles: it reads a few
/// hundred hashes at most, not every leaf of the tree (20,000 here), and it
/// is the proof the whole tree gives.
async fn proofs_read_tiles_not_every_leaf(db: TestDb) {
    let store = db.store().await;
    let dir = db.dir.path().to_owned();
    let journal = open(&store, &dir, Arc::new(SoftwareSigner::generate())).await;
    const SIZE: u64 = 20_000;
    for chunk in 0..(SIZE / 1000) {
        let events = (0..1000).map(|n| event(chunk * 1000 + n)).collect();
        journal.append_all(&TESTER, events).await.unwrap();
    }
    // The schedule's checkpoint: it also lays the tiles down.
    let signed = journal.checkpoint().await.unwrap();
    assert_eq!(signed.tree_size, SIZE);
    let leaves = store.journal_leaf_hashes(0, SIZE).await.unwrap();
    for index in [0, 1, 255, 256, 4_097, 12_345, 19_998, SIZE - 1] {
        let before = journal.hashes_read();
        let proof = journal.inclusion_proof(index, SIZE).await.unwrap();
        let read = journal.hashes_read() - before;
        assert!(read <= 1_100, "{read} hashes read for the proof of {index}");
        assert_eq!(
            root_from_path(index, SIZE, leaves[index as usize], &proof),
            Some(signed.root_hash),
            "the proof of {index}"
        );
        // Against a smaller tree too (the right edge is not a whole tile).
        let smaller = 19_001;
        if index < smaller {
            let proof = journal.inclusion_proof(index, smaller).await.unwrap();
            assert_eq!(
                root_from_path(index, smaller, leaves[index as usize], &proof),
                Some(mth(&leaves[..smaller as usize])),
                "the proof of {index} in {smaller}"
            );
        }
    }
    journal.shutdown().await.unwrap();
}
on_both_backends!(
    proofs_read_tiles_not_every_leaf_on_sqlite,
    proofs_read_tiles_not_every_leaf_on_postgres,
    proofs_read_tiles_not_every_leaf
);
