//! The HSM settings: the module, the tokens of each key role and where
//! their PINs come from (never printed).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use sceau_core::TokenRole;
use sceau_core::error::{ErrorKind, HasErrorKind};

/// A token's PIN that cannot be read: the message names the role and the
/// source, never the PIN.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("PIN for token role '{role}': environment variable {var} is not set")]
    EnvMissing { role: String, var: String },
    #[error("PIN for token role '{role}': cannot read {path}: {reason}")]
    FileUnreadable {
        role: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "PIN for token role '{role}': {path} is open to group or others (mode {mode:o}); make it 0600"
    )]
    FileTooOpen {
        role: String,
        path: PathBuf,
        mode: u32,
    },
}

impl HasErrorKind for PinError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HsmSettings {
    pub tokens: TokenRoles,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenRoles {
    pub root: TokenSettings,
    pub issuing: TokenSettings,
    pub services: TokenSettings,
    pub seal: TokenSettings,
}

impl TokenRoles {
    pub fn get(&self, role: TokenRole) -> &TokenSettings {
        match role {
            TokenRole::Root => &self.root,
            TokenRole::Issuing => &self.issuing,
            TokenRole::Services => &self.services,
            TokenRole::Seal => &self.seal,
        }
    }
}

/// Where one role's keys live: a PKCS#11 module, a token in it, and how to get its PIN.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// Path of the vendor's PKCS#11 shared library.
    pub module: PathBuf,
    /// The token label (preferred) …
    pub token_label: Option<String>,
    /// … or a fixed slot id.
    pub slot: Option<u64>,
    pub pin: PinSource,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            module: PathBuf::from(DEFAULT_SOFTHSM_MODULE),
            token_label: None,
            slot: None,
            pin: PinSource::default(),
        }
    }
}

/// Where SoftHSMv2 installs its module on Debian and Ubuntu.
pub const DEFAULT_SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Where a token's user PIN comes from. Never printed.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum PinSource {
    /// The name of an environment variable holding the PIN.
    Env(String),
    /// A file whose first line is the PIN (mode 0600 expected).
    File(PathBuf),
    /// The PIN itself, for development only.
    Value(SecretString),
}

impl Default for PinSource {
    fn default() -> Self {
        Self::Env("SCEAU_HSM_PIN".to_owned())
    }
}

impl std::fmt::Debug for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(var) => write!(f, "Env({var})"),
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Value(_) => f.write_str("Value([REDACTED])"),
        }
    }
}

impl PinSource {
    /// Reads the PIN now. The role is only used to name the problem.
    pub fn resolve(&self, role: TokenRole) -> Result<SecretString, PinError> {
        match self {
            Self::Env(var) => {
                std::env::var(var)
                    .map(SecretString::from)
                    .map_err(|_| PinError::EnvMissing {
                        role: role.to_string(),
                        var: var.clone(),
                    })
            }
            Self::File(path) => read_pin_file(path, role),
            Self::Value(pin) => Ok(pin.clone()),
        }
    }
}

/// The first line of a PIN file that only its owner can read or write. The
/// mode is read from the opened file, so the file checked is the file read.
fn read_pin_file(path: &std::path::Path, role: TokenRole) -> Result<SecretString, PinError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |e: std::io::Error| PinError::FileUnreadable {
        role: role.to_string(),
        path: path.to_owned(),
        reason: e.kind().to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mode = file.metadata().map_err(unreadable)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PinError::FileTooOpen {
            role: role.to_string(),
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(unreadable)?;
    let pin = SecretString::from(text.lines().next().unwrap_or("").to_owned());
    zeroize::Zeroize::zeroize(&mut text);
    Ok(pin)
}
