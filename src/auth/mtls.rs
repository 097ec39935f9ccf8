//! TLS client certificates as activation credentials: the handshake (in `api`)
//! has checked the chain, dates and CRL; here the certificate becomes a principal
//! only if the RCCS registered it, and only for its organisation.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::principal::{AuthError, AuthMethod, Principal, Role, Strength};
use crate::store::{Store, StoreError};

/// The chain the client presented, leaf first, DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(pub Vec<Vec<u8>>);

impl PeerCertificates {
    pub fn leaf(&self) -> Option<&[u8]> {
        self.0.first().map(Vec::as_slice)
    }
}

/// Hex SHA-256 of a certificate's DER: how registrations name it.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The seal client a registered certificate stands for.
pub async fn principal(store: &Store, leaf: &[u8]) -> Result<Principal, PrincipalLookupError> {
    let sha256 = fingerprint(leaf);
    let registrations = store
        .activation_credentials_for_certificate(&sha256)
        .await?;
    let entity = registrations
        .first()
        .map(|registration| registration.entity_id)
        .ok_or_else(|| {
            AuthError::Unauthenticated(
                "this client certificate is not registered as an activation credential".to_owned(),
            )
        })?;
    Ok(Principal {
        id: format!("cert:{sha256}"),
        entity: Some(entity),
        method: AuthMethod::ClientCertificate { sha256 },
        roles: BTreeSet::from([Role::SealClient]),
        // A key held by the client, proven in the handshake: possession, and the
        // CA's checks on issuance, make it strong and dynamic.
        strength: Strength::Strong,
        staff: None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PrincipalLookupError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::HasErrorKind for PrincipalLookupError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            Self::Auth(e) => e.kind(),
            Self::Store(e) => e.kind(),
        }
    }
}
