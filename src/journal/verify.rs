//! Verification of the whole journal, as `sceau audit verify` runs it: every payload
//! hash, every leaf hash, the chain of previous-leaf hashes, the head row, the tree,
//! and every checkpoint (in the database and outside it) with its signature.
//! Each problem names the entry index it is about.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::JournalError;
use super::checkpoint::{self, SignedCheckpoint};
use super::entry::{entry_leaf_hash, from_micros, sha256};
use super::merkle::{self, Frontier, Hash};
use crate::crypto;
use crate::store::Store;
use crate::store::journal::JournalRow;

/// Rows read per query.
const PAGE: u32 = 5_000;

/// The stored entries in index order, `PAGE` rows at a time: the log is read
/// whole without being held whole.
struct Pages<'a> {
    store: &'a Store,
    after: i64,
}

impl<'a> Pages<'a> {
    fn of(store: &'a Store) -> Self {
        Self {
            store,
            after: i64::MIN,
        }
    }

    /// The next page, `None` once every row was read.
    async fn next(&mut self) -> Result<Option<Vec<JournalRow>>, JournalError> {
        let rows = self.store.journal_rows_after(self.after, PAGE).await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = last.seq;
        Ok(Some(rows))
    }
}
/// Problems kept in the report; the rest are only counted.
const MAX_PROBLEMS: usize = 1_000;

/// What kind of tampering (or damage) a problem shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// An entry's bytes or fields changed.
    Modified,
    /// An entry is missing from the middle of the log.
    Deleted,
    /// An entry sits at another index than the one it was recorded at.
    Reordered,
    /// An entry that was never appended is in the log.
    Inserted,
    /// The log ends before the head or a checkpoint says it should.
    Truncated,
    /// A checkpoint does not check out (signature, key, or root).
    Checkpoint,
}

/// One problem, about one entry index (for [`ProblemKind::Checkpoint`], the
/// checkpoint's tree size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub index: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ProblemKind::Checkpoint => {
                write!(f, "checkpoint of size {}: {}", self.index, self.detail)
            }
            _ => write!(f, "entry {}: {}", self.index, self.detail),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries present in the database.
    pub entries: u64,
    /// Entries whose payload was purged (their hash still checked in the tree).
    pub purged: u64,
    /// The size the head row records.
    pub head_size: u64,
    pub checkpoints: usize,
    pub external_checkpoints: usize,
    pub problems: Vec<Problem>,
    /// Problems found beyond the first `MAX_PROBLEMS`, counted only.
    pub more_problems: usize,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.more_problems == 0
    }

    /// Whether a problem of `kind` names `index`.
    pub fn has(&self, kind: ProblemKind, index: u64) -> bool {
        self.problems
            .iter()
            .any(|problem| problem.kind == kind && problem.index == index)
    }

    fn add(&mut self, index: u64, kind: ProblemKind, detail: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                index,
                kind,
                detail: detail.into(),
            });
        } else {
            self.more_problems += 1;
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return write!(
                f,
                "journal verifies: {} entries ({} purged), {} checkpoints in the database, \
                 {} external checkpoints",
                self.entries, self.purged, self.checkpoints, self.external_checkpoints
            );
        }
        for (n, problem) in self.problems.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        if self.more_problems > 0 {
            write!(f, "\n… and {} more problems", self.more_problems)?;
        }
        Ok(())
    }
}

/// A row whose leaf hash does not match its fields at its index.
struct Suspect {
    seq: u64,
    recorded_at_us: i64,
    kind: String,
    payload_sha256: Hash,
    prev: Hash,
    leaf: Hash,
}

/// Where a checkpoint came from, to name it in a problem.
enum Source {
    Database,
    External(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Database => f.write_str("the database checkpoint"),
            Self::External(path) => write!(f, "the external checkpoint {}", path.display()),
        }
    }
}

/// Checks the whole journal in `store` against itself and against the checkpoints in
/// the database and in `checkpoint_dir`. Problems go in the report; an `Err` means
/// the check itself could not run (database unreachable, unreadable folder).
pub async fn verify(store: &Store, checkpoint_dir: &Path) -> Result<VerifyReport, JournalError> {
    let head = store.journal_head().await?;
    let db_keys: HashMap<String, (Vec<u8>, String)> = store
        .journal_keys()
        .await?
        .into_iter()
        .map(|key| (key.key_id, (key.spki_der, key.algorithm)))
        .collect();
    let db_checkpoints = store.journal_checkpoints().await?;
    let dir = checkpoint_dir.to_owned();
    let external = tokio::task::spawn_blocking(move || checkpoint::read_checkpoints(&dir))
        .await
        .map_err(|e| JournalError::Task(e.to_string()))?
        .map_err(|source| JournalError::Io {
            path: checkpoint_dir.to_owned(),
            source,
        })?;

    let mut report = VerifyReport {
        head_size: head.next_seq,
        checkpoints: db_checkpoints.len(),
        external_checkpoints: external.len(),
        ..VerifyReport::default()
    };

    let mut wanted: BTreeSet<u64> = db_checkpoints.iter().map(|c| c.tree_size).collect();
    wanted.extend(
        external
            .iter()
            .filter_map(|(_, c)| c.as_ref().ok().map(|c| c.tree_size)),
    );
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    if wanted.contains(&0) {
        roots.insert(0, merkle::empty_root());
    }

    // First pass: each row on its own and against its predecessor.
    let mut frontier = Frontier::new();
    let mut tree_intact = true;
    let mut expected = 0u64;
    let mut prev_stored_leaf: Option<Hash> = None;
    let mut head_leaf: Option<Hash> = None;
    let mut suspects: Vec<Suspect> = Vec::new();
    let mut chain_breaks: Vec<u64> = Vec::new();
    let mut pages = Pages::of(store);
    while let Some(rows) = pages.next().await? {
        for row in rows {
            let Ok(seq) = u64::try_from(row.seq) else {
                report.add(
                    0,
                    ProblemKind::Inserted,
                    format!(
                        "a row with index {} is not part of the log (inserted)",
                        row.seq
                    ),
                );
                continue;
            };
            if seq > expected {
                report_gap(&mut report, expected, seq);
                tree_intact = false;
                prev_stored_leaf = None;
            }
            expected = seq + 1;
            report.entries += 1;
            let Some((payload_sha256, prev, leaf)) = hashes(&row) else {
                report.add(
                    seq,
                    ProblemKind::Modified,
                    "a stored hash is not 32 bytes (modified)",
                );
                tree_intact = false;
                prev_stored_leaf = None;
                continue;
            };
            match &row.payload {
                Some(payload) if sha256(payload) != payload_sha256 => report.add(
                    seq,
                    ProblemKind::Modified,
                    "payload does not match its hash (modified)",
                ),
                Some(_) => {}
                None => report.purged += 1,
            }
            let recomputed =
                entry_leaf_hash(seq, row.recorded_at_us, &prev, &payload_sha256, &row.kind);
            if recomputed != leaf {
                suspects.push(Suspect {
                    seq,
                    recorded_at_us: row.recorded_at_us,
                    kind: row.kind.clone(),
                    payload_sha256,
                    prev,
                    leaf,
                });
            } else {
                let chained = match (seq, prev_stored_leaf) {
                    (0, _) => prev == [0; 32],
                    (_, Some(before)) => prev == before,
                    (_, None) => true, // after a gap or a broken row, already reported
                };
                if !chained {
                    chain_breaks.push(seq);
                }
            }
            prev_stored_leaf = Some(leaf);
            if head.next_seq > 0 && seq == head.next_seq - 1 {
                head_leaf = Some(leaf);
            }
            if tree_intact {
                frontier.push(recomputed);
                if wanted.contains(&frontier.size()) {
                    roots.insert(frontier.size(), frontier.root());
                }
            }
        }
    }
    let log_end = expected;

    // Second pass, only when needed: where did each suspect row come from?
    classify_suspects(store, &mut report, &suspects, &chain_breaks).await?;

    // The head row.
    if head.next_seq > log_end {
        report.add(
            log_end,
            ProblemKind::Truncated,
            format!(
                "missing: the head records {} entries but the log ends before index {log_end} (truncated)",
                head.next_seq
            ),
        );
    } else if head.next_seq < log_end {
        report.add(
            head.next_seq,
            ProblemKind::Inserted,
            format!(
                "beyond the head, which records {} entries, the log holds entries up to index {} (inserted)",
                head.next_seq,
                log_end - 1
            ),
        );
    }
    if let Some(leaf) = head_leaf
        && head.last_leaf_hash.as_slice() != leaf.as_slice()
    {
        report.add(
            head.next_seq - 1,
            ProblemKind::Modified,
            "its leaf hash is not the one the head row records (modified)",
        );
    }

    let first_problem = report.problems.iter().map(|p| p.index).min();
    let check = |report: &mut VerifyReport,
                 source: Source,
                 c: &SignedCheckpoint,
                 key: Option<Vec<u8>>| {
        match key.as_deref().map(crypto::spki_from_der) {
            None => report.add(
                c.tree_size,
                ProblemKind::Checkpoint,
                format!(
                    "{source} (signed at {}) names key {}, which is unknown",
                    c.signed_at(),
                    c.key_id
                ),
            ),
            Some(Err(_)) => report.add(
                c.tree_size,
                ProblemKind::Checkpoint,
                format!("{source}: key {} cannot be read", c.key_id),
            ),
            Some(Ok(spki)) => {
                if let Err(why) = c.verify(&spki) {
                    report.add(
                        c.tree_size,
                        ProblemKind::Checkpoint,
                        format!("{source} (signed at {}): {why}", c.signed_at()),
                    );
                }
            }
        }
        if c.tree_size > log_end {
            report.add(
                log_end,
                ProblemKind::Truncated,
                format!(
                    "missing: {source} (signed at {}) covers {} entries but the log ends before index {log_end} (truncated)",
                    c.signed_at(),
                    c.tree_size
                ),
            );
        } else if let Some(root) = roots.get(&c.tree_size)
            && *root != c.root_hash
        {
            let hint = match first_problem {
                Some(index) if index < c.tree_size => {
                    format!("; the first problem is at entry {index}")
                }
                _ => String::new(),
            };
            report.add(
                c.tree_size,
                ProblemKind::Checkpoint,
                format!("{source} (signed at {}): its root does not match the log's first {} entries{hint}", c.signed_at(), c.tree_size),
            );
        }
    };

    // Checkpoints in the database, each of which must also exist outside it.
    let external_set: HashSet<(u64, Hash, i64, String)> = external
        .iter()
        .filter_map(|(_, c)| c.as_ref().ok())
        .map(|c| (c.tree_size, c.root_hash, c.signed_at_us, c.key_id.clone()))
        .collect();
    for row in &db_checkpoints {
        let Ok(root_hash) = Hash::try_from(row.root_hash.as_slice()) else {
            report.add(
                row.tree_size,
                ProblemKind::Checkpoint,
                "the database checkpoint's root is not 32 bytes",
            );
            continue;
        };
        let key = db_keys.get(&row.key_id);
        let algorithm = key.and_then(|(_, alg)| checkpoint::algorithm_from_text(alg));
        let Some(algorithm) = algorithm.or(key
            .is_none()
            .then_some(crypto::SignatureAlgorithm::EcdsaSha256))
        else {
            report.add(
                row.tree_size,
                ProblemKind::Checkpoint,
                format!("key {} has an unknown algorithm", row.key_id),
            );
            continue;
        };
        let signed = SignedCheckpoint {
            tree_size: row.tree_size,
            root_hash,
            signed_at_us: row.signed_at_us,
            key_id: row.key_id.clone(),
            algorithm,
            signature: row.signature.clone(),
        };
        check(
            &mut report,
            Source::Database,
            &signed,
            key.map(|(spki, _)| spki.clone()),
        );
        if !external_set.contains(&(
            row.tree_size,
            root_hash,
            row.signed_at_us,
            row.key_id.clone(),
        )) {
            report.add(
                row.tree_size,
                ProblemKind::Checkpoint,
                format!(
                    "the database checkpoint signed at {} has no copy in {} (external copy missing)",
                    from_micros(row.signed_at_us),
                    checkpoint_dir.display()
                ),
            );
        }
    }

    // Checkpoints outside the database: what catches a database truncated with its checkpoints.
    for (path, parsed) in external {
        match parsed {
            Err(why) => report.add(
                0,
                ProblemKind::Checkpoint,
                format!(
                    "the external checkpoint {} cannot be read: {why}",
                    path.display()
                ),
            ),
            Ok(c) => {
                let key = checkpoint::read_key(checkpoint_dir, &c.key_id)
                    .or_else(|| db_keys.get(&c.key_id).map(|(spki, _)| spki.clone()));
                check(&mut report, Source::External(path), &c, key);
            }
        }
    }

    report.problems.sort_by_key(|p| (p.index, p.kind));
    Ok(report)
}

fn hashes(row: &JournalRow) -> Option<(Hash, Hash, Hash)> {
    Some((
        row.payload_sha256.as_slice().try_into().ok()?,
        row.prev_leaf_hash.as_slice().try_into().ok()?,
        row.leaf_hash.as_slice().try_into().ok()?,
    ))
}

fn report_gap(report: &mut VerifyReport, from: u64, to: u64) {
    const LISTED: u64 = 20;
    for index in from..to.min(from + LISTED) {
        report.add(index, ProblemKind::Deleted, "missing (deleted)");
    }
    if to - from > LISTED {
        report.add(
            from + LISTED,
            ProblemKind::Deleted,
            format!(
                "missing (deleted), and so are the entries after it up to index {}",
                to - 1
            ),
        );
    }
}

/// Names what each suspect row is: an entry moved from another index (its previous
/// hash says where it was recorded, and its leaf hash matches there), or a modified one.
/// Also names the entry a chain break points at, unless it is already named.
async fn classify_suspects(
    store: &Store,
    report: &mut VerifyReport,
    suspects: &[Suspect],
    chain_breaks: &[u64],
) -> Result<(), JournalError> {
    let suspect_indexes: HashSet<u64> = suspects.iter().map(|s| s.seq).collect();
    // leaf hash → the index that entry was recorded at. Rows that check out at their
    // own index were recorded there; suspects are resolved from their predecessor.
    let mut recorded: HashMap<Hash, u64> = HashMap::new();
    if !suspects.is_empty() {
        let wanted: HashSet<Hash> = suspects.iter().map(|s| s.prev).collect();
        let mut pages = Pages::of(store);
        while let Some(rows) = pages.next().await? {
            for row in rows {
                if let (Ok(leaf), Ok(seq)) = (
                    Hash::try_from(row.leaf_hash.as_slice()),
                    u64::try_from(row.seq),
                ) && wanted.contains(&leaf)
                    && !suspect_indexes.contains(&seq)
                {
                    recorded.insert(leaf, seq);
                }
            }
        }
    }
    // Suspects come in index order, so a run of shifted entries resolves in one pass;
    // repeat while passes make progress (entries moved down the log).
    let mut moved_from: HashMap<u64, u64> = HashMap::new();
    loop {
        let before = moved_from.len();
        for suspect in suspects {
            if moved_from.contains_key(&suspect.seq) {
                continue;
            }
            let candidate = if suspect.prev == [0; 32] {
                Some(0)
            } else {
                recorded.get(&suspect.prev).map(|index| index + 1)
            };
            if let Some(o) = candidate
                && o != suspect.seq
                && entry_leaf_hash(
                    o,
                    suspect.recorded_at_us,
                    &suspect.prev,
                    &suspect.payload_sha256,
                    &suspect.kind,
                ) == suspect.leaf
            {
                moved_from.insert(suspect.seq, o);
                recorded.insert(suspect.leaf, o);
            }
        }
        if moved_from.len() == before {
            break;
        }
    }
    let mut named: HashSet<u64> = suspect_indexes.clone();
    for suspect in suspects {
        match moved_from.get(&suspect.seq).copied() {
            Some(o) => {
                report.add(
                    suspect.seq,
                    ProblemKind::Reordered,
                    format!("holds the entry recorded at index {o} (swapped or reordered)"),
                );
                // The entry recorded at `o` moved up: whatever now sits at `o` and checks
                // out on its own was put there.
                if o < suspect.seq && !suspect_indexes.contains(&o) && named.insert(o) {
                    report.add(
                        o,
                        ProblemKind::Inserted,
                        format!(
                            "is not in the original chain: the entry recorded at index {o} \
                             now sits at index {} (inserted)",
                            suspect.seq
                        ),
                    );
                }
            }
            None => report.add(
                suspect.seq,
                ProblemKind::Modified,
                "its fields (time, kind or hashes) do not match its leaf hash (modified)",
            ),
        }
    }
    for &seq in chain_breaks {
        let before = seq.saturating_sub(1);
        if seq == 0 {
            report.add(
                0,
                ProblemKind::Modified,
                "does not start the chain (modified)",
            );
        } else if !suspect_indexes.contains(&before) && named.insert(before) {
            report.add(
                before,
                ProblemKind::Inserted,
                format!("is not the entry that entry {seq} was chained to (replaced or inserted)"),
            );
        }
    }
    Ok(())
}
