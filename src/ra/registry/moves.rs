//! The moves of a request through its lifecycle: who may make which, the
//! approvals, validation and what it sets off.

use super::*;

impl Registry {
    pub(super) fn state_of(row: &RequestRow) -> Result<RequestState, RaError> {
        RequestState::parse(&row.state).ok_or_else(|| {
            RaError::Internal(format!("request {} in state {:?}", row.id, row.state))
        })
    }

    pub(super) fn approvals_needed(policy: &CertificatePolicy) -> usize {
        // A CA-managed key is made and used by the CA: four eyes before it exists.
        if policy.key.generation.is_ca_managed() {
            2
        } else {
            1
        }
    }

    pub(super) fn lifecycle(
        row: &RequestRow,
        dossier: &Dossier,
        policy: &CertificatePolicy,
    ) -> Result<Lifecycle, RaError> {
        let mut lifecycle = Lifecycle::new(Self::approvals_needed(policy));
        lifecycle.state = Self::state_of(row)?;
        // Four eyes count staff people, not their sign-ins.
        lifecycle.approvals = dossier.approvals.iter().map(approver_key).collect();
        lifecycle.identity_verifier = match &dossier.identity_verification {
            Some(IdentityVerification::FaceToFace {
                attested_by,
                attested_by_person,
                ..
            }) => Some(
                attested_by_person
                    .map(|person| person.to_string())
                    .unwrap_or_else(|| attested_by.clone()),
            ),
            _ => None,
        };
        Ok(lifecycle)
    }

    /// Makes a move on a request. Validation (the last approval) has the CA
    /// issue at once.
    pub async fn move_request(
        &self,
        principal: &Principal,
        id: Uuid,
        attempted: Move,
        message: Option<String>,
    ) -> Result<RequestView, RaError> {
        let CheckedMove {
            row,
            mut dossier,
            policy,
            mut lifecycle,
            roles,
            message,
        } = self.check_move(principal, id, attempted, message).await?;
        let from = lifecycle.state;
        let to = lifecycle.apply(attempted, &principal.person_key(), &roles)?;
        let now = self.now();
        if attempted == Move::Approve {
            dossier.approvals.push(Approval {
                operator: principal.id.clone(),
                person: principal.staff.as_ref().map(|member| member.id),
                at: now,
            });
        }
        if attempted == Move::RequestInformation {
            dossier.approvals.clear();
        }
        // Read before the journal entry: a request without its RCCS moves not.
        let parties = self.parties_of(&row, &dossier).await?;
        let moved = event::RequestMoved::ByPerson {
            request: id,
            step: attempted.name().to_owned(),
            from: from.name().to_owned(),
            to: to.name().to_owned(),
            message: message.clone(),
            approvals: dossier
                .approvals
                .iter()
                .map(|a| a.operator.clone())
                .collect(),
        };
        let index = self
            .journal(&Actor::from(principal), Event::RequestMoved(moved))
            .await?;
        let extra = self
            .effects_of_move(
                principal,
                (attempted, to),
                &row,
                &dossier,
                &policy,
                &message,
                parties,
            )
            .await?;
        self.transition(
            &Actor::from(principal),
            row,
            dossier,
            from,
            to,
            attempted.name(),
            message,
            index,
            extra,
        )
        .await?;
        if attempted == Move::Refuse {
            self.after_revocation().await;
        }
        if to == RequestState::Validated {
            // The CA issues at once; if it cannot now, the sweep retries.
            if let Err(error) = self.issue(id).await {
                tracing::error!(request = %id, %error, "issuance after validation failed; the sweep will retry");
                return Err(error);
            }
        }
        self.view(principal, id).await
    }

    /// `attempted` checked against the request's state, the caller's roles,
    /// the parties to the request and the dossier, before anything is written.
    async fn check_move(
        &self,
        principal: &Principal,
        id: Uuid,
        attempted: Move,
        message: Option<String>,
    ) -> Result<CheckedMove, RaError> {
        let (row, dossier) = self.load(principal, id).await?;
        let roles = acting_roles(principal, &row).unwrap_or_default();
        if !Move::ALL
            .iter()
            .any(|m| m.roles().iter().any(|r| roles.contains(r)))
        {
            return Err(RaError::Forbidden(
                "this principal may not move requests".to_owned(),
            ));
        }
        let policy = self.policy(&row.policy_id)?;
        let lifecycle = Self::lifecycle(&row, &dossier, &policy)?;
        if attempted == Move::Issue {
            return Err(MoveError::NotAllowed {
                state: lifecycle.state,
                attempted,
                allowed: lifecycle.allowed_moves(&roles),
            }
            .into());
        }
        let message = match message {
            Some(text) => Some(non_empty("message", &text, 2000)?),
            None => None,
        };
        // Check the move against state and role before anything else.
        let mut probe = lifecycle.clone();
        probe.apply(attempted, &principal.person_key(), &roles)?;
        // Staff never act on a request they are a party to.
        if attempted.roles().iter().all(|role| !role.is_entity_bound()) {
            self.check_not_party(principal, &row, &dossier).await?;
        }
        match attempted {
            Move::Submit => self.check_complete(&row, &dossier, &policy).await?,
            Move::Approve
                if dossier.identity_required && dossier.identity_verification.is_none() =>
            {
                return Err(invalid(
                    "identity_verification",
                    "the applicant's identity is not verified yet",
                ));
            }
            Move::RequestInformation | Move::Reject if message.is_none() => {
                return Err(invalid("message", "say what is needed or why"));
            }
            _ => {}
        }
        Ok(CheckedMove {
            row,
            dossier,
            policy,
            lifecycle,
            roles,
            message,
        })
    }

    /// The request's organisation, its persons and its RCCS.
    async fn parties_of(&self, row: &RequestRow, dossier: &Dossier) -> Result<Parties, RaError> {
        let persons = self.inner.store.persons_of(row.entity_id).await?;
        let entity = self.inner.store.entity(row.entity_id).await?;
        let rccs = persons
            .iter()
            .find(|p| p.id == dossier.rccs)
            .cloned()
            .ok_or_else(|| RaError::Internal(format!("request {} has no RCCS", row.id)))?;
        Ok(Parties {
            entity,
            persons,
            rccs,
        })
    }

    /// What a move brings besides the state change: the notice to the RCCS,
    /// the effects of validation, an acceptance or a refusal.
    #[expect(clippy::too_many_arguments, reason = "the parts of one checked move")]
    async fn effects_of_move(
        &self,
        principal: &Principal,
        (attempted, to): (Move, RequestState),
        row: &RequestRow,
        dossier: &Dossier,
        policy: &CertificatePolicy,
        message: &Option<String>,
        Parties {
            entity,
            persons,
            rccs,
        }: Parties,
    ) -> Result<Vec<Effect>, RaError> {
        let id = row.id;
        let issued_serial = || {
            row.certificate_serial
                .clone()
                .ok_or_else(|| RaError::Internal(format!("issued request {id} has no serial")))
        };
        let mut extra = Vec::new();
        match (attempted, to) {
            (Move::Submit, _) => extra.push(self.notice(
                &rccs,
                &NoticeText::Acknowledgement {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    policy_title: policy.title.clone(),
                },
            )),
            (Move::RequestInformation, _) => extra.push(self.notice(
                &rccs,
                &NoticeText::InformationNeeded {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    message: message.clone().unwrap_or_default(),
                },
            )),
            (Move::Reject, _) => extra.push(self.notice(
                &rccs,
                &NoticeText::Rejected {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    message: message.clone().unwrap_or_default(),
                },
            )),
            (Move::Approve, RequestState::Validated) => {
                extra.extend(self.validation_effects(dossier, &entity, &persons).await?);
                extra.push(self.notice(
                    &rccs,
                    &NoticeText::Validated {
                        request_id: id,
                        entity_name: entity.legal_name.clone(),
                    },
                ));
            }
            (Move::Accept, _) => {
                let serial = issued_serial()?;
                let accepted = self
                    .journal(
                        &Actor::from(principal),
                        Event::CertificateAccepted(event::CertificateAccepted {
                            request: id,
                            serial: serial.clone(),
                            credential: row.credential_id,
                        }),
                    )
                    .await?;
                tracing::debug!(journal_index = accepted, "certificate accepted");
                extra.push(Effect::CertificateAccepted(serial));
                if let Some(credential) = row.credential_id {
                    extra.push(Effect::CredentialStatus(
                        credential,
                        CredentialStatus::Active,
                    ));
                }
            }
            (Move::Refuse, _) => {
                let certificate = self.issued_certificate(&issued_serial()?).await?;
                let revocation = self
                    .revocation_effects(
                        principal,
                        "rccs",
                        &certificate,
                        (RevocationReason::Refused, None),
                        message.clone(),
                        &entity,
                        &persons,
                    )
                    .await?;
                extra.extend(revocation);
            }
            _ => {}
        }
        Ok(extra)
    }

    /// Whether `principal` applied with a request that names `person`: the
    /// applicant acts as the RCCS of his requests before holding the role.
    pub(super) async fn applied_naming(
        &self,
        principal: &Principal,
        person: &Person,
    ) -> Result<bool, RaError> {
        self.any_request(RequestScope::CreatedBy(&principal.id), |row, dossier| {
            Ok(row.entity_id == person.entity_id && dossier.names(person.id))
        })
        .await
    }

    /// Whether a request of the person's organisation that the RA validated
    /// names him.
    pub(super) async fn named_by_a_validated_request(
        &self,
        person: &Person,
    ) -> Result<bool, RaError> {
        self.any_request(RequestScope::Entity(person.entity_id), |row, dossier| {
            let validated = matches!(
                Self::state_of(row)?,
                RequestState::Validated | RequestState::Issued | RequestState::Accepted
            );
            Ok(validated && dossier.names(person.id))
        })
        .await
    }

    /// Whether any request of `scope` meets `test`, read a page at a time.
    pub(super) async fn any_request(
        &self,
        scope: RequestScope<'_>,
        test: impl Fn(&RequestRow, &Dossier) -> Result<bool, RaError>,
    ) -> Result<bool, RaError> {
        let mut before = None;
        loop {
            let rows = self
                .inner
                .store
                .registration_requests(scope, None, before, MAX_PAGE)
                .await?;
            for row in &rows {
                if test(row, &dossier_of(row)?)? {
                    return Ok(true);
                }
            }
            match rows.last() {
                Some(last) if rows.len() == MAX_PAGE as usize => before = Some(last.id),
                _ => return Ok(false),
            }
        }
    }

    /// What validating a request binds: the organisation as the request
    /// declared it, when no one held a role in it yet, and the organisation
    /// roles of the request's people who have signed in. Until now they had
    /// none: an applicant holds nothing before the RA has checked him.
    pub(super) async fn validation_effects(
        &self,
        dossier: &Dossier,
        entity: &Entity,
        persons: &[Person],
    ) -> Result<Vec<Effect>, RaError> {
        let mut effects = Vec::new();
        if let Some(declared) = &dossier.organisation
            && self.inner.store.role_holders(entity.id).await?.is_empty()
        {
            effects.push(Effect::UpdateEntity(declared.over(entity)));
        }
        for person in persons.iter().filter(|p| dossier.names(p.id)) {
            if let Some((issuer, subject)) = &person.identity {
                effects.push(Effect::GrantRole {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                    role: person.role,
                    entity_id: entity.id,
                });
            }
        }
        Ok(effects)
    }

    /// Writes a state change with its event and effects.
    #[expect(clippy::too_many_arguments, reason = "the parts of one history event")]
    pub(super) async fn transition(
        &self,
        actor: &Actor,
        row: RequestRow,
        dossier: Dossier,
        from: RequestState,
        to: RequestState,
        action: &str,
        message: Option<String>,
        index: u64,
        extra: Vec<Effect>,
    ) -> Result<(), RaError> {
        let now = self.now();
        let expected_version = row.version;
        let id = row.id;
        let updated = RequestRow {
            state: to.name().to_owned(),
            version: row.version + 1,
            file: to_json(&dossier)?,
            updated_at: now,
            ..row
        };
        let mut change = RaChange::new()
            .with(Effect::UpdateRequest {
                row: updated,
                expected_version,
            })
            .with(Effect::AppendEvent {
                request_id: id,
                event: RequestEvent {
                    action: action.to_owned(),
                    from_state: from.name().to_owned(),
                    to_state: to.name().to_owned(),
                    actor: actor.recorded(),
                    message,
                    journal_index: Some(index),
                    at: now,
                },
            });
        for effect in extra {
            change.push(effect);
        }
        self.commit(&change).await
    }

    /// What a request needs before it can be submitted: everything it
    /// lacks is named at once.
    pub(super) async fn check_complete(
        &self,
        row: &RequestRow,
        dossier: &Dossier,
        policy: &CertificatePolicy,
    ) -> Result<(), RaError> {
        let documents = self.inner.store.evidence_documents(row.id).await?;
        let lacks = lacks(row, dossier, policy, &documents);
        if lacks.is_empty() {
            Ok(())
        } else {
            Err(RaError::Incomplete(lacks))
        }
    }
}

/// Everything a request lacks before it can be submitted, given its documents.
pub(super) fn lacks(
    row: &RequestRow,
    dossier: &Dossier,
    policy: &CertificatePolicy,
    documents: &[EvidenceRow],
) -> Vec<Lack> {
    let mut lacks = Vec::new();
    match &dossier.terms {
        None => lacks.push(Lack {
            field: "terms".to_owned(),
            reason: "the terms of use are not accepted yet".to_owned(),
            documents: Vec::new(),
        }),
        Some(terms) if terms.version != policy.terms.version => lacks.push(Lack {
            field: "terms".to_owned(),
            reason: format!(
                "version {} was accepted, but the policy's terms are now version {}",
                terms.version, policy.terms.version
            ),
            documents: Vec::new(),
        }),
        Some(_) => {}
    }
    let have: BTreeSet<&str> = documents.iter().map(|d| d.kind.as_str()).collect();
    let needed: &[DocumentKind] = if row.kind == "initial" {
        &REQUIRED_DOCUMENTS
    } else if dossier.identity_required {
        &[DocumentKind::IdentityDocument]
    } else {
        &[]
    };
    let missing: Vec<String> = needed
        .iter()
        .map(|k| k.name())
        .filter(|k| !have.contains(k))
        .map(str::to_owned)
        .collect();
    if !missing.is_empty() {
        lacks.push(Lack {
            field: "documents".to_owned(),
            reason: format!("missing: {}", missing.join(", ")),
            documents: missing,
        });
    }
    lacks
}

/// A move that passed its checks, with what they read.
struct CheckedMove {
    row: RequestRow,
    dossier: Dossier,
    policy: Arc<CertificatePolicy>,
    lifecycle: Lifecycle,
    roles: BTreeSet<Role>,
    message: Option<String>,
}

/// Who a request concerns.
struct Parties {
    entity: Entity,
    persons: Vec<Person>,
    rccs: Person,
}
