//! Enrolment: the TLS client certificate of a checked RCCS, the enrolment link
//! sent and resent, and its use.

use super::*;

impl Registry {
    /// Has the client-authentication CA certify the RCCS's own key (from his
    /// CSR) for mutual-TLS activation of the organisation's credentials. The
    /// subject is the registered organisation and the RCCS's registered name.
    pub async fn issue_client_certificate(
        &self,
        principal: &Principal,
        entity_id: Uuid,
        csr: &str,
    ) -> Result<IssuedClientCertificate, RaError> {
        let issuer = self.inner.client_issuer.as_ref().ok_or_else(|| {
            RaError::Conflict(
                "this CA hierarchy has no client-authentication CA: register a certificate \
                 from your own CA instead"
                    .to_owned(),
            )
        })?;
        check_entity(principal, entity_id, "organisation")?;
        let (issuer_url, subject, _) = person_identity(principal)?;
        let entity = self.inner.store.entity(entity_id).await?;
        let persons = self.inner.store.persons_of(entity_id).await?;
        let holder = persons
            .iter()
            .find(|p| p.identity.as_ref() == Some(&(issuer_url.clone(), subject.clone())))
            .ok_or_else(|| {
                RaError::Forbidden(
                    "client certificates are issued to the organisation's registered RCCS"
                        .to_owned(),
                )
            })?;
        // The RCCS's request for his organisation is checked above: the one
        // place a client certificate is granted.
        let grant = Grant::checked_rccs(Actor::from(principal));
        let issued = issuer
            .issue(
                grant,
                ClientCertificateRequest {
                    request_id: Uuid::new_v4(),
                    entity_id,
                    organization: entity.legal_name.clone(),
                    organization_identifier: entity.organization_identifier.clone(),
                    country: entity.country.clone(),
                    common_name: format!("{} {}", holder.given_name, holder.family_name),
                    csr_der: csr_der(csr)?,
                    validity_days: CLIENT_CERTIFICATE_DAYS,
                },
            )
            .await?;
        Ok(issued)
    }

    /// Sends a person who has not enrolled yet a new enrolment link (the old one
    /// stops working): for the organisation's RCCS or an RA operator.
    pub async fn resend_enrolment(
        &self,
        principal: &Principal,
        person_id: Uuid,
    ) -> Result<Person, RaError> {
        let person = match self.inner.store.person(person_id).await {
            Ok(person) => person,
            Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no person {person_id}")));
            }
            Err(e) => return Err(e.into()),
        };
        if check_entity(principal, person.entity_id, "person").is_err()
            && !self.applied_naming(principal, &person).await?
        {
            return Err(RaError::NotFound(format!("no person {person_id}")));
        }
        if person.is_bound() {
            return Err(RaError::Conflict(format!(
                "person {person_id} has already bound an identity; nothing to send"
            )));
        }
        let now = self.now();
        let expires =
            now + Duration::hours(i64::from(self.inner.settings.enrolment_lifetime_hours));
        let token = random_token();
        let entity = self.inner.store.entity(person.entity_id).await?;
        let announced = self
            .journal(
                &Actor::from(principal),
                Event::PersonEnrolmentSent(event::EnrolmentSent {
                    person: person.id,
                    entity: person.entity_id,
                    role: person.role.name().to_owned(),
                    expires: expires.into(),
                }),
            )
            .await?;
        let notice = self
            .enrolment_notice(&person, &entity.legal_name, &token, expires)
            .await?;
        let change = RaChange::new()
            .with(Effect::RenewEnrolment {
                person_id: person.id,
                enrolment: Enrolment {
                    sha256: hex::encode(Sha256::digest(token.as_bytes())),
                    expires_at: expires,
                },
            })
            .with(notice);
        self.commit_announced(&change, &[announced]).await?;
        Ok(person)
    }

    /// Binds the caller's own identity to the person an enrolment link was sent to.
    pub async fn enrol(&self, principal: &Principal, token: &str) -> Result<Person, RaError> {
        let (issuer, subject, _) = person_identity(principal)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(invalid("token", "must not be empty"));
        }
        let now = self.now();
        let sha256 = hex::encode(Sha256::digest(token.as_bytes()));
        let person = self
            .inner
            .store
            .person_by_enrolment(&sha256, now)
            .await?
            .ok_or_else(|| invalid("token", "this enrolment link is unknown, used or expired"))?;
        if principal.entity.is_some_and(|e| e != person.entity_id) {
            return Err(RaError::Conflict(
                "this sign-in acts for another organisation; enrol with another identity"
                    .to_owned(),
            ));
        }
        let announced = self
            .journal(
                &Actor::from(principal),
                Event::PersonEnrolled(event::Enrolled {
                    person: person.id,
                    entity: person.entity_id,
                    role: person.role.name().to_owned(),
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                }),
            )
            .await?;
        let mut change = RaChange::new().with(Effect::BindPerson {
            person_id: person.id,
            issuer: issuer.clone(),
            subject: subject.clone(),
        });
        // Named by a request the RA has validated, he gets the role with the
        // link; otherwise with the validation of the request naming him.
        if self.named_by_a_validated_request(&person).await? {
            change.push(Effect::GrantRole {
                issuer: issuer.clone(),
                subject: subject.clone(),
                role: person.role,
                entity_id: person.entity_id,
            });
        }
        self.commit_announced(&change, &[announced]).await?;
        Ok(Person {
            identity: Some((issuer, subject)),
            ..person
        })
    }
}
