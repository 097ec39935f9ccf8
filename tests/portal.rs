//! The portal as a person's browser reaches it: signed in at the test
//! provider's own login page (authorization code, PKCE, state, nonce), a
//! session kept server-side under a `__Host-` cookie, the request tracker
//! and its forms. Security: forms without their session's token are
//! refused, a session works on any instance, an expired one goes back to
//! sign-in and changes nothing, an organisation sees nothing of another,
//! the sign-in is tied to the browser that started it, and the level of
//! assurance and the freshness of the provider's answer are checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sha2::{Digest, Sha256};
use support::back_office::{
    self, BackOffice, LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL, SIREN_A, SIREN_B,
};
use support::browser::{Browser, Page};
use support::service::Service;

const SESSION: &str = "__Host-sceau-session";

fn base(office: &BackOffice) -> String {
    office.service.url("")
}

/// rccs-a's request for organisation A, applied through the API.
async fn applied(office: &BackOffice) -> String {
    let (status, view) = office.apply("rccs-a", SIREN_A, None).await;
    assert_eq!(status, 201, "{view}");
    view["id"].as_str().unwrap().to_owned()
}

async fn journal_kinds_since(service: &Service, from: u64) -> Vec<(String, serde_json::Value)> {
    support::journal::entries_since(&service.state.journal, from, &["ra.applied"])
        .await
        .into_iter()
        .map(|(_, kind, details)| (kind, details))
        .collect()
}

fn session_cookie_header(page: &Page) -> String {
    page.set_cookies
        .iter()
        .find(|c| c.starts_with(SESSION) && !c.contains("Max-Age=0"))
        .cloned()
        .unwrap_or_else(|| panic!("no session cookie: {:?}", page.set_cookies))
}

#[test]
fn a_person_signs_in_and_completes_then_submits_his_request() {
    let Some(softhsm) =
        support::hsm::isolated("a_person_signs_in_and_completes_then_submits_his_request")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let id = applied(&office).await;

        // Asked for a page, sent to sign in, back on it once signed in.
        let browser = Browser::new("fr-FR,fr;q=0.9,en;q=0.5");
        let first = browser.get(&format!("{base}/portal/requests/{id}")).await;
        assert_eq!(first.status, 200);
        assert!(first.url.ends_with(&format!("/portal?sign_in=needed&next=/portal/requests/{id}")), "{}", first.url);
        let page = browser
            .sign_in(&base, &format!("/portal/requests/{id}"), "rccs-a", LOA_SUBSTANTIAL, 0)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.url, format!("{base}/portal/requests/{id}"));

        // The cookie: __Host-, HttpOnly, Secure, SameSite=Lax, path /, no domain.
        let cookie = session_cookie_header(&page);
        let value = browser.cookie(SESSION).unwrap();
        assert_eq!(
            cookie,
            format!("{SESSION}={value}; Path=/; Secure; HttpOnly; SameSite=Lax")
        );
        // Stored as its SHA-256 only, with the level of the sign-in.
        let rows = db
            .text_rows("SELECT id_sha256, assurance, person FROM portal_sessions", vec![])
            .await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], hex::encode(Sha256::digest(value.as_bytes())));
        assert_eq!(rows[0][1], "substantial");
        assert!(!rows[0][2].contains(&value));
        let person: serde_json::Value = serde_json::from_str(&rows[0][2]).unwrap();
        assert_eq!(person["subject"], "rccs-a");
        assert_eq!(person["acr"], LOA_SUBSTANTIAL);
        assert_eq!(db.count("portal_sign_ins").await, 0, "the sign-in is taken once");

        // The page, in French: the state, what is missing, the terms with
        // their version and SHA-256, the history.
        assert!(page.body.contains("<html lang=\"fr\">"));
        assert!(page.body.contains("<dd id=\"state\">Brouillon</dd>"), "{}", page.body);
        assert!(page.body.contains("Les conditions générales d&#39;utilisation ne sont pas encore acceptées."));
        assert!(page.body.contains("Pièces à fournir : pièce d&#39;identité, extrait Kbis, mandat."), "{}", page.body);
        let policy = office.service.state.policies.get("seal-ca-managed").unwrap();
        let sha256 = hex::encode(policy.terms.sha256);
        assert!(page.body.contains(&format!("<code>{sha256}</code>")));
        assert!(page.body.contains("Version 1.0"));
        assert!(!page.body.contains("name=\"move\" value=\"submit\""), "nothing to submit yet");

        // The terms, accepted by the form (its box unticked first: refused, nothing recorded).
        let before = office.service.state.journal.size().await.unwrap();
        let path = format!("/portal/requests/{id}/terms");
        let unticked = browser.submit(&page, &base, &path, &[]).await;
        unticked.assert_problem(422, "unprocessable");
        assert_eq!(journal_kinds_since(&office.service, before).await, vec![]);
        let accepted = browser.submit(&page, &base, &path, &[("accept", "yes")]).await;
        assert_eq!(accepted.status, 200, "{}", accepted.body);
        assert_eq!(accepted.url, format!("{base}/portal/requests/{id}?done=terms"));
        assert!(accepted.body.contains("Les conditions d&#39;utilisation sont acceptées."));
        assert!(accepted.body.contains("id=\"terms-accepted\""));
        let entries = journal_kinds_since(&office.service, before).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].0, "terms.accepted");
        assert_eq!(entries[0].1["sha256"], sha256);
        assert_eq!(entries[0].1["version"], "1.0");
        let (_, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        let principal = format!("oidc:{}#rccs-a", office.idp.issuer);
        assert_eq!(view["terms"]["principal"], principal.as_str());

        // Documents through the API; then nothing is missing and the page
        // offers the submit, whose form moves the request.
        office.complete(&id, "rccs-a").await;
        let page = browser.get(&format!("{base}/portal/requests/{id}")).await;
        assert!(page.body.contains("Rien : le dossier est complet."), "{}", page.body);
        let submitted = browser
            .submit(&page, &base, &format!("/portal/requests/{id}/moves"), &[])
            .await;
        assert_eq!(submitted.status, 200, "{}", submitted.body);
        assert!(submitted.body.contains("<dd id=\"state\">Envoyée</dd>"), "{}", submitted.body);
        assert!(submitted.body.contains("La demande est envoyée"));
        let (_, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert_eq!(view["state"], "submitted");
        let last = view["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["action"], "submit");
        assert_eq!(last["actor"], principal.as_str());

        // In English when asked, kept for the next pages.
        let english = browser.get(&format!("{base}/portal/requests/{id}?lang=en")).await;
        assert!(english.body.contains("<html lang=\"en\">"));
        assert!(english.body.contains("<dd id=\"state\">Sent</dd>"));
        let list = browser.get(&format!("{base}/portal/requests")).await;
        assert!(list.body.contains("<html lang=\"en\">"), "the choice is kept");
        assert!(list.body.contains("Alpha Factures seal"));

        // Every page: a strict CSP, never cached.
        let csp = list.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http://127.0.0.1:"), "{csp}");
        assert!(csp.ends_with("; base-uri 'none'; frame-ancestors 'none'"), "{csp}");
        assert_eq!(list.headers["cache-control"], "no-store");

        // Signing out ends the session here and at the provider.
        let home = browser.get(&format!("{base}/portal")).await;
        let out = browser.submit(&home, &base, "/portal/sign-out", &[]).await;
        assert!(out.url.contains("/session/end"), "{}", out.url);
        assert_eq!(db.count("portal_sessions").await, 0);
        assert!(browser.cookie(SESSION).is_none());
    });
}

#[test]
fn forms_without_their_sessions_token_are_refused() {
    let Some(softhsm) = support::hsm::isolated("forms_without_their_sessions_token_are_refused")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let id = applied(&office).await;
        let browser = Browser::new("en");
        let page = browser
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "rccs-a",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        // The same person signed in from another browser: another session.
        let other = Browser::new("en");
        let other_page = other
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "rccs-a",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        assert_eq!(db.count("portal_sessions").await, 2);
        let path = format!("/portal/requests/{id}/terms");
        let mine = page.form(&path);
        let theirs = other_page.form(&path);
        let token = |fields: &[(String, String)]| {
            fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone()
        };
        assert_ne!(token(&mine), token(&theirs));

        let before = office.service.state.journal.size().await.unwrap();
        let without: Vec<(String, String)> = mine
            .iter()
            .filter(|(k, _)| k != "csrf")
            .cloned()
            .chain([("accept".to_owned(), "yes".to_owned())])
            .collect();
        let refused = browser
            .visit("POST", &format!("{base}{path}"), Some(&without))
            .await;
        refused.assert_problem(403, "forbidden");
        assert!(refused.body.contains("does not come from your session"));

        let mut swapped = without.clone();
        swapped.push(("csrf".to_owned(), token(&theirs)));
        let refused = browser
            .visit("POST", &format!("{base}{path}"), Some(&swapped))
            .await;
        refused.assert_problem(403, "forbidden");

        // The sign-out form too.
        let refused = browser
            .visit("POST", &format!("{base}/portal/sign-out"), Some(&[]))
            .await;
        refused.assert_problem(403, "forbidden");
        assert_eq!(db.count("portal_sessions").await, 2);

        // Nothing was written.
        assert_eq!(journal_kinds_since(&office.service, before).await, vec![]);
        let (_, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert!(view["terms"].is_null(), "{view}");
    });
}

#[test]
fn a_session_opened_on_one_instance_works_on_another() {
    let Some(softhsm) = support::hsm::isolated("a_session_opened_on_one_instance_works_on_another")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = match support::db::postgres().await {
            Some(db) => db,
            None => support::db::sqlite(),
        };
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let id = applied(&office).await;
        let browser = Browser::new("en");
        browser
            .sign_in(&base, "/portal/requests", "rccs-a", LOA_SUBSTANTIAL, 0)
            .await;
        // A second instance of the deployment: same database and tokens,
        // behind the same public address.
        let mut settings = (*office.service.state.settings).clone();
        settings.server.listen = "127.0.0.1:0".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        settings.data_dir = dir.path().join("var");
        let second = Service::start(settings, support::service::clock_now()).await;
        let page = browser
            .get(&second.url(&format!("/portal/requests/{id}")))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("<dd id=\"state\">Draft</dd>"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Signed in: Person rccs-a"));
        second.stop().await;
    });
}

#[test]
fn an_expired_session_goes_back_to_sign_in_and_changes_nothing() {
    let Some(softhsm) =
        support::hsm::isolated("an_expired_session_goes_back_to_sign_in_and_changes_nothing")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let id = applied(&office).await;
        let browser = Browser::new("en");
        let page = browser
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "rccs-a",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        assert_eq!(page.status, 200);
        // Another browser's session, and a sign-in left at the provider.
        let other = Browser::new("en");
        other
            .sign_in(&base, "/portal", "rccs-a", LOA_SUBSTANTIAL, 0)
            .await;
        let left = Browser::new("en");
        left.get(&format!("{base}/portal/sign-in/test-id")).await;
        assert_eq!(db.count("portal_sign_ins").await, 1);
        let idle = office.service.state.settings.portal.session_idle_secs;
        office
            .service
            .clock
            .advance(std::time::Duration::from_secs(idle + 1));
        let before = office.service.state.journal.size().await.unwrap();
        let path = format!("/portal/requests/{id}/terms");
        let after = browser
            .submit(&page, &base, &path, &[("accept", "yes")])
            .await;
        assert_eq!(after.status, 200);
        assert_eq!(
            after.url,
            format!("{base}/portal?sign_in=needed&next=/portal/requests/{id}")
        );
        assert!(after.body.contains("Sign in to go on"));
        assert_eq!(
            db.count("portal_sessions").await,
            1,
            "the expired session read is gone"
        );
        // The upkeep forgets the other one and the unfinished sign-in.
        let purged = sceau::portal::purge_expired(&office.service.state)
            .await
            .unwrap();
        assert_eq!(purged, 2);
        assert_eq!(db.count("portal_sessions").await, 0);
        assert_eq!(db.count("portal_sign_ins").await, 0);
        assert_eq!(journal_kinds_since(&office.service, before).await, vec![]);
        let (_, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-a", None)
            .await;
        assert!(view["terms"].is_null(), "{view}");
    });
}

#[test]
fn a_person_of_one_organisation_sees_nothing_of_another() {
    let Some(softhsm) =
        support::hsm::isolated("a_person_of_one_organisation_sees_nothing_of_another")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let a = applied(&office).await;
        let (status, view) = office.apply("rccs-b", SIREN_B, None).await;
        assert_eq!(status, 201, "{view}");
        let browser = Browser::new("en");
        let list = browser
            .sign_in(&base, "/portal/requests", "rccs-b", LOA_SUBSTANTIAL, 0)
            .await;
        assert_eq!(list.status, 200);
        assert!(!list.body.contains(&a), "{}", list.body);
        assert!(list.body.contains(view["id"].as_str().unwrap()));
        let page = browser.get(&format!("{base}/portal/requests/{a}")).await;
        page.assert_problem(404, "not-found");
        assert!(!page.body.contains("Alpha"), "{}", page.body);
        // Nor may he act on it.
        let form = list.form("/portal/sign-out");
        let mut fields = form.clone();
        fields.push(("accept".to_owned(), "yes".to_owned()));
        fields.push(("version".to_owned(), "1.0".to_owned()));
        let refused = browser
            .visit(
                "POST",
                &format!("{base}/portal/requests/{a}/terms"),
                Some(&fields),
            )
            .await;
        refused.assert_problem(404, "not-found");
    });
}

#[test]
fn a_sign_in_is_tied_to_its_browser_its_level_and_its_time() {
    let Some(softhsm) =
        support::hsm::isolated("a_sign_in_is_tied_to_its_browser_its_level_and_its_time")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);

        // A level below substantial signs no one in.
        let low = Browser::new("en");
        let page = low.sign_in(&base, "/portal", "rccs-a", LOA_LOW, 0).await;
        page.assert_problem(401, "unauthenticated");
        assert!(
            page.body
                .contains("is level low, and substantial is needed"),
            "{}",
            page.body
        );
        // Nor an authentication older than the portal accepts.
        let old = Browser::new("en");
        let max_age = office.service.state.settings.portal.max_auth_age_secs;
        let page = old
            .sign_in(
                &base,
                "/portal",
                "rccs-a",
                LOA_HIGH,
                u32::try_from(max_age).unwrap() + 120,
            )
            .await;
        page.assert_problem(401, "unauthenticated");
        assert!(page.body.contains("not recent"), "{}", page.body);
        assert_eq!(db.count("portal_sessions").await, 0);

        // An attacker's own provider answer, sent to a victim's browser:
        // the victim's browser has no sign-in under way, so nothing happens.
        let attacker = Browser::new("en");
        let start = attacker
            .visit("GET", &format!("{base}/portal/sign-in/test-id"), None)
            .await;
        assert_eq!(start.status, 200, "the provider's login page");
        let victim = Browser::new("en");
        let page = victim
            .get(&format!(
                "{base}/portal/callback?code=stolen&state=whatever"
            ))
            .await;
        page.assert_problem(400, "bad-request");
        // And a state that is not the one this browser's sign-in sent.
        let page = attacker
            .get(&format!(
                "{base}/portal/callback?code=stolen&state=whatever"
            ))
            .await;
        page.assert_problem(400, "bad-request");
        assert_eq!(
            db.count("portal_sign_ins").await,
            0,
            "taken, even when refused"
        );

        // High is recorded as high; a second sign-in (the provider's own
        // session answering at once) replaces the session.
        let browser = Browser::new("en");
        let home = browser
            .sign_in(&base, "/portal", "rccs-a", LOA_HIGH, 0)
            .await;
        assert!(
            home.body
                .contains("Level of assurance of your sign-in: high."),
            "{}",
            home.body
        );
        let first = browser.cookie(SESSION).unwrap();
        let again = browser
            .sign_in(&base, "/portal", "rccs-a", LOA_HIGH, 0)
            .await;
        assert_eq!(again.url, format!("{base}/portal"));
        let second = browser.cookie(SESSION).unwrap();
        assert_ne!(first, second, "a new id at each sign-in");
        let rows = db
            .text_rows("SELECT id_sha256, assurance FROM portal_sessions", vec![])
            .await;
        assert_eq!(
            rows,
            vec![vec![
                hex::encode(Sha256::digest(second.as_bytes())),
                "high".to_owned()
            ]]
        );
    });
}

#[test]
fn every_guarded_page_sends_strangers_to_sign_in_and_refuses_the_wrong_roles() {
    let Some(softhsm) = support::hsm::isolated(
        "every_guarded_page_sends_strangers_to_sign_in_and_refuses_the_wrong_roles",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        use sceau::api::route_table::Access;
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let id = applied(&office).await;
        let routes = sceau::portal::route_access();
        let guarded: Vec<_> = routes
            .iter()
            .filter(|(_, _, access)| matches!(access, Access::Requires(_)))
            .collect();
        assert!(guarded.len() >= 4, "{routes:?}");
        let stranger = Browser::new("en");
        // The auditor: the routes his roles do not open are refused.
        let auditor = Browser::new("en");
        auditor
            .sign_in(&base, "/portal", "auditor", LOA_SUBSTANTIAL, 0)
            .await;
        let principal = office
            .service
            .state
            .oidc
            .signed_in_person(&sceau::auth::oidc::SignedInPerson {
                issuer: office.idp.issuer.clone(),
                subject: "auditor".to_owned(),
                acr: Some(LOA_SUBSTANTIAL.to_owned()),
                amr: vec!["pwd".to_owned(), "otp".to_owned()],
                claims: [("sceau_roles".to_owned(), serde_json::json!(["auditor"]))].into(),
                assurance: sceau::config::Assurance::Substantial,
            })
            .await
            .unwrap();
        let mut refused = 0;
        for (method, path, access) in guarded {
            let Access::Requires(permission) = access else {
                unreachable!()
            };
            let url = format!("{base}{}", path.replace("{id}", &id));
            let form = (method == "POST").then(Vec::new);
            let page = stranger.visit(method, &url, form.as_deref()).await;
            assert!(
                page.url
                    .starts_with(&format!("{base}/portal?sign_in=needed&next=/portal")),
                "{method} {path}: {}",
                page.url
            );
            if sceau::auth::principal::authorize(&principal, *permission, None).is_err() {
                let page = auditor.visit(method, &url, form.as_deref()).await;
                page.assert_problem(403, "forbidden");
                refused += 1;
            }
        }
        // Every person holds the applicant role, so the request pages open
        // to any signed-in person (the registry then shows only his own);
        // the evidence is the RA operators' only.
        assert_eq!(refused, 1);
        let page = auditor.get(&format!("{base}/portal/requests/{id}")).await;
        page.assert_problem(404, "not-found");
    });
}

/// A policy that needs a sign-in of level high: a substantial session's
/// form leads to the provider again (prompt=login), nothing is done; signed
/// in at high, under a new session id, the same form goes through.
#[test]
fn a_policy_that_needs_level_high_asks_for_a_step_up() {
    let Some(softhsm) = support::hsm::isolated("a_policy_that_needs_level_high_asks_for_a_step_up")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let policies = tempfile::tempdir().unwrap();
        let high = support::ca::edit(
            &support::ca::shipped_policy("seal-ca-managed"),
            "sign_in_level = \"substantial\"",
            "sign_in_level = \"high\"",
        );
        let certificates = support::ca::policies_dir(policies.path(), &[("seal-ca-managed", high)]);
        let dir = certificates.clone();
        let office = back_office::start_with_portal(&softhsm, &db, move |settings| {
            settings.ca.policies_dir = dir;
        })
        .await;
        let base = base(&office);
        let id = applied(&office).await;
        let browser = Browser::new("en");
        let page = browser
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "rccs-a",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("id=\"step-up\""), "{}", page.body);
        let substantial = browser.cookie(SESSION).unwrap();

        let before = office.service.state.journal.size().await.unwrap();
        let path = format!("/portal/requests/{id}/terms");
        let asked = browser
            .submit(&page, &base, &path, &[("accept", "yes")])
            .await;
        assert!(
            asked.body.contains("Test identity provider"),
            "the provider asks again: {}",
            asked.url
        );
        assert!(
            asked
                .body
                .contains("<option value=\"urn:sceau:test:loa:high\" selected>"),
            "{}",
            asked.body
        );
        assert_eq!(journal_kinds_since(&office.service, before).await, vec![]);

        // Signed in at high on the provider's page: back on the request.
        let action = {
            let start = asked.body.find("action=\"").unwrap() + 8;
            asked.body[start..].split('"').next().unwrap().to_owned()
        };
        let target = reqwest::Url::parse(&asked.url)
            .unwrap()
            .join(&action)
            .unwrap();
        let fields: Vec<(String, String)> = [("login", "rccs-a"), ("acr", LOA_HIGH), ("age", "0")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let back = browser.visit("POST", target.as_str(), Some(&fields)).await;
        assert_eq!(back.url, format!("{base}/portal/requests/{id}"));
        assert!(!back.body.contains("id=\"step-up\""), "{}", back.body);
        let high = browser.cookie(SESSION).unwrap();
        assert_ne!(high, substantial, "a new session id at the step-up");
        let rows = db
            .text_rows("SELECT id_sha256, assurance FROM portal_sessions", vec![])
            .await;
        assert_eq!(
            rows,
            vec![vec![
                hex::encode(Sha256::digest(high.as_bytes())),
                "high".to_owned()
            ]]
        );
        let accepted = browser
            .submit(&back, &base, &path, &[("accept", "yes")])
            .await;
        assert_eq!(
            accepted.url,
            format!("{base}/portal/requests/{id}?done=terms")
        );
        let entries = journal_kinds_since(&office.service, before).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].0, "terms.accepted");
    });
}

/// The RA's side: the queue filtered, the dossier with its evidence to
/// download, the review started, and four eyes: one operator's approval is
/// shown with his name and what is still needed, his second is refused, and
/// another operator's validates the request, which is issued.
#[test]
fn two_operators_review_and_approve_in_the_portal() {
    let Some(softhsm) = support::hsm::isolated("two_operators_review_and_approve_in_the_portal")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        let id = office.submitted("rccs-a", SIREN_A).await;
        let draft = applied_b(&office).await;

        let op1 = Browser::new("en");
        let queue = op1
            .sign_in(
                &base,
                "/portal/requests?state=submitted",
                "op-1",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        assert_eq!(queue.status, 200, "{}", queue.body);
        assert!(
            queue.body.contains(&format!("/portal/requests/{id}\"")),
            "{}",
            queue.body
        );
        assert!(!queue.body.contains(&draft), "a draft is not submitted");
        let drafts = op1
            .get(&format!("{base}/portal/requests?state=draft"))
            .await;
        assert!(drafts.body.contains(&draft) && !drafts.body.contains(&id));
        let other_policy = op1
            .get(&format!("{base}/portal/requests?policy=seal-entity"))
            .await;
        assert!(
            other_policy
                .body
                .contains("No request matches these filters.")
        );
        let old = op1
            .get(&format!("{base}/portal/requests?min_age_days=3"))
            .await;
        assert!(old.body.contains("No request matches these filters."));
        op1.get(&format!("{base}/portal/requests?min_age_days=three"))
            .await
            .assert_problem(400, "bad-request");

        // The dossier: the documents to download, as the API sends them.
        let page = op1.get(&format!("{base}/portal/requests/{id}")).await;
        let link_start = page
            .body
            .find(&format!("/portal/requests/{id}/documents/"))
            .unwrap();
        let link = page.body[link_start..]
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let before = office.service.state.journal.size().await.unwrap();
        let document = op1.get(&format!("{base}{link}")).await;
        assert_eq!(document.status, 200);
        assert_eq!(document.headers["cache-control"], "no-store");
        assert_eq!(document.headers["x-content-type-options"], "nosniff");
        assert!(
            document.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=")
        );
        let entries = journal_kinds_since(&office.service, before).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].0, "evidence.read");
        // The RCCS sees his documents listed, without links.
        let rccs = Browser::new("en");
        let own = rccs
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "rccs-a",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        assert!(own.body.contains("identity document"));
        assert!(!own.body.contains("/documents/"), "{}", own.body);

        // Review, then the first approval: named, one of two.
        let moves = format!("/portal/requests/{id}/moves");
        let reviewing = op1.submit(&page, &base, &moves, &[]).await;
        assert!(
            reviewing
                .body
                .contains("<dd id=\"state\">Under review</dd>"),
            "{}",
            reviewing.body
        );
        let approve_form = |page: &Page| -> Vec<(String, String)> {
            let start = page.body.find("value=\"approve\"").unwrap();
            let form_start = page.body[..start].rfind("<form").unwrap();
            let form = &page.body[form_start..];
            let csrf_start = form.find("name=\"csrf\" value=\"").unwrap() + 19;
            let csrf = form[csrf_start..].split('"').next().unwrap().to_owned();
            vec![
                ("csrf".to_owned(), csrf),
                ("move".to_owned(), "approve".to_owned()),
            ]
        };
        let fields = approve_form(&reviewing);
        let approved = op1
            .visit("POST", &format!("{base}{moves}"), Some(&fields))
            .await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        assert!(
            approved
                .body
                .contains("<p id=\"approvals-needed\">1 given / 2</p>"),
            "{}",
            approved.body
        );
        let op1_id = format!("oidc:{}#op-1", office.idp.issuer);
        assert!(
            approved.body.contains(&format!("Approved by {op1_id}")),
            "{}",
            approved.body
        );
        // The same operator again: refused, the count unchanged.
        let again = op1
            .visit("POST", &format!("{base}{moves}"), Some(&fields))
            .await;
        again.assert_problem(409, "conflict");
        let (_, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None)
            .await;
        assert_eq!(view["approvals"].as_array().unwrap().len(), 1, "{view}");

        // Another operator's approval validates it; the CA issues at once.
        let op2 = Browser::new("en");
        let page = op2
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "op-2",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        let fields = approve_form(&page);
        let issued = op2
            .visit("POST", &format!("{base}{moves}"), Some(&fields))
            .await;
        assert_eq!(issued.status, 200, "{}", issued.body);
        assert!(
            issued
                .body
                .contains("<dd id=\"state\">Certificate issued</dd>"),
            "{}",
            issued.body
        );
        let (_, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "op-1", None)
            .await;
        assert_eq!(view["state"], "issued", "{view}");
        assert_eq!(view["approvals"].as_array().unwrap().len(), 2, "{view}");
    });
}

/// rccs-b's draft for organisation B.
async fn applied_b(office: &BackOffice) -> String {
    let (status, view) = office.apply("rccs-b", SIREN_B, None).await;
    assert_eq!(status, 201, "{view}");
    view["id"].as_str().unwrap().to_owned()
}

/// `make run`'s portal: the development instance's own identity provider
/// (`/dev-idp`) signs the demo's people in with one click, through the same
/// checks as any provider (code, PKCE, nonce, acr, auth_time).
#[test]
fn the_development_provider_signs_the_demo_staff_in() {
    let Some(softhsm) = support::hsm::isolated("the_development_provider_signs_the_demo_staff_in")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = support::service::settings(&softhsm, &db, dir.path(), None);
        let base = format!("http://127.0.0.1:{port}");
        settings.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        settings.server.public_url = base.clone();
        settings.portal.dev_provider = true;
        let service = Service::start(settings, support::service::clock_now()).await;

        let browser = Browser::new("fr");
        let home = browser.get(&format!("{base}/portal")).await;
        assert!(home.body.contains("Se connecter avec dev"), "{}", home.body);
        let login = browser
            .get(&format!("{base}/portal/sign-in/dev?next=/portal"))
            .await;
        assert_eq!(login.status, 200, "{}", login.body);
        assert!(login.body.contains("Development identity provider"));
        let mut fields = login.form("/dev-idp/authorize");
        fields.retain(|(name, _)| name != "person" && name != "level");
        fields.push(("person".to_owned(), "demo-operator-1".to_owned()));
        fields.push(("level".to_owned(), "high".to_owned()));
        let signed_in = browser
            .visit("POST", &format!("{base}/dev-idp/authorize"), Some(&fields))
            .await;
        assert_eq!(signed_in.url, format!("{base}/portal"));
        assert!(
            signed_in
                .body
                .contains("Connecté : Dominique Demo (RA operator 1)"),
            "{}",
            signed_in.body
        );
        assert!(
            signed_in
                .body
                .contains("<li>Opérateur d&#39;enregistrement</li>"),
            "{}",
            signed_in.body
        );
        assert!(
            signed_in
                .body
                .contains("Niveau de garantie de votre connexion : élevé.")
        );
        let rows = db
            .text_rows("SELECT assurance FROM portal_sessions", vec![])
            .await;
        assert_eq!(rows, vec![vec!["high".to_owned()]]);
        service.stop().await;
    });
}

/// The order in seven steps, as a person fills it in: a SIRET whose check
/// digits fail keeps him on its step, saying so; a SIREN the RA knows fills
/// the company in; back keeps what was typed; the summary records the
/// request through the registry, and the tracker opens on it.
#[test]
fn an_order_in_seven_steps_records_a_request() {
    let Some(softhsm) = support::hsm::isolated("an_order_in_seven_steps_records_a_request") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |_| {}).await;
        let base = base(&office);
        // Organisation A is known to the RA (someone applied for it).
        applied(&office).await;
        let browser = Browser::new("fr");
        let step1 = browser
            .sign_in(&base, "/portal/order", "rccs-b", LOA_SUBSTANTIAL, 0)
            .await;
        assert_eq!(step1.url, format!("{base}/portal/order"));
        assert!(
            step1
                .body
                .contains("aria-current=\"step\" class=\"current\">Produit</li>"),
            "{}",
            step1.body
        );
        let next = |page: &Page, fields: &[(&str, &str)]| {
            let mut all = page.form("/portal/order");
            all.retain(|(name, _)| !fields.iter().any(|(f, _)| f == name));
            all.extend(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            all.push(("go".to_owned(), "next".to_owned()));
            all
        };
        let post = |fields: Vec<(String, String)>| {
            let url = format!("{base}/portal/order");
            let browser = &browser;
            async move { browser.visit("POST", &url, Some(&fields)).await }
        };
        let step2 = post(next(&step1, &[("policy", "seal-ca-managed")])).await;
        assert!(step2.body.contains("id=\"siret\""), "{}", step2.body);
        // A SIRET with a wrong check digit: still step 2, told why.
        let wrong = post(next(
            &step2,
            &[
                ("siret", "732 829 320 00008"),
                ("email", "rccs@alpha.example"),
                ("email_confirm", "rccs@alpha.example"),
            ],
        ))
        .await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.body.contains("id=\"siret\""));
        assert!(
            wrong.body.contains("fails its check digit"),
            "{}",
            wrong.body
        );
        let step3 = post(next(
            &wrong,
            &[
                ("siret", "732 829 320 00009"),
                ("email", "rccs@alpha.example"),
                ("email_confirm", "rccs@alpha.example"),
            ],
        ))
        .await;
        assert!(step3.body.contains("id=\"seal_name\""), "{}", step3.body);
        let step4 = post(next(
            &step3,
            &[("seal_name", "Alpha invoices"), ("validity_days", "")],
        ))
        .await;
        // Back and forth keeps the values.
        let mut back = step4.form("/portal/order");
        back.push(("legal_form".to_owned(), String::new()));
        back.push(("go".to_owned(), "back".to_owned()));
        let again3 = post(back).await;
        assert!(
            again3.body.contains("value=\"Alpha invoices\""),
            "{}",
            again3.body
        );
        let step4 = post(next(&again3, &[])).await;
        let step5 = post(next(&step4, &[("legal_form", "SA")])).await;
        assert!(
            step5.body.contains("l&#39;entreprise est pré-remplie"),
            "{}",
            step5.body
        );
        assert!(
            step5.body.contains("value=\"Alpha Factures SA\""),
            "{}",
            step5.body
        );
        let step6 = post(next(&step5, &[])).await;
        let step7 = post(next(
            &step6,
            &[
                ("rccs_given_name", "Bertrand"),
                ("rccs_family_name", "Rccs"),
                ("legal_given_name", "Louise"),
                ("legal_family_name", "Legal"),
                ("legal_email", "legal@alpha.example"),
            ],
        ))
        .await;
        assert!(
            step7.body.contains("name=\"identity_method\""),
            "{}",
            step7.body
        );
        let summary = post(next(&step7, &[("identity_method", "face_to_face")])).await;
        assert!(summary.body.contains("id=\"summary\""), "{}", summary.body);
        assert!(
            summary.body.contains("<dd>73282932000009</dd>")
                || summary.body.contains("<dd>732 829 320 00009</dd>")
        );
        let before = office.service.state.journal.size().await.unwrap();
        let recorded = post(next(&summary, &[])).await;
        assert_eq!(recorded.status, 200, "{}", recorded.body);
        assert!(recorded.url.contains("?done=order"), "{}", recorded.url);
        assert!(recorded.body.contains("<dd id=\"state\">Brouillon</dd>"));
        let id = recorded
            .url
            .split("/portal/requests/")
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let (status, view) = office
            .call("GET", &format!("/ra/v1/requests/{id}"), "rccs-b", None)
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["seal_name"], "Alpha invoices");
        assert_eq!(view["entity"]["siret"], "73282932000009");
        assert_eq!(view["persons"]["rccs"]["email"], "rccs@alpha.example");
        assert_eq!(
            view["persons"]["legal_representative"]["email"],
            "legal@alpha.example"
        );
        let entries = journal_kinds_since(&office.service, before).await;
        assert_eq!(entries[0].0, "request.created", "{entries:?}");
    });
}

/// Evidence from the browser's file input: the session's token before the
/// file, recognised by content, too large refused before the registry sees
/// it, and nothing recorded when refused.
#[test]
fn evidence_is_added_from_a_file_input() {
    let Some(softhsm) = support::hsm::isolated("evidence_is_added_from_a_file_input") else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let office = back_office::start_with_portal(&softhsm, &db, |settings| {
            settings.ra.max_document_bytes = 4096;
        })
        .await;
        let base = base(&office);
        let id = applied(&office).await;
        let browser = Browser::new("en");
        let page = browser
            .sign_in(
                &base,
                &format!("/portal/requests/{id}"),
                "rccs-a",
                LOA_SUBSTANTIAL,
                0,
            )
            .await;
        let action = format!("/portal/requests/{id}/documents");
        assert!(
            page.body.contains("enctype=\"multipart/form-data\""),
            "{}",
            page.body
        );
        let csrf = page
            .form(&action)
            .into_iter()
            .find(|(k, _)| k == "csrf")
            .unwrap()
            .1;
        let texts = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("kind".to_owned(), "identity_document".to_owned()),
        ];
        let url = format!("{base}{action}");
        let before = office.service.state.journal.size().await.unwrap();

        // The file before the token: refused, nothing read.
        let refused = browser
            .upload(&url, &texts, ("file", "id.jpg", back_office::jpeg()), true)
            .await;
        refused.assert_problem(403, "forbidden");
        // Larger than ra.max_document_bytes.
        let refused = browser
            .upload(&url, &texts, ("file", "big.pdf", vec![b'%'; 5000]), false)
            .await;
        refused.assert_problem(413, "payload-too-large");
        assert!(refused.body.contains("larger than"), "{}", refused.body);
        // Not a PDF, JPEG or PNG, whatever its name says.
        let refused = browser
            .upload(&url, &texts, ("file", "id.pdf", b"hello".to_vec()), false)
            .await;
        refused.assert_problem(422, "unprocessable");
        assert_eq!(journal_kinds_since(&office.service, before).await, vec![]);

        let added = browser
            .upload(&url, &texts, ("file", "id.jpg", back_office::jpeg()), false)
            .await;
        assert_eq!(added.status, 200, "{}", added.body);
        assert_eq!(
            added.url,
            format!("{base}/portal/requests/{id}?done=upload")
        );
        assert!(added.body.contains("The document is added to the file."));
        assert!(
            added.body.contains("identity document, image/jpeg"),
            "{}",
            added.body
        );
        let entries = journal_kinds_since(&office.service, before).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].0, "evidence.received");
        assert_eq!(entries[0].1["kind"], "identity_document");
    });
}
