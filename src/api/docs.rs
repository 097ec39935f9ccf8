//! The HTTP contract for tools and for people: `/openapi.yaml` (the spec as
//! committed) and `/docs` (the spec rendered by Redoc). Both and the Redoc
//! bundle are compiled into the binary from `openapi/`, where the bundle sits
//! with its licence and SHA-256 (`openapi/redoc/SHA256SUMS`): nothing is
//! fetched at build or run time, and the page's Content-Security-Policy lets
//! the browser load nothing from anywhere else.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::route_table::RouteTable;
use crate::state::AppState;

/// The contract, as committed.
pub const OPENAPI_YAML: &str = include_str!("../../openapi/openapi.yaml");
/// Redoc 2.5.1's standalone bundle (MIT), pinned by its SHA-256 in
/// `openapi/redoc/SHA256SUMS`.
pub const REDOC_JS: &[u8] = include_bytes!("../../openapi/redoc/redoc.standalone.js");

/// The one address in the bundle a browser would load: Redoc's attribution
/// logo, from its CDN. The page's CSP would block it; it is swapped for an
/// empty inline image so the page never even asks.
const REDOC_LOGO_URL: &str = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const EMPTY_IMAGE: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";

/// The bundle as served: the pinned one with the logo's address swapped.
fn served_bundle() -> &'static [u8] {
    static SERVED: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let text = String::from_utf8_lossy(REDOC_JS);
        text.replace(REDOC_LOGO_URL, EMPTY_IMAGE).into_bytes()
    });
    &SERVED
}

/// The page: Redoc reads the spec from this origin and renders it.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sceau API</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.yaml" hide-download-button="false" disable-search="false"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// Only this origin: scripts and the spec from here, Redoc's inline styles,
/// its search worker from a blob, images inline.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
    connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The spec and the bundle change with the binary: an hour of caching.
const CACHE_CONTROL: &str = "public, max-age=3600";

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .get("/openapi.yaml", openapi)
        .get("/docs", page)
        .get("/docs/redoc.standalone.js", redoc)
}

async fn openapi() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        OPENAPI_YAML,
    )
        .into_response()
}

async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        PAGE,
    )
        .into_response()
}

async fn redoc() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        served_bundle(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The bundle compiled in is the one whose checksum is committed.
    #[test]
    fn the_bundle_matches_its_committed_checksum() {
        let sums = include_str!("../../openapi/redoc/SHA256SUMS");
        let expected = sums
            .lines()
            .find_map(|line| line.strip_suffix("  redoc.standalone.js"))
            .expect("a SHA-256 line for redoc.standalone.js");
        assert_eq!(hex::encode(Sha256::digest(REDOC_JS)), expected);
    }

    #[test]
    fn the_served_bundle_is_the_pinned_one_without_the_cdn_logo() {
        let pinned = std::str::from_utf8(REDOC_JS).unwrap();
        assert_eq!(pinned.matches(REDOC_LOGO_URL).count(), 1);
        let served = std::str::from_utf8(served_bundle()).unwrap();
        assert!(!served.contains("cdn.redoc.ly"));
        assert_eq!(served.replace(EMPTY_IMAGE, REDOC_LOGO_URL), pinned);
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for needle in ["http://", "https://", "//cdn", "fonts."] {
            assert!(!PAGE.contains(needle), "{needle}");
        }
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
    }
}
