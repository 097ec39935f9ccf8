//! The payloads of the access events: activation credentials, activations
//! (SADs), credential locks and identity providers.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Time;

/// What an activation credential is bound to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Binding {
    /// A registered TLS client certificate.
    ClientCertificate { certificate_sha256: String },
    /// An OpenID Connect identity.
    Oidc { issuer: String, subject: String },
}

/// The intent to register an activation credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRegistering {
    pub credential_id: Uuid,
    pub binding: Binding,
}

/// An activation credential registered, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRegistered {
    pub intent: u64,
    pub id: Uuid,
    pub credential_id: Uuid,
    #[serde(flatten)]
    pub binding: Binding,
    /// `active` (a new registration always is).
    pub status: String,
    pub created_by: String,
    pub created_at: Time,
}

/// The intent to revoke an activation credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRevoking {
    pub id: Uuid,
    pub credential_id: Uuid,
}

/// An activation credential revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRevoked {
    pub id: Uuid,
    pub credential_id: Uuid,
    pub intent: u64,
}

/// A SAD granted: for how many signatures, until when, and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationAuthorized {
    pub credential_id: Uuid,
    pub scal: u8,
    pub num_signatures: u32,
    /// The document hashes bound to the SAD (SCAL2; empty for SCAL1).
    pub digests: Vec<String>,
    pub expires_at: Time,
    pub sad_sha256: String,
    /// The principal as authenticated.
    pub principal: Value,
}

/// A SAD extended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationExtended {
    pub credential_id: Uuid,
    pub sad_sha256: String,
    pub expires_at: Time,
    pub principal: Value,
}

/// An activation refused (`locked`, `not entitled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRefused {
    pub credential_id: Uuid,
    pub reason: String,
    pub principal: Value,
}

/// A failed activation, counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationFailed {
    pub credential_id: Uuid,
    pub reason: String,
    pub consecutive_failures: u32,
    pub limit: u32,
    pub principal: Value,
}

/// A credential locked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialLocked {
    pub credential_id: Uuid,
    pub after_failures: u32,
    pub principal: Value,
}

/// A credential unlocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialUnlocked {
    pub credential_id: Uuid,
    pub principal: Value,
}

/// An organisation's identity provider, as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub id: Uuid,
    pub entity_id: Uuid,
    pub issuer: String,
    pub audience: String,
    /// `people` or `servers`.
    pub callers: String,
    pub allowed: Vec<String>,
    pub acr_values: Vec<String>,
    pub disabled: bool,
}

/// A change of an identity provider done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDone {
    pub intent: u64,
    pub provider: Provider,
}
