//! The evidence vault's HSM key-encryption key is an AES-256 key that never
//! leaves the token, AES-GCM in the HSM refuses altered data, and the vault
//! seals and opens documents, refusing anything tampered with or misbound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use sceau::config::TokenRole;
use sceau::error::{ErrorKind, HasErrorKind};
use sceau::hsm::{Hsm, HsmError, KeyId, TokenPool};
use sceau::ra::evidence::{EvidenceError, EvidenceVault, MediaType};
use support::hsm::SoftHsm;

const TOKEN: TokenRole = TokenRole::Services;

fn pool(softhsm: &SoftHsm) -> Arc<TokenPool> {
    let hsm = Hsm::open(&softhsm.settings(), &[TOKEN]).unwrap();
    hsm.token(TOKEN).unwrap().clone()
}

fn pdf(body: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {body}\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
        .into_bytes()
}

/// Checks through PKCS#11, independently of sceau's code, that the secret keys
/// labelled `label` (returned) have a value that cannot be read or wrapped out.
/// Run it last: dropping this second context finalises the library.
fn assert_secret_keys_locked_down(softhsm: &SoftHsm, label: &str) -> usize {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error, RvError};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
    use cryptoki::session::UserType;

    let token_label = support::hsm::label(TOKEN);
    let context = Pkcs11::new(softhsm.module()).unwrap();
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == token_label)
        .unwrap();
    let session = context.open_rw_session(slot).unwrap();
    let pin = secrecy::SecretString::from(softhsm.pin(token_label));
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    let wrapping_key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    for &key in &keys {
        let attributes = session
            .get_attributes(
                key,
                &[
                    AttributeType::KeyType,
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Token,
                    AttributeType::Private,
                ],
            )
            .unwrap();
        for attribute in &attributes {
            match attribute {
                Attribute::KeyType(t) => assert_eq!(*t, KeyType::AES),
                Attribute::Sensitive(v) => assert!(*v, "CKA_SENSITIVE false"),
                Attribute::AlwaysSensitive(v) => assert!(*v, "CKA_ALWAYS_SENSITIVE false"),
                Attribute::Extractable(v) => assert!(!*v, "CKA_EXTRACTABLE true"),
                Attribute::NeverExtractable(v) => assert!(*v, "CKA_NEVER_EXTRACTABLE false"),
                Attribute::Token(v) => assert!(*v, "CKA_TOKEN false"),
                Attribute::Private(v) => assert!(*v, "CKA_PRIVATE false"),
                _ => {}
            }
        }
        assert_eq!(
            attributes.len(),
            7,
            "some attributes missing: {attributes:?}"
        );
        let info = session
            .get_attribute_info(key, &[AttributeType::Value])
            .unwrap();
        assert!(
            matches!(info[0], AttributeInfo::Sensitive),
            "CKA_VALUE readable: {info:?}"
        );
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping_key, key);
        assert!(wrapped.is_err(), "C_WrapKey succeeded on the secret key");
    }
    keys.len()
}

#[test]
fn wrapping_key_is_locked_down_and_found_again_under_concurrency() {
    let Some(softhsm) =
        support::hsm::isolated("wrapping_key_is_locked_down_and_found_again_under_concurrency")
    else {
        return;
    };
    let pool = pool(&softhsm);
    let label = "sceau-evidence-kek";
    // Eight threads ask at once: exactly one key is made and all get its id.
    let ids: Vec<KeyId> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| pool.ensure_wrapping_key_blocking(label).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(pool.ensure_wrapping_key_blocking(label).unwrap(), ids[0]);
    // Another label is another key.
    let other = pool.ensure_wrapping_key_blocking("other-kek").unwrap();
    assert_ne!(other, ids[0]);

    let info = pool.secret_key_info_blocking(&ids[0]).unwrap();
    assert_eq!(info.id, ids[0]);
    assert_eq!(info.label, label);
    assert_eq!(info.value_len, 32, "AES-256");
    assert!(info.sensitive && info.always_sensitive, "{info:?}");
    assert!(!info.extractable && info.never_extractable, "{info:?}");
    assert!(info.token_object && info.private, "{info:?}");
    assert!(info.encrypt && info.decrypt, "{info:?}");
    assert!(!info.wrap && !info.unwrap, "{info:?}");
    assert!(info.is_locked_down());
    // An id the token does not hold is reported, not guessed at.
    let error = pool.secret_key_info_blocking(&KeyId::random()).unwrap_err();
    assert!(matches!(error, HsmError::KeyNotFound { .. }), "{error}");

    assert_eq!(assert_secret_keys_locked_down(&softhsm, label), 1);
}

#[test]
fn aes_gcm_in_the_hsm_round_trips_and_refuses_altered_data() {
    let Some(softhsm) =
        support::hsm::isolated("aes_gcm_in_the_hsm_round_trips_and_refuses_altered_data")
    else {
        return;
    };
    let pool = pool(&softhsm);
    let key = pool.ensure_wrapping_key_blocking("kek-a").unwrap();
    let other_key = pool.ensure_wrapping_key_blocking("kek-b").unwrap();
    let plaintext = [0x5au8; 32];
    let aad = b"document 0199";

    let blob = pool
        .encrypt_with_secret_key_blocking(&key, &plaintext, aad)
        .unwrap();
    assert_eq!(blob.len(), 12 + 32 + 16, "iv ‖ ciphertext ‖ tag");
    assert_ne!(&blob[12..44], plaintext.as_slice());
    assert_eq!(
        pool.decrypt_with_secret_key_blocking(&key, &blob, aad)
            .unwrap(),
        plaintext
    );
    // A fresh IV each time.
    let again = pool
        .encrypt_with_secret_key_blocking(&key, &plaintext, aad)
        .unwrap();
    assert_ne!(blob[..12], again[..12]);
    assert_ne!(blob, again);

    let refused = |blob: &[u8], aad: &[u8], key: &KeyId| {
        let error = pool
            .decrypt_with_secret_key_blocking(key, blob, aad)
            .unwrap_err();
        assert!(
            matches!(error, HsmError::DecryptFailed { .. }),
            "expected DecryptFailed, got {error}"
        );
        assert_eq!(error.kind(), ErrorKind::Internal);
    };
    // One flipped bit in the IV, the ciphertext or the tag.
    for position in [0, 11, 12, 43, 44, blob.len() - 1] {
        let mut tampered = blob.clone();
        tampered[position] ^= 0x01;
        refused(&tampered, aad, &key);
    }
    refused(&blob, b"document 0200", &key);
    refused(&blob, b"", &key);
    refused(&blob[..blob.len() - 1], aad, &key);
    refused(&blob[..20], aad, &key);
    refused(&[], aad, &key);
    refused(&blob, aad, &other_key);
    // The key still works after all those failures.
    assert_eq!(
        pool.decrypt_with_secret_key_blocking(&key, &again, aad)
            .unwrap(),
        plaintext
    );
    // Larger payloads and empty AAD work too.
    let big = vec![7u8; 100_000];
    let sealed = pool
        .encrypt_with_secret_key_blocking(&key, &big, b"")
        .unwrap();
    assert_eq!(
        pool.decrypt_with_secret_key_blocking(&key, &sealed, b"")
            .unwrap(),
        big
    );
}

#[tokio::test]
async fn the_vault_seals_and_opens_documents_and_refuses_tampering() {
    let Some(softhsm) =
        support::hsm::isolated("the_vault_seals_and_opens_documents_and_refuses_tampering")
    else {
        return;
    };
    let pool = pool(&softhsm);
    let label = format!("sceau-{}", EvidenceVault::KEK_LABEL_SUFFIX);
    let vault = EvidenceVault::open(pool.clone(), label.clone())
        .await
        .unwrap();
    let document = pdf("Kbis extract of Société Exemple");
    let context = b"evidence/0199-0001";
    let sealed = vault
        .seal(document.clone(), 1 << 20, context)
        .await
        .unwrap();
    assert_eq!(sealed.media_type, MediaType::Pdf);
    assert_eq!(sealed.size, document.len() as u64);
    assert_eq!(sealed.kek_label, label);
    assert_eq!(sealed.wrapped_key.len(), 12 + 32 + 16);
    assert_eq!(sealed.ciphertext.len(), 12 + document.len() + 16);
    use sha2::Digest;
    assert_eq!(
        sealed.sha256,
        <[u8; 32]>::from(sha2::Sha256::digest(&document))
    );
    assert!(
        !sealed
            .ciphertext
            .windows(5)
            .any(|w| w == b"Kbis " || w == b"%PDF-"),
        "plaintext visible in the ciphertext"
    );
    assert!(!format!("{sealed:?}").contains("Kbis"));
    assert_eq!(vault.unseal(&sealed, context).await.unwrap(), document);

    // Two seals of one document share neither data key nor nonce.
    let twice = vault
        .seal(document.clone(), 1 << 20, context)
        .await
        .unwrap();
    assert_ne!(twice.wrapped_key, sealed.wrapped_key);
    assert_ne!(twice.ciphertext, sealed.ciphertext);

    // A vault opened again (a restart) finds the same key and opens old documents.
    let reopened = EvidenceVault::open(pool.clone(), label.clone())
        .await
        .unwrap();
    assert_eq!(reopened.kek_id(), vault.kek_id());
    assert_eq!(reopened.unseal(&sealed, context).await.unwrap(), document);

    // Tampering, in each part.
    let mut bad_ciphertext = sealed.clone();
    let middle = bad_ciphertext.ciphertext.len() / 2;
    bad_ciphertext.ciphertext[middle] ^= 0x80;
    let error = vault.unseal(&bad_ciphertext, context).await.unwrap_err();
    assert!(matches!(error, EvidenceError::Integrity(_)), "{error}");

    let mut bad_key = sealed.clone();
    bad_key.wrapped_key[20] ^= 0x01;
    let error = vault.unseal(&bad_key, context).await.unwrap_err();
    assert!(
        matches!(error, EvidenceError::Hsm(HsmError::DecryptFailed { .. })),
        "{error}"
    );

    let mut swapped_key = sealed.clone();
    swapped_key.wrapped_key = twice.wrapped_key.clone();
    let error = vault.unseal(&swapped_key, context).await.unwrap_err();
    assert!(matches!(error, EvidenceError::Integrity(_)), "{error}");

    let mut bad_digest = sealed.clone();
    bad_digest.sha256[0] ^= 0x01;
    let error = vault.unseal(&bad_digest, context).await.unwrap_err();
    assert!(matches!(error, EvidenceError::Integrity(_)), "{error}");

    let mut bad_type = sealed.clone();
    bad_type.media_type = MediaType::Png;
    let error = vault.unseal(&bad_type, context).await.unwrap_err();
    assert!(matches!(error, EvidenceError::Integrity(_)), "{error}");

    // Bound to its context: it cannot be opened as another document.
    let error = vault
        .unseal(&sealed, b"evidence/0199-0002")
        .await
        .unwrap_err();
    assert!(
        matches!(error, EvidenceError::Hsm(HsmError::DecryptFailed { .. })),
        "{error}"
    );

    // A vault with another KEK refuses it without trying.
    let other = EvidenceVault::open(pool.clone(), "other-evidence-kek".to_owned())
        .await
        .unwrap();
    let error = other.unseal(&sealed, context).await.unwrap_err();
    assert!(matches!(error, EvidenceError::WrongKek { .. }), "{error}");
    let mut relabelled = sealed.clone();
    relabelled.kek_label = "other-evidence-kek".to_owned();
    let error = other.unseal(&relabelled, context).await.unwrap_err();
    assert!(
        matches!(error, EvidenceError::Hsm(HsmError::DecryptFailed { .. })),
        "{error}"
    );

    // Refusals before any encryption: size first, then content.
    let error = vault.seal(document.clone(), 64, context).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PayloadTooLarge);
    assert!(error.to_string().contains("limit of 64 bytes"), "{error}");
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend_from_slice(&[0x90; 256]);
    let error = vault.seal(elf, 1 << 20, context).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unprocessable);
    assert_eq!(
        error.to_string(),
        "the document is not a PDF, JPEG or PNG file (its content starts like an executable)"
    );
    let error = vault.seal(Vec::new(), 1 << 20, context).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unprocessable);

    assert_eq!(assert_secret_keys_locked_down(&softhsm, &label), 1);
}
