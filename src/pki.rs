//! The CA side: certificate policies, certificate building and linting, CSR
//! intake, seal and TLS client certificate issuance, the key ceremony, the CA
//! certificates we publish, the CRLs and the OCSP responder. (The TSA arrives
//! with a later issue.)

pub mod ceremony;
pub mod certificate;
pub mod client_auth;
pub mod crl;
pub mod csr;
pub mod issuance;
pub mod lint;
pub mod ocsp;
pub mod policy;
pub mod publication;
pub mod qc;
pub mod subject;
