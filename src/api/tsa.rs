//! `POST /tsa`: the time-stamping authority over HTTP (RFC 3161 §3.4). The body
//! is a DER TimeStampReq (`application/timestamp-query`); every answer to such a
//! body is `200 application/timestamp-reply`, refusals included (they are
//! rejections inside the reply). Another media type gets a 415 problem. The
//! body is read up to `tsa.max_request_bytes` and no further, and requests
//! past the token bucket (`tsa.requests_per_second`, `tsa.burst`) get a 429
//! problem with Retry-After, before anything is read.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::limited_body::read_at_most;
use super::problem::{ApiError, ProblemType};
use super::route_table::RouteTable;
use crate::error::ErrorKind;
use crate::pki::tsa::{REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE};
use crate::state::AppState;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new().post("/tsa", time_stamp)
}

async fn time_stamp(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some(REQUEST_MEDIA_TYPE) {
        return ApiError::of_type(
            ProblemType::UnsupportedMediaType,
            format!("the body must be a DER TimeStampReq sent as {REQUEST_MEDIA_TYPE}"),
        )
        .into_response();
    }
    if !state.tsa.admit() {
        return ApiError::from_kind(
            ErrorKind::TooManyRequests,
            "the time-stamping authority is answering as many requests as it may: try again shortly",
        )
        .with_retry_after(1)
        .into_response();
    }
    let reply = match read_at_most(body, state.tsa.max_request_bytes()).await {
        Some(body) => state.tsa.respond(&body).await,
        None => state.tsa.refuse_too_large(),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(RESPONSE_MEDIA_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        reply,
    )
        .into_response()
}
