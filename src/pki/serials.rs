//! Serial numbers: drawn from the OS CSPRNG and reserved in the store's one
//! register, under the kind of certificate they are for, before anything is
//! signed with them. A [`ReservedSerial`] is made only here, and the signing
//! path takes nothing else.

use std::time::SystemTime;

use x509_cert::serial_number::SerialNumber;

use super::certificate::{self, CertificateError};
use super::signing::CertificateKind;
use crate::store::{Store, StoreError};

/// Tries at drawing a serial number that is not taken (a collision of 128
/// random bits is not expected; the register's primary key is the guarantee).
const SERIAL_ATTEMPTS: usize = 3;

/// A serial number taken in the register for one kind of certificate.
#[derive(Debug)]
pub struct ReservedSerial {
    number: SerialNumber,
    hex: String,
    kind: CertificateKind,
}

impl ReservedSerial {
    /// Lowercase hex of the content octets: how sceau stores serials.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn kind(&self) -> CertificateKind {
        self.kind
    }

    /// The number, to be put in the TBSCertificate it was reserved for.
    pub fn into_number(self) -> SerialNumber {
        self.number
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("no free serial number after {SERIAL_ATTEMPTS} draws")]
    Exhausted,
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Draws a serial number no certificate of sceau has and takes it for a
/// certificate of `kind`. Once taken it stays taken, signed or not.
pub async fn reserve(
    store: &Store,
    kind: CertificateKind,
    now: SystemTime,
) -> Result<ReservedSerial, SerialError> {
    for _ in 0..SERIAL_ATTEMPTS {
        let number = certificate::random_serial()?;
        let hex = hex::encode(number.as_bytes());
        if store.reserve_serial(&hex, kind.name(), now.into()).await? {
            return Ok(ReservedSerial { number, hex, kind });
        }
        tracing::warn!(serial = %hex, "serial number already taken; drawing another");
    }
    Err(SerialError::Exhausted)
}

/// The serials of the certificates a key ceremony signs, reserved before it
/// starts (the ceremony itself runs in blocking code, away from the store).
#[derive(Debug)]
pub struct CeremonySerials {
    pub root: ReservedSerial,
    pub issuing: ReservedSerial,
    /// Present when the ceremony file asks for a client-authentication CA.
    pub client_auth: Option<ReservedSerial>,
    pub ocsp: ReservedSerial,
    pub tsa: ReservedSerial,
}

impl CeremonySerials {
    /// Reserves one serial per certificate of the hierarchy.
    pub async fn reserve(
        store: &Store,
        with_client_auth: bool,
        now: SystemTime,
    ) -> Result<Self, SerialError> {
        Ok(Self {
            root: reserve(store, CertificateKind::Root, now).await?,
            issuing: reserve(store, CertificateKind::IssuingCa, now).await?,
            client_auth: match with_client_auth {
                true => Some(reserve(store, CertificateKind::ClientAuthCa, now).await?),
                false => None,
            },
            ocsp: reserve(store, CertificateKind::OcspResponder, now).await?,
            tsa: reserve(store, CertificateKind::TimeStampingUnit, now).await?,
        })
    }
}
