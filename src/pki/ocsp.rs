//! The OCSP responder (RFC 6960, RFC 5019 profile) for the issuing CA: parses
//! requests, answers from a cache of signed responses while the status
//! generation it was made at is current (`store::status`), else reads the
//! certificate's status (the reads of concurrent requests in one query), and
//! signs with the delegated responder key (id-pkix-ocsp-nocheck) in the HSM,
//! within a bound for requests that need a fresh signature.
//!
//! A cached response is served without reading the database only while this
//! instance's view of the status generation is within its lease: the view is
//! renewed by every status read, and ahead of its end by one background read
//! of the generation while requests keep coming. A revocation returns only
//! once the lease has run out since its commit, so it is never answered
//! "good" by any instance after that.
//!
//! Choices where RFC 6960 leaves room:
//! - a CertID whose issuer hashes match no CA we run gets `unauthorized` (RFC 5019
//!   §2.2.3): we cannot say "unknown" for a CA we are not the responder of. The
//!   client-auth CA is not served (its certificates carry no OCSP URL, and the
//!   delegated responder is certified by the issuing CA only): `unauthorized`.
//! - a CertID hashed with anything but SHA-1 or SHA-256 gets `malformedRequest`:
//!   we cannot tell which CA it names.
//! - a serial number the CA never issued is `unknown`, never `good`.
//! - a nonce (RFC 8954) must be 1 to 32 octets, else `malformedRequest`.
//! - once the CA is terminated, each certificate's answer is the final response
//!   its CA key signed (valid until 99991231235959Z), whatever the request's
//!   nonce; a serial with no final response, or a request naming several
//!   certificates, gets `unauthorized`: no key may sign for that CA any more.

use std::collections::HashMap;

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use der::asn1::OctetString;
use der::{Decode, Encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_ocsp::builder::OcspResponseBuilder;
use x509_ocsp::ext::{ArchiveCutoff, Nonce};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, RevokedInfo, SingleResponse,
};

use super::token_bucket::TokenBucket;
use crate::clock::SharedClock;
use crate::clock::format::http_date;
use crate::config::{OcspOverLimit, OcspSettings};
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{HsmSignature, HsmSigner};
use crate::revocation::Reason;
use crate::store::status::{CertificateStatus, SerialStatus};
use crate::store::{Store, StoreError};

mod answer;
mod key;
mod reads;
mod response;
mod served;

use answer::*;
pub use answer::{Cacheable, OcspAnswer};
pub use key::ResponderKey;
use reads::*;
pub use response::final_response;
use response::*;
pub use served::{CertIdHash, ServedCa};

/// Most certificates one request may ask about.
pub const MAX_CERTIFICATES_PER_REQUEST: usize = 8;
/// Longest nonce accepted (RFC 8954 §2.1).
pub const MAX_NONCE_OCTETS: usize = 32;
/// Most signed responses kept; past it, stale ones go, then all.
const MAX_CACHED_RESPONSES: usize = 100_000;

/// `application/ocsp-request`, `application/ocsp-response`.
pub const REQUEST_MEDIA_TYPE: &str = "application/ocsp-request";
pub const RESPONSE_MEDIA_TYPE: &str = "application/ocsp-response";

#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    #[error("the {0} certificate cannot be read: {1}")]
    Certificate(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing the response failed: {0}")]
    Signing(String),
    #[error("the signed response does not verify with the responder certificate")]
    Verification,
    #[error("internal: {0}")]
    Internal(String),
}

impl HasErrorKind for OcspError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: SharedClock,
    settings: OcspSettings,
    cas: Vec<ServedCa>,
    key: RwLock<Arc<ResponderKey>>,
    cache: Mutex<HashMap<Vec<u8>, Arc<Cached>>>,
    /// The same entries by the exact DER of a request they answered (one
    /// CertID, no nonce): a repeated request is answered without decoding it.
    by_request: Mutex<HashMap<Vec<u8>, Arc<Cached>>>,
    status_reads: StatusReads,
    /// The store's status lease (zero: every request reads its status).
    lease: Duration,
    generation: Mutex<GenerationView>,
    /// A background read of the generation is under way.
    renewing: AtomicBool,
    /// Background reads of the generation made.
    renewals: AtomicU64,
    permits: tokio::sync::Semaphore,
    bucket: Mutex<TokenBucket>,
}

/// The responder; cheap to clone.
#[derive(Debug, Clone)]
pub struct OcspResponder {
    inner: Arc<Inner>,
}

/// One CertID of a request, resolved.
struct Asked {
    id: CertId,
    ca: usize,
    status: SerialStatus,
    /// The status generation `status` is at least as new as.
    generation: i64,
    /// The CA signed a final response for it before its termination.
    final_response: bool,
}

impl OcspResponder {
    engine_constructor! {
        fn new(
            store: Store,
            clock: SharedClock,
            settings: OcspSettings,
            cas: Vec<ServedCa>,
            key: ResponderKey,
        ) -> Self {
            let rate = f64::from(settings.nonce_signatures_per_second);
            let size = f64::from(settings.nonce_burst.max(1));
            Self {
                inner: Arc::new(Inner {
                    lease: store.status_lease(),
                    generation: Mutex::new(GenerationView::default()),
                    renewing: AtomicBool::new(false),
                    renewals: AtomicU64::new(0),
                    store,
                    clock,
                    cas,
                    key: RwLock::new(Arc::new(key)),
                    cache: Mutex::new(HashMap::new()),
                    by_request: Mutex::new(HashMap::new()),
                    status_reads: StatusReads::default(),
                    permits: tokio::sync::Semaphore::new(settings.signing_concurrency.max(1)),
                    bucket: Mutex::new(TokenBucket::new(rate, size)),
                    settings,
                }),
            }
        }
    }

    pub fn settings(&self) -> &OcspSettings {
        &self.inner.settings
    }

    /// Database reads made so far: status queries (concurrent requests' reads
    /// made together count once) and background reads of the status generation.
    pub fn database_reads(&self) -> (u64, u64) {
        (
            self.inner.status_reads.queries.load(Ordering::Relaxed),
            self.inner.renewals.load(Ordering::Relaxed),
        )
    }

    /// The responder key in use.
    pub fn key(&self) -> Arc<ResponderKey> {
        match self.inner.key.read() {
            Ok(key) => key.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Uses `key` from now on; responses cached under the previous key are re-signed.
    pub fn replace_key(&self, key: ResponderKey) {
        let key = Arc::new(key);
        match self.inner.key.write() {
            Ok(mut slot) => *slot = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }

    fn take_token(&self) -> bool {
        match self.inner.bucket.lock() {
            Ok(mut bucket) => bucket.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Arc<Cached>>> {
        match self.inner.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn by_request(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Arc<Cached>>> {
        match self.inner.by_request.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The cached answer to exactly this request (its DER) when one was made
    /// at the current generation, within its lease: no decoding, no database
    /// read.
    fn cached_answer(&self, request: &[u8]) -> Option<OcspAnswer> {
        let generation = self.current_generation()?;
        let hit = self.by_request().get(request).cloned()?;
        self.servable_at(&hit, generation)
    }

    fn generation(&self) -> std::sync::MutexGuard<'_, GenerationView> {
        match self.inner.generation.lock() {
            Ok(view) => view,
            // Two numbers that only grow: consistent whatever panicked.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The cached answer for `id`, when it was made for the status at the
    /// current generation and that generation is within its lease: no
    /// database read. Renews the view in the background past half the lease.
    fn answer_from_cache(&self, id: &CertId) -> Option<OcspAnswer> {
        let generation = self.current_generation()?;
        let key = id.to_der().ok()?;
        let hit = self.cache().get(&key).cloned()?;
        self.servable_at(&hit, generation)
    }

    /// `cached`'s answer if its status was read at `generation` (the current
    /// one) and it may still be served.
    fn servable_at(&self, cached: &Cached, generation: i64) -> Option<OcspAnswer> {
        (cached.generation == generation && self.still_servable(cached))
            .then(|| cached.answer.clone())
    }

    /// The status generation while this instance may rely on it; starts its
    /// background renewal past half the lease.
    fn current_generation(&self) -> Option<i64> {
        if self.inner.lease.is_zero() {
            return None;
        }
        let (generation, renew) = self
            .generation()
            .current(Instant::now(), self.inner.lease)?;
        // Outside a runtime there is nothing to renew on: requests then read
        // their statuses once the lease is over.
        if renew
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.inner.renewing.swap(true, Ordering::AcqRel)
        {
            let responder = self.clone();
            runtime.spawn(async move {
                let started = Instant::now();
                responder.inner.renewals.fetch_add(1, Ordering::Relaxed);
                match responder.inner.store.status_generation().await {
                    Ok(generation) => responder.generation().saw(generation, started),
                    // Requests read their statuses until a read succeeds.
                    Err(error) => {
                        tracing::warn!(%error, "OCSP: reading the status generation failed")
                    }
                }
                responder.inner.renewing.store(false, Ordering::Release);
            });
        }
        Some(generation)
    }

    /// Signed by the current key, and more than half its validity left.
    fn still_servable(&self, cached: &Cached) -> bool {
        let now = self.inner.clock.now();
        let half = Duration::from_secs(self.inner.settings.validity_secs / 2);
        cached.responder_serial == self.key().serial
            && cached.produced_at <= now
            && now < cached.produced_at + half
    }

    /// Answers one DER OCSPRequest. Never fails: problems become OCSP error statuses.
    pub async fn respond(&self, body: &[u8]) -> OcspAnswer {
        match self.cached_answer(body) {
            Some(answer) => answer,
            // Boxed: that path's future is large, and a cached answer (most
            // requests) should not carry it.
            None => Box::pin(self.respond_afresh(body)).await,
        }
    }

    /// [`Self::respond`] for a request not answered by its exact bytes.
    async fn respond_afresh(&self, body: &[u8]) -> OcspAnswer {
        if body.len() > self.inner.settings.max_request_bytes {
            return OcspAnswer::malformed();
        }
        let Ok(request) = OcspRequest::from_der(body) else {
            return OcspAnswer::malformed();
        };
        let list = &request.tbs_request.request_list;
        if list.is_empty() || list.len() > MAX_CERTIFICATES_PER_REQUEST {
            return OcspAnswer::malformed();
        }
        let nonce_asked = request
            .tbs_request
            .request_extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id == ID_PKIX_OCSP_NONCE);
        let nonce = request.nonce();
        match &nonce {
            Some(n) if (1..=MAX_NONCE_OCTETS).contains(&n.0.as_bytes().len()) => {}
            None if !nonce_asked => {}
            _ => return OcspAnswer::malformed(),
        }
        if nonce.is_none()
            && let [single] = list.as_slice()
            && let Some(answer) = self.answer_from_cache(&single.req_cert)
        {
            return answer;
        }
        let mut asked = Vec::with_capacity(list.len());
        for single in list {
            let id = &single.req_cert;
            if id.hash_algorithm.oid != ID_SHA_1 && id.hash_algorithm.oid != ID_SHA_256 {
                return OcspAnswer::malformed();
            }
            let Some(ca) = self.inner.cas.iter().position(|ca| ca.matches(id)) else {
                return OcspAnswer::unauthorized();
            };
            let serial = hex::encode(id.serial_number.as_bytes());
            let (status, generation, final_response) = match self
                .inner
                .status_reads
                .read(&self.inner.store, serial)
                .await
            {
                Ok((found, generation, started)) => {
                    self.generation().saw(generation, started);
                    if self.inner.cas[ca].issued(&found.issued_under) {
                        (found.status, generation, found.final_response)
                    } else {
                        (SerialStatus::Unknown, generation, false)
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "OCSP: reading the certificate status failed");
                    return OcspAnswer::internal();
                }
            };
            // Only unknown serials pay for this lookup: a terminated CA's known
            // certificates all have a final response.
            if status == SerialStatus::Unknown {
                match self
                    .inner
                    .store
                    .termination(&self.inner.cas[ca].serial)
                    .await
                {
                    Ok(None) => {}
                    Ok(Some(_)) => return OcspAnswer::unauthorized(),
                    Err(error) => {
                        tracing::error!(%error, "OCSP: reading the CA's termination failed");
                        return OcspAnswer::internal();
                    }
                }
            }
            asked.push(Asked {
                id: id.clone(),
                ca,
                status,
                generation,
                final_response,
            });
        }
        if asked.iter().any(|a| a.final_response) {
            return match asked.as_slice() {
                [one] => self.final_answer(one).await,
                _ => OcspAnswer::unauthorized(),
            };
        }
        if nonce.is_none() && asked.len() == 1 {
            return self.cached(asked.remove(0), Some(body)).await;
        }
        if self.take_token() {
            return match self.sign(&asked, nonce).await {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::error!(%error, "OCSP: signing failed");
                    OcspAnswer::internal()
                }
            };
        }
        match self.inner.settings.over_limit {
            OcspOverLimit::Cached if asked.len() == 1 => self.cached(asked.remove(0), None).await,
            _ => OcspAnswer::try_later(),
        }
    }

    /// The cached response for one CertID if it was made for the status just
    /// read, by the current key, and half its validity remains (kept under the
    /// generation read); else a new one.
    /// `request`: the DER of a request with this one CertID and no nonce, which
    /// the entry is also kept under; `None` for a request past the bound that
    /// has a nonce, which also may not take a token: an unknown serial (chosen
    /// by the caller, so unbounded in number) is signed only within the bucket.
    async fn cached(&self, asked: Asked, request: Option<&[u8]>) -> OcspAnswer {
        let may_take_token = request.is_some();
        let key = match asked.id.to_der() {
            Ok(key) => key,
            Err(_) => return OcspAnswer::malformed(),
        };
        let now = self.inner.clock.now();
        let half = Duration::from_secs(self.inner.settings.validity_secs / 2);
        let responder = self.key();
        let hit = self.cache().get(&key).cloned();
        if let Some(hit) = hit
            && hit.status == asked.status
            && self.still_servable(&hit)
        {
            let entry = if hit.generation < asked.generation {
                // The status is unchanged at a newer generation: say so.
                let entry = Arc::new(Cached {
                    generation: asked.generation,
                    status: hit.status,
                    responder_serial: hit.responder_serial.clone(),
                    produced_at: hit.produced_at,
                    answer: hit.answer.clone(),
                });
                self.cache().insert(key, entry.clone());
                entry
            } else {
                hit
            };
            self.keep_by_request(request, &entry, now, half);
            return entry.answer.clone();
        }
        if asked.status == SerialStatus::Unknown && !(may_take_token && self.take_token()) {
            return OcspAnswer::try_later();
        }
        let (status, generation) = (asked.status, asked.generation);
        let answer = match self.sign(std::slice::from_ref(&asked), None).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::error!(%error, "OCSP: signing failed");
                return OcspAnswer::internal();
            }
        };
        let produced_at = answer
            .cacheable
            .as_ref()
            .map(|c| c.produced_at)
            .unwrap_or(now);
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED_RESPONSES {
            cache.retain(|_, c| now < c.produced_at + half);
            if cache.len() >= MAX_CACHED_RESPONSES {
                cache.clear();
            }
        }
        let entry = Arc::new(Cached {
            generation,
            status,
            responder_serial: responder.serial.clone(),
            produced_at,
            answer: answer.clone(),
        });
        cache.insert(key, entry.clone());
        drop(cache);
        self.keep_by_request(request, &entry, now, half);
        answer
    }

    /// Indexes `entry` by the request that asked for it, within the same bound
    /// as the cache (the encodings of one CertID are the caller's to vary).
    fn keep_by_request(
        &self,
        request: Option<&[u8]>,
        entry: &Arc<Cached>,
        now: SystemTime,
        half: Duration,
    ) {
        let Some(request) = request else {
            return;
        };
        let mut by_request = self.by_request();
        if by_request.len() >= MAX_CACHED_RESPONSES {
            by_request.retain(|_, c| now < c.produced_at + half);
            if by_request.len() >= MAX_CACHED_RESPONSES {
                by_request.clear();
            }
        }
        by_request.insert(request.to_vec(), entry.clone());
    }

    /// The final response stored for `asked` when its CA was terminated.
    async fn final_answer(&self, asked: &Asked) -> OcspAnswer {
        let serial = hex::encode(asked.id.serial_number.as_bytes());
        let hash = CertIdHash::of(&asked.id);
        match self
            .inner
            .store
            .final_ocsp_response(&serial, hash.name())
            .await
        {
            Ok(Some((der, produced_at))) => OcspAnswer {
                cacheable: Some(Cacheable::new(
                    produced_at.into(),
                    super::crl::forever(),
                    &der,
                )),
                der: Bytes::from(der),
            },
            Ok(None) => OcspAnswer::unauthorized(),
            Err(error) => {
                tracing::error!(%error, "OCSP: reading a final response failed");
                OcspAnswer::internal()
            }
        }
    }

    /// Signs a BasicOCSPResponse for `asked`, at most `signing_concurrency` at once,
    /// and checks the signature against the responder certificate.
    async fn sign(&self, asked: &[Asked], nonce: Option<Nonce>) -> Result<OcspAnswer, OcspError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|e| OcspError::Internal(e.to_string()))?;
        // Whole seconds: GeneralizedTime carries no fraction here (RFC 5280 §4.1.2.5.2).
        let now = truncate(self.inner.clock.now());
        let next = now + Duration::from_secs(self.inner.settings.validity_secs);
        let (this_update, next_update) = (generalized(now)?, generalized(next)?);
        let mut singles = Vec::with_capacity(asked.len());
        for one in asked {
            let status = match one.status {
                SerialStatus::Good => CertStatus::good(),
                SerialStatus::Unknown => CertStatus::unknown(),
                SerialStatus::Revoked { at, reason_code } => CertStatus::revoked(RevokedInfo {
                    revocation_time: generalized(truncate(at.into()))?,
                    revocation_reason: reason_code.map(Reason::crl_reason),
                }),
            };
            singles.push(
                SingleResponse::new(one.id.clone(), status, this_update)
                    .with_next_update(next_update)
                    .with_extension(ArchiveCutoff(self.inner.cas[one.ca].archive_cutoff))
                    .map_err(|e| OcspError::Internal(e.to_string()))?,
            );
        }
        let key = self.key();
        let cacheable = nonce.is_none();
        let der = tokio::task::spawn_blocking(move || build(&key, singles, nonce, this_update))
            .await
            .map_err(|e| OcspError::Internal(e.to_string()))??;
        Ok(OcspAnswer {
            cacheable: cacheable.then(|| Cacheable::new(now, next, &der)),
            der: Bytes::from(der),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdates() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn the_generation_view_is_relied_on_within_its_lease_only() {
        let lease = Duration::from_millis(100);
        let start = Instant::now();
        let mut view = GenerationView::default();
        assert_eq!(
            view.current(start, lease),
            None,
            "never read: not relied on"
        );
        view.saw(3, start);
        assert_eq!(view.current(start, lease), Some((3, false)));
        assert_eq!(
            view.current(start + Duration::from_millis(60), lease),
            Some((3, true)),
            "past half the lease: read it again ahead"
        );
        assert_eq!(view.current(start + lease, lease), None, "lease over");
        // A read that started earlier but answers later moves neither back.
        view.saw(2, start - Duration::from_millis(50));
        assert_eq!(view.current(start, lease), Some((3, false)));
        view.saw(5, start + Duration::from_millis(80));
        assert_eq!(
            view.current(start + Duration::from_millis(110), lease),
            Some((5, false))
        );
    }
}
