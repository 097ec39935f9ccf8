//! The CA certificates served over HTTP at stable paths, in DER and PEM.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One published certificate, ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedCertificate {
    /// The stable name in the URL: `root`, `issuing`, `client-auth`, `ocsp`, `tsa`.
    pub name: String,
    pub der: Vec<u8>,
    pub pem: String,
}

/// The set of CA certificates the public endpoints serve; replaced whole when
/// a certificate is renewed (the OCSP responder certificate, say).
#[derive(Debug, Clone, Default)]
pub struct Publication {
    certificates: Arc<RwLock<BTreeMap<String, Arc<PublishedCertificate>>>>,
}

impl Publication {
    pub fn replace(&self, certificates: Vec<PublishedCertificate>) {
        let map = certificates
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect();
        *self
            .certificates
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = map;
    }

    pub fn get(&self, name: &str) -> Option<Arc<PublishedCertificate>> {
        self.certificates
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.certificates
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}
