//! CSC v2 signatures/signDoc: whole documents (PAdES, CAdES) or their digests
//! sealed at the level asked, with the signed properties the spec allows.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct SignedProperty {
    pub(super) attribute_name: String,
    pub(super) attribute_value: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct DocumentToSign {
    pub(super) document: Option<String>,
    pub(super) signature_format: Option<String>,
    pub(super) conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    pub(super) sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    pub(super) sign_algo_params: Option<String>,
    pub(super) signed_props: Option<Vec<SignedProperty>>,
    pub(super) signed_envelope_property: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct DigestsToSign {
    pub(super) hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    pub(super) hash_algorithm_oid: Option<String>,
    pub(super) signature_format: Option<String>,
    pub(super) conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    pub(super) sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    pub(super) sign_algo_params: Option<String>,
    pub(super) signed_props: Option<Vec<SignedProperty>>,
    pub(super) signed_envelope_property: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SignDocRequest {
    #[serde(rename = "credentialID")]
    pub(super) credential_id: Option<String>,
    #[serde(rename = "SAD")]
    pub(super) sad: Option<String>,
    pub(super) documents: Option<Vec<DocumentToSign>>,
    #[serde(rename = "documentDigests")]
    pub(super) document_digests: Option<Vec<DigestsToSign>>,
    #[serde(rename = "operationMode")]
    pub(super) operation_mode: Option<String>,
}

/// One seal signDoc will make, read in full before any is made so a bad
/// entry later in the list seals nothing.
pub(super) enum DocSeal {
    Pades {
        document: Vec<u8>,
        level: Level,
        options: PadesOptions,
    },
    Cades {
        document: Vec<u8>,
        level: Level,
        packaging: Packaging,
    },
    Digests {
        digests: Vec<Vec<u8>>,
        level: Level,
    },
}

pub(super) fn pades_options(props: &[SignedProperty]) -> Result<PadesOptions, CscError> {
    let mut options = PadesOptions::default();
    for prop in props {
        let value = prop.attribute_value.clone().ok_or_else(|| {
            CscError::invalid_parameter(
                "signed_props",
                format!("{} needs a value", prop.attribute_name),
            )
        })?;
        if value.chars().count() > 200 {
            return Err(CscError::invalid_parameter(
                "signed_props",
                format!("{} is longer than 200 characters", prop.attribute_name),
            ));
        }
        let slot = match prop.attribute_name.as_str() {
            "reason" | "Reason" => &mut options.reason,
            "location" | "Location" => &mut options.location,
            "contactInfo" | "ContactInfo" | "contact" => &mut options.contact,
            "fieldName" | "field" => &mut options.field_name,
            other => {
                return Err(CscError::invalid_parameter(
                    "signed_props",
                    format!(
                        "{other:?}: PAdES seals take reason, location, contactInfo and fieldName"
                    ),
                ));
            }
        };
        *slot = Some(value);
    }
    Ok(options)
}

pub(super) fn no_signed_props(props: Option<&Vec<SignedProperty>>) -> Result<(), CscError> {
    match props {
        Some(props) if !props.is_empty() => Err(CscError::invalid_parameter(
            "signed_props",
            "CAdES seals carry content-type, message-digest, signing-time and \
             signing-certificate-v2 only",
        )),
        _ => Ok(()),
    }
}

pub(super) fn read_document(
    kind: PublicKeyKind,
    doc: &DocumentToSign,
) -> Result<DocSeal, CscError> {
    let document = base64_value(
        "document",
        doc.document
            .as_deref()
            .ok_or_else(|| CscError::missing("document"))?,
    )?;
    let level = csc_vocabulary::conformance_level(doc.conformance_level.as_deref())?;
    csc_vocabulary::check_document_sign_algo(
        kind,
        doc.sign_algo.as_deref(),
        doc.sign_algo_params.as_deref(),
    )?;
    let envelope = doc.signed_envelope_property.as_deref();
    match doc.signature_format.as_deref() {
        Some("P") => {
            if !matches!(envelope, None | Some("Revision")) {
                return Err(CscError::invalid_parameter(
                    "signed_envelope_property",
                    "PAdES seals are added as a new revision (Revision)",
                ));
            }
            Ok(DocSeal::Pades {
                document,
                level,
                options: pades_options(doc.signed_props.as_deref().unwrap_or_default())?,
            })
        }
        Some("C") => {
            no_signed_props(doc.signed_props.as_ref())?;
            let packaging = match envelope {
                None | Some("Detached") => Packaging::Detached,
                Some("Attached" | "Enveloping") => Packaging::Enveloping,
                Some(other) => {
                    return Err(CscError::invalid_parameter(
                        "signed_envelope_property",
                        format!("{other:?}: CAdES seals are Detached or Attached"),
                    ));
                }
            };
            Ok(DocSeal::Cades {
                document,
                level,
                packaging,
            })
        }
        Some(other) => Err(CscError::invalid_parameter(
            "signature_format",
            format!("{other:?}: C (CAdES) or P (PAdES)"),
        )),
        None => Err(CscError::missing("signature_format")),
    }
}

pub(super) fn read_digests(
    kind: PublicKeyKind,
    entry: &DigestsToSign,
) -> Result<DocSeal, CscError> {
    let hashes = entry
        .hashes
        .as_deref()
        .ok_or_else(|| CscError::missing("hashes"))?;
    let algorithm = hash_algorithm("hashAlgorithmOID", entry.hash_algorithm_oid.as_deref())?
        .ok_or_else(|| CscError::missing("hashAlgorithmOID"))?;
    if algorithm != DigestAlgorithm::Sha256 {
        return Err(CscError::invalid_parameter(
            "hashAlgorithmOID",
            "CAdES seals over document digests take SHA-256 digests",
        ));
    }
    if entry.signature_format.as_deref() != Some("C") {
        return Err(CscError::invalid_parameter(
            "signature_format",
            "a seal over a document digest is CAdES (C), detached",
        ));
    }
    if !matches!(
        entry.signed_envelope_property.as_deref(),
        None | Some("Detached")
    ) {
        return Err(CscError::invalid_parameter(
            "signed_envelope_property",
            "a seal over a document digest is detached (Detached)",
        ));
    }
    no_signed_props(entry.signed_props.as_ref())?;
    csc_vocabulary::check_document_sign_algo(
        kind,
        entry.sign_algo.as_deref(),
        entry.sign_algo_params.as_deref(),
    )?;
    Ok(DocSeal::Digests {
        digests: decode_all("hashes", hashes)?,
        level: csc_vocabulary::conformance_level(entry.conformance_level.as_deref())?,
    })
}

/// `POST /csc/v2/signatures/signDoc`: PAdES and CAdES seals by the Seal API's
/// own code; embedded results in `DocumentWithSignature`, detached ones in
/// `SignatureObject`.
pub(super) async fn sign_doc(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: SignDocRequest = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    csc_vocabulary::check_synchronous(request.operation_mode.as_deref())?;
    let sad = request.sad.ok_or_else(|| CscError::missing("SAD"))?;
    let documents = request.documents.unwrap_or_default();
    let digests = request.document_digests.unwrap_or_default();
    if documents.is_empty() && digests.is_empty() {
        return Err(CscError::missing("documents or documentDigests").into());
    }
    let kind = state.sealer.key_kind(&principal, credential).await?;
    let mut seals = Vec::with_capacity(documents.len() + digests.len());
    for doc in &documents {
        seals.push(read_document(kind, doc)?);
    }
    for entry in &digests {
        seals.push(read_digests(kind, entry)?);
    }
    let mut with_signature = Vec::new();
    let mut signature_objects = Vec::new();
    for seal in seals {
        match seal {
            DocSeal::Pades {
                document,
                level,
                options,
            } => {
                let sealed = state
                    .sealer
                    .pades(
                        &principal,
                        credential,
                        Some(&sad),
                        level,
                        &options,
                        document.into(),
                    )
                    .await?;
                with_signature.push(b64(&sealed.into_vec()));
            }
            DocSeal::Cades {
                document,
                level,
                packaging,
            } => {
                let sealed = state
                    .sealer
                    .cades(
                        &principal,
                        credential,
                        Some(&sad),
                        level,
                        packaging,
                        &document,
                    )
                    .await?;
                match packaging {
                    Packaging::Detached => signature_objects.push(b64(&sealed.der)),
                    Packaging::Enveloping => with_signature.push(b64(&sealed.der)),
                }
            }
            DocSeal::Digests { digests, level } => {
                for sealed in state
                    .sealer
                    .hashes(&principal, credential, Some(&sad), level, &digests)
                    .await?
                {
                    signature_objects.push(b64(&sealed.der));
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    if !with_signature.is_empty() {
        out.insert("DocumentWithSignature".into(), json!(with_signature));
    }
    if !signature_objects.is_empty() {
        out.insert("SignatureObject".into(), json!(signature_objects));
    }
    Ok(axum::Json(Value::Object(out)))
}
