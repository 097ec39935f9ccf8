//! sceau: a remote qualified electronic sealing service.
//!
//! The CA generates and keeps each organisation's seal key in its HSM; enterprise
//! servers authenticate with mTLS or OIDC and get CAdES/PAdES seals back; the
//! registration, issuance and revocation back office runs in the same service.
//! See `docs/ARCHITECTURE.md` for the module map and the data flow.
#![forbid(unsafe_code)]

pub mod api;
// The bottom layer is a crate of its own (crates/core); its modules keep their
// paths in the service.
pub use sceau_core::{crypto, error, revocation};
// The HSM layer: the only crate with cryptoki (crates/hsm).
pub use sceau_hsm as hsm;
// The store: the only crate with sqlx (crates/store).
pub use sceau_store as store;
pub mod app;
pub mod auth;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod csc_vocabulary;
pub mod demo;
pub mod journal;
pub mod notify;
pub mod pki;
pub mod ra;
pub mod seal;
pub mod state;
pub mod telemetry;
