//! The audit journal's tables: entries, the head row every append locks, the audit
//! keys, and the signed checkpoints. Hashing is the journal's business: the store
//! only assigns indexes under the head lock and stores what it is given.

use super::{Store, StoreError, on_pool, seq_from_sql, seq_to_sql};
use crate::settings::DatabaseBackend;

/// Rows per INSERT statement (SQLite allows 32766 parameters, PostgreSQL 65535).
const INSERT_CHUNK: usize = 500;

/// An entry to append; its index and chained hashes are decided inside the transaction.
#[derive(Debug, Clone)]
pub struct NewJournalRow {
    pub recorded_at_us: i64,
    pub kind: String,
    pub payload: Vec<u8>,
    pub payload_sha256: [u8; 32],
}

/// An entry as stored, with no check at all (verification reads these).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JournalRow {
    pub seq: i64,
    #[sqlx(rename = "recorded_at")]
    pub recorded_at_us: i64,
    pub kind: String,
    /// `None` once purged at the end of retention.
    pub payload: Option<Vec<u8>>,
    pub payload_sha256: Vec<u8>,
    pub prev_leaf_hash: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

/// The head row: how many entries the log has and the last leaf hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalHead {
    pub next_seq: u64,
    pub last_leaf_hash: Vec<u8>,
}

/// An audit key that signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JournalKeyRow {
    pub key_id: String,
    /// The signature algorithm's OID, dotted.
    pub algorithm: String,
    #[sqlx(rename = "spki")]
    pub spki_der: Vec<u8>,
    #[sqlx(rename = "added_at")]
    pub added_at_us: i64,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub tree_size: u64,
    pub root_hash: Vec<u8>,
    pub signed_at_us: i64,
    pub key_id: String,
    pub signature: Vec<u8>,
    /// The compact range (perfect subtree roots, largest first) at `tree_size`, so a
    /// restart does not rehash the whole log.
    pub frontier: Vec<u8>,
}

/// Computes an entry's leaf hash from its index, the previous leaf hash and its fields.
pub type LeafHasher<'a> = &'a (dyn Fn(u64, &[u8; 32], &NewJournalRow) -> [u8; 32] + Send + Sync);

const ENTRY_COLUMNS: &str =
    "seq, recorded_at, kind, payload, payload_sha256, prev_leaf_hash, leaf_hash";
const CHECKPOINT_COLUMNS: &str = "tree_size, root_hash, signed_at, key_id, signature, frontier";

/// A `journal_checkpoints` row as stored.
#[derive(sqlx::FromRow)]
struct StoredCheckpoint {
    tree_size: i64,
    root_hash: Vec<u8>,
    signed_at: i64,
    key_id: String,
    signature: Vec<u8>,
    frontier: Vec<u8>,
}

impl TryFrom<StoredCheckpoint> for CheckpointRow {
    type Error = StoreError;

    fn try_from(row: StoredCheckpoint) -> Result<Self, StoreError> {
        Ok(Self {
            tree_size: seq_from_sql(row.tree_size)?,
            root_hash: row.root_hash,
            signed_at_us: row.signed_at,
            key_id: row.key_id,
            signature: row.signature,
            frontier: row.frontier,
        })
    }
}

fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

impl Store {
    /// Appends `rows` in one transaction and returns the index of the first.
    ///
    /// The head row is locked first (`BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE`
    /// on PostgreSQL), so concurrent writers, in this process or another, serialise and
    /// the indexes have no gap and no fork. Returns once the commit is durable.
    pub async fn journal_append(
        &self,
        rows: &[NewJournalRow],
        leaf_hash: LeafHasher<'_>,
    ) -> Result<u64, StoreError> {
        let (begin, lock) = match self.backend() {
            DatabaseBackend::Sqlite => (
                "BEGIN IMMEDIATE",
                "SELECT next_seq, last_leaf_hash FROM journal_head WHERE id = 1",
            ),
            DatabaseBackend::Postgres => (
                "BEGIN",
                "SELECT next_seq, last_leaf_hash FROM journal_head WHERE id = 1 FOR UPDATE",
            ),
        };
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let (next_seq, last_leaf_hash) = sqlx::query_as::<_, (i64, Vec<u8>)>(lock)
                .fetch_one(&mut *tx)
                .await?;
            let first = seq_from_sql(next_seq)?;
            let mut prev = hash32(&last_leaf_hash, "journal head hash")?;
            let mut hashed = Vec::with_capacity(rows.len());
            for (offset, row) in rows.iter().enumerate() {
                let seq = first + offset as u64;
                let leaf = leaf_hash(seq, &prev, row);
                hashed.push((seq_to_sql(seq)?, row, prev, leaf));
                prev = leaf;
            }
            for chunk in hashed.chunks(INSERT_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO journal_entries ({ENTRY_COLUMNS}) "
                ));
                insert.push_values(chunk, |mut values, (seq, row, prev, leaf)| {
                    values
                        .push_bind(*seq)
                        .push_bind(row.recorded_at_us)
                        .push_bind(row.kind.as_str())
                        .push_bind(row.payload.as_slice())
                        .push_bind(row.payload_sha256.as_slice())
                        .push_bind(prev.as_slice())
                        .push_bind(leaf.as_slice());
                });
                insert.build().execute(&mut *tx).await?;
            }
            let next = seq_to_sql(first + rows.len() as u64)?;
            sqlx::query("UPDATE journal_head SET next_seq = $1, last_leaf_hash = $2 WHERE id = 1")
                .bind(next)
                .bind(prev.as_slice())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(first)
        })
    }

    pub async fn journal_head(&self) -> Result<JournalHead, StoreError> {
        let sql = "SELECT next_seq, last_leaf_hash FROM journal_head WHERE id = 1";
        let head: Option<(i64, Vec<u8>)> = on_pool!(self, |pool| {
            sqlx::query_as(sql).fetch_optional(pool).await?
        });
        let (next_seq, last_leaf_hash) =
            head.ok_or_else(|| StoreError::Corrupt("the journal head row is missing".into()))?;
        Ok(JournalHead {
            next_seq: seq_from_sql(next_seq)?,
            last_leaf_hash,
        })
    }

    /// The stored leaf hashes of entries `from..to`; `Corrupt` when one is missing.
    pub async fn journal_leaf_hashes(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let sql = "SELECT seq, leaf_hash FROM journal_entries \
                   WHERE seq >= $1 AND seq < $2 ORDER BY seq";
        let (low, high) = (seq_to_sql(from)?, seq_to_sql(to)?);
        let mut hashes = Vec::with_capacity(to.saturating_sub(from) as usize);
        let rows: Vec<(i64, Vec<u8>)> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(low)
                .bind(high)
                .fetch_all(pool)
                .await?
        });
        for (seq, leaf_hash) in &rows {
            let expected = from + hashes.len() as u64;
            if seq_from_sql(*seq)? != expected {
                return Err(StoreError::Corrupt(format!(
                    "journal entry {expected} is missing"
                )));
            }
            hashes.push(hash32(leaf_hash, "leaf hash")?);
        }
        if (hashes.len() as u64) != to.saturating_sub(from) {
            let missing = from + hashes.len() as u64;
            return Err(StoreError::Corrupt(format!(
                "journal entry {missing} is missing"
            )));
        }
        Ok(hashes)
    }

    /// How many hashes level `level` of the tree holds: the log's size at
    /// level 0, else the complete subtrees of 256^level leaves laid down.
    pub async fn journal_tree_hash_count(&self, level: u8) -> Result<u64, StoreError> {
        if level == 0 {
            return Ok(self.journal_head().await?.next_seq);
        }
        let sql = "SELECT COUNT(*) FROM journal_tree_hashes WHERE level = $1";
        let count: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(i32::from(level))
                .fetch_one(pool)
                .await?
        });
        seq_from_sql(count)
    }

    /// The hashes `from..to` of level `level` (level 0: the leaf hashes);
    /// `Corrupt` when one is missing.
    pub async fn journal_tree_hashes(
        &self,
        level: u8,
        from: u64,
        to: u64,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        if level == 0 {
            return self.journal_leaf_hashes(from, to).await;
        }
        let sql = "SELECT idx, hash FROM journal_tree_hashes \
                   WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx";
        let (low, high) = (seq_to_sql(from)?, seq_to_sql(to)?);
        let mut hashes = Vec::with_capacity(to.saturating_sub(from) as usize);
        let rows: Vec<(i64, Vec<u8>)> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(i32::from(level))
                .bind(low)
                .bind(high)
                .fetch_all(pool)
                .await?
        });
        for (idx, hash) in &rows {
            if seq_from_sql(*idx)? != from + hashes.len() as u64 {
                break;
            }
            hashes.push(hash32(hash, "tree hash")?);
        }
        if (hashes.len() as u64) != to.saturating_sub(from) {
            let missing = from + hashes.len() as u64;
            return Err(StoreError::Corrupt(format!(
                "journal tree hash {missing} of level {level} is missing"
            )));
        }
        Ok(hashes)
    }

    /// Lays down hashes of level `level` (≥ 1) from index `first`. The same
    /// index always gets the same hash, so instances racing to lay one down
    /// agree: the later insert does nothing.
    pub async fn journal_insert_tree_hashes(
        &self,
        level: u8,
        first: u64,
        hashes: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO journal_tree_hashes (level, idx, hash) VALUES ($1, $2, $3) \
                   ON CONFLICT (level, idx) DO NOTHING";
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (offset, hash) in hashes.iter().enumerate() {
                sqlx::query(sql)
                    .bind(i32::from(level))
                    .bind(seq_to_sql(first + offset as u64)?)
                    .bind(hash.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` stored entries with `seq > after`, in index order.
    pub async fn journal_rows_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<JournalRow>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM journal_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        self.read_all::<JournalRow, JournalRow>(&sql, &[after.into(), i64::from(limit).into()])
            .await
    }

    pub async fn journal_row(&self, seq: u64) -> Result<Option<JournalRow>, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM journal_entries WHERE seq = $1");
        let seq = seq_to_sql(seq)?;
        self.read_optional::<JournalRow, JournalRow>(&sql, &[seq.into()])
            .await
    }

    /// Drops an entry's payload (its hash stays, so the tree still verifies).
    /// Returns whether the entry exists.
    pub async fn journal_purge_payload(&self, seq: u64, now_us: i64) -> Result<bool, StoreError> {
        let seq = seq_to_sql(seq)?;
        let sql = "UPDATE journal_entries SET payload = NULL, purged_at = $1 WHERE seq = $2";
        let updated = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(now_us)
                .bind(seq)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Records an audit key; a key already recorded is left as it is.
    pub async fn journal_insert_key(&self, key: &JournalKeyRow) -> Result<(), StoreError> {
        let sql = "INSERT INTO journal_keys (key_id, algorithm, spki, added_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(&key.key_id)
                .bind(&key.algorithm)
                .bind(key.spki_der.as_slice())
                .bind(key.added_at_us)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every audit key ever used, oldest first.
    pub async fn journal_keys(&self) -> Result<Vec<JournalKeyRow>, StoreError> {
        let sql = "SELECT key_id, algorithm, spki, added_at FROM journal_keys \
                   ORDER BY added_at, key_id";
        self.read_all::<JournalKeyRow, JournalKeyRow>(sql, &[])
            .await
    }

    pub async fn journal_insert_checkpoint(
        &self,
        checkpoint: &CheckpointRow,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO journal_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        );
        let size = seq_to_sql(checkpoint.tree_size)?;
        on_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(size)
                .bind(checkpoint.root_hash.as_slice())
                .bind(checkpoint.signed_at_us)
                .bind(&checkpoint.key_id)
                .bind(checkpoint.signature.as_slice())
                .bind(checkpoint.frontier.as_slice())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every stored checkpoint, in the order they were written.
    pub async fn journal_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM journal_checkpoints ORDER BY id");
        self.read_all::<StoredCheckpoint, _>(&sql, &[]).await
    }

    /// The checkpoint covering the most entries, if any.
    pub async fn journal_latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM journal_checkpoints \
             ORDER BY tree_size DESC, id DESC LIMIT 1"
        );
        self.read_optional::<StoredCheckpoint, _>(&sql, &[]).await
    }
}
