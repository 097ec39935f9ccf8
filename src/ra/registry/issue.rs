//! Issuance and renewal: the certificate of a validated request, through the
//! signing path under a `validated_request` grant.

use super::*;

impl Registry {
    /// Has the CA issue the certificate of a validated request, then records it.
    pub(super) async fn issue(&self, id: Uuid) -> Result<(), RaError> {
        let row = self.inner.store.registration_request(id).await?;
        if Self::state_of(&row)? != RequestState::Validated {
            return Ok(());
        }
        let dossier = dossier_of(&row)?;
        let policy = self.policy(&row.policy_id)?;
        let key = match &dossier.csr {
            None => KeySource::Generate { algorithm: None },
            Some(csr) => KeySource::Csr {
                csr: base64::engine::general_purpose::STANDARD
                    .decode(csr)
                    .map_err(|e| RaError::Internal(format!("stored CSR: {e}")))?,
                device: dossier.device.clone(),
            },
        };
        // The staff people who approved, by person id.
        let approvers: Vec<String> = dossier.approvals.iter().map(approver_key).collect();
        let issuer = self.inner.issuer.as_ref().ok_or_else(|| {
            RaError::Conflict(
                "the issuing CA was terminated: it issues no more certificates".to_owned(),
            )
        })?;
        // The lifecycle validated this request (its approvals are complete):
        // the one place a seal certificate is granted.
        let grant = Grant::validated_request(approvers);
        let issued = issuer
            .issue(
                grant,
                IssuanceRequest {
                    request_id: id,
                    policy_id: policy.id.clone(),
                    entity_id: row.entity_id,
                    seal_name: dossier.seal_name.clone(),
                    validity_days: dossier.validity_days,
                    key,
                },
            )
            .await?;
        let certificate = self.inner.store.issued_certificate(&issued.serial).await?;
        let entity = self.inner.store.entity(row.entity_id).await?;
        let persons = self.inner.store.persons_of(row.entity_id).await?;
        let index = self
            .journal(
                &Actor::Registry,
                Event::RequestMoved(event::RequestMoved::Issued {
                    request: id,
                    step: "issue".to_owned(),
                    from: RequestState::Validated.name().to_owned(),
                    to: RequestState::Issued.name().to_owned(),
                    serial: issued.serial.clone(),
                    certificate_journal_index: issued.journal_index,
                }),
            )
            .await?;
        let mut extra = Vec::new();
        for person in persons.iter().filter(|p| p.id == dossier.rccs) {
            extra.push(self.notice(
                person,
                &NoticeText::Issued {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    serial: issued.serial.clone(),
                    not_after: certificate.not_after,
                    accept_url: self.request_url(id),
                },
            ));
        }
        let row = RequestRow {
            certificate_serial: Some(issued.serial.clone()),
            credential_id: issued.credential_id,
            ..row
        };
        self.transition(
            &Actor::Registry,
            row,
            dossier,
            RequestState::Validated,
            RequestState::Issued,
            "issue",
            None,
            index,
            extra,
        )
        .await
    }

    /// Starts the renewal of an accepted certificate: a new request (draft) for a
    /// new key, inside the renewal window.
    pub async fn renew(
        &self,
        principal: &Principal,
        serial: &str,
        input: RenewalInput,
    ) -> Result<RequestView, RaError> {
        let (identity_issuer, identity_subject, acr) = person_identity(principal)?;
        let store = &self.inner.store;
        let certificate = self.issued_certificate(serial).await?;
        check_entity(
            principal,
            certificate.entity_id,
            &format!("certificate {serial}"),
        )?;
        let policy = self.policy(&certificate.policy_id)?;
        let now = self.now();
        if store.revocation(serial).await?.is_some() {
            return Err(RaError::Conflict(format!(
                "certificate {serial} is revoked: apply for a new certificate instead"
            )));
        }
        if store.certificate_accepted_at(serial).await?.is_none() {
            return Err(RaError::Conflict(format!(
                "certificate {serial} was never accepted; accept or refuse it first"
            )));
        }
        let opens = certificate.not_after
            - Duration::days(i64::from(policy.registration.renewal_window_days));
        if now < opens || now >= certificate.not_after {
            return Err(invalid(
                "serial",
                if now >= certificate.not_after {
                    format!(
                        "certificate {serial} expired at {}; apply for a new certificate",
                        rfc3339(certificate.not_after)
                    )
                } else {
                    format!(
                        "renewal of {serial} opens on {} ({} days before it expires at {})",
                        rfc3339(opens),
                        policy.registration.renewal_window_days,
                        rfc3339(certificate.not_after)
                    )
                },
            ));
        }
        let open = store.renewals_of(serial).await?.into_iter().find(|r| {
            RequestState::parse(&r.state)
                .is_some_and(|s| s != RequestState::Rejected && s != RequestState::Refused)
        });
        if let Some(open) = open {
            return Err(RaError::Conflict(format!(
                "certificate {serial} already has renewal request {} ({})",
                open.id, open.state
            )));
        }
        let original = store.registration_request(certificate.request_id).await?;
        let previous = dossier_of(&original)?;
        let renewal_number = previous.renewal_number + 1;
        let identity_required =
            renewal_number > 1 || policy.registration.reverify_identity_on_first_renewal;
        check_validity(&policy, input.validity_days)?;
        let (csr, device) =
            self.key_material(&policy, input.csr.as_deref(), input.device.as_ref())?;
        let mut dossier = Dossier {
            organisation: None,
            seal_name: previous.seal_name.clone(),
            validity_days: input.validity_days.or(previous.validity_days),
            rccs: previous.rccs,
            legal_representative: previous.legal_representative,
            agent: previous.agent,
            identity_verification: None,
            terms: None,
            approvals: Vec::new(),
            csr,
            device,
            renewal_number,
            identity_required,
        };
        if let Some(terms) = &input.terms {
            dossier.terms = Some(self.terms_acceptance(&policy, terms, principal, now)?);
        }
        if let Some(identity) = &input.identity_verification {
            dossier.identity_verification = Some(self.identity_verification(
                principal,
                identity,
                (&identity_issuer, &identity_subject, acr.as_deref()),
                None,
                now,
            )?);
        }
        let request_id = Uuid::new_v4();
        let index = self
            .journal(
                &Actor::from(principal),
                Event::RenewalStarted(event::RenewalStarted {
                    request: request_id,
                    renews: serial.to_owned(),
                    policy: policy.id.clone(),
                    renewal_number,
                    identity_required,
                    terms: snapshot(&dossier.terms)?,
                }),
            )
            .await?;
        let entity = store.entity(certificate.entity_id).await?;
        let persons = store.persons_of(certificate.entity_id).await?;
        let mut change = RaChange::new()
            .with(Effect::InsertRequest(RequestRow {
                id: request_id,
                entity_id: certificate.entity_id,
                kind: "renewal".to_owned(),
                policy_id: policy.id.clone(),
                state: RequestState::Draft.name().to_owned(),
                version: 1,
                file: to_json(&dossier)?,
                renews_serial: Some(serial.to_owned()),
                certificate_serial: None,
                credential_id: None,
                created_by: principal.id.clone(),
                created_at: now,
                updated_at: now,
            }))
            .with(Effect::AppendEvent {
                request_id,
                event: RequestEvent {
                    action: "renew".to_owned(),
                    from_state: String::new(),
                    to_state: RequestState::Draft.name().to_owned(),
                    actor: principal.id.clone(),
                    message: Some(format!("renews {serial}")),
                    journal_index: Some(index),
                    at: now,
                },
            });
        for person in persons.iter().filter(|p| p.id == dossier.rccs) {
            change.push(self.notice(
                person,
                &NoticeText::RenewalStarted {
                    request_id,
                    entity_name: entity.legal_name.clone(),
                    serial: serial.to_owned(),
                },
            ));
        }
        self.commit(&change).await?;
        self.view(principal, request_id).await
    }
}
