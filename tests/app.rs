//! The service end to end, as the `sceau` binary, on SQLite and PostgreSQL:
//! readiness, the published CA certificates, problem+json errors, graceful
//! shutdown, the production ceremony flow and `audit verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use der::{Decode, DecodePem};
use support::app::{Instance, Options, stderr, stdout};
use support::db::{Arg, TestDb, on_both_backends};
use x509_cert::Certificate;

on_both_backends!(
    dev_instance_serves_readiness_certificates_and_problems,
    dev_instance_serves_readiness_certificates_and_problems_on_postgres,
    dev_instance
);

async fn dev_instance(db: TestDb) {
    let mut instance = Instance::new(
        &db,
        Options {
            dev_auto_init: true,
            body_limit_bytes: Some(1024),
            ..Options::default()
        },
    );
    instance
        .env
        .push(("SCEAU_LOG__FORMAT".to_owned(), "json".to_owned()));
    instance.serve();
    let client = reqwest::Client::new();

    let ready = client.get(instance.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        client
            .get(instance.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let der = client
        .get(instance.url("/certs/root.der"))
        .send()
        .await
        .unwrap();
    assert_eq!(der.status(), 200);
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    let der = der.bytes().await.unwrap();
    let pem = client
        .get(instance.url("/certs/root.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(pem.headers()["content-type"], "application/x-pem-file");
    let pem = pem.text().await.unwrap();
    let root = Certificate::from_der(&der).unwrap();
    assert_eq!(root, Certificate::from_pem(pem.as_bytes()).unwrap());
    assert!(root.tbs_certificate.subject.to_string().contains("Root CA"));
    for name in ["issuing", "ocsp", "tsa"] {
        let response = client
            .get(instance.url(&format!("/certs/{name}.der")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let certificate = Certificate::from_der(&response.bytes().await.unwrap()).unwrap();
        assert_ne!(
            certificate.tbs_certificate.subject,
            root.tbs_certificate.subject
        );
    }

    let missing = client
        .get(instance.url("/certs/nothing.der"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["type"], "urn:sceau:problem:not-found");

    let too_large = client
        .get(instance.url("/healthz"))
        .body(vec![b'x'; 4096])
        .header("x-request-id", "test-413")
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    assert_eq!(too_large.headers()["x-request-id"], "test-413");
    assert_eq!(
        too_large.headers()["content-type"],
        "application/problem+json"
    );

    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(instance.var().join("demo/demo.json")).unwrap())
            .unwrap();
    assert_eq!(demo["public_url"], "http://127.0.0.1");
    // The portal: named in demo.json, served on the plain listener.
    assert_eq!(demo["portal_url"], "http://127.0.0.1/portal");
    let portal = client.get(instance.url("/portal")).send().await.unwrap();
    assert_eq!(portal.status(), 200);
    assert_eq!(portal.headers()["content-type"], "text/html; charset=utf-8");
    assert!(portal.text().await.unwrap().contains("<html lang=\"fr\">"));
    let demo_root = std::fs::read(demo["root_pem"].as_str().unwrap()).unwrap();
    assert_eq!(Certificate::from_pem(&demo_root).unwrap(), root);

    // SIGTERM: a clean exit, after which the journal verifies.
    let status = instance.terminate();
    assert!(status.success(), "{status:?}");

    // Logs are JSON when configured, one object per line; the dev-mode start says so.
    let log = std::fs::read_to_string(instance.log_path()).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("development mode")),
        "{log}"
    );
    let verify = instance.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

on_both_backends!(
    production_ceremony_flow,
    production_ceremony_flow_on_postgres,
    production_flow
);

async fn production_flow(db: TestDb) {
    let mut instance = Instance::new(&db, Options::default());
    // Without a ceremony, serve refuses and says what to do.
    let refused = instance.run(&["serve"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("sceau ca init"),
        "{}",
        stderr(&refused)
    );

    let init = instance.run(&["ca", "init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert!(stdout(&init).contains("root token can now be taken offline"));
    let transcripts: Vec<_> = std::fs::read_dir(instance.var().join("ceremony"))
        .unwrap()
        .collect();
    assert_eq!(transcripts.len(), 1);

    // The root's first ARL, while its token is at hand.
    let arl = instance.run(&["ca", "arl"]);
    assert!(arl.status.success(), "{}", stderr(&arl));
    assert!(
        stdout(&arl).contains("ARL number 1 issued: 0 entries"),
        "{}",
        stdout(&arl)
    );

    let again = instance.run(&["ca", "init"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(stderr(&again).lines().count(), 1, "{}", stderr(&again));

    // Ending the issuing CA needs two administrators' approvals first: refused,
    // in one line that says so, and nothing is journaled.
    let terminate = instance.run(&["ca", "terminate"]);
    assert!(!terminate.status.success());
    assert!(
        stderr(&terminate).contains("approvals from 2 distinct CA administrators")
            && stderr(&terminate).contains("it has 0"),
        "{}",
        stderr(&terminate)
    );
    assert_eq!(
        stderr(&terminate).lines().count(),
        1,
        "{}",
        stderr(&terminate)
    );

    // After the ceremony the root's token can go offline: serving never opens it.
    // (Also shows SCEAU_* environment overrides: config check now names the token.)
    instance.env.push((
        "SCEAU_HSM__TOKENS__ROOT__TOKEN_LABEL".to_owned(),
        "offline-root".to_owned(),
    ));
    let check = instance.run(&["config", "check"]);
    assert!(!check.status.success());
    assert!(
        stderr(&check).contains("token 'offline-root' not found"),
        "{}",
        stderr(&check)
    );
    instance.serve();
    let client = reqwest::Client::new();
    let first_ocsp = bytes(&client, &instance.url("/certs/ocsp.der")).await;
    assert!(
        !bytes(&client, &instance.url("/crl/root.crl"))
            .await
            .is_empty()
    );
    assert!(instance.terminate().success());

    let renew = instance.run(&["ca", "renew-ocsp"]);
    assert!(renew.status.success(), "{}", stderr(&renew));
    instance.serve();
    let second_ocsp = bytes(&client, &instance.url("/certs/ocsp.der")).await;
    assert_ne!(first_ocsp, second_ocsp);
    assert!(instance.terminate().success());

    // The ceremony's transcript, the ARL, the first CRLs of the issuing and
    // client-auth CAs (published when serving starts) and the renewal are in the journal.
    let verify = instance.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("journal verifies: 5 entries"),
        "{}",
        stdout(&verify)
    );

    // A rewritten payload of an entry (the ARL's) is named by its index.
    db.execute(
        "UPDATE journal_entries SET payload = $1 WHERE seq = $2",
        vec![Arg::Blob(b"{\"kind\":\"forged\"}".to_vec()), Arg::Int(1)],
    )
    .await;
    let tampered = instance.run(&["audit", "verify"]);
    assert!(!tampered.status.success());
    assert!(
        stdout(&tampered).contains("entry 1"),
        "{}",
        stdout(&tampered)
    );
}

async fn bytes(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.unwrap().to_vec()
}
