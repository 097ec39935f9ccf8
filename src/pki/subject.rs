//! Who a seal certificate names: the organisation identifier (EN 319 412-1 §5.1.4)
//! and the seal subject built from validated registration data, never from a CSR.

use std::fmt;
use std::str::FromStr;

use x509_cert::name::Name;

use super::certificate::{CertificateError, SubjectName};

/// The registration scheme of an organisation identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierScheme {
    /// National trade register (in France: the SIREN).
    Ntr,
    /// VAT number.
    Vat,
    /// PSD2 authorisation number.
    Psd,
}

impl IdentifierScheme {
    pub fn code(self) -> &'static str {
        match self {
            Self::Ntr => "NTR",
            Self::Vat => "VAT",
            Self::Psd => "PSD",
        }
    }
}

/// `NTRFR-123456789`, `VATFR-12123456789`: scheme, country, `-`, reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationIdentifier {
    scheme: IdentifierScheme,
    country: String,
    reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("organization identifier {text:?}: {reason}")]
pub struct OrganizationIdentifierError {
    pub text: String,
    pub reason: &'static str,
}

impl OrganizationIdentifier {
    pub fn scheme(&self) -> IdentifierScheme {
        self.scheme
    }

    /// The ISO 3166 country of the register.
    pub fn country(&self) -> &str {
        &self.country
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl FromStr for OrganizationIdentifier {
    type Err = OrganizationIdentifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| OrganizationIdentifierError {
            text: text.to_owned(),
            reason,
        };
        let (prefix, reference) = text
            .split_once('-')
            .ok_or_else(|| error("must be <scheme><country>-<reference>, e.g. NTRFR-123456789"))?;
        if prefix.len() != 5 || !prefix.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(error(
                "must start with a scheme (NTR, VAT, PSD) and a two-letter country",
            ));
        }
        let scheme = match &prefix[..3] {
            "NTR" => IdentifierScheme::Ntr,
            "VAT" => IdentifierScheme::Vat,
            "PSD" => IdentifierScheme::Psd,
            _ => return Err(error("the scheme must be NTR, VAT or PSD")),
        };
        let country = prefix[3..].to_owned();
        if reference.is_empty()
            || reference.len() > 40
            || !reference
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(error(
                "the reference must be 1 to 40 upper-case letters or digits",
            ));
        }
        // French registers have fixed shapes: a SIREN, or a VAT key and a SIREN.
        if country == "FR" {
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            match scheme {
                IdentifierScheme::Ntr if reference.len() != 9 || !digits(reference) => {
                    return Err(error("a French NTR reference is a 9-digit SIREN"));
                }
                IdentifierScheme::Vat if reference.len() != 11 || !digits(&reference[2..]) => {
                    return Err(error(
                        "a French VAT reference is a 2-character key and a 9-digit SIREN",
                    ));
                }
                _ => {}
            }
        }
        Ok(Self {
            scheme,
            country,
            reference: reference.to_owned(),
        })
    }
}

impl fmt::Display for OrganizationIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}-{}",
            self.scheme.code(),
            self.country,
            self.reference
        )
    }
}

/// The subject of a seal certificate: C, O, organizationIdentifier, CN
/// (EN 319 412-3 §4.2.1), all from the validated registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSubject {
    /// Where the organisation is established (ISO 3166 alpha-2).
    pub country: String,
    /// The legal name as registered.
    pub organization: String,
    pub organization_identifier: OrganizationIdentifier,
    /// The seal's name (the service that seals).
    pub common_name: String,
}

impl SealSubject {
    pub fn to_name(&self) -> Result<Name, CertificateError> {
        SubjectName {
            country: self.country.clone(),
            organization: self.organization.clone(),
            organizational_unit: None,
            organization_identifier: Some(self.organization_identifier.to_string()),
            common_name: self.common_name.clone(),
        }
        .to_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_identifiers_parse_and_print_back() {
        for text in ["NTRFR-552100554", "VATFR-40552100554", "VATBE-0876866678"] {
            let id: OrganizationIdentifier = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        let id: OrganizationIdentifier = "NTRFR-552100554".parse().unwrap();
        assert_eq!(id.scheme(), IdentifierScheme::Ntr);
        assert_eq!(id.country(), "FR");
        assert_eq!(id.reference(), "552100554");
    }

    #[test]
    fn malformed_identifiers_say_why() {
        for (text, needle) in [
            ("552100554", "<scheme><country>"),
            ("XXXFR-552100554", "NTR, VAT or PSD"),
            ("NTRfr-552100554", "two-letter country"),
            ("NTRFR-55210055", "9-digit SIREN"),
            ("NTRFR-", "1 to 40"),
            ("VATFR-552100554", "VAT reference"),
            ("NTRDE-hrb 123", "upper-case"),
        ] {
            let error = text.parse::<OrganizationIdentifier>().unwrap_err();
            assert!(error.to_string().contains(needle), "{text}: {error}");
        }
    }
}
