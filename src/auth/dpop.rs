//! DPoP (RFC 9449) for servers' access tokens: the proof JWT that binds a
//! request to the key a token is bound to (`cnf.jkt`), checked on its method,
//! URL, freshness, access token hash, and a `jti` never seen by any instance.

use base64::Engine as _;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::oidc::{ALLOWED_ALGORITHMS, OidcError, refused};
use crate::store::Store;

/// A DPoP proof and the request it came with (RFC 9449 §4.3).
#[derive(Debug, Clone)]
pub struct DpopRequest<'a> {
    pub proof: &'a str,
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// `scheme://host[:port]/path` of the request, without query or fragment.
    pub url: String,
}

/// How old a DPoP proof may be (besides the leeway).
pub const DPOP_MAX_AGE_SECS: i64 = 300;

#[derive(Debug, Deserialize)]
struct DpopClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
}

/// RFC 9449 §4.3: a proof signed by the key the token is bound to, for this
/// method and URL, fresh, for this very token, and never seen before.
pub async fn check(
    store: &Store,
    now: i64,
    leeway: i64,
    token: &str,
    jkt: &str,
    request: &DpopRequest<'_>,
) -> Result<(), OidcError> {
    let header = jsonwebtoken::decode_header(request.proof)
        .map_err(|e| refused(format!("malformed DPoP proof: {e}")))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(refused("the DPoP proof's typ is not dpop+jwt"));
    }
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(refused(format!(
            "DPoP proof algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let jwk = header
        .jwk
        .as_ref()
        .ok_or_else(|| refused("the DPoP proof carries no jwk"))?;
    if jwk_thumbprint(jwk)? != jkt {
        return Err(refused(
            "the DPoP proof is signed by another key than the token is bound to",
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| refused(format!("DPoP key: {e}")))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let proof = jsonwebtoken::decode::<DpopClaims>(request.proof, &key, &validation)
        .map_err(|e| refused(format!("DPoP proof: {e}")))?
        .claims;
    if proof.htm != request.method {
        return Err(refused("the DPoP proof is for another HTTP method"));
    }
    let htu = proof.htu.split(['?', '#']).next().unwrap_or_default();
    if htu != request.url {
        return Err(refused("the DPoP proof is for another URL"));
    }
    let expected_ath =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
    if proof.ath.as_deref() != Some(expected_ath.as_str()) {
        return Err(refused("the DPoP proof is not for this access token (ath)"));
    }
    if proof.iat > now + leeway || proof.iat < now - DPOP_MAX_AGE_SECS - leeway {
        return Err(refused("the DPoP proof is not fresh (iat)"));
    }
    let expires_at =
        time::OffsetDateTime::from_unix_timestamp(now + DPOP_MAX_AGE_SECS + 2 * leeway)
            .map_err(|e| refused(e.to_string()))?;
    let now_time =
        time::OffsetDateTime::from_unix_timestamp(now).map_err(|e| refused(e.to_string()))?;
    let jti = hex::encode(Sha256::digest(format!("{jkt}:{}", proof.jti).as_bytes()));
    if !store
        .remember_dpop_proof(&jti, expires_at, now_time)
        .await?
    {
        return Err(refused("the DPoP proof was used before (jti replay)"));
    }
    Ok(())
}

/// RFC 7638 thumbprint: SHA-256 of the required members, in lexicographic
/// order, without whitespace; base64url.
pub fn jwk_thumbprint(jwk: &jsonwebtoken::jwk::Jwk) -> Result<String, OidcError> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let canonical = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => {
            let curve = match ec.curve {
                EllipticCurve::P256 => "P-256",
                EllipticCurve::P384 => "P-384",
                EllipticCurve::P521 => "P-521",
                EllipticCurve::Ed25519 => "Ed25519",
            };
            format!(
                r#"{{"crv":"{curve}","kty":"EC","x":"{}","y":"{}"}}"#,
                ec.x, ec.y
            )
        }
        AlgorithmParameters::RSA(rsa) => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, rsa.e, rsa.n)
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, okp.x)
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(refused("a DPoP key must be asymmetric"));
        }
    };
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(canonical.as_bytes())))
}
