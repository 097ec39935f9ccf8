//! PAdES baseline seals (EN 319 142-1) as an incremental update that keeps the
//! original bytes: a signature dictionary (SubFilter ETSI.CAdES.detached, /M,
//! no signing-time in the CMS) in a new revision with its field and widget,
//! the ByteRange patched in place, and the CMS over everything outside
//! /Contents. Refused with 422, naming why: not a PDF, a file that cannot be
//! read (broken xref, truncated), an encrypted file, a certified file that
//! forbids changes (DocMDP P=1).

use std::time::SystemTime;

use crate::journal::event::SealMade;
use bytes::Bytes;
use lopdf::{Dictionary, Object, ObjectId, StringFormat};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Level, SealError, SealKeys, Sealer, TimeStamper};
use crate::auth::Principal;
use sceau_pdf::{PdfFile, ReadError, Revision};

mod appearance;
mod document;
mod dss;
mod revision;

pub use appearance::VisibleSeal;
use appearance::*;
use document::*;
use dss::*;
pub use revision::SealedPdf;
use revision::*;

/// `application/pdf`.
pub const MEDIA_TYPE: &str = "application/pdf";
/// Room for the CMS in /Contents, in bytes (hex doubles it in the file): the
/// seal, its chain and a time-stamp token fit with a wide margin.
const CONTENTS_BYTES: usize = 24 * 1024;
/// The ByteRange written first, then overwritten in place with the real one
/// padded to the same width.
const BYTE_RANGE_PLACEHOLDER: &str = "[0 9999999999 9999999999 9999999999]";

/// What the caller may say about the seal.
#[derive(Debug, Clone, Default)]
pub struct PadesOptions {
    pub reason: Option<String>,
    pub location: Option<String>,
    pub contact: Option<String>,
    /// The signature field: an existing empty field of that name is used,
    /// else a new one is made with it.
    pub field_name: Option<String>,
    /// Where the seal shows; `None`: an invisible seal.
    pub visible: Option<VisibleSeal>,
}

fn refused(reason: impl Into<String>) -> SealError {
    SealError::Invalid {
        field: "document",
        reason: reason.into(),
    }
}

impl<K: SealKeys> Sealer<K> {
    /// Seals a PDF at `level`: B-B, B-T (a signature time-stamp), B-LT (then a
    /// revision with the DSS), B-LTA (then a document time-stamp). The input
    /// is shared with the blocking task and, up to B-T, with the answer: it
    /// is never copied there.
    pub async fn pades(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        level: Level,
        options: &PadesOptions,
        pdf: Bytes,
    ) -> Result<SealedPdf, SealError> {
        let _slot = self.slot_of(pdf.len(), super::pdf_reservation(pdf.len()))?;
        let now = self.clock().now();
        // The right to the credential is checked before the document is read;
        // the SAD is spent only once the document proved sealable.
        let sealed_by = self.sealed_by(principal, credential_id).await?;
        let mut prepared = {
            let options = options.clone();
            let pdf = pdf.clone();
            tokio::task::spawn_blocking(move || prepare(&pdf, &options, now, sealed_by))
                .await
                .map_err(|e| SealError::Internal(e.to_string()))??
        };
        let document_sha256 = prepared.input_digest.clone().finalize().to_vec();
        patch_byte_range(&mut prepared)?;
        let digest = covered_digest(&prepared);
        // The SAD binds the document as received: what the caller hashed.
        // The credential is checked again here, not reused from `sealed_by`:
        // reading a large document takes time, and a revocation meanwhile
        // must stop the signature.
        let key = self
            .key_for(
                principal,
                credential_id,
                sad,
                std::slice::from_ref(&document_sha256),
            )
            .await?;
        // The CMS itself stays at B-T at most: PAdES puts the validation data
        // in the DSS (B-LT) and adds a document time-stamp (B-LTA).
        let signed = self
            .signed_data(principal, &key, level.min(Level::BT), &digest, None, false)
            .await?;
        fill_contents(&mut prepared, &signed)?;
        // Each revision is hashed once, as it is final: the file's digest
        // and the document time-stamp's both extend this state.
        let Prepared {
            update,
            input_digest: mut hashed,
            ..
        } = prepared;
        hashed.update(&update);
        let (head, tail) = if level >= Level::BLt {
            // The later revisions read the whole file: one buffer, with room
            // for them.
            let mut bytes = Vec::with_capacity(pdf.len() + update.len() + LATER_REVISIONS_BYTES);
            bytes.extend_from_slice(&pdf);
            bytes.extend_from_slice(&update);
            drop(update);
            let before = bytes.len();
            bytes = self.with_validation_data(&key, bytes).await?;
            hashed.update(&bytes[before..]);
            if level >= Level::BLta {
                let before = bytes.len();
                bytes = self.with_document_time_stamp(bytes, hashed.clone()).await?;
                hashed.update(&bytes[before..]);
            }
            (Bytes::new(), bytes)
        } else {
            (pdf, update)
        };
        let details = SealMade::of("pades", level.name(), hex::encode(&document_sha256));
        // The state already covers the whole file: no second pass over it.
        let journal_index = self
            .record(principal, &key, details, hashed.finalize().into())
            .await?;
        Ok(SealedPdf {
            head,
            tail,
            journal_index,
        })
    }

    /// B-LT: a revision with the DSS: the seal's certificate and chain, the
    /// time-stamping unit's certificate, the issuing CA's CRL (seal and TSU
    /// certificates) and the root's ARL (the issuing CA).
    async fn with_validation_data(
        &self,
        key: &super::SealingKey,
        mut bytes: Vec<u8>,
    ) -> Result<Vec<u8>, SealError> {
        let (chain, crls) = self.validation_data().await?;
        let mut certificates = vec![super::encode(&key.certificate)?];
        for certificate in &chain {
            certificates.push(super::encode(certificate)?);
        }
        if let TimeStamper::Local(tsa) = self.time_stamper() {
            certificates.push(super::encode(tsa.unit().certificate())?);
        }
        let mut revocation = Vec::new();
        for crl in &crls {
            revocation.push(super::encode(crl)?);
        }
        if let Some(arl) = self.latest_crl_der(crate::pki::crl::ROOT).await? {
            revocation.push(arl);
        }
        tokio::task::spawn_blocking(move || {
            let update = dss_revision(&bytes, &certificates, &revocation)?;
            bytes.extend_from_slice(&update);
            Ok(bytes)
        })
        .await
        .map_err(|e| SealError::Internal(e.to_string()))?
    }

    /// B-LTA: a revision with a document time-stamp (ETSI.RFC3161) over
    /// everything before it, the DSS included. `hashed` is the SHA-256
    /// state over all of `bytes`.
    async fn with_document_time_stamp(
        &self,
        bytes: Vec<u8>,
        hashed: Sha256,
    ) -> Result<Vec<u8>, SealError> {
        let now = self.clock().now();
        let (mut bytes, mut prepared) = tokio::task::spawn_blocking(move || {
            // Our own output: read, but not checked object by object again.
            let file = PdfFile::read(&bytes)
                .map_err(|e| SealError::Internal(format!("re-reading the sealed PDF: {e}")))?;
            let update = prepare_revision(
                &file,
                &PadesOptions::default(),
                now,
                Kind::DocumentTimeStamp,
                None,
            )?;
            drop(file);
            let prepared = placed(update, bytes.len(), hashed)?;
            Ok::<_, SealError>((bytes, prepared))
        })
        .await
        .map_err(|e| SealError::Internal(e.to_string()))??;
        patch_byte_range(&mut prepared)?;
        let digest = covered_digest(&prepared);
        let stamp = self
            .time_stamper()
            .stamp(crate::crypto::DigestAlgorithm::Sha256, &digest)
            .await
            .map_err(SealError::TimeStamp)?;
        fill_contents(&mut prepared, &stamp.token)?;
        bytes.extend_from_slice(&prepared.update);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates_are_utc() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(
            crate::clock::format::pdf_date(at),
            "D:19941106084937+00'00'"
        );
    }

    #[test]
    fn not_a_pdf_and_garbage_are_refused_with_a_reason() {
        let at = SystemTime::UNIX_EPOCH;
        for input in [&b"hello"[..], b"%PDF-1.7\ngarbage", b""] {
            let Err(SealError::Invalid { field, reason }) =
                prepare(input, &PadesOptions::default(), at, "Test".to_owned()).map(|_| ())
            else {
                panic!("accepted {input:?}");
            };
            assert_eq!(field, "document");
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn a_visible_seal_needs_a_sound_box_and_page() {
        assert_eq!(VisibleSeal::parse(None, None).unwrap(), None);
        assert_eq!(
            VisibleSeal::parse(None, Some("10, 20, 110,70")).unwrap(),
            Some(VisibleSeal {
                page: 1,
                rect: [10.0, 20.0, 110.0, 70.0]
            })
        );
        assert_eq!(
            VisibleSeal::parse(Some("3"), Some("0,0,50.5,40")).unwrap(),
            Some(VisibleSeal {
                page: 3,
                rect: [0.0, 0.0, 50.5, 40.0]
            })
        );
        for (page, area, field) in [
            (Some("2"), None, "box"),
            (Some("0"), Some("0,0,50,50"), "page"),
            (Some("x"), Some("0,0,50,50"), "page"),
            (None, Some("0,0,50"), "box"),
            (None, Some("0,0,50,50,1"), "box"),
            (None, Some("50,0,0,50"), "box"),
            (None, Some("0,0,4,50"), "box"),
            (None, Some("0,0,NaN,50"), "box"),
            (None, Some("0,0,inf,50"), "box"),
            (None, Some("0,0,99999,50"), "box"),
        ] {
            let Err(SealError::Invalid { field: got, .. }) = VisibleSeal::parse(page, area) else {
                panic!("accepted {page:?} {area:?}");
            };
            assert_eq!(got, field, "{page:?} {area:?}");
        }
    }

    #[test]
    fn appearance_text_is_escaped_win_ansi() {
        assert_eq!(win_ansi_string("a(b)c\\"), b"a\\(b\\)c\\\\".to_vec());
        assert_eq!(win_ansi_string("Démo 5 €"), b"D\xe9mo 5 \x80".to_vec());
        assert_eq!(win_ansi_string("漢"), b"?".to_vec());
    }

    #[test]
    fn text_strings_fall_back_to_utf16() {
        assert_eq!(text("Paris"), Object::string_literal(b"Paris".to_vec()));
        let Object::String(bytes, StringFormat::Hexadecimal) = text("Sète") else {
            panic!("not hex");
        };
        assert_eq!(&bytes[..2], &[0xFE, 0xFF]);
    }
}
