//! The periodic sweep: reminders before expiry, purges of what is past its
//! keeping time, and the destruction of retired seal keys.

use super::*;

impl Registry {
    /// One maintenance pass: renewal reminders due, evidence past retention,
    /// validated requests whose issuance did not happen.
    pub async fn sweep(&self) -> Result<SweepReport, RaError> {
        let mut report = SweepReport::default();
        self.remind(&mut report).await?;
        self.purge(&mut report).await?;
        report.destroyed_keys = self.destroy_keys().await?;
        // Page by page: those whose issuance fails again stay validated, and
        // the next page starts after them.
        let mut before = None;
        loop {
            let rows = self
                .inner
                .store
                .registration_requests(
                    RequestScope::All,
                    Some(RequestState::Validated.name()),
                    before,
                    MAX_PAGE,
                )
                .await?;
            for row in &rows {
                match self.issue(row.id).await {
                    Ok(()) => report.issued_requests.push(row.id),
                    Err(error) => {
                        tracing::warn!(request = %row.id, %error, "issuance retry failed");
                    }
                }
            }
            if rows.len() < MAX_PAGE as usize {
                break;
            }
            before = rows.last().map(|row| row.id);
        }
        Ok(report)
    }

    pub(super) async fn remind(&self, report: &mut SweepReport) -> Result<(), RaError> {
        let store = &self.inner.store;
        let now = self.now();
        let horizon = now + Duration::days(i64::from(REMINDER_DAYS[0]));
        for certificate in store.expiring_certificates(now, horizon).await? {
            let left = certificate.not_after - now;
            let due: Vec<u32> = REMINDER_DAYS
                .into_iter()
                .filter(|d| left <= Duration::days(i64::from(*d)))
                .filter(|d| !certificate.reminded.contains(d))
                .collect();
            let Some(&closest) = due.iter().min() else {
                continue;
            };
            // Renewed already: no reminder.
            let renewed = store
                .renewals_of(&certificate.serial)
                .await?
                .iter()
                .any(|r| {
                    matches!(
                        RequestState::parse(&r.state),
                        Some(RequestState::Issued | RequestState::Accepted)
                    )
                });
            let mut change = RaChange::new();
            // Thresholds the clock jumped over are marked too, with one notice.
            for days in &due {
                change.push(Effect::Reminded {
                    serial: certificate.serial.clone(),
                    days_before: *days,
                });
            }
            if !renewed {
                let entity = store.entity(certificate.entity_id).await?;
                let persons = store.persons_of(certificate.entity_id).await?;
                let days_left = u32::try_from(left.whole_days().max(0)).unwrap_or(0);
                let text = NoticeText::Reminder {
                    entity_name: entity.legal_name.clone(),
                    serial: certificate.serial.clone(),
                    not_after: certificate.not_after,
                    days_left,
                    renew_url: format!(
                        "{}/certificates/{}/renew",
                        self.inner.portal_url, certificate.serial
                    ),
                };
                for person in persons
                    .iter()
                    .filter(|p| matches!(p.role, PersonRole::Rccs | PersonRole::Agent))
                {
                    change.push(self.notice(person, &text));
                }
                report.reminders.push((certificate.serial.clone(), closest));
            }
            self.commit(&change).await?;
        }
        Ok(())
    }

    pub(super) async fn purge(&self, report: &mut SweepReport) -> Result<(), RaError> {
        let store = &self.inner.store;
        let now = self.now();
        for document in store.evidence_due_for_purge(now).await? {
            let index = self
                .journal(
                    &Actor::Service,
                    Event::EvidencePurged(event::EvidencePurged {
                        request: document.request_id,
                        document: document.id,
                        kind: document.kind.clone(),
                        sha256: document.sha256.clone(),
                        uploaded_at: document.uploaded_at.into(),
                        retain_until: document.retain_until.into(),
                    }),
                )
                .await?;
            store.purge_evidence(document.id, index, now).await?;
            report.purged_documents.push(document.id);
        }
        Ok(())
    }

    /// Destroys, in the seal token, every CA-managed key whose certificate is
    /// revoked or expired, journaling each (`key.destroyed`) and recording it.
    /// Idempotent: a key already gone (a crash after the destruction) is
    /// journaled and recorded on the next pass. Returns the credentials done.
    pub async fn destroy_keys(&self) -> Result<Vec<Uuid>, RaError> {
        destroy_retired_seal_keys(
            &self.inner.store,
            &self.inner.journal,
            &self.inner.seal_token,
            self.now(),
        )
        .await
    }

    /// Runs the sweep every `ra.sweep_interval_secs` until `stop` turns true.
    pub async fn run_sweeps(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval =
            std::time::Duration::from_secs(self.inner.settings.sweep_interval_secs.max(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "RA maintenance sweep failed; next pass retries");
            }
        }
    }
}

/// Destroys, in the seal token, every CA-managed key whose certificate is
/// revoked or expired at `now`, journaling each (`key.destroyed`) and recording
/// it. Idempotent: a key already gone (a crash after the destruction) is
/// journaled and recorded on the next pass. Returns the credentials done. The
/// RA's sweep runs it, and so does a CA termination.
pub async fn destroy_retired_seal_keys(
    store: &Store,
    journal: &Journal,
    seal_token: &Arc<TokenPool>,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>, RaError> {
    let mut done = Vec::new();
    for key in store.keys_to_destroy(now).await? {
        let Some(id) = KeyId::from_bytes(&key.key.key_id) else {
            tracing::error!(credential = %key.credential_id, "stored key id is not 16 bytes");
            continue;
        };
        let token = seal_token.clone();
        tokio::task::spawn_blocking(move || token.destroy_key_blocking(&id))
            .await
            .map_err(|e| RaError::Internal(format!("key destruction task: {e}")))?
            .map_err(|e| RaError::Internal(format!("destroying key {id}: {e}")))?;
        let expired = !key.revoked;
        let index = journal
            .append(
                &Actor::Service,
                Event::KeyDestroyed(event::KeyDestroyed {
                    credential: key.credential_id,
                    serial: key.serial.clone(),
                    key_id: id.to_string(),
                    key_label: key.key.key_label.clone(),
                    token: key.key.token_role.name().to_owned(),
                    reason: if expired { "expired" } else { "revoked" }.to_owned(),
                    not_after: key.not_after.map(Into::into),
                }),
            )
            .await?;
        store
            .mark_key_destroyed(key.credential_id, expired, index, now)
            .await?;
        done.push(key.credential_id);
    }
    Ok(done)
}
