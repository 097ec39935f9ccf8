//! The CA side: certificate building, the key ceremony, and the CA certificates
//! we publish. (Policies, CRL, OCSP and TSA arrive with later issues.)

pub mod ceremony;
pub mod certificate;
pub mod publication;
