//! Two `sceau serve` processes of one deployment (same tokens, same
//! PostgreSQL database), as a load balancer would spread a client's calls: a
//! SAD sent to both at once is spent by exactly one, a hundred times over;
//! and a client certificate revoked through one is refused by the other on
//! a connection that was already open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use der::DecodePem as _;
use serde_json::{Value, json};
use support::app::{Instance, Options, Twin};
use support::idp::{AUDIENCE, Client, TestIdp};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo organisation's server: its client certificate, trusting the
/// instance's TLS certificate; one connection per host kept alive.
fn demo_client(demo: &Value) -> reqwest::Client {
    let text = |key: &str| demo[key].as_str().unwrap().to_owned();
    let mut identity = std::fs::read(text("client_cert_pem")).unwrap();
    identity.extend(std::fs::read(text("client_key_pem")).unwrap());
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(text("server_ca_pem")).unwrap()).unwrap(),
        )
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .pool_max_idle_per_host(1)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Two `sceau serve` of one deployment on `db`: the first with its
/// mutual-TLS listener on `tls_ports.0`, its twin on `tls_ports.1`, `extra`
/// added to their configuration; and the demo organisation's `demo.json`.
fn two_instances(
    db: &support::db::TestDb,
    tls_ports: (u16, u16),
    extra: &str,
) -> (Instance, Twin, Value) {
    let (port_a, port_b) = tls_ports;
    let mut instance = Instance::new(
        db,
        Options {
            dev_auto_init: true,
            extra: format!(
                "[server.tls]\nlisten = \"127.0.0.1:{port_a}\"\n\
                 certificate_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\n\
                 client_ca_files = []\nclient_crl_files = []\n{extra}"
            ),
            ..Options::default()
        },
    );
    instance.serve();
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(instance.var().join("demo/demo.json")).unwrap(),
    )
    .unwrap();
    let twin =
        instance.serve_twin(&[("SCEAU_SERVER__TLS__LISTEN", &format!("127.0.0.1:{port_b}"))]);
    (instance, twin, demo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_raced_between_two_instances_is_spent_once() {
    let Some(db) = support::db::postgres().await else {
        return;
    };
    let (port_a, port_b) = (free_port(), free_port());
    // Every lost race is a refused SAD the demo server counts.
    let (instance, twin, demo) = two_instances(
        &db,
        (port_a, port_b),
        "[auth]\nmax_failed_activations = 1000\n",
    );
    assert_ne!(twin.port, instance.port.unwrap());

    let text = |key: &str| demo[key].as_str().unwrap().to_owned();
    let client = demo_client(&demo);
    let credential = text("credential_id");
    let authorize = format!("https://127.0.0.1:{port_a}/api/v1/credentials/{credential}/authorize");
    let seal = |port: u16, sad: String| {
        let client = client.clone();
        let url = format!(
            "https://127.0.0.1:{port}/api/v1/seal/cades?credential={credential}&level=B-B&packaging=detached"
        );
        async move {
            let response = client
                .post(url)
                .header("x-sad", sad)
                .body(b"an invoice".to_vec())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let mut wins = [0u32; 2];
    for round in 0..100 {
        let response = client
            .post(&authorize)
            .json(&json!({ "num_signatures": 1 }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "round {round}");
        let sad = response.json::<Value>().await.unwrap()["sad"]
            .as_str()
            .unwrap()
            .to_owned();
        let (a, b) = tokio::join!(seal(port_a, sad.clone()), seal(port_b, sad));
        let (won, lost) = match (a.0, b.0) {
            (200, _) => {
                wins[0] += 1;
                (a, b)
            }
            (_, 200) => {
                wins[1] += 1;
                (b, a)
            }
            _ => panic!("round {round}: nobody won: {a:?} / {b:?}"),
        };
        assert_eq!(won.0, 200);
        assert_eq!(lost.0, 403, "round {round}: {lost:?}");
        assert_eq!(lost.1["type"], "urn:sceau:problem:forbidden");
        assert_eq!(
            lost.1["detail"], "the SAD was refused: every signature it allowed was made",
            "round {round}"
        );
    }
    assert_eq!(wins[0] + wins[1], 100);
    eprintln!("wins: first instance {}, second {}", wins[0], wins[1]);
    drop(twin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_revoked_on_one_instance_is_refused_on_the_other() {
    let Some(db) = support::db::postgres().await else {
        return;
    };
    // The RA operator who revokes signs in with the back office's provider.
    let idp = TestIdp::start(
        &[Client {
            id: "op-1",
            certificate_bound: false,
            claims: support::back_office::otp(&["ra_operator"]),
        }],
        None,
        "two-instances-key",
    );
    let port_b = free_port();
    let (instance, twin, demo) = two_instances(
        &db,
        (free_port(), port_b),
        &format!(
            "[[auth.identity_providers]]\nissuer = \"{issuer}\"\naudience = \"{AUDIENCE}\"\n\
             callers = \"people\"\nroles_claim = \"sceau_roles\"\nallowed = [\"op-1\"]\n\
             [[auth.staff]]\nid = \"00000000-0000-0000-0000-000000000001\"\n\
             given_name = \"Staff\"\nfamily_name = \"Operator\"\nbirth_date = \"1970-01-01\"\n\
             sign_ins = [{{ issuer = \"{issuer}\", subject = \"op-1\" }}]\n",
            issuer = idp.issuer
        ),
    );

    let text = |key: &str| demo[key].as_str().unwrap().to_owned();
    let certificate_pem = std::fs::read(text("client_cert_pem")).unwrap();
    let serial = hex::encode(
        x509_cert::Certificate::from_pem(&certificate_pem)
            .unwrap()
            .tbs_certificate
            .serial_number
            .as_bytes(),
    );
    // One connection to instance B, kept alive across the revocation.
    let client = demo_client(&demo);
    let credential = text("credential_id");
    let authorize = format!("https://127.0.0.1:{port_b}/api/v1/credentials/{credential}/authorize");
    let ask = || async {
        let response = client
            .post(&authorize)
            .json(&json!({ "num_signatures": 1 }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let (status, answer) = ask().await;
    assert_eq!(status, 200, "before the revocation: {answer}");

    // The revocation, through instance A.
    let token = idp.token("op-1", AUDIENCE, None).await;
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/ra/v1/certificates/{serial}/revocation",
            instance.port.unwrap()
        ))
        .bearer_auth(token)
        .json(&json!({ "reason": "key_compromise" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let revoked: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["serial"], serial.as_str());

    // Instance B refuses the next request on the connection it kept.
    let (status, problem) = ask().await;
    assert_eq!(status, 401, "after the revocation: {problem}");
    assert_eq!(problem["type"], "urn:sceau:problem:unauthenticated");
    assert_eq!(
        problem["detail"],
        "authentication required: this client certificate is not registered as an \
         activation credential"
    );
    drop(twin);
}
