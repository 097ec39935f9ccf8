//! A SoftHSM of its own for each HSM test: the test re-runs itself in a child
//! process whose SOFTHSM2_CONF points at fresh tokens made by `hsm-sim/`.
//! (SoftHSM reads its configuration once per process, and Rust 2024 makes
//! changing the environment of a running test process unsafe.)

use std::path::{Path, PathBuf};
use std::process::Command;

use sceau::config::{
    DEFAULT_SOFTHSM_MODULE, HsmSettings, PinSource, TokenRole, TokenRoles, TokenSettings,
};

const CHILD_MARKER: &str = "SCEAU_TEST_SOFTHSM_DIR";

/// The tokens the child process sees.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    pub dir: PathBuf,
}

impl SoftHsm {
    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    pub fn module(&self) -> PathBuf {
        PathBuf::from(DEFAULT_SOFTHSM_MODULE)
    }

    pub fn pin_file(&self, label: &str) -> PathBuf {
        self.dir.join("pins").join(format!("{label}.pin"))
    }

    pub fn pin(&self, label: &str) -> String {
        std::fs::read_to_string(self.pin_file(label))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn token(&self, label: &str) -> TokenSettings {
        TokenSettings {
            module: self.module(),
            token_label: Some(label.to_owned()),
            slot: None,
            pin: PinSource::File(self.pin_file(label)),
        }
    }

    /// One token per role, as `hsm-sim/create-tokens.sh` names them.
    pub fn settings(&self) -> HsmSettings {
        HsmSettings {
            tokens: TokenRoles {
                root: self.token(label(TokenRole::Root)),
                issuing: self.token(label(TokenRole::Issuing)),
                services: self.token(label(TokenRole::Services)),
                seal: self.token(label(TokenRole::Seal)),
            },
        }
    }

    /// The labels of every token created.
    pub fn labels(&self) -> Vec<&'static str> {
        TokenRole::ALL.iter().map(|r| label(*r)).collect()
    }
}

pub fn label(role: TokenRole) -> &'static str {
    match role {
        TokenRole::Root => "sceau-root",
        TokenRole::Issuing => "sceau-issuing",
        TokenRole::Services => "sceau-services",
        TokenRole::Seal => "sceau-seal",
    }
}

/// Creates fresh tokens in `dir` with the project's script.
pub fn create_tokens(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm-sim/create-tokens.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .output()
        .expect("run hsm-sim/create-tokens.sh");
    assert!(
        output.status.success(),
        "hsm-sim/create-tokens.sh failed (is softhsm2 installed? `make deps`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// In the parent: makes tokens, re-runs the test `name` in a child with them,
/// asserts that it passed, and returns `None`. In the child: returns the tokens.
///
/// `name` is the test function's path inside its test crate (e.g. `signs_again`).
pub fn isolated(name: &str) -> Option<SoftHsm> {
    if let Ok(dir) = std::env::var(CHILD_MARKER) {
        return Some(SoftHsm {
            dir: PathBuf::from(dir),
        });
    }
    let dir = tempfile::tempdir().unwrap();
    create_tokens(dir.path());
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, dir.path())
        .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "test {name} failed in its SoftHSM child:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "test {name} did not run in its child (wrong name?):\n{stdout}"
    );
    None
}

/// Checks, through PKCS#11 and independently of sceau's code, that every private
/// key on the token is sensitive, never extractable, cannot be read or wrapped,
/// and can neither decrypt, unwrap nor derive. Returns how many keys it checked.
pub fn assert_private_keys_locked_down(hsm: &SoftHsm, token_label: &str) -> usize {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error, RvError};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
    use cryptoki::session::UserType;

    let context = Pkcs11::new(hsm.module()).unwrap();
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == token_label)
        .unwrap_or_else(|| panic!("token {token_label} not found"));
    let session = context.open_rw_session(slot).unwrap();
    let pin = secrecy::SecretString::from(hsm.pin(token_label));
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
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
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
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                    AttributeType::Sign,
                ],
            )
            .unwrap();
        let mut key_type = None;
        for attribute in &attributes {
            match attribute {
                Attribute::KeyType(t) => key_type = Some(*t),
                Attribute::Sensitive(v) => assert!(*v, "CKA_SENSITIVE false"),
                Attribute::AlwaysSensitive(v) => assert!(*v, "CKA_ALWAYS_SENSITIVE false"),
                Attribute::Extractable(v) => assert!(!*v, "CKA_EXTRACTABLE true"),
                Attribute::NeverExtractable(v) => assert!(*v, "CKA_NEVER_EXTRACTABLE false"),
                Attribute::Decrypt(v) => assert!(!*v, "CKA_DECRYPT true"),
                Attribute::Unwrap(v) => assert!(!*v, "CKA_UNWRAP true"),
                Attribute::Derive(v) => assert!(!*v, "CKA_DERIVE true"),
                Attribute::Sign(v) => assert!(*v, "CKA_SIGN false"),
                _ => {}
            }
        }
        assert_eq!(
            attributes.len(),
            9,
            "some attributes missing: {attributes:?}"
        );
        let secret_attributes = match key_type {
            Some(KeyType::RSA) => vec![AttributeType::PrivateExponent, AttributeType::Prime1],
            Some(KeyType::EC) => vec![AttributeType::Value],
            other => panic!("unexpected private key type {other:?}"),
        };
        // C_GetAttributeValue answers CKR_ATTRIBUTE_SENSITIVE: cryptoki reports it as Sensitive.
        let info = session.get_attribute_info(key, &secret_attributes).unwrap();
        for (attribute, info) in secret_attributes.iter().zip(info) {
            assert!(
                matches!(info, AttributeInfo::Sensitive),
                "{attribute:?} readable: {info:?}"
            );
        }
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping_key, key);
        assert!(wrapped.is_err(), "C_WrapKey succeeded on a private key");
    }
    keys.len()
}
