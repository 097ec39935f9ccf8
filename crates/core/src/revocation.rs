//! Why a certificate was revoked, as RFC 5280 codes it: one type from the
//! store's column to the CRL entry and the OCSP response.

use x509_cert::ext::pkix::crl::CrlReason;

/// A CRLReason sceau records. `unspecified` (0) is not one: RFC 5280 §5.3.1
/// says not to write it, so a revocation without a reason carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    RemoveFromCrl,
    PrivilegeWithdrawn,
    AaCompromise,
}

/// A stored code that is no CRLReason (7 is unassigned, 11 and up unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a CRLReason code")]
pub struct UnknownReason(pub i64);

impl Reason {
    /// The reason a code names: none for `unspecified` (0).
    pub fn from_code(code: i64) -> Result<Option<Self>, UnknownReason> {
        Ok(Some(match code {
            0 => return Ok(None),
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            other => return Err(UnknownReason(other)),
        }))
    }

    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        match self {
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The value written in a CRL entry's and an OCSP response's reasonCode.
    pub fn crl_reason(self) -> CrlReason {
        match self {
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::CertificateHold => CrlReason::CertificateHold,
            Self::RemoveFromCrl => CrlReason::RemoveFromCRL,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            Self::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself() {
        for code in 0..=12i64 {
            match Reason::from_code(code) {
                Ok(Some(reason)) => assert_eq!(i64::from(reason.code()), code),
                Ok(None) => assert_eq!(code, 0, "only unspecified carries no reason"),
                Err(UnknownReason(unknown)) => assert!([7, 11, 12].contains(&unknown)),
            }
        }
        assert_eq!(Reason::KeyCompromise.crl_reason(), CrlReason::KeyCompromise);
        assert_eq!(Reason::AaCompromise.code(), 10);
    }
}
