//! Revocation: of one certificate by the people allowed, and of every
//! certificate at the end of the issuing CA, with what follows each.

use super::*;

impl Registry {
    /// Revokes a certificate at once, for good. `as_legal_representative` is
    /// the legal representative's own route: it needs his enrolled identity.
    pub async fn revoke(
        &self,
        principal: &Principal,
        serial: &str,
        reason: &str,
        comment: Option<String>,
        invalidity_date: Option<OffsetDateTime>,
        as_legal_representative: bool,
    ) -> Result<RevocationView, RaError> {
        let reason = RevocationReason::parse(reason).ok_or_else(|| {
            invalid(
                "reason",
                format!(
                    "{reason:?}: use one of {}",
                    RevocationReason::ALL
                        .iter()
                        .filter(|r| **r != RevocationReason::Refused)
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if reason == RevocationReason::Refused {
            return Err(invalid(
                "reason",
                "refusal is the RCCS's answer to an issued certificate: use the refuse move",
            ));
        }
        let comment = match comment {
            Some(text) => Some(non_empty("comment", &text, 2000)?),
            None => None,
        };
        let store = &self.inner.store;
        let certificate = self.issued_certificate(serial).await?;
        if as_legal_representative {
            if principal.entity != Some(certificate.entity_id)
                || !principal.has(Role::LegalRepresentative)
            {
                return Err(RaError::NotFound(format!("no certificate {serial}")));
            }
        } else {
            check_entity(
                principal,
                certificate.entity_id,
                &format!("certificate {serial}"),
            )?;
        }
        let role = if as_legal_representative {
            "legal_representative"
        } else if principal.has(Role::CaAdmin) {
            "ca_admin"
        } else if principal.has(Role::RaOperator) {
            "ra_operator"
        } else if principal.has(Role::Rccs) {
            "rccs"
        } else {
            "agent"
        };
        let entity = store.entity(certificate.entity_id).await?;
        let persons = store.persons_of(certificate.entity_id).await?;
        if let Some(date) = invalidity_date
            && date > self.now()
        {
            return Err(invalid(
                "invalidity_date",
                "is when the key was (or may have been) compromised: not in the future",
            ));
        }
        let effects = self
            .revocation_effects(
                principal,
                role,
                &certificate,
                (reason, invalidity_date),
                comment,
                &entity,
                &persons,
            )
            .await?;
        let mut change = RaChange::new();
        let mut view = None;
        for effect in effects {
            if let Effect::Revoke(r) = &effect {
                view = Some(RevocationView {
                    serial: r.serial.clone(),
                    reason: r.reason.clone(),
                    reason_code: r.reason_code.map(Reason::code),
                    revoked_at: r.revoked_at,
                    requested_by: r.requested_by.clone(),
                    requester_role: r.requester_role.clone(),
                    journal_index: r.journal_index,
                });
            }
            change.push(effect);
        }
        self.commit(&change).await?;
        self.after_revocation().await;
        view.ok_or_else(|| RaError::Internal("revocation without a record".to_owned()))
    }

    /// Journals a revocation and returns what to write: the record, the
    /// credential's status, and the notices with the effective date.
    #[expect(
        clippy::too_many_arguments,
        reason = "who, what, why, and whom to tell"
    )]
    pub(super) async fn revocation_effects(
        &self,
        principal: &Principal,
        role: &str,
        certificate: &IssuedCertificate,
        (reason, invalidity_date): (RevocationReason, Option<OffsetDateTime>),
        comment: Option<String>,
        entity: &Entity,
        persons: &[Person],
    ) -> Result<Vec<Effect>, RaError> {
        let serial = certificate.serial.as_str();
        if let Some(done) = self.inner.store.revocation(serial).await? {
            return Err(RaError::Conflict(format!(
                "certificate {serial} was already revoked at {} ({}); revocation is irreversible",
                rfc3339(done.revoked_at),
                done.reason
            )));
        }
        // A client certificate's registrations as an activation credential
        // are revoked with it (store::ra, `Effect::Revoke`): the entry names them.
        let activation_credentials: Vec<String> = self
            .inner
            .store
            .registrations_of_certificate(&certificate.sha256)
            .await?
            .into_iter()
            .filter(|registration| registration.active)
            .map(|registration| registration.id.to_string())
            .collect();
        let now = self.now();
        let index = self
            .journal(
                &Actor::from(principal),
                Event::CertificateRevoked(event::CertificateRevoked {
                    serial: serial.to_owned(),
                    certificate_sha256: certificate.sha256.clone(),
                    activation_credentials,
                    entity: entity.id,
                    reason: reason.name().to_owned(),
                    reason_code: reason.crl_reason().map(Reason::code),
                    requester_role: role.to_owned(),
                    comment: comment.clone(),
                    invalidity_date: invalidity_date.map(Into::into),
                    effective: now.into(),
                }),
            )
            .await?;
        let mut effects = vec![Effect::Revoke(Revocation {
            serial: serial.to_owned(),
            reason: reason.name().to_owned(),
            reason_code: reason.crl_reason(),
            revoked_at: now,
            requested_by: principal.id.clone(),
            requester_role: role.to_owned(),
            comment,
            journal_index: index,
            invalidity_date,
        })];
        let text = NoticeText::Revoked {
            entity_name: entity.legal_name.clone(),
            serial: serial.to_owned(),
            reason: reason.name().replace('_', " "),
            effective: now,
        };
        for person in persons.iter().filter(|p| {
            matches!(p.role, PersonRole::Rccs | PersonRole::Agent)
                || (role == "legal_representative"
                    && p.role == PersonRole::LegalRepresentative
                    && p.is_bound())
        }) {
            effects.push(self.notice(person, &text));
        }
        Ok(effects)
    }

    /// What follows a revocation at once: the key is destroyed and a new CRL
    /// published. Failures are logged: the sweep and every instance's CRL poll
    /// catch up within seconds.
    pub(super) async fn after_revocation(&self) {
        if let Err(error) = self.destroy_keys().await {
            tracing::warn!(%error, "key destruction after revocation failed; the sweep retries");
        }
        if let Err(error) = self.inner.crl.publish_now().await {
            tracing::warn!(%error, "CRL publication after revocation failed; the poll retries");
        }
    }
}

/// The reason recorded for certificates revoked because their CA ends (with
/// CRLReason cessationOfOperation).
pub const CA_TERMINATION_REASON: &str = "ca_termination";

/// Revokes every seal certificate still valid because the issuing CA ends:
/// one journal entry lists them, then one transaction revokes them, turns
/// their credentials `revoked` and queues a notice to each organisation's RCCS
/// and agents. Returns the serials revoked (none when nothing was left).
pub async fn revoke_all_for_ca_termination(
    store: &Store,
    journal: &Journal,
    message_id_domain: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<Vec<String>, RaError> {
    let still_valid = store.still_valid_seal_certificates().await?;
    if still_valid.is_empty() {
        return Ok(Vec::new());
    }
    let serials: Vec<String> = still_valid.iter().map(|c| c.serial.clone()).collect();
    let index = journal
        .append(
            actor,
            Event::CertificatesRevokedForCaTermination(event::RevokedForTermination {
                serials: serials.clone(),
                reason: CA_TERMINATION_REASON.to_owned(),
                crl_reason: "cessationOfOperation".to_owned(),
                effective: now.into(),
            }),
        )
        .await?;
    let mut change = RaChange::new();
    let mut entities: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();
    for certificate in &still_valid {
        change = change.with(Effect::Revoke(Revocation {
            serial: certificate.serial.clone(),
            reason: CA_TERMINATION_REASON.to_owned(),
            reason_code: Some(Reason::CessationOfOperation),
            revoked_at: now,
            requested_by: actor.recorded(),
            requester_role: "ca_admin".to_owned(),
            comment: Some("the issuing CA ends".to_owned()),
            journal_index: index,
            invalidity_date: None,
        }));
        entities
            .entry(certificate.entity_id)
            .or_default()
            .push(certificate.serial.clone());
    }
    for (entity_id, serials) in entities {
        let entity = store.entity(entity_id).await?;
        let persons = store.persons_of(entity_id).await?;
        for serial in serials {
            let text = NoticeText::Revoked {
                entity_name: entity.legal_name.clone(),
                serial,
                reason: "end of the issuing certification authority".to_owned(),
                effective: now,
            };
            for person in persons
                .iter()
                .filter(|p| matches!(p.role, PersonRole::Rccs | PersonRole::Agent))
            {
                change = change.with(notice_to(person, &text));
            }
        }
    }
    store
        .apply_ra_change(&change, message_id_domain, now)
        .await?
        .settled()
        .await;
    Ok(serials)
}
