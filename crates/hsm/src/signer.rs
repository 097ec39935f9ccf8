//! The adapter that lets the x509-cert and cms builders sign with a key that
//! stays in the token: `signature::Signer` + `Keypair` + `DynSignatureAlgorithmIdentifier`.

use std::sync::Arc;

use der::Encode;
use der::asn1::BitString;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};

use super::{HsmError, HsmKey, TokenPool};
use crate::crypto::{self, SignatureAlgorithm};

/// Signs with one token key. Every signature is checked against the key's
/// public key before it is returned, so an HSM fault never leaves the process.
///
/// The builders call it synchronously: run them inside `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct HsmSigner {
    pool: Arc<TokenPool>,
    key: HsmKey,
    algorithm: SignatureAlgorithm,
}

impl HsmSigner {
    /// A signer using the key's default signature algorithm.
    pub fn new(pool: Arc<TokenPool>, key: HsmKey) -> Self {
        let algorithm = key.algorithm.signature_algorithm();
        Self {
            pool,
            key,
            algorithm,
        }
    }

    pub fn key(&self) -> &HsmKey {
        &self.key
    }

    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Hashes `message`, signs it in the token and verifies the result. Blocking.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let signature = self
            .pool
            .sign_blocking(&self.key.id, self.algorithm, message)?;
        crypto::verify(&self.key.public_key, self.algorithm, message, &signature)
            .map_err(|_| HsmError::SignatureCheckFailed)?;
        Ok(signature)
    }
}

impl crypto::MessageSigner for HsmSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.sign_message(message).map_err(|e| e.to_string())
    }

    fn sign_digest(
        &self,
        scheme: crypto::DigestSignatureScheme,
        digest_algorithm: crypto::DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, String> {
        let signature = self
            .pool
            .sign_prehashed_blocking(&self.key.id, scheme, digest_algorithm, digest)
            .map_err(|e| e.to_string())?;
        crypto::verify_digest(
            &self.key.public_key,
            scheme,
            digest_algorithm,
            digest,
            &signature,
        )
        .map_err(|_| HsmError::SignatureCheckFailed.to_string())?;
        Ok(signature)
    }
}

/// A signature as the builders carry it (DER for ECDSA, raw for RSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmSignature(pub Vec<u8>);

impl SignatureBitStringEncoding for HsmSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

/// The public half of a token key, as the builders need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmPublicKey(pub SubjectPublicKeyInfoOwned);

impl EncodePublicKey for HsmPublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.to_der()?)?)
    }
}

impl signature::Keypair for HsmSigner {
    type VerifyingKey = HsmPublicKey;

    fn verifying_key(&self) -> HsmPublicKey {
        HsmPublicKey(self.key.public_key.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for HsmSigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.algorithm_identifier())
    }
}

impl signature::Signer<HsmSignature> for HsmSigner {
    fn try_sign(&self, message: &[u8]) -> Result<HsmSignature, signature::Error> {
        self.sign_message(message).map(HsmSignature).map_err(|e| {
            // The builders flatten every signer error; say what happened here.
            tracing::error!(key_id = %self.key.id, token = %self.key.token, error = %e, "HSM signing failed");
            signature::Error::from_source(e)
        })
    }
}
