//! An application: the organisation, the people it names, the key material, the
//! terms and identity evidence it brings, checked and written as one request.

use super::*;

impl Registry {
    /// Opens a request (draft) for an organisation: registers it if new, records
    /// the persons, binds the applicant as RCCS and sends the legal
    /// representative (and agent) their enrolment links.
    pub async fn apply(
        &self,
        principal: &Principal,
        application: Application,
    ) -> Result<RequestView, RaError> {
        let (issuer, subject, acr) = person_identity(principal)?;
        let now = self.now();
        let policy = self.policy(&application.policy)?;
        let org = &application.organisation;
        let siren: Siren = org
            .siren
            .parse()
            .map_err(|e| identifier_error("organisation.siren", &e))?;
        let siret: Option<Siret> = match &org.siret {
            None => None,
            Some(text) => {
                let siret: Siret = text
                    .parse()
                    .map_err(|e| identifier_error("organisation.siret", &e))?;
                if siret.siren() != siren {
                    return Err(invalid(
                        "organisation.siret",
                        format!("{siret} is not an establishment of SIREN {siren}"),
                    ));
                }
                Some(siret)
            }
        };
        let country = org.country.clone().unwrap_or_else(|| "FR".to_owned());
        if country != "FR" {
            return Err(invalid(
                "organisation.country",
                "organisations are registered by SIREN, so they are French (FR)",
            ));
        }
        let legal_name = non_empty("organisation.legal_name", &org.legal_name, 64)?;
        let legal_form = non_empty("organisation.legal_form", &org.legal_form, 100)?;
        let street = non_empty("organisation.street", &org.street, 200)?;
        let postal_code = non_empty("organisation.postal_code", &org.postal_code, 10)?;
        if !(postal_code.len() == 5 && postal_code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(
                "organisation.postal_code",
                "a French postal code is 5 digits",
            ));
        }
        let city = non_empty("organisation.city", &org.city, 100)?;
        let seal_name = non_empty("seal_name", &application.seal_name, 64)?;
        check_validity(&policy, application.validity_days)?;
        let (csr, device) = self.key_material(
            &policy,
            application.csr.as_deref(),
            application.device.as_ref(),
        )?;

        let rccs_input = self.person_input("rccs", &application.rccs)?;
        let legal_input =
            self.person_input("legal_representative", &application.legal_representative)?;
        let agent_input = match &application.agent {
            Some(agent) => Some(self.person_input("agent", agent)?),
            None => None,
        };

        // The organisation: the caller's own, one no one holds a role in yet
        // (competing applications reach the RA, which decides), or new.
        let existing = self.inner.store.entity_by_siren(siren.as_str()).await?;
        let declared = DeclaredOrganisation {
            legal_name,
            siret: siret.as_ref().map(|s| s.as_str().to_owned()),
            legal_form,
            street,
            postal_code,
            city,
        };
        let mut change = RaChange::new();
        let (entity, declared) = self
            .organisation_for(
                principal,
                existing,
                (&siren, declared, country),
                now,
                &mut change,
            )
            .await?;

        // The applicant is the RCCS; reuse his record when he has one.
        let persons = self.inner.store.persons_of(entity.id).await?;
        let rccs = match persons.iter().find(|p| {
            p.role == PersonRole::Rccs
                && p.identity.as_ref() == Some(&(issuer.clone(), subject.clone()))
        }) {
            Some(person) => person.clone(),
            None => {
                let person = rccs_input.into_person(
                    entity.id,
                    PersonRole::Rccs,
                    now,
                    Some((issuer.clone(), subject.clone())),
                );
                change.push(Effect::InsertPerson(person.clone(), None));
                person
            }
        };
        let mut links = Vec::new();
        let legal = self.attach(
            &persons,
            legal_input,
            entity.id,
            PersonRole::LegalRepresentative,
            now,
            &mut change,
            &mut links,
        );
        let agent = agent_input.map(|input| {
            self.attach(
                &persons,
                input,
                entity.id,
                PersonRole::Agent,
                now,
                &mut change,
                &mut links,
            )
        });

        let request_id = Uuid::new_v4();
        let mut dossier = Dossier {
            organisation: declared,
            seal_name,
            validity_days: application.validity_days,
            rccs: rccs.id,
            legal_representative: legal.id,
            agent: agent.as_ref().map(|a| a.id),
            identity_verification: None,
            terms: None,
            approvals: Vec::new(),
            csr,
            device,
            renewal_number: 0,
            identity_required: true,
        };
        if let Some(terms) = &application.terms {
            dossier.terms = Some(self.terms_acceptance(&policy, terms, principal, now)?);
        }
        if let Some(identity) = &application.identity_verification {
            dossier.identity_verification = Some(self.identity_verification(
                principal,
                identity,
                (&issuer, &subject, acr.as_deref()),
                None,
                now,
            )?);
        }
        let index = self
            .journal(
                &Actor::from(principal),
                Event::RequestCreated(event::RequestCreated {
                    request: request_id,
                    kind: "initial".to_owned(),
                    policy: policy.id.clone(),
                    entity: entity.id,
                    organization_identifier: entity.organization_identifier.clone(),
                    siren: siren.as_str().to_owned(),
                    siret: siret.as_ref().map(|s| s.as_str().to_owned()),
                    rccs: rccs.id,
                    legal_representative: legal.id,
                    agent: agent.as_ref().map(|a| a.id),
                    terms: snapshot(&dossier.terms)?,
                    identity_verification: snapshot(&dossier.identity_verification)?,
                }),
            )
            .await?;
        let row = RequestRow {
            id: request_id,
            entity_id: entity.id,
            kind: "initial".to_owned(),
            policy_id: policy.id.clone(),
            state: RequestState::Draft.name().to_owned(),
            version: 1,
            file: to_json(&dossier)?,
            renews_serial: None,
            certificate_serial: None,
            credential_id: None,
            created_by: principal.id.clone(),
            created_at: now,
            updated_at: now,
        };
        change.push(Effect::InsertRequest(row));
        change.push(Effect::AppendEvent {
            request_id,
            event: RequestEvent {
                action: "create".to_owned(),
                from_state: String::new(),
                to_state: RequestState::Draft.name().to_owned(),
                actor: principal.id.clone(),
                message: None,
                journal_index: Some(index),
                at: now,
            },
        });
        let expires =
            now + Duration::hours(i64::from(self.inner.settings.enrolment_lifetime_hours));
        for (person, token) in links {
            change.push(
                self.enrolment_notice(&person, &entity.legal_name, &token, expires)
                    .await?,
            );
        }
        self.commit(&change).await?;
        let row = self.inner.store.registration_request(request_id).await?;
        let organisation = self.organisation(row.entity_id).await?;
        self.render(principal, row, dossier, &organisation).await
    }

    /// The organisation an application is for: the caller's own, one no one
    /// holds a role in yet (competing applications reach the RA, which
    /// decides; the declared details go to the dossier), or a new one, added
    /// to `change`.
    async fn organisation_for(
        &self,
        principal: &Principal,
        existing: Option<Entity>,
        (siren, declared, country): (&Siren, DeclaredOrganisation, String),
        now: OffsetDateTime,
        change: &mut RaChange,
    ) -> Result<(Entity, Option<DeclaredOrganisation>), RaError> {
        Ok(match existing {
            Some(entity) if principal.entity == Some(entity.id) && principal.has(Role::Rccs) => {
                (entity, None)
            }
            Some(entity) => {
                if let Some(other) = principal.entity {
                    return Err(RaError::Conflict(format!(
                        "this sign-in acts for organisation {other}; apply for another \
                         organisation with another identity"
                    )));
                }
                if !self.inner.store.role_holders(entity.id).await?.is_empty() {
                    return Err(RaError::Conflict(format!(
                        "the organisation with SIREN {siren} is registered; its RCCS applies \
                         for it, or the RA withdraws a role given in error"
                    )));
                }
                (entity, Some(declared))
            }
            None => {
                if let Some(other) = principal.entity {
                    return Err(RaError::Conflict(format!(
                        "this sign-in acts for organisation {other}; apply for another \
                         organisation with another identity"
                    )));
                }
                let identifier = siren
                    .organization_identifier()
                    .map_err(|e| invalid("organisation.siren", e))?;
                let entity = declared.over(&Entity {
                    id: Uuid::new_v4(),
                    legal_name: String::new(),
                    organization_identifier: identifier.to_string(),
                    country,
                    siren: Some(siren.as_str().to_owned()),
                    siret: None,
                    legal_form: None,
                    street: None,
                    postal_code: None,
                    city: None,
                    created_at: now,
                });
                change.push(Effect::InsertEntity(entity.clone()));
                (entity, Some(declared))
            }
        })
    }

    pub(super) fn person_input(
        &self,
        field: &str,
        input: &PersonInput,
    ) -> Result<PersonDraft, RaError> {
        Ok(PersonDraft {
            given_name: non_empty(&format!("{field}.given_name"), &input.given_name, 100)?,
            family_name: non_empty(&format!("{field}.family_name"), &input.family_name, 100)?,
            email: email(&format!("{field}.email"), &input.email)?,
            phone: match &input.phone {
                Some(phone) => Some(non_empty(&format!("{field}.phone"), phone, 32)?),
                None => None,
            },
            language: language(&format!("{field}.language"), input.language.as_deref())?,
        })
    }

    /// The existing person of that role and e-mail, or a new one with an
    /// enrolment link (queued in `links`).
    #[expect(clippy::too_many_arguments, reason = "one call site per role")]
    pub(super) fn attach(
        &self,
        persons: &[Person],
        input: PersonDraft,
        entity: Uuid,
        role: PersonRole,
        now: OffsetDateTime,
        change: &mut RaChange,
        links: &mut Vec<(Person, String)>,
    ) -> Person {
        if let Some(person) = persons
            .iter()
            .find(|p| p.role == role && p.email.eq_ignore_ascii_case(&input.email))
        {
            return person.clone();
        }
        let person = input.into_person(entity, role, now, None);
        let token = random_token();
        change.push(Effect::InsertPerson(
            person.clone(),
            Some(Enrolment {
                sha256: hex::encode(Sha256::digest(token.as_bytes())),
                expires_at: now
                    + Duration::hours(i64::from(self.inner.settings.enrolment_lifetime_hours)),
            }),
        ));
        links.push((person.clone(), token));
        person
    }

    /// Checks the key material a policy needs: a CSR (and device evidence) for
    /// entity-generated keys, nothing for CA-managed ones.
    pub(super) fn key_material(
        &self,
        policy: &CertificatePolicy,
        csr: Option<&str>,
        device: Option<&DeviceInput>,
    ) -> Result<(Option<String>, Option<DeviceEvidence>), RaError> {
        use crate::pki::policy::KeyGeneration;
        let generation = policy.key.generation;
        if generation.is_ca_managed() {
            if csr.is_some() {
                return Err(invalid(
                    "csr",
                    format!(
                        "policy {} has its keys generated by the CA: send no CSR",
                        policy.id
                    ),
                ));
            }
            return Ok((None, None));
        }
        let csr = csr.ok_or_else(|| {
            invalid(
                "csr",
                format!(
                    "policy {} certifies the organisation's own key: send its CSR",
                    policy.id
                ),
            )
        })?;
        let der = csr_der(csr)?;
        csr::verify(&der, &policy.key).map_err(|e| csr_error(&e))?;
        let device = match generation {
            KeyGeneration::EntityQscd => {
                let device = device.ok_or_else(|| invalid("device", "a QSealCD policy needs the device model and the SHA-256 of the proof of generation"))?;
                let model = non_empty("device.model", device.model.as_deref().unwrap_or(""), 200)?;
                let proof = device.proof_sha256.as_deref().unwrap_or("");
                if proof.len() != 64 || hex::decode(proof).is_err() {
                    return Err(invalid("device.proof_sha256", "must be 64 hex digits"));
                }
                Some(DeviceEvidence::Qscd {
                    model,
                    proof_sha256: proof.to_ascii_lowercase(),
                })
            }
            KeyGeneration::Chip => {
                let device = device
                    .ok_or_else(|| invalid("device", "a chip policy needs the chip's reference"))?;
                Some(DeviceEvidence::Chip {
                    reference: non_empty(
                        "device.chip_reference",
                        device.chip_reference.as_deref().unwrap_or(""),
                        200,
                    )?,
                })
            }
            _ => None,
        };
        // Stored as base64 DER.
        Ok((
            Some(base64::engine::general_purpose::STANDARD.encode(der)),
            device,
        ))
    }

    pub(super) fn terms_acceptance(
        &self,
        policy: &CertificatePolicy,
        terms: &TermsInput,
        principal: &Principal,
        now: OffsetDateTime,
    ) -> Result<TermsAcceptance, RaError> {
        if terms.version != policy.terms.version {
            return Err(invalid(
                "terms.version",
                format!(
                    "unknown terms version {:?}; the terms of policy {} are version {}",
                    terms.version, policy.id, policy.terms.version
                ),
            ));
        }
        let sha256 = hex::encode(policy.terms.sha256);
        if let Some(given) = &terms.sha256
            && !given.eq_ignore_ascii_case(&sha256)
        {
            return Err(invalid(
                "terms.sha256",
                format!(
                    "the terms version {} have SHA-256 {sha256}",
                    policy.terms.version
                ),
            ));
        }
        Ok(TermsAcceptance {
            version: terms.version.clone(),
            sha256,
            principal: principal.id.clone(),
            accepted_at: now,
        })
    }

    /// How `input` verified the identity. `entity` is the request's
    /// organisation, `None` in an application (where the applicant would be
    /// attesting himself).
    pub(super) fn identity_verification(
        &self,
        principal: &Principal,
        input: &IdentityInput,
        identity: (&str, &str, Option<&str>),
        entity: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<IdentityVerification, RaError> {
        match input.method.as_str() {
            "face_to_face" => {
                if !principal.has(Role::RaOperator) {
                    return Err(RaError::Forbidden(
                        "face-to-face verification is attested by an RA operator".to_owned(),
                    ));
                }
                if entity.is_none() {
                    return Err(RaError::Forbidden(
                        "the applicant never attests his own identity: an RA operator records \
                         a face-to-face verification on the request"
                            .to_owned(),
                    ));
                }
                Ok(IdentityVerification::FaceToFace {
                    attested_by: principal.id.clone(),
                    attested_by_person: principal.staff.as_ref().map(|member| member.id),
                    birth_date: birth_date(input)?,
                    at: now,
                })
            }
            "remote_provider" => Ok(IdentityVerification::RemoteProvider {
                provider: non_empty(
                    "identity_verification.provider",
                    input.provider.as_deref().unwrap_or(""),
                    200,
                )?,
                reference: non_empty(
                    "identity_verification.reference",
                    input.reference.as_deref().unwrap_or(""),
                    200,
                )?,
                recorded_by: principal.id.clone(),
                birth_date: birth_date(input)?,
                at: now,
            }),
            "eid_substantial" => {
                if input.birth_date.is_some() {
                    return Err(invalid(
                        "identity_verification.birth_date",
                        "an eID verification takes its attributes from the eID, not from the caller",
                    ));
                }
                let (issuer, subject, acr) = identity;
                let acr = acr.ok_or_else(|| {
                    invalid(
                        "identity_verification.method",
                        "this sign-in carries no eID level (acr); sign in with an eID means at level substantial",
                    )
                })?;
                Ok(IdentityVerification::EidSubstantial {
                    issuer: issuer.to_owned(),
                    subject: subject.to_owned(),
                    acr: acr.to_owned(),
                    at: now,
                })
            }
            other => Err(invalid(
                "identity_verification.method",
                format!("{other:?}: use face_to_face, remote_provider or eid_substantial"),
            )),
        }
    }
}

/// A person as given, before it has an id.
pub(super) struct PersonDraft {
    given_name: String,
    family_name: String,
    email: String,
    phone: Option<String>,
    language: String,
}

impl PersonDraft {
    fn into_person(
        self,
        entity_id: Uuid,
        role: PersonRole,
        now: OffsetDateTime,
        identity: Option<(String, String)>,
    ) -> Person {
        Person {
            id: Uuid::new_v4(),
            entity_id,
            role,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            phone: self.phone,
            language: self.language,
            identity,
            created_at: now,
        }
    }
}
