//! The HSM key roles: which token holds which keys is configuration, and the
//! store records each key's role.

/// The key roles; each may live on its own token with its own PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenRole {
    /// The root CA key: may be offline after the ceremony.
    Root,
    /// The issuing (seal) CA key.
    Issuing,
    /// The OCSP responder, time-stamping unit and audit journal keys.
    Services,
    /// The subscribers' CA-managed seal keys.
    Seal,
}

impl TokenRole {
    pub const ALL: [TokenRole; 4] = [Self::Root, Self::Issuing, Self::Services, Self::Seal];

    pub fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Issuing => "issuing",
            Self::Services => "services",
            Self::Seal => "seal",
        }
    }
}

impl std::fmt::Display for TokenRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
