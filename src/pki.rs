//! The CA side: the key ceremony, certificate profiles, and the CA certificates we publish.
// SKELETON: replaced by the real implementation.

pub mod publication;
