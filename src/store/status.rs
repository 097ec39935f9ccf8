//! The revocation status of one certificate, read on every OCSP request: one
//! primary-key lookup on `certificates` joined to `revocations` and
//! `final_ocsp_responses` (also keyed by serial), so a revocation written by
//! any instance is seen at once.

use sqlx::Row;
use time::OffsetDateTime;

use super::{Store, StoreError, from_micros, on_pool};

/// What the database says of a serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialStatus {
    /// Issued (state 'issued') and not revoked.
    Good,
    /// Issued and revoked.
    Revoked {
        at: OffsetDateTime,
        /// RFC 5280 CRLReason, when the revocation recorded one.
        reason_code: Option<u8>,
    },
    /// Never issued (or only reserved): never "good".
    Unknown,
}

/// A serial number's status and which CA issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateStatus {
    /// The policy it was issued under: `client-auth` for the client-auth CA,
    /// a seal policy for the issuing CA, `service:<purpose>` for the issuing CA's
    /// own service certificates (ocsp, tsa). Empty when unknown.
    pub issued_under: String,
    pub status: SerialStatus,
    /// Whether its CA, before it was terminated, signed a final OCSP response
    /// for it (`final_ocsp_responses`): that response is the answer from then on.
    pub final_response: bool,
}

fn reason(code: Option<i64>) -> Result<Option<u8>, StoreError> {
    code.map(|c| u8::try_from(c).map_err(|_| StoreError::Corrupt(format!("reason code {c}"))))
        .transpose()
}

impl Store {
    /// The status of `serial` (hex of the serial number's content octets).
    pub async fn certificate_status(&self, serial: &str) -> Result<CertificateStatus, StoreError> {
        let sql = "SELECT c.state, c.policy_id, r.reason_code, r.revoked_at, f.serial \
                   FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial \
                   LEFT JOIN final_ocsp_responses f \
                   ON f.serial = c.serial AND f.hash_algorithm = 'sha1' \
                   WHERE c.serial = $1";
        let service = "SELECT a.purpose, v.reason_code, v.revoked_at, f.serial \
                       FROM ca_certificates a LEFT JOIN ca_revocations v ON v.serial = a.serial \
                       LEFT JOIN final_ocsp_responses f \
                       ON f.serial = a.serial AND f.hash_algorithm = 'sha1' \
                       WHERE a.serial = $1";
        on_pool!(self, |pool| {
            if let Some(row) = sqlx::query(sql).bind(serial).fetch_optional(pool).await? {
                let state: String = row.try_get(0)?;
                let policy: String = row.try_get(1)?;
                let code: Option<i64> = row.try_get(2)?;
                let revoked_at: Option<i64> = row.try_get(3)?;
                let final_response: Option<String> = row.try_get(4)?;
                let status = match (state.as_str(), revoked_at) {
                    ("issued", None) => SerialStatus::Good,
                    ("issued", Some(at)) => SerialStatus::Revoked {
                        at: from_micros(at)?,
                        reason_code: reason(code)?,
                    },
                    _ => SerialStatus::Unknown,
                };
                return Ok(CertificateStatus {
                    issued_under: policy,
                    status,
                    final_response: final_response.is_some(),
                });
            }
            // Only misses pay for the second lookup (also by primary key).
            match sqlx::query(service)
                .bind(serial)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => {
                    let purpose: String = row.try_get(0)?;
                    let code: Option<i64> = row.try_get(1)?;
                    let revoked_at: Option<i64> = row.try_get(2)?;
                    let final_response: Option<String> = row.try_get(3)?;
                    let status = match (purpose.as_str(), revoked_at) {
                        ("ocsp" | "tsa", None) => SerialStatus::Good,
                        ("ocsp" | "tsa", Some(at)) => SerialStatus::Revoked {
                            at: from_micros(at)?,
                            reason_code: reason(code)?,
                        },
                        _ => SerialStatus::Unknown,
                    };
                    Ok(CertificateStatus {
                        issued_under: format!("service:{purpose}"),
                        status,
                        final_response: final_response.is_some(),
                    })
                }
                None => Ok(CertificateStatus {
                    issued_under: String::new(),
                    status: SerialStatus::Unknown,
                    final_response: false,
                }),
            }
        })
    }
}
