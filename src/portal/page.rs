//! How a portal page goes out: the chrome every page shares (language, the
//! person signed in, the CSRF token of his forms), the security headers
//! (a strict CSP: no script, styles and images from the origin only), and the
//! error page, which names its problem type as the JSON API would.

use askama::Template;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::i18n::{Lang, Texts};
use crate::api::problem::FinalErrorBody;
use crate::error::{ErrorKind, HasErrorKind};

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub(super) struct Chrome {
    pub tr: Texts,
    /// The path of this page, for the language links.
    pub path: String,
    /// The person's name for the header, when signed in.
    pub signed_in: Option<String>,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    /// Links to the sections the person's roles open.
    pub sections: Vec<Section>,
}

/// A link of the navigation.
#[derive(Debug, Clone)]
pub(super) struct Section {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

impl Chrome {
    pub(super) fn lang(&self) -> &'static str {
        self.tr.lang.code()
    }

    /// The other languages, as (code, own name, link).
    pub(super) fn other_languages(&self) -> Vec<(&'static str, &'static str, String)> {
        Lang::ALL
            .into_iter()
            .filter(|lang| *lang != self.tr.lang)
            .map(|lang| {
                let name = match lang {
                    Lang::Fr => "Français",
                    Lang::En => "English",
                };
                (
                    lang.code(),
                    name,
                    format!("{}?lang={}", self.path, lang.code()),
                )
            })
            .collect()
    }
}

/// Headers of every portal answer. `form_targets` are the other origins a
/// form may lead to (the providers' sign-out pages).
pub(super) fn security_headers(headers: &mut HeaderMap, form_targets: &str) {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{}{form_targets}; \
         base-uri 'none'; frame-ancestors 'none'",
        if form_targets.is_empty() { "" } else { " " }
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A rendered page with its status.
pub(super) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response.extensions_mut().insert(FinalErrorBody);
            response
        }
        Err(error) => {
            tracing::error!(%error, "portal page failed to render");
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response();
            response.extensions_mut().insert(FinalErrorBody);
            response
        }
    }
}

/// 303 to `location` (after a form, or to sign in).
pub(super) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    status: u16,
    problem_type: String,
    title: String,
    detail: &'a str,
}

/// Why a portal request was not served: a page saying so, in the person's
/// language, with the status and the problem type of the JSON API.
#[derive(Debug)]
pub(super) struct PageError {
    pub kind: ErrorKind,
    /// What the person reads (already in his language, or the service's
    /// own words for a refusal from the services below).
    pub detail: String,
}

impl PageError {
    pub(super) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// From an error of the services: its kind, and its text unless it is
    /// the service's own fault.
    pub(super) fn from_error<E: HasErrorKind + std::fmt::Display>(error: &E, tr: &Texts) -> Self {
        let kind = error.kind();
        if kind.http_status() >= 500 {
            tracing::error!(%error, "portal request failed");
            Self::new(kind, tr.t("error-internal"))
        } else {
            tracing::info!(%error, "portal request refused");
            Self::new(kind, error.to_string())
        }
    }

    pub(super) fn render(&self, chrome: &Chrome) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let page = ErrorPage {
            chrome,
            status: status.as_u16(),
            problem_type: format!("urn:sceau:problem:{}", self.kind.slug()),
            title: chrome.tr.t(&format!("error-title-{}", self.kind.slug())),
            detail: &self.detail,
        };
        html(status, &page)
    }
}
