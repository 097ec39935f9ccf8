//! The time-stamping unit: its key in the HSM, its certificate with the
//! path to the root, and the period its key may sign in.

use std::time::SystemTime;

use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::PrivateKeyUsagePeriod;

use super::TsaError;
use crate::hsm::HsmSigner;

/// The time-stamping unit: its key in the HSM and its certificate.
#[derive(Debug, Clone)]
pub struct TimeStampingUnit {
    pub(super) signer: HsmSigner,
    pub(super) certificate: Certificate,
    /// The CA certificates between the unit and the root: with the unit's,
    /// what a token carries when the request sets certReq.
    pub(super) chain: Vec<Certificate>,
    /// Hex of the certificate's serial.
    serial: String,
    /// When the key may sign: the privateKeyUsagePeriod, else the validity.
    pub(super) usage: (SystemTime, SystemTime),
}

impl TimeStampingUnit {
    pub fn new(
        signer: HsmSigner,
        certificate: Certificate,
        chain: Vec<Certificate>,
    ) -> Result<Self, TsaError> {
        let tbs = &certificate.tbs_certificate;
        let mut usage = (
            tbs.validity.not_before.to_system_time(),
            tbs.validity.not_after.to_system_time(),
        );
        if let Some(extension) = tbs
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5912::ID_CE_PRIVATE_KEY_USAGE_PERIOD)
        {
            let period = PrivateKeyUsagePeriod::from_der(extension.extn_value.as_bytes())
                .map_err(|e| TsaError::Unit(format!("privateKeyUsagePeriod: {e}")))?;
            if let Some(start) = period.not_before {
                usage.0 = usage.0.max(start.to_system_time());
            }
            if let Some(end) = period.not_after {
                usage.1 = usage.1.min(end.to_system_time());
            }
        }
        let serial = hex::encode(tbs.serial_number.as_bytes());
        Ok(Self {
            signer,
            certificate,
            chain,
            serial,
            usage,
        })
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The end of the key's usage period.
    pub fn usage_ends(&self) -> SystemTime {
        self.usage.1
    }
}
