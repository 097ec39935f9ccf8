//! Entities (the organisations that hold seals) and their seal credentials: the key
//! reference in the HSM, the certificate, and the credential's status.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, from_micros, on_pool, to_micros};
use sceau_core::TokenRole;

/// An organisation registered for seals: the one model of the `entities`
/// table. The registry details are those the RA records with an application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entity {
    pub id: Uuid,
    pub legal_name: String,
    /// The EN 319 412-1 organizationIdentifier, e.g. `VATFR-12345678901` or `NTRFR-123456789`.
    pub organization_identifier: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    pub siren: Option<String>,
    pub siret: Option<String>,
    pub legal_form: Option<String>,
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An `entities` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct EntityRow {
    id: String,
    legal_name: String,
    organization_identifier: String,
    country: String,
    siren: Option<String>,
    siret: Option<String>,
    legal_form: Option<String>,
    street: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    created_at: i64,
}

impl TryFrom<EntityRow> for Entity {
    type Error = StoreError;

    fn try_from(row: EntityRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            legal_name: row.legal_name,
            organization_identifier: row.organization_identifier,
            country: row.country,
            siren: row.siren,
            siret: row.siret,
            legal_form: row.legal_form,
            street: row.street,
            postal_code: row.postal_code,
            city: row.city,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// A `seal_credentials` row as stored.
#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    entity_id: String,
    token_role: String,
    key_id: String,
    key_label: String,
    certificate: Option<Vec<u8>>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<CredentialRow> for SealCredential {
    type Error = StoreError;

    fn try_from(row: CredentialRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            entity_id: parse_uuid(&row.entity_id)?,
            key: KeyReference::from_stored(&row.token_role, &row.key_id, row.key_label)?,
            certificate: row.certificate,
            status: CredentialStatus::parse(&row.status)?,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

/// What a caller supplies to register an entity.
#[derive(Debug, Clone)]
pub struct NewEntity {
    pub legal_name: String,
    pub organization_identifier: String,
    pub country: String,
}

/// Where a seal key lives: which token role, its CKA_ID and its CKA_LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReference {
    pub token_role: TokenRole,
    pub key_id: Vec<u8>,
    pub key_label: String,
}

impl KeyReference {
    /// A key reference from its columns: the role's name, the hex CKA_ID, the label.
    pub(super) fn from_stored(
        token_role: &str,
        key_id: &str,
        key_label: String,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            token_role: parse_role(token_role)?,
            key_id: hex::decode(key_id)
                .map_err(|e| StoreError::Corrupt(format!("key id {key_id:?}: {e}")))?,
            key_label,
        })
    }
}

/// The lifecycle of a seal credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialStatus {
    /// Key generated, certificate not issued yet.
    Pending,
    Active,
    /// Temporarily unusable (e.g. too many failed activations).
    Locked,
    Revoked,
    Expired,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "locked" => Self::Locked,
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            other => return Err(StoreError::Corrupt(format!("credential status {other:?}"))),
        })
    }
}

/// A seal credential: one CA-managed key of one entity, and its certificate once issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealCredential {
    pub id: Uuid,
    pub entity_id: Uuid,
    pub key: KeyReference,
    /// The certificate, DER; `None` until issued.
    pub certificate: Option<Vec<u8>>,
    pub status: CredentialStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub(super) fn parse_role(text: &str) -> Result<TokenRole, StoreError> {
    TokenRole::ALL
        .into_iter()
        .find(|role| role.name() == text)
        .ok_or_else(|| StoreError::Corrupt(format!("token role {text:?}")))
}

pub(super) fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("id {text:?}: {e}")))
}

pub(super) const ENTITY_COLUMNS: &str = "id, legal_name, organization_identifier, country, siren, \
                                         siret, legal_form, street, postal_code, city, created_at";
const CREDENTIAL_COLUMNS: &str = "id, entity_id, token_role, key_id, key_label, certificate, \
                                  status, created_at, updated_at";

impl Store {
    /// Registers an entity; `Conflict` when its organisation identifier is already known.
    pub async fn insert_entity(
        &self,
        new: &NewEntity,
        now: OffsetDateTime,
    ) -> Result<Entity, StoreError> {
        let entity = Entity {
            id: Uuid::new_v4(),
            legal_name: new.legal_name.clone(),
            organization_identifier: new.organization_identifier.clone(),
            country: new.country.clone(),
            siren: None,
            siret: None,
            legal_form: None,
            street: None,
            postal_code: None,
            city: None,
            created_at: from_micros(to_micros(now))?,
        };
        let sql = "INSERT INTO entities (id, legal_name, organization_identifier, country, \
                   created_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(entity.id.to_string())
                .bind(&entity.legal_name)
                .bind(&entity.organization_identifier)
                .bind(&entity.country)
                .bind(to_micros(entity.created_at))
                .execute(pool)
                .await?;
        });
        Ok(entity)
    }

    pub async fn entity(&self, id: Uuid) -> Result<Entity, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE id = $1");
        self.read_by_id::<EntityRow, _>(&sql, id, "entity").await
    }

    /// Every entity, oldest first.
    pub async fn entities(&self) -> Result<Vec<Entity>, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities ORDER BY created_at, id");
        self.read_all::<EntityRow, _>(&sql, &[]).await
    }

    /// Records a new seal credential in `pending` status, with no certificate yet.
    pub async fn insert_seal_credential(
        &self,
        entity_id: Uuid,
        key: &KeyReference,
        now: OffsetDateTime,
    ) -> Result<SealCredential, StoreError> {
        let now = from_micros(to_micros(now))?;
        let credential = SealCredential {
            id: Uuid::new_v4(),
            entity_id,
            key: key.clone(),
            certificate: None,
            status: CredentialStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        let sql = format!(
            "INSERT INTO seal_credentials ({CREDENTIAL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $7)"
        );
        on_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(credential.id.to_string())
                .bind(entity_id.to_string())
                .bind(key.token_role.name())
                .bind(hex::encode(&key.key_id))
                .bind(&key.key_label)
                .bind(credential.status.as_str())
                .bind(to_micros(now))
                .execute(pool)
                .await?;
        });
        Ok(credential)
    }

    pub async fn seal_credential(&self, id: Uuid) -> Result<SealCredential, StoreError> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM seal_credentials WHERE id = $1");
        self.read_by_id::<CredentialRow, _>(&sql, id, "seal credential")
            .await
    }

    /// The seal credentials of one entity, oldest first.
    pub async fn seal_credentials_of(
        &self,
        entity_id: Uuid,
    ) -> Result<Vec<SealCredential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM seal_credentials WHERE entity_id = $1 \
             ORDER BY created_at, id"
        );
        self.read_all::<CredentialRow, _>(&sql, &[entity_id.into()])
            .await
    }

    pub async fn set_seal_credential_status(
        &self,
        id: Uuid,
        status: CredentialStatus,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE seal_credentials SET status = $1, updated_at = $2 WHERE id = $3";
        let args = [status.as_str().into(), to_micros(now).into(), id.into()];
        self.update_one(sql, &args, "seal credential", &id.to_string())
            .await
    }

    /// Stores the issued certificate (DER).
    pub async fn set_seal_credential_certificate(
        &self,
        id: Uuid,
        certificate_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE seal_credentials SET certificate = $1, updated_at = $2 WHERE id = $3";
        let args = [certificate_der.into(), to_micros(now).into(), id.into()];
        self.update_one(sql, &args, "seal credential", &id.to_string())
            .await
    }
}
