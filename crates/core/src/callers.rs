//! Who an identity provider vouches for: configured per provider, recorded
//! with each organisation's registered provider.

use serde::Deserialize;

/// Who an identity provider vouches for.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Callers {
    /// People: strong when `acr` is one of `acr_values` or `amr` names a second factor.
    People,
    /// Servers: only sender-constrained tokens (RFC 8705 certificate-bound).
    Servers,
}
