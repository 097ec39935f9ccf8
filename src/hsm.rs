//! PKCS#11 (cryptoki): the only module that talks to HSMs. Token session pools,
//! key generation, signing, and the adapter that lets X.509/CMS builders sign.
// SKELETON: replaced by the real implementation.

use crate::error::{ErrorKind, HasErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("HSM unavailable: {0}")]
    Unavailable(String),
}

impl HasErrorKind for HsmError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// All the tokens the instance uses, by role.
#[derive(Debug)]
pub struct Hsm {}

impl Hsm {
    /// Ready means every online token answers.
    pub async fn ping(&self) -> Result<(), HsmError> {
        Err(HsmError::Unavailable("skeleton".to_owned()))
    }
}
