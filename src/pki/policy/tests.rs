//! The certificate policies' unit tests.

use super::file::check_url;
use super::*;

#[test]
fn urls_are_checked() {
    assert!(check_url("https://pki.sceau.eu/pds/en", true).is_ok());
    assert!(check_url("http://pki.sceau.eu/pds/en", true).is_err());
    assert!(check_url("http://ocsp.sceau.eu", false).is_ok());
    assert!(check_url("ftp://pki.sceau.eu", false).is_err());
    assert!(check_url("http:///crl", false).is_err());
    assert!(check_url("http://pki.sceau.eu/a b", false).is_err());
}

#[test]
fn key_policy_names_the_reason() {
    let entity = KeyPolicy {
        generation: KeyGeneration::Entity,
        algorithms: vec![KeyAlgorithm::Rsa4096],
    };
    assert!(entity.accepts(PublicKeyKind::Rsa { bits: 4096 }).is_ok());
    assert!(entity.accepts(PublicKeyKind::Rsa { bits: 8192 }).is_ok());
    let small = entity
        .accepts(PublicKeyKind::Rsa { bits: 2048 })
        .unwrap_err();
    assert!(small.contains("2048") && small.contains("4096"), "{small}");
    assert!(
        entity
            .accepts(PublicKeyKind::EcP256)
            .unwrap_err()
            .contains("ec-p256")
    );
    assert!(entity.accepts(PublicKeyKind::Rsa { bits: 16384 }).is_err());
    let managed = KeyPolicy {
        generation: KeyGeneration::Ca,
        algorithms: vec![KeyAlgorithm::EcP256, KeyAlgorithm::Rsa3072],
    };
    assert_eq!(managed.generated(None).unwrap(), KeyAlgorithm::EcP256);
    assert_eq!(
        managed.generated(Some(KeyAlgorithm::Rsa3072)).unwrap(),
        KeyAlgorithm::Rsa3072
    );
    assert!(managed.generated(Some(KeyAlgorithm::EcP384)).is_err());
}
