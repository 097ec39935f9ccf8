//! The revocation status of certificates as OCSP reads it: a primary-key
//! lookup on `certificates` joined to `revocations` and `final_ocsp_responses`
//! (also keyed by serial), for one serial or the serials of concurrent
//! requests together; and the status generation and lease that let an
//! instance answer again from what it read, with no instance left behind by a
//! revocation that has returned.
//!
//! The status generation is one counter that triggers move in the same
//! transaction as any change to a status (migration 0016). Each read says which
//! generation its statuses are at least as new as. An instance that saw, at
//! instant `s`, that the generation was still `G` knows that statuses read at
//! `G` reflect every change committed before `s`. It may rely on that until
//! `s + lease`; a change that must not be missed (a revocation) returns to its
//! caller only `lease` after its commit, by which time every instance either
//! has seen the new generation or has stopped relying on the old one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use time::OffsetDateTime;

use super::rows::Arg;
use super::{Store, StoreError, from_micros, on_pool};
use sceau_core::revocation::Reason;

/// What the database says of a serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialStatus {
    /// Issued (state 'issued') and not revoked.
    Good,
    /// Issued and revoked.
    Revoked {
        at: OffsetDateTime,
        /// RFC 5280 CRLReason, when the revocation recorded one.
        reason_code: Option<Reason>,
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

/// Statuses read together, and the status generation they are at least as new as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRead {
    pub generation: i64,
    pub statuses: Vec<CertificateStatus>,
}

/// A change of certificate status committed but not done yet: until the
/// status lease has passed, an instance may still answer from a status
/// generation it read before the commit (an OCSP "good" for a certificate
/// just revoked). The caller settles it before saying the change is done.
#[derive(Debug)]
#[must_use = "a status change is done only once settled: `.settled().await` before saying so"]
pub struct StatusChange {
    lease: Duration,
}

impl StatusChange {
    /// A change that touched no certificate status: nothing to wait for.
    pub(crate) fn none() -> Self {
        Self {
            lease: Duration::ZERO,
        }
    }

    /// Waits out the status lease: by then no instance still relies on a
    /// generation read before the commit.
    pub async fn settled(self) {
        if !self.lease.is_zero() {
            tokio::time::sleep(self.lease).await;
        }
    }
}

/// A serial as the issued-certificate lookup reads it, with the generation
/// (the certificate's columns are empty when no serial matched).
#[derive(sqlx::FromRow)]
struct IssuedRow {
    generation: i64,
    serial: Option<String>,
    state: Option<String>,
    policy_id: Option<String>,
    reason_code: Option<i64>,
    revoked_at: Option<i64>,
    final_serial: Option<String>,
}

/// A service certificate of the issuing CA as the second lookup reads it.
#[derive(sqlx::FromRow)]
struct ServiceRow {
    serial: String,
    purpose: String,
    reason_code: Option<i64>,
    revoked_at: Option<i64>,
    final_serial: Option<String>,
}

/// The status of a serial sceau knows (`known`), revoked when it has a
/// revocation time; `Unknown` otherwise.
pub(super) fn status_of(
    known: bool,
    revoked_at: Option<i64>,
    code: Option<i64>,
) -> Result<SerialStatus, StoreError> {
    Ok(match (known, revoked_at) {
        (false, _) => SerialStatus::Unknown,
        (true, None) => SerialStatus::Good,
        (true, Some(at)) => SerialStatus::Revoked {
            at: from_micros(at)?,
            reason_code: super::reason_from_sql(code)?,
        },
    })
}

const GENERATION: &str = "SELECT value FROM status_generation WHERE id = 1";

impl Store {
    /// How long an instance may rely on having seen the status generation
    /// unchanged (`database.status_lease_ms`); zero: never.
    pub fn status_lease(&self) -> Duration {
        self.status_lease
    }

    /// A status change just committed, to settle before it is said done.
    pub(crate) fn status_changed(&self) -> StatusChange {
        StatusChange {
            lease: self.status_lease,
        }
    }

    /// The status generation now.
    pub async fn status_generation(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(GENERATION).fetch_one(pool).await?
        }))
    }

    /// The status of `serial` (hex of the serial number's content octets).
    pub async fn certificate_status(&self, serial: &str) -> Result<CertificateStatus, StoreError> {
        let mut found = self.certificate_statuses(&[serial.to_owned()]).await?;
        found
            .statuses
            .pop()
            .ok_or_else(|| StoreError::Corrupt(format!("no status read for {serial}")))
    }

    /// The status of each of `serials`, in their order: one query for all
    /// (the OCSP responder reads the serials of concurrent requests together),
    /// with the status generation read in the same statement (one snapshot),
    /// so the statuses are at least as new as it.
    pub async fn certificate_statuses(&self, serials: &[String]) -> Result<StatusRead, StoreError> {
        // Concurrent requests mostly ask for the same few certificates.
        let unique: Vec<&str> = serials
            .iter()
            .map(String::as_str)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if unique.is_empty() {
            return Ok(StatusRead {
                generation: self.status_generation().await?,
                statuses: Vec::new(),
            });
        }
        let mut found: HashMap<String, CertificateStatus> = HashMap::with_capacity(unique.len());
        // Driven by the generation's one row, so it comes back even when no
        // serial matches.
        let issued = format!(
            "SELECT g.value AS generation, c.serial AS serial, c.state AS state, \
             c.policy_id AS policy_id, r.reason_code AS reason_code, \
             r.revoked_at AS revoked_at, f.serial AS final_serial \
             FROM status_generation g LEFT JOIN certificates c ON c.serial IN ({}) \
             LEFT JOIN revocations r ON r.serial = c.serial \
             LEFT JOIN final_ocsp_responses f \
             ON f.serial = c.serial AND f.hash_algorithm = 'sha1' \
             WHERE g.id = 1",
            placeholders(unique.len())
        );
        let args: Vec<Arg> = unique.iter().map(|serial| Arg::from(*serial)).collect();
        let mut generation = None;
        for row in self
            .read_all::<IssuedRow, IssuedRow>(&issued, &args)
            .await?
        {
            generation = Some(row.generation);
            let Some(serial) = row.serial else {
                continue;
            };
            let issued = row.state.as_deref() == Some("issued");
            found.insert(
                serial,
                CertificateStatus {
                    issued_under: row.policy_id.unwrap_or_default(),
                    status: status_of(issued, row.revoked_at, row.reason_code)?,
                    final_response: row.final_serial.is_some(),
                },
            );
        }
        // Only misses pay for the second lookup (also by primary key).
        let missed: Vec<Arg> = unique
            .iter()
            .filter(|s| !found.contains_key(**s))
            .map(|serial| Arg::from(*serial))
            .collect();
        if !missed.is_empty() {
            let service = format!(
                "SELECT a.serial AS serial, a.purpose AS purpose, v.reason_code AS reason_code, \
                 v.revoked_at AS revoked_at, f.serial AS final_serial \
                 FROM ca_certificates a LEFT JOIN ca_revocations v ON v.serial = a.serial \
                 LEFT JOIN final_ocsp_responses f \
                 ON f.serial = a.serial AND f.hash_algorithm = 'sha1' \
                 WHERE a.serial IN ({})",
                placeholders(missed.len())
            );
            for row in self
                .read_all::<ServiceRow, ServiceRow>(&service, &missed)
                .await?
            {
                let service = matches!(row.purpose.as_str(), "ocsp" | "tsa");
                found.insert(
                    row.serial,
                    CertificateStatus {
                        status: status_of(service, row.revoked_at, row.reason_code)?,
                        issued_under: format!("service:{}", row.purpose),
                        final_response: row.final_serial.is_some(),
                    },
                );
            }
        }
        let generation =
            generation.ok_or_else(|| StoreError::Corrupt("no status generation".to_owned()))?;
        let statuses = serials
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
            .collect();
        Ok(StatusRead {
            generation,
            statuses,
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
