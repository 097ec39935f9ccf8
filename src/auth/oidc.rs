//! The OIDC resource server: access tokens (RFC 9068 JWTs) from registered
//! identity providers become principals. Discovery and JWKS are fetched and
//! cached; an unknown `kid` triggers a rate-limited refetch; past the cache
//! lifetime an unreachable provider means refusal. Each token is checked on its
//! signature (asymmetric algorithms only), `typ`, `iss` (exactly the discovery
//! document's), `aud`, `exp`/`nbf`/`iat` against sceau's clock, and the
//! provider's strong-authentication rule: a second factor for people, a
//! sender-constrained token (RFC 8705) for servers.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::capacity;
use super::dpop::{self, DpopRequest};
use super::principal::{AuthError, AuthMethod, Principal, Role, Strength};
use super::provider_fetch::{ProviderFetcher, select_key};
use crate::clock::SharedClock;
use crate::config::{AuthSettings, Callers, IdentityProviderSettings, StaffRoster};
use crate::error::{ErrorKind, HasErrorKind};
use crate::store::{Store, StoreError};

mod signed_in;
mod strength;
pub use signed_in::SignedInPerson;
use strength::strongly_authenticated;

/// The signature algorithms accepted: asymmetric only (no `none`, no HMAC, so a
/// provider's public key can never be used as a shared secret).
pub(super) const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The most skew tolerated on token times, whatever the configuration says.
const MAX_LEEWAY_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the access token is refused: {0}")]
    Refused(String),
    /// The reason goes to the logs only: a token's issuer is the caller's
    /// choice, and the fetch's error would tell him about the network.
    #[error(
        "the token's identity provider cannot be reached now, and no recent keys of it are kept"
    )]
    ProviderUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasErrorKind for OidcError {
    fn kind(&self) -> ErrorKind {
        match self {
            // Failing closed: the caller cannot be authenticated.
            Self::Refused(_) | Self::ProviderUnavailable => ErrorKind::Unauthenticated,
            Self::Store(e) => e.kind(),
        }
    }
}

impl From<OidcError> for AuthError {
    fn from(error: OidcError) -> Self {
        AuthError::Unauthenticated(error.to_string())
    }
}

pub(super) fn refused(reason: impl Into<String>) -> OidcError {
    OidcError::Refused(reason.into())
}

/// One registration of an identity provider: the back office's (configuration)
/// or an organisation's (database).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    issuer: String,
    audience: String,
    callers: Callers,
    /// `None`: the back office.
    entity: Option<Uuid>,
    allowed: Vec<String>,
    acr_values: Vec<String>,
    roles_claim: Option<String>,
    require_typ: bool,
}

impl From<&IdentityProviderSettings> for Registration {
    fn from(settings: &IdentityProviderSettings) -> Self {
        Self {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            callers: settings.callers,
            entity: None,
            allowed: settings.allowed.clone(),
            acr_values: settings.acr_values.clone(),
            roles_claim: settings.roles_claim.clone(),
            require_typ: settings.require_typ,
        }
    }
}

/// A provider's keys as last fetched.
#[derive(Debug, Clone)]
struct ProviderKeys {
    jwks: JwkSet,
    fetched_at: Instant,
}

/// What is known of one provider: its keys, and while it is down, until when
/// no new fetch is tried (a backoff that doubles up to [`MAX_BACKOFF`]).
#[derive(Debug, Default)]
struct ProviderState {
    keys: Option<ProviderKeys>,
    failures: u32,
    down_until: Option<Instant>,
}

/// The longest a provider that is down is left alone.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// `aud`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(one) => one == wanted,
            Self::Many(many) => many.iter().any(|a| a == wanted),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Confirmation {
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
    jkt: Option<String>,
}

/// The claims sceau reads. Numeric dates must be numbers: a string `exp` fails.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    aud: Audience,
    exp: i64,
    iat: i64,
    nbf: Option<i64>,
    client_id: Option<String>,
    acr: Option<String>,
    #[serde(default)]
    amr: Vec<String>,
    cnf: Option<Confirmation>,
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

/// Verifies access tokens; shared by every handler of one instance.
#[derive(Debug, Clone)]
pub struct OidcVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fetcher: ProviderFetcher,
    store: Store,
    clock: SharedClock,
    back_office: Vec<Registration>,
    /// The registered staff: staff roles go only to their sign-ins.
    staff: StaffRoster,
    cache_lifetime: Duration,
    refetch_interval: Duration,
    leeway: u64,
    /// One lock per issuer (only registered issuers get one): a slow or
    /// down provider never holds up the others' callers.
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<ProviderState>>>>,
    /// When each issuer's keys were last refetched for an unknown `kid`.
    refetched: Mutex<HashMap<String, Instant>>,
}

/// What the transport adds to the token.
#[derive(Debug, Clone, Default)]
pub struct Presentation<'a> {
    /// The TLS client certificate of the connection, DER.
    pub client_certificate: Option<&'a [u8]>,
    /// The `DPoP` header's proof, with the request it must be bound to.
    pub dpop: Option<DpopRequest<'a>>,
}

impl OidcVerifier {
    engine_constructor! {
        fn new(
            store: Store,
            clock: SharedClock,
            settings: &AuthSettings,
        ) -> Result<Self, OidcError> {
            let fetcher = ProviderFetcher::new().map_err(|e| refused(format!("HTTP client: {e}")))?;
            Ok(Self {
                inner: Arc::new(Inner {
                    fetcher,
                    store,
                    clock,
                    back_office: settings
                        .identity_providers
                        .iter()
                        .map(Registration::from)
                        .collect(),
                    staff: settings.staff.clone(),
                    cache_lifetime: Duration::from_secs(settings.oidc_cache_secs.max(1)),
                    refetch_interval: Duration::from_secs(settings.oidc_refetch_secs),
                    leeway: settings.token_leeway_secs.min(MAX_LEEWAY_SECS),
                    keys: Mutex::new(HashMap::new()),
                    refetched: Mutex::new(HashMap::new()),
                }),
            })
        }
    }

    /// The principal an access token stands for, or why it is refused.
    pub async fn principal(
        &self,
        token: &str,
        presentation: Presentation<'_>,
    ) -> Result<Principal, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refused(format!("malformed token header: {e}")))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(refused(format!(
                "algorithm {:?} is not accepted (asymmetric signatures only)",
                header.alg
            )));
        }
        let issuer = unverified_issuer(token)?;
        let registrations = self.registrations(&issuer).await?;
        if registrations.is_empty() {
            return Err(refused(format!(
                "the issuer {issuer:?} is not a registered identity provider"
            )));
        }
        let key = self.key(&issuer, header.kid.as_deref(), header.alg).await?;

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer.as_str()]);
        let audiences: BTreeSet<&str> = registrations.iter().map(|r| r.audience.as_str()).collect();
        validation.set_audience(&audiences.iter().copied().collect::<Vec<_>>());
        // Times are checked below against sceau's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| refused(format!("{e}")))?
            .claims;
        self.check_times(&claims)?;

        let candidates: Vec<&Registration> = registrations
            .iter()
            .filter(|r| claims.aud.contains(&r.audience))
            .filter(|r| {
                r.allowed.is_empty()
                    || caller_ids(&claims).any(|id| r.allowed.iter().any(|a| a == id))
            })
            .collect();
        let registration = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(refused(
                    "no registration of this provider accepts this caller and audience",
                ));
            }
            _ => {
                return Err(refused(
                    "several registrations of this provider match this caller",
                ));
            }
        };
        if registration.require_typ {
            let typ = header
                .typ
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if typ != "at+jwt" && typ != "application/at+jwt" {
                return Err(refused("the token's typ is not at+jwt (RFC 9068)"));
            }
        }
        match registration.callers {
            Callers::Servers => {
                self.server(token, &claims, registration, presentation)
                    .await
            }
            Callers::People => {
                strongly_authenticated(&claims, registration)?;
                self.person(&claims, registration).await
            }
        }
    }

    fn now_secs(&self) -> i64 {
        self.inner
            .clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    }

    fn check_times(&self, claims: &Claims) -> Result<(), OidcError> {
        let now = self.now_secs();
        let leeway = i64::try_from(self.inner.leeway).unwrap_or(0);
        if claims.exp + leeway <= now {
            return Err(refused("the token has expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf - leeway > now) {
            return Err(refused("the token is not valid yet (nbf)"));
        }
        if claims.iat - leeway > now {
            return Err(refused("the token was issued in the future (iat)"));
        }
        Ok(())
    }

    /// A server: only a sender-constrained token is strong, bound either to the
    /// TLS client certificate of this connection (RFC 8705) or to the key that
    /// signs the request's DPoP proof (RFC 9449); a bearer token a thief could
    /// replay is not.
    async fn server(
        &self,
        token: &str,
        claims: &Claims,
        registration: &Registration,
        presentation: Presentation<'_>,
    ) -> Result<Principal, OidcError> {
        let confirmation = claims.cnf.as_ref();
        let binding = match (
            confirmation.and_then(|c| c.x5t_s256.as_deref()),
            confirmation.and_then(|c| c.jkt.as_deref()),
        ) {
            (Some(thumbprint), _) => {
                let presented = presentation.client_certificate.ok_or_else(|| {
                    refused(
                        "the token is bound to a client certificate: present it over mutual TLS",
                    )
                })?;
                let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(presented));
                if expected != thumbprint {
                    return Err(refused(
                        "the token is bound to another client certificate than this connection's",
                    ));
                }
                // Checked on every request: a kept-alive or resumed connection
                // never repeats the handshake's checks.
                if self
                    .inner
                    .store
                    .client_certificate_revoked(&hex::encode(Sha256::digest(presented)))
                    .await?
                {
                    return Err(refused(
                        "the client certificate this token is bound to is revoked",
                    ));
                }
                "certificate"
            }
            (None, Some(jkt)) => {
                let request = presentation
                    .dpop
                    .as_ref()
                    .ok_or_else(|| refused("the token is DPoP-bound: send a DPoP proof with it"))?;
                dpop::check(
                    &self.inner.store,
                    self.now_secs(),
                    i64::try_from(self.inner.leeway).unwrap_or(0),
                    token,
                    jkt,
                    request,
                )
                .await?;
                "dpop"
            }
            (None, None) => {
                return Err(refused(
                    "a server's token must be sender-constrained (certificate-bound or DPoP): a bearer token is not strong authentication",
                ));
            }
        };
        let client = claims
            .client_id
            .clone()
            .or_else(|| claims.sub.clone())
            .ok_or_else(|| refused("the token names no client"))?;
        let entity = registration.entity.ok_or_else(|| {
            refused("servers authenticate through their organisation's identity provider")
        })?;
        Ok(Principal {
            id: format!("oidc:{}#{client}", claims.iss),
            entity: Some(entity),
            method: AuthMethod::Oidc {
                issuer: claims.iss.clone(),
                subject: claims.sub.clone().unwrap_or_else(|| client.clone()),
                client_id: Some(client),
                binding,
                acr: claims.acr.clone(),
            },
            roles: BTreeSet::from([Role::SealClient]),
            strength: Strength::Strong,
            staff: None,
        })
    }

    /// A strongly authenticated person: roles from the provider's roles
    /// claim and from assignments in the database.
    async fn person(
        &self,
        claims: &Claims,
        registration: &Registration,
    ) -> Result<Principal, OidcError> {
        let subject = claims
            .sub
            .clone()
            .ok_or_else(|| refused("the token names no subject"))?;
        // Every strongly authenticated person may apply and enrol.
        let mut roles = BTreeSet::from([Role::Applicant]);
        let mut entities = BTreeSet::new();
        if let Some(claim) = &registration.roles_claim
            && let Some(values) = claims.other.get(claim)
        {
            let names: Vec<&str> = match values {
                serde_json::Value::String(one) => vec![one.as_str()],
                serde_json::Value::Array(many) => many.iter().filter_map(|v| v.as_str()).collect(),
                _ => Vec::new(),
            };
            for role in names
                .into_iter()
                .filter_map(Role::parse)
                .filter(|role| role.is_for_people())
            {
                // A claim can only give the provider's own kind of role: staff
                // roles from the back office, organisation roles from the
                // organisation's provider.
                if role.is_entity_bound() == registration.entity.is_some() {
                    roles.insert(role);
                    if let Some(entity) = registration.entity {
                        entities.insert(entity);
                    }
                }
            }
        }
        for (name, entity) in self
            .inner
            .store
            .role_assignments(&claims.iss, &subject)
            .await?
        {
            let Some(role) = Role::parse(&name).filter(|role| role.is_for_people()) else {
                continue;
            };
            if role.is_entity_bound() {
                let Some(entity) = entity else { continue };
                if registration.entity.is_some_and(|own| own != entity) {
                    continue;
                }
                entities.insert(entity);
            }
            roles.insert(role);
        }
        // One capacity per sign-in: staff (registered) or an organisation's.
        let staff = capacity::settle(
            &self.inner.staff,
            registration.entity.is_none(),
            (&claims.iss, &subject),
            &mut roles,
            &mut entities,
        );
        let entity = match entities.len() {
            0 if staff.is_some() => None,
            0 => registration.entity,
            1 => entities.into_iter().next(),
            _ => {
                return Err(refused(
                    "this person holds roles in several organisations; one sign-in per organisation",
                ));
            }
        };
        Ok(Principal {
            id: format!("oidc:{}#{subject}", claims.iss),
            entity,
            method: AuthMethod::Oidc {
                issuer: claims.iss.clone(),
                subject,
                client_id: claims.client_id.clone(),
                binding: "bearer",
                // Only a level a provider of the service's own configuration
                // is trusted for counts as evidence of an eID verification:
                // an organisation's provider never attests its own people.
                acr: claims.acr.clone().filter(|acr| {
                    registration.entity.is_none()
                        && registration.acr_values.iter().any(|a| a == acr)
                }),
            },
            roles,
            strength: Strength::Strong,
            staff,
        })
    }

    async fn registrations(&self, issuer: &str) -> Result<Vec<Registration>, OidcError> {
        let mut all: Vec<Registration> = self
            .inner
            .back_office
            .iter()
            .filter(|r| r.issuer == issuer)
            .cloned()
            .collect();
        for record in self
            .inner
            .store
            .identity_providers_for_issuer(issuer)
            .await?
            .into_iter()
            // A disabled registration accepts no one.
            .filter(|record| !record.disabled)
        {
            all.push(Registration {
                issuer: record.issuer,
                audience: record.audience,
                callers: record.callers,
                entity: Some(record.entity_id),
                allowed: record.allowed,
                acr_values: record.acr_values,
                // An organisation's provider gives organisation roles by claim.
                roles_claim: Some("sceau_roles".to_owned()),
                require_typ: true,
            });
        }
        Ok(all)
    }

    /// The verification key for `kid`, refetching the JWKS once (rate-limited)
    /// when the key is unknown.
    async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, OidcError> {
        let keys = self.provider_keys(issuer, false).await?;
        if let Some(key) = select_key(&keys.jwks, kid, alg)? {
            return Ok(key);
        }
        let may_refetch = {
            let mut refetched = self
                .inner
                .refetched
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            match refetched.get(issuer) {
                Some(last) if now.duration_since(*last) < self.inner.refetch_interval => false,
                _ => {
                    refetched.insert(issuer.to_owned(), now);
                    true
                }
            }
        };
        if may_refetch {
            let keys = self.provider_keys(issuer, true).await?;
            if let Some(key) = select_key(&keys.jwks, kid, alg)? {
                return Ok(key);
            }
        }
        Err(refused(format!(
            "the provider publishes no key {:?} for {alg:?}",
            kid.unwrap_or("(none)")
        )))
    }

    /// Cached keys, fetched again when older than the cache lifetime or when
    /// `force`; a failed fetch keeps fresh-enough keys and otherwise fails
    /// closed, and a provider that is down is not tried again before its
    /// backoff ends.
    async fn provider_keys(&self, issuer: &str, force: bool) -> Result<ProviderKeys, OidcError> {
        let slot = self
            .inner
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(issuer.to_owned())
            .or_default()
            .clone();
        let mut state = slot.lock().await;
        let cached = state.keys.clone();
        let fresh = cached
            .as_ref()
            .is_some_and(|k| k.fetched_at.elapsed() < self.inner.cache_lifetime);
        let resting = state.down_until.is_some_and(|until| Instant::now() < until);
        if fresh && (!force || resting) {
            if let Some(keys) = cached {
                return Ok(keys);
            }
        }
        if resting {
            return Err(OidcError::ProviderUnavailable);
        }
        let trusted = self.inner.back_office.iter().any(|r| r.issuer == issuer);
        match self.inner.fetcher.jwks(issuer, trusted).await {
            Ok(jwks) => {
                let keys = ProviderKeys {
                    jwks,
                    fetched_at: Instant::now(),
                };
                *state = ProviderState {
                    keys: Some(keys.clone()),
                    failures: 0,
                    down_until: None,
                };
                Ok(keys)
            }
            Err(reason) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = Duration::from_secs(1)
                    .saturating_mul(1 << state.failures.min(6).saturating_sub(1))
                    .min(MAX_BACKOFF);
                state.down_until = Some(Instant::now() + backoff);
                tracing::warn!(issuer, %reason, failures = state.failures, backoff_secs = backoff.as_secs(),
                    "fetching an identity provider's keys failed");
                match cached {
                    Some(keys) if fresh => Ok(keys),
                    _ => Err(OidcError::ProviderUnavailable),
                }
            }
        }
    }
}

/// The `iss` of a token, read before its signature is checked: only to find the
/// provider whose keys will check it.
fn unverified_issuer(token: &str) -> Result<String, OidcError> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| refused("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| refused("the token's payload is not base64url"))?;
    let issuer: Issuer =
        serde_json::from_slice(&bytes).map_err(|_| refused("the token names no issuer (iss)"))?;
    Ok(issuer.iss)
}

/// The ids a registration's `allowed` list may name: client id and subject.
fn caller_ids(claims: &Claims) -> impl Iterator<Item = &str> {
    claims
        .client_id
        .as_deref()
        .into_iter()
        .chain(claims.sub.as_deref())
}
