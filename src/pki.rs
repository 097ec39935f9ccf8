//! The CA side: certificate policies, certificate building and linting, CSR
//! intake, seal and TLS client certificate issuance, the key ceremony, the CA
//! certificates we publish, the CRLs, the OCSP responder, the time-stamping
//! authority, and CMS signing.

pub mod ceremony;
pub mod certificate;
pub mod client_auth;
pub mod cms;
pub mod crl;
pub mod csr;
pub mod issuance;
pub mod lint;
pub mod ocsp;
pub mod policy;
pub mod publication;
pub mod qc;
pub mod serials;
pub mod service_certificate;
pub mod signing;
pub mod subject;
pub mod token_bucket;
pub mod tsa;
