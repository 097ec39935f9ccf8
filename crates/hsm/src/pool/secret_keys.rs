//! The pool's secret-key operations: the wrapping key made once (AES-256,
//! sensitive, never extractable) and used to encrypt and decrypt in the token.

use super::*;

impl TokenPool {
    /// The AES-256 key labelled `label`, generated (sensitive, never extractable,
    /// encrypt/decrypt only) if the token has none. Serialised with every other
    /// object change of this pool, so concurrent callers in one process get the
    /// same key. A found key that is not AES-256 and locked down, or a label
    /// carried by several keys, is refused rather than guessed at. Blocking.
    pub fn ensure_wrapping_key_blocking(&self, label: &str) -> Result<KeyId, HsmError> {
        let _changing = self
            .object_changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Each attempt looks before it generates, so a retry never makes a second key.
        self.with_session("C_GenerateKey", |pool, session| {
            let found = secret::find_by_label(session, label)?;
            let handle = match found.as_slice() {
                [] => {
                    let id = secret::generate(pool, session, label)?;
                    secret::find_by_id(session, &id)?
                }
                [handle] => *handle,
                several => {
                    return Err(AttemptError::Fatal(HsmError::AmbiguousLabel {
                        label: label.to_owned(),
                        count: several.len(),
                        token: pool.token.clone(),
                    }));
                }
            };
            let id = keys::key_id_of(session, handle)?.ok_or_else(|| {
                AttemptError::Fatal(HsmError::Worker(format!(
                    "secret key '{label}' on token '{}' has no 16-byte CKA_ID",
                    pool.token
                )))
            })?;
            let info = secret::info(session, id, handle)?;
            if !info.is_locked_down() || !info.encrypt || !info.decrypt {
                return Err(AttemptError::Fatal(HsmError::UnusableKey {
                    id,
                    token: pool.token.clone(),
                    reason: format!(
                        "secret key '{label}' is not an AES-256 encryption key that is sensitive and never extractable"
                    ),
                }));
            }
            pool.secret_handles
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(id, handle);
            Ok(id)
        })
    }

    pub async fn ensure_wrapping_key(self: Arc<Self>, label: String) -> Result<KeyId, HsmError> {
        run_blocking(move || self.ensure_wrapping_key_blocking(&label)).await
    }

    /// Encrypts `plaintext` with AES-256-GCM inside the token under the secret
    /// key `id`, binding `aad`. A fresh random 96-bit IV per call; the result is
    /// iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes). Blocking.
    pub fn encrypt_with_secret_key_blocking(
        &self,
        id: &KeyId,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.with_session("C_Encrypt", |pool, session| {
            let handle = pool.secret_key(session, id)?;
            secret::encrypt(session, handle, plaintext, aad)
        })
    }

    /// [`TokenPool::encrypt_with_secret_key_blocking`] off the async runtime. The
    /// plaintext buffer is wiped once the token has it.
    pub async fn encrypt_with_secret_key(
        self: Arc<Self>,
        id: KeyId,
        mut plaintext: Vec<u8>,
        aad: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        run_blocking(move || {
            let sealed = self.encrypt_with_secret_key_blocking(&id, &plaintext, &aad);
            plaintext.zeroize();
            sealed
        })
        .await
    }

    /// Reverses [`TokenPool::encrypt_with_secret_key_blocking`]. A blob that was
    /// altered, truncated, or sealed with other `aad` or another key is
    /// [`HsmError::DecryptFailed`]. Blocking.
    pub fn decrypt_with_secret_key_blocking(
        &self,
        id: &KeyId,
        blob: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.with_session("C_Decrypt", |pool, session| {
            let handle = pool.secret_key(session, id)?;
            secret::decrypt(pool, session, id, handle, blob, aad)
        })
    }

    /// [`TokenPool::decrypt_with_secret_key_blocking`] off the async runtime. The
    /// caller owns the plaintext and should wipe it when done.
    pub async fn decrypt_with_secret_key(
        self: Arc<Self>,
        id: KeyId,
        blob: Vec<u8>,
        aad: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        run_blocking(move || self.decrypt_with_secret_key_blocking(&id, &blob, &aad)).await
    }

    /// What the token says about the secret key `id` (protection and usage
    /// attributes, never its value): for audits and tests. Blocking.
    pub fn secret_key_info_blocking(&self, id: &KeyId) -> Result<SecretKeyInfo, HsmError> {
        self.with_session("C_GetAttributeValue", |pool, session| {
            let handle = pool.secret_key(session, id)?;
            secret::info(session, *id, handle)
        })
    }
}
