//! A small journal to tamper with: 20 entries signed by a software audit key,
//! with checkpoints at sizes 10 and 20 in and outside the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sceau::config::JournalSettings;
use sceau::journal::event::LoadTest;
use sceau::journal::{Actor, Event, Journal, SoftwareSigner};
use sceau::store::Store;

use super::db::TestDb;

pub fn settings(dir: &Path) -> JournalSettings {
    JournalSettings {
        checkpoint_dir: dir.join("checkpoints"),
        checkpoint_interval_secs: 3600,
        max_batch: 64,
    }
}

/// Who appends the test entries.
pub const TESTER: Actor = Actor::Task("tester");

pub fn event(n: u64) -> Event {
    Event::LoadTest(LoadTest { pid: 0, task: 0, n })
}

pub async fn open(store: &Store, dir: &Path, signer: Arc<SoftwareSigner>) -> Journal {
    Journal::open(
        store.clone(),
        &settings(dir),
        signer,
        sceau::clock::system(),
    )
    .await
    .unwrap()
}

/// A journal with 20 entries, checkpoints at sizes 10 and 20, and the journal shut down.
pub async fn twenty_entries(db: &TestDb) -> (Store, PathBuf) {
    let store = db.store().await;
    let dir = db.dir.path().to_owned();
    let journal = open(&store, &dir, Arc::new(SoftwareSigner::generate())).await;
    for n in 0..10 {
        assert_eq!(journal.append(&TESTER, event(n)).await.unwrap(), n);
    }
    journal.checkpoint().await.unwrap();
    let appends: Vec<_> = (10..20)
        .map(|n| {
            let journal = journal.clone();
            tokio::spawn(async move { journal.append(&TESTER, event(n)).await })
        })
        .collect();
    let mut indexes = Vec::new();
    for append in appends {
        indexes.push(append.await.unwrap().unwrap());
    }
    indexes.sort();
    assert_eq!(indexes, (10..20).collect::<Vec<_>>());
    journal.shutdown().await.unwrap(); // final checkpoint at 20
    (store, dir)
}

/// The index, kind and details of each entry of `journal` from `from` on,
/// those of `kinds_left_out` left out.
pub async fn entries_since(
    journal: &Journal,
    from: u64,
    kinds_left_out: &[&str],
) -> Vec<(u64, String, serde_json::Value)> {
    let size = journal.size().await.unwrap();
    let mut out = Vec::new();
    for index in from..size {
        let event = journal
            .entry(index)
            .await
            .unwrap()
            .event()
            .unwrap()
            .unwrap();
        if !kinds_left_out.contains(&event.kind.as_str()) {
            out.push((index, event.kind, event.details));
        }
    }
    out
}
