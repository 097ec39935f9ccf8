//! Building and signing X.509 certificates with a token key: names, serial
//! numbers, validity, and the extensions the CA hierarchy uses.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc4519, rfc5912};
use der::asn1::{
    GeneralizedTime, Ia5String, OctetString, PrintableStringRef, SetOfVec, UtcTime, Utf8StringRef,
};
use der::{Any, Encode};
use rand::RngCore;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::BasicConstraints;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// organizationIdentifier (X.520, EN 319 412-1 §5.1.4).
pub const ORGANIZATION_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.97");
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
pub const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("encoding the certificate failed: {0}")]
    Encoding(#[from] der::Error),
    #[error("building or signing the certificate failed: {0}")]
    Build(String),
}

/// A distinguished name as a ceremony or policy file writes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubjectName {
    /// ISO 3166 two-letter code.
    pub country: String,
    pub organization: String,
    #[serde(default)]
    pub organizational_unit: Option<String>,
    /// e.g. `NTRFR-123456789` (EN 319 412-1 semantics).
    #[serde(default)]
    pub organization_identifier: Option<String>,
    pub common_name: String,
}

impl SubjectName {
    /// Encodes C, O, OU, organizationIdentifier, CN in that order; C as
    /// PrintableString (RFC 5280 §4.1.2.4), the rest as UTF8String.
    pub fn to_name(&self) -> Result<Name, CertificateError> {
        let invalid = |field, reason: &str| CertificateError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid("country", "must be two upper-case letters"));
        }
        let mut rdns = vec![atv(
            rfc4519::C,
            Any::from(PrintableStringRef::new(&self.country)?),
        )?];
        let mut utf8 = |oid, field: &'static str, value: &str| -> Result<(), CertificateError> {
            if value.trim().is_empty() || value.chars().count() > 64 {
                return Err(invalid(field, "must be 1 to 64 characters"));
            }
            rdns.push(atv(oid, Any::from(Utf8StringRef::new(value)?))?);
            Ok(())
        };
        utf8(rfc4519::O, "organization", &self.organization)?;
        if let Some(unit) = &self.organizational_unit {
            utf8(rfc4519::OU, "organizational_unit", unit)?;
        }
        if let Some(identifier) = &self.organization_identifier {
            utf8(
                ORGANIZATION_IDENTIFIER,
                "organization_identifier",
                identifier,
            )?;
        }
        utf8(rfc4519::CN, "common_name", &self.common_name)?;
        Ok(RdnSequence(rdns))
    }
}

fn atv(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, CertificateError> {
    let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])?;
    Ok(RelativeDistinguishedName(set))
}

/// A positive serial number of 128 bits from the OS CSPRNG (RFC 5280 §4.1.2.2:
/// at most 20 octets; CA/B and ETSI ask for at least 64 bits of entropy).
pub fn random_serial() -> Result<SerialNumber, CertificateError> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // Positive, and no leading zero octet so the encoding keeps all 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::new(&bytes)?)
}

/// From `now` (to the second) for `days` days.
pub fn validity(now: SystemTime, days: u32) -> Result<Validity, CertificateError> {
    let seconds = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| CertificateError::Build("clock before 1970".to_owned()))?
        .as_secs();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    let end = start + Duration::from_secs(u64::from(days) * 86_400);
    let time = |at: SystemTime| {
        rfc5280_time(at).map_err(|e| CertificateError::Build(format!("validity: {e}")))
    };
    Ok(Validity {
        not_before: time(start)?,
        not_after: time(end)?,
    })
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. (The
/// builder adjusts this itself; certificates built by hand must do it here.)
pub fn rfc5280_time(at: SystemTime) -> der::Result<Time> {
    let generalized = GeneralizedTime::from_system_time(at)?;
    let date = generalized.to_date_time();
    if date.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(date)?))
    } else {
        Ok(Time::GeneralTime(generalized))
    }
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// An extension already encoded, so the builder adds it exactly as given.
#[derive(Debug, Clone)]
pub struct PreparedExtension(pub Extension);

impl PreparedExtension {
    pub fn new(
        oid: ObjectIdentifier,
        critical: bool,
        value: &impl Encode,
    ) -> Result<Self, CertificateError> {
        Ok(Self(Extension {
            extn_id: oid,
            critical,
            extn_value: OctetString::new(value.to_der()?)?,
        }))
    }
}

impl const_oid::AssociatedOid for PreparedExtension {
    // Never used: `to_extension` below returns the prepared OID.
    const OID: ObjectIdentifier = rfc5912::ID_CE_BASIC_CONSTRAINTS;
}

impl Encode for PreparedExtension {
    fn encoded_len(&self) -> der::Result<der::Length> {
        self.0.extn_value.encoded_len()
    }

    fn encode(&self, encoder: &mut impl der::Writer) -> der::Result<()> {
        self.0.extn_value.encode(encoder)
    }
}

impl AsExtension for PreparedExtension {
    fn critical(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
        self.0.critical
    }

    fn to_extension(&self, _subject: &Name, _extensions: &[Extension]) -> der::Result<Extension> {
        Ok(self.0.clone())
    }
}

/// The extensions sceau writes, each with the criticality its standard sets.
pub mod extensions {
    use super::*;

    pub fn basic_constraints(
        ca: bool,
        path_len: Option<u8>,
    ) -> Result<PreparedExtension, CertificateError> {
        PreparedExtension::new(
            rfc5912::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca,
                path_len_constraint: path_len,
            },
        )
    }

    pub fn key_usage(
        usages: impl Into<der::flagset::FlagSet<KeyUsages>>,
    ) -> Result<PreparedExtension, CertificateError> {
        PreparedExtension::new(rfc5912::ID_CE_KEY_USAGE, true, &KeyUsage(usages.into()))
    }

    pub fn extended_key_usage(
        purposes: Vec<ObjectIdentifier>,
        critical: bool,
    ) -> Result<PreparedExtension, CertificateError> {
        PreparedExtension::new(
            rfc5912::ID_CE_EXT_KEY_USAGE,
            critical,
            &ExtendedKeyUsage(purposes),
        )
    }

    pub fn subject_key_identifier(
        spki: &SubjectPublicKeyInfoOwned,
    ) -> Result<PreparedExtension, CertificateError> {
        let ski = SubjectKeyIdentifier(OctetString::new(key_identifier(spki))?);
        PreparedExtension::new(rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER, false, &ski)
    }

    pub fn authority_key_identifier(
        issuer: &SubjectPublicKeyInfoOwned,
    ) -> Result<PreparedExtension, CertificateError> {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_identifier(issuer))?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        PreparedExtension::new(rfc5912::ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)
    }

    pub fn crl_distribution_point(url: &str) -> Result<PreparedExtension, CertificateError> {
        let point = DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        };
        PreparedExtension::new(
            rfc5912::ID_CE_CRL_DISTRIBUTION_POINTS,
            false,
            &CrlDistributionPoints(vec![point]),
        )
    }

    /// AIA with the OCSP responder and/or the issuer certificate URL.
    pub fn authority_info_access(
        ocsp: Option<&str>,
        ca_issuers: Option<&str>,
    ) -> Result<PreparedExtension, CertificateError> {
        let mut access = Vec::new();
        if let Some(url) = ocsp {
            access.push(AccessDescription {
                access_method: rfc5912::ID_AD_OCSP,
                access_location: uri(url)?,
            });
        }
        if let Some(url) = ca_issuers {
            access.push(AccessDescription {
                access_method: rfc5912::ID_AD_CA_ISSUERS,
                access_location: uri(url)?,
            });
        }
        PreparedExtension::new(
            rfc5912::ID_PE_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(access),
        )
    }

    pub fn certificate_policies(
        policies: &[ObjectIdentifier],
    ) -> Result<PreparedExtension, CertificateError> {
        let information = policies
            .iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: None,
            })
            .collect();
        PreparedExtension::new(
            rfc5912::ID_CE_CERTIFICATE_POLICIES,
            false,
            &CertificatePolicies(information),
        )
    }

    /// privateKeyUsagePeriod (RFC 3280 §4.2.1.4, non-critical): from `from` for
    /// `days`. EN 319 421 time-stamping units declare when their key signs.
    pub fn private_key_usage_period(
        from: SystemTime,
        days: u32,
    ) -> Result<PreparedExtension, CertificateError> {
        let seconds = |at: SystemTime| {
            at.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let start = std::time::Duration::from_secs(seconds(from));
        let end = start + std::time::Duration::from_secs(u64::from(days) * 86_400);
        let period = x509_cert::ext::pkix::PrivateKeyUsagePeriod {
            not_before: Some(GeneralizedTime::from_unix_duration(start)?),
            not_after: Some(GeneralizedTime::from_unix_duration(end)?),
        };
        PreparedExtension::new(rfc5912::ID_CE_PRIVATE_KEY_USAGE_PERIOD, false, &period)
    }

    /// id-pkix-ocsp-nocheck: the responder's own status is not checked (its
    /// certificate is short-lived instead).
    pub fn ocsp_nocheck() -> Result<PreparedExtension, CertificateError> {
        PreparedExtension::new(OCSP_NOCHECK, false, &der::asn1::Null)
    }

    fn uri(url: &str) -> Result<GeneralName, CertificateError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CertificateError::Invalid {
                field: "url",
                reason: format!("{url:?} is not an http(s) URL"),
            });
        }
        Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
    }
}

/// Everything a certificate says, before it is signed (`signing::tbs_of`
/// makes its TBSCertificate; only `signing` signs it).
#[derive(Debug)]
pub struct CertificateRequest {
    pub subject: Name,
    /// `None` for a self-signed certificate.
    pub issuer: Option<Name>,
    /// Reserved for this certificate's kind (`pki::serials`).
    pub serial: super::serials::ReservedSerial,
    pub validity: Validity,
    pub public_key: SubjectPublicKeyInfoOwned,
    pub extensions: Vec<PreparedExtension>,
}

/// Parses an OID written in a configuration file.
pub fn parse_oid(text: &str) -> Result<ObjectIdentifier, CertificateError> {
    ObjectIdentifier::from_str(text).map_err(|e| CertificateError::Invalid {
        field: "oid",
        reason: format!("{text:?}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Tagged;

    #[test]
    fn serials_are_positive_sixteen_octets_and_differ() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 16);
        assert!(a.as_bytes()[0] & 0x80 == 0 && a.as_bytes()[0] != 0);
    }

    #[test]
    fn names_encode_country_as_printable_string_in_order() {
        let name = SubjectName {
            country: "FR".to_owned(),
            organization: "Sceau Example".to_owned(),
            organizational_unit: None,
            organization_identifier: Some("NTRFR-123456789".to_owned()),
            common_name: "Root".to_owned(),
        }
        .to_name()
        .unwrap();
        assert_eq!(name.0.len(), 4);
        assert_eq!(
            name.0[0].0.as_slice()[0].value.tag(),
            der::Tag::PrintableString
        );
        assert_eq!(
            name.to_string(),
            // RFC 4514 prints an attribute it has no name for as hex of its DER: a UTF8String (0c).
            "CN=Root,2.5.4.97=#0c0f4e545246522d313233343536373839,O=Sceau Example,C=FR"
        );
        let bad = SubjectName {
            country: "France".to_owned(),
            ..SubjectName {
                country: String::new(),
                organization: "x".to_owned(),
                organizational_unit: None,
                organization_identifier: None,
                common_name: "y".to_owned(),
            }
        };
        assert!(bad.to_name().is_err());
    }
}
