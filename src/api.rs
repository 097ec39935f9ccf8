//! axum: the only module that knows HTTP. The routers (one per audience), the
//! middleware stack, and the server loop with graceful shutdown. Every error
//! leaves through `problem.rs` as `application/problem+json`, except the CSC
//! API's, which keep CSC's own form (`csc.rs`).

pub mod authn;
pub mod ca;
pub mod credentials;
pub mod crl;
pub mod csc;
pub mod docs;
pub mod identity_providers;
pub mod limited_body;
pub mod ocsp;
pub mod policies;
pub mod problem;
pub mod public;
pub mod ra;
pub mod request_id;
pub mod route_table;
pub mod seal;
pub mod tls;
pub mod tsa;
pub mod unread_body;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{Request, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::state::AppState;
use request_id::RequestId;
pub use route_table::RouteTable;

/// Every route the application serves, with the state it needs still open.
fn routes() -> RouteTable<AppState> {
    public::routes()
        .nest("", credentials::routes())
        .nest("", identity_providers::routes())
        .nest("", ra::routes())
        .nest("", crl::routes())
        .nest("", ocsp::routes())
        .nest("", ca::routes())
        .nest("", policies::routes())
        .nest("", tsa::routes())
        .nest("", seal::routes())
        .nest("", csc::routes())
        .nest("", docs::routes())
}

/// Every (METHOD, path, access) the router serves: the role matrix's input.
pub fn route_access() -> Vec<(String, String, route_table::Access)> {
    routes().access()
}

/// Every (METHOD, path) the router serves, sorted, with paths in OpenAPI form
/// (`/certs/{file}`). Needs no state: used by the OpenAPI drift test.
pub fn documented_routes() -> Vec<(String, String)> {
    routes().list()
}

/// The complete HTTP application for `state`: routes, fallbacks and middleware.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application with `pages` (the portal, which the layer above builds)
/// served beside the API, under the same middleware.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let body_limit = state.settings.server.body_limit_bytes;
    with_middleware(
        with_fallbacks(routes().into_router().merge(pages)).with_state(state),
        body_limit,
    )
}

/// 404 and 405 as problems.
fn with_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// The middleware stack, outermost first: request id, trace span, the rest of an
/// unread body, error bodies as problems, panics as 500 problems, request body limit.
fn with_middleware(router: Router, body_limit: usize) -> Router {
    // `.layer` wraps what is already there: the last layer added is the outermost.
    router
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(CatchPanicLayer::custom(problem::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            problem::errors_as_problems,
        ))
        .layer(axum::middleware::from_fn(unread_body::finish_reading))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(|_: &Request<Body>, _: &Span| tracing::debug!("request started"))
                .on_response(|response: &Response<Body>, latency: Duration, span: &Span| {
                    let status = response.status().as_u16();
                    span.record("status", status);
                    tracing::info!(status, latency_ms = latency.as_millis() as u64, "request finished");
                })
                .on_failure(
                    |class: ServerErrorsFailureClass, latency: Duration, _: &Span| {
                        tracing::warn!(%class, latency_ms = latency.as_millis() as u64, "request failed");
                    },
                ),
        )
        .layer(axum::middleware::from_fn(request_id::assign))
}

/// The span every request's logs are in. The path is logged, never the query string.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        peer,
        status = tracing::field::Empty,
    )
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish for at most `server.shutdown_grace_secs`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`] with `pages` beside the API (see [`router_with`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    pages: Router<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
    serve_router(listener, router_with(state, pages), grace, shutdown).await
}

async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new connections"
        );
        // The receiver lives until `serve` returns.
        let _ = stopping_tx.send(true);
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let deadline = async move {
        if stopping_rx.wait_for(|stopping| *stopping).await.is_err() {
            // The server ended without a shutdown request: no deadline applies.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => {
            tracing::info!("server stopped");
            result
        }
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period: stopping anyway");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). Call it inside the Tokio runtime: the
/// SIGTERM handler is installed at once, so a signal arriving before the future is
/// first polled is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => tracing::info!(signal = "SIGINT", "shutdown requested"),
            () = terminate => tracing::info!(signal = "SIGTERM", "shutdown requested"),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Bytes, to_bytes};
    use axum::http::{HeaderValue, Method, StatusCode, header};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::api::problem::PROBLEM_JSON;
    use crate::api::request_id::REQUEST_ID_HEADER;

    const LIMIT: usize = 1024;

    /// The real fallbacks and middleware around stand-in routes (no state needed).
    fn app() -> Router {
        let routes = RouteTable::<()>::new()
            .get("/hello", || async { "hello" })
            .post("/echo", |body: Bytes| async move { body })
            .post("/json", |axum::Json(v): axum::Json<Value>| async move {
                axum::Json(v)
            })
            .get("/panic", || async {
                if true {
                    panic!("secret internal state");
                }
                ""
            });
        with_middleware(with_fallbacks(routes.into_router()), LIMIT)
    }

    async fn call(request: Request<Body>) -> (Response<Body>, Option<Value>) {
        let response = app().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        let json = if parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes())
            == Some(PROBLEM_JSON.as_bytes())
        {
            Some(serde_json::from_slice(&bytes).unwrap())
        } else {
            None
        };
        (Response::from_parts(parts, Body::from(bytes)), json)
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    fn assert_problem(
        response: &Response<Body>,
        body: &Option<Value>,
        status: u16,
        type_uri: &str,
    ) {
        assert_eq!(response.status().as_u16(), status);
        let body = body.as_ref().expect("a problem+json body");
        assert_eq!(body["status"], status);
        assert_eq!(body["type"], type_uri);
        let id = response.headers()[&REQUEST_ID_HEADER].to_str().unwrap();
        assert_eq!(body["request_id"], id);
        assert_eq!(body["instance"], format!("urn:sceau:request:{id}"));
    }

    #[tokio::test]
    async fn unknown_paths_are_404_problems() {
        let (response, body) = call(get("/nowhere")).await;
        assert_problem(&response, &body, 404, "urn:sceau:problem:not-found");
        assert_eq!(body.unwrap()["detail"], "there is no resource at /nowhere");
    }

    #[tokio::test]
    async fn wrong_methods_are_405_problems_with_allow() {
        let request = Request::delete("/hello").body(Body::empty()).unwrap();
        let (response, body) = call(request).await;
        assert_problem(
            &response,
            &body,
            405,
            "urn:sceau:problem:method-not-allowed",
        );
        let allow = response.headers()[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("GET"), "{allow}");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_problems() {
        // Announced by Content-Length: refused before the handler runs.
        let request = Request::post("/echo")
            .body(Body::from(vec![b'x'; LIMIT + 1]))
            .unwrap();
        let (response, body) = call(request).await;
        assert_problem(&response, &body, 413, "urn:sceau:problem:payload-too-large");
        assert!(
            body.unwrap()["detail"]
                .as_str()
                .unwrap()
                .contains("1024 bytes")
        );
        // Streamed without a length: refused when the limit is crossed.
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(vec![b'x'; 600])),
            Ok(Bytes::from(vec![b'x'; 600])),
        ];
        let request = Request::post("/echo")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
        let (response, body) = call(request).await;
        assert_problem(&response, &body, 413, "urn:sceau:problem:payload-too-large");
        // At the limit: served.
        let request = Request::post("/echo")
            .body(Body::from(vec![b'x'; LIMIT]))
            .unwrap();
        let (response, _) = call(request).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn rejections_become_problems_that_say_what_was_wrong() {
        let request = Request::post("/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{not json"))
            .unwrap();
        let (response, body) = call(request).await;
        assert_problem(&response, &body, 400, "urn:sceau:problem:bad-request");
        let detail = body.unwrap()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("JSON"), "{detail}");
        let request = Request::post("/json").body(Body::from("{}")).unwrap();
        let (response, body) = call(request).await;
        assert_problem(
            &response,
            &body,
            415,
            "urn:sceau:problem:unsupported-media-type",
        );
    }

    #[tokio::test]
    async fn panics_are_500_problems_without_the_panic_text() {
        let (response, body) = call(get("/panic")).await;
        assert_problem(&response, &body, 500, "urn:sceau:problem:internal");
        assert!(!body.unwrap().to_string().contains("secret"));
    }

    #[tokio::test]
    async fn request_ids_are_echoed_generated_or_replaced() {
        let request = Request::get("/hello")
            .header(&REQUEST_ID_HEADER, "caller-id-1")
            .body(Body::empty())
            .unwrap();
        let (response, _) = call(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[&REQUEST_ID_HEADER], "caller-id-1");

        let (response, _) = call(get("/hello")).await;
        let generated = response.headers()[&REQUEST_ID_HEADER].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

        let request = Request::get("/hello")
            .header(&REQUEST_ID_HEADER, HeaderValue::from_static("bad id <x>"))
            .body(Body::empty())
            .unwrap();
        let (response, _) = call(request).await;
        let replaced = response.headers()[&REQUEST_ID_HEADER].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");
    }

    #[tokio::test]
    async fn head_is_served_where_get_is() {
        let request = Request::builder()
            .method(Method::HEAD)
            .uri("/hello")
            .body(Body::empty())
            .unwrap();
        let (response, _) = call(request).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn serve_stops_on_shutdown_and_bounds_the_drain() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let slow = RouteTable::<()>::new().get("/slow", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        });
        let app = with_middleware(with_fallbacks(slow.into_router()), LIMIT);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_router(
            listener,
            app,
            Duration::from_millis(200),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let client = reqwest::Client::new();
        let missing = client.get(format!("{url}/nope")).send().await.unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        assert_eq!(missing.headers()["content-type"], PROBLEM_JSON);
        // A request still running when shutdown starts gets the grace period, no more.
        let in_flight = tokio::spawn(client.get(format!("{url}/slow")).send());
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop_tx.send(()).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
        in_flight.abort();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_resolves_the_shutdown_signal() {
        // The handler is installed when shutdown_signal() returns, before any poll,
        // so this SIGTERM to our own process cannot take the default action (exit).
        let signal = shutdown_signal();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let resolved = tokio::time::timeout(Duration::from_secs(5), signal).await;
        assert!(
            resolved.is_ok(),
            "SIGTERM did not resolve shutdown_signal()"
        );
    }

    #[test]
    fn the_documented_routes_are_the_public_ones() {
        let routes = documented_routes();
        for (method, path) in [
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/certs/{file}"),
            ("GET", "/crl/{file}"),
        ] {
            assert!(
                routes.contains(&(method.to_owned(), path.to_owned())),
                "{method} {path} in {routes:?}"
            );
        }
    }

    #[test]
    fn the_real_router_builds_without_panicking() {
        // Route conflicts panic when the router is built; no state is needed to find them.
        let _router: Router<AppState> = with_fallbacks(routes().into_router());
    }
}
