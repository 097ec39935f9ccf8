//! The development identity provider (cargo feature `dev-idp`, which
//! release builds leave out; `portal.dev_provider`, which `config check`
//! refuses outside development mode): a minimal OpenID provider served by
//! the development instance itself at `/dev-idp`, so a newcomer can sign in
//! to the portal as each of the demo's people. Its key is made at start and
//! kept in memory; it signs anyone in who clicks, which is what it is for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json, Router};
use base64::Engine as _;
use p256::pkcs8::EncodePrivateKey as _;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::page;
use crate::api::RouteTable;
use crate::config::{
    Assurance, Callers, IdentityProviderSettings, PortalProvider, Settings, SignIn, StaffMember,
};
use crate::state::AppState;

/// The client the portal is at this provider (public: PKCE, no secret).
const CLIENT_ID: &str = "sceau-portal-dev";
/// The portal provider's name (`/portal/sign-in/dev`).
pub const NAME: &str = "dev";
const ACR_SUBSTANTIAL: &str = "urn:sceau:dev:loa:substantial";
const ACR_HIGH: &str = "urn:sceau:dev:loa:high";
/// How long a code waits for its exchange.
const CODE_SECS: i64 = 120;

/// The demo's people: sign-in subject, name, the staff roles the provider
/// claims for them (organisation roles come from the RA's assignments), and
/// for staff their person number in the roster.
const PEOPLE: [(&str, &str, &[&str], u128); 5] = [
    ("demo-rccs", "Camille Demo (RCCS)", &[], 0),
    (
        "demo-operator-1",
        "Dominique Demo (RA operator 1)",
        &["ra_operator"],
        0xde01,
    ),
    (
        "demo-operator-2",
        "Claude Demo (RA operator 2)",
        &["ra_operator"],
        0xde02,
    ),
    (
        "demo-ca-admin",
        "Alix Demo (CA administrator)",
        &["ca_admin"],
        0xde03,
    ),
    ("demo-auditor", "Sacha Demo (auditor)", &["auditor"], 0xde04),
];

/// The provider's issuer for an instance at `public_url`.
pub fn issuer(public_url: &str) -> String {
    format!("{}/dev-idp", public_url.trim_end_matches('/'))
}

/// Adds the development provider to `settings`: a portal provider, the
/// registration for people that says what its sign-ins may do, and the
/// demo's staff in the roster.
pub fn configure(settings: &mut Settings) {
    let issuer = issuer(settings.public_url());
    settings
        .auth
        .identity_providers
        .push(IdentityProviderSettings {
            issuer: issuer.clone(),
            audience: CLIENT_ID.to_owned(),
            callers: Callers::People,
            roles_claim: Some("sceau_roles".to_owned()),
            acr_values: Vec::new(),
            allowed: PEOPLE.iter().map(|(s, ..)| (*s).to_owned()).collect(),
            require_typ: true,
        });
    settings.portal.providers.push(PortalProvider {
        name: NAME.to_owned(),
        issuer: issuer.clone(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: None,
        acr_levels: [
            (ACR_SUBSTANTIAL.to_owned(), Assurance::Substantial),
            (ACR_HIGH.to_owned(), Assurance::High),
        ]
        .into(),
    });
    for (subject, name, roles, number) in PEOPLE {
        if roles.is_empty() {
            continue;
        }
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        settings.auth.staff.add(StaffMember {
            id: uuid::Uuid::from_u128(number),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            birth_date: time::Date::MIN,
            sign_ins: vec![SignIn {
                issuer: issuer.clone(),
                subject: subject.to_owned(),
            }],
        });
    }
}

/// A code waiting for its exchange.
struct Code {
    subject: &'static str,
    acr: &'static str,
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    issued_at: i64,
}

#[derive(Clone)]
struct Provider {
    issuer: String,
    callback: String,
    signed_out: String,
    key: Arc<p256::ecdsa::SigningKey>,
    codes: Arc<Mutex<HashMap<String, Code>>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    b64(&bytes)
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The provider's routes, served beside the portal.
pub fn router(settings: &Settings) -> Router<AppState> {
    let public_url = settings.public_url();
    let provider = Provider {
        issuer: issuer(public_url),
        callback: format!("{public_url}/portal/callback"),
        signed_out: format!("{public_url}/portal"),
        key: Arc::new(p256::ecdsa::SigningKey::random(&mut rand::thread_rng())),
        codes: Arc::new(Mutex::new(HashMap::new())),
    };
    RouteTable::new()
        .get("/dev-idp/.well-known/openid-configuration", discovery)
        .get("/dev-idp/jwks", jwks)
        .get("/dev-idp/authorize", login_page)
        .post("/dev-idp/authorize", login)
        .post("/dev-idp/token", token)
        .get("/dev-idp/logout", logout)
        .into_router()
        .layer(Extension(provider))
}

async fn discovery(Extension(p): Extension<Provider>) -> Json<serde_json::Value> {
    Json(json!({
        "issuer": p.issuer,
        "authorization_endpoint": format!("{}/authorize", p.issuer),
        "token_endpoint": format!("{}/token", p.issuer),
        "jwks_uri": format!("{}/jwks", p.issuer),
        "end_session_endpoint": format!("{}/logout", p.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "acr_values_supported": [ACR_SUBSTANTIAL, ACR_HIGH],
        "scopes_supported": ["openid", "profile"],
    }))
}

async fn jwks(Extension(p): Extension<Provider>) -> Json<serde_json::Value> {
    let point = p.key.verifying_key().to_encoded_point(false);
    let coordinate = |c: Option<&p256::FieldBytes>| c.map(|c| b64(c)).unwrap_or_default();
    Json(json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "dev",
        "x": coordinate(point.x()), "y": coordinate(point.y()),
    }]}))
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: Option<String>,
    code_challenge: String,
    code_challenge_method: String,
    acr_values: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/dev_login.html")]
struct LoginPage {
    query: AuthorizeQuery,
    people: Vec<(&'static str, &'static str)>,
    high: bool,
}

fn refuse(reason: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("dev-idp: {reason}")).into_response()
}

/// Why an authorization request is refused, if it is.
fn check(p: &Provider, query: &AuthorizeQuery) -> Option<&'static str> {
    if query.client_id != CLIENT_ID || query.redirect_uri != p.callback {
        return Some("unknown client or redirect_uri");
    }
    if query.code_challenge_method != "S256" || query.code_challenge.is_empty() {
        return Some("PKCE with S256 is required");
    }
    None
}

async fn login_page(
    Extension(p): Extension<Provider>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    if let Some(reason) = check(&p, &query) {
        return refuse(reason);
    }
    let high = query
        .acr_values
        .as_deref()
        .is_some_and(|values| values.split(' ').next() == Some(ACR_HIGH));
    page::html(
        StatusCode::OK,
        &LoginPage {
            query,
            people: PEOPLE.iter().map(|(s, n, ..)| (*s, *n)).collect(),
            high,
        },
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: Option<String>,
    code_challenge: String,
    code_challenge_method: String,
    person: String,
    level: String,
}

async fn login(Extension(p): Extension<Provider>, Form(form): Form<LoginForm>) -> Response {
    let query = AuthorizeQuery {
        client_id: form.client_id,
        redirect_uri: form.redirect_uri,
        state: form.state,
        nonce: form.nonce.filter(|n| !n.is_empty()),
        code_challenge: form.code_challenge,
        code_challenge_method: form.code_challenge_method,
        acr_values: None,
    };
    if let Some(reason) = check(&p, &query) {
        return refuse(reason);
    }
    let Some((subject, ..)) = PEOPLE.iter().find(|(s, ..)| *s == form.person) else {
        return refuse("no such person");
    };
    let acr = if form.level == "high" {
        ACR_HIGH
    } else {
        ACR_SUBSTANTIAL
    };
    let code = random();
    if let Ok(mut codes) = p.codes.lock() {
        let now = now_secs();
        codes.retain(|_, c| c.issued_at + CODE_SECS > now);
        codes.insert(
            code.clone(),
            Code {
                subject,
                acr,
                nonce: query.nonce,
                challenge: query.code_challenge,
                redirect_uri: query.redirect_uri.clone(),
                issued_at: now,
            },
        );
    }
    let mut target = match reqwest::Url::parse(&query.redirect_uri) {
        Ok(url) => url,
        Err(_) => return refuse("redirect_uri"),
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query.state)
        .append_pair("iss", &p.issuer);
    page::see_other(target.as_str())
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
    client_id: Option<String>,
}

async fn token(Extension(p): Extension<Provider>, Form(form): Form<TokenForm>) -> Response {
    let error = |what: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": what })),
        )
            .into_response()
    };
    if form.grant_type != "authorization_code" || form.client_id.as_deref() != Some(CLIENT_ID) {
        return error("authorization_code for the portal's client only");
    }
    let code = p
        .codes
        .lock()
        .ok()
        .and_then(|mut codes| codes.remove(&form.code));
    let Some(code) = code.filter(|c| c.issued_at + CODE_SECS > now_secs()) else {
        return error("unknown, used or expired code");
    };
    if code.redirect_uri != form.redirect_uri
        || b64(&Sha256::digest(form.code_verifier.as_bytes())) != code.challenge
    {
        return error("redirect_uri or code_verifier does not match");
    }
    let Some((subject, name, roles, _)) = PEOPLE.iter().find(|(s, ..)| *s == code.subject) else {
        return error("no such person");
    };
    let now = now_secs();
    let mut claims = json!({
        "iss": p.issuer, "sub": subject, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
        "auth_time": code.issued_at, "acr": code.acr, "amr": ["pwd", "otp"], "name": name,
    });
    if let Some(nonce) = code.nonce {
        claims["nonce"] = json!(nonce);
    }
    if !roles.is_empty() {
        claims["sceau_roles"] = json!(roles);
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("dev".to_owned());
    let signed = p.key.to_pkcs8_der().ok().and_then(|der| {
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
        )
        .ok()
    });
    let Some(id_token) = signed else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "dev-idp: signing failed").into_response();
    };
    Json(json!({
        "access_token": random(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
}

async fn logout(Extension(p): Extension<Provider>, Query(query): Query<LogoutQuery>) -> Response {
    match query.post_logout_redirect_uri {
        Some(back) if back == p.signed_out => page::see_other(&back),
        _ => page::see_other(&p.signed_out),
    }
}
