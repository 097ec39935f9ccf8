//! Durability of the journal across processes: SIGKILL in the middle of 200 concurrent
//! appends loses nothing that was acknowledged, and two processes appending to one
//! database make one log with no gap and no fork.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use sceau::config::JournalSettings;
use sceau::journal::{self, Journal, SoftwareSigner};
use support::db::{TestDb, on_both_backends};

const LOAD: &str = env!("CARGO_BIN_EXE_journal-load");

fn spawn_load(db: &TestDb, checkpoints: &Path, count: u64, concurrency: u64) -> Child {
    Command::new(LOAD)
        .args(["--database-url", &db.url])
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .args(["--count", &count.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn parse(line: &str) -> u64 {
    line.strip_prefix("appended ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output line {line:?}"))
}

async fn sigkill_loses_no_acknowledged_append(db: TestDb) {
    // Migrations first, so the child starts on a ready schema.
    let store = db.store().await;
    let checkpoints = db.dir.path().join("checkpoints");
    let mut child = spawn_load(&db, &checkpoints, 10_000_000, 200);
    let stdout = child.stdout.take().unwrap();
    let written = checkpoints.clone();
    let reader = std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        let mut killed_after = None;
        let started = std::time::Instant::now();
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            acknowledged.push(parse(&line));
            // Past many group commits and a periodic checkpoint (every second):
            // kill it. On a loaded machine the first checkpoint can come late,
            // so wait for the files (within a minute) rather than for a fixed
            // time. The file of a checkpoint is written before its row, so the
            // second file is what proves the first row committed.
            let elapsed = started.elapsed();
            let checkpointed = elapsed >= std::time::Duration::from_secs(60)
                || std::fs::read_dir(written.join("checkpoints"))
                    .map(|entries| entries.count() >= 2)
                    .unwrap_or(false);
            let past = elapsed >= std::time::Duration::from_millis(1_500) && checkpointed;
            if killed_after.is_none() && acknowledged.len() >= 1_000 && past {
                killed_after = Some(acknowledged.len());
                child.kill().unwrap(); // SIGKILL
            }
        }
        (child.wait().unwrap(), acknowledged, killed_after)
    });
    let (status, acknowledged, killed_after) =
        tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
    assert!(
        killed_after.is_some(),
        "journal-load ended before it could be killed: {status}"
    );
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
    eprintln!("killed after {} acknowledged appends", acknowledged.len());
    assert!(
        !store.journal_checkpoints().await.unwrap().is_empty(),
        "no checkpoint before the kill"
    );

    // "Restart": the head and every acknowledged index are there, and the log verifies.
    let head = store.journal_head().await.unwrap();
    for &index in &acknowledged {
        assert!(
            index < head.next_seq,
            "acknowledged entry {index} is beyond the head {}",
            head.next_seq
        );
    }
    // Every index below the head is present (this fails on any missing one).
    let present = store.journal_leaf_hashes(0, head.next_seq).await.unwrap();
    assert_eq!(present.len() as u64, head.next_seq);
    let report = journal::verify(&store, &checkpoints).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.entries, head.next_seq);

    // And the journal carries on from there.
    let settings = JournalSettings {
        checkpoint_dir: checkpoints.clone(),
        checkpoint_interval_secs: 3600,
        max_batch: 64,
    };
    let signer = SoftwareSigner::load_or_create(&checkpoints.join("journal-load.key")).unwrap();
    let journal = Journal::open(
        store.clone(),
        &settings,
        Arc::new(signer),
        sceau::clock::system(),
    )
    .await
    .unwrap();
    let next = journal
        .append(&support::journal::TESTER, support::journal::event(0))
        .await
        .unwrap();
    assert_eq!(next, head.next_seq);
    journal.shutdown().await.unwrap();
    let report = journal::verify(&store, &checkpoints).await.unwrap();
    assert!(report.is_ok(), "{report}");
}
on_both_backends!(
    sigkill_loses_no_acknowledged_append_on_sqlite,
    sigkill_loses_no_acknowledged_append_on_postgres,
    sigkill_loses_no_acknowledged_append
);

async fn two_processes_make_one_log(db: TestDb) {
    let store = db.store().await;
    let checkpoints = db.dir.path().join("checkpoints");
    let children: Vec<Child> = (0..2)
        .map(|_| spawn_load(&db, &checkpoints, 1_000, 16))
        .collect();
    let indexes = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", output.status);
            let text = String::from_utf8(output.stdout).unwrap();
            let mine: Vec<u64> = text.lines().map(parse).collect();
            assert_eq!(mine.len(), 1_000);
            all.extend(mine);
        }
        all
    })
    .await
    .unwrap();
    let distinct: BTreeSet<u64> = indexes.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        2_000,
        "two appends got the same index: a fork"
    );
    assert_eq!(distinct, (0..2_000).collect(), "a gap in the indexes");
    let head = store.journal_head().await.unwrap();
    assert_eq!(head.next_seq, 2_000);
    let report = journal::verify(&store, &checkpoints).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.entries, 2_000);
    assert!(report.external_checkpoints >= 2, "{report}");
}
on_both_backends!(
    two_processes_make_one_log_on_sqlite,
    two_processes_make_one_log_on_postgres,
    two_processes_make_one_log
);
