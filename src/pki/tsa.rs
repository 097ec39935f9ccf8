//! The time-stamping authority (RFC 3161, EN 319 422 profile): parses
//! TimeStampReq, checks the digest, policy and clock, makes a TSTInfo with a
//! unique serial (recorded in the database), signs it with the time-stamping
//! unit's key in the HSM within its private-key usage period, and answers a
//! TimeStampResp. Seals at B-T and above call [`Tsa::stamp_with_nonce`] directly.
//!
//! Choices where RFC 3161 leaves room:
//! - every refusal is a TimeStampResp with status `rejection`, a failInfo bit
//!   and a statusString saying why; HTTP stays 200 (RFC 3161 §3.4);
//! - genTime carries whole seconds; the policy declares its accuracy in seconds;
//! - the TSU certificate and its issuing CA's are included only when the
//!   request sets certReq.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, Int, OctetString};
use der::{Decode, Encode};
use rand::RngCore;
use serde::Deserialize;
use x509_cert::ext::pkix::name::GeneralName;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TspVersion, TstInfo};

use super::cms::{self, CmsError, ToSign};
use super::token_bucket::TokenBucket;
use crate::clock::SharedClock;
use crate::config::TsaSettings;
use crate::crypto::DigestAlgorithm;
use crate::error::{ErrorKind, HasErrorKind};
use crate::store::{Store, StoreError};

mod response;
mod unit;
#[cfg(test)]
use response::{SYSTEM_FAILURE_RESPONSE, failure_bits};
use response::{TimeStampResp, reply};
pub use unit::TimeStampingUnit;

/// id-ct-TSTInfo (RFC 3161 §2.4.2).
pub const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// `application/timestamp-query`, `application/timestamp-reply` (RFC 3161 §3.4).
pub const REQUEST_MEDIA_TYPE: &str = "application/timestamp-query";
pub const RESPONSE_MEDIA_TYPE: &str = "application/timestamp-reply";

#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("time-stamping policy {path}: {reason}")]
    Policy { path: String, reason: String },
    #[error("the time-stamping unit certificate cannot be used: {0}")]
    Unit(String),
}

impl HasErrorKind for TsaError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// `policies/tsa.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    policy_oid: String,
    accuracy_seconds: u64,
    digest_algorithms: Vec<String>,
}

/// The time-stamping policy, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsaPolicy {
    pub oid: ObjectIdentifier,
    pub accuracy_seconds: u64,
    pub digests: Vec<DigestAlgorithm>,
}

fn digest_by_name(name: &str) -> Option<DigestAlgorithm> {
    match name {
        "sha256" => Some(DigestAlgorithm::Sha256),
        "sha384" => Some(DigestAlgorithm::Sha384),
        "sha512" => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

impl TsaPolicy {
    pub fn load(path: &Path) -> Result<Self, TsaError> {
        let error = |reason: String| TsaError::Policy {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let file: PolicyFile = toml::from_str(&text).map_err(|e| error(e.message().to_owned()))?;
        let oid = ObjectIdentifier::new(&file.policy_oid)
            .map_err(|_| error(format!("policy_oid {:?} is not an OID", file.policy_oid)))?;
        if !(1..=60).contains(&file.accuracy_seconds) {
            return Err(error("accuracy_seconds must be 1 to 60".to_owned()));
        }
        let mut digests = Vec::new();
        for name in &file.digest_algorithms {
            let digest = digest_by_name(name)
                .ok_or_else(|| error(format!("digest_algorithms: unknown {name:?}")))?;
            digests.push(digest);
        }
        if digests.is_empty() {
            return Err(error("digest_algorithms is empty".to_owned()));
        }
        Ok(Self {
            oid,
            accuracy_seconds: file.accuracy_seconds,
            digests,
        })
    }
}

/// PKIFailureInfo bits (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    BadAlg = 0,
    BadRequest = 2,
    BadDataFormat = 5,
    TimeNotAvailable = 14,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    SystemFailure = 25,
}

/// Why a time-stamp was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct Refusal {
    pub failure: Failure,
    pub text: String,
}

impl Refusal {
    fn new(failure: Failure, text: impl Into<String>) -> Self {
        Self {
            failure,
            text: text.into(),
        }
    }
}

impl HasErrorKind for Refusal {
    fn kind(&self) -> ErrorKind {
        match self.failure {
            Failure::TimeNotAvailable | Failure::SystemFailure => ErrorKind::Unavailable,
            _ => ErrorKind::Unprocessable,
        }
    }
}

/// One time-stamp token made.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The TimeStampToken: a ContentInfo DER.
    pub token: Vec<u8>,
    /// Hex of the TSTInfo serial number.
    pub serial: String,
    pub gen_time: SystemTime,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: SharedClock,
    policy: TsaPolicy,
    settings: TsaSettings,
    unit: RwLock<Arc<TimeStampingUnit>>,
    /// What the last clock check said (true when no check is configured).
    synchronised: AtomicBool,
    /// The unit's certificate is revoked (the issuing CA ended): no more
    /// time-stamps, ever, from this unit.
    retired: AtomicBool,
    /// What `POST /tsa` may ask of the HSM.
    requests: std::sync::Mutex<TokenBucket>,
}

/// The TSA; cheap to clone.
#[derive(Debug, Clone)]
pub struct Tsa {
    inner: Arc<Inner>,
}

/// A positive INTEGER of 128 random bits (the high bit clear, the next set, so
/// the encoding is minimal and 16 octets).
fn random_serial() -> Result<Int, der::Error> {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7F) | 0x40;
    Int::new(&bytes)
}

fn whole_seconds(at: SystemTime) -> Duration {
    Duration::from_secs(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    )
}

impl Tsa {
    engine_constructor! {
        fn new(
            store: Store,
            clock: SharedClock,
            policy: TsaPolicy,
            settings: TsaSettings,
            unit: TimeStampingUnit,
        ) -> Self {
            let synchronised = settings.clock_sync_command.is_empty();
            let requests = TokenBucket::new(
                f64::from(settings.requests_per_second),
                f64::from(settings.burst.max(1)),
            );
            Self {
                inner: Arc::new(Inner {
                    store,
                    clock,
                    policy,
                    settings,
                    unit: RwLock::new(Arc::new(unit)),
                    requests: std::sync::Mutex::new(requests),
                    synchronised: AtomicBool::new(synchronised),
                    retired: AtomicBool::new(false),
                }),
            }
        }
    }

    pub fn policy(&self) -> &TsaPolicy {
        &self.inner.policy
    }

    /// Stops time-stamping for good: the unit's certificate has been revoked
    /// (the issuing CA that certified it ended). A replacement unit would have
    /// to come from a new CA, and a new process.
    pub fn retire(&self) {
        if !self.inner.retired.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                serial = %self.unit().serial(),
                "the time-stamping unit's certificate is revoked: the TSA refuses from now on"
            );
        }
    }

    pub fn is_retired(&self) -> bool {
        self.inner.retired.load(Ordering::SeqCst)
    }

    pub fn settings(&self) -> &TsaSettings {
        &self.inner.settings
    }

    /// The unit in use.
    pub fn unit(&self) -> Arc<TimeStampingUnit> {
        match self.inner.unit.read() {
            Ok(unit) => unit.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Signs with `unit` from now on (after `sceau ca renew-tsu`).
    pub fn replace_unit(&self, unit: TimeStampingUnit) {
        let unit = Arc::new(unit);
        match self.inner.unit.write() {
            Ok(mut slot) => *slot = unit,
            Err(poisoned) => *poisoned.into_inner() = unit,
        }
    }

    pub fn synchronised(&self) -> bool {
        self.inner.synchronised.load(Ordering::SeqCst)
    }

    /// Runs `tsa.clock_sync_command` (if any) and records what it says: `yes`
    /// on stdout and a zero exit mean synchronised; anything else, a failure to
    /// run or 5 s without an answer mean not.
    pub async fn check_clock(&self) -> bool {
        let command = &self.inner.settings.clock_sync_command;
        let Some((program, args)) = command.split_first() else {
            self.inner.synchronised.store(true, Ordering::SeqCst);
            return true;
        };
        let run = tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output();
        let synchronised = match tokio::time::timeout(Duration::from_secs(5), run).await {
            Ok(Ok(output)) => {
                output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "yes"
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "the clock synchronisation check could not run");
                false
            }
            Err(_) => {
                tracing::warn!("the clock synchronisation check did not answer within 5 s");
                false
            }
        };
        let was = self.inner.synchronised.swap(synchronised, Ordering::SeqCst);
        if was != synchronised {
            if synchronised {
                tracing::info!("the system clock is synchronised: time-stamping resumes");
            } else {
                tracing::error!("the system clock is not synchronised: time-stamps are refused");
            }
        }
        synchronised
    }

    /// Answers one DER TimeStampReq with a DER TimeStampResp. Never fails:
    /// problems become a rejection with a failInfo bit.
    pub async fn respond(&self, body: &[u8]) -> Vec<u8> {
        reply(self.answer(body).await)
    }

    /// The rejection for a request over `tsa.max_request_bytes`, for a body
    /// the transport stopped reading at that limit.
    pub fn refuse_too_large(&self) -> Vec<u8> {
        reply(Err(self.too_large()))
    }

    fn too_large(&self) -> Refusal {
        Refusal::new(
            Failure::BadDataFormat,
            format!(
                "the request exceeds {} bytes",
                self.inner.settings.max_request_bytes
            ),
        )
    }

    /// Whether `POST /tsa` may answer one more request now
    /// (`tsa.requests_per_second`, `tsa.burst`).
    pub fn admit(&self) -> bool {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// The most a request may weigh.
    pub fn max_request_bytes(&self) -> usize {
        self.inner.settings.max_request_bytes
    }

    async fn answer(&self, body: &[u8]) -> Result<Stamp, Refusal> {
        if body.len() > self.inner.settings.max_request_bytes {
            return Err(self.too_large());
        }
        let request = TimeStampReq::from_der(body).map_err(|e| {
            Refusal::new(
                Failure::BadDataFormat,
                format!("not a DER TimeStampReq: {e}"),
            )
        })?;
        if request.extensions.is_some() {
            return Err(Refusal::new(
                Failure::UnacceptedExtension,
                "request extensions are not supported",
            ));
        }
        if let Some(asked) = request.req_policy
            && asked != self.inner.policy.oid
        {
            return Err(Refusal::new(
                Failure::UnacceptedPolicy,
                format!(
                    "this TSA time-stamps under policy {} only",
                    self.inner.policy.oid
                ),
            ));
        }
        self.stamp_imprint(request.message_imprint, request.nonce, request.cert_req)
            .await
    }

    /// A time-stamp token over `hashed` (a digest made with `digest`): what a
    /// seal's signature-time-stamp or document time-stamp uses. Carries the
    /// TSU certificate, and echoes the client's nonce when it gives one (CSC
    /// `signatures/timestamp`).
    pub async fn stamp_with_nonce(
        &self,
        digest: DigestAlgorithm,
        hashed: &[u8],
        nonce: Option<Int>,
    ) -> Result<Stamp, Refusal> {
        let imprint = message_imprint(digest, hashed)
            .map_err(|e| Refusal::new(Failure::BadDataFormat, e.to_string()))?;
        self.stamp_imprint(imprint, nonce, true).await
    }

    async fn stamp_imprint(
        &self,
        imprint: MessageImprint,
        nonce: Option<Int>,
        include_certificate: bool,
    ) -> Result<Stamp, Refusal> {
        let inner = &self.inner;
        let digest = DigestAlgorithm::from_oid(&imprint.hash_algorithm.oid)
            .filter(|d| inner.policy.digests.contains(d))
            .ok_or_else(|| {
                Refusal::new(
                    Failure::BadAlg,
                    format!(
                        "messageImprint hash {} is not accepted",
                        imprint.hash_algorithm.oid
                    ),
                )
            })?;
        if imprint.hashed_message.as_bytes().len() != digest.digest(b"").len() {
            return Err(Refusal::new(
                Failure::BadDataFormat,
                "hashedMessage does not have the length of its hash",
            ));
        }
        if self.is_retired() {
            return Err(Refusal::new(
                Failure::SystemFailure,
                "the time-stamping unit's certificate was revoked when its CA ended; \
                 this TSA makes no more time-stamps",
            ));
        }
        if !self.synchronised() {
            return Err(Refusal::new(
                Failure::TimeNotAvailable,
                "the system clock reports itself unsynchronised",
            ));
        }
        let unit = self.unit();
        let now = inner.clock.now();
        if now < unit.usage.0 || unit.usage.1 <= now {
            return Err(Refusal::new(
                Failure::SystemFailure,
                "the time-stamping unit's key is outside its usage period; rotate it with `sceau ca renew-tsu`",
            ));
        }
        let system = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "time-stamping failed");
            Refusal::new(Failure::SystemFailure, "the time-stamp could not be made")
        };
        let gen_time = SystemTime::UNIX_EPOCH + whole_seconds(now);
        // A serial collision is astronomically unlikely; the database's primary
        // key makes it impossible, and one retry covers it.
        for _ in 0..2 {
            let serial = random_serial().map_err(|e| system(&e))?;
            let serial_hex = hex::encode(serial.as_bytes());
            let tst_info = TstInfo {
                version: TspVersion::V1,
                policy: inner.policy.oid,
                message_imprint: imprint.clone(),
                serial_number: serial,
                gen_time: GeneralizedTime::from_unix_duration(whole_seconds(now))
                    .map_err(|e| system(&e))?,
                accuracy: Some(Accuracy {
                    seconds: Some(inner.policy.accuracy_seconds),
                    millis: None,
                    micros: None,
                }),
                ordering: false,
                nonce: nonce.clone(),
                tsa: Some(GeneralName::DirectoryName(
                    unit.certificate.tbs_certificate.subject.clone(),
                )),
                extensions: None,
            };
            let content = tst_info.to_der().map_err(|e| system(&e))?;
            let token = {
                let unit = unit.clone();
                tokio::task::spawn_blocking(move || {
                    sign_token(&unit, &content, include_certificate)
                })
                .await
                .map_err(|e| system(&e))?
                .map_err(|e| system(&e))?
            };
            match inner
                .store
                .record_timestamp(&crate::store::tsa::RecordedTimestamp {
                    serial: serial_hex.clone(),
                    tsu_serial: unit.serial().to_owned(),
                    policy: inner.policy.oid.to_string(),
                    hash_algorithm: imprint.hash_algorithm.oid.to_string(),
                    hashed_message: hex::encode(imprint.hashed_message.as_bytes()),
                    gen_time: gen_time.into(),
                })
                .await
            {
                Ok(()) => {
                    return Ok(Stamp {
                        token,
                        serial: serial_hex,
                        gen_time,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(system(&error)),
            }
        }
        Err(system(&"two serial numbers collided"))
    }
}

/// A client of an external RFC 3161 TSA (`seal.tsa_url`), for trust services
/// that time-stamp seals elsewhere. It checks that the reply is granted and
/// that its TSTInfo carries our imprint and nonce; the token's signature and
/// the TSA's trust are the validator's to judge, as for any TSA.
#[derive(Debug, Clone)]
pub struct TsaClient {
    url: String,
    http: reqwest::Client,
}

/// The imprint of `hashed`, a digest made with `digest`.
fn message_imprint(digest: DigestAlgorithm, hashed: &[u8]) -> der::Result<MessageImprint> {
    Ok(MessageImprint {
        hash_algorithm: spki::AlgorithmIdentifier {
            oid: digest.oid(),
            parameters: None,
        },
        hashed_message: OctetString::new(hashed.to_vec())?,
    })
}

impl TsaClient {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, TsaError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TsaError::Unit(format!("the TSA client: {e}")))?;
        Ok(Self {
            url: url.to_owned(),
            http,
        })
    }

    /// A token over `hashed` from the external TSA, with the client's nonce
    /// instead of our own when it gives one.
    pub async fn stamp_with_nonce(
        &self,
        digest: DigestAlgorithm,
        hashed: &[u8],
        nonce: Option<Int>,
    ) -> Result<Stamp, Refusal> {
        let failed = |why: String| {
            Refusal::new(
                Failure::SystemFailure,
                format!("the external TSA {}: {why}", self.url),
            )
        };
        let nonce = match nonce {
            Some(nonce) => nonce,
            None => random_serial().map_err(|e| failed(e.to_string()))?,
        };
        let imprint = message_imprint(digest, hashed).map_err(|e| failed(e.to_string()))?;
        let request = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: imprint.clone(),
            req_policy: None,
            nonce: Some(nonce.clone()),
            cert_req: true,
            extensions: None,
        }
        .to_der()
        .map_err(|e| failed(e.to_string()))?;
        let response = self
            .http
            .post(&self.url)
            .header("content-type", REQUEST_MEDIA_TYPE)
            .body(request)
            .send()
            .await
            .map_err(|e| failed(format!("unreachable ({e})")))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered HTTP {}", response.status())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(format!("reading the reply: {e}")))?;
        let reply = TimeStampResp::from_der(&body)
            .map_err(|e| failed(format!("not a TimeStampResp: {e}")))?;
        if reply.status.status > 1 {
            return Err(failed(format!(
                "refused ({})",
                reply.status.status_string.unwrap_or_default().join("; ")
            )));
        }
        let token = reply
            .time_stamp_token
            .ok_or_else(|| failed("granted without a token".to_owned()))?;
        let token = token.to_der().map_err(|e| failed(e.to_string()))?;
        let info = tst_info_of(&token).map_err(|e| failed(format!("the token: {e}")))?;
        if info.message_imprint != imprint || info.nonce.as_ref() != Some(&nonce) {
            return Err(failed(
                "the token does not carry our imprint and nonce".to_owned(),
            ));
        }
        Ok(Stamp {
            token,
            serial: hex::encode(info.serial_number.as_bytes()),
            gen_time: info.gen_time.to_system_time(),
        })
    }
}

/// The TSTInfo inside a TimeStampToken (a ContentInfo DER).
pub fn tst_info_of(token: &[u8]) -> Result<TstInfo, der::Error> {
    let info = ::cms::content_info::ContentInfo::from_der(token)?;
    let signed = ::cms::signed_data::SignedData::from_der(&info.content.to_der()?)?;
    let content = signed
        .encap_content_info
        .econtent
        .ok_or(der::ErrorKind::Failed)?;
    let octets = OctetString::from_der(&content.to_der()?)?;
    TstInfo::from_der(octets.as_bytes())
}

/// The TimeStampToken: SignedData over the TSTInfo, with signing-certificate-v2
/// naming the TSU certificate (RFC 3161 §2.4.1, RFC 5816). Blocking.
fn sign_token(
    unit: &TimeStampingUnit,
    tst_info: &[u8],
    include_certificate: bool,
) -> Result<Vec<u8>, CmsError> {
    let digest = crate::crypto::MessageSigner::algorithm(&unit.signer).digest();
    let content_digest = digest.digest(tst_info);
    let signed = cms::sign(
        ToSign {
            content_type: ID_CT_TST_INFO,
            content: Some(tst_info),
            content_digest: &content_digest,
            digest,
            attributes: vec![cms::signing_certificate_v2(&unit.certificate)?],
            signer_certificate: &unit.certificate,
            // RFC 3161 §2.4.1: with certReq, the unit's certificate (and here
            // its path to the root); without, none.
            certificates: if include_certificate {
                std::iter::once(unit.certificate.clone())
                    .chain(unit.chain.iter().cloned())
                    .collect()
            } else {
                Vec::new()
            },
            revocation: Vec::new(),
        },
        &unit.signer,
    )?;
    cms::content_info_der(&signed)
}

#[cfg(test)]
mod tests;
