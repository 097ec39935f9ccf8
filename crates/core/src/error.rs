//! The closed set of error kinds every module error maps onto, so `api/problem.rs`
//! can render any failure without knowing the module it came from.

use std::fmt;

/// What kind of failure happened, from the caller's point of view.
///
/// Each module keeps its own error enum (saying precisely what happened) and
/// implements [`HasErrorKind`]; the HTTP layer and the CLI only look at the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Locked,
    Unprocessable,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// Every kind, for code that must cover them all (problem types, the spec).
    pub const ALL: [ErrorKind; 11] = [
        Self::BadRequest,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::Locked,
        Self::Unprocessable,
        Self::PayloadTooLarge,
        Self::TooManyRequests,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Locked => 423,
            Self::Unprocessable => 422,
            Self::PayloadTooLarge => 413,
            Self::TooManyRequests => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// A stable slug, used in problem `type` URIs and logs.
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::Locked => "locked",
            Self::Unprocessable => "unprocessable",
            Self::PayloadTooLarge => "payload-too-large",
            Self::TooManyRequests => "too-many-requests",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// Implemented by every module error: which [`ErrorKind`] it is.
pub trait HasErrorKind: std::error::Error {
    fn kind(&self) -> ErrorKind;
}

/// Formats an error with its whole `source()` chain on one line: `a: b: c`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Many errors already print their cause; do not repeat it.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_prints_every_cause_once() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&error), "outer: inner");
    }

    #[test]
    fn statuses_are_distinct() {
        let kinds = ErrorKind::ALL;
        let statuses: std::collections::HashSet<u16> =
            kinds.iter().map(|k| k.http_status()).collect();
        assert_eq!(statuses.len(), kinds.len());
    }
}
