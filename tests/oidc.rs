//! The OIDC resource server against a real OpenID provider (node oidc-provider
//! on loopback): its tokens are accepted; wrong audience, wrong issuer, expiry,
//! a string `exp`, `alg: none`, HS256 keyed with the provider's public key, an
//! unknown `kid` from a second provider, a missing second factor, and a
//! certificate-bound token on another certificate's connection are all 401.
//! Then the role matrix, built from the router's own route table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use sceau::api::route_table::Access;
use sceau::auth::Role;
use sceau::clock::Clock;
use sceau::config::{Callers, IdentityProviderSettings};
use sceau::store::auth::ActivationBinding;
use serde_json::{Value, json};
use support::db::Arg;
use support::fake_provider::{Behaviour, FakeProvider};
use support::idp::{AUDIENCE, Client, OTHER_AUDIENCE, TestIdp};
use support::service::{self, Service};
use support::test_ca::{Issued, MtlsPki};
use uuid::Uuid;

/// Person clients: their `sub` is the client id; `amr`/roles come as claims.
fn person(id: &'static str, claims: Value) -> Client {
    Client {
        id,
        certificate_bound: false,
        claims,
    }
}

fn clients() -> Vec<Client> {
    let otp = |roles: &[&str]| json!({ "amr": ["pwd", "otp"], "sceau_roles": roles });
    vec![
        Client {
            id: "seal-server",
            certificate_bound: true,
            claims: json!({}),
        },
        Client {
            id: "seal-server-dpop",
            certificate_bound: false,
            claims: json!({}),
        },
        Client {
            id: "seal-server-bearer",
            certificate_bound: false,
            claims: json!({}),
        },
        person("person-rccs", otp(&[])),
        person("person-legal_representative", otp(&[])),
        person("person-agent", otp(&[])),
        person("person-ra_operator", otp(&["ra_operator"])),
        person("person-ca_admin", otp(&["ca_admin"])),
        person("person-auditor", otp(&["auditor"])),
        person("person-nobody", otp(&[])),
        person(
            "person-weak",
            json!({ "amr": ["pwd"], "sceau_roles": ["ra_operator"] }),
        ),
    ]
}

struct World {
    service: Service,
    idp: TestIdp,
    pki: MtlsPki,
    alice: Issued,
    bob: Issued,
    credential: Uuid,
    entity: Uuid,
    _dir: tempfile::TempDir,
}

/// sceau with a mutual-TLS listener, the provider registered for the back office
/// (people) and for organisation A (its servers), one active credential of A.
async fn world(softhsm: &support::hsm::SoftHsm, db: &support::db::TestDb) -> World {
    world_with(softhsm, db, |_| {}).await
}

async fn world_with(
    softhsm: &support::hsm::SoftHsm,
    db: &support::db::TestDb,
    adjust: impl FnOnce(&mut sceau::config::Settings),
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let idp = TestIdp::start(&clients(), None, "provider-key-1");
    let pki = MtlsPki::new(dir.path(), 300);
    let alice = pki.clients.issue("alice", false, None);
    let bob = pki.clients.issue("bob", false, None);
    let mut settings = service::settings(softhsm, db, dir.path(), Some(pki.tls.clone()));
    settings.auth.identity_providers = vec![IdentityProviderSettings {
        issuer: idp.issuer.clone(),
        audience: AUDIENCE.to_owned(),
        callers: Callers::People,
        roles_claim: Some("sceau_roles".to_owned()),
        acr_values: Vec::new(),
        allowed: clients()
            .iter()
            .filter(|c| c.id.starts_with("person-"))
            .map(|c| c.id.to_owned())
            .collect(),
        require_typ: true,
    }];
    settings.auth.staff = support::back_office::roster(
        &idp.issuer,
        &[
            ("person-ra_operator", 1),
            ("person-ca_admin", 2),
            ("person-auditor", 3),
        ],
        &[],
    );
    adjust(&mut settings);
    let service = Service::start(settings, service::clock_now()).await;
    let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
    let other = service.entity("Beta SAS", "NTRFR-732829320").await;
    let credential = service.active_credential(entity, "seal-ca-managed").await;
    let store = &service.state.store;
    let now = time::OffsetDateTime::now_utc();
    for client in ["seal-server", "seal-server-bearer", "seal-server-dpop"] {
        store
            .insert_activation_credential(
                credential,
                entity,
                &ActivationBinding::Oidc {
                    issuer: idp.issuer.clone(),
                    subject: client.to_owned(),
                },
                "test:rccs",
                now,
            )
            .await
            .unwrap();
    }
    store
        .insert_activation_credential(
            credential,
            entity,
            &ActivationBinding::ClientCertificate {
                sha256: sceau::auth::mtls::fingerprint(&alice.der()),
            },
            "test:rccs",
            now,
        )
        .await
        .unwrap();
    for role in ["rccs", "legal_representative", "agent"] {
        store
            .assign_role(
                &idp.issuer,
                &format!("person-{role}"),
                role,
                Some(entity),
                "test",
                now,
            )
            .await
            .unwrap();
    }
    // A role in another organisation gives nothing here.
    store
        .assign_role(
            &idp.issuer,
            "person-nobody",
            "rccs",
            Some(other),
            "test",
            now,
        )
        .await
        .unwrap();
    let world = World {
        service,
        idp,
        pki,
        alice,
        bob,
        credential,
        entity,
        _dir: dir,
    };
    // An RA operator registers organisation A's provider for its servers.
    let operator = world.idp.token("person-ra_operator", AUDIENCE, None).await;
    let (status, registered) = world
        .call(
            "POST",
            &format!("/api/v1/entities/{entity}/identity-providers"),
            None,
            Some(&operator),
            Some(json!({
                "issuer": world.idp.issuer,
                "audience": AUDIENCE,
                "callers": "servers",
                "allowed": ["seal-server", "seal-server-bearer", "seal-server-dpop"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["callers"], "servers");
    let (status, listed) = world
        .call(
            "GET",
            &format!("/api/v1/entities/{entity}/identity-providers"),
            None,
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["identity_providers"].as_array().unwrap().len(), 1);
    world
}

impl World {
    fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        self.pki.client(identity)
    }

    /// Calls `method path` over mutual TLS with an optional bearer token.
    async fn call(
        &self,
        method: &str,
        path: &str,
        identity: Option<&Issued>,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = self.service.tls_url(path);
        let client = self.client(identity);
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn authorize_path(&self) -> String {
        format!("/api/v1/credentials/{}/authorize", self.credential)
    }

    fn list_path(&self) -> String {
        format!(
            "/api/v1/credentials/{}/activation-credentials",
            self.credential
        )
    }

    /// A token signed with the provider's own key, with these header fields and claims.
    fn forge(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.idp.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.idp.private_key_der),
        )
        .unwrap()
    }

    fn person_claims(&self, exp: Value) -> Value {
        let now = now_secs();
        json!({
            "iss": self.idp.issuer,
            "sub": "person-rccs",
            "client_id": "person-rccs",
            "aud": AUDIENCE,
            "iat": now,
            "exp": exp,
            "amr": ["pwd", "otp"],
            "jti": Uuid::new_v4().to_string(),
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn assert_unauthenticated(name: &str, (status, problem): (u16, Value), reason: &str) {
    assert_eq!(status, 401, "{name}: {problem}");
    assert_eq!(
        problem["type"], "urn:sceau:problem:unauthenticated",
        "{name}"
    );
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(reason),
        "{name}: {detail:?} does not say {reason:?}"
    );
}

#[test]
fn provider_tokens_are_accepted_and_every_forgery_is_refused() {
    let Some(softhsm) =
        support::hsm::isolated("provider_tokens_are_accepted_and_every_forgery_is_refused")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let bound = w
            .idp
            .token("seal-server", AUDIENCE, Some(&w.alice.certificate_pem()))
            .await;
        let sad_body = Some(json!({ "num_signatures": 1 }));

        // Accepted: a certificate-bound server token on its own certificate's connection.
        let (status, sad) = w
            .call(
                "POST",
                &w.authorize_path(),
                Some(&w.alice),
                Some(&bound),
                sad_body.clone(),
            )
            .await;
        assert_eq!(status, 200, "{sad}");
        // Accepted: a person with a second factor and the RCCS role in the database.
        let rccs = w.idp.token("person-rccs", AUDIENCE, None).await;
        let (status, list) = w.call("GET", &w.list_path(), None, Some(&rccs), None).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["activation_credentials"].as_array().unwrap().len(), 4);

        // The same token on another certificate's connection, or without one.
        assert_unauthenticated(
            "bound token, other certificate",
            w.call(
                "POST",
                &w.authorize_path(),
                Some(&w.bob),
                Some(&bound),
                sad_body.clone(),
            )
            .await,
            "another client certificate",
        );
        assert_unauthenticated(
            "bound token, no certificate",
            w.call(
                "POST",
                &w.authorize_path(),
                None,
                Some(&bound),
                sad_body.clone(),
            )
            .await,
            "present it over mutual TLS",
        );
        // A server's plain bearer token is not strong authentication.
        let bearer = w.idp.token("seal-server-bearer", AUDIENCE, None).await;
        assert_unauthenticated(
            "server bearer token",
            w.call(
                "POST",
                &w.authorize_path(),
                None,
                Some(&bearer),
                sad_body.clone(),
            )
            .await,
            "sender-constrained",
        );
        // No second factor.
        let weak = w.idp.token("person-weak", AUDIENCE, None).await;
        assert_unauthenticated(
            "no second factor",
            w.call("GET", &w.list_path(), None, Some(&weak), None).await,
            "second factor",
        );
        // Wrong audience.
        let other_audience = w.idp.token("person-rccs", OTHER_AUDIENCE, None).await;
        assert_unauthenticated(
            "wrong audience",
            w.call("GET", &w.list_path(), None, Some(&other_audience), None)
                .await,
            "refused",
        );
        // Wrong issuer: a provider sceau does not know.
        let stranger = TestIdp::start(&clients(), None, "stranger-key");
        let foreign = stranger.token("person-rccs", AUDIENCE, None).await;
        assert_unauthenticated(
            "wrong issuer",
            w.call("GET", &w.list_path(), None, Some(&foreign), None)
                .await,
            "not a registered identity provider",
        );
        // An unknown kid: a second provider posing as the registered issuer.
        let impostor = TestIdp::start(&clients(), Some(&w.idp.issuer), "impostor-key");
        let unknown_kid = impostor.token("person-rccs", AUDIENCE, None).await;
        assert_unauthenticated(
            "unknown kid",
            w.call("GET", &w.list_path(), None, Some(&unknown_kid), None)
                .await,
            "no key",
        );

        // Forged with the provider's own key: a numeric exp passes (the control),
        // a string exp does not.
        let control = w.forge(&w.person_claims(json!(now_secs() + 300)));
        assert_eq!(
            w.call("GET", &w.list_path(), None, Some(&control), None)
                .await
                .0,
            200
        );
        let string_exp = w.forge(&w.person_claims(json!((now_secs() + 300).to_string())));
        assert_unauthenticated(
            "exp as a string",
            w.call("GET", &w.list_path(), None, Some(&string_exp), None)
                .await,
            "refused",
        );
        // alg none.
        let claims = w.person_claims(json!(now_secs() + 300));
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"at+jwt"}"#),
            b64(claims.to_string().as_bytes())
        );
        assert_unauthenticated(
            "alg none",
            w.call("GET", &w.list_path(), None, Some(&none), None).await,
            "refused",
        );
        // HS256 keyed with the provider's public key.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(w.idp.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        let hs256 = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&w.idp.public_key_der),
        )
        .unwrap();
        assert_unauthenticated(
            "HS256 with the public key",
            w.call("GET", &w.list_path(), None, Some(&hs256), None)
                .await,
            "not accepted",
        );
        // Expired, by sceau's clock: an hour later the same good token is refused.
        let original = w.service.clock.now();
        w.service.clock.advance(Duration::from_secs(3600));
        assert_unauthenticated(
            "expired",
            w.call("GET", &w.list_path(), None, Some(&rccs), None).await,
            "expired",
        );
        w.service.clock.set(original);
        assert_eq!(
            w.call("GET", &w.list_path(), None, Some(&rccs), None)
                .await
                .0,
            200
        );
        let _ = w.entity;
        w.service.stop().await;
    });
}

/// Every authenticated route of the router, called by every role: only the roles
/// the permission table names get past authentication and authorisation.
#[test]
fn role_matrix_from_the_router() {
    let Some(softhsm) = support::hsm::isolated("role_matrix_from_the_router") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let seal_token = w
            .idp
            .token("seal-server", AUDIENCE, Some(&w.alice.certificate_pem()))
            .await;
        let mut callers: Vec<(Option<Role>, Option<&Issued>, String)> =
            vec![(Some(Role::SealClient), Some(&w.alice), seal_token.clone())];
        // Applicant is implicit: every person holds it.
        for role in Role::ALL
            .into_iter()
            .filter(|r| *r != Role::SealClient && *r != Role::Applicant)
        {
            let client = format!("person-{}", role.name());
            let token = w.idp.token(&client, AUDIENCE, None).await;
            callers.push((Some(role), None, token));
        }
        let nobody = w.idp.token("person-nobody", AUDIENCE, None).await;
        callers.push((None, None, nobody));

        let routes = sceau::api::route_access();
        let guarded: Vec<_> = routes
            .iter()
            .filter_map(|(method, path, access)| match access {
                Access::Requires(permission) => Some((method, path, *permission)),
                Access::Public => None,
            })
            .collect();
        assert!(
            guarded.len() >= 6,
            "the matrix covers the router's authenticated routes: {routes:?}"
        );
        for (method, path, permission) in guarded {
            for (role, identity, token) in &callers {
                // A fresh activation credential for routes that name one.
                let activation = w
                    .service
                    .state
                    .store
                    .insert_activation_credential(
                        w.credential,
                        w.entity,
                        &ActivationBinding::Oidc {
                            issuer: "https://matrix.test".to_owned(),
                            subject: Uuid::new_v4().to_string(),
                        },
                        "test",
                        time::OffsetDateTime::now_utc(),
                    )
                    .await
                    .unwrap();
                let target = if path.starts_with("/api/v1/entities/") {
                    w.entity
                } else {
                    w.credential
                };
                let concrete = path
                    .replace("{id}", &target.to_string())
                    .replace("{activation_id}", &activation.id.to_string());
                let body = (method != "GET" && method != "DELETE").then(|| json!({}));
                let (status, answer) = w
                    .call(method, &concrete, *identity, Some(token), body)
                    .await;
                let person = identity.is_none();
                // person-nobody is the RCCS of another organisation: he passes
                // the RCCS routes' gate where the organisation is checked later
                // (lists serve him his own; the RA answers 404 or a body error
                // on A's resources), not where the gate names A's credential.
                let other_rccs = role.is_none()
                    && permission.roles().contains(&Role::Rccs)
                    && (path.starts_with("/ra/") || !path.contains('{'));
                if other_rccs && path.contains('{') {
                    assert!(
                        !(200..300).contains(&status),
                        "{method} {path} as another organisation's RCCS: {status} {answer}"
                    );
                }
                let allowed = role.is_some_and(|r| permission.roles().contains(&r))
                    || (person && permission.roles().contains(&Role::Applicant))
                    || other_rccs;
                let context = format!("{method} {path} as {role:?}: {status} {answer}");
                if allowed {
                    // Past the gate: whatever the empty body or the state
                    // gives, never a refusal, never a server error, and an
                    // error is the problem its status names.
                    assert!(
                        (200..300).contains(&status) || (400..500).contains(&status),
                        "{context}"
                    );
                    assert!(status != 401 && status != 403, "{context}");
                    if status >= 400 && path.starts_with("/csc/") {
                        // The CSC API's own error shape.
                        assert!(answer["error"].is_string(), "{context}");
                    } else if status >= 400 {
                        let slug = match status {
                            400 => "bad-request",
                            404 => "not-found",
                            409 => "conflict",
                            413 => "payload-too-large",
                            415 => "unsupported-media-type",
                            422 => "unprocessable",
                            423 => "locked",
                            other => panic!("unexpected status {other}: {context}"),
                        };
                        assert_eq!(
                            answer["type"],
                            format!("urn:sceau:problem:{slug}"),
                            "{context}"
                        );
                    }
                } else if path.starts_with("/csc/") {
                    assert_eq!(status, 403, "{context}");
                    assert_eq!(answer["error"], "access_denied", "{context}");
                } else {
                    assert_eq!(status, 403, "{context}");
                    assert_eq!(answer["type"], "urn:sceau:problem:forbidden", "{context}");
                }
            }
        }
        w.service.stop().await;
    });
}

/// The RCCS registers, lists, rotates and revokes activation credentials over
/// HTTP; each step is journaled and takes effect for mutual TLS at once.
#[test]
fn the_rccs_manages_activation_credentials() {
    let Some(softhsm) = support::hsm::isolated("the_rccs_manages_activation_credentials") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let rccs = w.idp.token("person-rccs", AUDIENCE, None).await;
        let journal_before = w.service.state.journal.size().await.unwrap();
        // Bob's certificate is not registered: refused.
        let sad_body = Some(json!({ "num_signatures": 1 }));
        assert_eq!(
            w.call(
                "POST",
                &w.authorize_path(),
                Some(&w.bob),
                None,
                sad_body.clone()
            )
            .await
            .0,
            401
        );
        let (status, registered) = w
            .call(
                "POST",
                &w.list_path(),
                None,
                Some(&rccs),
                Some(
                    json!({ "type": "client_certificate", "certificate": w.bob.certificate_pem() }),
                ),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        assert_eq!(
            registered["certificate_sha256"],
            sceau::auth::mtls::fingerprint(&w.bob.der())
        );
        assert_eq!(
            w.call(
                "POST",
                &w.authorize_path(),
                Some(&w.bob),
                None,
                sad_body.clone()
            )
            .await
            .0,
            200
        );
        // Rotate bob's certificate to alice's… alice is already registered, so
        // rotate to an OIDC identity instead, then revoke it.
        let bob_id = registered["id"].as_str().unwrap().to_owned();
        let (status, rotated) = w
            .call(
                "POST",
                &format!("{}/{bob_id}/rotate", w.list_path()),
                None,
                Some(&rccs),
                Some(json!({ "type": "oidc", "issuer": w.idp.issuer, "subject": "seal-server-2" })),
            )
            .await;
        assert_eq!(status, 201, "{rotated}");
        assert_eq!(
            w.call(
                "POST",
                &w.authorize_path(),
                Some(&w.bob),
                None,
                sad_body.clone()
            )
            .await
            .0,
            401,
            "the rotated-out certificate no longer activates"
        );
        let (_, list) = w.call("GET", &w.list_path(), None, Some(&rccs), None).await;
        let entries = list["activation_credentials"].as_array().unwrap();
        let bob_entry = entries.iter().find(|e| e["id"] == bob_id.as_str()).unwrap();
        assert_eq!(bob_entry["status"], "revoked");
        let rotated_id = rotated["id"].as_str().unwrap();
        let (status, _) = w
            .call(
                "DELETE",
                &format!("{}/{rotated_id}", w.list_path()),
                None,
                Some(&rccs),
                None,
            )
            .await;
        assert_eq!(status, 204);
        let (status, problem) = w
            .call(
                "DELETE",
                &format!("{}/{rotated_id}", w.list_path()),
                None,
                Some(&rccs),
                None,
            )
            .await;
        assert_eq!(status, 409, "{problem}");
        // Bad input is a problem that says what is wrong, and stores nothing.
        let (status, problem) = w
            .call(
                "POST",
                &w.list_path(),
                None,
                Some(&rccs),
                Some(json!({ "type": "client_certificate", "certificate": "not a certificate" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("certificate"));
        let journal = &w.service.state.journal;
        let mut kinds = Vec::new();
        for index in journal_before..journal.size().await.unwrap() {
            kinds.push(journal.entry(index).await.unwrap().kind);
        }
        let managed: Vec<&str> = kinds
            .iter()
            .map(String::as_str)
            .filter(|k| k.starts_with("activation_credential."))
            .collect();
        // Each write between its intent and its outcome; refusals decided
        // before any write (409, 422) leave nothing.
        assert_eq!(
            managed,
            [
                "activation_credential.registering",
                "activation_credential.registered",
                "activation_credential.registering",
                "activation_credential.registered",
                "activation_credential.revoking",
                "activation_credential.revoked",
                "activation_credential.revoking",
                "activation_credential.revoked",
            ]
        );

        // A database failure is that failure (500), never a 404.
        let (status, fresh) = w
            .call(
                "POST",
                &w.list_path(),
                None,
                Some(&rccs),
                Some(json!({ "type": "oidc", "issuer": w.idp.issuer, "subject": "seal-server-3" })),
            )
            .await;
        assert_eq!(status, 201, "{fresh}");
        let fresh_id = fresh["id"].as_str().unwrap().to_owned();
        let fresh_path = format!("{}/{fresh_id}", w.list_path());
        db.execute(
            "UPDATE activation_credentials SET created_at = 'not a time' WHERE id = $1",
            vec![Arg::Text(fresh_id.clone())],
        )
        .await;
        let mark = journal.size().await.unwrap();
        let (status, problem) = w.call("DELETE", &fresh_path, None, Some(&rccs), None).await;
        assert_eq!(status, 500, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:internal");
        assert_eq!(journal.size().await.unwrap(), mark, "nothing was attempted");
        db.execute(
            "UPDATE activation_credentials SET created_at = 1 WHERE id = $1",
            vec![Arg::Text(fresh_id.clone())],
        )
        .await;
        // A write that fails leaves its intent and an outcome that says so,
        // never "revoked", and the record as it was.
        db.execute(
            "CREATE TRIGGER refuse_revocation BEFORE UPDATE ON activation_credentials \
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
            vec![],
        )
        .await;
        let (status, problem) = w.call("DELETE", &fresh_path, None, Some(&rccs), None).await;
        assert_eq!(status, 500, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:internal");
        let intent = journal.entry(mark).await.unwrap();
        assert_eq!(intent.kind, "activation_credential.revoking");
        let outcome = journal.entry(mark + 1).await.unwrap();
        assert_eq!(outcome.kind, "activation_credential.not_revoked");
        let details = outcome.event().unwrap().unwrap().details;
        assert_eq!(details["intent"], mark);
        assert!(
            details["reason"]
                .as_str()
                .unwrap()
                .contains("the disk is full"),
            "{details}"
        );
        assert_eq!(journal.size().await.unwrap(), mark + 2);
        let (_, list) = w.call("GET", &w.list_path(), None, Some(&rccs), None).await;
        let entry = list["activation_credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == fresh_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(entry["status"], "active", "{entry}");
        w.service.stop().await;
    });
}

/// Past the cache lifetime, an unreachable provider means its tokens are refused.
#[test]
fn an_unreachable_provider_fails_closed_after_the_cache_lifetime() {
    let Some(softhsm) =
        support::hsm::isolated("an_unreachable_provider_fails_closed_after_the_cache_lifetime")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world_with(&softhsm, &db, |settings| settings.auth.oidc_cache_secs = 1).await;
        let rccs = w.idp.token("person-rccs", AUDIENCE, None).await;
        assert_eq!(
            w.call("GET", &w.list_path(), None, Some(&rccs), None)
                .await
                .0,
            200
        );
        let World { service, idp, .. } = w;
        let port = idp.port;
        drop(idp);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let url = service.url(&format!(
            "/api/v1/credentials/{}/activation-credentials",
            Uuid::new_v4()
        ));
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(&rccs)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("cannot be reached"),
            "{problem} (provider was on port {port})"
        );
        service.stop().await;
    });
}

/// A DPoP proof (RFC 9449) signed by `key`, for `method url`, bound to `token`.
fn dpop_proof(
    key: &p256::ecdsa::SigningKey,
    method: &str,
    url: &str,
    token: Option<&str>,
    iat: u64,
) -> String {
    use jsonwebtoken::jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
        EllipticCurveKeyType, Jwk,
    };
    use p256::pkcs8::EncodePrivateKey;
    use sha2::Digest;
    let point = key.verifying_key().to_encoded_point(false);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("dpop+jwt".to_owned());
    header.jwk = Some(Jwk {
        common: CommonParameters::default(),
        algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: b64(point.x().unwrap()),
            y: b64(point.y().unwrap()),
        }),
    });
    let mut claims = json!({
        "jti": Uuid::new_v4().to_string(),
        "htm": method,
        "htu": url,
        "iat": iat,
    });
    if let Some(token) = token {
        claims["ath"] = json!(b64(&sha2::Sha256::digest(token.as_bytes())));
    }
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(key.to_pkcs8_der().unwrap().as_bytes()),
    )
    .unwrap()
}

/// DPoP-bound server tokens: accepted with a fresh proof from the bound key for
/// this very request and token; every other proof (or none) is 401.
#[test]
fn dpop_bound_tokens_need_a_fresh_proof_for_this_request() {
    let Some(softhsm) =
        support::hsm::isolated("dpop_bound_tokens_need_a_fresh_proof_for_this_request")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let other_key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        // The token request carries a proof too: the provider binds the token to it.
        let token_url = format!("http://127.0.0.1:{}/token", w.idp.port);
        let response = reqwest::Client::new()
            .post(&token_url)
            .basic_auth("seal-server-dpop", Some(support::idp::SECRET))
            .header(
                "DPoP",
                dpop_proof(&key, "POST", &token_url, None, now_secs()),
            )
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "seal"),
                ("resource", AUDIENCE),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();

        let path = w.authorize_path();
        let url = w.service.tls_url(&path);
        let send = |proof: Option<String>| {
            let client = w.client(None);
            let token = token.clone();
            let url = url.clone();
            async move {
                let mut request = client
                    .post(&url)
                    .header("Authorization", format!("DPoP {token}"))
                    .json(&json!({ "num_signatures": 1 }));
                if let Some(proof) = proof {
                    request = request.header("DPoP", proof);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let good = dpop_proof(&key, "POST", &url, Some(&token), now_secs());
        let (status, sad) = send(Some(good.clone())).await;
        assert_eq!(status, 200, "{sad}");
        assert_unauthenticated("replayed proof", send(Some(good)).await, "jti replay");
        assert_unauthenticated("no proof", send(None).await, "send a DPoP proof");
        assert_unauthenticated(
            "another key",
            send(Some(dpop_proof(
                &other_key,
                "POST",
                &url,
                Some(&token),
                now_secs(),
            )))
            .await,
            "another key",
        );
        assert_unauthenticated(
            "another method",
            send(Some(dpop_proof(
                &key,
                "GET",
                &url,
                Some(&token),
                now_secs(),
            )))
            .await,
            "another HTTP method",
        );
        assert_unauthenticated(
            "another URL",
            send(Some(dpop_proof(
                &key,
                "POST",
                &w.service.tls_url("/api/v1/other"),
                Some(&token),
                now_secs(),
            )))
            .await,
            "another URL",
        );
        assert_unauthenticated(
            "no ath",
            send(Some(dpop_proof(&key, "POST", &url, None, now_secs()))).await,
            "ath",
        );
        assert_unauthenticated(
            "stale proof",
            send(Some(dpop_proof(
                &key,
                "POST",
                &url,
                Some(&token),
                now_secs() - 900,
            )))
            .await,
            "not fresh",
        );
        // Once more with a fresh proof: still good.
        let (status, _) = send(Some(dpop_proof(
            &key,
            "POST",
            &url,
            Some(&token),
            now_secs(),
        )))
        .await;
        assert_eq!(status, 200);

        // Behind a proxy, the plain listener's URL is `server.public_url`'s:
        // a proof for it passes, one for the address the proxy forwards to
        // does not.
        let public = format!("{}{path}", w.service.state.settings.public_url());
        let plain = w.service.url(&path);
        assert_ne!(public, plain);
        let via_proxy = |htu: String| {
            let token = token.clone();
            let plain = plain.clone();
            let proof = dpop_proof(&key, "POST", &htu, Some(&token), now_secs());
            async move {
                let response = reqwest::Client::new()
                    .post(&plain)
                    .header("Authorization", format!("DPoP {token}"))
                    .header("DPoP", proof)
                    .json(&json!({ "num_signatures": 1 }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (status, sad) = via_proxy(public.clone()).await;
        assert_eq!(status, 200, "{sad}");
        assert_unauthenticated(
            "the forwarded address",
            via_proxy(plain.clone()).await,
            "another URL",
        );
        w.service.stop().await;
    });
}

/// A public JWK of `key`, as an attacker would embed or serve it.
fn public_jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> jsonwebtoken::jwk::Jwk {
    use jsonwebtoken::jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
        EllipticCurveKeyType, Jwk,
    };
    let point = key.verifying_key().to_encoded_point(false);
    Jwk {
        common: CommonParameters {
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: b64(point.x().unwrap()),
            y: b64(point.y().unwrap()),
        }),
    }
}

/// The refusals of the token rules the forgeries above do not try, each the
/// exact 401 and its reason: nbf and iat in the future, no or another `typ`,
/// no `exp`; and header keys (`jku`, `x5u`, an embedded `jwk`) are neither
/// fetched nor trusted.
#[test]
fn token_times_types_and_header_keys_are_refused() {
    let Some(softhsm) = support::hsm::isolated("token_times_types_and_header_keys_are_refused")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let get = |token: String| {
            let w = &w;
            async move {
                w.call("GET", &w.list_path(), None, Some(&token), None)
                    .await
            }
        };
        let good = w.person_claims(json!(now_secs() + 300));
        assert_eq!(get(w.forge(&good)).await.0, 200, "the control passes");

        let mut nbf = good.clone();
        nbf["nbf"] = json!(now_secs() + 600);
        assert_unauthenticated("nbf ahead", get(w.forge(&nbf)).await, "not valid yet (nbf)");
        let mut iat = good.clone();
        iat["iat"] = json!(now_secs() + 600);
        assert_unauthenticated(
            "iat ahead",
            get(w.forge(&iat)).await,
            "issued in the future (iat)",
        );
        let mut no_exp = good.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_unauthenticated("no exp", get(w.forge(&no_exp)).await, "missing field `exp`");
        let signed = |header: jsonwebtoken::Header, claims: &Value| {
            jsonwebtoken::encode(
                &header,
                claims,
                &jsonwebtoken::EncodingKey::from_ec_der(&w.idp.private_key_der),
            )
            .unwrap()
        };
        for typ in [None, Some("JWT"), Some("dpop+jwt")] {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(w.idp.kid.clone());
            header.typ = typ.map(str::to_owned);
            assert_unauthenticated(
                &format!("typ {typ:?}"),
                get(signed(header, &good)).await,
                "typ is not at+jwt",
            );
        }

        // An attacker's key, offered in every header field that can carry
        // one; a listener stands where jku and x5u point, and must see nobody.
        let attacker = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let trap_url = format!(
            "http://127.0.0.1:{}/keys",
            trap.local_addr().unwrap().port()
        );
        use p256::pkcs8::EncodePrivateKey;
        let attacker_der = attacker.to_pkcs8_der().unwrap();
        let by_attacker = |header: jsonwebtoken::Header| {
            jsonwebtoken::encode(
                &header,
                &good,
                &jsonwebtoken::EncodingKey::from_ec_der(attacker_der.as_bytes()),
            )
            .unwrap()
        };
        let header = |kid: &str| {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(kid.to_owned());
            header.typ = Some("at+jwt".to_owned());
            header
        };
        let mut jku = header("attacker-key");
        jku.jku = Some(trap_url.clone());
        assert_unauthenticated("jku", get(by_attacker(jku)).await, "no key");
        let mut x5u = header("attacker-key");
        x5u.x5u = Some(trap_url.clone());
        assert_unauthenticated("x5u", get(by_attacker(x5u)).await, "no key");
        // The embedded key names the provider's own kid: the provider's key
        // is the one used, and the attacker's signature fails under it.
        let mut jwk = header(&w.idp.kid);
        jwk.jwk = Some(public_jwk(&attacker, &w.idp.kid));
        assert_unauthenticated(
            "embedded jwk",
            get(by_attacker(jwk)).await,
            "InvalidSignature",
        );
        let mut jwk_only = header("attacker-key");
        jwk_only.jwk = Some(public_jwk(&attacker, "attacker-key"));
        assert_unauthenticated(
            "embedded jwk, own kid",
            get(by_attacker(jwk_only)).await,
            "no key",
        );
        // The listener waits out its 300 ms without anybody connecting.
        if let Ok(accepted) = tokio::time::timeout(Duration::from_millis(300), trap.accept()).await
        {
            panic!("a header URL was fetched: {accepted:?}");
        }
        w.service.stop().await;
    });
}

/// `seal_client` is a server's role, and comes only with a sender-constrained
/// token: a person given it by an assignment, with a registered activation
/// credential and a bearer token, is refused the SAD.
#[test]
fn a_person_never_acts_as_a_seal_server() {
    let Some(softhsm) = support::hsm::isolated("a_person_never_acts_as_a_seal_server") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let store = &w.service.state.store;
        let now = time::OffsetDateTime::now_utc();
        store
            .assign_role(
                &w.idp.issuer,
                "person-agent",
                "seal_client",
                Some(w.entity),
                "test",
                now,
            )
            .await
            .unwrap();
        store
            .insert_activation_credential(
                w.credential,
                w.entity,
                &ActivationBinding::Oidc {
                    issuer: w.idp.issuer.clone(),
                    subject: "person-agent".to_owned(),
                },
                "test:rccs",
                now,
            )
            .await
            .unwrap();
        let agent = w.idp.token("person-agent", AUDIENCE, None).await;
        let (status, problem) = w
            .call(
                "POST",
                &w.authorize_path(),
                None,
                Some(&agent),
                Some(json!({ "num_signatures": 1 })),
            )
            .await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:forbidden");
        assert_eq!(db.count("sads").await, 0, "no SAD was issued");
        w.service.stop().await;
    });
}

/// The 401 every token of an unusable provider gets: the cause stays in the
/// logs, so a token cannot be used to probe the network.
const PROVIDER_DOWN: &str =
    "the token's identity provider cannot be reached now, and no recent keys of it are kept";

/// A token from `w`'s provider's key, naming `issuer`.
fn naming(w: &World, issuer: &str) -> String {
    let mut claims = w.person_claims(json!(now_secs() + 300));
    claims["iss"] = json!(issuer);
    w.forge(&claims)
}

/// An organisation's provider is fetched at public addresses only: one
/// registered (before this rule) at a loopback address is never contacted,
/// and the API refuses such issuers, and http ones, outright.
#[test]
fn an_organisations_provider_is_never_fetched_inside_the_network() {
    let Some(softhsm) =
        support::hsm::isolated("an_organisations_provider_is_never_fetched_inside_the_network")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let trap = FakeProvider::start(Behaviour::HangUp).await;
        let w = world(&softhsm, &db).await;
        w.service
            .state
            .store
            .insert_identity_provider(
                &sceau::store::identity::IdentityProviderRecord {
                    id: Uuid::new_v4(),
                    entity_id: w.entity,
                    issuer: trap.issuer.clone(),
                    audience: AUDIENCE.to_owned(),
                    callers: Callers::People,
                    allowed: Vec::new(),
                    acr_values: Vec::new(),
                    disabled: false,
                },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        let (status, problem) = w
            .call(
                "GET",
                &w.list_path(),
                None,
                Some(&naming(&w, &trap.issuer)),
                None,
            )
            .await;
        assert_eq!(status, 401, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:unauthenticated");
        assert_eq!(problem["detail"], PROVIDER_DOWN);
        assert_eq!(trap.accepted(), 0, "a loopback provider was contacted");

        let operator = w.idp.token("person-ra_operator", AUDIENCE, None).await;
        let path = format!("/api/v1/entities/{}/identity-providers", w.entity);
        for issuer in [
            "http://idp.example",
            "https://169.254.169.254",
            "https://10.0.0.1/realms/a",
            "https://[fd00:ec2::254]",
        ] {
            let (status, problem) = w
                .call(
                    "POST",
                    &path,
                    None,
                    Some(&operator),
                    Some(json!({ "issuer": issuer, "audience": AUDIENCE, "callers": "servers" })),
                )
                .await;
            assert_eq!(status, 422, "{issuer}: {problem}");
            assert_eq!(problem["field"], "issuer", "{issuer}");
        }
        let (_, listed) = w.call("GET", &path, None, Some(&operator), None).await;
        assert_eq!(
            listed["identity_providers"].as_array().unwrap().len(),
            2,
            "the world's registration and the one written directly, no other"
        );
        w.service.stop().await;
    });
}

/// A provider that hangs holds up nobody else; one that is down is tried
/// once per backoff, not once per token; a JWKS over the size cap is refused
/// (the same provider with a small one is read).
#[test]
fn a_slow_down_or_bloated_provider_holds_up_nobody() {
    let Some(softhsm) = support::hsm::isolated("a_slow_down_or_bloated_provider_holds_up_nobody")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let hang = FakeProvider::start(Behaviour::Hang).await;
        let down = FakeProvider::start(Behaviour::HangUp).await;
        let huge = FakeProvider::start(Behaviour::HugeJwks { bytes: 1 << 20 }).await;
        let small = FakeProvider::start(Behaviour::HugeJwks { bytes: 1 << 10 }).await;
        let issuers: Vec<String> = [&hang, &down, &huge, &small]
            .iter()
            .map(|p| p.issuer.clone())
            .collect();
        let w = world_with(&softhsm, &db, |settings| {
            for issuer in &issuers {
                settings
                    .auth
                    .identity_providers
                    .push(IdentityProviderSettings {
                        issuer: issuer.clone(),
                        audience: AUDIENCE.to_owned(),
                        callers: Callers::People,
                        roles_claim: None,
                        acr_values: Vec::new(),
                        allowed: Vec::new(),
                        require_typ: true,
                    });
            }
        })
        .await;

        let slow = {
            let url = w.service.tls_url(&w.list_path());
            let client = w.client(None);
            let token = naming(&w, &hang.issuer);
            tokio::spawn(async move {
                let response = client.get(url).bearer_auth(token).send().await.unwrap();
                response.status().as_u16()
            })
        };
        for _ in 0..100 {
            if hang.accepted() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            hang.accepted(),
            1,
            "sceau is fetching from the hanging provider"
        );
        let rccs = w.idp.token("person-rccs", AUDIENCE, None).await;
        let (status, _) = w.call("GET", &w.list_path(), None, Some(&rccs), None).await;
        assert_eq!(status, 200);
        assert!(
            !slow.is_finished(),
            "the other provider's caller was answered while the slow fetch still ran"
        );
        assert_eq!(slow.await.unwrap(), 401);

        for _ in 0..3 {
            let (status, problem) = w
                .call(
                    "GET",
                    &w.list_path(),
                    None,
                    Some(&naming(&w, &down.issuer)),
                    None,
                )
                .await;
            assert_eq!(status, 401, "{problem}");
            assert_eq!(problem["detail"], PROVIDER_DOWN);
        }
        assert_eq!(down.accepted(), 1, "tried once, then left alone");

        let (status, problem) = w
            .call(
                "GET",
                &w.list_path(),
                None,
                Some(&naming(&w, &huge.issuer)),
                None,
            )
            .await;
        assert_eq!(status, 401, "{problem}");
        assert_eq!(problem["detail"], PROVIDER_DOWN);
        assert_eq!(huge.accepted(), 2, "discovery, then the JWKS it refused");
        let (status, problem) = w
            .call(
                "GET",
                &w.list_path(),
                None,
                Some(&naming(&w, &small.issuer)),
                None,
            )
            .await;
        assert_eq!(status, 401, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("publishes no key"),
            "{problem}"
        );
        w.service.stop().await;
    });
}

/// Each caller of an issuer and audience signs in through one registration
/// only: an organisation's registration that would also accept the service's
/// own provider's callers, or another organisation's, is refused. A
/// registration can be removed, and its tokens then sign in no more. Both are
/// journaled around the write.
#[test]
fn provider_registrations_never_collide_and_can_be_removed() {
    let Some(softhsm) =
        support::hsm::isolated("provider_registrations_never_collide_and_can_be_removed")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let operator = w.idp.token("person-ra_operator", AUDIENCE, None).await;
        let organisation_c = w.service.entity("Gamma SARL", "NTRFR-552100554").await;
        let register = |entity: Uuid, body: Value| {
            let w = &w;
            let operator = operator.clone();
            async move {
                w.call(
                    "POST",
                    &format!("/api/v1/entities/{entity}/identity-providers"),
                    None,
                    Some(&operator),
                    Some(body),
                )
                .await
            }
        };
        let journal = &w.service.state.journal;
        let mark = journal.size().await.unwrap();
        for (name, allowed) in [
            ("any caller, like the back office's people", json!([])),
            ("one of the back office's people", json!(["person-rccs"])),
            ("organisation A's server", json!(["seal-server"])),
        ] {
            let (status, problem) = register(
                organisation_c,
                json!({ "issuer": w.idp.issuer, "audience": AUDIENCE, "callers": "people",
                        "allowed": allowed }),
            )
            .await;
            assert_eq!(status, 409, "{name}: {problem}");
            assert_eq!(problem["type"], "urn:sceau:problem:conflict", "{name}");
        }
        assert_eq!(
            journal.size().await.unwrap(),
            mark,
            "refusals write nothing"
        );
        let (status, registered) = register(
            organisation_c,
            json!({ "issuer": w.idp.issuer, "audience": AUDIENCE, "callers": "servers",
                    "allowed": ["gamma-server"] }),
        )
        .await;
        assert_eq!(status, 201, "{registered}");

        // Organisation A's registration removed: its server's token is refused.
        let path = format!("/api/v1/entities/{}/identity-providers", w.entity);
        let (_, listed) = w.call("GET", &path, None, Some(&operator), None).await;
        let a_id = listed["identity_providers"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let bound = w
            .idp
            .token("seal-server", AUDIENCE, Some(&w.alice.certificate_pem()))
            .await;
        let sad_body = Some(json!({ "num_signatures": 1 }));
        let authorize_path = w.authorize_path();
        let authorize = || {
            w.call(
                "POST",
                &authorize_path,
                Some(&w.alice),
                Some(&bound),
                sad_body.clone(),
            )
        };
        assert_eq!(authorize().await.0, 200);
        let removal = format!("{path}/{a_id}");
        let (status, _) = w
            .call("DELETE", &removal, None, Some(&operator), None)
            .await;
        assert_eq!(status, 204);
        assert_unauthenticated(
            "removed provider",
            authorize().await,
            "no registration of this provider accepts this caller",
        );
        let (status, problem) = w
            .call("DELETE", &removal, None, Some(&operator), None)
            .await;
        assert_eq!(status, 404, "{problem}");
        let mut kinds = Vec::new();
        for index in mark..journal.size().await.unwrap() {
            let kind = journal.entry(index).await.unwrap().kind;
            if kind.starts_with("identity_provider.") {
                kinds.push(kind);
            }
        }
        assert_eq!(
            kinds,
            [
                "identity_provider.registering",
                "identity_provider.registered",
                "identity_provider.removing",
                "identity_provider.removed",
            ]
        );
        w.service.stop().await;
    });
}

/// An organisation's provider registration can be disabled and enabled
/// again by an RA operator, each journaled as intent and outcome: while it
/// is disabled its tokens authenticate no one, and the listing says so.
#[test]
fn a_disabled_provider_registration_authenticates_no_one_until_enabled() {
    let Some(softhsm) = support::hsm::isolated(
        "a_disabled_provider_registration_authenticates_no_one_until_enabled",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let operator = w.idp.token("person-ra_operator", AUDIENCE, None).await;
        let path = format!("/api/v1/entities/{}/identity-providers", w.entity);
        let (_, listed) = w.call("GET", &path, None, Some(&operator), None).await;
        let id = listed["identity_providers"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            listed["identity_providers"][0]["disabled"], false,
            "{listed}"
        );
        let bound = w
            .idp
            .token("seal-server", AUDIENCE, Some(&w.alice.certificate_pem()))
            .await;
        let authorize_path = w.authorize_path();
        let authorize = || {
            w.call(
                "POST",
                &authorize_path,
                Some(&w.alice),
                Some(&bound),
                Some(json!({ "num_signatures": 1 })),
            )
        };
        assert_eq!(authorize().await.0, 200);

        let journal = &w.service.state.journal;
        let mark = journal.size().await.unwrap();
        let (status, problem) = w
            .call(
                "POST",
                &format!("{path}/{id}/disable"),
                Some(&w.alice),
                Some(&bound),
                None,
            )
            .await;
        assert_eq!(status, 403, "a seal server may not: {problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:forbidden");
        let (status, disabled) = w
            .call(
                "POST",
                &format!("{path}/{id}/disable"),
                None,
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(status, 200, "{disabled}");
        assert_eq!(disabled["disabled"], true, "{disabled}");
        assert_unauthenticated(
            "disabled provider",
            authorize().await,
            "no registration of this provider accepts this caller",
        );
        let (_, listed) = w.call("GET", &path, None, Some(&operator), None).await;
        assert_eq!(
            listed["identity_providers"][0]["disabled"], true,
            "{listed}"
        );
        let (status, problem) = w
            .call(
                "POST",
                &format!("{path}/{id}/disable"),
                None,
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(
            status, 409,
            "disabled already (nothing journaled): {problem}"
        );
        assert_eq!(problem["type"], "urn:sceau:problem:conflict");

        let (status, enabled) = w
            .call(
                "POST",
                &format!("{path}/{id}/enable"),
                None,
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(status, 200, "{enabled}");
        assert_eq!(enabled["disabled"], false, "{enabled}");
        assert_eq!(authorize().await.0, 200, "enabled again");
        let unknown = format!("{path}/{}/enable", Uuid::new_v4());
        let (status, problem) = w.call("POST", &unknown, None, Some(&operator), None).await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem["type"], "urn:sceau:problem:not-found");

        let mut kinds = Vec::new();
        for index in mark..journal.size().await.unwrap() {
            let kind = journal.entry(index).await.unwrap().kind;
            if kind.starts_with("identity_provider.") {
                kinds.push(kind);
            }
        }
        assert_eq!(
            kinds,
            [
                "identity_provider.disabling",
                "identity_provider.disabled",
                "identity_provider.enabling",
                "identity_provider.enabled",
            ]
        );
        w.service.stop().await;
    });
}

/// A token bound to a client certificate sceau issued is refused on every
/// request once that certificate is revoked, before the listener's next CRL
/// read: the binding alone is no proof the certificate still stands.
#[test]
fn a_certificate_bound_token_dies_with_its_certificate() {
    let Some(softhsm) =
        support::hsm::isolated("a_certificate_bound_token_dies_with_its_certificate")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let w = world(&softhsm, &db).await;
        let state = &w.service.state;
        let (server, issued) = w
            .service
            .sceau_client_certificate(
                w._dir.path(),
                "server",
                w.entity,
                ("Alpha SA", "NTRFR-123456782"),
            )
            .await;
        let pem = server.certificate_pem();
        let bound = w.idp.token("seal-server", AUDIENCE, Some(&pem)).await;
        let sad_body = Some(json!({ "num_signatures": 1 }));
        let (status, sad) = w
            .call(
                "POST",
                &w.authorize_path(),
                Some(&server),
                Some(&bound),
                sad_body.clone(),
            )
            .await;
        assert_eq!(status, 200, "{sad}");

        let operator = service::ra_operator();
        state
            .ra
            .revoke(
                &operator,
                &issued.serial,
                "key_compromise",
                None,
                None,
                false,
            )
            .await
            .unwrap();
        assert_unauthenticated(
            "bound to a revoked certificate",
            w.call(
                "POST",
                &w.authorize_path(),
                Some(&server),
                Some(&bound),
                sad_body,
            )
            .await,
            "the client certificate this token is bound to is revoked",
        );
        w.service.stop().await;
    });
}
