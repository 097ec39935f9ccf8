//! The CA side: certificate policies, certificate building and linting, CSR
//! intake, seal and TLS client certificate issuance, the key ceremony, the CA certificates
//! we publish and the CRLs. (OCSP and TSA arrive with later issues.)

pub mod ceremony;
pub mod certificate;
pub mod client_auth;
pub mod crl;
pub mod csr;
pub mod issuance;
pub mod lint;
pub mod policy;
pub mod publication;
pub mod qc;
pub mod subject;
