//! sceau-hsm: PKCS#11 (cryptoki), the only crate that talks to HSMs. Token
//! session pools, key generation, signing, the adapter that lets X.509/CMS
//! builders sign, and AES secret keys that encrypt inside the token (envelope
//! encryption).
//!
//! Which token holds which keys is configuration ([`settings::TokenRoles`]):
//! a vendor HSM replaces SoftHSM by pointing `module` at its library. The
//! service re-exports this crate as `sceau::hsm`.
#![forbid(unsafe_code)]

mod keys;
mod pool;
mod secret;
pub mod settings;
mod signer;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use keys::{HsmKey, KeyAlgorithm, KeyId};
pub use pool::TokenPool;
pub use secret::SecretKeyInfo;
pub use signer::{HsmPublicKey, HsmSignature, HsmSigner};

pub use sceau_core::TokenRole;
use sceau_core::crypto;
use sceau_core::error::{ErrorKind, HasErrorKind};
use settings::HsmSettings;

/// What went wrong talking to an HSM. PINs never appear here.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("PKCS#11 module {module} cannot be loaded: {reason}")]
    ModuleLoad { module: String, reason: String },
    #[error("token '{token}' not found in PKCS#11 module {module}")]
    TokenNotFound { token: String, module: String },
    #[error("token for role '{role}': wrong PIN")]
    WrongPin { role: TokenRole },
    #[error("token for role '{role}': the user PIN is locked")]
    PinLocked { role: TokenRole },
    #[error("token for role '{role}' is not opened by this instance")]
    RoleNotOpen { role: TokenRole },
    #[error("key {id} not found on token '{token}'")]
    KeyNotFound { id: KeyId, token: String },
    #[error("key {id} on token '{token}' is unusable: {reason}")]
    UnusableKey {
        id: KeyId,
        token: String,
        reason: String,
    },
    #[error("token '{token}': {operation} failed: {reason}")]
    Pkcs11 {
        token: String,
        operation: &'static str,
        reason: String,
    },
    #[error("{count} secret keys carry the label '{label}' on token '{token}'; expected one")]
    AmbiguousLabel {
        label: String,
        count: usize,
        token: String,
    },
    #[error(
        "decryption with key {id} on token '{token}' failed: the data was altered, or sealed with other associated data or another key"
    )]
    DecryptFailed { id: KeyId, token: String },
    #[error("the HSM returned a signature that does not verify with the key's public key")]
    SignatureCheckFailed,
    #[error(transparent)]
    Pin(#[from] settings::PinError),
    #[error("HSM worker stopped: {0}")]
    Worker(String),
}

impl HasErrorKind for HsmError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::KeyNotFound { .. } => ErrorKind::NotFound,
            Self::SignatureCheckFailed
            | Self::UnusableKey { .. }
            | Self::AmbiguousLabel { .. }
            | Self::DecryptFailed { .. } => ErrorKind::Internal,
            _ => ErrorKind::Unavailable,
        }
    }
}

/// The tokens this instance has opened, by key role. Roles configured on the
/// same token share one pool (and one login).
#[derive(Debug, Clone, Default)]
pub struct Hsm {
    pools: BTreeMap<TokenRole, Arc<TokenPool>>,
}

impl Hsm {
    /// Opens and logs into the tokens of the given roles. Blocking: call it from
    /// `spawn_blocking` or before the runtime starts ([`Hsm::connect`] does that).
    pub fn open(settings: &HsmSettings, roles: &[TokenRole]) -> Result<Self, HsmError> {
        let mut pools: BTreeMap<TokenRole, Arc<TokenPool>> = BTreeMap::new();
        for &role in roles {
            let token = settings.tokens.get(role);
            let shared = pools
                .values()
                .find(|pool| pool.is_same_token(token))
                .cloned();
            let pool = match shared {
                Some(pool) => pool,
                None => Arc::new(TokenPool::open(role, token)?),
            };
            pools.insert(role, pool);
        }
        Ok(Self { pools })
    }

    /// [`Hsm::open`] off the async runtime.
    pub async fn connect(settings: &HsmSettings, roles: &[TokenRole]) -> Result<Self, HsmError> {
        let settings = settings.clone();
        let roles = roles.to_vec();
        tokio::task::spawn_blocking(move || Self::open(&settings, &roles))
            .await
            .map_err(|e| HsmError::Worker(e.to_string()))?
    }

    /// The pool holding the keys of `role`.
    pub fn token(&self, role: TokenRole) -> Result<&Arc<TokenPool>, HsmError> {
        self.pools.get(&role).ok_or(HsmError::RoleNotOpen { role })
    }

    pub fn roles(&self) -> impl Iterator<Item = TokenRole> + '_ {
        self.pools.keys().copied()
    }

    /// Ready means every opened token answers with a logged-in session.
    pub async fn ping(&self) -> Result<(), HsmError> {
        for pool in self.pools.values() {
            pool.clone().ping().await?;
        }
        Ok(())
    }
}
