//! A request's dossier while it can change: documents added and read back, the
//! terms accepted, the identity checks recorded.

use super::views::document_view;
use super::*;

impl Registry {
    pub(super) fn editable(row: &RequestRow) -> Result<RequestState, RaError> {
        let state = Self::state_of(row)?;
        if matches!(state, RequestState::Draft | RequestState::NeedsInformation) {
            Ok(state)
        } else {
            Err(RaError::Conflict(format!(
                "request {} is {state}: its file can change only in draft or needs_information",
                row.id
            )))
        }
    }

    /// Stores an evidence document, encrypted; returns its record.
    pub async fn add_document(
        &self,
        principal: &Principal,
        id: Uuid,
        kind: &str,
        content: Vec<u8>,
    ) -> Result<DocumentView, RaError> {
        let kind = DocumentKind::parse(kind).ok_or_else(|| {
            invalid(
                "kind",
                format!("{kind:?}: use identity_document, registry_extract, mandate or other"),
            )
        })?;
        let (row, _) = self.load(principal, id).await?;
        let state = Self::editable(&row)?;
        let policy = self.policy(&row.policy_id)?;
        let document_id = Uuid::new_v4();
        let sealed: SealedDocument = self
            .inner
            .vault
            .seal(
                content,
                self.inner.settings.max_document_bytes,
                document_id.as_bytes(),
            )
            .await?;
        let now = self.now();
        let retain_until = add_years(now, policy.registration.evidence_retention_years);
        let sha256 = hex::encode(sealed.sha256);
        let index = self
            .journal(
                &Actor::from(principal),
                Event::EvidenceReceived(event::EvidenceReceived {
                    request: id,
                    document: document_id,
                    kind: kind.name().to_owned(),
                    media_type: sealed.media_type.mime().to_owned(),
                    size: sealed.size,
                    sha256: sha256.clone(),
                    retain_until: retain_until.into(),
                }),
            )
            .await?;
        let record = EvidenceRow {
            id: document_id,
            request_id: id,
            kind: kind.name().to_owned(),
            media_type: sealed.media_type.mime().to_owned(),
            size: sealed.size,
            sha256,
            kek_label: sealed.kek_label,
            wrapped_key: Some(sealed.wrapped_key),
            ciphertext: Some(sealed.ciphertext),
            uploaded_by: principal.id.clone(),
            uploaded_at: now,
            retain_until,
            purged_at: None,
            journal_index: Some(index),
        };
        let view = document_view(record.clone());
        let change =
            RaChange::new()
                .with(Effect::InsertDocument(record))
                .with(Effect::AppendEvent {
                    request_id: id,
                    event: RequestEvent {
                        action: format!("upload:{}", kind.name()),
                        from_state: state.name().to_owned(),
                        to_state: state.name().to_owned(),
                        actor: principal.id.clone(),
                        message: None,
                        journal_index: Some(index),
                        at: now,
                    },
                });
        self.commit(&change).await?;
        Ok(view)
    }

    /// The decrypted content of a document and its media type (RA operators).
    pub async fn document_content(
        &self,
        principal: &Principal,
        id: Uuid,
        document_id: Uuid,
    ) -> Result<(String, Vec<u8>), RaError> {
        let (row, _) = self.load(principal, id).await?;
        let record = match self.inner.store.evidence_document(document_id).await {
            Ok(record) if record.request_id == row.id => record,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no document {document_id}")));
            }
            Err(e) => return Err(e.into()),
        };
        let (Some(wrapped_key), Some(ciphertext)) = (record.wrapped_key, record.ciphertext) else {
            return Err(RaError::Conflict(format!(
                "document {document_id} was purged at the end of its retention period"
            )));
        };
        let media_type = [MediaType::Pdf, MediaType::Jpeg, MediaType::Png]
            .into_iter()
            .find(|m| m.mime() == record.media_type)
            .ok_or_else(|| RaError::Internal(format!("media type {}", record.media_type)))?;
        let sha256: [u8; 32] = hex::decode(&record.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| RaError::Internal(format!("document {document_id}'s SHA-256")))?;
        let content = self
            .inner
            .vault
            .unseal(
                &SealedDocument {
                    media_type,
                    sha256,
                    size: record.size,
                    kek_label: record.kek_label,
                    wrapped_key,
                    ciphertext,
                },
                document_id.as_bytes(),
            )
            .await?;
        self.journal(
            &Actor::from(principal),
            Event::EvidenceRead(event::EvidenceRead {
                request: id,
                document: document_id,
            }),
        )
        .await?;
        Ok((record.media_type, content))
    }

    /// Records the acceptance of a precise terms version.
    pub async fn accept_terms(
        &self,
        principal: &Principal,
        id: Uuid,
        terms: &TermsInput,
    ) -> Result<RequestView, RaError> {
        let (row, mut dossier) = self.load(principal, id).await?;
        let state = Self::editable(&row)?;
        let policy = self.policy(&row.policy_id)?;
        let now = self.now();
        let acceptance = self.terms_acceptance(&policy, terms, principal, now)?;
        let index = self
            .journal(
                &Actor::from(principal),
                Event::TermsAccepted(event::TermsAccepted {
                    request: id,
                    policy: policy.id.clone(),
                    terms_oid: policy.terms.oid.to_string(),
                    version: acceptance.version.clone(),
                    sha256: acceptance.sha256.clone(),
                    accepted_at: now.into(),
                }),
            )
            .await?;
        dossier.terms = Some(acceptance);
        self.save(principal, row, dossier, state, "accept_terms", index)
            .await
    }

    /// Records how the identity was verified.
    pub async fn record_identity(
        &self,
        principal: &Principal,
        id: Uuid,
        input: &IdentityInput,
    ) -> Result<RequestView, RaError> {
        let (row, mut dossier) = self.load(principal, id).await?;
        let state = Self::state_of(&row)?;
        let open = matches!(
            state,
            RequestState::Draft
                | RequestState::NeedsInformation
                | RequestState::Submitted
                | RequestState::InReview
        );
        if !open {
            return Err(RaError::Conflict(format!(
                "request {id} is {state}: identity verification is recorded before validation"
            )));
        }
        let now = self.now();
        let identity = person_identity(principal)?;
        if input.method == "face_to_face" {
            self.check_not_party(principal, &row, &dossier).await?;
        }
        let verification = self.identity_verification(
            principal,
            input,
            (&identity.0, &identity.1, identity.2.as_deref()),
            Some(row.entity_id),
            now,
        )?;
        // The approvers approved the record they saw: a new one needs them again.
        let cleared: Vec<String> = dossier
            .approvals
            .iter()
            .map(|approval| approval.operator.clone())
            .collect();
        let index = self
            .journal(
                &Actor::from(principal),
                Event::IdentityVerified(event::IdentityVerified {
                    request: id,
                    verification: snapshot(&verification)?,
                    approvals_cleared: cleared,
                }),
            )
            .await?;
        dossier.approvals.clear();
        dossier.identity_verification = Some(verification);
        self.save(principal, row, dossier, state, "record_identity", index)
            .await
    }

    /// Writes the dossier back with an event (no state change).
    pub(super) async fn save(
        &self,
        principal: &Principal,
        row: RequestRow,
        dossier: Dossier,
        state: RequestState,
        action: &str,
        index: u64,
    ) -> Result<RequestView, RaError> {
        let id = row.id;
        self.transition(
            &Actor::from(principal),
            row,
            dossier,
            state,
            state,
            action,
            None,
            index,
            Vec::new(),
        )
        .await?;
        self.view(principal, id).await
    }
}
