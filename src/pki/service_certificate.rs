//! The certificates of the issuing CA's services (OCSP responder,
//! time-stamping unit): a new key in the services token, its certificate
//! through the one signing path, at the ceremony and at each renewal.

use std::sync::Arc;
use std::time::SystemTime;

use const_oid::db::rfc5912;
use x509_cert::ext::pkix::KeyUsages;

use super::ceremony::{CeremonyError, CeremonyFile, CertifiedKey, KeyPurpose, signed};
use super::certificate::{self, CertificateRequest, extensions as ext};
use super::serials::ReservedSerial;
use super::signing::{CertificateKind, Grant};
use crate::config::TokenRole;
use crate::hsm::{Hsm, HsmSigner};

/// Issues a certificate with a new key for one of the issuing CA's services
/// (OCSP responder, time-stamping unit): at the ceremony, and again at each
/// renewal (`sceau ca renew-ocsp`, `sceau ca renew-tsu`), under the serial
/// reserved for it. Blocking.
pub fn issue_service_certificate(
    (grant, serial): (&Grant, ReservedSerial),
    file: &CeremonyFile,
    hsm: &Hsm,
    issuing: &CertifiedKey,
    now: SystemTime,
    purpose: KeyPurpose,
) -> Result<CertifiedKey, CeremonyError> {
    let spec = match (purpose, grant.kind()) {
        (KeyPurpose::Ocsp, CertificateKind::OcspResponder) => &file.ocsp,
        (KeyPurpose::Tsa, CertificateKind::TimeStampingUnit) => &file.tsa,
        (other, _) => {
            return Err(CeremonyError::Invalid(format!(
                "{} is not a service certificate",
                other.name()
            )));
        }
    };
    let pool = hsm.token(TokenRole::Services)?;
    let issuing_signer = HsmSigner::new(
        Arc::clone(hsm.token(TokenRole::Issuing)?),
        issuing.key.clone(),
    );
    let key = pool.generate_key_pair_blocking(&file.label(purpose), spec.algorithm)?;
    let mut extensions = vec![
        ext::subject_key_identifier(&key.public_key)?,
        ext::authority_key_identifier(&issuing.key.public_key)?,
    ];
    match purpose {
        KeyPurpose::Ocsp => {
            extensions.push(ext::key_usage(KeyUsages::DigitalSignature)?);
            extensions.push(ext::extended_key_usage(
                vec![rfc5912::ID_KP_OCSP_SIGNING],
                false,
            )?);
            extensions.push(ext::ocsp_nocheck()?);
            extensions.push(ext::authority_info_access(
                None,
                Some(&file.issuing.certificate_url),
            )?);
        }
        _ => {
            extensions.push(ext::key_usage(KeyUsages::DigitalSignature)?);
            // RFC 3161 §2.3: exactly id-kp-timeStamping, and critical.
            extensions.push(ext::extended_key_usage(
                vec![rfc5912::ID_KP_TIME_STAMPING],
                true,
            )?);
            extensions.push(ext::crl_distribution_point(&file.issuing.crl_url)?);
            extensions.push(ext::authority_info_access(
                Some(&file.issuing.ocsp_url),
                Some(&file.issuing.certificate_url),
            )?);
            let usage_days = spec.key_usage_days.unwrap_or(spec.validity_days);
            extensions.push(ext::private_key_usage_period(now, usage_days)?);
        }
    }
    let request = CertificateRequest {
        subject: spec.subject.to_name()?,
        issuer: Some(issuing.certificate.tbs_certificate.subject.clone()),
        serial,
        validity: certificate::validity(now, spec.validity_days)?,
        public_key: key.public_key.clone(),
        extensions,
    };
    let certificate = match signed(grant, Some(&issuing.certificate), request, &issuing_signer) {
        Ok(certificate) => certificate,
        Err(e) => {
            // The key was made for this certificate only.
            if let Err(destroy) = pool.destroy_key_blocking(&key.id) {
                tracing::error!(key = %key.id, error = %destroy, "could not destroy the key of a refused certificate");
            }
            return Err(e);
        }
    };
    Ok(CertifiedKey {
        purpose,
        key,
        certificate,
    })
}
