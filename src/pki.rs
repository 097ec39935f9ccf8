//! The CA side: certificate policies, certificate building and linting, CSR
//! intake, seal and TLS client certificate issuance, the key ceremony, and the CA certificates
//! we publish, and the OCSP responder. (CRL and TSA arrive with later issues.)

pub mod ceremony;
pub mod certificate;
pub mod client_auth;
pub mod csr;
pub mod issuance;
pub mod lint;
pub mod ocsp;
pub mod policy;
pub mod publication;
pub mod qc;
pub mod subject;
