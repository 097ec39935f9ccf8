//! The public, unauthenticated endpoints: liveness, readiness and the CA
//! certificates relying parties download.

use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::problem::ApiError;
use super::route_table::RouteTable;
use crate::error::{ErrorKind, HasErrorKind, chain};
use crate::pki::publication::{Publication, PublishedCertificate};
use crate::state::AppState;

/// How long `/readyz` waits for each dependency before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// How long clients and proxies may cache a CA certificate.
const CERT_CACHE_CONTROL: &str = "public, max-age=3600";

pub const DER_MEDIA_TYPE: &str = "application/pkix-cert";
pub const PEM_MEDIA_TYPE: &str = "application/x-pem-file";

/// The public routes. Built without state, so the route list can be read in tests.
pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .get("/healthz", healthz)
        .get("/readyz", readyz)
        .get("/certs/{file}", certificate)
}

/// Liveness: the process answers. Touches nothing else.
async fn healthz() -> impl IntoResponse {
    (no_store(), Json(json!({"status": "ok"})))
}

/// Readiness: the database and the HSM both answer, and no CRL among
/// `server.tls.client_crl_files` is past its nextUpdate (the listener refuses
/// that CA's certificates meanwhile).
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (database, hsm) = tokio::join!(
        check("database", state.store.ping()),
        check("hsm", state.hsm.ping()),
    );
    let mut checks = vec![("database".to_owned(), database), ("hsm".to_owned(), hsm)];
    if let Some(tls) = &state.settings.server.tls {
        for (path, fresh) in super::tls::client_crl_freshness(tls, state.clock.now()) {
            if !fresh {
                tracing::warn!(crl = %path, "a client CRL is past its nextUpdate or unreadable");
            }
            checks.push((format!("client CRL {path}"), fresh));
        }
    }
    readiness(&checks).map(|body| (no_store(), Json(body)))
}

/// Runs one dependency check with a time limit; its error goes to the log only.
async fn check<E: HasErrorKind>(
    name: &'static str,
    ping: impl Future<Output = Result<(), E>>,
) -> bool {
    match tokio::time::timeout(READY_TIMEOUT, ping).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(dependency = name, error = %chain(&error), "readiness check failed");
            false
        }
        Err(_) => {
            tracing::warn!(
                dependency = name,
                timeout_secs = READY_TIMEOUT.as_secs(),
                "readiness check timed out"
            );
            false
        }
    }
}

/// The `/readyz` answer from each dependency's state: 200 with every check `ok`,
/// or 503 naming the ones that are down.
fn readiness(checks: &[(String, bool)]) -> Result<Value, ApiError> {
    let states: serde_json::Map<String, Value> = checks
        .iter()
        .map(|(name, up)| (name.clone(), json!(if *up { "ok" } else { "unavailable" })))
        .collect();
    let down: Vec<&str> = checks
        .iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name.as_str())
        .collect();
    if down.is_empty() {
        Ok(json!({"status": "ready", "checks": states}))
    } else {
        Err(ApiError::from_kind(
            ErrorKind::Unavailable,
            format!("not ready: {} unavailable", down.join(" and ")),
        )
        .with_extension("checks", Value::Object(states)))
    }
}

/// `GET /certs/{file}`: a CA certificate as DER (`.der`, `.crt`) or PEM (`.pem`).
async fn certificate(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    certificate_response(&state.publication, &file, &headers)
}

/// The encodings a certificate is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertEncoding {
    Der,
    Pem,
}

/// Splits `root.pem` into (`root`, PEM). Names are 1 to 64 of `a-z 0-9 -`.
pub fn parse_cert_file(file: &str) -> Option<(&str, CertEncoding)> {
    let (name, extension) = file.rsplit_once('.')?;
    let encoding = match extension {
        "der" | "crt" => CertEncoding::Der,
        "pem" => CertEncoding::Pem,
        _ => return None,
    };
    let sane = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    sane.then_some((name, encoding))
}

fn certificate_response(
    publication: &Publication,
    file: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let published = || publication.names().join(", ");
    let Some((name, encoding)) = parse_cert_file(file) else {
        return Err(ApiError::from_kind(
            ErrorKind::NotFound,
            format!(
                "certificate files are named <name>.der, <name>.crt or <name>.pem; published names: {}",
                published()
            ),
        ));
    };
    let Some(certificate) = publication.get(name) else {
        return Err(ApiError::from_kind(
            ErrorKind::NotFound,
            format!(
                "no CA certificate is published as '{name}'; published names: {}",
                published()
            ),
        ));
    };
    let etag = etag(&certificate);
    let mut response = if if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (media_type, body) = match encoding {
            CertEncoding::Der => (DER_MEDIA_TYPE, certificate.der.clone()),
            CertEncoding::Pem => (PEM_MEDIA_TYPE, certificate.pem.clone().into_bytes()),
        };
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
            body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CERT_CACHE_CONTROL),
    );
    // A quoted hex digest is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

/// A strong ETag: the SHA-256 of the certificate's DER, quoted.
fn etag(certificate: &PublishedCertificate) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(&certificate.der)))
}

/// Whether `If-None-Match` names this ETag (or `*`).
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    fn publication() -> Publication {
        let publication = Publication::default();
        publication.replace(vec![PublishedCertificate {
            name: "root".to_owned(),
            der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
            pem: "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n".to_owned(),
        }]);
        publication
    }

    #[test]
    fn file_names_are_parsed() {
        assert_eq!(
            parse_cert_file("root.der"),
            Some(("root", CertEncoding::Der))
        );
        assert_eq!(
            parse_cert_file("issuing.crt"),
            Some(("issuing", CertEncoding::Der))
        );
        assert_eq!(
            parse_cert_file("ocsp-2.pem"),
            Some(("ocsp-2", CertEncoding::Pem))
        );
        for bad in [
            "root",
            "root.",
            ".pem",
            "root.PEM",
            "root.txt",
            "Root.pem",
            "../root.pem",
            "a.b.pem",
            "root pem",
            "root.pem.der.x",
        ] {
            assert_eq!(parse_cert_file(bad), None, "{bad}");
        }
        assert_eq!(parse_cert_file(&format!("{}.pem", "a".repeat(65))), None);
    }

    #[tokio::test]
    async fn der_and_pem_have_their_media_types_and_cache_headers() {
        let publication = publication();
        for (file, media_type, body) in [
            (
                "root.der",
                DER_MEDIA_TYPE,
                publication.get("root").unwrap().der.clone(),
            ),
            (
                "root.crt",
                DER_MEDIA_TYPE,
                publication.get("root").unwrap().der.clone(),
            ),
            (
                "root.pem",
                PEM_MEDIA_TYPE,
                publication.get("root").unwrap().pem.clone().into_bytes(),
            ),
        ] {
            let response = certificate_response(&publication, file, &HeaderMap::new()).unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], media_type);
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                CERT_CACHE_CONTROL
            );
            let etag = response.headers()[header::ETAG]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(etag.len(), 66, "{etag}");
            assert_eq!(
                to_bytes(response.into_body(), usize::MAX).await.unwrap(),
                body
            );
        }
    }

    #[test]
    fn a_matching_etag_gives_304() {
        let publication = publication();
        let first = certificate_response(&publication, "root.pem", &HeaderMap::new()).unwrap();
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let again = certificate_response(&publication, "root.pem", &headers).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        let changed = certificate_response(&publication, "root.pem", &headers).unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn unknown_names_are_404_and_list_what_exists() {
        let publication = publication();
        for file in ["tsa.pem", "root.txt"] {
            let error = certificate_response(&publication, file, &HeaderMap::new()).unwrap_err();
            assert_eq!(error.status(), StatusCode::NOT_FOUND);
        }
    }

    #[tokio::test]
    async fn readiness_names_what_is_down() {
        let named = |checks: &[(&str, bool)]| -> Vec<(String, bool)> {
            checks
                .iter()
                .map(|(n, up)| ((*n).to_owned(), *up))
                .collect()
        };
        let ok = readiness(&named(&[("database", true), ("hsm", true)])).unwrap();
        assert_eq!(ok["status"], "ready");
        let down = readiness(&named(&[("database", true), ("hsm", false)])).unwrap_err();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        let response = down.into_response();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["detail"], "not ready: hsm unavailable");
        assert_eq!(body["checks"]["hsm"], "unavailable");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["type"], "urn:sceau:problem:unavailable");
    }
}
