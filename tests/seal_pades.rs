//! PAdES seals over mutual TLS, on a PDF the test makes with reportlab: pyHanko
//! (our root the only anchor, no fetching) finds each seal intact, valid,
//! trusted and covering its whole revision, pdfsig finds it valid, qpdf finds
//! the file sound; B-T carries a valid signature time-stamp; a sealed file gets
//! a second seal and the first stays valid; non-PDFs, truncated and encrypted
//! files are refused with 422 naming the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::pades::{Sealing, assert_sound, python, run, script};

#[test]
fn pades_seals_pass_pyhanko_pdfsig_and_qpdf_and_bad_pdfs_get_422() {
    let Some(softhsm) =
        support::hsm::isolated("pades_seals_pass_pyhanko_pdfsig_and_qpdf_and_bad_pdfs_get_422")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let sealing = Sealing::start(&softhsm, &db).await;
        let work = sealing.work.clone();
        let invoice = work.join("invoice.pdf");
        let (ok, out) = run(
            &python(),
            &[&script("make_invoice.py"), invoice.to_str().unwrap()],
        );
        assert!(ok, "reportlab: {out}");
        let original = std::fs::read(&invoice).unwrap();

        // B-B: the original bytes kept, one seal covering its whole revision.
        let (status, sealed) = sealing
            .seal(
                "level=B-B&reason=Facture%20conforme&location=Paris",
                original.clone(),
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&sealed));
        assert!(sealed.starts_with(&original), "an incremental update");
        let verdicts = sealing.validate(&sealed);
        assert_eq!(verdicts.len(), 1);
        assert_sound(&verdicts[0]);
        assert_eq!(verdicts[0]["coverage"], "ENTIRE_FILE", "{}", verdicts[0]);
        assert_eq!(verdicts[0]["has_timestamp"], false);
        // pdfsig (without certificate checks: it has no trust store of ours).
        let file = work.join("bb.pdf");
        std::fs::write(&file, &sealed).unwrap();
        let (_, out) = run("pdfsig", &["-nocert", file.to_str().unwrap()]);
        assert!(out.contains("Signature is Valid"), "{out}");
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");

        // B-T on top of it: a second seal; the first stays valid.
        let (status, twice) = sealing.seal("level=B-T&field=Second", sealed.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&twice));
        let verdicts = sealing.validate(&twice);
        assert_eq!(verdicts.len(), 2, "{verdicts:?}");
        for verdict in &verdicts {
            assert_sound(verdict);
        }
        let second = verdicts.iter().find(|v| v["field"] == "Second").unwrap();
        assert_eq!(second["coverage"], "ENTIRE_FILE");
        assert_eq!(second["has_timestamp"], true);
        assert_eq!(second["timestamp_valid"], true, "{second}");
        let first = verdicts.iter().find(|v| v["field"] != "Second").unwrap();
        assert_eq!(first["coverage"], "ENTIRE_REVISION", "{first}");
        let file = work.join("bt.pdf");
        std::fs::write(&file, &twice).unwrap();
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");

        // B-LT: the DSS lets pyHanko validate chain and revocation with
        // fetching disabled.
        let (status, lt) = sealing.seal("level=B-LT", original.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&lt));
        assert!(lt.windows(4).any(|w| w == b"/DSS"));
        let verdicts = sealing.validate_as(&lt, Some("--lt"));
        assert_eq!(verdicts.len(), 1, "{verdicts:?}");
        assert_sound(&verdicts[0]);
        assert_eq!(verdicts[0]["has_timestamp"], true);
        assert_eq!(verdicts[0]["dss_bottom_line"], true, "{}", verdicts[0]);
        let file = work.join("blt.pdf");
        std::fs::write(&file, &lt).unwrap();
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");

        // B-LTA: a document time-stamp over everything, the DSS included.
        let (status, lta) = sealing.seal("level=B-LTA", original.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&lta));
        let verdicts = sealing.validate_as(&lta, Some("--lta"));
        assert_eq!(verdicts.len(), 2, "{verdicts:?}");
        let stamp = verdicts
            .iter()
            .find(|v| v["document_time_stamp"] == true)
            .expect("a document time-stamp");
        assert_eq!(stamp["sub_filter"], "/ETSI.RFC3161");
        for key in ["intact", "valid", "trusted"] {
            assert_eq!(stamp[key], true, "{key}: {stamp}");
        }
        assert_eq!(stamp["coverage"], "ENTIRE_FILE");
        let seal_verdict = verdicts
            .iter()
            .find(|v| v["document_time_stamp"] != true)
            .unwrap();
        assert_sound(seal_verdict);
        assert_eq!(seal_verdict["dss_bottom_line"], true, "{seal_verdict}");
        assert_eq!(seal_verdict["ades_lta"], "AdESPassed.OK", "{seal_verdict}");
        let file = work.join("blta.pdf");
        std::fs::write(&file, &lta).unwrap();
        let (ok, out) = run("qpdf", &["--check", file.to_str().unwrap()]);
        assert!(ok, "qpdf: {out}");
        let (_, out) = run("pdfsig", &["-nocert", file.to_str().unwrap()]);
        assert!(out.contains("Signature is Valid"), "{out}");

        // Refused with 422 naming the reason: not a PDF, truncated, encrypted.
        let encrypted = work.join("encrypted.pdf");
        let (ok, out) = run(
            "qpdf",
            &[
                "--encrypt",
                "user",
                "owner",
                "256",
                "--",
                invoice.to_str().unwrap(),
                encrypted.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        for (name, body, words) in [
            ("not a PDF", b"hello, world".to_vec(), "not a PDF"),
            (
                "truncated",
                original[..original.len() / 2].to_vec(),
                "cannot be read",
            ),
            ("encrypted", std::fs::read(&encrypted).unwrap(), "encrypted"),
        ] {
            let (status, body) = sealing.seal("level=B-B", body).await;
            assert_eq!(status, 422, "{name}: {}", String::from_utf8_lossy(&body));
            let problem: Value = serde_json::from_slice(&body).unwrap();
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(words), "{name}: {detail}");
            assert_eq!(problem["field"], "document");
        }
        sealing.service.stop().await;
    });
}
