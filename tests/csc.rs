//! The CSC API over mutual TLS: a v2 round trip (info → credentials/list →
//! credentials/info → credentials/authorize at SCAL2 with 3 hashes →
//! signatures/signHash) whose signatures OpenSSL verifies with the
//! certificate's key, with the spent and unauthorised SADs refused; signDoc
//! PAdES (pyHanko) and CAdES (OpenSSL) at each level it advertises;
//! extendTransaction and timestamp; CSC's error form; and pyHanko's own CSC
//! client signing through /csc/v1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use der::{Decode, EncodePem};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::pades::{Sealing, assert_sound, python_result, register, run};
use x509_cert::Certificate;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("a base64 string"))
        .unwrap()
}

/// POSTs `body` to `/csc/{path}` on the mTLS listener: status and JSON body.
async fn csc(sealing: &Sealing, path: &str, body: Value) -> (u16, Value) {
    let response = sealing
        .client
        .post(sealing.service.tls_url(&format!("/csc/{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        content_type, "application/json",
        "CSC answers JSON, errors too"
    );
    let body: Value = response.json().await.unwrap();
    if status != 200 {
        assert!(body["error"].is_string(), "{body}");
        assert!(body["error_description"].is_string(), "{body}");
    }
    (status, body)
}

fn openssl(args: &[&str]) -> (bool, String) {
    run("openssl", args)
}

/// OpenSSL's verdict on a bare signature over `digest` with the key of
/// `certificate_b64`.
fn openssl_verifies(
    work: &std::path::Path,
    certificate_b64: &Value,
    digest: &[u8],
    signature: &[u8],
) -> bool {
    let der = unb64(certificate_b64);
    let pem = Certificate::from_der(&der)
        .unwrap()
        .to_pem(der::pem::LineEnding::LF)
        .unwrap();
    let cert = work.join("signer.pem");
    std::fs::write(&cert, pem).unwrap();
    let (ok, public) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-pubkey", "-noout"]);
    assert!(ok, "{public}");
    let key = work.join("signer.pub");
    std::fs::write(&key, public).unwrap();
    let (digest_file, signature_file) = (work.join("digest.bin"), work.join("signature.bin"));
    std::fs::write(&digest_file, digest).unwrap();
    std::fs::write(&signature_file, signature).unwrap();
    let (ok, out) = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        key.to_str().unwrap(),
        "-pkeyopt",
        "digest:sha256",
        "-in",
        digest_file.to_str().unwrap(),
        "-sigfile",
        signature_file.to_str().unwrap(),
    ]);
    ok && out.contains("Signature Verified Successfully")
}

/// A SCAL2 credential of the organisation, which alice may activate.
async fn scal2_credential(sealing: &Sealing) -> uuid::Uuid {
    let scal2 = sealing
        .service
        .active_credential(sealing.entity, "seal-remote-qscd")
        .await;
    register(&sealing.service, scal2, sealing.entity, &sealing.alice).await;
    scal2
}

#[test]
fn csc_v2_round_trip_at_scal2_and_its_refusals() {
    let Some(softhsm) = support::hsm::isolated("csc_v2_round_trip_at_scal2_and_its_refusals")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let sealing = Sealing::start(&softhsm, &db).await;
        let service = &sealing.service;
        let scal2 = scal2_credential(&sealing).await;
        // Another organisation's credential, which alice must never see.
        let other = service.entity("Beta SAS", "NTRFR-987654324").await;
        let foreign = service.active_credential(other, "seal-ca-managed").await;

        // info: public, and says what the Seal API really makes.
        let (status, info) = csc(&sealing, "v2/info", json!({})).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["specs"], "2.0.0.2");
        let auth_types: Vec<&str> = info["authType"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(auth_types.contains(&"TLS"), "{info}");
        assert_eq!(
            info["conformance_levels"],
            json!(["Ades-B-B", "Ades-B-T", "Ades-B-LT", "Ades-B-LTA"])
        );
        assert_eq!(info["signature_formats"]["formats"], json!(["C", "P"]));
        assert!(
            info["methods"]
                .as_array()
                .unwrap()
                .contains(&json!("signatures/signHash"))
        );

        // credentials/list: both of alice's, never the stranger's.
        let (status, list) = csc(
            &sealing,
            "v2/credentials/list",
            json!({"credentialInfo": true, "certificates": "single", "onlyValid": true}),
        )
        .await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<String> = list["credentialIDs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert!(ids.contains(&scal2.to_string()), "{list}");
        assert!(ids.contains(&sealing.credential.to_string()), "{list}");
        assert!(!ids.contains(&foreign.to_string()), "{list}");
        assert_eq!(list["credentialInfos"].as_array().unwrap().len(), ids.len());

        // credentials/info: SCAL2, the chain up to the root, implicit auth.
        let (status, details) = csc(
            &sealing,
            "v2/credentials/info",
            json!({"credentialID": scal2, "certificates": "chain", "certInfo": true, "authInfo": true}),
        )
        .await;
        assert_eq!(status, 200, "{details}");
        assert_eq!(details["SCAL"], "2");
        assert_eq!(details["key"]["status"], "enabled");
        assert_eq!(details["cert"]["status"], "valid");
        assert_eq!(details["cert"]["certificates"].as_array().unwrap().len(), 3);
        assert_eq!(details["auth"]["mode"], "implicit");
        assert!(details["multisign"].as_u64().unwrap() >= 3);
        for field in ["issuerDN", "subjectDN", "serialNumber", "validFrom", "validTo"] {
            assert!(details["cert"][field].is_string(), "{field}: {details}");
        }
        let sign_algo = details["key"]["algo"][0].as_str().unwrap().to_owned();
        let certificate = details["cert"]["certificates"][0].clone();
        // The stranger's credential reads as unknown.
        let (status, refused) = csc(
            &sealing,
            "v2/credentials/info",
            json!({"credentialID": foreign}),
        )
        .await;
        assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_request")));

        // authorize at SCAL2 for exactly three hashes, then sign them.
        let hashes: Vec<Vec<u8>> = (1..=3)
            .map(|n| Sha256::digest(format!("document {n}")).to_vec())
            .collect();
        let hashes_b64: Vec<String> = hashes.iter().map(|h| b64(h)).collect();
        let sha256 = "2.16.840.1.101.3.4.2.1";
        let (status, sad) = csc(
            &sealing,
            "v2/credentials/authorize",
            json!({"credentialID": scal2, "numSignatures": 3, "hashes": hashes_b64, "hashAlgorithmOID": sha256}),
        )
        .await;
        assert_eq!(status, 200, "{sad}");
        assert!(sad["expiresIn"].as_u64().unwrap() > 0);
        let sad = sad["SAD"].as_str().unwrap().to_owned();
        let sign = |sad: String, hashes: Vec<String>| {
            json!({"credentialID": scal2, "SAD": sad, "hashes": hashes,
                   "hashAlgorithmOID": sha256, "signAlgo": sign_algo})
        };
        let (status, signed) = csc(
            &sealing,
            "v2/signatures/signHash",
            sign(sad.clone(), hashes_b64.clone()),
        )
        .await;
        assert_eq!(status, 200, "{signed}");
        let signatures = signed["signatures"].as_array().unwrap();
        assert_eq!(signatures.len(), 3);
        for (hash, signature) in hashes.iter().zip(signatures) {
            assert!(
                openssl_verifies(&sealing.work, &certificate, hash, &unb64(signature)),
                "OpenSSL verifies each signature with the certificate's key"
            );
        }
        // A wrong signature does not verify (the check above can fail).
        assert!(!openssl_verifies(
            &sealing.work,
            &certificate,
            &hashes[1],
            &unb64(&signatures[0])
        ));

        // A fourth signature with the same SAD is refused.
        let (status, refused) = csc(
            &sealing,
            "v2/signatures/signHash",
            sign(sad.clone(), vec![hashes_b64[0].clone()]),
        )
        .await;
        assert_eq!(status, 400, "{refused}");
        assert!(refused["error_description"].as_str().unwrap().contains("SAD"), "{refused}");

        // A hash the SAD was not issued for is refused.
        let (_, fresh) = csc(
            &sealing,
            "v2/credentials/authorize",
            json!({"credentialID": scal2, "numSignatures": 1, "hashes": [b64(&Sha256::digest("authorised"))], "hashAlgorithmOID": sha256}),
        )
        .await;
        let fresh = fresh["SAD"].as_str().unwrap().to_owned();
        let (status, refused) = csc(
            &sealing,
            "v2/signatures/signHash",
            sign(fresh, vec![b64(&Sha256::digest("not authorised"))]),
        )
        .await;
        assert_eq!(status, 400, "{refused}");
        assert!(refused["error_description"].as_str().unwrap().contains("not bound"), "{refused}");
        // SCAL2 without hashes is refused at authorize.
        let (status, _) = csc(
            &sealing,
            "v2/credentials/authorize",
            json!({"credentialID": scal2, "numSignatures": 1}),
        )
        .await;
        assert_eq!(status, 400);

        // extendTransaction: the same SAD lives on; an unknown one is refused.
        let (_, scal1_sad) = csc(
            &sealing,
            "v2/credentials/authorize",
            json!({"credentialID": sealing.credential, "numSignatures": 2}),
        )
        .await;
        let scal1_sad = scal1_sad["SAD"].as_str().unwrap().to_owned();
        let (status, extended) = csc(
            &sealing,
            "v2/credentials/extendTransaction",
            json!({"credentialID": sealing.credential, "SAD": scal1_sad}),
        )
        .await;
        assert_eq!(status, 200, "{extended}");
        assert_eq!(extended["SAD"], scal1_sad.as_str());
        assert!(extended["expiresIn"].as_u64().unwrap() > 0);
        let (status, _) = csc(
            &sealing,
            "v2/credentials/extendTransaction",
            json!({"credentialID": sealing.credential, "SAD": "bm90IGEgU0FE"}),
        )
        .await;
        assert_eq!(status, 400);

        // timestamp: a token over the hash, with the nonce echoed.
        let imprint = Sha256::digest("to be time-stamped");
        let (status, stamped) = csc(
            &sealing,
            "v2/signatures/timestamp",
            json!({"hash": b64(&imprint), "hashAlgorithmOID": sha256, "nonce": "00ff10"}),
        )
        .await;
        assert_eq!(status, 200, "{stamped}");
        let info = sceau::pki::tsa::tst_info_of(&unb64(&stamped["timestamp"])).unwrap();
        assert_eq!(info.message_imprint.hashed_message.as_bytes(), imprint.as_slice());
        // 0xff10 as a DER INTEGER: a leading zero keeps it positive.
        assert_eq!(info.nonce.unwrap().as_bytes(), &[0x00, 0xff, 0x10]);

        // Errors keep CSC's form: malformed JSON, missing fields, no client.
        let response = sealing
            .client
            .post(service.tls_url("/csc/v2/signatures/signHash"))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        let (status, body) = csc(&sealing, "v2/signatures/signHash", json!({"credentialID": scal2, "hashes": [], "signAlgo": "1.2.840.10045.4.3.2"})).await;
        assert_eq!(status, 400);
        assert!(body["error_description"].as_str().unwrap().contains("SAD"), "{body}");
        let response = reqwest::Client::new()
            .post(service.url("/csc/v2/credentials/list"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{body}");
    });
}

#[test]
fn csc_sign_doc_makes_pades_and_cades_at_every_advertised_level() {
    let Some(softhsm) =
        support::hsm::isolated("csc_sign_doc_makes_pades_and_cades_at_every_advertised_level")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let sealing = Sealing::start(&softhsm, &db).await;
        let invoice = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo/invoice.pdf"),
        )
        .unwrap();
        let (_, details) = csc(
            &sealing,
            "v2/credentials/info",
            json!({"credentialID": sealing.credential}),
        )
        .await;
        let sign_algo = details["key"]["algo"][0].clone();
        let authorize = |count: u32| {
            let sealing = &sealing;
            async move {
                let (status, sad) = csc(
                    sealing,
                    "v2/credentials/authorize",
                    json!({"credentialID": sealing.credential, "numSignatures": count}),
                )
                .await;
                assert_eq!(status, 200, "{sad}");
                sad["SAD"].as_str().unwrap().to_owned()
            }
        };

        // PAdES at each level, validated as the Seal API's are.
        for (level, mode) in [
            ("Ades-B-B", None),
            ("Ades-B-T", None),
            ("Ades-B-LT", Some("--lt")),
            ("Ades-B-LTA", Some("--lta")),
        ] {
            let sad = authorize(1).await;
            let (status, signed) = csc(
                &sealing,
                "v2/signatures/signDoc",
                json!({"credentialID": sealing.credential, "SAD": sad, "documents": [{
                    "document": b64(&invoice), "signature_format": "P",
                    "conformance_level": level, "signAlgo": sign_algo,
                    "signed_props": [{"attribute_name": "reason", "attribute_value": "Facture conforme"}],
                }]}),
            )
            .await;
            assert_eq!(status, 200, "{level}: {signed}");
            let pdf = unb64(&signed["DocumentWithSignature"][0]);
            assert!(pdf.starts_with(&invoice), "{level}: an incremental update");
            let verdicts = sealing.validate_as(&pdf, mode);
            let seal = verdicts
                .iter()
                .find(|v| v["document_time_stamp"] != true)
                .unwrap();
            assert_sound(seal);
            assert_eq!(seal["has_timestamp"], level != "Ades-B-B", "{level}: {seal}");
            if mode.is_some() {
                assert_eq!(seal["dss_bottom_line"], true, "{level}: {seal}");
            }
            if level == "Ades-B-LTA" {
                assert_eq!(seal["ades_lta"], "AdESPassed.OK", "{seal}");
            }
        }

        // CAdES at B-B, B-T, B-LT: detached in SignatureObject, verified by
        // OpenSSL against the root; attached in DocumentWithSignature.
        let work = &sealing.work;
        let document = b"Bon de commande 2026-118\n";
        std::fs::write(work.join("document.txt"), document).unwrap();
        let path = |name: &str| work.join(name).to_str().unwrap().to_owned();
        let verify = |cms: &[u8], detached: bool| {
            std::fs::write(work.join("seal.p7s"), cms).unwrap();
            let mut args: Vec<String> = ["cms", "-verify", "-binary", "-inform", "DER", "-in"]
                .map(str::to_owned)
                .to_vec();
            args.push(path("seal.p7s"));
            args.extend(["-CAfile".to_owned(), path("root.pem")]);
            args.extend(["-purpose", "any", "-out", "/dev/null"].map(str::to_owned));
            if detached {
                args.extend(["-content".to_owned(), path("document.txt")]);
            }
            openssl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };
        for level in ["Ades-B-B", "Ades-B-T", "Ades-B-LT"] {
            let sad = authorize(2).await;
            let (status, signed) = csc(
                &sealing,
                "v2/signatures/signDoc",
                json!({"credentialID": sealing.credential, "SAD": sad, "documents": [
                    {"document": b64(document), "signature_format": "C", "conformance_level": level,
                     "signAlgo": sign_algo, "signed_envelope_property": "Detached"},
                    {"document": b64(document), "signature_format": "C", "conformance_level": level,
                     "signAlgo": sign_algo, "signed_envelope_property": "Attached"},
                ]}),
            )
            .await;
            assert_eq!(status, 200, "{level}: {signed}");
            let (ok, out) = verify(&unb64(&signed["SignatureObject"][0]), true);
            assert!(ok, "{level} detached: {out}");
            let (ok, out) = verify(&unb64(&signed["DocumentWithSignature"][0]), false);
            assert!(ok, "{level} attached: {out}");
        }
        // A digest instead of the document: detached CAdES.
        let sad = authorize(1).await;
        let (status, signed) = csc(
            &sealing,
            "v2/signatures/signDoc",
            json!({"credentialID": sealing.credential, "SAD": sad, "documentDigests": [{
                "hashes": [b64(&Sha256::digest(document))], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                "signature_format": "C", "conformance_level": "Ades-B-T", "signAlgo": sign_algo,
            }]}),
        )
        .await;
        assert_eq!(status, 200, "{signed}");
        let (ok, out) = verify(&unb64(&signed["SignatureObject"][0]), true);
        assert!(ok, "digest: {out}");

        // What the Seal API does not make is refused before anything is sealed.
        let sad = authorize(2).await;
        for refused in [
            json!({"document": b64(document), "signature_format": "C", "conformance_level": "Ades-B-LTA", "signAlgo": sign_algo}),
            json!({"document": b64(document), "signature_format": "X", "signAlgo": sign_algo}),
            json!({"document": b64(&invoice), "signature_format": "P", "signAlgo": "1.2.840.113549.1.1.10"}),
            json!({"document": b64(&invoice), "signature_format": "P", "signAlgo": sign_algo,
                   "signed_props": [{"attribute_name": "commitment", "attribute_value": "x"}]}),
        ] {
            let (status, body) = csc(
                &sealing,
                "v2/signatures/signDoc",
                json!({"credentialID": sealing.credential, "SAD": sad, "documents": [refused]}),
            )
            .await;
            assert_eq!(status, 400, "{body}");
        }
        // Nothing was spent: the SAD still seals both documents.
        let (status, signed) = csc(
            &sealing,
            "v2/signatures/signDoc",
            json!({"credentialID": sealing.credential, "SAD": sad, "documents": [
                {"document": b64(document), "signature_format": "C", "signAlgo": sign_algo},
                {"document": b64(document), "signature_format": "C", "signAlgo": sign_algo},
            ]}),
        )
        .await;
        assert_eq!(status, 200, "{signed}");
        assert_eq!(signed["SignatureObject"].as_array().unwrap().len(), 2);
    });
}

#[test]
fn pyhanko_csc_signer_signs_through_csc_v1_over_mutual_tls() {
    let Some(softhsm) =
        support::hsm::isolated("pyhanko_csc_signer_signs_through_csc_v1_over_mutual_tls")
    else {
        return;
    };
    support::ca::runtime().block_on(async {
        let db = support::db::sqlite();
        let sealing = Sealing::start(&softhsm, &db).await;
        let service = &sealing.service;
        // SCAL2: pyHanko must bind each SAD to the hash it signs.
        let scal2 = scal2_credential(&sealing).await;
        let invoice =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo/invoice.pdf");
        let out = sealing.work.join("csc-signed.pdf");
        let base = service.tls_url("");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/csc/pyhanko_csc_sign.py");
        let said = python_result(
            script.to_str().unwrap(),
            &[
                base.trim_end_matches('/'),
                "v1",
                &scal2.to_string(),
                sealing.alice.certificate.to_str().unwrap(),
                sealing.alice.key.to_str().unwrap(),
                sealing.pki.server_ca.to_str().unwrap(),
                invoice.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
        );
        let report: Value = serde_json::from_str(&said).unwrap();
        assert_eq!(report["scal2"], true, "{report}");
        assert_eq!(report["chain"], 2, "{report}");
        let pdf = std::fs::read(&out).unwrap();
        let verdicts = sealing.validate(&pdf);
        assert_eq!(verdicts.len(), 1, "{verdicts:?}");
        assert_sound(&verdicts[0]);
        assert_eq!(verdicts[0]["coverage"], "ENTIRE_FILE", "{}", verdicts[0]);
        // The signature is journaled as every seal is.
        let seals = service.state.store.seals_of(scal2, None, 10).await.unwrap();
        assert_eq!(seals.len(), 1);
        assert_eq!(seals[0].format, "digest");
    });
}
