//! The portal's door: the home page, its stylesheet, signing in (to the
//! provider and back) and signing out.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::page::{self, Chrome, PageError};
use super::session::{self, CookieSecret, SESSION_COOKIE, SIGN_IN_COOKIE};
use super::visit::{Visit, now, url_escape};
use crate::config::Assurance;
use crate::error::ErrorKind;
use crate::state::AppState;
use crate::store::portal::PendingSignIn;

/// How long a sign-in may take at the provider.
const SIGN_IN_SECS: i64 = 600;
pub(super) const SIGN_IN_TIME: time::Duration = time::Duration::seconds(SIGN_IN_SECS);

#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    chrome: Chrome,
    /// (name, sign-in link) of each provider.
    providers: Vec<(String, String)>,
    sign_in_needed: bool,
    roles: Vec<String>,
    /// The level of assurance of this session's sign-in.
    assurance: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct HomeQuery {
    sign_in: Option<String>,
    next: Option<String>,
}

/// A path inside the portal to come back to, or the home page.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/portal")
                && !path.contains("//")
                && !path.contains('\\')
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/portal".to_owned(),
    }
}

pub(super) async fn home(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HomeQuery>,
) -> Response {
    let next = local_path(query.next.as_deref());
    let providers = visit
        .portal
        .clients
        .providers()
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                format!("/portal/sign-in/{}?next={}", p.name, url_escape(&next)),
            )
        })
        .collect();
    let principal = match &visit.session {
        Some(session) => match state.oidc.signed_in_person(&session.person).await {
            Ok(principal) => Some(principal),
            Err(e) => return visit.error(PageError::from_error(&e, &visit.tr)),
        },
        None => None,
    };
    let roles = principal
        .as_ref()
        .map(|p| {
            p.roles
                .iter()
                .map(|role| visit.tr.t(&format!("role-{}", role.name())))
                .collect()
        })
        .unwrap_or_default();
    let chrome = match &principal {
        Some(principal) => super::visit::chrome_for(&visit, principal),
        None => visit.chrome(),
    };
    page::html(
        StatusCode::OK,
        &Home {
            chrome,
            providers,
            sign_in_needed: query.sign_in.as_deref() == Some("needed") && visit.session.is_none(),
            roles,
            assurance: visit
                .session
                .as_ref()
                .map(|s| visit.tr.t(&format!("assurance-{}", s.assurance.name()))),
        },
    )
}

pub(super) async fn stylesheet() -> Response {
    super::asset("text/css; charset=utf-8", include_str!("static/portal.css"))
}

#[derive(Debug, Deserialize)]
pub(super) struct SignInQuery {
    next: Option<String>,
    /// `high` for a step-up.
    level: Option<String>,
}

/// Sends the browser to the provider, tied to it by the sign-in cookie.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    visit: Visit,
    Path(name): Path<String>,
    Query(query): Query<SignInQuery>,
) -> Response {
    let provider = match visit.portal.clients.provider(&name) {
        Ok(provider) => provider.clone(),
        Err(e) => return visit.error(PageError::from_error(&e, &visit.tr)),
    };
    let level = match query.level.as_deref() {
        None => Assurance::Substantial,
        Some(text) => match Assurance::parse(text) {
            Some(level) if level >= Assurance::Substantial => level,
            _ => {
                return visit.error(PageError::new(
                    ErrorKind::BadRequest,
                    visit.tr.t1("error-level", "level", text),
                ));
            }
        },
    };
    let max_age = std::time::Duration::from_secs(visit.portal.settings.portal.max_auth_age_secs);
    let again = query.level.is_some();
    let start = match visit
        .portal
        .clients
        .start(&provider, level, max_age, again)
        .await
    {
        Ok(start) => start,
        Err(e) => return visit.error(PageError::from_error(&e, &visit.tr)),
    };
    let browser = CookieSecret::random();
    let pending = PendingSignIn {
        browser_sha256: browser.sha256(),
        provider: provider.name.clone(),
        state: start.state,
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        assurance: level.name().to_owned(),
        return_to: local_path(query.next.as_deref()),
        created_at: now(&state),
    };
    if let Err(e) = state.store.insert_pending_sign_in(&pending).await {
        return visit.error(PageError::from_error(&e, &visit.tr));
    }
    let mut response = page::see_other(&start.url);
    session::set_cookie(
        response.headers_mut(),
        SIGN_IN_COOKIE,
        browser.expose(),
        Some(SIGN_IN_SECS),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: the sign-in of this browser, finished once.
pub(super) async fn callback(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let tr = visit.tr;
    let refuse = |kind: ErrorKind, detail: String| visit.error(PageError::new(kind, detail));
    let Some(browser) = &visit.sign_in_cookie else {
        return refuse(ErrorKind::BadRequest, tr.t("error-sign-in-lost"));
    };
    let pending = match state.store.take_pending_sign_in(&browser.sha256()).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return refuse(ErrorKind::BadRequest, tr.t("error-sign-in-lost")),
        Err(e) => return visit.error(PageError::from_error(&e, &tr)),
    };
    let now = now(&state);
    if pending.created_at + time::Duration::seconds(SIGN_IN_SECS) < now {
        return refuse(ErrorKind::BadRequest, tr.t("error-sign-in-lost"));
    }
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|presented| session::same_secret(&pending.state, presented));
    if !state_matches {
        return refuse(ErrorKind::BadRequest, tr.t("error-sign-in-lost"));
    }
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or(error);
        return refuse(
            ErrorKind::Unauthenticated,
            tr.t1("error-provider-refused", "reason", detail),
        );
    }
    let Some(code) = &query.code else {
        return refuse(ErrorKind::BadRequest, tr.t("error-sign-in-lost"));
    };
    let clients = &visit.portal.clients;
    let provider = match clients.provider(&pending.provider) {
        Ok(provider) => provider.clone(),
        Err(e) => return visit.error(PageError::from_error(&e, &tr)),
    };
    let level = Assurance::parse(&pending.assurance).unwrap_or(Assurance::High);
    let max_age = time::Duration::seconds(
        i64::try_from(visit.portal.settings.portal.max_auth_age_secs).unwrap_or(i64::MAX),
    );
    let finished = match clients
        .finish(
            &provider,
            code,
            &pending.nonce,
            &pending.pkce_verifier,
            level,
            max_age,
            now,
        )
        .await
    {
        Ok(finished) => finished,
        Err(e) => return visit.error(PageError::from_error(&e, &tr)),
    };
    // Signs in only a person the services accept.
    if let Err(e) = state.oidc.signed_in_person(&finished.person).await {
        return visit.error(PageError::from_error(&e, &tr));
    }
    let previous = visit.session_cookie.clone();
    let id = match session::open(
        &state.store,
        &provider.name,
        &finished.person,
        finished.assurance,
        finished.auth_time,
        previous,
        now,
    )
    .await
    {
        Ok(id) => id,
        Err(e) => return visit.error(PageError::from_error(&e, &tr)),
    };
    let mut response = page::see_other(&pending.return_to);
    let headers = response.headers_mut();
    session::set_cookie(headers, SESSION_COOKIE, id.expose(), None);
    session::set_cookie(headers, SIGN_IN_COOKIE, "", Some(0));
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session here, then at the provider.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    visit: Visit,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = &visit.session else {
        return page::see_other("/portal");
    };
    if !session.csrf_matches(&form.csrf) {
        return visit.error(PageError::new(
            ErrorKind::Forbidden,
            visit.tr.t("error-form-token"),
        ));
    }
    if let Err(e) = state.store.delete_portal_session(session.id_sha256()).await {
        return visit.error(PageError::from_error(&e, &visit.tr));
    }
    let back = format!("{}/portal", visit.portal.settings.public_url());
    let target = match visit.portal.clients.provider(&session.record.provider) {
        Ok(provider) => visit
            .portal
            .clients
            .logout_url(provider, &back)
            .await
            .unwrap_or_else(|| "/portal".to_owned()),
        Err(_) => "/portal".to_owned(),
    };
    let mut response = page::see_other(&target);
    session::set_cookie(response.headers_mut(), SESSION_COOKIE, "", Some(0));
    response
}
