//! The pre-signing profiles of the certificates that are not seal
//! certificates: the CAs (root, issuing, client authentication), the services
//! (OCSP responder, time-stamping unit) and the TLS clients. RFC 5280 for all,
//! RFC 6960 and RFC 3161 for the services.

use std::collections::BTreeSet;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::Decode;
use x509_cert::Certificate;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::{Finding, Lint};
use crate::pki::certificate::{OCSP_NOCHECK, key_identifier};
use crate::pki::signing::CertificateKind;

/// Checks the TBSCertificate of `kind`, issued by `issuer` (`None`: the
/// certificate is self-signed, the root). An empty list means it may be signed.
pub fn certificate(
    kind: CertificateKind,
    tbs: &TbsCertificate,
    issuer: Option<&Certificate>,
) -> Vec<Finding> {
    let mut lint = Lint::default();
    lint.common(tbs, issuer);
    let extensions: Vec<&Extension> = tbs.extensions.iter().flatten().collect();
    let find = |oid: ObjectIdentifier| extensions.iter().copied().find(|e| e.extn_id == oid);
    let basic = find(rfc5912::ID_CE_BASIC_CONSTRAINTS).and_then(|e| {
        lint.decode::<BasicConstraints>("rfc5280.basic_constraints", e)
            .map(|b| (e.critical, b))
    });
    let usages = match find(rfc5912::ID_CE_KEY_USAGE) {
        None => {
            lint.fail("rfc5280.key_usage", "keyUsage is missing");
            None
        }
        Some(extension) => {
            if !extension.critical {
                lint.fail("rfc5280.key_usage", "keyUsage must be critical");
            }
            lint.decode::<KeyUsage>("rfc5280.key_usage", extension)
                .map(|KeyUsage(usages)| usages.into_iter().collect::<Vec<_>>())
        }
    };
    let eku = find(rfc5912::ID_CE_EXT_KEY_USAGE).and_then(|e| {
        lint.decode::<ExtendedKeyUsage>("rfc5280.extended_key_usage", e)
            .map(|ExtendedKeyUsage(purposes)| (e.critical, purposes))
    });
    if kind.is_ca() {
        match basic {
            Some((
                true,
                BasicConstraints {
                    ca: true,
                    path_len_constraint,
                },
            )) => {
                if kind != CertificateKind::Root && path_len_constraint != Some(0) {
                    lint.fail(
                        "ca.path_length",
                        "a subordinate CA issues end entities only: pathLenConstraint 0",
                    );
                }
            }
            _ => lint.fail(
                "ca.basic_constraints",
                "a CA certificate needs a critical basicConstraints with cA",
            ),
        }
        if let Some(usages) = &usages
            && !(usages.contains(&KeyUsages::KeyCertSign) && usages.contains(&KeyUsages::CRLSign))
        {
            lint.fail(
                "ca.key_usage",
                "a CA key signs certificates and CRLs: keyCertSign and cRLSign",
            );
        }
    } else {
        if basic.is_some_and(|(_, b)| b.ca) {
            lint.fail(
                "end_entity.basic_constraints",
                "an end-entity certificate is not a CA",
            );
        }
        if let Some(usages) = &usages {
            let allowed: &[KeyUsages] = match kind {
                CertificateKind::TimeStampingUnit => {
                    &[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]
                }
                _ => &[KeyUsages::DigitalSignature],
            };
            if !usages.contains(&KeyUsages::DigitalSignature)
                || usages.iter().any(|u| !allowed.contains(u))
            {
                lint.fail(
                    "end_entity.key_usage",
                    format!(
                        "{} signs with digitalSignature, not {usages:?}",
                        kind.name()
                    ),
                );
            }
        }
        let wanted = match kind {
            CertificateKind::ClientAuth => rfc5912::ID_KP_CLIENT_AUTH,
            CertificateKind::OcspResponder => rfc5912::ID_KP_OCSP_SIGNING,
            _ => rfc5912::ID_KP_TIME_STAMPING,
        };
        match &eku {
            Some((critical, purposes)) if purposes.as_slice() == [wanted] => {
                // RFC 3161 §2.3: the time-stamping purpose alone, critical.
                if kind == CertificateKind::TimeStampingUnit && !critical {
                    lint.fail(
                        "tsu.extended_key_usage",
                        "id-kp-timeStamping must be critical",
                    );
                }
            }
            _ => lint.fail(
                "end_entity.extended_key_usage",
                format!(
                    "{} certificates carry exactly the purpose {wanted}",
                    kind.name()
                ),
            ),
        }
        if kind == CertificateKind::OcspResponder && find(OCSP_NOCHECK).is_none() {
            lint.fail(
                "ocsp.nocheck",
                "an OCSP responder certificate carries id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1)",
            );
        }
        if matches!(
            kind,
            CertificateKind::ClientAuth | CertificateKind::TimeStampingUnit
        ) && find(rfc5912::ID_CE_CRL_DISTRIBUTION_POINTS).is_none()
        {
            lint.fail(
                "end_entity.crl_distribution",
                "cRLDistributionPoints is missing: the certificate can be revoked",
            );
        }
    }
    lint.findings
}

impl Lint {
    /// RFC 5280 for every kind: version, serial, names, validity within the
    /// issuer's, unique extensions, key identifiers.
    fn common(&mut self, tbs: &TbsCertificate, issuer: Option<&Certificate>) {
        if tbs.version != x509_cert::certificate::Version::V3 {
            self.fail("rfc5280.version", "the certificate must be version 3");
        }
        let serial = tbs.serial_number.as_bytes();
        let significant = serial.iter().skip_while(|b| **b == 0).count();
        if serial.first().is_some_and(|b| b & 0x80 != 0) || significant == 0 || serial.len() > 20 {
            self.fail(
                "rfc5280.serial",
                "the serial number must be positive and at most 20 octets",
            );
        }
        let (issuer_name, issuer_key) = match issuer {
            Some(ca) => (
                &ca.tbs_certificate.subject,
                &ca.tbs_certificate.subject_public_key_info,
            ),
            None => (&tbs.subject, &tbs.subject_public_key_info),
        };
        if tbs.issuer != *issuer_name {
            self.fail("rfc5280.issuer", "the issuer is not the CA's subject");
        }
        let not_before = tbs.validity.not_before.to_system_time();
        let not_after = tbs.validity.not_after.to_system_time();
        if not_after <= not_before {
            self.fail("rfc5280.validity", "notAfter is not after notBefore");
        }
        if let Some(ca) = issuer {
            let ca = &ca.tbs_certificate.validity;
            if not_after > ca.not_after.to_system_time()
                || not_before < ca.not_before.to_system_time()
            {
                self.fail(
                    "validity.within_issuer",
                    "the certificate would outlive its CA or start before it",
                );
            }
        }
        let mut seen = BTreeSet::new();
        for extension in tbs.extensions.iter().flatten() {
            if !seen.insert(extension.extn_id) {
                self.fail(
                    "rfc5280.extensions",
                    format!("{} appears twice", extension.extn_id),
                );
            }
        }
        let find = |oid| tbs.extensions.iter().flatten().find(|e| e.extn_id == oid);
        match find(rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER) {
            Some(ski) => self.subject_key_id(ski, tbs),
            None => self.fail("rfc5280.ski", "subjectKeyIdentifier is missing"),
        }
        match (find(rfc5912::ID_CE_AUTHORITY_KEY_IDENTIFIER), issuer) {
            (Some(aki), Some(ca)) => self.authority_key_id(aki, ca),
            (None, Some(_)) => self.fail("rfc5280.aki", "authorityKeyIdentifier is missing"),
            (Some(aki), None) => {
                let own = key_identifier(issuer_key);
                let names_own = x509_cert::ext::pkix::AuthorityKeyIdentifier::from_der(
                    aki.extn_value.as_bytes(),
                )
                .ok()
                .and_then(|a| a.key_identifier)
                .is_some_and(|k| k.as_bytes() == own.as_slice());
                if !names_own {
                    self.fail(
                        "rfc5280.aki",
                        "a self-signed certificate's authorityKeyIdentifier names its own key",
                    );
                }
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use der::Decode as _;
    use p256::pkcs8::EncodePublicKey as _;
    use x509_cert::certificate::Version;
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

    use super::*;
    use crate::pki::certificate::{PreparedExtension, SubjectName, extensions as ext};

    fn key() -> SubjectPublicKeyInfoOwned {
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let der = secret.public_key().to_public_key_der().unwrap();
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).unwrap()
    }

    fn name(common_name: &str) -> x509_cert::name::Name {
        SubjectName {
            country: "FR".to_owned(),
            organization: "Sceau Test".to_owned(),
            organizational_unit: None,
            organization_identifier: None,
            common_name: common_name.to_owned(),
        }
        .to_name()
        .unwrap()
    }

    fn tbs(
        subject: &str,
        issuer: Option<&Certificate>,
        spki: SubjectPublicKeyInfoOwned,
        days: u32,
        extensions: Vec<PreparedExtension>,
    ) -> TbsCertificate {
        let now = SystemTime::now() - Duration::from_secs(60);
        TbsCertificate {
            version: Version::V3,
            serial_number: crate::pki::certificate::random_serial().unwrap(),
            signature: AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            issuer: issuer.map_or_else(|| name(subject), |ca| ca.tbs_certificate.subject.clone()),
            validity: crate::pki::certificate::validity(now, days).unwrap(),
            subject: name(subject),
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions.into_iter().map(|e| e.0).collect()),
        }
    }

    /// A CA "certificate" for the lint: only its TBS is read.
    fn ca(days: u32) -> Certificate {
        let spki = key();
        let tbs = tbs(
            "CA",
            None,
            spki.clone(),
            days,
            vec![
                ext::basic_constraints(true, Some(0)).unwrap(),
                ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
                ext::subject_key_identifier(&spki).unwrap(),
            ],
        );
        Certificate {
            signature_algorithm: tbs.signature.clone(),
            tbs_certificate: tbs,
            signature: der::asn1::BitString::from_bytes(&[0]).unwrap(),
        }
    }

    fn rules(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.rule).collect()
    }

    fn service(
        kind: CertificateKind,
        ca: &Certificate,
        days: u32,
        nocheck: bool,
        eku_critical: bool,
    ) -> TbsCertificate {
        let spki = key();
        let purpose = match kind {
            CertificateKind::OcspResponder => rfc5912::ID_KP_OCSP_SIGNING,
            CertificateKind::TimeStampingUnit => rfc5912::ID_KP_TIME_STAMPING,
            _ => rfc5912::ID_KP_CLIENT_AUTH,
        };
        let mut extensions = vec![
            ext::key_usage(KeyUsages::DigitalSignature).unwrap(),
            ext::extended_key_usage(vec![purpose], eku_critical).unwrap(),
            ext::subject_key_identifier(&spki).unwrap(),
            ext::authority_key_identifier(&ca.tbs_certificate.subject_public_key_info).unwrap(),
            ext::crl_distribution_point("http://pki.test/crl").unwrap(),
        ];
        if nocheck {
            extensions.push(ext::ocsp_nocheck().unwrap());
        }
        tbs("Service", Some(ca), spki, days, extensions)
    }

    #[test]
    fn each_kind_is_held_to_its_profile() {
        let issuing = ca(3650);
        let root = ca(7300);
        assert_eq!(
            rules(&certificate(
                CertificateKind::Root,
                &root.tbs_certificate,
                None
            )),
            Vec::<&str>::new()
        );

        let ocsp = service(CertificateKind::OcspResponder, &issuing, 30, true, false);
        assert_eq!(
            rules(&certificate(
                CertificateKind::OcspResponder,
                &ocsp,
                Some(&issuing)
            )),
            Vec::<&str>::new()
        );
        let bare = service(CertificateKind::OcspResponder, &issuing, 30, false, false);
        assert_eq!(
            rules(&certificate(
                CertificateKind::OcspResponder,
                &bare,
                Some(&issuing)
            )),
            ["ocsp.nocheck"]
        );

        let tsu = service(
            CertificateKind::TimeStampingUnit,
            &issuing,
            365,
            false,
            true,
        );
        assert_eq!(
            rules(&certificate(
                CertificateKind::TimeStampingUnit,
                &tsu,
                Some(&issuing)
            )),
            Vec::<&str>::new()
        );
        let loose = service(
            CertificateKind::TimeStampingUnit,
            &issuing,
            365,
            false,
            false,
        );
        assert_eq!(
            rules(&certificate(
                CertificateKind::TimeStampingUnit,
                &loose,
                Some(&issuing)
            )),
            ["tsu.extended_key_usage"]
        );
        let outliving = service(
            CertificateKind::TimeStampingUnit,
            &issuing,
            4000,
            false,
            true,
        );
        assert_eq!(
            rules(&certificate(
                CertificateKind::TimeStampingUnit,
                &outliving,
                Some(&issuing)
            )),
            ["validity.within_issuer"]
        );

        let client = service(CertificateKind::ClientAuth, &issuing, 365, false, false);
        assert_eq!(
            rules(&certificate(
                CertificateKind::ClientAuth,
                &client,
                Some(&issuing)
            )),
            Vec::<&str>::new()
        );
        // The same TBS is not what an OCSP responder or a CA may be.
        assert_eq!(
            rules(&certificate(
                CertificateKind::OcspResponder,
                &client,
                Some(&issuing)
            )),
            ["end_entity.extended_key_usage", "ocsp.nocheck"]
        );
        assert_eq!(
            rules(&certificate(
                CertificateKind::IssuingCa,
                &client,
                Some(&issuing)
            )),
            ["ca.basic_constraints", "ca.key_usage"]
        );
        // A CA certificate is not a client's (and this one outlives the CA
        // named as its issuer, whose key it does not name).
        assert_eq!(
            rules(&certificate(
                CertificateKind::ClientAuth,
                &root.tbs_certificate,
                Some(&issuing)
            )),
            [
                "validity.within_issuer",
                "rfc5280.aki",
                "end_entity.basic_constraints",
                "end_entity.key_usage",
                "end_entity.extended_key_usage",
                "end_entity.crl_distribution"
            ]
        );
    }
}
