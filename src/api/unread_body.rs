//! Owns one HTTP/1.1 courtesy: a response to a request whose body the
//! service did not read to its end says `Connection: close`.
//!
//! A refusal often comes before the body is read (no credentials, the wrong
//! media type). hyper then drains what has already arrived of the body, and
//! when the rest is still on its way it closes the connection — after the
//! response went out saying nothing of it. A client that sends its next
//! request on that kept-alive connection meets a closed socket, which over
//! TLS reads as an EOF without close_notify, and most clients do not resend
//! a POST after that. Saying `Connection: close` makes the client open a new
//! connection instead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

/// Middleware: `Connection: close` on the response when the request came
/// with a body that was not read to its end.
pub async fn close_when_unread(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let read_to_end = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let tracked = Body::new(TrackedBody {
        inner: body,
        read_to_end: read_to_end.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, tracked)).await;
    if !read_to_end.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records whether it was read to its end.
struct TrackedBody {
    inner: Body,
    read_to_end: Arc<AtomicBool>,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        };
        if ended {
            self.read_to_end.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route(
                "/read",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route("/refuse", post(|| async { "refused before reading" }))
            .layer(axum::middleware::from_fn(close_when_unread))
    }

    async fn connection_of(path: &str, body: &'static str) -> Option<HeaderValue> {
        let response = app()
            .oneshot(
                Request::post(path)
                    .header("content-length", body.len())
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        response.headers().get(CONNECTION).cloned()
    }

    #[tokio::test]
    async fn a_body_left_unread_closes_the_connection() {
        assert_eq!(
            connection_of("/refuse", "a body nobody reads").await,
            Some(HeaderValue::from_static("close"))
        );
    }

    #[tokio::test]
    async fn a_body_read_or_absent_keeps_it_open() {
        assert_eq!(connection_of("/read", "read to its end").await, None);
        assert_eq!(connection_of("/refuse", "").await, None);
    }
}
