//! The time to build, sign and verify a CRL with 100,000 revoked entries (each
//! with a reasonCode, one in ten with an invalidityDate): `cargo bench --bench crl`.
//! Signed with a software P-256 key: the CA's single C_Sign in the HSM adds
//! well under a millisecond (P-256) or a few milliseconds (RSA) to these numbers.
//! Under `cargo test --all-targets` (no `--bench`) it runs a 1,000-entry smoke pass.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use der::Decode;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use sceau::crypto::SignatureAlgorithm;
use sceau::pki::crl::{CrlContents, CrlIssuer, CrlSigner, build_crl};
use sceau::revocation::Reason;
use sceau::store::crl::RevokedEntry;
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

struct SoftwareKey(p256::ecdsa::SigningKey);

impl CrlSigner for SoftwareKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaSha256
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signature: p256::ecdsa::Signature = self.0.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

fn main() {
    let entries = if std::env::args().any(|arg| arg == "--bench") {
        100_000
    } else {
        1_000
    };
    let key = SoftwareKey(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng));
    let spki_der = key.0.verifying_key().to_public_key_der().unwrap();
    let public_key = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap();
    let now = SystemTime::now();
    let issuer = CrlIssuer {
        name: Name::from_str("CN=Bench Issuing CA,O=Sceau Example,C=FR").unwrap(),
        key_identifier: vec![0x42; 20],
        not_before: now - Duration::from_secs(86_400),
        public_key,
    };
    let revoked_at = OffsetDateTime::from(now) - time::Duration::hours(1);
    let list: Vec<RevokedEntry> = (0..entries)
        .map(|i: u64| {
            let mut serial = [0u8; 16];
            serial[0] = 0x40;
            serial[8..].copy_from_slice(&i.to_be_bytes());
            RevokedEntry {
                serial: hex::encode(serial),
                revoked_at,
                reason_code: Some(
                    [
                        Reason::KeyCompromise,
                        Reason::AffiliationChanged,
                        Reason::Superseded,
                        Reason::CessationOfOperation,
                    ][(i % 4) as usize],
                ),
                invalidity_date: (i % 10 == 0).then_some(revoked_at - time::Duration::days(1)),
            }
        })
        .collect();
    let contents = CrlContents {
        number: 1,
        this_update: now,
        next_update: now + Duration::from_secs(86_400),
        entries: list,
    };
    let started = Instant::now();
    let der = build_crl(&issuer, &contents, &key).unwrap();
    let elapsed = started.elapsed();
    let parsed = CertificateList::from_der(&der).unwrap();
    assert_eq!(
        parsed.tbs_cert_list.revoked_certificates.unwrap().len() as u64,
        entries
    );
    println!(
        "CRL with {entries} entries: built, signed and verified in {:.1} ms ({} bytes)",
        elapsed.as_secs_f64() * 1000.0,
        der.len()
    );
}
