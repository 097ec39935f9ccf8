//! CMS SignedData (RFC 5652) as sceau signs it: the ESS signing-certificate-v2
//! attribute (RFC 5035), signed attributes in DER order, the signature made by a
//! [`MessageSigner`] and checked against the signer's certificate before the
//! structure is used. Shared by the time-stamping authority and the seals.

use std::time::SystemTime;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use crate::crypto::{self, DigestAlgorithm, MessageSigner};

/// id-signedData.
pub const ID_SIGNED_DATA: ObjectIdentifier = rfc5911::ID_SIGNED_DATA;
/// id-data.
pub const ID_DATA: ObjectIdentifier = rfc5911::ID_DATA;
/// id-aa-signingCertificateV2 (RFC 5035).
pub const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier = rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2;

#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("encoding the CMS structure failed: {0}")]
    Encoding(#[from] der::Error),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the signature does not verify with the signer's certificate")]
    SelfCheck,
}

/// ESSCertIDv2 (RFC 5035 §5.4.1.1). `hash_algorithm` is absent for SHA-256:
/// DER leaves out a DEFAULT value.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial (RFC 5035): the certificate's issuer and serial number.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

/// SigningCertificateV2 (RFC 5035 §5.4.1), without policies.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute, CmsError> {
    let mut values = SetOfVec::new();
    values.insert(Any::from_der(&value.to_der()?)?)?;
    Ok(Attribute { oid, values })
}

/// The signing-certificate-v2 attribute naming `certificate` by its SHA-256.
pub fn signing_certificate_v2(certificate: &Certificate) -> Result<Attribute, CmsError> {
    let hash = Sha256::digest(certificate.to_der()?);
    let value = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(hash.to_vec())?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    certificate.tbs_certificate.issuer.clone(),
                )],
                serial_number: certificate.tbs_certificate.serial_number.clone(),
            }),
        }],
    };
    attribute(ID_AA_SIGNING_CERTIFICATE_V2, &value)
}

/// The signing-time attribute (UTCTime before 2050, as RFC 5652 §11.3 asks).
pub fn signing_time(at: SystemTime) -> Result<Attribute, CmsError> {
    let time = super::certificate::rfc5280_time(at)?;
    attribute(rfc5911::ID_SIGNING_TIME, &time)
}

/// Any attribute with one value.
pub fn single_valued(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute, CmsError> {
    attribute(oid, value)
}

/// Revocation data to carry in SignedData's `crls`.
#[derive(Debug, Clone)]
pub enum RevocationData {
    Crl(CertificateList),
}

/// What one SignedData holds, before signing.
#[derive(Debug, Clone)]
pub struct ToSign<'a> {
    /// eContentType: id-data for seals, id-ct-TSTInfo for time-stamp tokens.
    pub content_type: ObjectIdentifier,
    /// The content itself when it is encapsulated (enveloping), else detached.
    pub content: Option<&'a [u8]>,
    /// The digest of the content (the message-digest attribute).
    pub content_digest: &'a [u8],
    pub digest: DigestAlgorithm,
    /// Signed attributes besides content-type and message-digest.
    pub attributes: Vec<Attribute>,
    /// The signer's certificate: its issuer and serial name the signer, and its
    /// key checks the signature.
    pub signer_certificate: &'a Certificate,
    /// Certificates to carry (the signer's and its chain, as the caller wants).
    pub certificates: Vec<Certificate>,
    pub revocation: Vec<RevocationData>,
}

/// Signs and returns the SignedData. Blocking when the signer is an HSM key.
pub fn sign<S: MessageSigner + ?Sized>(
    to_sign: ToSign<'_>,
    signer: &S,
) -> Result<SignedData, CmsError> {
    let algorithm = signer.algorithm();
    if algorithm.digest() != to_sign.digest {
        return Err(CmsError::Signing(format!(
            "the key signs with {:?}, not {:?}",
            algorithm.digest(),
            to_sign.digest
        )));
    }
    let mut signed_attributes = SetOfVec::new();
    signed_attributes.insert(attribute(rfc5911::ID_CONTENT_TYPE, &to_sign.content_type)?)?;
    signed_attributes.insert(attribute(
        rfc5911::ID_MESSAGE_DIGEST,
        &OctetString::new(to_sign.content_digest.to_vec())?,
    )?)?;
    for extra in to_sign.attributes {
        signed_attributes.insert(extra)?;
    }
    // The signature covers the DER of the attributes as a SET OF (RFC 5652 §5.4).
    let message = signed_attributes.to_der()?;
    let signature = signer.sign(&message).map_err(CmsError::Signing)?;
    let signer_certificate = to_sign.signer_certificate;
    crypto::verify(
        &signer_certificate.tbs_certificate.subject_public_key_info,
        algorithm,
        &message,
        &signature,
    )
    .map_err(|_| CmsError::SelfCheck)?;
    let digest_algorithm = AlgorithmIdentifierOwned {
        oid: to_sign.digest.oid(),
        parameters: None,
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer_certificate.tbs_certificate.issuer.clone(),
            serial_number: signer_certificate.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(signed_attributes),
        signature_algorithm: algorithm.algorithm_identifier(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut certificates = SetOfVec::new();
    for certificate in to_sign.certificates {
        certificates.insert(CertificateChoices::Certificate(certificate))?;
    }
    let mut crls = SetOfVec::new();
    for data in to_sign.revocation {
        match data {
            RevocationData::Crl(crl) => crls.insert(RevocationInfoChoice::Crl(crl))?,
        }
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_algorithm)?;
    Ok(SignedData {
        // RFC 5652 §5.1: 3 when the content is not id-data, else 1 (no
        // attribute certificates, no "other" formats here).
        version: if to_sign.content_type == ID_DATA {
            CmsVersion::V1
        } else {
            CmsVersion::V3
        },
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: to_sign.content_type,
            econtent: to_sign
                .content
                .map(|content| Any::new(der::Tag::OctetString, content.to_vec()))
                .transpose()?,
        },
        certificates: (!certificates.is_empty()).then_some(CertificateSet(certificates)),
        crls: (!crls.is_empty()).then_some(RevocationInfoChoices(crls)),
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    })
}

/// The ContentInfo DER of a SignedData.
pub fn content_info_der(signed: &SignedData) -> Result<Vec<u8>, CmsError> {
    Ok(ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::from_der(&signed.to_der()?)?,
    }
    .to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ess_cert_id_v2_leaves_out_the_default_hash_algorithm() {
        let id = EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(vec![0xAB; 32]).unwrap(),
            issuer_serial: None,
        };
        // SEQUENCE { OCTET STRING (32) }: nothing for the algorithm.
        let der = id.to_der().unwrap();
        assert_eq!(&der[..4], &[0x30, 34, 0x04, 32]);
    }
}
