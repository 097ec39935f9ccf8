//! The renewal of the issuing CA's service certificates (OCSP responder,
//! time-stamping unit): a new key and certificate under a `service_renewal`
//! grant, journaled, the previous one retired.

use der::Decode;

use super::ceremony::ca_certificate;
use super::{CaError, active_record, ceremony_file, hsm_signer, open_journal};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::hsm::Hsm;
use crate::journal::event::ServiceRenewed;
use crate::journal::{Actor, Event, Journal};
use crate::pki::ceremony::{self, CeremonyError, CertifiedKey};
use crate::pki::serials;
use crate::pki::signing::{self, Grant, ServiceKind, SigningError};
use crate::store::Store;
use crate::store::ca::CaCertificate;

/// Renews the delegated OCSP responder certificate with a new key, and journals it
/// (`sceau ca renew-ocsp`, with its own journal handle).
pub async fn renew_ocsp_responder(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<CaCertificate, CaError> {
    let recorded: Recorded = (
        Event::CaOcspResponderRenewed,
        Actor::Task("sceau ca renew-ocsp"),
    );
    let command = Command {
        settings,
        store,
        hsm,
        clock,
    };
    command.renew(ceremony::KeyPurpose::Ocsp, recorded).await
}

/// A renewal run as a command of its own: the process opens the journal
/// for it and closes it after.
struct Command<'a> {
    settings: &'a Settings,
    store: &'a Store,
    hsm: &'a Hsm,
    clock: &'a SharedClock,
}

impl Command<'_> {
    async fn renew(
        &self,
        purpose: ceremony::KeyPurpose,
        recorded: Recorded,
    ) -> Result<CaCertificate, CaError> {
        let journal = open_journal(self.settings, self.store, self.hsm, self.clock).await?;
        let renewed = renew_service_certificate(
            self.settings,
            self.store,
            self.hsm,
            self.clock,
            &journal,
            purpose,
            recorded,
        )
        .await;
        journal.shutdown().await?;
        renewed
    }
}

/// How a renewal is journaled: its event, and who asked.
pub(super) type Recorded = (fn(ServiceRenewed) -> Event, Actor);

/// The renewal itself, journaled on `journal` as `(event, actor)`.
pub(super) async fn renew_ocsp_responder_in(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    journal: &Journal,
    recorded: Recorded,
) -> Result<CaCertificate, CaError> {
    renew_service_certificate(
        settings,
        store,
        hsm,
        clock,
        journal,
        ceremony::KeyPurpose::Ocsp,
        recorded,
    )
    .await
}

/// A new key and certificate for one of the issuing CA's services (OCSP
/// responder, time-stamping unit), recorded as the active one and journaled
/// as `(event, actor)`. Refused once the issuing CA's termination started.
async fn renew_service_certificate(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    journal: &Journal,
    purpose: ceremony::KeyPurpose,
    (event, actor): Recorded,
) -> Result<CaCertificate, CaError> {
    let (file, _) = ceremony_file(settings)?;
    let issuing_record = active_record(store, ceremony::KeyPurpose::Issuing).await?;
    if store.termination(&issuing_record.serial).await?.is_some() {
        return Err(CaError::Internal(format!(
            "the issuing CA was terminated: it certifies no new {} key",
            purpose.name()
        )));
    }
    let issuing_signer = hsm_signer(hsm, &issuing_record.key).await?;
    let issuing = CertifiedKey {
        purpose: ceremony::KeyPurpose::Issuing,
        key: issuing_signer.key().clone(),
        certificate: x509_cert::Certificate::from_der(&issuing_record.der)
            .map_err(|e| CaError::Internal(e.to_string()))?,
    };
    let now = clock.now();
    let service = match purpose {
        ceremony::KeyPurpose::Ocsp => ServiceKind::OcspResponder,
        _ => ServiceKind::TimeStampingUnit,
    };
    // The CA operations renew their services' certificates: the one place
    // such a certificate is granted after the ceremony.
    let grant = Grant::service_renewal(service, actor.clone());
    let serial = serials::reserve(store, grant.kind(), now).await?;
    let (grant, outcome) = {
        let hsm = hsm.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = ceremony::issue_service_certificate(
                (&grant, serial),
                &file,
                &hsm,
                &issuing,
                now,
                purpose,
            );
            (grant, outcome)
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))?
    };
    let renewed = match outcome {
        Ok(renewed) => renewed,
        Err(CeremonyError::Signing(SigningError::Lint { kind, findings })) => {
            signing::journal_refusal(
                journal,
                &grant,
                crate::journal::event::LintRefused {
                    issuer_serial: Some(issuing_record.serial.clone()),
                    ..signing::refusal()
                },
                &findings,
            )
            .await?;
            return Err(CeremonyError::Signing(SigningError::Lint { kind, findings }).into());
        }
        Err(e) => return Err(e.into()),
    };
    let record = ca_certificate(&renewed, now.into())?;
    store.replace_ca_certificate(&record).await?;
    journal
        .append(
            &actor,
            event(ServiceRenewed {
                serial: record.serial.clone(),
                sha256: record.sha256.clone(),
                key_id: hex::encode(&record.key.key_id),
                not_after: record.not_after.into(),
            }),
        )
        .await?;
    Ok(record)
}

/// Issues a new time-stamping unit key and certificate (`sceau ca renew-tsu`),
/// journaled `ca.tsu_renewed`. Serving instances switch to it at their next
/// TSA maintenance pass (`tsa.clock_sync_check_secs`).
pub async fn renew_time_stamping_unit(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<CaCertificate, CaError> {
    let command = Command {
        settings,
        store,
        hsm,
        clock,
    };
    let recorded: Recorded = (Event::CaTsuRenewed, Actor::Task("sceau ca renew-tsu"));
    command.renew(ceremony::KeyPurpose::Tsa, recorded).await
}
