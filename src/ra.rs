//! The registration authority: organisations (SIREN/SIRET), the certificate
//! request's lifecycle and, with later work, evidence, acceptance, renewal,
//! revocation requests and notices. Only the RA asks the CA to issue.

pub mod dossier;
pub mod evidence;
pub mod identifiers;
pub mod registry;
pub mod request;
pub mod templates;
