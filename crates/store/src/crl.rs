//! Certificate revocation lists: the revoked serials each CA lists, the shared
//! cRLNumber counters, and the CRLs published (the one served is the highest number).

use time::OffsetDateTime;

use super::{Store, StoreError, from_micros, on_pool, seq_from_sql, seq_to_sql, to_micros};
use sceau_core::revocation::Reason;

/// The policy id of client certificates (issued by the client-auth CA); every
/// other certificate in `certificates` is a seal certificate of the issuing CA.
pub const CLIENT_AUTH_POLICY: &str = "client-auth";

/// Which certificates a CRL covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope {
    /// Seal certificates (issuing CA).
    Seal,
    /// Client certificates (client-auth CA).
    ClientAuth,
    /// Sub-CA certificates (the root's ARL).
    SubCa,
}

/// One revoked certificate as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Hex of the serial number's content octets.
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 CRLReason; `None` means no reasonCode extension.
    pub reason_code: Option<Reason>,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// A CRL as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCrl {
    /// The issuer's purpose: `root`, `issuing`, `client-auth`.
    pub issuer: String,
    pub number: u64,
    /// The serial (hex) of the CA certificate that signed it.
    pub ca_serial: String,
    pub der: Vec<u8>,
    /// Hex SHA-256 of the DER.
    pub sha256: String,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub entries: u64,
    /// What the CRL covers of the revocations table ([`Store::revocation_mark`]).
    pub covers: String,
    pub published_at: OffsetDateTime,
}

/// What the publisher compares on every poll: the latest CRL without its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlHead {
    pub number: u64,
    pub ca_serial: String,
    pub next_update: OffsetDateTime,
    pub covers: String,
}

const CRL_COLUMNS: &str = "issuer, number, ca_serial, der, sha256, this_update, next_update, \
                           entries, covers, published_at";

/// A revocation as [`revocations_in`] selects it.
#[derive(sqlx::FromRow)]
struct StoredRevoked {
    serial: String,
    revoked_at: i64,
    reason_code: Option<i64>,
    invalidity_date: Option<i64>,
}

impl TryFrom<StoredRevoked> for RevokedEntry {
    type Error = StoreError;

    fn try_from(row: StoredRevoked) -> Result<Self, StoreError> {
        Ok(Self {
            serial: row.serial,
            revoked_at: from_micros(row.revoked_at)?,
            reason_code: super::reason_from_sql(row.reason_code)?,
            invalidity_date: row.invalidity_date.map(from_micros).transpose()?,
        })
    }
}

/// A `crls` row as stored.
#[derive(sqlx::FromRow)]
struct StoredCrlRow {
    issuer: String,
    number: i64,
    ca_serial: String,
    der: Vec<u8>,
    sha256: String,
    this_update: i64,
    next_update: i64,
    entries: i64,
    covers: String,
    published_at: i64,
}

impl TryFrom<StoredCrlRow> for StoredCrl {
    type Error = StoreError;

    fn try_from(row: StoredCrlRow) -> Result<Self, StoreError> {
        Ok(Self {
            issuer: row.issuer,
            number: seq_from_sql(row.number)?,
            ca_serial: row.ca_serial,
            der: row.der,
            sha256: row.sha256,
            this_update: from_micros(row.this_update)?,
            next_update: from_micros(row.next_update)?,
            entries: seq_from_sql(row.entries)?,
            covers: row.covers,
            published_at: from_micros(row.published_at)?,
        })
    }
}

/// The head columns of a `crls` row.
#[derive(sqlx::FromRow)]
struct StoredCrlHead {
    number: i64,
    ca_serial: String,
    next_update: i64,
    covers: String,
}

impl TryFrom<StoredCrlHead> for CrlHead {
    type Error = StoreError;

    fn try_from(row: StoredCrlHead) -> Result<Self, StoreError> {
        Ok(Self {
            number: seq_from_sql(row.number)?,
            ca_serial: row.ca_serial,
            next_update: from_micros(row.next_update)?,
            covers: row.covers,
        })
    }
}

fn scope_filter(scope: CrlScope) -> &'static str {
    match scope {
        CrlScope::Seal => "c.policy_id <> $1",
        CrlScope::ClientAuth => "c.policy_id = $1",
        // The root issues no certificate in `certificates`: only `ca_revocations`.
        CrlScope::SubCa => "c.policy_id = $1 AND 1 = 0",
    }
}

/// The CA whose CRL lists `scope`, as `ca_revocations.issuer` names it: CA and
/// service certificates are revoked there (a sub-CA by the root, the OCSP
/// responder and TSU certificates by the issuing CA).
fn scope_issuer(scope: CrlScope) -> &'static str {
    match scope {
        CrlScope::Seal => "issuing",
        CrlScope::ClientAuth => "client-auth",
        CrlScope::SubCa => "root",
    }
}

/// Every revocation in `scope`: certificates the CA issued to subscribers, and
/// CA or service certificates. Columns: serial, revoked_at, reason_code, invalidity_date.
fn revocations_in(scope: CrlScope) -> String {
    format!(
        "SELECT r.serial AS serial, r.revoked_at AS revoked_at, r.reason_code AS reason_code, \
         r.invalidity_date AS invalidity_date \
         FROM revocations r JOIN certificates c ON c.serial = r.serial WHERE {} \
         UNION ALL \
         SELECT v.serial, v.revoked_at, v.reason_code, NULL FROM ca_revocations v \
         WHERE v.issuer = $2",
        scope_filter(scope)
    )
}

impl Store {
    /// Every revoked certificate in `scope`, expired or not (they are never removed).
    pub async fn revoked_for_crl(&self, scope: CrlScope) -> Result<Vec<RevokedEntry>, StoreError> {
        let sql = format!("{} ORDER BY 2, 1", revocations_in(scope));
        let args = [CLIENT_AUTH_POLICY.into(), scope_issuer(scope).into()];
        self.read_all::<StoredRevoked, _>(&sql, &args).await
    }

    /// A short summary of the revocations in `scope` (count, latest revocation,
    /// invalidity dates known): when it differs from a CRL's `covers`, that CRL
    /// is out of date. Revocations are never deleted, so a new one always changes it.
    pub async fn revocation_mark(&self, scope: CrlScope) -> Result<String, StoreError> {
        let sql = format!(
            "SELECT COUNT(*), MAX(t.revoked_at), COUNT(t.invalidity_date) FROM ({}) t",
            revocations_in(scope)
        );
        let (count, latest, invalidity): (i64, Option<i64>, i64) = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(CLIENT_AUTH_POLICY)
                .bind(scope_issuer(scope))
                .fetch_one(pool)
                .await?
        });
        Ok(format!("{count}:{}:{invalidity}", latest.unwrap_or(0)))
    }

    /// Records when the key of a revoked certificate is known or suspected to
    /// have been compromised (the CRL entry's invalidityDate).
    pub async fn set_invalidity_date(
        &self,
        serial: &str,
        invalidity_date: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE revocations SET invalidity_date = $1 WHERE serial = $2";
        let args = [to_micros(invalidity_date).into(), serial.into()];
        self.update_one(sql, &args, "revocation", serial).await
    }

    /// The next cRLNumber of `issuer`: one transaction increments the shared
    /// counter, so instances sharing the database never give out the same number.
    pub async fn next_crl_number(&self, issuer: &str) -> Result<u64, StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO crl_state (issuer, number) VALUES ($1, 0) \
                 ON CONFLICT (issuer) DO NOTHING",
            )
            .bind(issuer)
            .execute(&mut *tx)
            .await?;
            let number: i64 = sqlx::query_scalar(
                "UPDATE crl_state SET number = number + 1 WHERE issuer = $1 RETURNING number",
            )
            .bind(issuer)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            seq_from_sql(number)
        })
    }

    pub async fn insert_crl(&self, crl: &StoredCrl) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO crls ({CRL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        on_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(&crl.issuer)
                .bind(seq_to_sql(crl.number)?)
                .bind(&crl.ca_serial)
                .bind(&crl.der)
                .bind(&crl.sha256)
                .bind(to_micros(crl.this_update))
                .bind(to_micros(crl.next_update))
                .bind(seq_to_sql(crl.entries)?)
                .bind(&crl.covers)
                .bind(to_micros(crl.published_at))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The highest-numbered CRL of `issuer` without its DER (read on every poll).
    pub async fn latest_crl_head(&self, issuer: &str) -> Result<Option<CrlHead>, StoreError> {
        let sql = "SELECT number, ca_serial, next_update, covers FROM crls WHERE issuer = $1 \
                   ORDER BY number DESC LIMIT 1";
        self.read_optional::<StoredCrlHead, _>(sql, &[issuer.into()])
            .await
    }

    /// The CRL with the highest number of `issuer`, if one was published.
    pub async fn latest_crl(&self, issuer: &str) -> Result<Option<StoredCrl>, StoreError> {
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE issuer = $1 ORDER BY number DESC LIMIT 1"
        );
        self.read_optional::<StoredCrlRow, _>(&sql, &[issuer.into()])
            .await
    }
}
