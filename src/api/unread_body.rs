//! Owns what happens to a request body the service did not read to its end.
//!
//! A refusal often comes before the body is read (no credentials, the wrong
//! media type). hyper then drains what has already arrived of the body, and
//! when the rest is still on its way it closes the connection. The client,
//! still sending, gets a reset that throws away the response it was about to
//! read: over TLS an EOF without close_notify, and most clients do not resend
//! a POST after that. So the rest of such a body is read and discarded here,
//! within a bound, before the response goes; past the bound, the response
//! says `Connection: close`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;

/// How much of an unread body is read and discarded to keep the connection.
const DRAIN_BYTES: usize = 1024 * 1024;
/// How long that may take.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Middleware: the rest of a request body the handler left unread is read
/// and discarded before the response goes (within `DRAIN_BYTES` and
/// `DRAIN_TIME`); past that, the response says `Connection: close`.
pub async fn finish_reading(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (leftover_to, leftover) = oneshot::channel();
    let (parts, body) = request.into_parts();
    let tracked = Body::new(TrackedBody {
        inner: Some(body),
        leftover: Some(leftover_to),
    });
    let mut response = next.run(Request::from_parts(parts, tracked)).await;
    let kept = tokio::time::timeout(DRAIN_TIME, async {
        match leftover.await {
            // Read to its end: nothing left.
            Err(_) => true,
            Ok(rest) => discard(rest).await,
        }
    })
    .await
    // Still held by the handler, or still arriving: let the connection go.
    .unwrap_or(false);
    if !kept {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads `body` to its end, up to `DRAIN_BYTES`: whether it ended.
async fn discard(mut body: Body) -> bool {
    let mut read = 0usize;
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return true,
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > DRAIN_BYTES {
                    return false;
                }
            }
            Some(Err(_)) => return false,
        }
    }
}

/// A request body that, dropped before its end, hands what is left of it
/// back to the middleware.
struct TrackedBody {
    inner: Option<Body>,
    leftover: Option<oneshot::Sender<Body>>,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // Read to its end: nothing to hand back (the sender drops).
            self.leftover = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(HttpBody::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let (Some(inner), Some(leftover)) = (self.inner.take(), self.leftover.take())
            && !inner.is_end_stream()
        {
            // The middleware is waiting for it; if it is gone, so is the request.
            let _ = leftover.send(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
            .layer(axum::middleware::from_fn(finish_reading))
    }

    /// A body of `chunks` chunks of `size` bytes; `read` counts those read.
    fn body(chunks: usize, size: usize, read: Arc<AtomicUsize>) -> Body {
        Body::from_stream(futures_util::stream::iter((0..chunks).map(move |_| {
            read.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size]))
        })))
    }

    async fn connection_of(path: &str, body: Body) -> Option<HeaderValue> {
        let response = app()
            .oneshot(Request::post(path).body(body).unwrap())
            .await
            .unwrap();
        response.headers().get(CONNECTION).cloned()
    }

    #[tokio::test]
    async fn an_unread_body_is_read_to_its_end_and_the_connection_kept() {
        let read = Arc::new(AtomicUsize::new(0));
        let connection = connection_of("/refuse", body(16, 4096, read.clone())).await;
        assert_eq!(connection, None);
        assert_eq!(read.load(Ordering::SeqCst), 16, "every chunk was read");
    }

    #[tokio::test]
    async fn past_the_bound_the_connection_closes() {
        let read = Arc::new(AtomicUsize::new(0));
        let connection = connection_of("/refuse", body(40, 64 * 1024, read.clone())).await;
        assert_eq!(connection, Some(HeaderValue::from_static("close")));
        assert!(read.load(Ordering::SeqCst) < 40, "stopped at the bound");
    }

    #[tokio::test]
    async fn a_body_read_or_absent_keeps_it_open() {
        let read = Arc::new(AtomicUsize::new(0));
        assert_eq!(connection_of("/read", body(4, 10, read)).await, None);
        assert_eq!(connection_of("/refuse", Body::empty()).await, None);
    }
}
