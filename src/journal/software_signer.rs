//! A software P-256 checkpoint signer for tests, benches and the `journal-load` tool.
//! Production signs checkpoints with the HSM audit key instead.

use std::path::Path;

use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use spki::SubjectPublicKeyInfoOwned;

use super::CheckpointSigner;
use crate::crypto::{self, SignatureAlgorithm};

/// An ECDSA P-256 key held in memory.
pub struct SoftwareSigner {
    key: SigningKey,
    spki: SubjectPublicKeyInfoOwned,
    key_id: String,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftwareSigner({})", self.key_id)
    }
}

impl SoftwareSigner {
    pub fn generate() -> Self {
        Self::from_key(SigningKey::random(&mut rand::thread_rng()))
    }

    /// Loads the key (a raw 32-byte scalar) from `path`, creating it when missing; when
    /// several processes race to create it, they all end up with the first one written.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if let Ok(bytes) = std::fs::read(path) {
            return Self::from_bytes(&bytes);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let key = SigningKey::random(&mut rand::thread_rng());
        let temp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&temp, key.to_bytes())?;
        // hard_link fails when the name exists: the first writer wins, atomically.
        let linked = std::fs::hard_link(&temp, path);
        std::fs::remove_file(&temp)?;
        match linked {
            Ok(()) => Ok(Self::from_key(key)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_bytes(&std::fs::read(path)?)
            }
            Err(e) => Err(e),
        }
    }

    fn from_bytes(bytes: &[u8]) -> std::io::Result<Self> {
        SigningKey::from_slice(bytes)
            .map(Self::from_key)
            .map_err(|_| std::io::Error::other("not a P-256 private key"))
    }

    #[expect(
        clippy::expect_used,
        reason = "a P-256 public key always encodes as SPKI, and that DER always parses back"
    )]
    fn from_key(key: SigningKey) -> Self {
        let der = key
            .verifying_key()
            .to_public_key_der()
            .expect("a P-256 public key encodes as SPKI");
        let spki = crypto::spki_from_der(der.as_bytes()).expect("the SPKI just encoded parses");
        let key_id = hex::encode(crypto::spki_sha256(&spki).expect("the SPKI re-encodes"));
        Self { key, spki, key_id }
    }
}

impl CheckpointSigner for SoftwareSigner {
    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        self.spki.clone()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaSha256
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        use signature::Signer;
        let signature: p256::ecdsa::Signature =
            self.key.try_sign(message).map_err(|e| e.to_string())?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}
