//! sceau: a remote qualified electronic sealing service.
//!
//! The CA generates and keeps each organisation's seal key in its HSM; enterprise
//! servers authenticate with mTLS or OIDC and get CAdES/PAdES seals back; the
//! registration, issuance and revocation back office runs in the same service.
//! See `docs/ARCHITECTURE.md` for the module map and the data flow.
#![forbid(unsafe_code)]

/// An engine's constructor (the journal, the issuers, the OCSP responder, the
/// TSA, the RA, the sealer…): `pub(crate)`, so outside tests only the CA
/// layer's factories (`ca::engines`) and `app` build engines, over the keys
/// and certificates the database names. Under the `testing` feature, which
/// tests, benches and `make test` turn on, it is `pub`, so they can build one
/// over keys of their own.
macro_rules! engine_constructor {
    ($(#[$meta:meta])* async fn $name:ident $($rest:tt)*) => {
        $(#[$meta])*
        #[cfg(feature = "testing")]
        pub async fn $name $($rest)*
        $(#[$meta])*
        #[cfg(not(feature = "testing"))]
        pub(crate) async fn $name $($rest)*
    };
    ($(#[$meta:meta])* fn $name:ident $($rest:tt)*) => {
        $(#[$meta])*
        #[cfg(feature = "testing")]
        pub fn $name $($rest)*
        $(#[$meta])*
        #[cfg(not(feature = "testing"))]
        pub(crate) fn $name $($rest)*
    };
}

// The lower layers are crates of their own; their modules keep their paths in
// the service. The bottom layer (crates/core):
pub use sceau_core::{crypto, error, revocation};
// The HSM layer, the only crate with cryptoki (crates/hsm):
pub use sceau_hsm as hsm;
// The store, the only crate with sqlx (crates/store):
pub use sceau_store as store;

pub mod api;
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
pub mod portal;
pub mod ra;
pub mod seal;
pub mod state;
pub mod telemetry;
