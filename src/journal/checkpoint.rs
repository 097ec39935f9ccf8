//! Signed checkpoints: the bytes the audit key signs (tree size, root, time, key id),
//! and their copies outside the database: one file per checkpoint plus every audit
//! public key, each written atomically (temp file, fsync, rename, fsync the folder).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;

use super::entry::from_micros;
use super::merkle::Hash;
use crate::crypto::{self, SignatureAlgorithm};

/// The first line of every signed checkpoint message.
const MESSAGE_HEADER: &str = "sceau audit journal checkpoint v1";
const CHECKPOINTS: &str = "checkpoints";
const KEYS: &str = "keys";

/// A checkpoint signed by the audit key: the log had `tree_size` entries with this
/// root at `signed_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub signed_at_us: i64,
    /// Hex SHA-256 of the audit key's SPKI DER.
    pub key_id: String,
    pub algorithm: SignatureAlgorithm,
    pub signature: Vec<u8>,
}

impl SignedCheckpoint {
    pub fn signed_at(&self) -> OffsetDateTime {
        from_micros(self.signed_at_us)
    }

    /// The exact bytes the audit key signs.
    pub fn message(&self) -> Vec<u8> {
        message(
            self.tree_size,
            &self.root_hash,
            self.signed_at_us,
            &self.key_id,
        )
    }

    /// Checks the signature with `spki`, which must be the key `key_id` names.
    pub fn verify(&self, spki: &SubjectPublicKeyInfoOwned) -> Result<(), CheckpointProblem> {
        let id = crypto::spki_sha256(spki).map_err(|_| CheckpointProblem::KeyUnreadable)?;
        if hex::encode(id) != self.key_id {
            return Err(CheckpointProblem::WrongKey);
        }
        crypto::verify(spki, self.algorithm, &self.message(), &self.signature)
            .map_err(|_| CheckpointProblem::BadSignature)
    }

    /// The file name of its external copy: sorts by size, then time.
    pub fn file_name(&self) -> String {
        format!(
            "{:020}-{:020}-{}.json",
            self.tree_size,
            self.signed_at_us.max(0),
            &self.key_id[..self.key_id.len().min(16)]
        )
    }
}

/// Why a checkpoint does not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointProblem {
    #[error("its key is unknown")]
    UnknownKey,
    #[error("its key cannot be read")]
    KeyUnreadable,
    #[error("the key it names is not the key found under that id")]
    WrongKey,
    #[error("its signature does not verify")]
    BadSignature,
}

pub(crate) fn message(tree_size: u64, root: &Hash, signed_at_us: i64, key_id: &str) -> Vec<u8> {
    format!(
        "{MESSAGE_HEADER}\nsize {tree_size}\nroot {}\ntime {signed_at_us}\nkey {key_id}\n",
        hex::encode(root)
    )
    .into_bytes()
}

/// The JSON form of an external checkpoint file.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    tree_size: u64,
    root_hash: String,
    signed_at_us: i64,
    /// For people reading the file; `signed_at_us` is what is signed.
    signed_at: String,
    key_id: String,
    /// The signature algorithm's OID, dotted.
    algorithm: String,
    /// Base64 (standard alphabet).
    signature: String,
}

pub(crate) fn algorithm_to_text(algorithm: SignatureAlgorithm) -> String {
    algorithm.oid().to_string()
}

pub(crate) fn algorithm_from_text(text: &str) -> Option<SignatureAlgorithm> {
    let oid = const_oid::ObjectIdentifier::new(text).ok()?;
    SignatureAlgorithm::from_oid(&oid)
}

fn to_file(checkpoint: &SignedCheckpoint) -> Result<Vec<u8>, serde_json::Error> {
    use base64::Engine;
    let signed_at = checkpoint
        .signed_at()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut bytes = serde_json::to_vec_pretty(&CheckpointFile {
        tree_size: checkpoint.tree_size,
        root_hash: hex::encode(checkpoint.root_hash),
        signed_at_us: checkpoint.signed_at_us,
        signed_at,
        key_id: checkpoint.key_id.clone(),
        algorithm: algorithm_to_text(checkpoint.algorithm),
        signature: base64::engine::general_purpose::STANDARD.encode(&checkpoint.signature),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn from_file(bytes: &[u8]) -> Result<SignedCheckpoint, String> {
    use base64::Engine;
    let file: CheckpointFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let root_hash = hex::decode(&file.root_hash)
        .ok()
        .and_then(|root| Hash::try_from(root).ok())
        .ok_or("root_hash is not 32 hex bytes")?;
    let algorithm = algorithm_from_text(&file.algorithm).ok_or("unknown algorithm")?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&file.signature)
        .map_err(|e| format!("signature: {e}"))?;
    Ok(SignedCheckpoint {
        tree_size: file.tree_size,
        root_hash,
        signed_at_us: file.signed_at_us,
        key_id: file.key_id,
        algorithm,
        signature,
    })
}

/// Writes the checkpoint's external copy (blocking: call from `spawn_blocking`).
pub(crate) fn write_checkpoint(dir: &Path, checkpoint: &SignedCheckpoint) -> std::io::Result<()> {
    let bytes = to_file(checkpoint).map_err(std::io::Error::other)?;
    write_atomically(&dir.join(CHECKPOINTS), &checkpoint.file_name(), &bytes)
}

/// Writes an audit public key as `keys/<key_id>.der` unless it is already there.
pub(crate) fn write_key(dir: &Path, key_id: &str, spki_der: &[u8]) -> std::io::Result<()> {
    let keys = dir.join(KEYS);
    let name = format!("{key_id}.der");
    match std::fs::read(keys.join(&name)) {
        Ok(existing) if existing == spki_der => Ok(()),
        _ => write_atomically(&keys, &name, spki_der),
    }
}

/// Reads `keys/<key_id>.der`, if there.
pub fn read_key(dir: &Path, key_id: &str) -> Option<Vec<u8>> {
    if !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    std::fs::read(dir.join(KEYS).join(format!("{key_id}.der"))).ok()
}

/// Every external checkpoint file, in name order, each parsed or with why it is not.
pub fn read_checkpoints(
    dir: &Path,
) -> std::io::Result<Vec<(PathBuf, Result<SignedCheckpoint, String>)>> {
    let folder = dir.join(CHECKPOINTS);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| from_file(&bytes));
            (path, parsed)
        })
        .collect())
}

/// temp file in the same folder, fsync, rename over the name, fsync the folder: after
/// a crash the file is either absent or complete.
fn write_atomically(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let temp = folder.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, folder.join(name))?;
        std::fs::File::open(folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = SignedCheckpoint {
            tree_size: 12,
            root_hash: [7; 32],
            signed_at_us: 1_700_000_000_000_000,
            key_id: "ab".repeat(32),
            algorithm: SignatureAlgorithm::EcdsaSha256,
            signature: vec![1, 2, 3],
        };
        write_checkpoint(dir.path(), &checkpoint).unwrap();
        let read = read_checkpoints(dir.path()).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.as_ref().unwrap(), &checkpoint);
        let text = String::from_utf8(checkpoint.message()).unwrap();
        assert!(text.contains("size 12\n"), "{text}");
    }
}
