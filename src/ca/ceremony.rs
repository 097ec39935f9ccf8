//! The key ceremony as the CA operations run it (`sceau ca init`): the
//! ceremony file, the serials reserved ahead, the ceremony itself
//! (`pki::ceremony`), its record, transcript file and journal entry; and the
//! certificate policies the hierarchy serves.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{CaError, open_journal};
use crate::clock::SharedClock;
use crate::config::{Settings, TokenRole};
use crate::hsm::Hsm;
use crate::journal::{Actor, Event};
use crate::pki::ceremony::{self, CeremonyFile, CertifiedKey, Transcript};
use crate::pki::policy::PolicySet;
use crate::pki::serials::CeremonySerials;
use crate::store::Store;
use crate::store::ca::{CaCertificate, CeremonyRecord, ServiceKey};
use crate::store::entities::KeyReference;

/// The ceremony file and its SHA-256; in development mode (`ca.dev_auto_init`)
/// with its URLs under `server.public_url`, so that the instance's
/// certificates point at the instance wherever it listens.
pub fn ceremony_file(settings: &Settings) -> Result<(CeremonyFile, String), CaError> {
    let (file, sha256) = CeremonyFile::load(&settings.ca.ceremony_file)?;
    if settings.ca.dev_auto_init {
        Ok((file.served_at(&settings.server.public_url), sha256))
    } else {
        Ok((file, sha256))
    }
}

/// The certificate policies; in development mode with their CRL, OCSP and
/// caIssuers URLs under `server.public_url`, as [`ceremony_file`].
pub fn certificate_policies(settings: &Settings) -> Result<PolicySet, CaError> {
    let policies = PolicySet::load_dir(&settings.ca.policies_dir)?;
    if settings.ca.dev_auto_init {
        Ok(policies.served_at(&settings.server.public_url))
    } else {
        Ok(policies)
    }
}

/// The key ceremony with everything around it: refuses when the database already
/// has one (unless forced), generates and certifies in the HSM, records the
/// result, writes the transcript file, and journals it before returning.
pub async fn perform_ceremony(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    force: bool,
) -> Result<Transcript, CaError> {
    if !force && let Some(previous) = store.latest_ceremony().await? {
        return Err(CaError::CeremonyRecorded {
            name: previous.name,
            at: crate::clock::format::rfc3339(previous.completed_at),
        });
    }
    let (file, file_sha256) = ceremony_file(settings)?;
    let serials = CeremonySerials::reserve(store, file.client_auth.is_some(), clock.now()).await?;
    let outcome = {
        let hsm = hsm.clone();
        let file = file.clone();
        let clock = clock.clone();
        tokio::task::spawn_blocking(move || {
            ceremony::run(&file, &file_sha256, &hsm, clock.as_ref(), force, serials)
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))??
    };
    let transcript_json = serde_json::to_vec_pretty(&outcome.transcript)
        .map_err(|e| CaError::Internal(e.to_string()))?;
    let now = time::OffsetDateTime::from(clock.now());
    let certificates = [&outcome.root, &outcome.issuing, &outcome.ocsp, &outcome.tsa]
        .into_iter()
        .chain(outcome.client_auth.as_ref())
        .map(|certified| ca_certificate(certified, now))
        .collect::<Result<Vec<_>, _>>()?;
    let audit_spki = der::Encode::to_der(&outcome.audit.public_key)
        .map_err(|e| CaError::Internal(e.to_string()))?;
    store
        .record_ceremony(
            &CeremonyRecord {
                id: uuid::Uuid::new_v4().to_string(),
                name: file.name.clone(),
                file_sha256: outcome.transcript.ceremony_file_sha256.clone(),
                completed_at: now,
                transcript: transcript_json.clone(),
            },
            &certificates,
            &[ServiceKey {
                purpose: "audit".to_owned(),
                key: KeyReference {
                    token_role: TokenRole::Services,
                    key_id: outcome.audit.id.as_bytes().to_vec(),
                    key_label: outcome.audit.label.clone(),
                },
                algorithm: outcome.audit.algorithm.to_string(),
                public_key: audit_spki,
                active: true,
                created_at: now,
            }],
        )
        .await?;
    let transcript_file = write_transcript(settings, &file.name, now, &transcript_json)?;

    let journal = open_journal(settings, store, hsm, clock).await?;
    let details =
        serde_json::to_value(&outcome.transcript).map_err(|e| CaError::Internal(e.to_string()))?;
    let index = journal
        .append(&Actor::Task("sceau ca init"), Event::CaCeremony(details))
        .await?;
    journal.checkpoint().await?;
    journal.shutdown().await?;
    tracing::info!(journal_index = index, transcript = %transcript_file.display(), "ceremony recorded");
    Ok(outcome.transcript)
}

pub(super) fn ca_certificate(
    certified: &CertifiedKey,
    now: time::OffsetDateTime,
) -> Result<CaCertificate, CaError> {
    let der = certified
        .der()
        .map_err(|e| CaError::Internal(e.to_string()))?;
    let validity = &certified.certificate.tbs_certificate.validity;
    Ok(CaCertificate {
        serial: hex::encode(
            certified
                .certificate
                .tbs_certificate
                .serial_number
                .as_bytes(),
        ),
        purpose: certified.purpose.name().to_owned(),
        key: KeyReference {
            token_role: certified.purpose.token_role(),
            key_id: certified.key.id.as_bytes().to_vec(),
            key_label: certified.key.label.clone(),
        },
        sha256: hex::encode(Sha256::digest(&der)),
        der,
        not_before: validity.not_before.to_system_time().into(),
        not_after: validity.not_after.to_system_time().into(),
        active: true,
        created_at: now,
    })
}

fn write_transcript(
    settings: &Settings,
    name: &str,
    at: time::OffsetDateTime,
    json: &[u8],
) -> Result<PathBuf, CaError> {
    let dir = &settings.ca.transcript_dir;
    let io = |what: String| move |source| CaError::Io { what, source };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let stamp = at.unix_timestamp();
    let path = dir.join(format!("ceremony-{name}-{stamp}.json"));
    std::fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;
    Ok(path)
}
