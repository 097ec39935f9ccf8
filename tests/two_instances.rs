//! Two `sceau serve` processes of one deployment (same tokens, same
//! PostgreSQL database), as a load balancer would spread a client's calls: a
//! SAD sent to both at once is spent by exactly one, a hundred times over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::app::{Instance, Options};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_raced_between_two_instances_is_spent_once() {
    let Some(db) = support::db::postgres().await else {
        return;
    };
    let (port_a, port_b) = (free_port(), free_port());
    let mut instance = Instance::new(
        &db,
        Options {
            dev_auto_init: true,
            // Every lost race is a refused SAD the demo server counts.
            extra: format!(
                "[auth]\nmax_failed_activations = 1000\n\
                 [server.tls]\nlisten = \"127.0.0.1:{port_a}\"\n\
                 certificate_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\n\
                 client_ca_files = []\nclient_crl_files = []\n"
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
    assert_ne!(twin.port, instance.port.unwrap());

    let text = |key: &str| demo[key].as_str().unwrap().to_owned();
    let mut identity = std::fs::read(text("client_cert_pem")).unwrap();
    identity.extend(std::fs::read(text("client_key_pem")).unwrap());
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(text("server_ca_pem")).unwrap()).unwrap(),
        )
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
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
