//! Qualified-certificate statements (RFC 3739, EN 319 412-5): the ASN.1 types
//! the x509-cert crate lacks, their OIDs, and the statements a seal certificate
//! carries.

use const_oid::ObjectIdentifier;
use der::asn1::{Ia5String, PrintableString};
use der::{Any, Decode, Encode, Sequence};

/// id-pe-qcStatements (RFC 3739 §3.2.6).
pub const ID_PE_QC_STATEMENTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.3");
/// id-qcs-pkixQCSyntax-v2: its statementInfo is SemanticsInformation.
pub const ID_QCS_PKIX_QC_SYNTAX_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.11.2");
/// id-etsi-qcs-QcCompliance: an EU qualified certificate.
pub const QC_COMPLIANCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.1");
/// id-etsi-qcs-QcRetentionPeriod: years the registration data is kept after expiry.
pub const QC_RETENTION_PERIOD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.3");
/// id-etsi-qcs-QcSSCD: the private key is in a qualified device (QSCD).
pub const QC_SSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.4");
/// id-etsi-qcs-QcPDS: where the PKI disclosure statements are.
pub const QC_PDS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.5");
/// id-etsi-qcs-QcType.
pub const QC_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6");
/// id-etsi-qct-esign.
pub const QC_TYPE_ESIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.1");
/// id-etsi-qct-eseal.
pub const QC_TYPE_ESEAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.2");
/// id-etsi-qct-web.
pub const QC_TYPE_WEB: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.3");
/// id-etsi-qcs-semanticsId-Legal (EN 319 412-1 §5.1.4): the organizationIdentifier
/// follows the `NTR`/`VAT`/`PSD`/`LEI` + country + `-` syntax.
pub const SEMANTICS_ID_LEGAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.194121.1.2");

/// QCStatement ::= SEQUENCE { statementId OID, statementInfo ANY OPTIONAL }
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub struct QcStatement {
    pub statement_id: ObjectIdentifier,
    pub statement_info: Option<Any>,
}

/// QCStatements ::= SEQUENCE OF QCStatement
pub type QcStatements = Vec<QcStatement>;

/// PdsLocation ::= SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub struct PdsLocation {
    pub url: Ia5String,
    pub language: PrintableString,
}

/// SemanticsInformation ::= SEQUENCE { semanticsIdentifier OID OPTIONAL, … }.
/// sceau never writes nameRegistrationAuthorities.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub struct SemanticsInformation {
    pub semantics_identifier: Option<ObjectIdentifier>,
}

/// What the statements say, in a form that is easy to compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QcSummary {
    pub compliance: bool,
    pub types: Vec<ObjectIdentifier>,
    pub sscd: bool,
    /// (url, language)
    pub pds: Vec<(String, String)>,
    pub semantics_identifier: Option<ObjectIdentifier>,
    pub retention_period_years: Option<u32>,
    /// Statements sceau does not know.
    pub unknown: Vec<ObjectIdentifier>,
}

impl QcSummary {
    /// Encodes the statements in the order EN 319 412-5 lists them.
    pub fn to_statements(&self) -> der::Result<QcStatements> {
        let mut statements = Vec::new();
        if let Some(semantics) = self.semantics_identifier {
            statements.push(QcStatement {
                statement_id: ID_QCS_PKIX_QC_SYNTAX_V2,
                statement_info: Some(Any::encode_from(&SemanticsInformation {
                    semantics_identifier: Some(semantics),
                })?),
            });
        }
        if self.compliance {
            statements.push(QcStatement {
                statement_id: QC_COMPLIANCE,
                statement_info: None,
            });
        }
        if let Some(years) = self.retention_period_years {
            statements.push(QcStatement {
                statement_id: QC_RETENTION_PERIOD,
                statement_info: Some(Any::encode_from(&years)?),
            });
        }
        if self.sscd {
            statements.push(QcStatement {
                statement_id: QC_SSCD,
                statement_info: None,
            });
        }
        if !self.pds.is_empty() {
            let locations = self
                .pds
                .iter()
                .map(|(url, language)| {
                    Ok(PdsLocation {
                        url: Ia5String::new(url)?,
                        language: PrintableString::new(language)?,
                    })
                })
                .collect::<der::Result<Vec<_>>>()?;
            statements.push(QcStatement {
                statement_id: QC_PDS,
                statement_info: Some(Any::encode_from(&locations)?),
            });
        }
        if !self.types.is_empty() {
            statements.push(QcStatement {
                statement_id: QC_TYPE,
                statement_info: Some(Any::encode_from(&self.types)?),
            });
        }
        Ok(statements)
    }

    /// Reads the DER value of a qcStatements extension back.
    pub fn from_der(der: &[u8]) -> der::Result<Self> {
        let statements = QcStatements::from_der(der)?;
        let mut summary = Self::default();
        for statement in statements {
            let info = statement.statement_info.as_ref();
            let decode_info = |info: Option<&Any>| {
                info.cloned()
                    .ok_or_else(|| der::Error::from(der::ErrorKind::Failed))
            };
            match statement.statement_id {
                QC_COMPLIANCE => summary.compliance = true,
                QC_SSCD => summary.sscd = true,
                QC_TYPE => summary.types = decode_info(info)?.decode_as()?,
                QC_PDS => {
                    let locations: Vec<PdsLocation> = decode_info(info)?.decode_as()?;
                    summary.pds = locations
                        .into_iter()
                        .map(|l| (l.url.to_string(), l.language.to_string()))
                        .collect();
                }
                QC_RETENTION_PERIOD => {
                    summary.retention_period_years = Some(decode_info(info)?.decode_as()?);
                }
                ID_QCS_PKIX_QC_SYNTAX_V2 => {
                    let semantics: SemanticsInformation = decode_info(info)?.decode_as()?;
                    summary.semantics_identifier = semantics.semantics_identifier;
                }
                other => summary.unknown.push(other),
            }
        }
        Ok(summary)
    }

    /// DER of the whole statements sequence (the extension's value).
    pub fn to_der(&self) -> der::Result<Vec<u8>> {
        self.to_statements()?.to_der()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_round_trip() {
        let summary = QcSummary {
            compliance: true,
            types: vec![QC_TYPE_ESEAL],
            sscd: true,
            pds: vec![("https://pki.sceau.eu/pds/en".to_owned(), "en".to_owned())],
            semantics_identifier: Some(SEMANTICS_ID_LEGAL),
            retention_period_years: Some(10),
            unknown: Vec::new(),
        };
        let der = summary.to_der().unwrap();
        assert_eq!(QcSummary::from_der(&der).unwrap(), summary);
    }

    #[test]
    fn compliance_alone_has_no_statement_info() {
        let summary = QcSummary {
            compliance: true,
            ..QcSummary::default()
        };
        // SEQUENCE { SEQUENCE { OID 0.4.0.1862.1.1 } }
        assert_eq!(
            summary.to_der().unwrap(),
            vec![
                0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01
            ]
        );
    }
}
