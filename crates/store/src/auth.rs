//! Activation records: the activation credentials of each seal credential, the
//! lockout counter, and the SAD ledger that holds across instances.

use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::{CredentialStatus, parse_uuid};
use super::{Store, StoreError, from_micros, on_pool, to_micros};

/// What an activation credential names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationBinding {
    /// A TLS client certificate, by hex SHA-256 of its DER.
    ClientCertificate { sha256: String },
    /// An OIDC identity: the issuer and the subject (a person) or client id (a server).
    Oidc { issuer: String, subject: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCredential {
    pub id: Uuid,
    pub seal_credential_id: Uuid,
    pub entity_id: Uuid,
    pub binding: ActivationBinding,
    pub active: bool,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Why a SAD was not spent. The store tells them apart so the caller can say
/// which, and count the failure against the right principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SadRefusal {
    /// No such SAD at all.
    Unknown,
    OtherCredential,
    OtherPrincipal,
    Expired,
    /// Every signature it allowed was made.
    Spent,
    /// SCAL2: not bound to this digest, or that digest was already signed.
    DigestNotBound,
    /// Extended as far as a SAD may live from its issue.
    NoLongerExtendable,
}

/// A SAD to record.
#[derive(Debug, Clone)]
pub struct NewSad {
    pub sad_sha256: String,
    pub credential_id: Uuid,
    pub principal_id: String,
    pub scal: u8,
    pub count: u32,
    /// Hex digests (SCAL2); empty at SCAL1.
    pub digests: Vec<String>,
    pub expires_at: OffsetDateTime,
}

const ACTIVATION_COLUMNS: &str = "id, seal_credential_id, entity_id, kind, certificate_sha256, \
    oidc_issuer, oidc_subject, status, created_by, created_at, revoked_at";

/// An `activation_credentials` row as stored.
#[derive(sqlx::FromRow)]
struct StoredActivation {
    id: String,
    seal_credential_id: String,
    entity_id: String,
    kind: String,
    certificate_sha256: Option<String>,
    oidc_issuer: Option<String>,
    oidc_subject: Option<String>,
    status: String,
    created_by: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<StoredActivation> for ActivationCredential {
    type Error = StoreError;

    fn try_from(row: StoredActivation) -> Result<Self, StoreError> {
        let binding = match row.kind.as_str() {
            "client_certificate" => ActivationBinding::ClientCertificate {
                sha256: row.certificate_sha256.unwrap_or_default(),
            },
            "oidc" => ActivationBinding::Oidc {
                issuer: row.oidc_issuer.unwrap_or_default(),
                subject: row.oidc_subject.unwrap_or_default(),
            },
            other => return Err(StoreError::Corrupt(format!("activation kind {other:?}"))),
        };
        Ok(Self {
            id: parse_uuid(&row.id)?,
            seal_credential_id: parse_uuid(&row.seal_credential_id)?,
            entity_id: parse_uuid(&row.entity_id)?,
            binding,
            active: row.status == "active",
            created_by: row.created_by,
            created_at: from_micros(row.created_at)?,
            revoked_at: row.revoked_at.map(from_micros).transpose()?,
        })
    }
}

impl Store {
    /// Registers an activation credential. A client certificate belongs to one
    /// organisation: registering it for another one's credential is a conflict,
    /// settled by `client_certificate_owners`' primary key in the same
    /// transaction as the registration, so two at once cannot both win.
    pub async fn insert_activation_credential(
        &self,
        seal_credential_id: Uuid,
        entity_id: Uuid,
        binding: &ActivationBinding,
        created_by: &str,
        now: OffsetDateTime,
    ) -> Result<ActivationCredential, StoreError> {
        if let ActivationBinding::ClientCertificate { sha256 } = binding
            && self.client_certificate_revoked(sha256).await?
        {
            return Err(StoreError::Conflict(
                "this client certificate is revoked".to_owned(),
            ));
        }
        let (kind, certificate, issuer, subject) = match binding {
            ActivationBinding::ClientCertificate { sha256 } => {
                ("client_certificate", Some(sha256.as_str()), None, None)
            }
            ActivationBinding::Oidc { issuer, subject } => {
                ("oidc", None, Some(issuer.as_str()), Some(subject.as_str()))
            }
        };
        let credential = ActivationCredential {
            id: Uuid::new_v4(),
            seal_credential_id,
            entity_id,
            binding: binding.clone(),
            active: true,
            created_by: created_by.to_owned(),
            created_at: from_micros(to_micros(now))?,
            revoked_at: None,
        };
        let sql = format!(
            "INSERT INTO activation_credentials ({ACTIVATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, NULL)"
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(sha256) = certificate {
                sqlx::query(
                    "INSERT INTO client_certificate_owners (certificate_sha256, entity_id) \
                     VALUES ($1, $2) ON CONFLICT (certificate_sha256) DO NOTHING",
                )
                .bind(sha256)
                .bind(entity_id.to_string())
                .execute(&mut *tx)
                .await?;
                let owner: String = sqlx::query_scalar(
                    "SELECT entity_id FROM client_certificate_owners WHERE certificate_sha256 = $1",
                )
                .bind(sha256)
                .fetch_one(&mut *tx)
                .await?;
                if owner != entity_id.to_string() {
                    return Err(StoreError::Conflict(
                        "this client certificate is registered for another organisation".to_owned(),
                    ));
                }
            }
            sqlx::query(&sql)
                .bind(credential.id.to_string())
                .bind(seal_credential_id.to_string())
                .bind(entity_id.to_string())
                .bind(kind)
                .bind(certificate)
                .bind(issuer)
                .bind(subject)
                .bind(created_by)
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(credential)
    }

    /// The activation credentials of one seal credential, oldest first.
    pub async fn activation_credentials_of(
        &self,
        seal_credential_id: Uuid,
    ) -> Result<Vec<ActivationCredential>, StoreError> {
        self.activation_credentials_where(
            "seal_credential_id = $1",
            &seal_credential_id.to_string(),
        )
        .await
    }

    async fn activation_credentials_where(
        &self,
        condition: &'static str,
        value: &str,
    ) -> Result<Vec<ActivationCredential>, StoreError> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activation_credentials \
             WHERE {condition} ORDER BY created_at, id"
        );
        self.read_all::<StoredActivation, _>(&sql, &[value.into()])
            .await
    }

    pub async fn activation_credential(
        &self,
        id: Uuid,
    ) -> Result<ActivationCredential, StoreError> {
        let sql = format!("SELECT {ACTIVATION_COLUMNS} FROM activation_credentials WHERE id = $1");
        self.read_by_id::<StoredActivation, _>(&sql, id, "activation credential")
            .await
    }

    /// Active registrations of a client certificate that sceau has not
    /// revoked: read on every request, so a revocation ends a connection that
    /// is kept alive or resumed as well as new ones.
    pub async fn activation_credentials_for_certificate(
        &self,
        sha256: &str,
    ) -> Result<Vec<ActivationCredential>, StoreError> {
        self.activation_credentials_where(
            "certificate_sha256 = $1 AND status = 'active' AND NOT EXISTS \
             (SELECT 1 FROM certificates c JOIN revocations r ON r.serial = c.serial \
             WHERE c.sha256 = $1)",
            sha256,
        )
        .await
    }

    /// Every registration of a client certificate, active or not.
    pub async fn registrations_of_certificate(
        &self,
        sha256: &str,
    ) -> Result<Vec<ActivationCredential>, StoreError> {
        self.activation_credentials_where("certificate_sha256 = $1", sha256)
            .await
    }

    /// Whether a certificate sceau issued, named by the SHA-256 of its DER, is
    /// revoked. A certificate from another CA is not known here (its CRL is).
    pub async fn client_certificate_revoked(&self, sha256: &str) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM certificates c JOIN revocations r ON r.serial = c.serial \
                   WHERE c.sha256 = $1";
        let found = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(sha256)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        Ok(found)
    }

    /// Revokes an activation credential; `false` when it was not active.
    pub async fn revoke_activation_credential(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE activation_credentials SET status = 'revoked', revoked_at = $1 \
                   WHERE id = $2 AND status = 'active'";
        let updated = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(to_micros(now))
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Counts one failed activation; at `limit` consecutive ones an active
    /// credential locks. Returns the count and whether this failure locked it.
    pub async fn record_activation_failure(
        &self,
        credential_id: Uuid,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<(u32, bool), StoreError> {
        let sql = "UPDATE seal_credentials SET failed_activations = failed_activations + 1, \
                   status = CASE WHEN failed_activations + 1 >= $1 AND status = 'active' \
                   THEN 'locked' ELSE status END, updated_at = $2 \
                   WHERE id = $3 RETURNING failed_activations, status";
        let limit = i64::from(limit);
        let (count, status): (i64, String) = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(limit)
                .bind(to_micros(now))
                .bind(credential_id.to_string())
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "seal credential",
                    id: credential_id.to_string(),
                })?
        });
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok((
            count,
            status == CredentialStatus::Locked.as_str() && i64::from(count) == limit,
        ))
    }

    /// A success ends the run of failures.
    pub async fn reset_activation_failures(&self, credential_id: Uuid) -> Result<(), StoreError> {
        let sql = "UPDATE seal_credentials SET failed_activations = 0 \
                   WHERE id = $1 AND failed_activations <> 0";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(credential_id.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Unlocks a locked credential (back to active, failures forgotten); `false`
    /// when it was not locked.
    pub async fn unlock_seal_credential(
        &self,
        credential_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE seal_credentials SET status = 'active', failed_activations = 0, \
                   updated_at = $1 WHERE id = $2 AND status = 'locked'";
        let updated = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(to_micros(now))
                .bind(credential_id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Records a SAD and, at SCAL2, the digests it is bound to.
    pub async fn insert_sad(&self, sad: &NewSad, now: OffsetDateTime) -> Result<(), StoreError> {
        let insert = "INSERT INTO sads (sad_sha256, credential_id, principal_id, scal, remaining, \
                      expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let digest = "INSERT INTO sad_digests (sad_sha256, digest, spent_at) VALUES ($1, $2, NULL)";
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(insert)
                .bind(&sad.sad_sha256)
                .bind(sad.credential_id.to_string())
                .bind(&sad.principal_id)
                .bind(i64::from(sad.scal))
                .bind(i64::from(sad.count))
                .bind(to_micros(sad.expires_at))
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?;
            for value in &sad.digests {
                sqlx::query(digest)
                    .bind(&sad.sad_sha256)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Spends one signature of a SAD, atomically: the count (and at SCAL2 the
    /// digest) can only be spent once, whichever instance asks.
    pub async fn spend_sad(
        &self,
        sad_sha256: &str,
        credential_id: Uuid,
        principal_id: &str,
        digest: &str,
        now: OffsetDateTime,
    ) -> Result<Result<(), SadRefusal>, StoreError> {
        let spend = "UPDATE sads SET remaining = remaining - 1 WHERE sad_sha256 = $1 \
                     AND credential_id = $2 AND principal_id = $3 AND expires_at > $4 \
                     AND remaining > 0 RETURNING scal";
        let spend_digest = "UPDATE sad_digests SET spent_at = $1 WHERE sad_sha256 = $2 \
                            AND digest = $3 AND spent_at IS NULL";
        let now_us = to_micros(now);
        let spent: bool = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let scal: Option<i64> = sqlx::query_scalar(spend)
                .bind(sad_sha256)
                .bind(credential_id.to_string())
                .bind(principal_id)
                .bind(now_us)
                .fetch_optional(&mut *tx)
                .await?;
            match scal {
                None => false,
                Some(2) => {
                    let bound = sqlx::query(spend_digest)
                        .bind(now_us)
                        .bind(sad_sha256)
                        .bind(digest)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if bound == 1 {
                        tx.commit().await?;
                        true
                    } else {
                        // Rolled back on drop: the count is not spent either.
                        drop(tx);
                        return Ok(Err(SadRefusal::DigestNotBound));
                    }
                }
                Some(_) => {
                    tx.commit().await?;
                    true
                }
            }
        });
        if spent {
            return Ok(Ok(()));
        }
        // Say why, from what is there (read after the failed attempt).
        let sad = self
            .read_optional::<StoredSad, StoredSad>(SAD_READ, &[sad_sha256.into()])
            .await?;
        let refusal = sad
            .and_then(|sad| sad.refusal(credential_id, principal_id, now_us))
            .unwrap_or(SadRefusal::Unknown);
        Ok(Err(refusal))
    }
}

/// A SAD's row as stored, read to say why it was refused or to extend it.
#[derive(sqlx::FromRow)]
struct StoredSad {
    credential_id: String,
    principal_id: String,
    expires_at: i64,
    remaining: i64,
    created_at: i64,
}

const SAD_READ: &str = "SELECT credential_id, principal_id, expires_at, remaining, created_at \
                        FROM sads WHERE sad_sha256 = $1";

impl StoredSad {
    /// Why this SAD cannot serve `principal_id` with `credential_id` at
    /// `now_us`, if it cannot.
    fn refusal(&self, credential_id: Uuid, principal_id: &str, now_us: i64) -> Option<SadRefusal> {
        if self.credential_id != credential_id.to_string() {
            Some(SadRefusal::OtherCredential)
        } else if self.principal_id != principal_id {
            Some(SadRefusal::OtherPrincipal)
        } else if self.expires_at <= now_us {
            Some(SadRefusal::Expired)
        } else if self.remaining <= 0 {
            Some(SadRefusal::Spent)
        } else {
            None
        }
    }
}

impl Store {
    /// Extends a SAD's life (CSC `credentials/extendTransaction`) to
    /// `new_expiry`, unless that passes `latest_expiry_from_issue` after it was
    /// issued. Only a SAD of this principal and credential that is still alive
    /// and has signatures left is extended; the new expiry when it was.
    pub async fn extend_sad(
        &self,
        sad_sha256: &str,
        credential_id: Uuid,
        principal_id: &str,
        now: OffsetDateTime,
        new_expiry: OffsetDateTime,
        latest_expiry_from_issue: std::time::Duration,
    ) -> Result<Result<OffsetDateTime, SadRefusal>, StoreError> {
        let now_us = to_micros(now);
        let Some(sad) = self
            .read_optional::<StoredSad, StoredSad>(SAD_READ, &[sad_sha256.into()])
            .await?
        else {
            return Ok(Err(SadRefusal::Unknown));
        };
        if let Some(refusal) = sad.refusal(credential_id, principal_id, now_us) {
            return Ok(Err(refusal));
        }
        let (expires_at, created_at) = (sad.expires_at, sad.created_at);
        let cap_us = i64::try_from(latest_expiry_from_issue.as_micros()).unwrap_or(i64::MAX);
        let latest_us = created_at.saturating_add(cap_us);
        if expires_at >= latest_us {
            return Ok(Err(SadRefusal::NoLongerExtendable));
        }
        // Never shortened: an early call leaves the expiry where it is.
        let expiry_us = to_micros(new_expiry).min(latest_us).max(expires_at);
        // Guarded again: a SAD spent or expired since the read stays as it is.
        let update = "UPDATE sads SET expires_at = $1 WHERE sad_sha256 = $2 \
                      AND expires_at > $3 AND remaining > 0";
        let updated = on_pool!(self, |pool| {
            sqlx::query(update)
                .bind(expiry_us)
                .bind(sad_sha256)
                .bind(now_us)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 1 {
            Ok(Ok(from_micros(expiry_us)?))
        } else {
            Ok(Err(SadRefusal::Expired))
        }
    }
}
