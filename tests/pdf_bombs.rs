//! Small PDFs that declare far more than they hold, sent to the seal API
//! over mutual TLS as an attacker would: each is refused with a 422 problem
//! that names the excess, before the cost it declares is spent; the sound
//! control file of the same make is sealed. What each bomb costs in memory
//! and CPU is measured by `benches/seal_load.rs`, not here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::pades::Sealing;
use support::pdf_bombs;

#[test]
fn pdf_bombs_are_refused_before_their_cost_is_spent() {
    let Some(softhsm) = support::hsm::isolated("pdf_bombs_are_refused_before_their_cost_is_spent")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let sealing = Sealing::start(&softhsm, &db).await;
        let bombs: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "cross-reference row bomb",
                pdf_bombs::xref_row_bomb(pdf_bombs::BOMB_ROWS),
                "cross-reference sections list more than",
            ),
            (
                "cross-reference row bomb past the PDF limit",
                pdf_bombs::xref_row_bomb(pdf_bombs::REPRODUCED_BOMB_ROWS),
                "declares a /size of 20971536, beyond the 8388608 objects",
            ),
            (
                "object-stream bomb",
                pdf_bombs::object_stream_bomb(256 << 20),
                "the compressed object stream 4 inflates to more than",
            ),
            (
                "1000:1 cross-reference stream",
                pdf_bombs::deflate_ratio_bomb(256 << 20),
                "inflates to more than",
            ),
            (
                "huge /Size",
                pdf_bombs::huge_size_bomb(),
                "declares a /size of 2147483647, beyond the 8388608 objects a pdf may hold",
            ),
        ];
        for (name, body, words) in bombs {
            assert!(body.len() < 1 << 20, "{name}: {} bytes", body.len());
            let (status, answer) = sealing.seal("level=B-B", body).await;
            assert_eq!(status, 422, "{name}: {}", String::from_utf8_lossy(&answer));
            let problem: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(problem["type"], "urn:sceau:problem:unprocessable", "{name}");
            assert_eq!(problem["field"], "document", "{name}");
            let detail = problem["detail"].as_str().unwrap().to_lowercase();
            assert!(
                detail.contains("asks more than a file of its size may"),
                "{name}: {detail}"
            );
            assert!(detail.contains(&words.to_lowercase()), "{name}: {detail}");
        }

        // The control: the same make, sound, is sealed.
        let (status, answer) = sealing
            .seal("level=B-B", pdf_bombs::sound_file(20_000))
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        sealing.service.stop().await;
    });
}
