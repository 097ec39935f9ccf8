//! Who signs in: the identity providers organisations registered, the roles
//! assigned to OIDC identities, and the DPoP proofs already seen (a ledger
//! every instance shares).

use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::parse_uuid;
use super::{Store, StoreError, inserted_unless_taken, on_pool, to_micros};

/// An organisation's identity provider, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProviderRecord {
    pub id: Uuid,
    pub entity_id: Uuid,
    pub issuer: String,
    pub audience: String,
    pub callers: sceau_core::Callers,
    pub allowed: Vec<String>,
    pub acr_values: Vec<String>,
    /// While set, its tokens authenticate no one (the registration stays,
    /// and still counts against colliding ones).
    pub disabled: bool,
}

/// An `identity_providers` row as stored.
#[derive(sqlx::FromRow)]
struct StoredProvider {
    id: String,
    entity_id: String,
    issuer: String,
    audience: String,
    callers: String,
    allowed: String,
    acr_values: String,
    disabled_at: Option<i64>,
}

impl TryFrom<StoredProvider> for IdentityProviderRecord {
    type Error = StoreError;

    fn try_from(row: StoredProvider) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            entity_id: parse_uuid(&row.entity_id)?,
            issuer: row.issuer,
            audience: row.audience,
            callers: match row.callers.as_str() {
                "people" => sceau_core::Callers::People,
                "servers" => sceau_core::Callers::Servers,
                other => return Err(StoreError::Corrupt(format!("callers {other:?}"))),
            },
            allowed: json_list(&row.allowed)?,
            acr_values: json_list(&row.acr_values)?,
            disabled: row.disabled_at.is_some(),
        })
    }
}

fn callers_name(callers: sceau_core::Callers) -> &'static str {
    match callers {
        sceau_core::Callers::People => "people",
        sceau_core::Callers::Servers => "servers",
    }
}

fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list {text:?}: {e}")))
}

impl Store {
    pub async fn insert_identity_provider(
        &self,
        record: &IdentityProviderRecord,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO identity_providers (id, entity_id, issuer, audience, callers, \
                   allowed, acr_values, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let allowed = serde_json::to_string(&record.allowed)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let acr = serde_json::to_string(&record.acr_values)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(record.id.to_string())
                .bind(record.entity_id.to_string())
                .bind(&record.issuer)
                .bind(&record.audience)
                .bind(callers_name(record.callers))
                .bind(&allowed)
                .bind(&acr)
                .bind(to_micros(now))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes one of an organisation's providers; `false` when it had none
    /// with that id.
    pub async fn delete_identity_provider(
        &self,
        entity_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM identity_providers WHERE id = $1 AND entity_id = $2";
        let deleted = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(entity_id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// Disables (`true`) or enables one of an organisation's providers;
    /// `false` when it had none with that id in the other state.
    pub async fn set_identity_provider_disabled(
        &self,
        entity_id: Uuid,
        id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = if disabled {
            "UPDATE identity_providers SET disabled_at = $3 \
             WHERE id = $1 AND entity_id = $2 AND disabled_at IS NULL"
        } else {
            "UPDATE identity_providers SET disabled_at = NULL \
             WHERE id = $1 AND entity_id = $2 AND disabled_at IS NOT NULL AND $3 = $3"
        };
        let changed = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(entity_id.to_string())
                .bind(to_micros(now))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    /// The organisations' registrations of one issuer.
    pub async fn identity_providers_for_issuer(
        &self,
        issuer: &str,
    ) -> Result<Vec<IdentityProviderRecord>, StoreError> {
        self.identity_providers_where("issuer = $1", issuer).await
    }

    /// The identity providers one organisation registered.
    pub async fn identity_providers_of(
        &self,
        entity_id: Uuid,
    ) -> Result<Vec<IdentityProviderRecord>, StoreError> {
        self.identity_providers_where("entity_id = $1", &entity_id.to_string())
            .await
    }

    async fn identity_providers_where(
        &self,
        condition: &'static str,
        value: &str,
    ) -> Result<Vec<IdentityProviderRecord>, StoreError> {
        let sql = format!(
            "SELECT id, entity_id, issuer, audience, callers, allowed, acr_values, disabled_at \
             FROM identity_providers WHERE {condition} ORDER BY created_at, id"
        );
        self.read_all::<StoredProvider, _>(&sql, &[value.into()])
            .await
    }

    /// Gives `role` to the OIDC identity (issuer, subject), for `entity` when the
    /// role acts for an organisation.
    pub async fn assign_role(
        &self,
        issuer: &str,
        subject: &str,
        role: &str,
        entity: Option<Uuid>,
        created_by: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO role_assignments (issuer, subject, role, entity_id, created_by, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(issuer)
                .bind(subject)
                .bind(role)
                .bind(entity.map(|e| e.to_string()).unwrap_or_default())
                .bind(created_by)
                .bind(to_micros(now))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The role names given to (issuer, subject), each with its organisation if any.
    pub async fn role_assignments(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<(String, Option<Uuid>)>, StoreError> {
        let sql = "SELECT role, entity_id FROM role_assignments WHERE issuer = $1 AND subject = $2";
        let rows: Vec<(String, String)> = self
            .read_all::<(String, String), _>(sql, &[issuer.into(), subject.into()])
            .await?;
        rows.into_iter()
            .map(|(role, entity)| {
                let entity = if entity.is_empty() {
                    None
                } else {
                    Some(parse_uuid(&entity)?)
                };
                Ok((role, entity))
            })
            .collect()
    }
}

impl Store {
    /// Records a DPoP proof's jti; `false` when it was seen before (a replay).
    /// Expired records are swept on the way.
    pub async fn remember_dpop_proof(
        &self,
        jti_sha256: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sweep = "DELETE FROM dpop_proofs WHERE expires_at < $1";
        let insert = "INSERT INTO dpop_proofs (jti_sha256, expires_at) VALUES ($1, $2)";
        on_pool!(self, |pool| {
            sqlx::query(sweep)
                .bind(to_micros(now))
                .execute(pool)
                .await?;
        });
        let inserted: Result<(), StoreError> = async {
            on_pool!(self, |pool| {
                sqlx::query(insert)
                    .bind(jti_sha256)
                    .bind(to_micros(expires_at))
                    .execute(pool)
                    .await?;
            });
            Ok(())
        }
        .await;
        inserted_unless_taken(inserted)
    }
}
