//! The one place that renders HTTP errors: RFC 9457 `application/problem+json`
//! bodies with a stable `type` URI per [`ErrorKind`], and the safety net that
//! turns every other error response (axum rejections, 404, 405, 413) into one.
//!
//! The `detail` member is what the caller may read: it says what was wrong with
//! the request. Internal causes (error chains, panics, dependency failures) are
//! logged with the request id and never leave the process.

use std::any::Any;
use std::borrow::Cow;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::request_id::RequestId;
use crate::error::{ErrorKind, HasErrorKind, chain};

/// The media type of every problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of the problem `type` URIs; the rest is [`ErrorKind::slug`] or one of
/// the HTTP-level slugs below. Documented in `openapi/openapi.yaml`.
pub const TYPE_PREFIX: &str = "urn:sceau:problem:";

/// The detail given for every 5xx whose cause is internal.
const INTERNAL_DETAIL: &str =
    "the server failed to handle the request; quote the request id when reporting it";

/// Longest plain-text rejection body (from axum's extractors) reused as `detail`.
const MAX_REUSED_DETAIL: usize = 300;

/// What kind of problem, as far as the `type` URI goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemType {
    /// A failure of the service's own making, classified by a module error.
    Kind(ErrorKind),
    /// The path exists, the method does not (405; the `Allow` header lists the methods).
    MethodNotAllowed,
    /// The request body's media type is not one the endpoint reads (415).
    UnsupportedMediaType,
    /// Any other HTTP status, rendered as RFC 9457 `about:blank`.
    Status(StatusCode),
}

impl ProblemType {
    /// The problem `type` member.
    pub fn uri(self) -> Cow<'static, str> {
        match self {
            Self::Kind(kind) => Cow::Owned(format!("{TYPE_PREFIX}{}", kind.slug())),
            Self::MethodNotAllowed => Cow::Borrowed("urn:sceau:problem:method-not-allowed"),
            Self::UnsupportedMediaType => Cow::Borrowed("urn:sceau:problem:unsupported-media-type"),
            Self::Status(_) => Cow::Borrowed("about:blank"),
        }
    }

    /// The short, fixed summary of the type (`title`).
    pub fn title(self) -> &'static str {
        match self {
            Self::Kind(kind) => match kind {
                ErrorKind::BadRequest => "Bad request",
                ErrorKind::Unauthenticated => "Authentication required",
                ErrorKind::Forbidden => "Forbidden",
                ErrorKind::NotFound => "Not found",
                ErrorKind::Conflict => "Conflict",
                ErrorKind::Locked => "Locked",
                ErrorKind::Unprocessable => "Unprocessable content",
                ErrorKind::PayloadTooLarge => "Payload too large",
                ErrorKind::TooManyRequests => "Too many requests",
                ErrorKind::Unavailable => "Service unavailable",
                ErrorKind::Internal => "Internal error",
            },
            Self::MethodNotAllowed => "Method not allowed",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Status(status) => status.canonical_reason().unwrap_or("Error"),
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Kind(kind) => StatusCode::from_u16(kind.http_status())
                // ErrorKind::http_status only returns registered codes.
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Status(status) => status,
        }
    }

    /// The type an error status maps onto when no handler classified it.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            _ => ErrorKind::ALL
                .into_iter()
                .find(|kind| kind.http_status() == status.as_u16())
                .map_or(Self::Status(status), Self::Kind),
        }
    }
}

/// An RFC 9457 problem details object, as sent.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: Cow<'static, str>,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// `urn:sceau:request:<request id>`: this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id, as echoed in the `x-request-id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extension members specific to the problem type (e.g. `checks` on 503 from `/readyz`).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem for the request being handled (its id is taken from the task).
    pub fn new(problem_type: ProblemType, detail: impl Into<String>) -> Self {
        let request_id = RequestId::current().map(|id| id.as_str().to_owned());
        Self {
            type_uri: problem_type.uri(),
            title: problem_type.title(),
            status: problem_type.status().as_u16(),
            detail: detail.into(),
            instance: request_id
                .as_ref()
                .map(|id| format!("urn:sceau:request:{id}")),
            request_id,
            extensions: Map::new(),
        }
    }
}

/// Marks a response whose error body is already in its final form, so the
/// safety net leaves it alone. Problem responses carry it; so will the CSC API's
/// own `{error, error_description}` responses.
#[derive(Clone, Copy, Debug)]
pub struct FinalErrorBody;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Serialising strings, numbers and a JSON map cannot fail.
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response.extensions_mut().insert(FinalErrorBody);
        response
    }
}

/// An error on its way out of a handler: its kind, the detail the caller may
/// read, and the internal cause, which is only logged.
#[derive(Debug)]
pub struct ApiError {
    problem_type: ProblemType,
    detail: String,
    cause: Option<String>,
    extensions: Map<String, Value>,
    /// Seconds for a `Retry-After` header (503 when the service is busy).
    retry_after: Option<u64>,
}

impl ApiError {
    /// From a module error: its kind picks the status and `type`, `detail` is what the
    /// caller reads, and the error's own text (with its causes) goes to the log only.
    pub fn new<E: HasErrorKind>(error: &E, detail: impl Into<String>) -> Self {
        Self {
            problem_type: ProblemType::Kind(error.kind()),
            detail: detail.into(),
            cause: Some(chain(error)),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// From a module error whose message is written for the caller: it becomes the
    /// detail of a 4xx; a 5xx keeps the generic detail and logs the message.
    pub fn public<E: HasErrorKind>(error: &E) -> Self {
        let detail = if error.kind().http_status() >= 500 {
            INTERNAL_DETAIL.to_owned()
        } else {
            error.to_string()
        };
        Self::new(error, detail)
    }

    /// From a kind alone, when the handler itself found the problem.
    pub fn from_kind(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self::of_type(ProblemType::Kind(kind), detail)
    }

    pub fn of_type(problem_type: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            problem_type,
            detail: detail.into(),
            cause: None,
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// Adds an extension member to the problem body. Only for public data.
    pub fn with_extension(mut self, name: &str, value: Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// Adds `Retry-After: seconds` to the response.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.problem_type.status()
    }

    /// What the caller may read (the CSC API re-renders it in its own form).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    fn log(&self) {
        let status = self.status().as_u16();
        let cause = self.cause.as_deref().unwrap_or("");
        if self.status().is_server_error() {
            tracing::error!(status, problem = %self.problem_type.uri(), detail = %self.detail, cause, "request failed");
        } else {
            tracing::info!(status, problem = %self.problem_type.uri(), detail = %self.detail, cause, "request refused");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut problem = Problem::new(self.problem_type, self.detail);
        problem.extensions = self.extensions;
        let mut response = problem.into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The JSON body of a request, for handlers that take it as
/// `Result<Json<T>, JsonRejection>` so they can check the caller's rights first:
/// a principal without the right learns nothing from body errors.
pub fn json_body<T>(
    payload: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    payload.map(|axum::Json(body)| body).map_err(|rejection| {
        ApiError::of_type(
            ProblemType::for_status(rejection.status()),
            rejection.body_text(),
        )
    })
}

/// `result.or_problem("what was wrong")?` in handlers.
pub trait OrProblem<T> {
    fn or_problem(self, detail: impl Into<String>) -> Result<T, ApiError>;
}

impl<T, E: HasErrorKind> OrProblem<T> for Result<T, E> {
    fn or_problem(self, detail: impl Into<String>) -> Result<T, ApiError> {
        self.map_err(|error| ApiError::new(&error, detail))
    }
}

/// The router's fallback: no route matches the path.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::from_kind(
        ErrorKind::NotFound,
        format!("there is no resource at {}", request.uri().path()),
    )
}

/// Every method router's fallback: the path exists but not with this method.
/// axum adds the `Allow` header to this response.
pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::of_type(
        ProblemType::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; the Allow header lists the methods that are",
            request.method(),
            request.uri().path()
        ),
    )
}

/// For `tower_http::catch_panic`: a panicking handler becomes a plain 500 problem.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned());
    tracing::error!(status = 500, panic = %message, "handler panicked");
    Problem::new(ProblemType::Kind(ErrorKind::Internal), INTERNAL_DETAIL).into_response()
}

/// Middleware, the safety net: any 4xx/5xx response that did not come from this
/// module (axum's extractor rejections, the body-limit layer's 413…) is re-rendered
/// as a problem. Headers such as `Allow` are kept. The state is the body limit, so
/// a 413 can say what the limit is.
pub async fn errors_as_problems(
    State(body_limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<FinalErrorBody>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, 16 * 1024)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .unwrap_or_default();
    let text = text.trim();
    let problem_type = ProblemType::for_status(status);
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body is larger than the limit of {body_limit} bytes")
    } else if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            body = text,
            "error response re-rendered as a problem"
        );
        INTERNAL_DETAIL.to_owned()
    } else if !text.is_empty() && text.len() <= MAX_REUSED_DETAIL {
        // axum's rejections describe what was wrong with the request itself.
        text.to_owned()
    } else {
        format!("the request was refused ({})", problem_type.title())
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let rendered = Problem::new(problem_type, detail).into_response();
    let (rendered_parts, body) = rendered.into_parts();
    parts.headers.extend(rendered_parts.headers);
    parts.extensions.extend(rendered_parts.extensions);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database row 42 in table secrets is corrupt")]
    struct Internal;

    impl HasErrorKind for Internal {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Internal
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("credential c-1 is locked after 5 failures at 10.0.0.7")]
    struct Locked;

    impl HasErrorKind for Locked {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Locked
        }
    }

    async fn render(error: ApiError) -> (StatusCode, String, Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_module_error_renders_its_kind_and_only_the_public_detail() {
        let (status, content_type, body) =
            render(ApiError::new(&Internal, "the seal could not be recorded")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(body["type"], "urn:sceau:problem:internal");
        assert_eq!(body["title"], "Internal error");
        assert_eq!(body["status"], 500);
        assert_eq!(body["detail"], "the seal could not be recorded");
        let text = body.to_string();
        assert!(!text.contains("secrets"), "{text}");
        assert!(!text.contains("42"), "{text}");
    }

    #[tokio::test]
    async fn each_kind_has_its_status_and_a_stable_type() {
        let (status, _, body) = render(ApiError::new(&Locked, "credential is locked")).await;
        assert_eq!(status, StatusCode::LOCKED);
        assert_eq!(body["type"], "urn:sceau:problem:locked");
        assert_eq!(body["status"], 423);
        assert!(!body.to_string().contains("10.0.0.7"));
    }

    #[tokio::test]
    async fn the_request_id_becomes_the_instance() {
        let id = RequestId::parse_str("abc-123").unwrap();
        let response = RequestId::scope(id, async {
            ApiError::from_kind(ErrorKind::NotFound, "nothing here").into_response()
        })
        .await;
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["instance"], "urn:sceau:request:abc-123");
        assert_eq!(body["request_id"], "abc-123");
    }

    #[tokio::test]
    async fn outside_a_request_there_is_no_instance() {
        let (_, _, body) = render(ApiError::from_kind(ErrorKind::Conflict, "x")).await;
        assert!(body.get("instance").is_none());
        assert!(body.get("request_id").is_none());
    }

    #[tokio::test]
    async fn extensions_are_added_as_members() {
        let error = ApiError::from_kind(ErrorKind::Unavailable, "not ready")
            .with_extension("checks", serde_json::json!({"database": "ok"}));
        let (status, _, body) = render(error).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["database"], "ok");
    }

    #[test]
    fn statuses_map_onto_types() {
        assert_eq!(
            ProblemType::for_status(StatusCode::NOT_FOUND),
            ProblemType::Kind(ErrorKind::NotFound)
        );
        assert_eq!(
            ProblemType::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ProblemType::Kind(ErrorKind::PayloadTooLarge)
        );
        assert_eq!(
            ProblemType::for_status(StatusCode::METHOD_NOT_ALLOWED),
            ProblemType::MethodNotAllowed
        );
        let teapot = ProblemType::for_status(StatusCode::IM_A_TEAPOT);
        assert_eq!(teapot.uri(), "about:blank");
        assert_eq!(teapot.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(teapot.title(), "I'm a teapot");
    }

    #[test]
    fn a_panic_renders_a_generic_500() {
        let response = panic_response(Box::new("secret internal state"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(response.extensions().get::<FinalErrorBody>().is_some());
    }
}
