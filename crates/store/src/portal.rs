//! The portal's sign-ins under way and its sessions, keyed by the SHA-256 of
//! the browser's cookie, shared by every instance.

use time::OffsetDateTime;

use super::rows::Arg;
use super::{Store, StoreError, from_micros, to_micros};

/// A sign-in sent to a provider and not back yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// Hex SHA-256 of the value of the browser's sign-in cookie.
    pub browser_sha256: String,
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The level asked for (`low`, `substantial`, `high`).
    pub assurance: String,
    /// The portal page to go back to.
    pub return_to: String,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct StoredSignIn {
    browser_sha256: String,
    provider: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    assurance: String,
    return_to: String,
    created_at: i64,
}

impl TryFrom<StoredSignIn> for PendingSignIn {
    type Error = StoreError;

    fn try_from(row: StoredSignIn) -> Result<Self, StoreError> {
        Ok(Self {
            browser_sha256: row.browser_sha256,
            provider: row.provider,
            state: row.state,
            nonce: row.nonce,
            pkce_verifier: row.pkce_verifier,
            assurance: row.assurance,
            return_to: row.return_to,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// Hex SHA-256 of the session cookie's value.
    pub id_sha256: String,
    pub provider: String,
    /// The person's claims, as JSON the portal wrote.
    pub person: String,
    pub assurance: String,
    pub auth_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct StoredSession {
    id_sha256: String,
    provider: String,
    person: String,
    assurance: String,
    auth_time: i64,
    created_at: i64,
    last_seen_at: i64,
}

impl TryFrom<StoredSession> for PortalSession {
    type Error = StoreError;

    fn try_from(row: StoredSession) -> Result<Self, StoreError> {
        Ok(Self {
            id_sha256: row.id_sha256,
            provider: row.provider,
            person: row.person,
            assurance: row.assurance,
            auth_time: from_micros(row.auth_time)?,
            created_at: from_micros(row.created_at)?,
            last_seen_at: from_micros(row.last_seen_at)?,
        })
    }
}

impl Store {
    pub async fn insert_pending_sign_in(&self, sign_in: &PendingSignIn) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO portal_sign_ins (browser_sha256, provider, state, nonce, pkce_verifier, \
             assurance, return_to, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                sign_in.browser_sha256.as_str().into(),
                sign_in.provider.as_str().into(),
                sign_in.state.as_str().into(),
                sign_in.nonce.as_str().into(),
                sign_in.pkce_verifier.as_str().into(),
                sign_in.assurance.as_str().into(),
                sign_in.return_to.as_str().into(),
                Arg::Int(to_micros(sign_in.created_at)),
            ],
        )
        .await?;
        Ok(())
    }

    /// The sign-in of this browser, removed as it is read: a provider's
    /// answer is accepted once.
    pub async fn take_pending_sign_in(
        &self,
        browser_sha256: &str,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        self.read_optional::<StoredSignIn, _>(
            "DELETE FROM portal_sign_ins WHERE browser_sha256 = $1 RETURNING browser_sha256, \
             provider, state, nonce, pkce_verifier, assurance, return_to, created_at",
            &[browser_sha256.into()],
        )
        .await
    }

    pub async fn insert_portal_session(&self, session: &PortalSession) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO portal_sessions (id_sha256, provider, person, assurance, auth_time, \
             created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                session.id_sha256.as_str().into(),
                session.provider.as_str().into(),
                session.person.as_str().into(),
                session.assurance.as_str().into(),
                Arg::Int(to_micros(session.auth_time)),
                Arg::Int(to_micros(session.created_at)),
                Arg::Int(to_micros(session.last_seen_at)),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn portal_session(
        &self,
        id_sha256: &str,
    ) -> Result<Option<PortalSession>, StoreError> {
        self.read_optional::<StoredSession, _>(
            "SELECT id_sha256, provider, person, assurance, auth_time, created_at, last_seen_at \
             FROM portal_sessions WHERE id_sha256 = $1",
            &[id_sha256.into()],
        )
        .await
    }

    /// Records that the session was used at `now`.
    pub async fn touch_portal_session(
        &self,
        id_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE portal_sessions SET last_seen_at = $2 WHERE id_sha256 = $1",
            &[id_sha256.into(), Arg::Int(to_micros(now))],
        )
        .await?;
        Ok(())
    }

    /// Ends a session; `false` when there was none.
    pub async fn delete_portal_session(&self, id_sha256: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "DELETE FROM portal_sessions WHERE id_sha256 = $1",
                &[id_sha256.into()],
            )
            .await?
            == 1)
    }

    /// Forgets sessions unused since `idle_before` or signed in before
    /// `signed_in_before`, and sign-ins started before `started_before`.
    pub async fn purge_portal_sessions(
        &self,
        idle_before: OffsetDateTime,
        signed_in_before: OffsetDateTime,
        started_before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let sessions = self
            .execute(
                "DELETE FROM portal_sessions WHERE last_seen_at < $1 OR created_at < $2",
                &[
                    Arg::Int(to_micros(idle_before)),
                    Arg::Int(to_micros(signed_in_before)),
                ],
            )
            .await?;
        let sign_ins = self
            .execute(
                "DELETE FROM portal_sign_ins WHERE created_at < $1",
                &[Arg::Int(to_micros(started_before))],
            )
            .await?;
        Ok(sessions + sign_ins)
    }
}
