//! The TimeStampResp (RFC 3161 §2.4.2) the TSA answers: granted with its
//! token, or rejected with a failInfo bit and the reason.

use der::asn1::{Any, BitString};
use der::{Decode, Encode, Sequence};

use super::{Refusal, Stamp};

/// PKIStatusInfo, written here (the failure bits as a named BIT STRING).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct PkiStatusInfo {
    pub(super) status: u8,
    #[asn1(optional = "true")]
    pub(super) status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    pub(super) fail_info: Option<BitString>,
}

/// TimeStampResp (RFC 3161 §2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct TimeStampResp {
    pub(super) status: PkiStatusInfo,
    #[asn1(optional = "true")]
    pub(super) time_stamp_token: Option<Any>,
}

/// TimeStampResp { PKIStatusInfo { rejection, failInfo systemFailure } }: the
/// answer when even a rejection cannot be encoded.
pub(super) const SYSTEM_FAILURE_RESPONSE: [u8; 14] = [
    0x30, 0x0c, 0x30, 0x0a, 0x02, 0x01, 0x02, 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

/// A named-bit BIT STRING with only `bit` set, trailing zero bits left out (DER).
pub(super) fn failure_bits(bit: usize) -> Result<BitString, der::Error> {
    let mut bytes = vec![0u8; bit / 8 + 1];
    bytes[bit / 8] = 0x80 >> (bit % 8);
    let unused = u8::try_from(7 - bit % 8).map_err(|_| der::ErrorKind::Overflow)?;
    BitString::new(unused, bytes)
}

/// A TimeStampResp: granted with the token, or rejected with a failInfo
/// bit and the reason.
pub(super) fn reply(outcome: Result<Stamp, Refusal>) -> Vec<u8> {
    let response = match outcome {
        Ok(stamp) => Any::from_der(&stamp.token).map(|token| TimeStampResp {
            status: PkiStatusInfo {
                status: 0,
                status_string: None,
                fail_info: None,
            },
            time_stamp_token: Some(token),
        }),
        Err(refusal) => failure_bits(refusal.failure as usize).map(|bits| TimeStampResp {
            status: PkiStatusInfo {
                status: 2,
                status_string: Some(vec![refusal.text]),
                fail_info: Some(bits),
            },
            time_stamp_token: None,
        }),
    };
    match response.and_then(|r| r.to_der()) {
        Ok(der) => der,
        Err(error) => {
            tracing::error!(%error, "encoding a time-stamp response failed");
            SYSTEM_FAILURE_RESPONSE.to_vec()
        }
    }
}
