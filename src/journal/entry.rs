//! What a journal entry is: the event a caller appends, the entry as read back, and
//! the leaf input that binds an entry to its index, its time, its kind, the previous
//! leaf and the SHA-256 of its exact stored bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::merkle::{self, Hash};

/// The version tag that starts every leaf input; a new layout gets a new tag.
pub const LEAF_VERSION: u8 = 1;

/// The longest event kind accepted, in bytes.
pub const MAX_KIND_LEN: usize = 128;

/// An entry's stored form: what happened, who did it, and the details. Only
/// [`super::event::encode`] writes one, from a typed [`super::Event`]; readers
/// get it back from the stored bytes ([`super::event::decode`] types it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// A dotted event name, e.g. `ca.ceremony`, `seal.created`.
    pub kind: String,
    /// Who caused it: a principal, an operator, or `sceau` for the service itself.
    pub actor: String,
    pub details: serde_json::Value,
}

/// An entry read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub index: u64,
    pub recorded_at: OffsetDateTime,
    pub kind: String,
    /// The exact stored bytes (a JSON [`JournalEvent`]); `None` once purged.
    pub payload: Option<Vec<u8>>,
    pub payload_sha256: Hash,
    pub leaf_hash: Hash,
}

impl JournalEntry {
    /// The event, when the payload is still there.
    pub fn event(&self) -> Option<Result<JournalEvent, serde_json::Error>> {
        self.payload.as_deref().map(serde_json::from_slice)
    }
}

/// `LEAF_VERSION ‖ index (u64 BE) ‖ recorded_at µs (i64 BE) ‖ previous leaf hash ‖
/// payload SHA-256 ‖ kind length (u16 BE) ‖ kind`.
pub fn leaf_input(
    index: u64,
    recorded_at_us: i64,
    prev_leaf_hash: &Hash,
    payload_sha256: &Hash,
    kind: &str,
) -> Vec<u8> {
    let kind = kind.as_bytes();
    // `Journal::append` refuses kinds longer than MAX_KIND_LEN, so this never cuts.
    let kind_len = u16::try_from(kind.len()).unwrap_or(u16::MAX);
    let mut input = Vec::with_capacity(1 + 8 + 8 + 32 + 32 + 2 + kind.len());
    input.push(LEAF_VERSION);
    input.extend_from_slice(&index.to_be_bytes());
    input.extend_from_slice(&recorded_at_us.to_be_bytes());
    input.extend_from_slice(prev_leaf_hash);
    input.extend_from_slice(payload_sha256);
    input.extend_from_slice(&kind_len.to_be_bytes());
    input.extend_from_slice(&kind[..usize::from(kind_len)]);
    input
}

/// The RFC 9162 leaf hash of an entry.
pub fn entry_leaf_hash(
    index: u64,
    recorded_at_us: i64,
    prev_leaf_hash: &Hash,
    payload_sha256: &Hash,
    kind: &str,
) -> Hash {
    merkle::leaf_hash(&leaf_input(
        index,
        recorded_at_us,
        prev_leaf_hash,
        payload_sha256,
        kind,
    ))
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Converts a time to the microseconds the journal stores and hashes.
pub fn to_micros(time: std::time::SystemTime) -> i64 {
    let time = OffsetDateTime::from(time);
    // i64 microseconds reach year 294247: the cast cannot truncate a real date.
    (time.unix_timestamp_nanos() / 1_000) as i64
}

pub fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_input_layout_is_fixed() {
        let input = leaf_input(7, -1, &[0xaa; 32], &[0xbb; 32], "x.y");
        assert_eq!(input[0], LEAF_VERSION);
        assert_eq!(&input[1..9], &7u64.to_be_bytes());
        assert_eq!(&input[9..17], &(-1i64).to_be_bytes());
        assert_eq!(&input[17..49], &[0xaa; 32]);
        assert_eq!(&input[49..81], &[0xbb; 32]);
        assert_eq!(&input[81..83], &3u16.to_be_bytes());
        assert_eq!(&input[83..], b"x.y");
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let base = entry_leaf_hash(1, 2, &[3; 32], &[4; 32], "k");
        assert_ne!(base, entry_leaf_hash(2, 2, &[3; 32], &[4; 32], "k"));
        assert_ne!(base, entry_leaf_hash(1, 3, &[3; 32], &[4; 32], "k"));
        assert_ne!(base, entry_leaf_hash(1, 2, &[5; 32], &[4; 32], "k"));
        assert_ne!(base, entry_leaf_hash(1, 2, &[3; 32], &[5; 32], "k"));
        assert_ne!(base, entry_leaf_hash(1, 2, &[3; 32], &[4; 32], "l"));
    }
}
