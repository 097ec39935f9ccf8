//! The unauthenticated endpoints that cost the service work, `/ocsp` and
//! `/tsa`, stop reading a body at their own small limit: a client that
//! announces megabytes and sends them slowly gets its refusal at once, not
//! once the service has buffered up to the general body limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use der::Decode;
use support::service::{self, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Announces a body of 48 MiB, sends 64 KiB of it and then nothing more: the
/// status line and the whole answer, read within ten seconds, or `None`.
async fn announce_much_send_little(port: u16, path: &str, media_type: &str) -> Option<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {media_type}\r\n\
         Content-Length: {}\r\n\r\n",
        48 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![0x30; 64 * 1024]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
            if complete(&answer) {
                break;
            }
        }
    })
    .await;
    read.ok().map(|()| answer)
}

/// Whether `answer` holds a head and the whole body its Content-Length names.
fn complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    answer.len() >= end + 4 + length
}

fn body(answer: &[u8]) -> &[u8] {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &answer[end + 4..]
}

#[test]
fn ocsp_and_tsa_refuse_an_oversized_body_while_reading_it() {
    let Some(softhsm) =
        support::hsm::isolated("ocsp_and_tsa_refuse_an_oversized_body_while_reading_it")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = service::settings(&softhsm, &db, dir.path(), None);
        settings.server.body_limit_bytes = 64 * 1024 * 1024;
        let service = Service::start(settings, service::clock_now()).await;

        let answer = announce_much_send_little(service.port, "/ocsp", "application/ocsp-request")
            .await
            .expect("the OCSP responder answers without waiting for the announced body");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        // OCSPResponse { responseStatus malformedRequest (1) }.
        assert_eq!(body(&answer), [0x30, 0x03, 0x0a, 0x01, 0x01]);

        let answer = announce_much_send_little(service.port, "/tsa", "application/timestamp-query")
            .await
            .expect("the TSA answers without waiting for the announced body");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let reply = x509_tsp::TimeStampResp::from_der(body(&answer)).unwrap();
        // PKIStatus rejection (2), and its statusString says why.
        assert_eq!(reply.status.status as u8, 2);
        assert!(reply.time_stamp_token.is_none());
        let said = String::from_utf8_lossy(body(&answer)).into_owned();
        assert!(said.contains("the request exceeds"), "{said}");
        service.stop().await;
    });
}

/// Each time-stamp costs an HSM signature: past the TSA's token bucket,
/// `POST /tsa` answers 429 with Retry-After, before reading the body, while
/// seals keep their own time-stamps.
#[test]
fn a_flood_of_time_stamp_requests_is_turned_away() {
    let Some(softhsm) = support::hsm::isolated("a_flood_of_time_stamp_requests_is_turned_away")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = service::settings(&softhsm, &db, dir.path(), None);
        settings.tsa.requests_per_second = 0;
        settings.tsa.burst = 3;
        let service = Service::start(settings, service::clock_now()).await;
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        let mut refused = None;
        for _ in 0..5 {
            let response = client
                .post(service.url("/tsa"))
                .header("content-type", "application/timestamp-query")
                .body(b"not a request".to_vec())
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
            if response.status().as_u16() == 429 {
                let retry = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                refused = Some((retry, response.json::<serde_json::Value>().await.unwrap()));
            }
        }
        // The burst is answered (rejections inside 200 replies), then refused.
        assert_eq!(statuses, [200, 200, 200, 429, 429]);
        let (retry, problem) = refused.unwrap();
        assert_eq!(retry, "1");
        assert_eq!(problem["type"], "urn:sceau:problem:too-many-requests");
        // The seals' own time-stamps do not go through the HTTP bucket.
        let stamp = service
            .state
            .tsa
            .stamp_with_nonce(sceau::crypto::DigestAlgorithm::Sha256, &[7u8; 32], None)
            .await
            .unwrap();
        assert!(!stamp.token.is_empty());
        service.stop().await;
    });
}
