//! A real OpenID provider for the tests: node's `oidc-provider`
//! (`tests/oidc-provider/`, installed by `make deps`), started on loopback with
//! a signing key made here, so tests can also forge tokens with the provider's
//! own key. Stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use serde_json::{Value, json};

/// The audience sceau's tokens carry in these tests.
pub const AUDIENCE: &str = "https://sceau.test/api";
/// Another resource the provider issues tokens for.
pub const OTHER_AUDIENCE: &str = "https://other.test/api";

pub struct Client {
    pub id: &'static str,
    /// Tokens bound to the certificate sent with the token request (RFC 8705).
    pub certificate_bound: bool,
    /// Claims every token of this client carries (amr, acr, sceau_roles…).
    pub claims: Value,
}

pub const SECRET: &str = "test-client-secret-test-client-secret";
/// The portal's client at the provider.
pub const PORTAL_CLIENT: &str = "portal";

pub struct TestIdp {
    child: Child,
    pub port: u16,
    pub issuer: String,
    pub kid: String,
    /// PKCS#8 DER of the signing key (to forge tokens with the provider's key).
    pub private_key_der: Vec<u8>,
    /// SPKI DER of the public key (what an attacker would use as an HMAC secret).
    pub public_key_der: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestIdp {
    /// Starts a provider; `issuer` overrides its own URL (to impersonate another).
    pub fn start(clients: &[Client], issuer: Option<&str>, kid: &str) -> Self {
        Self::start_with(clients, issuer, kid, json!({}))
    }

    /// A provider that also signs people in to the portal of the service at
    /// `portal` (its base URL): the client `portal` (authorization code,
    /// PKCE, the provider's login page) and `people` by login, each with
    /// his claims (`name`, `sceau_roles`).
    pub fn start_for_portal(portal: &str, people: Value) -> Self {
        Self::start_with(
            &[],
            None,
            "portal-key",
            json!({ "people": people, "resources": {}, "portal_client": portal_client(portal) }),
        )
    }

    /// A provider with `extra` configuration: `people` and `portal_client`
    /// as [`Self::start_for_portal`] makes them, `resources`.
    pub fn start_with(clients: &[Client], issuer: Option<&str>, kid: &str, extra: Value) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
        assert!(
            root.join("node_modules/oidc-provider").exists(),
            "the test OpenID provider is not installed: run `make deps`"
        );
        let key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let point = key.verifying_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().unwrap()),
            "y": b64(point.y().unwrap()),
            "d": b64(&key.to_bytes()),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        });
        let mut clients: Vec<Value> = clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.id,
                    "client_secret": SECRET,
                    "grant_types": ["client_credentials"],
                    "redirect_uris": [],
                    "response_types": [],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "id_token_signed_response_alg": "ES256",
                    "tls_client_certificate_bound_access_tokens": c.certificate_bound,
                    "extra_token_claims": c.claims,
                })
            })
            .collect();
        if let Some(portal) = extra.get("portal_client") {
            clients.push(portal.clone());
        }
        let mut config = json!({
            "jwks": { "keys": [jwk] },
            "clients": clients,
            "resources": {
                AUDIENCE: { "ttl": 300 },
                OTHER_AUDIENCE: { "ttl": 300 },
            },
        });
        for key in ["people", "resources"] {
            if let Some(value) = extra.get(key) {
                config[key] = value.clone();
            }
        }
        if let Some(issuer) = issuer {
            config["issuer"] = json!(issuer);
        }
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("provider.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(root.join("server.mjs"))
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is installed (`make deps`)");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = sender.send(port.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the test OpenID provider did not start");
            }
        };
        Self {
            child,
            port,
            issuer: issuer
                .map(str::to_owned)
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
            kid: kid.to_owned(),
            private_key_der: key.to_pkcs8_der().unwrap().as_bytes().to_vec(),
            public_key_der: key
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
            _dir: dir,
        }
    }

    /// An access token by the client credentials grant, for `resource`, bound to
    /// `certificate_pem` when given.
    pub async fn token(
        &self,
        client: &str,
        resource: &str,
        certificate_pem: Option<&str>,
    ) -> String {
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/token", self.port))
            .basic_auth(client, Some(SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "seal"),
                ("resource", resource),
            ]);
        if let Some(pem) = certificate_pem {
            let encoded: String = url_encode(pem);
            request = request.header("x-client-certificate", encoded);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "token request for {client}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

impl TestIdp {
    /// A token as the provider would issue it to `client` (sub = client id,
    /// with `claims` added), signed with the provider's own key but dated `at`:
    /// for tests that move sceau's clock to days the provider cannot reach.
    pub fn token_dated(&self, client: &str, claims: &Value, at: std::time::SystemTime) -> String {
        let iat = at
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut all = json!({
            "iss": self.issuer,
            "sub": client,
            "client_id": client,
            "aud": AUDIENCE,
            "iat": iat,
            "exp": iat + 300,
            "scope": "seal",
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        for (name, value) in claims.as_object().into_iter().flatten() {
            all[name] = value.clone();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(
            &header,
            &all,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.private_key_der),
        )
        .unwrap()
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The portal's client registration for the service at `portal`.
pub fn portal_client(portal: &str) -> Value {
    json!({
        "client_id": PORTAL_CLIENT,
        "client_secret": SECRET,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "redirect_uris": [format!("{portal}/portal/callback")],
        "post_logout_redirect_uris": [format!("{portal}/portal")],
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "ES256",
    })
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
