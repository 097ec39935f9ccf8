//! axum: the only module that knows HTTP. One router per audience; every error
//! leaves through `problem.rs` as application/problem+json.
// SKELETON: replaced by the real implementation.
