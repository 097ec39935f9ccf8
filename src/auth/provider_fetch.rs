//! Fetching identity providers' discovery documents and JWKS without opening a
//! door into the network: an organisation's provider is reached over https at
//! public addresses only, checked on the resolved addresses the connection
//! then uses (so DNS rebinding cannot slip past); redirects are not followed;
//! every body is capped and every fetch timed out. Providers of the service's
//! own configuration are trusted with any address. Then the key a token names
//! is chosen from what was fetched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde::Deserialize;

use super::oidc::{OidcError, refused};

/// The most a discovery document may weigh.
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
/// The most a JWKS may weigh.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Whether an address is one an organisation's provider may be fetched at:
/// not loopback, private, link-local (cloud metadata included), shared,
/// unspecified, multicast, broadcast or documentation.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, protocol assignments; 198.18.0.0/15, benchmarking.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Resolves names to their public addresses only; a name with none fails.
#[derive(Debug)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if resolved.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(resolved.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The address a URL names literally (`[…]` for IPv6), if it does.
fn address_literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why an issuer URL cannot be registered, or `None` when it can: https with a
/// host, or in development mode http on a loopback address; an address
/// literal must be public unless it is loopback in development mode.
pub fn issuer_url_problem(issuer: &str, development: bool) -> Option<String> {
    let Ok(url) = Url::parse(issuer) else {
        return Some("is not a URL".to_owned());
    };
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Some("names no host".to_owned());
    };
    let address = address_literal(&url);
    let loopback = address.is_some_and(|ip| ip.is_loopback()) || host == "localhost";
    if url.username() != "" || url.password().is_some() || url.query().is_some() {
        return Some("carries credentials or a query".to_owned());
    }
    match url.scheme() {
        "https" => {}
        "http" if development && loopback => {}
        "http" => {
            return Some(
                "must be https (http only on a loopback address in development mode)".to_owned(),
            );
        }
        other => return Some(format!("has the scheme {other:?}; use https")),
    }
    match address {
        Some(ip) if !(is_public(ip) || (development && loopback)) => {
            Some(format!("names the non-public address {ip}"))
        }
        _ => None,
    }
}

/// The two HTTP clients: one for the service's own providers, one that only
/// reaches public addresses for organisations'.
#[derive(Debug, Clone)]
pub struct ProviderFetcher {
    trusted: reqwest::Client,
    guarded: reqwest::Client,
}

impl ProviderFetcher {
    pub fn new() -> Result<Self, String> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(Self {
            trusted: builder().build().map_err(|e| e.to_string())?,
            guarded: builder()
                .https_only(true)
                .dns_resolver(Arc::new(PublicOnly))
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    /// The issuer's JWKS through its discovery document. `trusted`: the
    /// provider is in the service's configuration. The error is for the logs.
    pub async fn jwks(&self, issuer: &str, trusted: bool) -> Result<JwkSet, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self
            .get_json(&url, trusted, MAX_DISCOVERY_BYTES)
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        if discovery.issuer != issuer {
            return Err(format!(
                "discovery names the issuer {:?}, not {issuer:?}",
                discovery.issuer
            ));
        }
        self.get_json(&discovery.jwks_uri, trusted, MAX_JWKS_BYTES)
            .await
            .map_err(|e| format!("JWKS: {e}"))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        trusted: bool,
        cap: usize,
    ) -> Result<T, String> {
        let client = if trusted {
            &self.trusted
        } else {
            // Address literals never reach the resolver: check them here.
            let parsed = Url::parse(url).map_err(|e| e.to_string())?;
            if let Some(ip) = address_literal(&parsed).filter(|ip| !is_public(*ip)) {
                return Err(format!("{url} names the non-public address {ip}"));
            }
            &self.guarded
        };
        let mut response = client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?;
        if response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(format!("the body is over {cap} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > cap {
                return Err(format!("the body is over {cap} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }
}

/// The key with this `kid` (or the only signing key when the token names none),
/// refusing one whose declared algorithm differs.
pub fn select_key(
    jwks: &JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Option<DecodingKey>, OidcError> {
    let candidates: Vec<_> = jwks
        .keys
        .iter()
        .filter(|k| match kid {
            Some(kid) => k.common.key_id.as_deref() == Some(kid),
            None => true,
        })
        .collect();
    let jwk = match (kid, candidates.as_slice()) {
        (_, []) => return Ok(None),
        (Some(_), [first, ..]) | (None, [first]) => *first,
        (None, _) => {
            return Err(refused(
                "the token names no key and the provider has several",
            ));
        }
    };
    if let Some(declared) = jwk.common.key_algorithm {
        if format!("{declared:?}") != format!("{alg:?}") {
            return Err(refused(format!(
                "key {:?} is for {declared:?}, not {alg:?}",
                jwk.common.key_id
            )));
        }
    }
    DecodingKey::from_jwk(jwk)
        .map(Some)
        .map_err(|e| refused(format!("unusable key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.215.14", "2a00:1450:4007:80e::200e", "8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn issuer_urls_are_https_with_public_hosts() {
        assert_eq!(
            issuer_url_problem("https://idp.example/realms/a", false),
            None
        );
        assert_eq!(issuer_url_problem("http://127.0.0.1:8080", true), None);
        for (issuer, development) in [
            ("http://idp.example", false),
            ("http://idp.example", true),
            ("http://127.0.0.1:8080", false),
            ("https://169.254.169.254", false),
            ("https://10.0.0.1", true),
            ("https://[::1]", false),
            ("ftp://idp.example", false),
            ("https://user:pw@idp.example", false),
            ("not a url", false),
        ] {
            assert!(
                issuer_url_problem(issuer, development).is_some(),
                "{issuer} (development: {development})"
            );
        }
    }
}
