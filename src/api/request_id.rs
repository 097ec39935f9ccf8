//! Request ids: the caller's `x-request-id` when it is sane, a fresh UUID
//! otherwise; echoed in the response, carried in the tracing span and in problem
//! bodies, and reachable from anywhere in the request's task.

use std::future::Future;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header that carries the request id, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied id we keep.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request id: 1 to 128 characters from `A-Z a-z 0-9 - _ . : ~`, so it is safe
/// in a header, a log line and a URN. Also a request extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The caller's id, if sane.
    pub fn parse_str(text: &str) -> Option<Self> {
        let sane = !text.is_empty()
            && text.len() <= MAX_LEN
            && text.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'~')
            });
        sane.then(|| Self(text.to_owned()))
    }

    pub fn parse(value: &HeaderValue) -> Option<Self> {
        value.to_str().ok().and_then(Self::parse_str)
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn header_value(&self) -> HeaderValue {
        // The constructors only admit visible ASCII, which is always a valid header value.
        HeaderValue::from_str(&self.0).unwrap_or(HeaderValue::from_static("invalid"))
    }

    /// The id of the request whose task is running, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` with `id` as the current request id.
    pub async fn scope<F: Future>(id: Self, future: F) -> F::Output {
        CURRENT.scope(id, future).await
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Middleware: assigns the id (request header and extension), runs the rest of
/// the stack with it as the current id, and echoes it in the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(&REQUEST_ID_HEADER);
    let id = match given.map(RequestId::parse) {
        Some(Some(id)) => id,
        Some(None) => {
            let id = RequestId::generate();
            tracing::debug!(request_id = %id, "caller's x-request-id replaced: not a sane id");
            id
        }
        None => RequestId::generate(),
    };
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, id.header_value());
    request.extensions_mut().insert(id.clone());
    let mut response = RequestId::scope(id.clone(), next.run(request)).await;
    response
        .headers_mut()
        .insert(REQUEST_ID_HEADER, id.header_value());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept() {
        for id in [
            "abc",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "a.b_c:d~e",
            &"x".repeat(128),
        ] {
            assert_eq!(RequestId::parse_str(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn odd_ids_are_refused() {
        for id in [
            "",
            "a b",
            "a\"b",
            "<script>",
            "a/b",
            "é",
            &"x".repeat(129),
            "a\nb",
        ] {
            assert!(RequestId::parse_str(id).is_none(), "{id:?}");
        }
    }

    #[test]
    fn generated_ids_are_sane_and_distinct() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert_eq!(RequestId::parse_str(a.as_str()), Some(a.clone()));
        assert_eq!(a.header_value().to_str().unwrap(), a.as_str());
    }

    #[tokio::test]
    async fn the_current_id_is_scoped_to_the_task() {
        assert_eq!(RequestId::current(), None);
        let id = RequestId::parse_str("r-1").unwrap();
        let seen = RequestId::scope(id.clone(), async { RequestId::current() }).await;
        assert_eq!(seen, Some(id));
    }
}
