//! AES secret keys in a token for envelope encryption: their attribute template
//! (sensitive, never extractable, encrypt/decrypt only), AES-GCM inside the HSM,
//! and reading their protection attributes back for audits and tests.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use rand::RngCore;

use super::HsmError;
use super::keys::KeyId;
use super::pool::{AttemptError, TokenPool};

/// AES-256.
const KEY_BYTES: u64 = 32;
/// The GCM nonce length the HSM is given (96 bits, the length GCM is made for).
pub(super) const GCM_IV_BYTES: usize = 12;
/// The GCM tag length (128 bits), appended to the ciphertext by the token.
pub(super) const GCM_TAG_BYTES: usize = 16;

/// What a token says about one secret key: everything that decides whether its
/// value could ever leave the token, and what it may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyInfo {
    pub id: KeyId,
    pub label: String,
    /// CKA_VALUE_LEN in bytes (32 for AES-256).
    pub value_len: u64,
    pub token_object: bool,
    pub private: bool,
    pub sensitive: bool,
    pub always_sensitive: bool,
    pub extractable: bool,
    pub never_extractable: bool,
    pub encrypt: bool,
    pub decrypt: bool,
    pub wrap: bool,
    pub unwrap: bool,
}

impl SecretKeyInfo {
    /// Whether the key is what sceau generates: AES-256, sensitive, never
    /// extractable, kept on the token and behind the login.
    pub fn is_locked_down(&self) -> bool {
        self.value_len == KEY_BYTES
            && self.token_object
            && self.private
            && self.sensitive
            && self.always_sensitive
            && !self.extractable
            && self.never_extractable
    }
}

/// The AES secret keys carrying `label`.
pub(super) fn find_by_label(
    session: &Session,
    label: &str,
) -> Result<Vec<ObjectHandle>, AttemptError> {
    Ok(session.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?)
}

/// The AES secret key with CKA_ID `id`.
pub(super) fn find_by_id(session: &Session, id: &KeyId) -> Result<ObjectHandle, AttemptError> {
    let found = session.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Id(id.as_bytes().to_vec()),
    ])?;
    found.first().copied().ok_or(AttemptError::KeyMissing(*id))
}

/// Generates an AES-256 key that can only encrypt and decrypt inside the token.
pub(super) fn generate(
    pool: &TokenPool,
    session: &Session,
    label: &str,
) -> Result<KeyId, AttemptError> {
    let id = KeyId::random();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(KEY_BYTES.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Id(id.as_bytes().to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session.generate_key(&Mechanism::AesKeyGen, &template)?;
    tracing::info!(token = %pool.token_label(), key_id = %id, label, "AES-256 secret key generated in the HSM");
    Ok(id)
}

/// Reads the protection attributes of the secret key `handle` (whose CKA_ID is `id`).
pub(super) fn info(
    session: &Session,
    id: KeyId,
    handle: ObjectHandle,
) -> Result<SecretKeyInfo, AttemptError> {
    let attributes = session.get_attributes(
        handle,
        &[
            AttributeType::Label,
            AttributeType::ValueLen,
            AttributeType::Token,
            AttributeType::Private,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Encrypt,
            AttributeType::Decrypt,
            AttributeType::Wrap,
            AttributeType::Unwrap,
        ],
    )?;
    // Anything the token does not report counts as the unsafe answer.
    let mut info = SecretKeyInfo {
        id,
        label: String::new(),
        value_len: 0,
        token_object: false,
        private: false,
        sensitive: false,
        always_sensitive: false,
        extractable: true,
        never_extractable: false,
        encrypt: false,
        decrypt: false,
        wrap: true,
        unwrap: true,
    };
    for attribute in attributes {
        match attribute {
            Attribute::Label(bytes) => info.label = String::from_utf8_lossy(&bytes).into_owned(),
            Attribute::ValueLen(len) => info.value_len = len.into(),
            Attribute::Token(v) => info.token_object = v,
            Attribute::Private(v) => info.private = v,
            Attribute::Sensitive(v) => info.sensitive = v,
            Attribute::AlwaysSensitive(v) => info.always_sensitive = v,
            Attribute::Extractable(v) => info.extractable = v,
            Attribute::NeverExtractable(v) => info.never_extractable = v,
            Attribute::Encrypt(v) => info.encrypt = v,
            Attribute::Decrypt(v) => info.decrypt = v,
            Attribute::Wrap(v) => info.wrap = v,
            Attribute::Unwrap(v) => info.unwrap = v,
            _ => {}
        }
    }
    Ok(info)
}

/// AES-GCM in the token under a fresh random 96-bit IV, 128-bit tag.
/// Returns iv ‖ ciphertext ‖ tag.
pub(super) fn encrypt(
    session: &Session,
    handle: ObjectHandle,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, AttemptError> {
    let mut iv = [0u8; GCM_IV_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let mut iv_param = iv;
    let params = GcmParams::new(&mut iv_param, aad, tag_bits())?;
    let sealed = session.encrypt(&Mechanism::AesGcm(params), handle, plaintext)?;
    let mut out = Vec::with_capacity(GCM_IV_BYTES + sealed.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Reverses [`encrypt`]. A blob that is too short, altered, or bound to other
/// AAD is [`HsmError::DecryptFailed`].
pub(super) fn decrypt(
    pool: &TokenPool,
    session: &Session,
    id: &KeyId,
    handle: ObjectHandle,
    blob: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, AttemptError> {
    let failed = || {
        AttemptError::Fatal(HsmError::DecryptFailed {
            id: *id,
            token: pool.token_label().to_owned(),
        })
    };
    if blob.len() < GCM_IV_BYTES + GCM_TAG_BYTES {
        return Err(failed());
    }
    let (iv, sealed) = blob.split_at(GCM_IV_BYTES);
    let mut iv_param = [0u8; GCM_IV_BYTES];
    iv_param.copy_from_slice(iv);
    let params = GcmParams::new(&mut iv_param, aad, tag_bits())?;
    match session.decrypt(&Mechanism::AesGcm(params), handle, sealed) {
        Ok(plaintext) => Ok(plaintext),
        // What tokens answer when the tag does not match. cryptoki 0.12 has no
        // name for PKCS#11 3.0's CKR_AEAD_DECRYPT_FAILED, and SoftHSM 2.6.1 answers
        // CKR_GENERAL_ERROR (measured: tests/evidence_vault.rs), so a real fault in
        // C_Decrypt is reported as a failed decryption too.
        Err(CkError::Pkcs11(
            RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange | RvError::GeneralError,
            _,
        )) => Err(failed()),
        Err(e) => Err(e.into()),
    }
}

fn tag_bits() -> cryptoki::types::Ulong {
    // GCM_TAG_BYTES is 16: the cast cannot truncate.
    ((GCM_TAG_BYTES * 8) as u64).into()
}
