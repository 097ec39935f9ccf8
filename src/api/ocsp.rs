//! The OCSP endpoints (RFC 6960 appendix A, RFC 5019 §5): `POST /ocsp` with a DER
//! request body and `GET /ocsp/{request}` with the base64 of the DER, URL-encoded.
//! Every answer is `200 application/ocsp-response` (errors are OCSP statuses such
//! as malformedRequest, which is also what a body over `ocsp.max_request_bytes`
//! gets, answered without reading further).
//! GET answers to requests without a nonce carry RFC 5019 §6.2 caching headers.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::limited_body::read_at_most;
use super::route_table::RouteTable;
use crate::pki::ocsp::{OcspAnswer, RESPONSE_MEDIA_TYPE};
use crate::state::AppState;

/// The responder's routes; the path is the one the issued certificates' AIA names
/// (`ocsp_url` of the ceremony and policy files, e.g. `http://…/ocsp`).
pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .post("/ocsp", post_request)
        .get("/ocsp/{request}", get_request)
}

/// `POST /ocsp`: the body is the DER OCSPRequest, read up to
/// `ocsp.max_request_bytes` and no further (malformedRequest past it).
async fn post_request(State(state): State<AppState>, body: Body) -> Response {
    let answer = match read_at_most(body, state.ocsp.settings().max_request_bytes).await {
        Some(body) => state.ocsp.respond(&body).await,
        None => OcspAnswer::malformed(),
    };
    render(answer, false, state.clock.now())
}

/// `GET /ocsp/{request}`: the path segment is the (percent-decoded) base64 of the DER.
async fn get_request(State(state): State<AppState>, Path(encoded): Path<String>) -> Response {
    let now = state.clock.now();
    if encoded.len() > state.ocsp.settings().max_request_bytes.saturating_mul(2) {
        return render(OcspAnswer::malformed(), false, now);
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let Some(der) = engines.iter().find_map(|e| e.decode(encoded.trim()).ok()) else {
        return render(OcspAnswer::malformed(), false, now);
    };
    let answer = state.ocsp.respond(&der).await;
    render(answer, true, now)
}

fn render(answer: OcspAnswer, http_cacheable: bool, now: SystemTime) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RESPONSE_MEDIA_TYPE),
    );
    match (&answer.cacheable, http_cacheable) {
        (Some(cache), true) => {
            let max_age = cache
                .next_update
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
                .as_secs();
            let cache_control = format!("max-age={max_age}, public, no-transform, must-revalidate");
            let values = [
                (header::CACHE_CONTROL, cache_control.as_str()),
                (header::LAST_MODIFIED, cache.produced_at_http.as_str()),
                (header::EXPIRES, cache.next_update_http.as_str()),
            ];
            for (name, value) in values {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", cache.etag)) {
                headers.insert(header::ETAG, etag);
            }
        }
        _ => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    (headers, answer.der).into_response()
}
