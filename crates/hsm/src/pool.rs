//! One token's pool of logged-in sessions: opens, logs in, caches key handles,
//! and recovers from sessions lost under it without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;
use zeroize::Zeroize;

use super::HsmError;
use super::keys::{self, HsmKey, KeyAlgorithm, KeyId};
use super::secret::{self, SecretKeyInfo};
use crate::TokenRole;
use crate::crypto::{DigestAlgorithm, DigestSignatureScheme, SignatureAlgorithm};
use crate::settings::TokenSettings;

mod secret_keys;

/// Sessions kept open and logged in when idle. A token's login lives as long as
/// one session does, so the pool never lets the last one go.
const MAX_IDLE_SESSIONS: usize = 16;
/// One try, then up to two recoveries (re-open, re-login, re-initialise).
const MAX_ATTEMPTS: usize = 3;

/// A loaded PKCS#11 library. `C_Initialize` is once per process and library,
/// so contexts are shared by module path.
#[derive(Debug)]
struct Module {
    path: PathBuf,
    context: Pkcs11,
}

impl Module {
    fn load(path: &Path) -> Result<Arc<Module>, HsmError> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let mut modules = MODULES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(module) = modules.get(path) {
            return Ok(module.clone());
        }
        let module_error = |reason: String| HsmError::ModuleLoad {
            module: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            return Err(module_error("no such file".to_owned()));
        }
        let context = Pkcs11::new(path).map_err(|e| module_error(e.to_string()))?;
        let module = Arc::new(Module {
            path: path.to_owned(),
            context,
        });
        module
            .initialize()
            .map_err(|e| module_error(e.to_string()))?;
        modules.insert(path.to_owned(), module.clone());
        Ok(module)
    }

    /// Initialises the library; "already initialised" (by us or a vendor agent) is fine.
    fn initialize(&self) -> Result<(), CkError> {
        match self
            .context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// How the configuration names the token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenSelector {
    Label(String),
    SlotId(u64),
}

/// Why one attempt at an operation failed.
#[derive(Debug)]
pub(super) enum AttemptError {
    Pkcs11(CkError),
    /// The key is not visible: absent, or hidden because the login was lost.
    KeyMissing(KeyId),
    /// Anything that retrying cannot fix.
    Fatal(HsmError),
}

impl From<CkError> for AttemptError {
    fn from(error: CkError) -> Self {
        Self::Pkcs11(error)
    }
}

impl From<HsmError> for AttemptError {
    fn from(error: HsmError) -> Self {
        Self::Fatal(error)
    }
}

/// A pool of sessions on one token, kept logged in.
pub struct TokenPool {
    role: TokenRole,
    module: Arc<Module>,
    selector: TokenSelector,
    /// The token's label, for messages.
    token: String,
    slot: Mutex<Slot>,
    pin: SecretString,
    idle: Mutex<Vec<Session>>,
    /// Private-key handles by key id. Handles stay valid across sessions while
    /// the login lasts; the cache is cleared on every recovery.
    handles: Mutex<HashMap<KeyId, ObjectHandle>>,
    /// Secret-key handles by key id, kept apart so that a secret key's id can
    /// never be taken for a private key's (and the other way round).
    secret_handles: Mutex<HashMap<KeyId, ObjectHandle>>,
    /// C_Sign calls made on this token (attempts included), so tests and audits
    /// can tell that nothing was signed.
    sign_calls: AtomicU64,
    /// Held while objects are created or destroyed. SoftHSM's file object store
    /// fails (CKR_GENERAL_ERROR) when two sessions create token objects at once
    /// (SoftHSMv2 #573); key generation is rare next to signing, so it waits.
    object_changes: Mutex<()>,
}

impl std::fmt::Debug for TokenPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPool")
            .field("role", &self.role)
            .field("module", &self.module.path)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl TokenPool {
    /// Loads the module, finds the token, and logs in once to check the PIN.
    pub fn open(role: TokenRole, settings: &TokenSettings) -> Result<Self, HsmError> {
        let module = Module::load(&settings.module)?;
        let selector = match (&settings.token_label, settings.slot) {
            (Some(label), _) => TokenSelector::Label(label.clone()),
            (None, Some(slot)) => TokenSelector::SlotId(slot),
            (None, None) => {
                return Err(HsmError::TokenNotFound {
                    token: "(none configured)".to_owned(),
                    module: settings.module.display().to_string(),
                });
            }
        };
        let pin = settings.pin.resolve(role)?;
        let (slot, token) = find_slot(&module, &selector)?;
        let pool = Self {
            role,
            module,
            selector,
            token,
            slot: Mutex::new(slot),
            pin,
            idle: Mutex::new(Vec::new()),
            handles: Mutex::new(HashMap::new()),
            secret_handles: Mutex::new(HashMap::new()),
            sign_calls: AtomicU64::new(0),
            object_changes: Mutex::new(()),
        };
        // Open and keep the first session: it proves the PIN and holds the login.
        let session = pool.open_session()?;
        pool.release(session);
        Ok(pool)
    }

    /// Whether `settings` names this pool's token (so roles can share it).
    pub(super) fn is_same_token(&self, settings: &TokenSettings) -> bool {
        let selector = match (&settings.token_label, settings.slot) {
            (Some(label), _) => TokenSelector::Label(label.clone()),
            (None, Some(slot)) => TokenSelector::SlotId(slot),
            (None, None) => return false,
        };
        self.module.path == settings.module && self.selector == selector
    }

    pub fn role(&self) -> TokenRole {
        self.role
    }

    /// The token label, as the token reports it.
    pub fn token_label(&self) -> &str {
        &self.token
    }

    /// How many times C_Sign was called on this token since it was opened.
    pub fn sign_calls(&self) -> u64 {
        self.sign_calls.load(Ordering::Relaxed)
    }

    /// The module path this token is reached through.
    pub fn module_path(&self) -> &Path {
        &self.module.path
    }

    fn slot(&self) -> Slot {
        *self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_session(&self) -> Result<Session, HsmError> {
        let session = self
            .module
            .context
            .open_rw_session(self.slot())
            .map_err(|e| self.pkcs11_error("C_OpenSession", &e))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                Err(HsmError::WrongPin { role: self.role })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                Err(HsmError::PinLocked { role: self.role })
            }
            Err(e) => Err(self.pkcs11_error("C_Login", &e)),
        }
    }

    fn checkout(&self) -> Result<Session, HsmError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match idle {
            Some(session) => Ok(session),
            None => self.open_session(),
        }
    }

    fn release(&self, session: Session) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
        // Otherwise the session is dropped, which closes it; others keep the login.
    }

    /// Forgets every session and cached handle, and re-initialises the library
    /// when it was finalised under us (an HSM client restart).
    fn recover(&self, cause: &AttemptError) {
        tracing::warn!(token = %self.token, cause = ?cause, "HSM sessions lost; reconnecting");
        let stale: Vec<Session> = std::mem::take(
            &mut *self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        // Closing a dead handle fails; cryptoki logs it on drop and that is all.
        drop(stale);
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        self.secret_handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        if matches!(
            cause,
            AttemptError::Pkcs11(CkError::Pkcs11(RvError::CryptokiNotInitialized, _))
        ) && let Err(e) = self.module.initialize()
        {
            tracing::error!(token = %self.token, error = %e, "re-initialising the PKCS#11 module failed");
        }
        match find_slot(&self.module, &self.selector) {
            Ok((slot, _)) => {
                *self
                    .slot
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = slot;
            }
            Err(e) => tracing::error!(token = %self.token, error = %e, "token not found again"),
        }
    }

    /// Runs `operation` on a logged-in session, recovering from lost sessions,
    /// lost logins and a re-initialised library. Blocking.
    pub(super) fn with_session<T>(
        &self,
        name: &'static str,
        operation: impl Fn(&Self, &Session) -> Result<T, AttemptError>,
    ) -> Result<T, HsmError> {
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            let session = match self.checkout() {
                Ok(session) => session,
                Err(e @ (HsmError::WrongPin { .. } | HsmError::PinLocked { .. })) => return Err(e),
                Err(e) => {
                    let cause = AttemptError::Fatal(e);
                    self.recover(&cause);
                    last = Some(cause);
                    continue;
                }
            };
            match operation(self, &session) {
                Ok(value) => {
                    self.release(session);
                    return Ok(value);
                }
                Err(AttemptError::Fatal(e)) => {
                    self.release(session);
                    return Err(e);
                }
                Err(cause) if is_recoverable(&cause) => {
                    drop(session);
                    self.recover(&cause);
                    last = Some(cause);
                }
                Err(AttemptError::Pkcs11(e)) => {
                    self.release(session);
                    return Err(self.pkcs11_error(name, &e));
                }
                Err(AttemptError::KeyMissing(id)) => {
                    self.release(session);
                    return Err(HsmError::KeyNotFound {
                        id,
                        token: self.token.clone(),
                    });
                }
            }
        }
        Err(match last {
            Some(AttemptError::KeyMissing(id)) => HsmError::KeyNotFound {
                id,
                token: self.token.clone(),
            },
            Some(AttemptError::Pkcs11(e)) => self.pkcs11_error(name, &e),
            Some(AttemptError::Fatal(e)) => e,
            None => HsmError::Worker("no attempt was made".to_owned()),
        })
    }

    pub(super) fn pkcs11_error(&self, operation: &'static str, error: &CkError) -> HsmError {
        let reason = match error {
            // The RvError's Display is a paragraph of the standard; its name is enough.
            CkError::Pkcs11(rv, _) => format!("{rv:?}"),
            other => other.to_string(),
        };
        HsmError::Pkcs11 {
            token: self.token.clone(),
            operation,
            reason,
        }
    }

    /// The private key handle for `id`, from the cache or the token.
    pub(super) fn private_key(
        &self,
        session: &Session,
        id: &KeyId,
    ) -> Result<ObjectHandle, AttemptError> {
        if let Some(handle) = self
            .handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
        {
            return Ok(*handle);
        }
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])?;
        let handle = *found.first().ok_or(AttemptError::KeyMissing(*id))?;
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(*id, handle);
        Ok(handle)
    }

    /// The AES secret key handle for `id`, from the cache or the token.
    fn secret_key(&self, session: &Session, id: &KeyId) -> Result<ObjectHandle, AttemptError> {
        if let Some(handle) = self
            .secret_handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
        {
            return Ok(*handle);
        }
        let handle = secret::find_by_id(session, id)?;
        self.secret_handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(*id, handle);
        Ok(handle)
    }

    /// Checks that the token answers with a logged-in session. Blocking.
    pub fn ping_blocking(&self) -> Result<(), HsmError> {
        self.with_session("C_GetSessionInfo", |_, session| {
            let info = session.get_session_info()?;
            match info.session_state() {
                SessionState::RoUser | SessionState::RwUser => Ok(()),
                _ => Err(AttemptError::Pkcs11(CkError::Pkcs11(
                    RvError::UserNotLoggedIn,
                    cryptoki::context::Function::GetSessionInfo,
                ))),
            }
        })
    }

    pub async fn ping(self: Arc<Self>) -> Result<(), HsmError> {
        run_blocking(move || self.ping_blocking()).await
    }

    /// Generates a key pair that never leaves the token. Blocking.
    pub fn generate_key_pair_blocking(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<HsmKey, HsmError> {
        let id = KeyId::random();
        let _changing = self
            .object_changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.with_session("C_GenerateKeyPair", |pool, session| {
            keys::generate(pool, session, id, label, algorithm)
        })
    }

    pub async fn generate_key_pair(
        self: Arc<Self>,
        label: String,
        algorithm: KeyAlgorithm,
    ) -> Result<HsmKey, HsmError> {
        run_blocking(move || self.generate_key_pair_blocking(&label, algorithm)).await
    }

    /// Looks a key pair up by id and reads its public key. Blocking.
    pub fn find_key_blocking(&self, id: &KeyId) -> Result<HsmKey, HsmError> {
        self.with_session("C_FindObjects", |pool, session| {
            pool.private_key(session, id)?;
            keys::read(pool, session, *id)
        })
    }

    pub async fn find_key(self: Arc<Self>, id: KeyId) -> Result<HsmKey, HsmError> {
        run_blocking(move || self.find_key_blocking(&id)).await
    }

    /// The ids of the private keys carrying `label`. Blocking.
    pub fn key_ids_with_label_blocking(&self, label: &str) -> Result<Vec<KeyId>, HsmError> {
        self.with_session("C_FindObjects", |_, session| {
            let handles = session.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            let mut ids = Vec::new();
            for handle in handles {
                if let Some(id) = keys::key_id_of(session, handle)? {
                    ids.push(id);
                }
            }
            Ok(ids)
        })
    }

    /// Signs `message` (hashed here, then signed in the token). Blocking.
    pub fn sign_blocking(
        &self,
        key: &KeyId,
        algorithm: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let digest = algorithm.digest().digest(message);
        self.sign_digest_blocking(key, algorithm, &digest)
    }

    /// Signs a digest already computed with `algorithm`'s hash. Returns DER for
    /// ECDSA and the raw signature for RSA, as X.509 and CMS carry them. Blocking.
    pub fn sign_digest_blocking(
        &self,
        key: &KeyId,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.with_session("C_Sign", |pool, session| {
            let handle = pool.private_key(session, key)?;
            pool.sign_calls.fetch_add(1, Ordering::Relaxed);
            keys::sign_digest(session, handle, algorithm, digest)
        })
    }

    /// Signs a digest the client made, with the scheme it asked for (CSC
    /// `signHash`). Blocking.
    pub fn sign_prehashed_blocking(
        &self,
        key: &KeyId,
        scheme: DigestSignatureScheme,
        digest_algorithm: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        if digest.len() != digest_algorithm.digest(b"").len() {
            return Err(HsmError::Worker(format!(
                "digest is {} bytes, {digest_algorithm:?} makes {}",
                digest.len(),
                digest_algorithm.digest(b"").len()
            )));
        }
        self.with_session("C_Sign", |pool, session| {
            let handle = pool.private_key(session, key)?;
            pool.sign_calls.fetch_add(1, Ordering::Relaxed);
            keys::sign_prehashed(session, handle, scheme, digest_algorithm, digest)
        })
    }

    pub async fn sign(
        self: Arc<Self>,
        key: KeyId,
        algorithm: SignatureAlgorithm,
        message: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        run_blocking(move || self.sign_blocking(&key, algorithm, &message)).await
    }

    /// Destroys a key pair (private and public objects). Blocking.
    pub fn destroy_key_blocking(&self, id: &KeyId) -> Result<(), HsmError> {
        let _changing = self
            .object_changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.with_session("C_DestroyObject", |pool, session| {
            let objects = session.find_objects(&[Attribute::Id(id.as_bytes().to_vec())])?;
            for object in objects {
                session.destroy_object(object)?;
            }
            pool.handles
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(id);
            pool.secret_handles
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(id);
            Ok(())
        })
    }
}

fn is_recoverable(cause: &AttemptError) -> bool {
    match cause {
        AttemptError::KeyMissing(_) => true,
        AttemptError::Pkcs11(CkError::Pkcs11(rv, _)) => matches!(
            rv,
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::DeviceError
        ),
        _ => false,
    }
}

fn find_slot(module: &Module, selector: &TokenSelector) -> Result<(Slot, String), HsmError> {
    let not_found = |token: String| HsmError::TokenNotFound {
        token,
        module: module.path.display().to_string(),
    };
    let slots = module
        .context
        .get_slots_with_initialized_token()
        .map_err(|e| HsmError::ModuleLoad {
            module: module.path.display().to_string(),
            reason: e.to_string(),
        })?;
    for slot in slots {
        let Ok(info) = module.context.get_token_info(slot) else {
            continue;
        };
        let label = info.label().trim_end().to_owned();
        let matches = match selector {
            TokenSelector::Label(wanted) => label == *wanted,
            TokenSelector::SlotId(id) => slot.id() == *id,
        };
        if matches {
            return Ok((slot, label));
        }
    }
    Err(not_found(match selector {
        TokenSelector::Label(label) => label.clone(),
        TokenSelector::SlotId(id) => format!("slot {id}"),
    }))
}

/// Runs HSM work on tokio's blocking pool so it never stalls the async runtime.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HsmError> + Send + 'static,
) -> Result<T, HsmError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HsmError::Worker(e.to_string()))?
}
