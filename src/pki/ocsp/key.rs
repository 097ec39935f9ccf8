//! The responder's delegated key and certificate, on the services token.

use super::*;

/// The delegated responder: its key in the HSM and its certificate.
#[derive(Debug, Clone)]
pub struct ResponderKey {
    pub(super) signer: HsmSigner,
    pub(super) certificate: Certificate,
    /// SHA-1 of the responder's subjectPublicKey (responderID byKey).
    pub(super) key_hash: Vec<u8>,
    /// Hex of the certificate's serial: cached responses name the key that signed them.
    pub(super) serial: String,
}

impl ResponderKey {
    pub fn new(signer: HsmSigner, certificate: Certificate) -> Self {
        let key_hash = Sha1::digest(
            certificate
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        )
        .to_vec();
        let serial = hex::encode(certificate.tbs_certificate.serial_number.as_bytes());
        Self {
            signer,
            certificate,
            key_hash,
            serial,
        }
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn not_after(&self) -> SystemTime {
        self.certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time()
    }
}
