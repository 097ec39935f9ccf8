//! Who is visiting a page: the language it is served in, the session (if
//! any), and for the pages that need one, the principal the session stands
//! for, holding the route's permission. No session: the visit goes to
//! sign-in and comes back; a form's effect is never applied without one.

use axum::extract::FromRequestParts;
use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::Portal;
use super::i18n::{Lang, Texts};
use super::page::{self, Chrome, PageError, Section};
use super::session::{self, CookieSecret, LANG_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE, Session};
use crate::api::route_table::RequiredPermission;
use crate::auth::principal::{self, Principal};
use crate::error::ErrorKind;
use crate::state::AppState;

/// `lang=fr|en` in a query string.
pub(super) fn lang_parameter(query: &str) -> Option<Lang> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "lang")
        .and_then(|(_, value)| Lang::parse(value))
}

/// The language of this request: chosen now, chosen before, else the browser's.
fn language(parts: &Parts) -> Lang {
    parts
        .uri
        .query()
        .and_then(lang_parameter)
        .or_else(|| session::cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
        .or_else(|| {
            parts
                .headers
                .get(ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::Fr)
}

pub(super) fn now(state: &AppState) -> OffsetDateTime {
    OffsetDateTime::from(state.clock.now())
}

/// Any visit.
pub(super) struct Visit {
    pub portal: Portal,
    /// The browser's session cookie, if well formed (whether or not it
    /// names an open session: a sign-in ends it).
    pub session_cookie: Option<CookieSecret>,
    /// The cookie of a sign-in this browser started, if any.
    pub sign_in_cookie: Option<CookieSecret>,
    pub tr: Texts,
    pub path: String,
    pub session: Option<Session>,
}

impl Visit {
    pub(super) fn chrome(&self) -> Chrome {
        chrome(self, self.session.as_ref(), None)
    }

    pub(super) fn error(&self, error: PageError) -> Response {
        error.render(&self.chrome())
    }
}

/// The chrome of a public page visited by a signed-in person.
pub(super) fn chrome_for(visit: &Visit, principal: &Principal) -> Chrome {
    chrome(visit, visit.session.as_ref(), Some(principal))
}

fn chrome(visit: &Visit, session: Option<&Session>, principal: Option<&Principal>) -> Chrome {
    Chrome {
        tr: visit.tr,
        path: visit.path.clone(),
        signed_in: session.map(|s| display_name(&s.person)),
        csrf: session.map(Session::csrf_token).unwrap_or_default(),
        sections: principal
            .map(|p| sections(p, &visit.tr, &visit.path))
            .unwrap_or_default(),
    }
}

fn display_name(person: &crate::auth::oidc::SignedInPerson) -> String {
    person
        .claims
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| person.subject.clone())
}

/// The sections the principal's roles open.
fn sections(principal: &Principal, tr: &Texts, path: &str) -> Vec<Section> {
    let mut all = vec![Section {
        href: "/portal",
        label: tr.t("nav-home"),
        current: path == "/portal",
    }];
    if principal::authorize(
        principal,
        crate::auth::Permission::ApplyForCertificate,
        None,
    )
    .is_ok()
    {
        all.push(Section {
            href: "/portal/order",
            label: tr.t("nav-order"),
            current: path.starts_with("/portal/order"),
        });
    }
    if principal::authorize(principal, crate::auth::Permission::ReadRequests, None).is_ok() {
        all.push(Section {
            href: "/portal/requests",
            label: tr.t("nav-requests"),
            current: path.starts_with("/portal/requests"),
        });
    }
    all
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let portal = parts
            .extensions
            .get::<Portal>()
            .cloned()
            .ok_or_else(|| PageError::new(ErrorKind::Internal, "portal").into_plain())?;
        let tr = Texts::new(language(parts));
        let path = parts.uri.path().to_owned();
        let session_cookie = session::secret_cookie(&parts.headers, SESSION_COOKIE);
        let sign_in_cookie = session::secret_cookie(&parts.headers, SIGN_IN_COOKIE);
        let session = session::current(
            &state.store,
            &portal.settings.portal,
            session_cookie.as_ref(),
            now(state),
        )
        .await;
        let mut visit = Visit {
            portal,
            session_cookie,
            sign_in_cookie,
            tr,
            path,
            session: None,
        };
        match session {
            Ok(session) => {
                visit.session = session;
                Ok(visit)
            }
            Err(e) => Err(visit.error(PageError::from_error(&e, &tr))),
        }
    }
}

/// A visit by a signed-in person whose principal holds the route's permission.
pub(super) struct Person {
    pub visit: Visit,
    pub session: Session,
    pub principal: Principal,
}

impl Person {
    pub(super) fn chrome(&self) -> Chrome {
        chrome(&self.visit, Some(&self.session), Some(&self.principal))
    }

    pub(super) fn error(&self, error: PageError) -> Response {
        error.render(&self.chrome())
    }

    /// Whether the form's token is this session's.
    pub(super) fn form_is_genuine(&self, presented: &str) -> bool {
        self.session.csrf_matches(presented)
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let mut visit = Visit::from_request_parts(parts, state).await?;
        let Some(session) = visit.session.take() else {
            // Back here once signed in (a form's page, for a form).
            let back = parts
                .uri
                .path()
                .trim_end_matches("/terms")
                .trim_end_matches("/moves");
            let target = format!("/portal?sign_in=needed&next={}", url_escape(back));
            return Err(page::see_other(&target));
        };
        let principal = match state.oidc.signed_in_person(&session.person).await {
            Ok(principal) => principal,
            Err(e) => return Err(visit.error(PageError::from_error(&e, &visit.tr))),
        };
        let Some(RequiredPermission(permission)) =
            parts.extensions.get::<RequiredPermission>().copied()
        else {
            tracing::error!(path = parts.uri.path(), "portal page names no permission");
            return Err(visit.error(PageError::new(
                ErrorKind::Internal,
                visit.tr.t("error-internal"),
            )));
        };
        if let Err(e) = principal::authorize(&principal, permission, None) {
            let person = Person {
                visit,
                session,
                principal,
            };
            return Err(person.error(PageError::new(
                ErrorKind::Forbidden,
                format!("{}: {e}", person.visit.tr.t("error-not-allowed")),
            )));
        }
        Ok(Person {
            visit,
            session,
            principal,
        })
    }
}

/// A path for a query string.
pub(super) fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl PageError {
    /// Without a language or chrome, when even those are missing.
    fn into_plain(self) -> Response {
        let mut response = (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the portal is not configured on this listener",
        )
            .into_response();
        response
            .extensions_mut()
            .insert(crate::api::problem::FinalErrorBody);
        response
    }
}
