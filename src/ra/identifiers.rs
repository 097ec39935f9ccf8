//! French business register identifiers, parsed once and trusted after: the
//! SIREN (9 digits, Luhn) and the SIRET (SIREN + 5-digit establishment number,
//! Luhn over 14 digits, except La Poste's establishments, whose digits add up to
//! a multiple of 5), and the organisation identifier derived from them.

use std::fmt;
use std::str::FromStr;

use crate::pki::subject::OrganizationIdentifier;

/// La Poste's SIREN: its many establishments' SIRETs do not follow Luhn.
const LA_POSTE_SIREN: &str = "356000000";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("a SIREN is 9 digits, not {0:?}")]
    SirenShape(String),
    #[error("the SIREN {0} fails its check digit")]
    SirenCheck(String),
    #[error("a SIRET is 14 digits, not {0:?}")]
    SiretShape(String),
    #[error("the SIRET {0} fails its check digit")]
    SiretCheck(String),
}

/// A SIREN whose check digit is right.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siren(String);

/// A SIRET whose check digit is right, with a valid SIREN inside.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siret(String);

/// Luhn over a string of ASCII digits (already checked to be digits).
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum % 10 == 0
}

fn digits_only(text: &str, length: usize) -> Option<String> {
    // People write them with spaces ("552 100 554 00019"): those are dropped.
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (compact.len() == length && compact.bytes().all(|b| b.is_ascii_digit())).then_some(compact)
}

impl FromStr for Siren {
    type Err = IdentifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits =
            digits_only(text, 9).ok_or_else(|| IdentifierError::SirenShape(text.to_owned()))?;
        if !luhn(&digits) {
            return Err(IdentifierError::SirenCheck(digits));
        }
        Ok(Self(digits))
    }
}

impl FromStr for Siret {
    type Err = IdentifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits =
            digits_only(text, 14).ok_or_else(|| IdentifierError::SiretShape(text.to_owned()))?;
        let siren = &digits[..9];
        let valid = if siren == LA_POSTE_SIREN {
            let sum: u32 = digits.bytes().map(|b| u32::from(b - b'0')).sum();
            luhn(&digits) || sum % 5 == 0
        } else {
            luhn(siren) && luhn(&digits)
        };
        if !valid {
            return Err(IdentifierError::SiretCheck(digits));
        }
        Ok(Self(digits))
    }
}

impl Siren {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `NTRFR-<SIREN>` (EN 319 412-1 §5.1.4, national trade register).
    pub fn organization_identifier(&self) -> Result<OrganizationIdentifier, String> {
        // A checked SIREN always makes a well-formed identifier; the error
        // path is there so no invariant has to be asserted with a panic.
        format!("NTRFR-{}", self.0)
            .parse()
            .map_err(|e: crate::pki::subject::OrganizationIdentifierError| e.to_string())
    }
}

impl Siret {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SIREN of the organisation the establishment belongs to.
    pub fn siren(&self) -> Siren {
        Siren(self.0[..9].to_owned())
    }
}

impl fmt::Display for Siren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Siret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_sirens_and_sirets_parse() {
        for siren in [
            "732829320",
            "552100554",
            "356000000",
            "123456782",
            "732 829 320",
        ] {
            assert!(siren.parse::<Siren>().is_ok(), "{siren}");
        }
        // Head offices and establishments of ordinary organisations.
        for siret in ["73282932000074", "55210055400013", "552 100 554 00013"] {
            let parsed: Siret = siret.parse().unwrap();
            assert!(parsed.siren().as_str().len() == 9);
        }
    }

    #[test]
    fn wrong_check_digits_and_shapes_are_named() {
        assert_eq!(
            "732829321".parse::<Siren>(),
            Err(IdentifierError::SirenCheck("732829321".to_owned()))
        );
        assert!(matches!(
            "73282932".parse::<Siren>(),
            Err(IdentifierError::SirenShape(_))
        ));
        assert!(matches!(
            "73282932O".parse::<Siren>(),
            Err(IdentifierError::SirenShape(_))
        ));
        assert_eq!(
            "73282932000075".parse::<Siret>(),
            Err(IdentifierError::SiretCheck("73282932000075".to_owned()))
        );
        // A SIRET that passes Luhn over 14 digits but whose SIREN does not.
        assert!("12345678900007".parse::<Siret>().is_err());
    }

    #[test]
    fn la_poste_establishments_use_the_sum_of_digits() {
        // The head office passes Luhn.
        assert!("35600000000048".parse::<Siret>().is_ok());
        // An establishment whose digits sum to a multiple of 5 but that fails Luhn.
        let establishment = "35600000049837";
        let sum: u32 = establishment.bytes().map(|b| u32::from(b - b'0')).sum();
        assert_eq!(sum % 5, 0);
        assert!(!luhn(establishment));
        assert!(establishment.parse::<Siret>().is_ok());
        // The same digits under another SIREN are refused.
        assert!("73282932049837".parse::<Siret>().is_err());
        // A La Poste number whose digits do not sum to a multiple of 5.
        assert!("35600000049838".parse::<Siret>().is_err());
    }

    #[test]
    fn the_organisation_identifier_is_ntrfr_and_the_siren() {
        let siren: Siren = "732829320".parse().unwrap();
        assert_eq!(
            siren.organization_identifier().unwrap().to_string(),
            "NTRFR-732829320"
        );
    }
}
