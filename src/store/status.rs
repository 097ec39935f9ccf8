//! The revocation status of certificates, read on every OCSP request: a
//! primary-key lookup on `certificates` joined to `revocations` and
//! `final_ocsp_responses` (also keyed by serial), for one serial or the
//! serials of concurrent requests together, so a revocation written by any
//! instance is seen at once.

use std::collections::{HashMap, HashSet};

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
        let mut found = self.certificate_statuses(&[serial.to_owned()]).await?;
        found
            .pop()
            .ok_or_else(|| StoreError::Corrupt(format!("no status read for {serial}")))
    }

    /// The status of each of `serials`, in their order: one query for all
    /// (the OCSP responder reads the serials of concurrent requests together).
    pub async fn certificate_statuses(
        &self,
        serials: &[String],
    ) -> Result<Vec<CertificateStatus>, StoreError> {
        // Concurrent requests mostly ask for the same few certificates.
        let unique: Vec<&str> = serials
            .iter()
            .map(String::as_str)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: HashMap<String, CertificateStatus> = HashMap::with_capacity(unique.len());
        let issued = format!(
            "SELECT c.serial, c.state, c.policy_id, r.reason_code, r.revoked_at, f.serial \
             FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial \
             LEFT JOIN final_ocsp_responses f \
             ON f.serial = c.serial AND f.hash_algorithm = 'sha1' \
             WHERE c.serial IN ({})",
            placeholders(unique.len())
        );
        on_pool!(self, |pool| {
            let mut query = sqlx::query(&issued);
            for serial in &unique {
                query = query.bind(*serial);
            }
            for row in query.fetch_all(pool).await? {
                let serial: String = row.try_get(0)?;
                let state: String = row.try_get(1)?;
                let policy: String = row.try_get(2)?;
                let code: Option<i64> = row.try_get(3)?;
                let revoked_at: Option<i64> = row.try_get(4)?;
                let final_response: Option<String> = row.try_get(5)?;
                let status = match (state.as_str(), revoked_at) {
                    ("issued", None) => SerialStatus::Good,
                    ("issued", Some(at)) => SerialStatus::Revoked {
                        at: from_micros(at)?,
                        reason_code: reason(code)?,
                    },
                    _ => SerialStatus::Unknown,
                };
                found.insert(
                    serial,
                    CertificateStatus {
                        issued_under: policy,
                        status,
                        final_response: final_response.is_some(),
                    },
                );
            }
            // Only misses pay for the second lookup (also by primary key).
            let missed: Vec<&str> = unique
                .iter()
                .copied()
                .filter(|s| !found.contains_key(*s))
                .collect();
            if !missed.is_empty() {
                let service = format!(
                    "SELECT a.serial, a.purpose, v.reason_code, v.revoked_at, f.serial \
                     FROM ca_certificates a LEFT JOIN ca_revocations v ON v.serial = a.serial \
                     LEFT JOIN final_ocsp_responses f \
                     ON f.serial = a.serial AND f.hash_algorithm = 'sha1' \
                     WHERE a.serial IN ({})",
                    placeholders(missed.len())
                );
                let mut query = sqlx::query(&service);
                for serial in &missed {
                    query = query.bind(*serial);
                }
                for row in query.fetch_all(pool).await? {
                    let serial: String = row.try_get(0)?;
                    let purpose: String = row.try_get(1)?;
                    let code: Option<i64> = row.try_get(2)?;
                    let revoked_at: Option<i64> = row.try_get(3)?;
                    let final_response: Option<String> = row.try_get(4)?;
                    let status = match (purpose.as_str(), revoked_at) {
                        ("ocsp" | "tsa", None) => SerialStatus::Good,
                        ("ocsp" | "tsa", Some(at)) => SerialStatus::Revoked {
                            at: from_micros(at)?,
                            reason_code: reason(code)?,
                        },
                        _ => SerialStatus::Unknown,
                    };
                    found.insert(
                        serial,
                        CertificateStatus {
                            issued_under: format!("service:{purpose}"),
                            status,
                            final_response: final_response.is_some(),
                        },
                    );
                }
            }
            Ok(serials
                .iter()
                .map(|serial| {
                    found
                        .get(serial.as_str())
                        .cloned()
                        .unwrap_or(CertificateStatus {
                            issued_under: String::new(),
                            status: SerialStatus::Unknown,
                            final_response: false,
                        })
                })
                .collect())
        })
    }
}

/// `$1, $2, …, $n`: the placeholders of an `IN` list of `n` values.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
