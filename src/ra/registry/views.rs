//! What callers read of requests: one request rendered for its caller, the page
//! of requests a caller may see, and the certificate views.

use super::*;

impl Registry {
    pub(super) async fn load(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(RequestRow, Dossier), RaError> {
        let row = match self.inner.store.registration_request(id).await {
            Ok(row) => row,
            Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no request {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        if acting_roles(principal, &row).is_none() {
            return Err(RaError::NotFound(format!("no request {id}")));
        }
        let dossier = dossier_of(&row)?;
        Ok((row, dossier))
    }

    /// An issued certificate by serial; `NotFound` names it.
    pub(super) async fn issued_certificate(
        &self,
        serial: &str,
    ) -> Result<IssuedCertificate, RaError> {
        match self.inner.store.issued_certificate(serial).await {
            Ok(certificate) => Ok(certificate),
            Err(StoreError::NotFound { .. }) => {
                Err(RaError::NotFound(format!("no certificate {serial}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The policy a request is under, when `principal` may see the request
    /// (`NotFound` otherwise): one read, where a form needs no more.
    pub async fn request_policy(&self, principal: &Principal, id: Uuid) -> Result<String, RaError> {
        let (row, _) = self.load(principal, id).await?;
        Ok(row.policy_id)
    }

    /// The request as `principal` may see it.
    pub async fn view(&self, principal: &Principal, id: Uuid) -> Result<RequestView, RaError> {
        let (row, dossier) = self.load(principal, id).await?;
        let organisation = self.organisation(row.entity_id).await?;
        self.render(principal, row, dossier, &organisation).await
    }

    pub(super) async fn organisation(&self, entity_id: Uuid) -> Result<Organisation, RaError> {
        let store = &self.inner.store;
        Ok(Organisation {
            entity: store.entity(entity_id).await?,
            persons: store.persons_of(entity_id).await?,
        })
    }

    pub(super) async fn render(
        &self,
        principal: &Principal,
        row: RequestRow,
        dossier: Dossier,
        organisation: &Organisation,
    ) -> Result<RequestView, RaError> {
        let store = &self.inner.store;
        let policy = self.policy(&row.policy_id)?;
        let lifecycle = Self::lifecycle(&row, &dossier, &policy)?;
        let roles = acting_roles(principal, &row).unwrap_or_default();
        let allowed_moves = lifecycle.allowed_moves(&roles);
        let entity = match &dossier.organisation {
            Some(declared) => declared.over(&organisation.entity),
            None => organisation.entity.clone(),
        };
        let find = |id: Uuid| {
            organisation
                .persons
                .iter()
                .find(|p| p.id == id)
                .cloned()
                .ok_or_else(|| RaError::Internal(format!("person {id} of request {}", row.id)))
        };
        let persons_view = PersonsView {
            rccs: find(dossier.rccs)?,
            legal_representative: find(dossier.legal_representative)?,
            agent: dossier.agent.map(find).transpose()?,
        };
        let records = store.evidence_documents(row.id).await?;
        let missing = if matches!(
            lifecycle.state,
            RequestState::Draft | RequestState::NeedsInformation
        ) {
            moves::lacks(&row, &dossier, &policy, &records)
        } else {
            Vec::new()
        };
        let documents = records.into_iter().map(document_view).collect();
        let certificate = match &row.certificate_serial {
            Some(serial) => Some(self.certificate_view(serial).await?),
            None => None,
        };
        let history = store.request_events(row.id).await?;
        Ok(RequestView {
            id: row.id,
            kind: row.kind,
            policy: row.policy_id,
            state: lifecycle.state,
            version: row.version,
            allowed_moves,
            missing,
            entity,
            persons: persons_view,
            seal_name: dossier.seal_name,
            validity_days: dossier.validity_days,
            identity_verification: dossier.identity_verification,
            identity_required: dossier.identity_required,
            terms: dossier.terms,
            approvals: dossier.approvals,
            approvals_needed: lifecycle.approvals_needed,
            documents,
            renews_serial: row.renews_serial,
            renewal_number: dossier.renewal_number,
            certificate,
            history,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    pub(super) async fn certificate_view(&self, serial: &str) -> Result<CertificateView, RaError> {
        let store = &self.inner.store;
        let issued = store.issued_certificate(serial).await?;
        let accepted_at = store.certificate_accepted_at(serial).await?;
        let revoked = store.revocation(serial).await?.is_some();
        let credential_status = match issued.credential_id {
            Some(id) => Some(store.seal_credential(id).await?.status),
            None => None,
        };
        let now = self.now();
        let usable = accepted_at.is_some()
            && !revoked
            && issued.not_after > now
            && credential_status.is_none_or(|s| s == CredentialStatus::Active);
        Ok(CertificateView {
            serial: issued.serial,
            not_before: issued.not_before,
            not_after: issued.not_after,
            credential_id: issued.credential_id,
            credential_status: credential_status.map(|s| s.as_str().to_owned()),
            accepted_at,
            revoked,
            usable,
            pem: crate::crypto::certificate_pem(&issued.der),
        })
    }

    /// Up to `limit` requests the caller may see, newest first: an
    /// organisation's own, or all for staff (optionally in one state); after
    /// `before`, a request of the previous page, when paging on.
    pub async fn list(
        &self,
        principal: &Principal,
        state: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<RequestPage, RaError> {
        if let Some(state) = state
            && RequestState::parse(state).is_none()
        {
            return Err(invalid("state", format!("no state {state:?}")));
        }
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("{limit} is not between 1 and {MAX_PAGE}"),
            ));
        }
        // An applicant not yet holding a role sees the requests he applied with.
        let scope = if is_staff(principal) {
            RequestScope::All
        } else {
            match principal.entity {
                Some(entity) => RequestScope::Entity(entity),
                None => RequestScope::CreatedBy(&principal.id),
            }
        };
        let store = &self.inner.store;
        if let Some(before) = before {
            // A request the caller cannot see is refused like an unknown one.
            match self.load(principal, before).await {
                Ok(_) => {}
                Err(RaError::NotFound(_)) => {
                    return Err(invalid(
                        "before",
                        format!("no request {before} to page from"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        // One more than asked: whether there is a next page.
        let mut rows = store
            .registration_requests(scope, state, before, limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        // The requests of a page mostly share their organisation: read it once.
        let mut organisations: HashMap<Uuid, Organisation> = HashMap::new();
        let mut requests = Vec::with_capacity(rows.len());
        for row in rows {
            let dossier = dossier_of(&row)?;
            let organisation = match organisations.entry(row.entity_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => new.insert(self.organisation(row.entity_id).await?),
            };
            requests.push(self.render(principal, row, dossier, organisation).await?);
        }
        let next_before = if more {
            requests.last().map(|view| view.id)
        } else {
            None
        };
        Ok(RequestPage {
            requests,
            next_before,
        })
    }
}

pub(super) fn document_view(record: EvidenceRow) -> DocumentView {
    DocumentView {
        id: record.id,
        kind: record.kind,
        media_type: record.media_type,
        size: record.size,
        sha256: record.sha256,
        uploaded_at: record.uploaded_at,
        retain_until: record.retain_until,
        purged_at: record.purged_at,
    }
}
