//! The in-process linter that runs on every TBSCertificate before the CA key
//! signs it (Boulder's practice): it decodes what was encoded and checks it
//! against the policy and EN 319 412-1/-3/-5 and RFC 5280. A finding stops the
//! issuance. Seal certificates here; every other kind in `kinds`.

use std::collections::BTreeSet;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc4519, rfc5912};
use der::asn1::Ia5String;
use der::{Decode, Tag, Tagged};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CertificatePolicies, CrlDistributionPoints,
    KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::{Certificate, ext::Extension};

use super::certificate::{ORGANIZATION_IDENTIFIER, key_identifier};
use super::policy::CertificatePolicy;
use super::qc::{self, QcSummary};
use super::subject::OrganizationIdentifier;
use crate::crypto::PublicKeyKind;

mod kinds;
pub use kinds::certificate;

/// id-qt-cps (RFC 5280 §4.2.1.4).
pub const ID_QT_CPS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.2.1");

/// One thing wrong with a TBSCertificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// A stable rule name, e.g. `seal.key_usage`.
    pub rule: &'static str,
    pub message: String,
}

/// The extensions a seal certificate carries; every one is required, no other is allowed.
const SEAL_EXTENSIONS: [(ObjectIdentifier, &str); 7] = [
    (rfc5912::ID_CE_KEY_USAGE, "keyUsage"),
    (rfc5912::ID_CE_CERTIFICATE_POLICIES, "certificatePolicies"),
    (qc::ID_PE_QC_STATEMENTS, "qcStatements"),
    (rfc5912::ID_PE_AUTHORITY_INFO_ACCESS, "authorityInfoAccess"),
    (
        rfc5912::ID_CE_CRL_DISTRIBUTION_POINTS,
        "cRLDistributionPoints",
    ),
    (
        rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER,
        "subjectKeyIdentifier",
    ),
    (
        rfc5912::ID_CE_AUTHORITY_KEY_IDENTIFIER,
        "authorityKeyIdentifier",
    ),
];

/// Checks a seal certificate's TBSCertificate; an empty list means it may be signed.
pub fn seal_certificate(
    tbs: &TbsCertificate,
    policy: &CertificatePolicy,
    issuer: &Certificate,
) -> Vec<Finding> {
    let mut lint = Lint::default();
    lint.structure(tbs, issuer);
    lint.validity(tbs, policy, issuer);
    lint.subject(tbs);
    lint.public_key(tbs, policy);
    let extensions = lint.extension_set(tbs);
    for extension in extensions {
        match extension.extn_id {
            rfc5912::ID_CE_KEY_USAGE => lint.key_usage(extension),
            rfc5912::ID_CE_CERTIFICATE_POLICIES => lint.policies(extension, policy),
            qc::ID_PE_QC_STATEMENTS => lint.qc_statements(extension, policy, tbs),
            rfc5912::ID_PE_AUTHORITY_INFO_ACCESS => lint.authority_info_access(extension, policy),
            rfc5912::ID_CE_CRL_DISTRIBUTION_POINTS => lint.crl_distribution(extension, policy),
            rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER => lint.subject_key_id(extension, tbs),
            rfc5912::ID_CE_AUTHORITY_KEY_IDENTIFIER => lint.authority_key_id(extension, issuer),
            _ => {}
        }
    }
    lint.findings
}

#[derive(Default)]
struct Lint {
    findings: Vec<Finding>,
}

impl Lint {
    fn fail(&mut self, rule: &'static str, message: impl Into<String>) {
        self.findings.push(Finding {
            rule,
            message: message.into(),
        });
    }

    fn decode<'a, T: Decode<'a>>(
        &mut self,
        rule: &'static str,
        extension: &'a Extension,
    ) -> Option<T> {
        match T::from_der(extension.extn_value.as_bytes()) {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(rule, format!("{} does not decode: {e}", extension.extn_id));
                None
            }
        }
    }

    fn structure(&mut self, tbs: &TbsCertificate, issuer: &Certificate) {
        if tbs.version != Version::V3 {
            self.fail("rfc5280.version", "the certificate must be version 3");
        }
        let serial = tbs.serial_number.as_bytes();
        // SerialNumber keeps the DER content octets: a leading 0x00 only when the next bit is set.
        let significant = serial.iter().skip_while(|b| **b == 0).count();
        if serial.first().is_some_and(|b| b & 0x80 != 0) || significant == 0 {
            self.fail("rfc5280.serial", "the serial number must be positive");
        }
        if serial.len() > 20 {
            self.fail(
                "rfc5280.serial",
                "the serial number is longer than 20 octets",
            );
        }
        if significant < 8 {
            self.fail(
                "seal.serial_entropy",
                "the serial number must carry at least 64 bits",
            );
        }
        if tbs.issuer != issuer.tbs_certificate.subject {
            self.fail("rfc5280.issuer", "the issuer is not the CA's subject");
        }
        if tbs.issuer_unique_id.is_some() || tbs.subject_unique_id.is_some() {
            self.fail(
                "rfc5280.unique_id",
                "unique identifiers must not be present",
            );
        }
        let expected = issuer.tbs_certificate.subject_public_key_info.algorithm.oid;
        let signature = tbs.signature.oid;
        let rsa_issuer = expected == rfc5912::RSA_ENCRYPTION;
        let rsa_signature = [
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        ]
        .contains(&signature);
        if rsa_issuer != rsa_signature {
            self.fail(
                "rfc5280.signature",
                format!("the signature algorithm {signature} does not fit the CA key"),
            );
        }
    }

    fn validity(&mut self, tbs: &TbsCertificate, policy: &CertificatePolicy, issuer: &Certificate) {
        let not_before = tbs.validity.not_before.to_system_time();
        let not_after = tbs.validity.not_after.to_system_time();
        let Ok(length) = not_after.duration_since(not_before) else {
            self.fail("rfc5280.validity", "notAfter is before notBefore");
            return;
        };
        let maximum = Duration::from_secs(u64::from(policy.max_validity_days) * 86_400);
        if length > maximum {
            self.fail(
                "seal.validity",
                format!(
                    "valid {} days, more than the policy's {}",
                    length.as_secs() / 86_400,
                    policy.max_validity_days
                ),
            );
        }
        for (name, time) in [
            ("notBefore", &tbs.validity.not_before),
            ("notAfter", &tbs.validity.not_after),
        ] {
            let year = time.to_date_time().year();
            let utc = matches!(time, x509_cert::time::Time::UtcTime(_));
            if utc != (year < 2050) {
                self.fail(
                    "rfc5280.time_encoding",
                    format!("{name} must be UTCTime through 2049 and GeneralizedTime after"),
                );
            }
        }
        let ca = &issuer.tbs_certificate.validity;
        if not_before < ca.not_before.to_system_time() || not_after > ca.not_after.to_system_time()
        {
            self.fail(
                "seal.validity",
                "the certificate would outlive its CA or start before it",
            );
        }
    }

    /// EN 319 412-3 §4.2.1: countryName, organizationName, organizationIdentifier,
    /// commonName; each once, nothing else.
    fn subject(&mut self, tbs: &TbsCertificate) {
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        for rdn in tbs.subject.0.iter() {
            for atv in rdn.0.iter() {
                if seen.contains(&atv.oid) {
                    self.fail(
                        "en319412-3.subject",
                        format!("{} appears twice in the subject", atv.oid),
                    );
                }
                seen.push(atv.oid);
                match atv.oid {
                    rfc4519::C => {
                        let ok = atv.value.tag() == Tag::PrintableString
                            && atv.value.value().len() == 2
                            && atv.value.value().iter().all(u8::is_ascii_uppercase);
                        if !ok {
                            self.fail(
                                "rfc5280.country",
                                "countryName must be a two-letter PrintableString",
                            );
                        }
                    }
                    rfc4519::O | rfc4519::CN => {
                        if atv.value.tag() != Tag::Utf8String || atv.value.value().is_empty() {
                            self.fail(
                                "en319412-3.subject",
                                format!("{} must be a non-empty UTF8String", atv.oid),
                            );
                        }
                    }
                    ORGANIZATION_IDENTIFIER => {
                        let parsed = std::str::from_utf8(atv.value.value())
                            .ok()
                            .map(str::parse::<OrganizationIdentifier>);
                        if !matches!(parsed, Some(Ok(_))) || atv.value.tag() != Tag::Utf8String {
                            self.fail(
                                "en319412-1.organization_identifier",
                                "organizationIdentifier must follow EN 319 412-1 §5.1.4",
                            );
                        }
                    }
                    other => self.fail(
                        "en319412-3.subject",
                        format!("{other} is not allowed in a seal certificate's subject"),
                    ),
                }
            }
        }
        for (oid, name) in [
            (rfc4519::C, "countryName"),
            (rfc4519::O, "organizationName"),
            (ORGANIZATION_IDENTIFIER, "organizationIdentifier"),
            (rfc4519::CN, "commonName"),
        ] {
            if !seen.contains(&oid) {
                self.fail("en319412-3.subject", format!("{name} is missing"));
            }
        }
    }

    fn public_key(&mut self, tbs: &TbsCertificate, policy: &CertificatePolicy) {
        match PublicKeyKind::of(&tbs.subject_public_key_info) {
            Ok(kind) => {
                let accepted = if policy.key.generation.is_ca_managed() {
                    let generated = crate::hsm::KeyAlgorithm::of(kind);
                    generated
                        .filter(|a| policy.key.algorithms.contains(a))
                        .map(|_| ())
                        .ok_or_else(|| format!("{kind:?} is not among the policy's algorithms"))
                } else {
                    policy.key.accepts(kind)
                };
                if let Err(reason) = accepted {
                    self.fail("seal.public_key", reason);
                }
            }
            Err(e) => self.fail("seal.public_key", e.to_string()),
        }
    }

    /// Every required extension once, and no other.
    fn extension_set<'a>(&mut self, tbs: &'a TbsCertificate) -> Vec<&'a Extension> {
        let extensions: Vec<&Extension> = tbs.extensions.iter().flatten().collect();
        let mut seen = BTreeSet::new();
        for extension in &extensions {
            if !seen.insert(extension.extn_id) {
                self.fail(
                    "rfc5280.extensions",
                    format!("{} appears twice", extension.extn_id),
                );
            }
            if !SEAL_EXTENSIONS
                .iter()
                .any(|(oid, _)| *oid == extension.extn_id)
            {
                self.fail(
                    "seal.extensions",
                    format!("{} is not allowed in a seal certificate", extension.extn_id),
                );
            }
        }
        for (oid, name) in SEAL_EXTENSIONS {
            if !seen.contains(&oid) {
                self.fail("seal.extensions", format!("{name} is missing"));
            }
        }
        extensions
    }

    /// Seed 000 §11 and EN 319 412-3 LEG-4.3.1-3/-4: a seal key makes seals and
    /// nothing else, so the only usage is nonRepudiation (type A), critical.
    fn key_usage(&mut self, extension: &Extension) {
        if !extension.critical {
            self.fail("rfc5280.key_usage", "keyUsage must be critical");
        }
        if let Some(KeyUsage(usages)) = self.decode::<KeyUsage>("rfc5280.key_usage", extension) {
            if usages.into_iter().collect::<Vec<_>>() != [KeyUsages::NonRepudiation] {
                self.fail(
                    "seal.key_usage",
                    format!(
                        "a seal key may only be used for nonRepudiation (contentCommitment), not {usages:?}"
                    ),
                );
            }
        }
    }

    fn policies(&mut self, extension: &Extension, policy: &CertificatePolicy) {
        if extension.critical {
            self.fail(
                "en319412-2.certificate_policies",
                "certificatePolicies must not be critical",
            );
        }
        let Some(CertificatePolicies(policies)) =
            self.decode::<CertificatePolicies>("rfc5280.certificate_policies", extension)
        else {
            return;
        };
        let etsi: Vec<_> = policies
            .iter()
            .filter(|p| {
                p.policy_identifier
                    .as_bytes()
                    .starts_with(ObjectIdentifier::new_unwrap("0.4.0.194112").as_bytes())
            })
            .map(|p| p.policy_identifier)
            .collect();
        if etsi != [policy.level.etsi_policy_oid()] {
            self.fail(
                "en319411-2.policy",
                format!(
                    "exactly one ETSI policy, {} for {}, is required; found {etsi:?}",
                    policy.level.etsi_policy_oid(),
                    policy.level.name()
                ),
            );
        }
        match policies
            .iter()
            .find(|p| p.policy_identifier == policy.ca_policy_oid)
        {
            None => self.fail(
                "seal.ca_policy",
                format!("the CA policy {} is missing", policy.ca_policy_oid),
            ),
            Some(information) => {
                let cps = information
                    .policy_qualifiers
                    .iter()
                    .flatten()
                    .find_map(|q| {
                        (q.policy_qualifier_id == ID_QT_CPS)
                            .then(|| q.qualifier.as_ref()?.decode_as::<Ia5String>().ok())
                            .flatten()
                    });
                if cps.as_ref().map(|u| u.as_str()) != Some(policy.urls.cps_uri.as_str()) {
                    self.fail(
                        "seal.cps",
                        format!(
                            "the CA policy must carry the CPS qualifier {}",
                            policy.urls.cps_uri
                        ),
                    );
                }
            }
        }
        if policies.len() != 2 {
            self.fail(
                "seal.certificate_policies",
                "only the ETSI policy and the CA policy belong here",
            );
        }
    }

    /// EN 319 412-5 for an EU qualified seal certificate.
    fn qc_statements(
        &mut self,
        extension: &Extension,
        policy: &CertificatePolicy,
        tbs: &TbsCertificate,
    ) {
        if extension.critical {
            self.fail(
                "en319412-5.criticality",
                "qcStatements must not be critical",
            );
        }
        let summary = match QcSummary::from_der(extension.extn_value.as_bytes()) {
            Ok(summary) => summary,
            Err(e) => {
                self.fail(
                    "en319412-5.syntax",
                    format!("qcStatements do not decode: {e}"),
                );
                return;
            }
        };
        if !summary.compliance {
            self.fail("en319412-5.qc_compliance", "QcCompliance is missing");
        }
        if summary.types != [qc::QC_TYPE_ESEAL] {
            self.fail(
                "en319412-5.qc_type",
                format!(
                    "QcType must be exactly eseal ({}); found {:?}",
                    qc::QC_TYPE_ESEAL,
                    summary.types
                ),
            );
        }
        if summary.sscd != policy.level.is_qscd() {
            self.fail(
                "en319412-5.qc_sscd",
                format!(
                    "QcSSCD must be present exactly in {} certificates",
                    policy.level.name()
                ),
            );
        }
        if summary.pds.is_empty() {
            self.fail("en319412-5.qc_pds", "QcPDS is missing");
        } else {
            if !summary.pds.iter().any(|(_, language)| language == "en") {
                self.fail(
                    "en319412-5.qc_pds",
                    "a PKI disclosure statement in English is required",
                );
            }
            if let Some((url, _)) = summary
                .pds
                .iter()
                .find(|(url, _)| !url.starts_with("https://"))
            {
                self.fail("en319412-5.qc_pds", format!("{url} is not https"));
            }
        }
        let has_identifier = tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .any(|atv| atv.oid == ORGANIZATION_IDENTIFIER);
        if has_identifier && summary.semantics_identifier != Some(qc::SEMANTICS_ID_LEGAL) {
            self.fail(
                "en319412-1.semantics_identifier",
                "an organizationIdentifier needs the legal-person semantics identifier",
            );
        }
        if !summary.unknown.is_empty() {
            self.fail(
                "en319412-5.unknown",
                format!("unexpected statements {:?}", summary.unknown),
            );
        }
    }

    fn authority_info_access(&mut self, extension: &Extension, policy: &CertificatePolicy) {
        if extension.critical {
            self.fail("rfc5280.aia", "authorityInfoAccess must not be critical");
        }
        let Some(AuthorityInfoAccessSyntax(access)) =
            self.decode::<AuthorityInfoAccessSyntax>("rfc5280.aia", extension)
        else {
            return;
        };
        for (method, url, name) in [
            (rfc5912::ID_AD_OCSP, &policy.urls.ocsp_url, "OCSP"),
            (
                rfc5912::ID_AD_CA_ISSUERS,
                &policy.urls.ca_issuers_url,
                "caIssuers",
            ),
        ] {
            let found = access.iter().any(|a| {
                a.access_method == method
                    && matches!(&a.access_location, GeneralName::UniformResourceIdentifier(u) if u.as_str() == url)
            });
            if !found {
                self.fail(
                    "en319412-2.aia",
                    format!("authorityInfoAccess must give the {name} URL {url}"),
                );
            }
        }
    }

    fn crl_distribution(&mut self, extension: &Extension, policy: &CertificatePolicy) {
        if extension.critical {
            self.fail(
                "en319412-2.crl_dp",
                "cRLDistributionPoints must not be critical",
            );
        }
        let Some(CrlDistributionPoints(points)) =
            self.decode::<CrlDistributionPoints>("rfc5280.crl_dp", extension)
        else {
            return;
        };
        let found = points.iter().any(|point: &DistributionPoint| {
            matches!(&point.distribution_point, Some(DistributionPointName::FullName(names))
                if names.iter().any(|n| matches!(n, GeneralName::UniformResourceIdentifier(u) if u.as_str() == policy.urls.crl_url)))
        });
        if !found {
            self.fail(
                "en319412-2.crl_dp",
                format!("the CRL URL {} is missing", policy.urls.crl_url),
            );
        }
    }

    fn subject_key_id(&mut self, extension: &Extension, tbs: &TbsCertificate) {
        if let Some(SubjectKeyIdentifier(id)) =
            self.decode::<SubjectKeyIdentifier>("rfc5280.ski", extension)
            && id.as_bytes() != key_identifier(&tbs.subject_public_key_info)
        {
            self.fail("rfc5280.ski", "subjectKeyIdentifier does not match the key");
        }
    }

    fn authority_key_id(&mut self, extension: &Extension, issuer: &Certificate) {
        let Some(aki) = self.decode::<AuthorityKeyIdentifier>("rfc5280.aki", extension) else {
            return;
        };
        let issuer_ski = issuer
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
            .map(|ski| ski.0.as_bytes().to_vec())
            .unwrap_or_else(|| key_identifier(&issuer.tbs_certificate.subject_public_key_info));
        if aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(issuer_ski.as_slice()) {
            self.fail(
                "rfc5280.aki",
                "authorityKeyIdentifier is not the CA's subjectKeyIdentifier",
            );
        }
        if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial_number.is_some() {
            self.fail(
                "rfc5280.aki",
                "authorityKeyIdentifier must carry the key identifier only",
            );
        }
    }
}
