//! What the responder answers: a signed response or an error status, and the
//! DER a cached response keeps with its dates.

use super::*;

/// An answer: the DER OCSPResponse, and for a response without nonce the times
/// HTTP caches need (RFC 5019 §6).
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// Shared: a cached answer goes out without a copy.
    pub der: Bytes,
    pub cacheable: Option<Arc<Cacheable>>,
}

/// What HTTP caches are told about a response without nonce, made once when
/// the response is signed: a cached answer is served many times a second.
#[derive(Debug)]
pub struct Cacheable {
    pub produced_at: SystemTime,
    pub next_update: SystemTime,
    /// Hex SHA-256 of the DER, quoted for the ETag header by the caller.
    pub etag: String,
    /// `produced_at` and `next_update` as IMF-fixdates (Last-Modified, Expires).
    pub produced_at_http: String,
    pub next_update_http: String,
}

impl Cacheable {
    pub(super) fn new(produced_at: SystemTime, next_update: SystemTime, der: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            produced_at,
            next_update,
            etag: hex::encode(&Sha256::digest(der)[..16]),
            produced_at_http: http_date(produced_at),
            next_update_http: http_date(next_update),
        })
    }
}

impl OcspAnswer {
    pub(super) fn status(response: OcspResponse) -> Self {
        Self {
            der: Bytes::from(response.to_der().unwrap_or_else(|_| {
                // An unsigned status-only response is 5 fixed octets; kept as a fallback.
                vec![0x30, 0x03, 0x0a, 0x01, 0x02]
            })),
            cacheable: None,
        }
    }

    pub fn malformed() -> Self {
        Self::status(OcspResponse::malformed_request())
    }

    pub(super) fn internal() -> Self {
        Self::status(OcspResponse::internal_error())
    }

    pub(super) fn try_later() -> Self {
        Self::status(OcspResponse::try_later())
    }

    pub(super) fn unauthorized() -> Self {
        Self::status(OcspResponse::unauthorized())
    }
}

#[derive(Debug)]
pub(super) struct Cached {
    /// The status generation `status` was read at (or found unchanged at).
    pub(super) generation: i64,
    pub(super) status: SerialStatus,
    pub(super) responder_serial: String,
    pub(super) produced_at: SystemTime,
    pub(super) answer: OcspAnswer,
}
