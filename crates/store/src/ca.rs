//! The CA hierarchy's records: ceremonies, CA and service certificates (with
//! their unique serial numbers) and keys without certificates (the audit key).

use time::OffsetDateTime;

use super::entities::KeyReference;
use super::{Store, StoreError, from_micros, on_pool, to_micros};

/// One completed key ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    pub id: String,
    pub name: String,
    pub file_sha256: String,
    pub completed_at: OffsetDateTime,
    /// The transcript, JSON, as written to the journal.
    pub transcript: Vec<u8>,
}

/// A `ceremonies` row as stored.
#[derive(sqlx::FromRow)]
struct StoredCeremony {
    id: String,
    name: String,
    file_sha256: String,
    completed_at: i64,
    transcript: Vec<u8>,
}

impl TryFrom<StoredCeremony> for CeremonyRecord {
    type Error = StoreError;

    fn try_from(row: StoredCeremony) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            name: row.name,
            file_sha256: row.file_sha256,
            completed_at: from_micros(row.completed_at)?,
            transcript: row.transcript,
        })
    }
}

/// A CA or service certificate (root, issuing, client-auth, ocsp, tsa).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    /// Hex of the serial number's content octets.
    pub serial: String,
    pub purpose: String,
    pub key: KeyReference,
    pub der: Vec<u8>,
    /// Hex SHA-256 of the DER.
    pub sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

/// A key with no certificate of its own (the audit journal's signing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    pub purpose: String,
    pub key: KeyReference,
    pub algorithm: String,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

const CERTIFICATE_COLUMNS: &str = "serial, purpose, token_role, key_id, key_label, der, sha256, \
                                   not_before, not_after, active, created_at";
const INSERT_CERTIFICATE: &str = "INSERT INTO ca_certificates (serial, purpose, token_role, \
    key_id, key_label, der, sha256, not_before, not_after, active, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const SERVICE_KEY_COLUMNS: &str =
    "purpose, token_role, key_id, key_label, algorithm, public_key, active, created_at";

/// A `ca_certificates` row as stored.
#[derive(sqlx::FromRow)]
struct StoredCaCertificate {
    serial: String,
    purpose: String,
    token_role: String,
    key_id: String,
    key_label: String,
    der: Vec<u8>,
    sha256: String,
    not_before: i64,
    not_after: i64,
    active: bool,
    created_at: i64,
}

impl TryFrom<StoredCaCertificate> for CaCertificate {
    type Error = StoreError;

    fn try_from(row: StoredCaCertificate) -> Result<Self, StoreError> {
        Ok(Self {
            serial: row.serial,
            purpose: row.purpose,
            key: KeyReference::from_stored(&row.token_role, &row.key_id, row.key_label)?,
            der: row.der,
            sha256: row.sha256,
            not_before: from_micros(row.not_before)?,
            not_after: from_micros(row.not_after)?,
            active: row.active,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// A `service_keys` row as stored.
#[derive(sqlx::FromRow)]
struct StoredServiceKey {
    purpose: String,
    token_role: String,
    key_id: String,
    key_label: String,
    algorithm: String,
    public_key: Vec<u8>,
    active: bool,
    created_at: i64,
}

impl TryFrom<StoredServiceKey> for ServiceKey {
    type Error = StoreError;

    fn try_from(row: StoredServiceKey) -> Result<Self, StoreError> {
        Ok(Self {
            purpose: row.purpose,
            key: KeyReference::from_stored(&row.token_role, &row.key_id, row.key_label)?,
            algorithm: row.algorithm,
            public_key: row.public_key,
            active: row.active,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// Inside a transaction: the active certificate of the same purpose stops being
/// active, and `certificate` is inserted (as active, when it says so).
macro_rules! activate_certificate {
    ($tx:expr, $certificate:expr) => {{
        let certificate: &CaCertificate = $certificate;
        sqlx::query("UPDATE ca_certificates SET active = $1 WHERE purpose = $2 AND active = $3")
            .bind(false)
            .bind(&certificate.purpose)
            .bind(true)
            .execute($tx)
            .await?;
        sqlx::query(INSERT_CERTIFICATE)
            .bind(&certificate.serial)
            .bind(&certificate.purpose)
            .bind(certificate.key.token_role.name())
            .bind(hex::encode(&certificate.key.key_id))
            .bind(&certificate.key.key_label)
            .bind(&certificate.der)
            .bind(&certificate.sha256)
            .bind(to_micros(certificate.not_before))
            .bind(to_micros(certificate.not_after))
            .bind(certificate.active)
            .bind(to_micros(certificate.created_at))
            .execute($tx)
            .await?;
    }};
}

impl Store {
    /// Records a ceremony and what it made, in one transaction: the certificates and
    /// keys it replaces (after a forced ceremony) stop being active. A ceremony
    /// makes a whole hierarchy: every certificate of the previous one stops being
    /// active, even of a purpose the new one does not make (a client-auth CA
    /// under the old root must not stay trusted).
    pub async fn record_ceremony(
        &self,
        ceremony: &CeremonyRecord,
        certificates: &[CaCertificate],
        keys: &[ServiceKey],
    ) -> Result<(), StoreError> {
        let insert_ceremony = "INSERT INTO ceremonies (id, name, file_sha256, completed_at, transcript) \
                               VALUES ($1, $2, $3, $4, $5)";
        let insert_key = format!(
            "INSERT INTO service_keys ({SERVICE_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(insert_ceremony)
                .bind(&ceremony.id)
                .bind(&ceremony.name)
                .bind(&ceremony.file_sha256)
                .bind(to_micros(ceremony.completed_at))
                .bind(&ceremony.transcript)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE ca_certificates SET active = $1 WHERE active = $2")
                .bind(false)
                .bind(true)
                .execute(&mut *tx)
                .await?;
            for certificate in certificates {
                activate_certificate!(&mut *tx, certificate);
            }
            for key in keys {
                sqlx::query(
                    "UPDATE service_keys SET active = $1 WHERE purpose = $2 AND active = $3",
                )
                .bind(false)
                .bind(&key.purpose)
                .bind(true)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&insert_key)
                    .bind(&key.purpose)
                    .bind(key.key.token_role.name())
                    .bind(hex::encode(&key.key.key_id))
                    .bind(&key.key.key_label)
                    .bind(&key.algorithm)
                    .bind(&key.public_key)
                    .bind(key.active)
                    .bind(to_micros(key.created_at))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Replaces the active certificate of the same purpose (the OCSP responder's renewal).
    pub async fn replace_ca_certificate(
        &self,
        certificate: &CaCertificate,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            activate_certificate!(&mut *tx, certificate);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The most recent ceremony, if any ran on this database.
    pub async fn latest_ceremony(&self) -> Result<Option<CeremonyRecord>, StoreError> {
        let sql = "SELECT id, name, file_sha256, completed_at, transcript FROM ceremonies \
                   ORDER BY completed_at DESC LIMIT 1";
        self.read_optional::<StoredCeremony, _>(sql, &[]).await
    }

    /// The certificates in use, one per purpose.
    pub async fn active_ca_certificates(&self) -> Result<Vec<CaCertificate>, StoreError> {
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM ca_certificates WHERE active = $1 ORDER BY purpose"
        );
        self.read_all::<StoredCaCertificate, _>(&sql, &[true.into()])
            .await
    }

    /// The certificate in use for `purpose` (`issuing`, `ocsp`, `tsa`…), if any.
    pub async fn active_ca_certificate(
        &self,
        purpose: &str,
    ) -> Result<Option<CaCertificate>, StoreError> {
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM ca_certificates WHERE active = $1 AND purpose = $2"
        );
        self.read_optional::<StoredCaCertificate, _>(&sql, &[true.into(), purpose.into()])
            .await
    }

    /// The active key for `purpose` (e.g. `audit`), if any.
    pub async fn active_service_key(
        &self,
        purpose: &str,
    ) -> Result<Option<ServiceKey>, StoreError> {
        let sql = format!(
            "SELECT {SERVICE_KEY_COLUMNS} FROM service_keys WHERE purpose = $1 AND active = $2"
        );
        self.read_optional::<StoredServiceKey, _>(&sql, &[purpose.into(), true.into()])
            .await
    }
}
