//! The audit journal: an append-only Merkle tree log (RFC 9162 hashing) with
//! group commit, HSM-signed checkpoints kept in and outside the database, and proofs.
//!
//! Appends go through one writer task per process: whatever arrived while the
//! previous commit was in flight is committed together (up to `max_batch`), and each
//! `append` returns its index only after that commit is durable. Indexes are assigned
//! by the database under the head row's lock, so several instances share one log.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use spki::SubjectPublicKeyInfoOwned;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::config::JournalSettings;
use crate::crypto::{self, SignatureAlgorithm};
use crate::error::{ErrorKind, HasErrorKind};
use crate::store::journal::{CheckpointRow, JournalKeyRow, NewJournalRow};
use crate::store::{Store, StoreError};

pub mod checkpoint;
pub mod entry;
pub mod event;
pub mod merkle;
pub mod software_signer;
mod tasks;
pub mod tiles;
pub mod verify;

use tasks::{run_ticker, run_writer};

pub use checkpoint::SignedCheckpoint;
pub use entry::{JournalEntry, JournalEvent};
pub use event::{Actor, Event};
pub use merkle::Hash;
pub use software_signer::SoftwareSigner;
pub use verify::{Problem, ProblemKind, VerifyReport, verify};

/// Leaf hashes read per query when the in-memory frontier catches up with the log.
const SYNC_CHUNK: u64 = 10_000;

/// Everything that can go wrong in the journal, saying what happened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the journal is shut down")]
    Closed,
    #[error(
        "append failed (if the database went away during the commit, the entry may still be there): {0}"
    )]
    AppendFailed(String),
    #[error("event cannot be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the audit key could not sign a checkpoint: {0}")]
    Sign(String),
    #[error("the audit key {key_id} produced a signature that does not verify")]
    BadSignature { key_id: String },
    #[error("the audit key's public key is unusable: {0}")]
    Key(#[from] crypto::CryptoError),
    #[error("the audit signer says its key id is {claimed}, but its public key hashes to {actual}")]
    KeyIdMismatch { claimed: String, actual: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("entry {index} does not exist: the log has {size} entries")]
    NoSuchEntry { index: u64, size: u64 },
    #[error("invalid range: {0}")]
    BadRange(String),
    #[error("a background task failed: {0}")]
    Task(String),
}

impl HasErrorKind for JournalError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Closed | Self::AppendFailed(_) => ErrorKind::Unavailable,
            Self::BadRange(_) => ErrorKind::BadRequest,
            Self::NoSuchEntry { .. } => ErrorKind::NotFound,
            Self::Encode(_)
            | Self::Sign(_)
            | Self::BadSignature { .. }
            | Self::Key(_)
            | Self::KeyIdMismatch { .. }
            | Self::Io { .. }
            | Self::Task(_) => ErrorKind::Internal,
        }
    }
}

/// The audit key that signs checkpoints (the HSM in production).
pub trait CheckpointSigner: Send + Sync + 'static {
    /// Hex SHA-256 of the SPKI DER.
    fn key_id(&self) -> String;
    fn public_key(&self) -> SubjectPublicKeyInfoOwned;
    fn algorithm(&self) -> SignatureAlgorithm;
    /// Signs `message` (DER for ECDSA, raw for RSA). Blocking: the journal calls it
    /// from `spawn_blocking`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// One append waiting for the writer.
struct Request {
    row: NewJournalRow,
    reply: oneshot::Sender<Result<u64, JournalError>>,
}

/// What the checkpointing side knows: the compact range of the log as far as it has
/// read, and the size of the last checkpoint this process signed.
struct TreeState {
    frontier: merkle::Frontier,
    last_checkpoint_size: Option<u64>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    checkpoint_dir: PathBuf,
    sender: std::sync::Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    ticker: std::sync::Mutex<Option<JoinHandle<()>>>,
    signer: RwLock<Arc<dyn CheckpointSigner>>,
    tree: Mutex<TreeState>,
    /// Hashes read from the store to answer proofs and roots (a measure of
    /// their cost: O(log n) per proof, not n).
    hashes_read: std::sync::atomic::AtomicU64,
    checkpoint_interval: Duration,
}

/// The audit journal. Cheap to clone; every clone appends to the same writer.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("checkpoint_dir", &self.inner.checkpoint_dir)
            .finish_non_exhaustive()
    }
}

impl Journal {
    engine_constructor! {
        /// Registers the audit key, restores the in-memory frontier from the latest
        /// checkpoint, and starts the writer and the periodic checkpoint task.
        async fn open(
            store: Store,
            settings: &JournalSettings,
            signer: Arc<dyn CheckpointSigner>,
            clock: SharedClock,
        ) -> Result<Journal, JournalError> {
            register_key(&store, &settings.checkpoint_dir, signer.as_ref(), &clock).await?;
            let mut tree = TreeState {
                frontier: merkle::Frontier::new(),
                last_checkpoint_size: None,
            };
            if let Some(latest) = store.journal_latest_checkpoint().await? {
                tree.last_checkpoint_size = Some(latest.tree_size);
                // Trust the stored frontier only when it reproduces the signed root.
                if let Some(frontier) = merkle::Frontier::from_bytes(latest.tree_size, &latest.frontier)
                    && frontier.root().as_slice() == latest.root_hash.as_slice()
                {
                    tree.frontier = frontier;
                }
            }
            sync_frontier(&store, &mut tree.frontier).await?;

            let max_batch = settings.max_batch.max(1);
            let (sender, receiver) = mpsc::channel(max_batch.saturating_mul(16).max(64));
            let writer = tokio::spawn(run_writer(
                store.clone(),
                clock.clone(),
                receiver,
                max_batch,
            ));
            let inner = Arc::new(Inner {
                store,
                clock,
                checkpoint_dir: settings.checkpoint_dir.clone(),
                sender: std::sync::Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                ticker: std::sync::Mutex::new(None),
                signer: RwLock::new(signer),
                tree: Mutex::new(tree),
                hashes_read: std::sync::atomic::AtomicU64::new(0),
                checkpoint_interval: Duration::from_secs(settings.checkpoint_interval_secs.max(1)),
            });
            let interval = Duration::from_secs(settings.checkpoint_interval_secs.max(1));
            let ticker = tokio::spawn(run_ticker(Arc::downgrade(&inner), interval));
            *lock(&inner.ticker) = Some(ticker);
            Ok(Journal { inner })
        }
    }

    /// Records `event`, caused by `actor`, and returns its index once its
    /// commit is durable.
    pub async fn append(&self, actor: &Actor, event: Event) -> Result<u64, JournalError> {
        let row = Self::row(actor, &event)?;
        self.submit(row)
            .await?
            .await
            .map_err(|_| JournalError::Closed)?
    }

    /// Records `events`, in order, and returns their indexes once all are
    /// durable. They are handed to the writer together, so they share its
    /// group commits instead of waiting for one commit each. A bad event
    /// refuses the batch before any of it is handed over.
    pub async fn append_all(
        &self,
        actor: &Actor,
        events: Vec<Event>,
    ) -> Result<Vec<u64>, JournalError> {
        let rows = events
            .iter()
            .map(|event| Self::row(actor, event))
            .collect::<Result<Vec<_>, _>>()?;
        let mut answers = Vec::with_capacity(rows.len());
        for row in rows {
            answers.push(self.submit(row).await?);
        }
        let mut indexes = Vec::with_capacity(answers.len());
        for answer in answers {
            indexes.push(answer.await.map_err(|_| JournalError::Closed)??);
        }
        Ok(indexes)
    }

    /// The row `event` becomes.
    fn row(actor: &Actor, event: &Event) -> Result<NewJournalRow, JournalError> {
        let (kind, payload) = event::encode(actor, event)?;
        Ok(NewJournalRow {
            recorded_at_us: 0, // set by the writer when it commits the batch
            payload_sha256: entry::sha256(&payload),
            kind: kind.to_owned(),
            payload,
        })
    }

    /// Hands `row` to the writer; the answer comes once its commit is durable.
    async fn submit(
        &self,
        row: NewJournalRow,
    ) -> Result<oneshot::Receiver<Result<u64, JournalError>>, JournalError> {
        let sender = lock(&self.inner.sender)
            .clone()
            .ok_or(JournalError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request { row, reply })
            .await
            .map_err(|_| JournalError::Closed)?;
        Ok(answer)
    }

    /// Signs a checkpoint of the log as it is now, whether or not it grew.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, JournalError> {
        let mut tree = self.inner.tree.lock().await;
        self.inner.sign_checkpoint(&mut tree).await
    }

    /// Signs a checkpoint if the log grew since the last one; `None` when it did not.
    pub async fn checkpoint_if_grown(&self) -> Result<Option<SignedCheckpoint>, JournalError> {
        self.inner.checkpoint_if_grown().await
    }

    /// Switches to a new audit key. The old key signs a last checkpoint covering a
    /// `journal.audit_key_rotated` entry, then the new key signs one at the same size.
    /// Every key stays recorded, so old checkpoints keep verifying.
    pub async fn rotate_key(&self, signer: Arc<dyn CheckpointSigner>) -> Result<(), JournalError> {
        register_key(
            &self.inner.store,
            &self.inner.checkpoint_dir,
            signer.as_ref(),
            &self.inner.clock,
        )
        .await?;
        let old = self.signer().key_id();
        self.append(
            &Actor::Service,
            Event::JournalAuditKeyRotated(event::AuditKeyRotated {
                old_key_id: old,
                new_key_id: signer.key_id(),
            }),
        )
        .await?;
        let mut tree = self.inner.tree.lock().await;
        self.inner.sign_checkpoint(&mut tree).await?;
        *self
            .inner
            .signer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = signer;
        self.inner.sign_checkpoint(&mut tree).await?;
        Ok(())
    }

    /// The latest signed checkpoint when it covers entry `index` and was
    /// signed by the key in use; `None` until the schedule signs one (never
    /// signed for a request). What a seal's inclusion proof is checked against.
    pub async fn checkpoint_covering(
        &self,
        index: u64,
    ) -> Result<Option<SignedCheckpoint>, JournalError> {
        let signer = self.signer();
        let Some(row) = self.inner.store.journal_latest_checkpoint().await? else {
            return Ok(None);
        };
        if row.tree_size <= index || row.key_id != signer.key_id() {
            return Ok(None);
        }
        let root_hash = Hash::try_from(row.root_hash.as_slice()).map_err(|_| {
            JournalError::Store(StoreError::Corrupt(format!(
                "checkpoint at {}: root hash",
                row.tree_size
            )))
        })?;
        Ok(Some(SignedCheckpoint {
            tree_size: row.tree_size,
            root_hash,
            signed_at_us: row.signed_at_us,
            key_id: row.key_id,
            algorithm: signer.algorithm(),
            signature: row.signature,
        }))
    }

    /// How often the schedule signs a checkpoint when the log grew.
    pub fn checkpoint_interval(&self) -> Duration {
        self.inner.checkpoint_interval
    }

    /// The audit key in use: its SPKI, to verify checkpoints with.
    pub fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        self.signer().public_key()
    }

    /// The key id of the audit key in use.
    pub fn key_id(&self) -> String {
        self.signer().key_id()
    }

    /// How many hashes this journal has read from the store for proofs and
    /// roots since it opened.
    pub fn hashes_read(&self) -> u64 {
        self.inner
            .hashes_read
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many entries the log has (all instances together).
    pub async fn size(&self) -> Result<u64, JournalError> {
        Ok(self.inner.store.journal_head().await?.next_seq)
    }

    /// An entry as stored.
    pub async fn entry(&self, index: u64) -> Result<JournalEntry, JournalError> {
        let row = self.inner.store.journal_row(index).await?;
        let Some(row) = row else {
            return Err(JournalError::NoSuchEntry {
                index,
                size: self.size().await?,
            });
        };
        let hash = |bytes: &[u8], what: &str| {
            Hash::try_from(bytes).map_err(|_| {
                JournalError::Store(StoreError::Corrupt(format!("entry {index}: {what}")))
            })
        };
        Ok(JournalEntry {
            index,
            recorded_at: entry::from_micros(row.recorded_at_us),
            kind: row.kind,
            payload_sha256: hash(&row.payload_sha256, "payload hash")?,
            leaf_hash: hash(&row.leaf_hash, "leaf hash")?,
            payload: row.payload,
        })
    }

    /// The leaf hash of entry `index`.
    pub async fn leaf_hash(&self, index: u64) -> Result<Hash, JournalError> {
        Ok(self.entry(index).await?.leaf_hash)
    }

    /// The root of the tree of the first `tree_size` entries.
    pub async fn root(&self, tree_size: u64) -> Result<Hash, JournalError> {
        {
            let tree = self.inner.tree.lock().await;
            if tree.frontier.size() == tree_size {
                return Ok(tree.frontier.root());
            }
        }
        let leaves = self.leaves(tree_size).await?;
        Ok(merkle::root(&leaves))
    }

    /// The RFC 9162 inclusion proof of entry `index` in the tree of size `tree_size`.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, JournalError> {
        if index >= tree_size {
            return Err(JournalError::BadRange(format!(
                "index {index} is not inside a tree of {tree_size} entries"
            )));
        }
        let size = self.size().await?;
        if tree_size > size {
            return Err(JournalError::BadRange(format!(
                "tree size {tree_size} is larger than the log ({size} entries)"
            )));
        }
        // From the hash tiles: O(log n) hashes, whatever the tree's size.
        tiles::lay_down(&self.inner.store).await?;
        let mut reader = tiles::TileReader {
            store: &self.inner.store,
            read: 0,
        };
        let proof = reader.inclusion_proof(index, tree_size).await;
        self.inner
            .hashes_read
            .fetch_add(reader.read, std::sync::atomic::Ordering::Relaxed);
        Ok(proof?)
    }

    /// The RFC 9162 consistency proof that the tree of `new_size` extends the tree of
    /// `old_size` (0 < old_size ≤ new_size).
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, JournalError> {
        if old_size == 0 || old_size > new_size {
            return Err(JournalError::BadRange(format!(
                "need 0 < old size ≤ new size, got {old_size} and {new_size}"
            )));
        }
        let leaves = self.leaves(new_size).await?;
        merkle::consistency_proof(old_size as usize, &leaves)
            .ok_or_else(|| JournalError::BadRange(format!("{old_size}..{new_size}")))
    }

    /// Removes the payload of entry `index` at the end of its retention, and records
    /// that it did. Its hash stays, so the tree still verifies.
    pub async fn purge_payload(&self, index: u64, actor: &Actor) -> Result<(), JournalError> {
        let now = entry::to_micros(self.inner.clock.now());
        if !self.inner.store.journal_purge_payload(index, now).await? {
            return Err(JournalError::NoSuchEntry {
                index,
                size: self.size().await?,
            });
        }
        self.append(
            actor,
            Event::JournalPayloadPurged(event::PayloadPurged { index }),
        )
        .await?;
        Ok(())
    }

    /// Stops taking appends, commits the ones already sent, stops the checkpoint task
    /// and signs a final checkpoint if the log grew.
    pub async fn shutdown(&self) -> Result<(), JournalError> {
        drop(lock(&self.inner.sender).take());
        if let Some(writer) = self.inner.writer.lock().await.take() {
            writer
                .await
                .map_err(|e| JournalError::Task(e.to_string()))?;
        }
        if let Some(ticker) = lock(&self.inner.ticker).take() {
            ticker.abort();
        }
        self.inner.checkpoint_if_grown().await?;
        Ok(())
    }

    fn signer(&self) -> Arc<dyn CheckpointSigner> {
        self.inner.signer()
    }

    /// The stored leaf hashes of the first `tree_size` entries.
    async fn leaves(&self, tree_size: u64) -> Result<Vec<Hash>, JournalError> {
        let size = self.size().await?;
        if tree_size > size {
            return Err(JournalError::BadRange(format!(
                "tree size {tree_size} is larger than the log ({size} entries)"
            )));
        }
        let leaves = self.inner.store.journal_leaf_hashes(0, tree_size).await?;
        self.inner
            .hashes_read
            .fetch_add(leaves.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(leaves)
    }
}

impl Inner {
    fn signer(&self) -> Arc<dyn CheckpointSigner> {
        self.signer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    async fn checkpoint_if_grown(&self) -> Result<Option<SignedCheckpoint>, JournalError> {
        let mut tree = self.tree.lock().await;
        sync_frontier(&self.store, &mut tree.frontier).await?;
        if tree.last_checkpoint_size == Some(tree.frontier.size()) {
            return Ok(None);
        }
        self.sign_checkpoint(&mut tree).await.map(Some)
    }

    /// Catches the frontier up with the log, then signs, stores and writes out a checkpoint.
    async fn sign_checkpoint(
        &self,
        tree: &mut TreeState,
    ) -> Result<SignedCheckpoint, JournalError> {
        sync_frontier(&self.store, &mut tree.frontier).await?;
        // The tiles cover what the checkpoint will: proofs against it read them.
        tiles::lay_down(&self.store).await?;
        let signer = self.signer();
        let tree_size = tree.frontier.size();
        let root_hash = tree.frontier.root();
        let signed_at_us = entry::to_micros(self.clock.now());
        let key_id = signer.key_id();
        let message = checkpoint::message(tree_size, &root_hash, signed_at_us, &key_id);
        let algorithm = signer.algorithm();
        let public_key = signer.public_key();
        let signature = tokio::task::spawn_blocking(move || signer.sign(&message))
            .await
            .map_err(|e| JournalError::Task(e.to_string()))?
            .map_err(JournalError::Sign)?;
        let signed = SignedCheckpoint {
            tree_size,
            root_hash,
            signed_at_us,
            key_id,
            algorithm,
            signature,
        };
        // A faulty token must not leave checkpoints nobody can verify.
        if signed.verify(&public_key).is_err() {
            return Err(JournalError::BadSignature {
                key_id: signed.key_id,
            });
        }
        // The external copy first: a crash in between leaves a checkpoint outside the
        // database only, which still verifies; the reverse would look like a lost copy.
        let dir = self.checkpoint_dir.clone();
        let copy = signed.clone();
        tokio::task::spawn_blocking(move || checkpoint::write_checkpoint(&dir, &copy))
            .await
            .map_err(|e| JournalError::Task(e.to_string()))?
            .map_err(|source| JournalError::Io {
                path: self.checkpoint_dir.clone(),
                source,
            })?;
        self.store
            .journal_insert_checkpoint(&CheckpointRow {
                tree_size,
                root_hash: root_hash.to_vec(),
                signed_at_us,
                key_id: signed.key_id.clone(),
                signature: signed.signature.clone(),
                frontier: tree.frontier.to_bytes(),
            })
            .await?;
        tree.last_checkpoint_size = Some(tree_size);
        tracing::info!(
            tree_size,
            root = %hex::encode(root_hash),
            key_id = %signed.key_id,
            "journal checkpoint signed"
        );
        Ok(signed)
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records the signer's public key in the database and beside the external checkpoints.
async fn register_key(
    store: &Store,
    dir: &std::path::Path,
    signer: &dyn CheckpointSigner,
    clock: &SharedClock,
) -> Result<(), JournalError> {
    use der::Encode;
    let spki = signer.public_key();
    let actual = hex::encode(crypto::spki_sha256(&spki)?);
    let claimed = signer.key_id();
    if actual != claimed {
        return Err(JournalError::KeyIdMismatch { claimed, actual });
    }
    let spki_der = spki
        .to_der()
        .map_err(|e| crypto::CryptoError::MalformedKey(e.to_string()))?;
    store
        .journal_insert_key(&JournalKeyRow {
            key_id: claimed.clone(),
            algorithm: checkpoint::algorithm_to_text(signer.algorithm()),
            spki_der: spki_der.clone(),
            added_at_us: entry::to_micros(clock.now()),
        })
        .await?;
    let dir = dir.to_owned();
    let path = dir.clone();
    tokio::task::spawn_blocking(move || checkpoint::write_key(&dir, &claimed, &spki_der))
        .await
        .map_err(|e| JournalError::Task(e.to_string()))?
        .map_err(|source| JournalError::Io { path, source })
}

/// Reads the leaf hashes appended since the frontier was last brought up to date
/// (by this instance or any other).
async fn sync_frontier(store: &Store, frontier: &mut merkle::Frontier) -> Result<(), JournalError> {
    let size = store.journal_head().await?.next_seq;
    while frontier.size() < size {
        let to = size.min(frontier.size() + SYNC_CHUNK);
        for leaf in store.journal_leaf_hashes(frontier.size(), to).await? {
            frontier.push(leaf);
        }
    }
    Ok(())
}
