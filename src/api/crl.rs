//! The public CRL endpoint: the latest CRL of each CA (`issuing.crl`,
//! `client-auth.crl`, the root's `root.crl`), DER, with caching headers.

use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::problem::{ApiError, OrProblem};
use super::public::if_none_match;
use super::route_table::RouteTable;
use crate::error::ErrorKind;
use crate::pki::crl::issuer_of_file;
use crate::state::AppState;
use crate::store::crl::StoredCrl;

pub const CRL_MEDIA_TYPE: &str = "application/pkix-crl";
/// Caches keep a CRL at most this long, so a new one is seen within minutes
/// even when the current one's nextUpdate is hours away.
pub const MAX_AGE_CAP_SECS: u64 = 300;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new().get("/crl/{file}", crl)
}

/// `GET /crl/{file}`: the CRL with the highest number of that CA.
async fn crl(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::from_kind(
            ErrorKind::NotFound,
            format!(
                "no CRL is published as '{file}'; names: issuing.crl, client-auth.crl, root.crl"
            ),
        )
    };
    let issuer = issuer_of_file(&file).ok_or_else(not_found)?;
    let stored = state
        .store
        .latest_crl(issuer)
        .await
        .or_problem("reading the CRL")?
        .ok_or_else(not_found)?;
    Ok(crl_response(&stored, state.clock.now(), &headers))
}

/// The response for `stored` at `now`: 304 when `If-None-Match` names it.
pub fn crl_response(stored: &StoredCrl, now: SystemTime, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", stored.sha256);
    let mut response = if if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(CRL_MEDIA_TYPE),
            )],
            stored.der.clone(),
        )
            .into_response()
    };
    let until_next = SystemTime::from(stored.next_update)
        .duration_since(now)
        .map(|left| left.as_secs())
        .unwrap_or(0);
    let headers = response.headers_mut();
    // Digits and fixed text: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&format!(
        "public, max-age={}",
        until_next.min(MAX_AGE_CAP_SECS)
    )) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = http_date(stored.this_update) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    response
}

/// The IMF-fixdate of `at` as a header value.
fn http_date(at: OffsetDateTime) -> Option<HeaderValue> {
    HeaderValue::from_str(&crate::clock::format::http_date(at)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(next_in_secs: i64) -> StoredCrl {
        let this_update = OffsetDateTime::from_unix_timestamp(784_111_777).unwrap();
        StoredCrl {
            issuer: "issuing".to_owned(),
            number: 1,
            ca_serial: "01".to_owned(),
            der: vec![0x30, 0x00],
            sha256: "ab".repeat(32),
            this_update,
            next_update: this_update + time::Duration::seconds(next_in_secs),
            entries: 0,
            covers: "0:0:0".to_owned(),
            published_at: this_update,
        }
    }

    #[test]
    fn headers_cap_max_age_and_etag_gives_304() {
        let crl = stored(86_400);
        let now = SystemTime::from(crl.this_update);
        let response = crl_response(&crl, now, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CRL_MEDIA_TYPE);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=300"
        );
        assert_eq!(
            response.headers()[header::LAST_MODIFIED],
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            response.headers()[header::ETAG].clone(),
        );
        assert_eq!(
            crl_response(&crl, now, &headers).status(),
            StatusCode::NOT_MODIFIED
        );

        let soon = stored(42);
        let response = crl_response(&soon, SystemTime::from(soon.this_update), &HeaderMap::new());
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=42"
        );
        let late = SystemTime::from(soon.next_update) + std::time::Duration::from_secs(5);
        let response = crl_response(&soon, late, &HeaderMap::new());
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=0"
        );
    }
}
