//! Evidence documents (ID copies, registry extracts, mandates): recognised by
//! content, sealed under a data key wrapped by a key that stays in the HSM.
//!
//! Envelope encryption: each document gets a fresh random AES-256 data key and
//! is encrypted in software with AES-256-GCM; the data key is then encrypted
//! (wrapped) with AES-256-GCM inside the HSM under the vault's key-encryption
//! key (KEK), which is sensitive and never extractable. The caller's `context`
//! (e.g. the document id) is the associated data of both layers, so a sealed
//! document cannot be passed off as another. The plaintext data key is wiped
//! after use and never logged or stored.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{HsmError, KeyId, TokenPool};

/// What an evidence document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    IdentityDocument,
    RegistryExtract,
    Mandate,
    Other,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 4] = [
        Self::IdentityDocument,
        Self::RegistryExtract,
        Self::Mandate,
        Self::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::IdentityDocument => "identity_document",
            Self::RegistryExtract => "registry_extract",
            Self::Mandate => "mandate",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The file types the vault accepts, decided by content (never by file name
/// or the declared Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Pdf,
    Jpeg,
    Png,
}

impl MediaType {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

/// Why a document was refused or could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// `seen` says what the content looked like, in words for the submitter.
    #[error("the document is not a PDF, JPEG or PNG file ({seen})")]
    UnsupportedContent { seen: &'static str },
    #[error("the document is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { limit: u64, size: u64 },
    #[error("the sealed document was made with key '{found}', this vault holds key '{expected}'")]
    WrongKek { expected: String, found: String },
    /// Decryption failed or the result does not match what was recorded at sealing.
    #[error("the sealed document fails its integrity check: {0}")]
    Integrity(&'static str),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("evidence worker stopped: {0}")]
    Worker(String),
}

impl HasErrorKind for EvidenceError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedContent { .. } => ErrorKind::Unprocessable,
            Self::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::WrongKek { .. } | Self::Integrity(_) | Self::Worker(_) => ErrorKind::Internal,
            Self::Hsm(e) => e.kind(),
        }
    }
}

/// How far from the end of a PDF its `%%EOF` marker may be (trailing newlines,
/// padding some producers add).
const PDF_EOF_WINDOW: usize = 1024;
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
/// The whole IEND chunk: zero length, type, and the CRC of the type alone.
const PNG_IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

/// Recognises a PDF, JPEG or PNG file by its content: its signature at offset 0
/// and its end marker (so truncated uploads are refused too).
pub fn sniff(bytes: &[u8]) -> Result<MediaType, EvidenceError> {
    let refuse = |seen| Err(EvidenceError::UnsupportedContent { seen });
    if bytes.is_empty() {
        return refuse("it is empty");
    }
    if bytes.starts_with(b"%PDF-1.") || bytes.starts_with(b"%PDF-2.") {
        let tail = &bytes[bytes.len().saturating_sub(PDF_EOF_WINDOW)..];
        if contains(tail, b"%%EOF") {
            return Ok(MediaType::Pdf);
        }
        return refuse(
            "it starts like a PDF file but has no %%EOF marker at its end: it looks truncated",
        );
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        let end = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
        if end >= 5 && bytes[..end].ends_with(&[0xff, 0xd9]) {
            return Ok(MediaType::Jpeg);
        }
        return refuse(
            "it starts like a JPEG image but has no end-of-image marker: it looks truncated",
        );
    }
    if bytes.starts_with(&PNG_SIGNATURE) {
        if bytes.get(12..16) != Some(b"IHDR".as_slice()) {
            return refuse("it has a PNG signature but no image header: it is damaged");
        }
        if bytes.len() < 8 + 25 + 12 || !bytes.ends_with(&PNG_IEND) {
            return refuse(
                "it starts like a PNG image but has no IEND chunk at its end: it looks truncated",
            );
        }
        return Ok(MediaType::Png);
    }
    refuse(describe(bytes))
}

/// What an unaccepted content starts like, for the refusal message.
fn describe(bytes: &[u8]) -> &'static str {
    let start = &bytes[..bytes.len().min(512)];
    let trimmed = trim_ascii_start(start);
    let lower: Vec<u8> = trimmed
        .iter()
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    if bytes.starts_with(b"\x7fELF")
        || bytes.starts_with(b"MZ")
        || bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || bytes.starts_with(&[0xfe, 0xed, 0xfa, 0xcf])
        || bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
    {
        "its content starts like an executable"
    } else if bytes.starts_with(b"#!") {
        "its content starts like a script"
    } else if lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<head")
        || lower.starts_with(b"<body")
    {
        "its content starts like an HTML page"
    } else if lower.starts_with(b"<?xml") || lower.starts_with(b"<svg") {
        "its content starts like an XML or SVG file"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "its content starts like a ZIP archive or an office document"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "its content starts like a GIF image"
    } else if contains(start, b"%PDF-") {
        "it holds a PDF header, but not at its start"
    } else if start
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "its content is plain text"
    } else {
        "its content is of a type that is not recognised"
    }
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A document as the vault stores it. Nothing here reveals the document or its
/// data key without the HSM's key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedDocument {
    pub media_type: MediaType,
    /// SHA-256 of the plaintext document, checked again when it is opened.
    pub sha256: [u8; 32],
    /// The plaintext document's size in bytes.
    pub size: u64,
    /// The label of the HSM key that wrapped the data key.
    pub kek_label: String,
    /// The data key encrypted in the HSM: iv (12) ‖ ciphertext (32) ‖ tag (16).
    pub wrapped_key: Vec<u8>,
    /// The document encrypted with the data key: nonce (12) ‖ ciphertext ‖ tag (16).
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedDocument")
            .field("media_type", &self.media_type)
            .field("sha256", &hex::encode(self.sha256))
            .field("size", &self.size)
            .field("kek_label", &self.kek_label)
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// AES-256 data key length.
const DATA_KEY_BYTES: usize = 32;
/// AES-GCM nonce length (96 bits), prepended to the document ciphertext.
const NONCE_BYTES: usize = 12;

/// Seals and opens evidence documents with one HSM key-encryption key.
#[derive(Debug, Clone)]
pub struct EvidenceVault {
    pool: Arc<TokenPool>,
    kek_label: String,
    kek: KeyId,
}

impl EvidenceVault {
    /// The suffix of the conventional KEK label (e.g. `sceau-evidence-kek`).
    pub const KEK_LABEL_SUFFIX: &str = "evidence-kek";

    engine_constructor! {
        /// Finds the KEK labelled `label` on the pool's token, generating it the
        /// first time.
        async fn open(pool: Arc<TokenPool>, label: String) -> Result<Self, EvidenceError> {
            let kek = pool.clone().ensure_wrapping_key(label.clone()).await?;
            Ok(Self {
                pool,
                kek_label: label,
                kek,
            })
        }
    }

    pub fn kek_label(&self) -> &str {
        &self.kek_label
    }

    pub fn kek_id(&self) -> KeyId {
        self.kek
    }

    /// Encrypts a short secret (an enrolment token) in the HSM under the KEK,
    /// bound to `context`: what a notice stores in its place.
    pub async fn seal_secret(
        &self,
        secret: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, EvidenceError> {
        Ok(self
            .pool
            .clone()
            .encrypt_with_secret_key(self.kek, secret.to_vec(), context.to_vec())
            .await?)
    }

    engine_constructor! {
        /// Decrypts what [`EvidenceVault::seal_secret`] made with the same context.
        async fn open_secret(
            &self,
            sealed: &[u8],
            context: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, EvidenceError> {
            Ok(Zeroizing::new(
                self.pool
                    .clone()
                    .decrypt_with_secret_key(self.kek, sealed.to_vec(), context.to_vec())
                    .await?,
            ))
        }
    }

    /// Checks `document` (at most `limit` bytes, a PDF, JPEG or PNG by content)
    /// and encrypts it, bound to `context`.
    pub async fn seal(
        &self,
        document: Vec<u8>,
        limit: u64,
        context: &[u8],
    ) -> Result<SealedDocument, EvidenceError> {
        let size = u64::try_from(document.len()).unwrap_or(u64::MAX);
        if size > limit {
            return Err(EvidenceError::TooLarge { limit, size });
        }
        let media_type = sniff(&document)?;
        let mut data_key = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(data_key.as_mut_slice());
        // Hashing and encrypting a large document is CPU work: keep it off the runtime.
        let software_key = data_key.clone();
        let aad = context.to_vec();
        let (sha256, ciphertext) = tokio::task::spawn_blocking(move || {
            let sha256: [u8; 32] = Sha256::digest(&document).into();
            encrypt_document(&software_key, &document, &aad).map(|c| (sha256, c))
        })
        .await
        .map_err(|e| EvidenceError::Worker(e.to_string()))??;
        // The HSM wrapper wipes its copy of the key once the token has it.
        let wrapped_key = self
            .pool
            .clone()
            .encrypt_with_secret_key(self.kek, data_key.to_vec(), context.to_vec())
            .await?;
        drop(data_key);
        Ok(SealedDocument {
            media_type,
            sha256,
            size,
            kek_label: self.kek_label.clone(),
            wrapped_key,
            ciphertext,
        })
    }

    /// Decrypts `sealed` (which must have been sealed with this vault's KEK and
    /// the same `context`) and checks it against its recorded size, type and
    /// SHA-256.
    pub async fn unseal(
        &self,
        sealed: &SealedDocument,
        context: &[u8],
    ) -> Result<Vec<u8>, EvidenceError> {
        if sealed.kek_label != self.kek_label {
            return Err(EvidenceError::WrongKek {
                expected: self.kek_label.clone(),
                found: sealed.kek_label.clone(),
            });
        }
        let unwrapped = Zeroizing::new(
            self.pool
                .clone()
                .decrypt_with_secret_key(self.kek, sealed.wrapped_key.clone(), context.to_vec())
                .await?,
        );
        let data_key: Zeroizing<[u8; DATA_KEY_BYTES]> =
            Zeroizing::new(unwrapped.as_slice().try_into().map_err(|_| {
                EvidenceError::Integrity("the unwrapped data key has a wrong length")
            })?);
        drop(unwrapped);
        let ciphertext = sealed.ciphertext.clone();
        let aad = context.to_vec();
        let (document, sha256) = tokio::task::spawn_blocking(move || {
            let document = decrypt_document(&data_key, &ciphertext, &aad)?;
            let sha256: [u8; 32] = Sha256::digest(&document).into();
            Ok::<_, EvidenceError>((document, sha256))
        })
        .await
        .map_err(|e| EvidenceError::Worker(e.to_string()))??;
        if u64::try_from(document.len()).ok() != Some(sealed.size) {
            return Err(EvidenceError::Integrity(
                "the size differs from the one recorded at sealing",
            ));
        }
        if sha256 != sealed.sha256 {
            return Err(EvidenceError::Integrity(
                "the SHA-256 differs from the one recorded at sealing",
            ));
        }
        if sniff(&document).ok() != Some(sealed.media_type) {
            return Err(EvidenceError::Integrity(
                "the media type differs from the one recorded at sealing",
            ));
        }
        Ok(document)
    }
}

/// AES-256-GCM in software: nonce (12) ‖ ciphertext ‖ tag (16).
fn encrypt_document(
    key: &[u8; DATA_KEY_BYTES],
    document: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EvidenceError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: document, aad })
        .map_err(|_| EvidenceError::Worker("AES-GCM refused the document".to_owned()))?;
    let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decrypt_document(
    key: &[u8; DATA_KEY_BYTES],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EvidenceError> {
    if ciphertext.len() < NONCE_BYTES + 16 {
        return Err(EvidenceError::Integrity("the ciphertext is truncated"));
    }
    let (nonce, sealed) = ciphertext.split_at(NONCE_BYTES);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .map_err(|_| {
            EvidenceError::Integrity(
                "the document ciphertext was altered, or sealed with another context",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf() -> Vec<u8> {
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
            .to_vec()
    }

    fn jpeg() -> Vec<u8> {
        let mut bytes = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        bytes.extend_from_slice(b"JFIF\0");
        bytes.extend_from_slice(&[0x01, 0x02, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
        bytes.extend_from_slice(&[0xff, 0xd9]);
        bytes
    }

    fn png() -> Vec<u8> {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 13]);
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0x3a, 0x7e, 0x9b, 0x55]);
        bytes.extend_from_slice(&[0, 0, 0, 10]);
        bytes.extend_from_slice(b"IDAT");
        bytes.extend_from_slice(&[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
        bytes.extend_from_slice(&[0xe5, 0x27, 0xde, 0xfc]);
        bytes.extend_from_slice(&PNG_IEND);
        bytes
    }

    fn refusal(bytes: &[u8]) -> String {
        let error = sniff(bytes).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unprocessable, "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with("the document is not a PDF, JPEG or PNG file ("),
            "{text}"
        );
        text
    }

    #[test]
    fn accepts_pdf_jpeg_and_png_by_content() {
        assert_eq!(sniff(&pdf()).unwrap(), MediaType::Pdf);
        assert_eq!(sniff(b"%PDF-2.0\n...\n%%EOF").unwrap(), MediaType::Pdf);
        assert_eq!(sniff(&jpeg()).unwrap(), MediaType::Jpeg);
        assert_eq!(sniff(&png()).unwrap(), MediaType::Png);
        assert_eq!(MediaType::Pdf.mime(), "application/pdf");
        assert_eq!(MediaType::Jpeg.mime(), "image/jpeg");
        assert_eq!(MediaType::Png.mime(), "image/png");
    }

    #[test]
    fn pdf_eof_may_be_followed_by_some_bytes_but_not_far_away() {
        let mut padded = pdf();
        padded.extend(std::iter::repeat_n(b'\n', 900));
        assert_eq!(sniff(&padded).unwrap(), MediaType::Pdf);
        let mut far = pdf();
        far.extend(std::iter::repeat_n(b' ', 2000));
        assert!(refusal(&far).contains("truncated"));
    }

    #[test]
    fn a_jpeg_with_trailing_zero_padding_is_accepted() {
        let mut padded = jpeg();
        padded.extend_from_slice(&[0; 64]);
        assert_eq!(sniff(&padded).unwrap(), MediaType::Jpeg);
        let mut truncated = jpeg();
        truncated.truncate(truncated.len() - 2);
        assert!(refusal(&truncated).contains("JPEG"));
    }

    #[test]
    fn executables_renamed_as_pdf_are_refused() {
        let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
        elf.extend_from_slice(b"%PDF-1.7 %%EOF");
        let text = refusal(&elf);
        assert!(text.contains("executable"), "{text}");
        assert_eq!(
            text,
            "the document is not a PDF, JPEG or PNG file (its content starts like an executable)"
        );
        let pe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0This program cannot be run in DOS mode.";
        assert!(refusal(pe).contains("executable"));
    }

    #[test]
    fn a_pdf_without_eof_is_refused_as_truncated() {
        let full = pdf();
        let cut = &full[..full.len() / 2];
        let text = refusal(cut);
        assert!(text.contains("PDF") && text.contains("truncated"), "{text}");
    }

    #[test]
    fn an_empty_body_is_refused() {
        assert!(refusal(b"").contains("empty"));
    }

    #[test]
    fn a_png_without_iend_is_refused() {
        let full = png();
        let text = refusal(&full[..full.len() - 12]);
        assert!(text.contains("PNG") && text.contains("IEND"), "{text}");
        let mut no_header = full.clone();
        no_header[12..16].copy_from_slice(b"IDAT");
        assert!(refusal(&no_header).contains("damaged"));
    }

    #[test]
    fn html_and_other_content_are_refused_with_what_was_seen() {
        assert!(refusal(b"  <!DOCTYPE html><html><body>%PDF-1.4</body></html>").contains("HTML"));
        assert!(refusal(b"PK\x03\x04\x14\0\0\0").contains("ZIP"));
        assert!(refusal(b"hello, world\n").contains("plain text"));
        assert!(refusal(b"\0\x01\x02\x03").contains("not recognised"));
        assert!(refusal(b"junk\n%PDF-1.7\n%%EOF").contains("not at its start"));
    }

    #[test]
    fn too_large_names_the_document_and_the_limit() {
        let error = EvidenceError::TooLarge {
            limit: 10_485_760,
            size: 20_000_000,
        };
        assert_eq!(error.kind(), ErrorKind::PayloadTooLarge);
        let text = error.to_string();
        assert!(
            text.contains("document") && text.contains("10485760"),
            "{text}"
        );
    }

    #[test]
    fn document_kinds_round_trip_by_name_and_serde() {
        for kind in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(kind.name()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.name())
            );
        }
        assert_eq!(DocumentKind::parse("passport"), None);
    }

    #[test]
    fn software_layer_detects_tampering_and_wrong_context() {
        let key = [7u8; DATA_KEY_BYTES];
        let sealed = encrypt_document(&key, b"evidence", b"doc-1").unwrap();
        assert_eq!(sealed.len(), NONCE_BYTES + 8 + 16);
        assert_eq!(
            decrypt_document(&key, &sealed, b"doc-1").unwrap(),
            b"evidence"
        );
        assert!(decrypt_document(&key, &sealed, b"doc-2").is_err());
        let mut flipped = sealed.clone();
        flipped[NONCE_BYTES] ^= 1;
        assert!(decrypt_document(&key, &flipped, b"doc-1").is_err());
        assert!(decrypt_document(&key, &sealed[..20], b"doc-1").is_err());
        // Two seals of one document never share a nonce.
        let again = encrypt_document(&key, b"evidence", b"doc-1").unwrap();
        assert_ne!(sealed[..NONCE_BYTES], again[..NONCE_BYTES]);
    }
}
