//! The CA side: certificate policies, certificate building and linting, CSR
//! intake, seal and TLS client certificate issuance, the key ceremony, the CA
//! certificates we publish, the CRLs, the OCSP responder, the time-stamping
//! authority, CMS signing and the end of the issuing CA.

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
pub mod termination;
pub mod token_bucket;
pub mod tsa;
