//! Sealing a certified document (DocMDP) over mutual TLS, judged by pyHanko
//! with only the root: the certification stays valid after our seal, or the
//! seal is refused with a 409 that says which option works. A visible seal
//! in a new field after a certification (P=2 or P=3: pyHanko grants no new
//! visible field after one) is refused; an invisible seal, or a visible one
//! in an existing empty field, is sealed and the certification holds. P=1
//! stays refused (the corpus test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::pades::{Sealing, assert_sound, corpus};

const VISIBLE: &str = "&page=1&box=360,60,540,120";

#[test]
fn certified_documents_keep_their_certification_or_are_refused_with_the_way_out() {
    let Some(softhsm) = support::hsm::isolated(
        "certified_documents_keep_their_certification_or_are_refused_with_the_way_out",
    ) else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let sealing = Sealing::start(&softhsm, &db).await;
        let dir = sealing.work.join("corpus");
        corpus(&dir, false);

        // A visible seal in a new field after a certification: 409, naming
        // both ways out (pyHanko grants no new visible field after one).
        for (file, permission, fields) in [
            ("invoice-certified-p2.pdf", "P=2", "(it has none)"),
            ("invoice-certified-p3.pdf", "P=3", "(it has none)"),
            ("invoice-certified-p2-field.pdf", "P=2", "(it has SealHere)"),
        ] {
            let body = std::fs::read(dir.join(file)).unwrap();
            let (status, answer) = sealing.seal(&format!("level=B-B{VISIBLE}"), body).await;
            assert_eq!(status, 409, "{file}: {}", String::from_utf8_lossy(&answer));
            let problem: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(problem["type"], "urn:sceau:problem:conflict", "{file}");
            assert_eq!(problem["field"], "document", "{file}");
            let detail = problem["detail"].as_str().unwrap();
            for words in [
                &format!("DocMDP {permission}") as &str,
                "without a visible box",
                "empty signature fields with field=<name>",
                fields,
            ] {
                assert!(detail.contains(words), "{file}: {words:?} not in {detail}");
            }
        }

        // Everything else is sealed, and the certification holds.
        let cases = [
            ("invoice-certified-p2.pdf", ""),
            ("invoice-certified-p2-field.pdf", "&field=SealHere"),
            (
                "invoice-certified-p2-field.pdf",
                &format!("&field=SealHere{VISIBLE}"),
            ),
            ("invoice-certified-p3.pdf", ""),
            (
                "invoice-certified-p3-field.pdf",
                &format!("&field=SealHere{VISIBLE}"),
            ),
        ];
        for (file, options) in cases {
            let original = std::fs::read(dir.join(file)).unwrap();
            for level in ["B-B", "B-LTA"] {
                let case = format!("{file} {level}{options}");
                let (status, sealed) = sealing
                    .seal(&format!("level={level}{options}"), original.clone())
                    .await;
                assert_eq!(status, 200, "{case}: {}", String::from_utf8_lossy(&sealed));
                let mode = (level == "B-LTA").then_some("--lta");
                let verdicts = sealing.validate_as(&sealed, mode);
                let certifying = verdicts
                    .iter()
                    .find(|v| v["field"] == "OtherTool")
                    .unwrap_or_else(|| panic!("{case}: {verdicts:?}"));
                assert_eq!(certifying["intact"], true, "{case}: {certifying}");
                assert_eq!(certifying["valid"], true, "{case}: {certifying}");
                assert_eq!(
                    certifying["docmdp_ok"], true,
                    "{case}: the certification is broken: {certifying}"
                );
                let ours = verdicts
                    .iter()
                    .find(|v| v["trusted"] == true && v["document_time_stamp"] != true)
                    .unwrap_or_else(|| panic!("{case}: {verdicts:?}"));
                assert_sound(ours);
                if options.contains("field=SealHere") {
                    assert_eq!(ours["field"], "SealHere", "{case}");
                }
            }
        }
        sealing.service.stop().await;
    });
}
