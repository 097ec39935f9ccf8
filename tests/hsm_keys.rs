//! Keys generated through sceau's HSM layer are locked down, and its signer
//! produces signatures that independent software verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use sceau::config::TokenRole;
use sceau::crypto;
use sceau::hsm::{Hsm, HsmSigner, KeyAlgorithm};
use signature::Signer;

#[test]
fn every_algorithm_generates_locked_down_keys_that_sign() {
    let Some(softhsm) =
        support::hsm::isolated("every_algorithm_generates_locked_down_keys_that_sign")
    else {
        return;
    };
    let hsm = Hsm::open(&softhsm.settings(), &[TokenRole::Seal]).unwrap();
    let pool = hsm.token(TokenRole::Seal).unwrap().clone();
    for algorithm in [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ] {
        let key = pool
            .generate_key_pair_blocking(&format!("test-{algorithm}"), algorithm)
            .unwrap();
        assert_eq!(key.algorithm, algorithm);
        let found = pool.find_key_blocking(&key.id).unwrap();
        assert_eq!(found, key);
        let signer = HsmSigner::new(Arc::clone(&pool), key.clone());
        let signature: sceau::hsm::HsmSignature = signer.try_sign(b"sealed document").unwrap();
        crypto::verify(
            &key.public_key,
            algorithm.signature_algorithm(),
            b"sealed document",
            &signature.0,
        )
        .unwrap();
        assert!(
            crypto::verify(
                &key.public_key,
                algorithm.signature_algorithm(),
                b"another document",
                &signature.0
            )
            .is_err()
        );
    }
    let checked = support::hsm::assert_private_keys_locked_down(&softhsm, "sceau-seal");
    assert_eq!(checked, 4);
}

#[test]
fn a_missing_key_is_reported_not_retried_forever() {
    let Some(softhsm) = support::hsm::isolated("a_missing_key_is_reported_not_retried_forever")
    else {
        return;
    };
    let hsm = Hsm::open(&softhsm.settings(), &[TokenRole::Services]).unwrap();
    let pool = hsm.token(TokenRole::Services).unwrap();
    let error = pool
        .sign_blocking(
            &sceau::hsm::KeyId::random(),
            crypto::SignatureAlgorithm::EcdsaSha256,
            b"x",
        )
        .unwrap_err();
    assert!(error.to_string().contains("not found"), "{error}");
}

/// Several threads generating and destroying keys on one token at once (CA-managed
/// issuances in parallel) all succeed: SoftHSM's object store would otherwise
/// fail some of them with CKR_GENERAL_ERROR.
#[test]
fn concurrent_key_generation_on_one_token_succeeds() {
    let Some(softhsm) = support::hsm::isolated("concurrent_key_generation_on_one_token_succeeds")
    else {
        return;
    };
    let hsm = Hsm::open(&softhsm.settings(), &[TokenRole::Seal]).unwrap();
    let pool = hsm.token(TokenRole::Seal).unwrap().clone();
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    let label = format!("concurrent-{thread}-{n}");
                    let key = pool
                        .generate_key_pair_blocking(&label, KeyAlgorithm::EcP256)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    if n % 2 == 0 {
                        pool.destroy_key_blocking(&key.id).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // 4 threads × 13 destroyed of 25: 48 keys remain, each found by its label.
    let mut remaining = 0;
    for thread in 0..4 {
        for n in (1..25).step_by(2) {
            remaining += pool
                .key_ids_with_label_blocking(&format!("concurrent-{thread}-{n}"))
                .unwrap()
                .len();
        }
    }
    assert_eq!(remaining, 48);
}
