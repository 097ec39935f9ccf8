//! sceau-core: what every layer of sceau shares and that depends on no layer
//! of its own: the error kinds, the public-key checks, the revocation reasons,
//! the HSM key roles and who an identity provider vouches for.
//!
//! The HSM layer (`sceau-hsm`) and the store (`sceau-store`) build on it; the
//! service re-exports its modules under their old paths (`sceau::error`,
//! `sceau::crypto`, `sceau::revocation`).
#![forbid(unsafe_code)]

mod callers;
pub mod crypto;
pub mod error;
pub mod revocation;
mod token_role;

pub use callers::Callers;
pub use token_role::TokenRole;
