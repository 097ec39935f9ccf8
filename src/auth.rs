//! Who is calling and what they may do: the one `Principal` type every handler
//! receives, the roles, the permission table, and the ways a principal is
//! established (a registered TLS client certificate, an OIDC access token).
//! Activation of seal credentials (SAD, lockout) lives in `auth::activation`.

pub mod activation;
pub mod capacity;
pub mod dpop;
pub mod mtls;
pub mod oidc;
pub mod principal;
pub mod provider_fetch;
pub mod providers;

pub use principal::{AuthError, AuthMethod, Permission, Principal, Role, Strength};
