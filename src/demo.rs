//! The development instance's demo (`ca.dev_auto_init` only): a self-signed TLS
//! server certificate for the mutual-TLS listener, and a demo organisation whose
//! RCCS applied, was verified and approved by two RA operators and accepted a
//! CA-managed seal credential, all through the RA like any other request, with
//! a TLS client certificate from sceau's client-authentication CA registered to
//! activate it. `var/demo/demo.json` says where everything is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use der::{DecodePem, EncodePem};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use crate::app::{AppError, AppState};
use crate::auth::principal::{AuthMethod, Principal, Role, Strength};
use crate::config::{SignIn, StaffMember, TlsSettings};
use crate::ra::dossier::{Application, IdentityInput, TermsInput};
use crate::ra::request::Move;
use crate::store::auth::ActivationBinding;
use crate::store::entities::CredentialStatus;

/// The demo's certificate policy: a key generated and kept by the CA.
const DEMO_POLICY: &str = "seal-ca-managed";
/// A SIREN with a valid Luhn key, in a range no real company is listed under.
const DEMO_SIREN: &str = "999000003";
/// The demo people's identity provider: the development provider of the
/// instance at `public_url` (`/dev-idp`, when the build has it and
/// `portal.dev_provider` is on), where they sign in to the portal; the
/// demo's own steps make their principals here, not from tokens.
fn demo_issuer(state: &AppState) -> String {
    format!("{}/dev-idp", state.settings.public_url())
}
/// The development server certificate's lifetime.
const SERVER_CERTIFICATE_DAYS: u64 = 825;

fn io(what: String) -> impl FnOnce(std::io::Error) -> AppError {
    move |source| AppError::Io { what, source }
}

fn internal(what: &str) -> impl Fn(String) -> AppError + Copy + '_ {
    move |reason| AppError::Internal(format!("demo: {what}: {reason}"))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> Result<(), AppError> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    file.write_all(pem.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

fn random_serial() -> Result<SerialNumber, AppError> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    // Positive, and never a leading zero octet.
    bytes[0] = (bytes[0] & 0x7F) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| internal("serial")(e.to_string()))
}

/// In development, the mutual-TLS listener's certificate and key are made on
/// first start when missing: a self-signed P-256 certificate for 127.0.0.1 and
/// localhost, which clients trust by naming it (`curl --cacert`).
pub fn ensure_server_certificate(tls: &TlsSettings) -> Result<(), AppError> {
    if tls.certificate_file.exists() && tls.key_file.exists() {
        return Ok(());
    }
    let fail = internal("the development TLS certificate");
    for path in [&tls.certificate_file, &tls.key_file] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
    }
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
        .map_err(|e| fail(e.to_string()))?;
    let subject = Name::from_str("CN=sceau development server").map_err(|e| fail(e.to_string()))?;
    let validity = Validity::from_now(Duration::from_secs(SERVER_CERTIFICATE_DAYS * 86_400))
        .map_err(|e| fail(e.to_string()))?;
    let mut builder = CertificateBuilder::new(
        Profile::Leaf {
            issuer: subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
            include_subject_key_identifier: true,
        },
        random_serial()?,
        validity,
        subject,
        spki,
        &key,
    )
    .map_err(|e| fail(e.to_string()))?;
    let localhost = der::asn1::Ia5String::new("localhost").map_err(|e| fail(e.to_string()))?;
    let loopback =
        der::asn1::OctetString::new([127u8, 0, 0, 1]).map_err(|e| fail(e.to_string()))?;
    builder
        .add_extension(&SubjectAltName(vec![
            GeneralName::DnsName(localhost),
            GeneralName::IpAddress(loopback),
        ]))
        .map_err(|e| fail(e.to_string()))?;
    let certificate = builder
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|e| fail(e.to_string()))?;
    let certificate_pem = certificate
        .to_pem(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    write_private(&tls.key_file, &key_pem)?;
    std::fs::write(&tls.certificate_file, certificate_pem)
        .map_err(io(format!("writing {}", tls.certificate_file.display())))?;
    tracing::warn!(
        certificate = %tls.certificate_file.display(),
        "development mode: made a self-signed TLS server certificate for the mutual-TLS listener"
    );
    Ok(())
}

/// What `var/demo/demo.json` records between starts.
#[derive(Debug, Deserialize)]
struct Recorded {
    credential_id: Option<Uuid>,
    client_cert_pem: Option<PathBuf>,
    client_key_pem: Option<PathBuf>,
}

/// The demo's credential and the client certificate that activates it.
#[derive(Debug, Clone)]
pub struct DemoCredential {
    pub credential_id: Uuid,
    pub client_cert_pem: PathBuf,
    pub client_key_pem: PathBuf,
}

/// A principal of the demo organisation, as the RA sees people signed in
/// with strong authentication.
fn person(state: &AppState, subject: &str, roles: &[Role], entity: Option<Uuid>) -> Principal {
    let issuer = demo_issuer(state);
    let rostered = state.settings.auth.staff.member(&issuer, subject);
    Principal {
        id: format!("oidc:{issuer}#{subject}"),
        entity,
        method: AuthMethod::Oidc {
            issuer: issuer.clone(),
            subject: subject.to_owned(),
            client_id: None,
            binding: "bearer",
            acr: None,
        },
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        strength: Strength::Strong,
        // The demo's operators are staff people of their own, each his
        // sign-in: the roster's when the development provider put them there.
        staff: roles.iter().any(|role| role.is_staff()).then(|| {
            rostered.clone().unwrap_or_else(|| {
                Arc::new(StaffMember {
                    id: Uuid::new_v4(),
                    given_name: "Demo".to_owned(),
                    family_name: subject.to_owned(),
                    birth_date: time::Date::MIN,
                    sign_ins: vec![SignIn {
                        issuer: issuer.clone(),
                        subject: subject.to_owned(),
                    }],
                })
            })
        }),
    }
}

/// The demo credential recorded by an earlier start, if it can still seal.
async fn recorded(state: &AppState, dir: &Path) -> Option<DemoCredential> {
    let text = std::fs::read_to_string(dir.join("demo.json")).ok()?;
    let recorded: Recorded = serde_json::from_str(&text).ok()?;
    let credential_id = recorded.credential_id?;
    let (cert, key) = (recorded.client_cert_pem?, recorded.client_key_pem?);
    if !cert.exists() || !key.exists() {
        return None;
    }
    let credential = state.store.seal_credential(credential_id).await.ok()?;
    (credential.status == CredentialStatus::Active).then_some(DemoCredential {
        credential_id,
        client_cert_pem: cert,
        client_key_pem: key,
    })
}

/// The demo organisation's accepted credential and its client certificate:
/// the one recorded by an earlier start, else a new one made through the RA.
pub async fn ensure_credential(state: &AppState, dir: &Path) -> Result<DemoCredential, AppError> {
    if let Some(demo) = recorded(state, dir).await {
        return Ok(demo);
    }
    tracing::warn!("development mode: registering the demo organisation through the RA");
    let ra_error = |step: &'static str| {
        move |e: crate::ra::registry::RaError| AppError::Internal(format!("demo: {step}: {e}"))
    };
    let ra = &state.ra;
    let applicant = person(state, "demo-rccs", &[Role::Applicant], None);
    let application: Application = serde_json::from_value(json!({
        "policy": DEMO_POLICY,
        "organisation": {
            "siren": DEMO_SIREN,
            "legal_name": "Démo Factures SAS",
            "legal_form": "SAS",
            "street": "1 place de la Démonstration",
            "postal_code": "75001",
            "city": "Paris",
        },
        "rccs": { "given_name": "Claude", "family_name": "Démo", "email": "rccs@demo.sceau.invalid", "language": "fr" },
        "legal_representative": { "given_name": "Dominique", "family_name": "Démo", "email": "legal@demo.sceau.invalid", "language": "fr" },
        "seal_name": "Démo Factures seal",
        "validity_days": 365,
    }))
    .map_err(|e| internal("the application")(e.to_string()))?;
    let view = ra
        .apply(&applicant, application)
        .await
        .map_err(ra_error("apply"))?;
    let request = view.id;
    let entity = view.entity.id;
    let rccs = person(
        state,
        "demo-rccs",
        &[Role::Rccs, Role::Applicant],
        Some(entity),
    );
    let operators = [
        person(state, "demo-operator-1", &[Role::RaOperator], None),
        person(state, "demo-operator-2", &[Role::RaOperator], None),
    ];
    // Evidence: a registry extract, an identity document and a mandate, each
    // a placeholder recognised by its content like any upload.
    for (kind, content) in [
        (
            "registry_extract",
            placeholder_pdf("Extrait Kbis de démonstration"),
        ),
        (
            "identity_document",
            placeholder_pdf("Pièce d'identité de démonstration"),
        ),
        ("mandate", placeholder_pdf("Mandat de démonstration")),
    ] {
        ra.add_document(&rccs, request, kind, content)
            .await
            .map_err(ra_error("add a document"))?;
    }
    let version = state
        .policies
        .get(DEMO_POLICY)
        .map(|p| p.terms.version.clone())
        .ok_or_else(|| internal("the policy")(format!("{DEMO_POLICY} is not loaded")))?;
    ra.accept_terms(
        &rccs,
        request,
        &TermsInput {
            version,
            sha256: None,
        },
    )
    .await
    .map_err(ra_error("accept the terms"))?;
    ra.record_identity(
        &operators[0],
        request,
        &IdentityInput {
            method: "face_to_face".to_owned(),
            provider: None,
            reference: None,
            birth_date: None,
        },
    )
    .await
    .map_err(ra_error("record the identity check"))?;
    for (who, step) in [
        (&rccs, Move::Submit),
        (&operators[0], Move::StartReview),
        (&operators[0], Move::Approve),
        (&operators[1], Move::Approve),
        (&rccs, Move::Accept),
    ] {
        ra.move_request(who, request, step, None)
            .await
            .map_err(ra_error(step.name()))?;
    }
    let view = ra
        .view(&rccs, request)
        .await
        .map_err(ra_error("read the request"))?;
    let credential_id = view
        .certificate
        .and_then(|c| c.credential_id)
        .ok_or_else(|| internal("the request")("accepted without a credential".to_owned()))?;

    // The organisation's server authenticates with a client certificate from
    // sceau's client-authentication CA, its key made here (in production the
    // organisation makes it and sends only the CSR).
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let fail = internal("the client certificate request");
    let subject = Name::from_str("CN=demo seal client").map_err(|e| fail(e.to_string()))?;
    let csr = RequestBuilder::new(subject, &key)
        .map_err(|e| fail(e.to_string()))?
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|e| fail(e.to_string()))?
        .to_pem(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    let issued = ra
        .issue_client_certificate(&rccs, entity, &csr)
        .await
        .map_err(ra_error("issue the client certificate"))?;
    let credential = state
        .store
        .seal_credential(credential_id)
        .await
        .map_err(AppError::from)?;
    state
        .activation
        .register(
            &rccs,
            &credential,
            ActivationBinding::ClientCertificate {
                sha256: issued.sha256.clone(),
            },
        )
        .await
        .map_err(|e| internal("register the client certificate")(e.to_string()))?;
    let client_cert_pem = dir.join("client.pem");
    let client_key_pem = dir.join("client-key.pem");
    std::fs::write(
        &client_cert_pem,
        crate::crypto::certificate_pem(&issued.der),
    )
    .map_err(io(format!("writing {}", client_cert_pem.display())))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    write_private(&client_key_pem, &key_pem)?;
    // The public key is checked against the issued certificate, so a mix-up
    // of files shows here and not as a refused handshake.
    let certificate = Certificate::from_pem(crate::crypto::certificate_pem(&issued.der))
        .map_err(|e| fail(e.to_string()))?;
    let spki = key
        .verifying_key()
        .to_public_key_der()
        .map_err(|e| fail(e.to_string()))?;
    let issued_spki = der::Encode::to_der(&certificate.tbs_certificate.subject_public_key_info)
        .map_err(|e| fail(e.to_string()))?;
    if spki.as_bytes() != issued_spki.as_slice() {
        return Err(fail("the issued certificate names another key".to_owned()));
    }
    Ok(DemoCredential {
        credential_id,
        client_cert_pem: absolute(client_cert_pem),
        client_key_pem: absolute(client_key_pem),
    })
}

fn absolute(path: PathBuf) -> PathBuf {
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// A one-page PDF saying `text`: evidence placeholders for the demo dossier.
fn placeholder_pdf(text: &str) -> Vec<u8> {
    let ascii: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    let stream = format!("BT /F1 14 Tf 72 770 Td ({ascii}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (number, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", number + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}
