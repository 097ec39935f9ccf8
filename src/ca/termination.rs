//! The end of the issuing CA (seed 001, "Fin de vie de l'AC"): two CA
//! administrators approve, each in their own authenticated call, then
//! `sceau ca terminate` revokes everything the CA issued, publishes its last
//! CRL and a last OCSP response per certificate (both valid until
//! 99991231235959Z, signed by the CA key), revokes the CA in the root's ARL and
//! destroys the CA key. Each step is journaled and recorded as it ends, so an
//! interrupted termination resumes where it stopped.

use std::time::{Duration, SystemTime};

use der::Decode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::{CaError, open_journal};
use crate::auth::Principal;
use crate::clock::SharedClock;
use crate::clock::format::rfc3339;
use crate::config::{CrlSettings, Settings, TokenRole};
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{Hsm, HsmError, HsmSigner, KeyId};
use crate::journal::{Actor, Event, Journal, JournalError, event};
use crate::pki::crl::{self, CrlError};
use crate::pki::ocsp::{self, CertIdHash, OcspError, ResponderKey, ServedCa};
use crate::ra::registry::{self, RaError};
use crate::revocation::Reason;
use crate::store::ca::CaCertificate;
use crate::store::termination::{
    FinalOcspResponse, TerminationApproval, TerminationRecord, TerminationStep,
};
use crate::store::{Store, StoreError};

/// Distinct CA administrators who must approve.
pub const APPROVALS_NEEDED: usize = 2;
/// How long an approval counts: an old approval cannot be paired with a new one.
pub const APPROVAL_VALIDITY: Duration = Duration::from_secs(72 * 3600);
/// CRLReason cessationOfOperation, for the CA's certificate and its services'.
/// The CA that ends: the one that issues seal certificates.
const ISSUING: &str = "issuing";
/// Longest reason an administrator may give.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum TerminationError {
    #[error("no active {0} CA certificate")]
    NoCa(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(
        "this administrator ({0}) already approved the termination; a second administrator must"
    )]
    AlreadyApproved(String),
    #[error(
        "the termination needs approvals from {needed} distinct CA administrators within {hours} hours; it has {have}"
    )]
    NotApproved {
        have: usize,
        needed: usize,
        hours: u64,
    },
    #[error("the {purpose} CA (serial {serial}) was terminated on {at}")]
    AlreadyTerminated {
        purpose: String,
        serial: String,
        at: String,
    },
    #[error(
        "the {purpose} CA (serial {serial}) is being terminated; run `sceau ca terminate` to finish"
    )]
    InProgress { purpose: String, serial: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Crl(#[from] CrlError),
    #[error(transparent)]
    Ocsp(#[from] OcspError),
    #[error(transparent)]
    Ra(#[from] RaError),
    #[error("internal: {0}")]
    Internal(String),
}

impl HasErrorKind for TerminationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Unprocessable,
            Self::AlreadyApproved(_)
            | Self::NotApproved { .. }
            | Self::AlreadyTerminated { .. }
            | Self::InProgress { .. } => ErrorKind::Conflict,
            Self::Store(e) => e.kind(),
            Self::Hsm(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::Crl(e) => e.kind(),
            Self::Ocsp(e) => e.kind(),
            Self::Ra(e) => e.kind(),
            Self::NoCa(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Where the termination of the issuing CA stands.
#[derive(Debug, Clone, Serialize)]
pub struct TerminationStatus {
    pub ca_serial: String,
    pub ca_subject: String,
    pub approvals: Vec<TerminationApproval>,
    pub approvals_needed: usize,
    /// Whether `sceau ca terminate` may run now.
    pub ready: bool,
    pub termination: Option<TerminationRecord>,
}

/// What a completed termination did.
#[derive(Debug, Clone, Serialize)]
pub struct TerminationReport {
    pub ca_serial: String,
    pub certificates_revoked: u64,
    pub final_crl_number: u64,
    pub final_ocsp_responses: u64,
    pub arl_number: u64,
    pub seal_keys_destroyed: usize,
}

async fn issuing_ca(store: &Store) -> Result<CaCertificate, TerminationError> {
    store
        .active_ca_certificate(ISSUING)
        .await?
        .ok_or(TerminationError::NoCa(ISSUING))
}

fn subject_of(ca: &CaCertificate) -> Result<(Certificate, String), TerminationError> {
    let certificate = Certificate::from_der(&ca.der)
        .map_err(|e| TerminationError::Internal(format!("stored issuing certificate: {e}")))?;
    let subject = certificate.tbs_certificate.subject.to_string();
    Ok((certificate, subject))
}

/// The approvals that count at `now`: within [`APPROVAL_VALIDITY`], one per approver.
fn counting(approvals: &[TerminationApproval], now: SystemTime) -> usize {
    let since = now.checked_sub(APPROVAL_VALIDITY).unwrap_or(now);
    approvals
        .iter()
        .filter(|a| SystemTime::from(a.approved_at) >= since)
        .map(|a| a.approver.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The approvals and progress of the issuing CA's termination.
pub async fn status(
    store: &Store,
    clock: &SharedClock,
) -> Result<TerminationStatus, TerminationError> {
    let ca = issuing_ca(store).await?;
    let (_, ca_subject) = subject_of(&ca)?;
    let approvals = store.termination_approvals(&ca.serial).await?;
    let termination = store.termination(&ca.serial).await?;
    let ready = termination
        .as_ref()
        .is_none_or(|t| t.completed_at.is_none())
        && (termination.is_some() || counting(&approvals, clock.now()) >= APPROVALS_NEEDED);
    Ok(TerminationStatus {
        ca_serial: ca.serial,
        ca_subject,
        approvals,
        approvals_needed: APPROVALS_NEEDED,
        ready,
        termination,
    })
}

/// Records `principal`'s approval of the issuing CA's termination. The caller
/// (the API) checked the CA administrator's permission; `ca_serial` must name
/// the active issuing CA, so an administrator approves knowingly.
pub async fn approve(
    store: &Store,
    journal: &Journal,
    clock: &SharedClock,
    principal: &Principal,
    ca_serial: &str,
    reason: &str,
) -> Result<TerminationStatus, TerminationError> {
    let ca = issuing_ca(store).await?;
    if !ca.serial.eq_ignore_ascii_case(ca_serial.trim()) {
        return Err(TerminationError::Invalid {
            field: "ca_serial",
            reason: format!(
                "{ca_serial:?} is not the serial of the active issuing CA certificate ({})",
                ca.serial
            ),
        });
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(TerminationError::Invalid {
            field: "reason",
            reason: format!("must be 1 to {MAX_REASON_CHARS} characters"),
        });
    }
    if let Some(termination) = store.termination(&ca.serial).await? {
        return Err(match termination.completed_at {
            Some(at) => TerminationError::AlreadyTerminated {
                purpose: ca.purpose,
                serial: ca.serial,
                at: rfc3339(at),
            },
            None => TerminationError::InProgress {
                purpose: ca.purpose,
                serial: ca.serial,
            },
        });
    }
    if store
        .termination_approvals(&ca.serial)
        .await?
        .iter()
        .any(|a| a.approver == principal.id)
    {
        return Err(TerminationError::AlreadyApproved(principal.id.clone()));
    }
    let auth_method = serde_json::to_string(&principal.method)
        .map_err(|e| TerminationError::Internal(e.to_string()))?;
    let now = clock.now();
    let index = journal
        .append(
            &Actor::from(principal),
            Event::CaTerminationApproved(event::TerminationApproved {
                ca_serial: ca.serial.clone(),
                approver: principal.id.clone(),
                auth_method: serde_json::to_value(&principal.method)
                    .map_err(|e| TerminationError::Internal(e.to_string()))?,
                reason: reason.to_owned(),
            }),
        )
        .await?;
    let approval = TerminationApproval {
        approver: principal.id.clone(),
        auth_method,
        reason: reason.to_owned(),
        approved_at: now.into(),
        journal_index: index,
    };
    // The primary key (CA, approver) settles two simultaneous approvals by one
    // administrator: the second is refused here.
    store
        .add_termination_approval(&ca.serial, &approval)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => TerminationError::AlreadyApproved(principal.id.clone()),
            other => other.into(),
        })?;
    status(store, clock).await
}

/// What a termination needs: the root token (for the ARL), the issuing token,
/// the services token (journal) and the seal token (subscribers' keys).
pub struct Terminator<'a> {
    pub store: &'a Store,
    pub journal: &'a Journal,
    pub hsm: &'a Hsm,
    pub clock: &'a SharedClock,
    pub crl: &'a CrlSettings,
    /// The outbox's Message-ID domain, for the notices to subscribers.
    pub message_id_domain: &'a str,
    pub actor: &'a Actor,
}

impl Terminator<'_> {
    async fn journal(&self, event: Event) -> Result<u64, JournalError> {
        self.journal.append(self.actor, event).await
    }

    /// Runs (or resumes) the termination of the issuing CA.
    pub async fn terminate(&self) -> Result<TerminationReport, TerminationError> {
        let store = self.store;
        let ca = issuing_ca(store).await?;
        let (certificate, subject) = subject_of(&ca)?;
        let record = match store.termination(&ca.serial).await? {
            Some(record) => {
                if let Some(at) = record.completed_at {
                    return Err(TerminationError::AlreadyTerminated {
                        purpose: ca.purpose,
                        serial: ca.serial,
                        at: rfc3339(at),
                    });
                }
                tracing::warn!(serial = %ca.serial, "resuming an interrupted CA termination");
                record
            }
            None => self.start(&ca, &subject).await?,
        };

        // 1. Everything the CA issued is revoked. Run on a resume too: it
        //    revokes only what is still valid (nothing, normally).
        let revoked_at = self.clock.now().into();
        let seal = registry::revoke_all_for_ca_termination(
            store,
            self.journal,
            self.message_id_domain,
            self.actor,
            revoked_at,
        )
        .await?;
        let services = store.unrevoked_service_certificates().await?;
        if !services.is_empty() {
            self.journal(Event::CaServiceCertificatesRevoked(
                event::ServiceCertificatesRevoked {
                    ca_serial: ca.serial.clone(),
                    serials: services.clone(),
                    crl_reason: "cessationOfOperation".to_owned(),
                },
            ))
            .await?;
            store
                .revoke_ca_certificates(
                    &services,
                    ISSUING,
                    Some(Reason::CessationOfOperation),
                    revoked_at,
                )
                .await?
                .settled()
                .await;
        }
        let revoked = record.certificates_revoked.unwrap_or(0)
            + u64::try_from(seal.len() + services.len()).unwrap_or(u64::MAX);
        store
            .record_termination_step(&ca.serial, TerminationStep::CertificatesRevoked(revoked))
            .await?;

        // 2. The last CRL, nextUpdate 99991231235959Z.
        let final_crl = match record.final_crl_number {
            Some(number) if seal.is_empty() && services.is_empty() => number,
            _ => {
                let published =
                    crl::publish_final(store, self.journal, self.hsm, self.clock, &ca, self.actor)
                        .await?;
                store
                    .record_termination_step(
                        &ca.serial,
                        TerminationStep::FinalCrl(published.number),
                    )
                    .await?;
                published.number
            }
        };

        // 3. A last OCSP response per certificate, signed by the CA key.
        let final_ocsp = match record.final_ocsp_responses {
            Some(count) if seal.is_empty() && services.is_empty() => count,
            _ => self.final_ocsp_responses(&ca, &certificate).await?,
        };

        // 4. The CA is revoked in the root's ARL.
        let arl = match record.arl_number {
            Some(number) => number,
            None => {
                self.journal(Event::CaRevoked(event::CaRevoked {
                    serial: ca.serial.clone(),
                    subject: subject.clone(),
                    issuer: crl::ROOT.to_owned(),
                    crl_reason: "cessationOfOperation".to_owned(),
                }))
                .await?;
                store
                    .revoke_ca_certificates(
                        std::slice::from_ref(&ca.serial),
                        crl::ROOT,
                        Some(Reason::CessationOfOperation),
                        self.clock.now().into(),
                    )
                    .await?
                    .settled()
                    .await;
                let published = crl::publish_arl(
                    store,
                    self.journal,
                    self.hsm,
                    self.clock,
                    self.crl,
                    self.actor,
                )
                .await?;
                store
                    .record_termination_step(&ca.serial, TerminationStep::Arl(published.number))
                    .await?;
                published.number
            }
        };

        // 5. The CA key is destroyed.
        if record.key_destroyed_at.is_none() {
            self.destroy_ca_key(&ca).await?;
            let at = self.clock.now().into();
            store
                .record_termination_step(&ca.serial, TerminationStep::KeyDestroyed(at))
                .await?;
        }

        // The subscribers' keys, all revoked now, go too (the RA's sweep would
        // find them within its interval; the termination does not wait for it).
        let seal_keys = registry::destroy_retired_seal_keys(
            store,
            self.journal,
            self.hsm.token(TokenRole::Seal)?,
            self.clock.now().into(),
        )
        .await?;

        let report = TerminationReport {
            ca_serial: ca.serial.clone(),
            certificates_revoked: revoked,
            final_crl_number: final_crl,
            final_ocsp_responses: final_ocsp,
            arl_number: arl,
            seal_keys_destroyed: seal_keys.len(),
        };
        self.journal(Event::CaTerminated(event::Terminated {
            ca_serial: report.ca_serial.clone(),
            certificates_revoked: report.certificates_revoked,
            final_crl_number: report.final_crl_number,
            final_ocsp_responses: report.final_ocsp_responses,
            arl_number: report.arl_number,
            seal_keys_destroyed: u64::try_from(report.seal_keys_destroyed).unwrap_or(u64::MAX),
        }))
        .await?;
        store
            .record_termination_step(
                &ca.serial,
                TerminationStep::Completed(self.clock.now().into()),
            )
            .await?;
        Ok(report)
    }

    /// Checks the approvals and records the start: from then on nothing more
    /// is issued by the CA, and only its final CRL is published.
    async fn start(
        &self,
        ca: &CaCertificate,
        subject: &str,
    ) -> Result<TerminationRecord, TerminationError> {
        let now = self.clock.now();
        let approvals = self.store.termination_approvals(&ca.serial).await?;
        let have = counting(&approvals, now);
        if have < APPROVALS_NEEDED {
            return Err(TerminationError::NotApproved {
                have,
                needed: APPROVALS_NEEDED,
                hours: APPROVAL_VALIDITY.as_secs() / 3600,
            });
        }
        self.journal(Event::CaTerminationStarted(event::TerminationStarted {
            ca_serial: ca.serial.clone(),
            subject: subject.to_owned(),
            approvals: serde_json::to_value(approvals)
                .map_err(|e| TerminationError::Internal(e.to_string()))?,
        }))
        .await?;
        self.store
            .begin_termination(&ca.serial, &ca.purpose, now.into())
            .await?;
        self.store
            .termination(&ca.serial)
            .await?
            .ok_or_else(|| TerminationError::Internal("the termination was not recorded".into()))
    }

    async fn ca_signer(&self, ca: &CaCertificate) -> Result<HsmSigner, TerminationError> {
        let pool = self.hsm.token(ca.key.token_role)?.clone();
        let id = KeyId::from_bytes(&ca.key.key_id).ok_or_else(|| {
            TerminationError::Internal(format!("key id of {} is not 16 bytes", ca.key.key_label))
        })?;
        let key = pool.clone().find_key(id).await?;
        Ok(HsmSigner::new(pool, key))
    }

    /// Signs, journals and stores the final responses: two per certificate
    /// (CertIDs hashed with SHA-1 and SHA-256). Returns how many.
    async fn final_ocsp_responses(
        &self,
        ca: &CaCertificate,
        certificate: &Certificate,
    ) -> Result<u64, TerminationError> {
        let statuses = self.store.issuing_ca_statuses().await?;
        let served = ServedCa::new(ISSUING, certificate)?;
        let key = ResponderKey::new(self.ca_signer(ca).await?, certificate.clone());
        let produced_at = self.clock.now();
        let ca_serial = ca.serial.clone();
        let responses = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(statuses.len() * CertIdHash::ALL.len());
            for issued in &statuses {
                for hash in CertIdHash::ALL {
                    let der = ocsp::final_response(
                        &key,
                        &served,
                        &issued.serial,
                        hash,
                        issued.status,
                        produced_at,
                    )?;
                    out.push(FinalOcspResponse {
                        serial: issued.serial.clone(),
                        hash_algorithm: hash.name(),
                        ca_serial: ca_serial.clone(),
                        der,
                        produced_at: produced_at.into(),
                    });
                }
            }
            Ok::<_, OcspError>(out)
        })
        .await
        .map_err(|e| TerminationError::Internal(e.to_string()))??;
        let mut digest = Sha256::new();
        for response in &responses {
            digest.update(Sha256::digest(&response.der));
        }
        let count = u64::try_from(responses.len()).unwrap_or(u64::MAX);
        let certificates = responses.len() / CertIdHash::ALL.len();
        self.journal(Event::OcspFinalResponses(event::FinalOcspResponses {
            ca_serial: ca.serial.clone(),
            responses: count,
            certificates: u64::try_from(certificates).unwrap_or(u64::MAX),
            next_update: crl::forever().into(),
            // SHA-256 over the SHA-256 of each response, in serial order.
            sha256: hex::encode(digest.finalize()),
        }))
        .await?;
        self.store
            .insert_final_ocsp_responses(&responses)
            .await?
            .settled()
            .await;
        self.store
            .record_termination_step(&ca.serial, TerminationStep::FinalOcspResponses(count))
            .await?;
        Ok(count)
    }

    /// Destroys the CA's key pair, checks it is gone, then journals it.
    async fn destroy_ca_key(&self, ca: &CaCertificate) -> Result<(), TerminationError> {
        let pool = self.hsm.token(ca.key.token_role)?.clone();
        let id = KeyId::from_bytes(&ca.key.key_id).ok_or_else(|| {
            TerminationError::Internal(format!("key id of {} is not 16 bytes", ca.key.key_label))
        })?;
        let destroying = pool.clone();
        tokio::task::spawn_blocking(move || destroying.destroy_key_blocking(&id))
            .await
            .map_err(|e| TerminationError::Internal(e.to_string()))??;
        if pool.clone().find_key(id).await.is_ok() {
            return Err(TerminationError::Internal(format!(
                "key {id} is still on the token after C_DestroyObject"
            )));
        }
        self.journal(Event::CaKeyDestroyed(event::CaKeyDestroyed {
            ca_serial: ca.serial.clone(),
            key_id: id.to_string(),
            key_label: ca.key.key_label.clone(),
            token: ca.key.token_role.name().to_owned(),
        }))
        .await?;
        Ok(())
    }
}

/// Whether the termination of the active issuing CA started.
pub async fn issuing_ca_terminating(store: &Store) -> Result<bool, CaError> {
    Ok(match store.active_ca_certificate(ISSUING).await? {
        Some(ca) => store.termination(&ca.serial).await?.is_some(),
        None => false,
    })
}

/// `sceau ca terminate`: runs (or resumes) the approved termination of the
/// issuing CA with its own journal handle, on tokens that include the root's
/// (for the ARL) and the seal token (for the subscribers' keys).
pub async fn terminate_issuing_ca(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    actor: &Actor,
) -> Result<TerminationReport, CaError> {
    let journal = open_journal(settings, store, hsm, clock).await?;
    let terminator = Terminator {
        store,
        journal: &journal,
        hsm,
        clock,
        crl: &settings.crl,
        message_id_domain: &settings.notify.message_id_domain,
        actor,
    };
    let outcome = terminator.terminate().await;
    journal.shutdown().await?;
    Ok(outcome?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(approver: &str, hours_ago: u64, now: SystemTime) -> TerminationApproval {
        TerminationApproval {
            approver: approver.to_owned(),
            auth_method: "{}".to_owned(),
            reason: "end".to_owned(),
            approved_at: (now - Duration::from_secs(hours_ago * 3600)).into(),
            journal_index: 0,
        }
    }

    #[test]
    fn only_distinct_recent_approvers_count() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        assert_eq!(counting(&[approval("a", 1, now)], now), 1);
        assert_eq!(
            counting(&[approval("a", 1, now), approval("a", 2, now)], now),
            1
        );
        assert_eq!(
            counting(&[approval("a", 1, now), approval("b", 2, now)], now),
            2
        );
        assert_eq!(
            counting(&[approval("a", 1, now), approval("b", 73, now)], now),
            1
        );
    }
}
