//! The RA's tables read by column name: each raw row checked into its
//! domain type.

use super::*;
use crate::entities::parse_uuid;

/// A `persons` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct PersonRow {
    id: String,
    entity_id: String,
    role: String,
    given_name: String,
    family_name: String,
    email: String,
    phone: Option<String>,
    language: String,
    oidc_issuer: Option<String>,
    oidc_subject: Option<String>,
    created_at: i64,
}

impl TryFrom<PersonRow> for Person {
    type Error = StoreError;

    fn try_from(row: PersonRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            entity_id: parse_uuid(&row.entity_id)?,
            role: PersonRole::parse(&row.role)?,
            given_name: row.given_name,
            family_name: row.family_name,
            email: row.email,
            phone: row.phone,
            language: row.language,
            identity: row.oidc_issuer.zip(row.oidc_subject),
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// A `registration_requests` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct StoredRequest {
    id: String,
    entity_id: String,
    kind: String,
    policy_id: String,
    state: String,
    version: i64,
    file: String,
    renews_serial: Option<String>,
    certificate_serial: Option<String>,
    credential_id: Option<String>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<StoredRequest> for RequestRow {
    type Error = StoreError;

    fn try_from(row: StoredRequest) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            entity_id: parse_uuid(&row.entity_id)?,
            kind: row.kind,
            policy_id: row.policy_id,
            state: row.state,
            version: row.version,
            file: row.file,
            renews_serial: row.renews_serial,
            certificate_serial: row.certificate_serial,
            credential_id: row.credential_id.as_deref().map(parse_uuid).transpose()?,
            created_by: row.created_by,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

/// An `evidence_documents` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct StoredEvidence {
    id: String,
    request_id: String,
    kind: String,
    media_type: String,
    size: i64,
    sha256: String,
    kek_label: String,
    wrapped_key: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
    uploaded_by: String,
    uploaded_at: i64,
    retain_until: i64,
    purged_at: Option<i64>,
    journal_index: Option<i64>,
}

impl TryFrom<StoredEvidence> for EvidenceRow {
    type Error = StoreError;

    fn try_from(row: StoredEvidence) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            request_id: parse_uuid(&row.request_id)?,
            kind: row.kind,
            media_type: row.media_type,
            size: seq_from_sql(row.size)?,
            sha256: row.sha256,
            kek_label: row.kek_label,
            wrapped_key: row.wrapped_key,
            ciphertext: row.ciphertext,
            uploaded_by: row.uploaded_by,
            uploaded_at: from_micros(row.uploaded_at)?,
            retain_until: from_micros(row.retain_until)?,
            purged_at: row.purged_at.map(from_micros).transpose()?,
            journal_index: row.journal_index.map(seq_from_sql).transpose()?,
        })
    }
}

/// A `revocations` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct StoredRevocation {
    serial: String,
    reason: String,
    reason_code: Option<i64>,
    revoked_at: i64,
    requested_by: String,
    requester_role: String,
    comment: Option<String>,
    journal_index: i64,
    invalidity_date: Option<i64>,
}

impl TryFrom<StoredRevocation> for Revocation {
    type Error = StoreError;

    fn try_from(row: StoredRevocation) -> Result<Self, StoreError> {
        Ok(Self {
            serial: row.serial,
            reason: row.reason,
            reason_code: crate::reason_from_sql(row.reason_code)?,
            revoked_at: from_micros(row.revoked_at)?,
            requested_by: row.requested_by,
            requester_role: row.requester_role,
            comment: row.comment,
            journal_index: seq_from_sql(row.journal_index)?,
            invalidity_date: row.invalidity_date.map(from_micros).transpose()?,
        })
    }
}

/// A `request_events` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct StoredRequestEvent {
    action: String,
    from_state: String,
    to_state: String,
    actor: String,
    message: Option<String>,
    journal_index: Option<i64>,
    at: i64,
}

impl TryFrom<StoredRequestEvent> for RequestEvent {
    type Error = StoreError;

    fn try_from(row: StoredRequestEvent) -> Result<Self, StoreError> {
        Ok(Self {
            action: row.action,
            from_state: row.from_state,
            to_state: row.to_state,
            actor: row.actor,
            message: row.message,
            journal_index: row.journal_index.map(seq_from_sql).transpose()?,
            at: from_micros(row.at)?,
        })
    }
}
