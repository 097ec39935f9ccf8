//! A request body read up to a route's own limit, and no further: a client
//! that announces or sends more is answered at once, not once the general
//! body limit is reached.

use axum::body::{Body, Bytes};

/// The whole body when it is at most `limit` bytes; `None` past it (or when
/// the client broke off), having read no more than `limit + 1` bytes.
pub async fn read_at_most(body: Body, limit: usize) -> Option<Bytes> {
    axum::body::to_bytes(body, limit).await.ok()
}
