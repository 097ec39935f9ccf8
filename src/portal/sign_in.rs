//! People's sign-in: sceau as an OpenID client of each provider of
//! `[[portal.providers]]` (the `openidconnect` crate): the authorization
//! code flow with PKCE, state and nonce, `acr_values` asking for the level
//! the action needs, then the ID token checked (signature, issuer, audience,
//! times, nonce) and its `acr` and `auth_time` held against the provider's
//! levels, since asking enforces nothing. The sign-in under way is tied to
//! the browser that started it by a cookie. RP-initiated logout at the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthenticationContextClass, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, EndSessionUrl, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, Scope, TokenResponse as _,
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::auth::oidc::SignedInPerson;
use crate::config::{Assurance, PortalProvider, PortalSettings};

/// Discovery with the logout endpoint (OpenID Connect RP-Initiated Logout 1.0).
#[derive(Clone, Debug, Deserialize, Serialize)]
struct LogoutMetadata {
    end_session_endpoint: Option<EndSessionUrl>,
}

impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How long a provider's discovery document is used before it is read again.
const DISCOVERY_LIFETIME: Duration = Duration::from_secs(600);
/// The ID token's signature algorithms accepted (asymmetric only).
const ALGORITHMS: [CoreJwsSigningAlgorithm; 6] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];
/// Claims that are the token's own, not the person's.
const TOKEN_CLAIMS: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
];

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("no provider {0:?}")]
    UnknownProvider(String),
    /// The provider could not be reached or answered nonsense; the reason is logged.
    #[error("the identity provider cannot be reached now")]
    ProviderUnavailable,
    /// The provider's answer does not sign this person in.
    #[error("the sign-in is refused: {0}")]
    Refused(String),
}

impl crate::error::HasErrorKind for SignInError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::UnknownProvider(_) => ErrorKind::NotFound,
            Self::ProviderUnavailable => ErrorKind::Unavailable,
            Self::Refused(_) => ErrorKind::Unauthenticated,
        }
    }
}

fn unavailable(context: &str, error: impl std::fmt::Display) -> SignInError {
    tracing::warn!(%error, context, "identity provider unavailable");
    SignInError::ProviderUnavailable
}

/// The portal's OpenID clients, one per provider, their discovery cached.
#[derive(Clone)]
pub(super) struct Clients {
    http: openidconnect::reqwest::Client,
    providers: Arc<Vec<PortalProvider>>,
    redirect: String,
    discovered: Arc<Mutex<HashMap<String, (Instant, Metadata)>>>,
}

/// A sign-in to send the browser on.
pub(super) struct Start {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The person an ID token signed in.
pub(super) struct Finished {
    pub person: SignedInPerson,
    pub assurance: Assurance,
    pub auth_time: OffsetDateTime,
}

impl Clients {
    pub(super) fn new(settings: &PortalSettings, public_url: &str) -> Result<Self, SignInError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // The code exchange must not follow redirects (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| unavailable("HTTP client", e))?;
        Ok(Self {
            http,
            providers: Arc::new(settings.providers.clone()),
            redirect: format!("{public_url}/portal/callback"),
            discovered: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub(super) fn providers(&self) -> &[PortalProvider] {
        &self.providers
    }

    pub(super) fn provider(&self, name: &str) -> Result<&PortalProvider, SignInError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| SignInError::UnknownProvider(name.to_owned()))
    }

    /// The providers' origins, where the sign-out form may lead.
    pub(super) fn origins(&self) -> String {
        let origins: Vec<String> = self
            .providers
            .iter()
            .filter_map(|p| {
                let url = reqwest::Url::parse(&p.issuer).ok()?;
                Some(url.origin().ascii_serialization())
            })
            .collect();
        origins.join(" ")
    }

    async fn metadata(&self, provider: &PortalProvider) -> Result<Metadata, SignInError> {
        let mut discovered = self.discovered.lock().await;
        if let Some((at, metadata)) = discovered.get(&provider.name)
            && at.elapsed() < DISCOVERY_LIFETIME
        {
            return Ok(metadata.clone());
        }
        let issuer =
            IssuerUrl::new(provider.issuer.clone()).map_err(|e| unavailable("issuer", e))?;
        let metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable("discovery", e))?;
        discovered.insert(provider.name.clone(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn client(
        &self,
        provider: &PortalProvider,
        metadata: Metadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SignInError,
    > {
        let redirect =
            RedirectUrl::new(self.redirect.clone()).map_err(|e| unavailable("redirect", e))?;
        let secret = provider
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned()));
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser to sign in at `level`.
    /// `max_age` makes the provider authenticate again past it, and
    /// include `auth_time` in the ID token (OpenID Connect Core §3.1.2.1);
    /// `again` (a step-up) makes it authenticate now.
    pub(super) async fn start(
        &self,
        provider: &PortalProvider,
        level: Assurance,
        max_age: Duration,
        again: bool,
    ) -> Result<Start, SignInError> {
        let metadata = self.metadata(provider).await?;
        let client = self.client(provider, metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .set_max_age(max_age);
        if again {
            // A step-up: the provider must authenticate now, not answer
            // from its own session at the level it had.
            request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
        }
        for acr in provider.acr_values_for(level) {
            request =
                request.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
        }
        let (url, state, nonce) = request.url();
        Ok(Start {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// The provider's answer: the code exchanged, the ID token checked, and
    /// its level at least `level`, its authentication no older than `max_age`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the sign-in's recorded parts, each checked"
    )]
    pub(super) async fn finish(
        &self,
        provider: &PortalProvider,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
        level: Assurance,
        max_age: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Finished, SignInError> {
        let metadata = self.metadata(provider).await?;
        let client = self.client(provider, metadata)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| unavailable("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Refused(format!("the code was not exchanged: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::Refused("the provider sent no ID token".to_owned()))?;
        let system_now = chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), 0)
            .unwrap_or_default();
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ALGORITHMS.to_vec())
            .set_time_fn(move || system_now);
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| SignInError::Refused(format!("the ID token: {e}")))?;
        let acr = claims
            .auth_context_ref()
            .map(|acr| acr.as_str().to_owned())
            .ok_or_else(|| SignInError::Refused("the ID token has no acr".to_owned()))?;
        let assurance = *provider.acr_levels.get(&acr).ok_or_else(|| {
            SignInError::Refused(format!(
                "acr {acr:?} is not one this provider's levels name"
            ))
        })?;
        if assurance < level {
            return Err(SignInError::Refused(format!(
                "acr {acr:?} is level {}, and {} is needed",
                assurance.name(),
                level.name()
            )));
        }
        let auth_time = claims
            .auth_time()
            .ok_or_else(|| SignInError::Refused("the ID token has no auth_time".to_owned()))?;
        let auth_time = OffsetDateTime::from_unix_timestamp(auth_time.timestamp())
            .map_err(|e| SignInError::Refused(format!("auth_time: {e}")))?;
        if auth_time + max_age < now || auth_time > now + time::Duration::minutes(1) {
            return Err(SignInError::Refused(
                "the authentication is not recent (auth_time)".to_owned(),
            ));
        }
        let amr = claims
            .auth_method_refs()
            .map(|all| all.iter().map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default();
        Ok(Finished {
            person: SignedInPerson {
                issuer: claims.issuer().as_str().to_owned(),
                subject: claims.subject().as_str().to_owned(),
                acr: Some(acr),
                amr,
                claims: other_claims(&id_token.to_string()),
                assurance,
            },
            assurance,
            auth_time,
        })
    }

    /// The provider's sign-out page for this client, coming back to `back`.
    pub(super) async fn logout_url(&self, provider: &PortalProvider, back: &str) -> Option<String> {
        let metadata = self.metadata(provider).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut url = endpoint.url().clone();
        url.query_pairs_mut()
            .append_pair("client_id", &provider.client_id)
            .append_pair("post_logout_redirect_uri", back);
        Some(url.to_string())
    }
}

/// The claims of a verified ID token that are the person's (the provider's
/// roles claim among them), read from its payload.
fn other_claims(jwt: &str) -> HashMap<String, serde_json::Value> {
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|part| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<HashMap<String, serde_json::Value>>(&bytes).ok())
        .unwrap_or_default();
    payload
        .into_iter()
        .filter(|(name, _)| !TOKEN_CLAIMS.contains(&name.as_str()))
        .collect()
}
