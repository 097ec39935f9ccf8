//! The portal's sessions: kept in the database (every instance reads them),
//! named by a random value in a `__Host-` cookie (HttpOnly, Secure,
//! SameSite=Lax) of which only the SHA-256 is stored; ended after an idle
//! and an absolute timeout; a new id at every sign-in and step-up. The forms
//! of a session carry a token derived from its id, which no other session
//! can present.

use std::fmt;

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::auth::oidc::SignedInPerson;
use crate::config::{Assurance, PortalSettings};
use crate::store::portal::PortalSession;
use crate::store::{Store, StoreError};

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-sceau-session";
/// The cookie that ties a sign-in under way to the browser that started it.
pub const SIGN_IN_COOKIE: &str = "__Host-sceau-sign-in";
/// The person's choice of language.
pub const LANG_COOKIE: &str = "__Host-sceau-lang";

/// How often a session's last use is written (not at every request).
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// A secret value for a cookie: 32 random bytes, base64url. Never logged.
#[derive(Clone)]
pub(super) struct CookieSecret(String);

impl CookieSecret {
    pub(super) fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    fn from_cookie(value: &str) -> Option<Self> {
        // What `random` makes: 43 base64url characters. Anything else is
        // no session, and never reaches the database.
        (value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(value.to_owned()))
    }

    /// What the database keeps of it.
    pub(super) fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(…)")
    }
}

/// The value of cookie `name` in the request, if any.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The secret of cookie `name`, if the request has a well-formed one.
pub(super) fn secret_cookie(headers: &HeaderMap, name: &str) -> Option<CookieSecret> {
    cookie(headers, name).and_then(CookieSecret::from_cookie)
}

/// Sets a `__Host-` cookie; `max_age` zero removes it.
pub(super) fn set_cookie(headers: &mut HeaderMap, name: &str, value: &str, max_age: Option<i64>) {
    let max_age = max_age
        .map(|secs| format!("; Max-Age={secs}"))
        .unwrap_or_default();
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{max_age}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.append(SET_COOKIE, value);
    }
}

/// A session that is open now.
#[derive(Debug)]
pub(super) struct Session {
    id: CookieSecret,
    pub record: PortalSession,
    pub person: SignedInPerson,
    pub assurance: Assurance,
}

impl Session {
    /// The token this session's forms carry.
    pub(super) fn csrf_token(&self) -> String {
        csrf_token(&self.id)
    }

    /// Whether `presented` is this session's form token (compared in
    /// constant time).
    pub(super) fn csrf_matches(&self, presented: &str) -> bool {
        same_secret(&self.csrf_token(), presented)
    }

    pub(super) fn id_sha256(&self) -> &str {
        &self.record.id_sha256
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub(super) fn same_secret(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

fn csrf_token(id: &CookieSecret) -> String {
    let mut hash = Sha256::new();
    hash.update(b"sceau portal form\0");
    hash.update(id.expose().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// Why a session cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored session is unreadable: {0}")]
    Corrupt(String),
}

impl crate::error::HasErrorKind for SessionError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Corrupt(_) => crate::error::ErrorKind::Internal,
        }
    }
}

/// The open session the request's cookie names, if any. An expired one is
/// deleted and reads as none.
pub(super) async fn current(
    store: &Store,
    settings: &PortalSettings,
    cookie: Option<&CookieSecret>,
    now: OffsetDateTime,
) -> Result<Option<Session>, SessionError> {
    let Some(id) = cookie.cloned() else {
        return Ok(None);
    };
    let Some(record) = store.portal_session(&id.sha256()).await? else {
        return Ok(None);
    };
    let idle = Duration::seconds(i64::try_from(settings.session_idle_secs).unwrap_or(i64::MAX));
    let absolute =
        Duration::seconds(i64::try_from(settings.session_absolute_secs).unwrap_or(i64::MAX));
    if record.last_seen_at + idle <= now || record.created_at + absolute <= now {
        store.delete_portal_session(&record.id_sha256).await?;
        return Ok(None);
    }
    if now - record.last_seen_at >= TOUCH_EVERY {
        store.touch_portal_session(&record.id_sha256, now).await?;
    }
    let mut person: SignedInPerson =
        serde_json::from_str(&record.person).map_err(|e| SessionError::Corrupt(e.to_string()))?;
    let assurance = Assurance::parse(&record.assurance)
        .ok_or_else(|| SessionError::Corrupt(format!("assurance {:?}", record.assurance)))?;
    // The column is what a step-up rewrites: it is the session's level.
    person.assurance = assurance;
    Ok(Some(Session {
        id,
        record,
        person,
        assurance,
    }))
}

/// Forgets the sessions past their idle or absolute timeout and the sign-ins
/// left unfinished, as of `now`; how many rows went.
pub(super) async fn purge_expired(
    store: &Store,
    settings: &PortalSettings,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
    store
        .purge_portal_sessions(
            now - secs(settings.session_idle_secs),
            now - secs(settings.session_absolute_secs),
            now - super::welcome::SIGN_IN_TIME,
        )
        .await
}

/// Opens a session for `person` under a new id, ending `previous` (the
/// browser's session before this sign-in or step-up). Returns the cookie's value.
pub(super) async fn open(
    store: &Store,
    provider: &str,
    person: &SignedInPerson,
    assurance: Assurance,
    auth_time: OffsetDateTime,
    previous: Option<CookieSecret>,
    now: OffsetDateTime,
) -> Result<CookieSecret, SessionError> {
    if let Some(previous) = previous {
        store.delete_portal_session(&previous.sha256()).await?;
    }
    let id = CookieSecret::random();
    let person = serde_json::to_string(person).map_err(|e| SessionError::Corrupt(e.to_string()))?;
    store
        .insert_portal_session(&PortalSession {
            id_sha256: id.sha256(),
            provider: provider.to_owned(),
            person,
            assurance: assurance.name().to_owned(),
            auth_time,
            created_at: now,
            last_seen_at: now,
        })
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_read_by_its_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("x__Host-sceau-session=1; __Host-sceau-session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert!(
            secret_cookie(&headers, SESSION_COOKIE).is_none(),
            "not 43 characters"
        );
    }

    #[test]
    fn form_tokens_differ_between_sessions_and_hide_the_id() {
        let a = CookieSecret::random();
        let b = CookieSecret::random();
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert!(!csrf_token(&a).contains(a.expose()));
        assert_eq!(format!("{a:?}"), "CookieSecret(…)");
    }
}
