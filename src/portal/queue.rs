//! The list of requests a person may read: an organisation's own, or for
//! the RA's operators the queue, filtered by state (in the registry's
//! query), policy and age (on the page read).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use time::Duration;
use uuid::Uuid;

use super::page::{self, Chrome, PageError};
use super::visit::{Person, now};
use crate::ra::request::RequestState;
use crate::state::AppState;

/// Requests read per page.
const PAGE: u32 = 100;

/// One row of the list.
struct Row {
    id: Uuid,
    seal_name: String,
    organisation: String,
    policy: String,
    state: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct List {
    chrome: Chrome,
    rows: Vec<Row>,
    /// (value, label, selected) of each state of the filter.
    states: Vec<(&'static str, String, bool)>,
    /// (id, selected) of each policy of the filter.
    policies: Vec<(String, bool)>,
    min_age_days: String,
    filtered: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct Filters {
    state: Option<String>,
    policy: Option<String>,
    /// Only requests unchanged for at least this many days.
    min_age_days: Option<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    person: Person,
    Query(filters): Query<Filters>,
) -> Response {
    let tr = person.visit.tr;
    let wanted_state = filters
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(RequestState::parse);
    let wanted_policy = filters.policy.clone().filter(|p| !p.is_empty());
    let min_age = match filters.min_age_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<u16>() {
            Ok(days) => Some(days),
            Err(_) => {
                return person.error(PageError::new(
                    crate::error::ErrorKind::BadRequest,
                    tr.t1("error-age", "value", text),
                ));
            }
        },
    };
    let page = match state
        .ra
        .list(
            &person.principal,
            wanted_state.map(RequestState::name),
            None,
            PAGE,
        )
        .await
    {
        Ok(page) => page,
        Err(e) => return person.error(PageError::from_error(&e, &tr)),
    };
    let now = now(&state);
    let rows = page
        .requests
        .into_iter()
        .filter(|r| wanted_policy.as_ref().is_none_or(|p| *p == r.policy))
        .filter(|r| min_age.is_none_or(|days| r.updated_at + Duration::days(days.into()) <= now))
        .map(|r| Row {
            id: r.id,
            seal_name: r.seal_name,
            organisation: r.entity.legal_name,
            policy: r.policy,
            state: tr.t(&format!("state-{}", r.state.name())),
            updated: tr.date_time(&r.updated_at),
        })
        .collect();
    let states = RequestState::ALL
        .into_iter()
        .map(|s| {
            (
                s.name(),
                tr.t(&format!("state-{}", s.name())),
                Some(s) == wanted_state,
            )
        })
        .collect();
    let policies = state
        .policies
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                wanted_policy.as_deref() == Some(p.id.as_str()),
            )
        })
        .collect();
    page::html(
        StatusCode::OK,
        &List {
            chrome: person.chrome(),
            rows,
            states,
            policies,
            min_age_days: min_age.map(|d| d.to_string()).unwrap_or_default(),
            filtered: wanted_state.is_some() || wanted_policy.is_some() || min_age.is_some(),
        },
    )
}
