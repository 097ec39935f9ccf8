//! The registration back office for the tests: the real OpenID provider with
//! its test people (RCCS, legal representative, agent, RA operators, CA
//! administrator, auditor), sceau behind it, and the calls that walk a request
//! from application to an issued certificate.

use std::time::{Duration, SystemTime};

use sceau::clock::Clock;
use sceau::config::{Callers, IdentityProviderSettings};
use serde_json::{Value, json};

use super::idp::{AUDIENCE, Client, TestIdp};
use super::service::{self, Service};

pub const SIREN_A: &str = "732829320";
pub const SIRET_A: &str = "73282932000009";
pub const SIREN_B: &str = "123456782";
/// A valid SIRET of organisation B: not an establishment of A.
pub const SIRET_B: &str = "12345678200002";
pub const EID_ACR: &str = "https://eidas.test/loa/substantial";

pub fn otp(roles: &[&str]) -> Value {
    json!({ "amr": ["pwd", "otp"], "sceau_roles": roles })
}

/// Claims each test person's tokens carry.
pub fn people() -> Vec<(&'static str, Value)> {
    let mut eid = otp(&[]);
    eid["acr"] = json!(EID_ACR);
    vec![
        ("rccs-a", eid.clone()),
        ("rccs-b", eid),
        ("legal-a", otp(&[])),
        ("agent-a", otp(&[])),
        ("op-1", otp(&["ra_operator"])),
        ("op-2", otp(&["ra_operator"])),
        ("ca-admin", otp(&["ca_admin"])),
        ("auditor", otp(&["auditor"])),
        ("stranger", otp(&[])),
        ("rccs-low", {
            let mut low = otp(&[]);
            low["acr"] = json!("https://eidas.test/loa/low");
            low
        }),
    ]
}

/// The staff people of the test provider: each RA operator, the CA
/// administrator and the auditor is a registered person with one sign-in.
/// `overrides` replaces a person's name and birth date by sign-in.
pub const STAFF: [(&str, u128); 4] = [("op-1", 1), ("op-2", 2), ("ca-admin", 3), ("auditor", 4)];

pub fn staff_id(who: &str) -> String {
    let (_, n) = STAFF.iter().find(|(w, _)| *w == who).unwrap();
    uuid::Uuid::from_u128(*n).to_string()
}

pub fn staff_roster(
    issuer: &str,
    overrides: &[(&str, &str, &str, &str)],
) -> sceau::config::StaffRoster {
    let people: Vec<(&str, u128)> = STAFF.to_vec();
    roster(issuer, &people, overrides)
}

/// A roster of `people` (sign-in subject at `issuer`, person number), each
/// named "Staff <subject>" and born on 1970-01-01 unless `overrides` says.
pub fn roster(
    issuer: &str,
    people: &[(&str, u128)],
    overrides: &[(&str, &str, &str, &str)],
) -> sceau::config::StaffRoster {
    let entries: Vec<Value> = people
        .iter()
        .map(|(who, n)| {
            let (given, family, birth) = overrides
                .iter()
                .find(|(w, ..)| w == who)
                .map(|(_, g, f, b)| (*g, *f, *b))
                .unwrap_or(("Staff", who, "1970-01-01"));
            json!({
                "id": uuid::Uuid::from_u128(*n).to_string(),
                "given_name": given,
                "family_name": family,
                "birth_date": birth,
                "sign_ins": [{ "issuer": issuer, "subject": who }],
            })
        })
        .collect();
    serde_json::from_value(Value::Array(entries)).unwrap()
}

/// `method url` with `token` and a JSON `body`: the status and the answer
/// (JSON, else its text as a JSON string).
pub async fn bearer_call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// sceau on its plain listener with the test people's provider for the back
/// office (people, a second factor or the eID `acr` counts as strong).
pub struct BackOffice {
    pub service: Service,
    pub idp: TestIdp,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

pub async fn start(
    softhsm: &super::hsm::SoftHsm,
    db: &super::db::TestDb,
    adjust: impl FnOnce(&mut sceau::config::Settings),
) -> BackOffice {
    start_with_clients(softhsm, db, Vec::new(), adjust).await
}

/// As `start`, with more clients at the provider (organisations' servers).
pub async fn start_with_clients(
    softhsm: &super::hsm::SoftHsm,
    db: &super::db::TestDb,
    servers: Vec<Client>,
    adjust: impl FnOnce(&mut sceau::config::Settings),
) -> BackOffice {
    let dir = tempfile::tempdir().unwrap();
    let mut clients = people_clients();
    clients.extend(servers);
    let idp = TestIdp::start(&clients, None, "ra-provider-key");
    let settings = service::settings(softhsm, db, dir.path(), None);
    finish_start(settings, idp, dir, adjust).await
}

/// Each test person as a client of the provider (its tokens carry his claims).
fn people_clients() -> Vec<Client> {
    people()
        .into_iter()
        .map(|(id, claims)| Client {
            id,
            certificate_bound: false,
            claims,
        })
        .collect()
}

/// The acr values of the test provider's login page, by level.
pub const LOA_LOW: &str = "urn:sceau:test:loa:low";
pub const LOA_SUBSTANTIAL: &str = "urn:sceau:test:loa:substantial";
pub const LOA_HIGH: &str = "urn:sceau:test:loa:high";

/// As `start`, with the portal: the service on a port chosen first, its
/// provider signing the same test people in through its login page (the
/// portal provider `test-id`), with the same subjects as their API tokens.
pub async fn start_with_portal(
    softhsm: &super::hsm::SoftHsm,
    db: &super::db::TestDb,
    adjust: impl FnOnce(&mut sceau::config::Settings),
) -> BackOffice {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    start_portal_at(softhsm, db, &base, adjust).await
}

/// As [`start_with_portal`], serving at `base` (`http://127.0.0.1:<port>`).
pub async fn start_portal_at(
    softhsm: &super::hsm::SoftHsm,
    db: &super::db::TestDb,
    base: &str,
    adjust: impl FnOnce(&mut sceau::config::Settings),
) -> BackOffice {
    let dir = tempfile::tempdir().unwrap();
    let clients = people_clients();
    let logins: serde_json::Map<String, Value> = people()
        .into_iter()
        .map(|(id, claims)| {
            let name = format!("Person {id}");
            (
                id.to_owned(),
                json!({ "name": name, "sceau_roles": claims["sceau_roles"] }),
            )
        })
        .collect();
    let idp = TestIdp::start_with(
        &clients,
        None,
        "ra-provider-key",
        json!({ "people": logins, "portal_client": super::idp::portal_client(base) }),
    );
    let mut settings = service::settings(softhsm, db, dir.path(), None);
    settings.server.listen = base.trim_start_matches("http://").parse().unwrap();
    settings.server.public_url = base.to_owned();
    settings.portal = serde_json::from_value(json!({
        "providers": [{
            "name": "test-id",
            "issuer": idp.issuer,
            "client_id": super::idp::PORTAL_CLIENT,
            "client_secret": super::idp::SECRET,
            "acr_levels": {
                LOA_LOW: "low",
                LOA_SUBSTANTIAL: "substantial",
                LOA_HIGH: "high",
            },
        }],
    }))
    .unwrap();
    finish_start(settings, idp, dir, adjust).await
}

async fn finish_start(
    mut settings: sceau::config::Settings,
    idp: TestIdp,
    dir: tempfile::TempDir,
    adjust: impl FnOnce(&mut sceau::config::Settings),
) -> BackOffice {
    settings.auth.identity_providers = vec![IdentityProviderSettings {
        issuer: idp.issuer.clone(),
        audience: AUDIENCE.to_owned(),
        callers: Callers::People,
        roles_claim: Some("sceau_roles".to_owned()),
        acr_values: vec![EID_ACR.to_owned()],
        allowed: people().iter().map(|(id, _)| (*id).to_owned()).collect(),
        require_typ: true,
    }];
    settings.auth.staff = staff_roster(&idp.issuer, &[]);
    // No background sweeps: the tests run them when they move the clock.
    settings.ra.sweep_interval_secs = 24 * 3600;
    adjust(&mut settings);
    let service = Service::start(settings, service::clock_now()).await;
    BackOffice {
        service,
        idp,
        http: reqwest::Client::new(),
        dir,
    }
}

impl BackOffice {
    /// A token for `who`: from the provider while sceau's clock is the real
    /// time, signed with the provider's key and dated by sceau's clock once the
    /// test has moved it (the provider cannot issue tokens in the future).
    pub async fn token(&self, who: &str) -> String {
        let now = self.service.clock.now();
        let drift = now
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if drift < Duration::from_secs(60) {
            self.idp.token(who, AUDIENCE, None).await
        } else {
            let claims = people()
                .into_iter()
                .find(|(id, _)| *id == who)
                .map(|(_, c)| c)
                .unwrap();
            self.idp.token_dated(who, &claims, now)
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.token(who).await;
        bearer_call(&self.http, method, &self.service.url(path), &token, body).await
    }

    pub async fn upload(
        &self,
        request: &str,
        kind: &str,
        who: &str,
        content: Vec<u8>,
        name: &str,
    ) -> (u16, Value) {
        let token = self.token(who).await;
        let response = self
            .http
            .post(
                self.service
                    .url(&format!("/ra/v1/requests/{request}/documents?kind={kind}")),
            )
            .bearer_auth(token)
            // What a browser sends for a file named *.pdf: the server must not trust it.
            .header("content-type", "application/pdf")
            .header(
                "content-disposition",
                format!("attachment; filename=\"{name}\""),
            )
            .body(content)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn apply(&self, who: &str, siren: &str, siret: Option<&str>) -> (u16, Value) {
        self.call(
            "POST",
            "/ra/v1/requests",
            who,
            Some(application(siren, siret)),
        )
        .await
    }

    /// An application ready for review: applied, documents, terms, submitted.
    pub async fn submitted(&self, who: &str, siren: &str) -> String {
        let (status, view) = self.apply(who, siren, None).await;
        assert_eq!(status, 201, "{view}");
        let id = view["id"].as_str().unwrap().to_owned();
        self.complete(&id, who).await;
        let (status, view) = self.do_move(&id, who, "submit").await;
        assert_eq!(status, 200, "{view}");
        id
    }

    pub async fn complete(&self, id: &str, who: &str) {
        for (kind, content) in [
            ("identity_document", jpeg()),
            ("registry_extract", pdf()),
            ("mandate", png()),
        ] {
            let (status, doc) = self.upload(id, kind, who, content, "scan.pdf").await;
            assert_eq!(status, 201, "{kind}: {doc}");
        }
        let (status, view) = self
            .call(
                "POST",
                &format!("/ra/v1/requests/{id}/terms"),
                who,
                Some(json!({ "version": "1.0" })),
            )
            .await;
        assert_eq!(status, 200, "{view}");
    }

    pub async fn do_move(&self, id: &str, who: &str, name: &str) -> (u16, Value) {
        let message = matches!(name, "request_information" | "reject").then_some("see the file");
        self.call(
            "POST",
            &format!("/ra/v1/requests/{id}/moves"),
            who,
            Some(json!({ "move": name, "message": message })),
        )
        .await
    }

    pub async fn issued(&self, who: &str, siren: &str) -> (String, Value) {
        let id = self.submitted(who, siren).await;
        assert_eq!(self.do_move(&id, "op-1", "start_review").await.0, 200);
        assert_eq!(self.do_move(&id, "op-1", "approve").await.0, 200);
        let (status, view) = self.do_move(&id, "op-2", "approve").await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "issued", "{view}");
        (id, view)
    }

    pub fn set_clock(&self, to: SystemTime) {
        self.service.clock.set(to);
    }
}

pub fn application(siren: &str, siret: Option<&str>) -> Value {
    json!({
        "policy": "seal-ca-managed",
        "organisation": {
            "siren": siren,
            "siret": siret,
            "legal_name": "Alpha Factures SA",
            "legal_form": "SA à conseil d'administration",
            "street": "1 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
        },
        "rccs": { "given_name": "Camille", "family_name": "Rccs", "email": "rccs@alpha.example", "language": "fr" },
        "legal_representative": { "given_name": "Louise", "family_name": "Legal", "email": "legal@alpha.example", "language": "en" },
        "agent": { "given_name": "Alex", "family_name": "Agent", "email": "agent@alpha.example" },
        "seal_name": "Alpha Factures seal",
        "validity_days": 365,
        "identity_verification": { "method": "eid_substantial" },
    })
}

pub fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n".to_vec()
}

pub fn jpeg() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

pub fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(&[0, 0, 0, 13]);
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    bytes.extend_from_slice(&[0x90, 0x77, 0x53, 0xDE]);
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(b"IEND");
    bytes.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
    bytes
}

/// An ELF executable's first bytes, as a file renamed `.pdf` would carry.
pub fn executable() -> Vec<u8> {
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.resize(4096, 0x90);
    bytes
}
