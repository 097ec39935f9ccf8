//! PAdES test plumbing: a sealing service on mutual TLS with one active
//! credential, the Python scripts under tests/pdf (reportlab, the corpus,
//! pyHanko's verdicts) and the command-line checkers (qpdf, pdfsig).

use std::path::{Path, PathBuf};

use der::{Decode, EncodePem};
use sceau::auth::mtls;
use sceau::store::auth::ActivationBinding;
use serde_json::Value;
use uuid::Uuid;
use x509_cert::Certificate;

use super::service::{self, Service};
use super::test_ca::{Issued, MtlsPki};

/// The project's Python (with pyHanko and reportlab), else the system's.
pub fn python() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".to_owned()
    }
}

/// Runs `program`; whether it succeeded, and what it printed on both streams.
pub fn run(program: &str, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Runs the Python helper `script` (under tests/) with `--result FILE` before
/// `args`, and returns what it wrote to FILE. That file is the helper's only
/// answer: what it prints, a dependency's warnings included, is shown when it
/// fails and never read as a verdict.
pub fn python_result(script: &str, args: &[&str]) -> String {
    python_result_with(script, args, &[])
}

/// [`python_result`] with `env` added to the helper's environment.
pub fn python_result_with(script: &str, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let output = std::process::Command::new(python())
        .arg(script)
        .arg("--result")
        .arg(&result)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{script} failed: {said}");
    std::fs::read_to_string(&result)
        .unwrap_or_else(|e| panic!("{script} wrote no result ({e}); it said: {said}"))
}

/// `qpdf --check`'s exit code: 0 sound, 3 warnings, 2 errors.
pub fn qpdf_check(file: &Path) -> (i32, String) {
    let output = std::process::Command::new("qpdf")
        .args(["--check", file.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("qpdf: {e}"));
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A script under tests/pdf.
pub fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pdf")
        .join(name)
        .display()
        .to_string()
}

/// A running service with mutual TLS, an organisation with an active
/// CA-managed credential, a client certificate registered to activate it, and
/// `work/` holding `root.pem` and `issuing.pem`.
pub struct Sealing {
    pub service: Service,
    pub pki: MtlsPki,
    pub client: reqwest::Client,
    pub credential: Uuid,
    /// The organisation, and the client identity registered for its credential.
    pub entity: Uuid,
    pub alice: Issued,
    pub work: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sealing {
    pub async fn start(softhsm: &super::hsm::SoftHsm, db: &super::db::TestDb) -> Self {
        Self::start_with(softhsm, db, |_| {}).await
    }

    pub async fn start_with(
        softhsm: &super::hsm::SoftHsm,
        db: &super::db::TestDb,
        adjust: impl FnOnce(&mut sceau::config::Settings),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let pki = MtlsPki::new(dir.path(), 60);
        let alice = pki.clients.issue("alice", false, None);
        let mut settings = service::settings(softhsm, db, dir.path(), Some(pki.tls.clone()));
        adjust(&mut settings);
        let service = Service::start(settings, service::clock_now()).await;
        let entity = service.entity("Alpha SA", "NTRFR-123456782").await;
        let credential = service.active_credential(entity, "seal-ca-managed").await;
        register(&service, credential, entity, &alice).await;
        let active = service.state.store.active_ca_certificates().await.unwrap();
        for purpose in ["root", "issuing"] {
            let der = &active.iter().find(|c| c.purpose == purpose).unwrap().der;
            let pem = Certificate::from_der(der)
                .unwrap()
                .to_pem(der::pem::LineEnding::LF)
                .unwrap();
            std::fs::write(work.join(format!("{purpose}.pem")), pem).unwrap();
        }
        let client = pki.client(Some(&alice));
        Self {
            service,
            pki,
            client,
            credential,
            entity,
            alice,
            work,
            _dir: dir,
        }
    }

    /// `POST /api/v1/seal/pades?credential=…&{query}`: the status and body.
    pub async fn seal(&self, query: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let response = self
            .client
            .post(self.service.tls_url(&format!(
                "/api/v1/seal/pades?credential={}&{query}",
                self.credential
            )))
            .header("content-type", "application/pdf")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let length = response.headers().get("content-length").cloned();
        if status == 200 {
            assert_eq!(response.headers()["content-type"], "application/pdf");
            assert!(response.headers().contains_key("sceau-journal-index"));
            // The document and the seal's revision go out as two pieces; the
            // length is still declared, not left to chunked encoding.
            assert!(!response.headers().contains_key("transfer-encoding"));
        }
        let body = response.bytes().await.unwrap().to_vec();
        if status == 200 {
            let length = length.expect("a sealed PDF declares its Content-Length");
            assert_eq!(length.to_str().unwrap(), body.len().to_string());
        }
        (status, body)
    }

    /// pyHanko's verdict on each signature of `pdf`.
    pub fn validate(&self, pdf: &[u8]) -> Vec<Value> {
        self.validate_as(pdf, None)
    }

    /// With `mode` (`--lt`, `--lta`), also pyHanko's LTV verdict from the
    /// document's own DSS, fetching disabled.
    pub fn validate_as(&self, pdf: &[u8], mode: Option<&str>) -> Vec<Value> {
        let file = self.work.join("sealed.pdf");
        std::fs::write(&file, pdf).unwrap();
        // The root alone: what a relying party holds; the seal brings the rest.
        let root = self.work.join("root.pem");
        let mut args = vec![
            file.to_str().unwrap().to_owned(),
            root.to_str().unwrap().to_owned(),
        ];
        if let Some(mode) = mode {
            args.push(mode.to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let script = script("validate_pades.py");
        let found = python_result(&script, &args);
        serde_json::from_str::<Vec<Value>>(&found)
            .unwrap_or_else(|_| panic!("pyHanko's verdicts: {found}"))
    }

    /// pyHanko's verdicts on many files in one process: `(path, mode)` in,
    /// one `{"file", "signatures", "error"}` per file out, in order.
    pub fn validate_batch(&self, files: &[(PathBuf, Option<&str>)]) -> Vec<Value> {
        let list = self.work.join("batch.txt");
        let lines: String = files
            .iter()
            .map(|(path, mode)| match mode {
                Some(mode) => format!("{}\t{mode}\n", path.display()),
                None => format!("{}\n", path.display()),
            })
            .collect();
        std::fs::write(&list, lines).unwrap();
        let out = python_result(
            &script("validate_pades.py"),
            &[
                "--batch",
                list.to_str().unwrap(),
                self.work.join("root.pem").to_str().unwrap(),
            ],
        );
        let verdicts: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("pyHanko batch: {l}")))
            .collect();
        assert_eq!(verdicts.len(), files.len(), "pyHanko batch: {out}");
        verdicts
    }
}

/// Registers `who`'s client certificate to activate `credential`.
pub async fn register(service: &Service, credential: Uuid, entity: Uuid, who: &Issued) {
    service
        .state
        .store
        .insert_activation_credential(
            credential,
            entity,
            &ActivationBinding::ClientCertificate {
                sha256: mtls::fingerprint(&who.der()),
            },
            "test:rccs",
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
}

/// A seal verdict from pyHanko is intact, valid, trusted and PAdES.
pub fn assert_sound(verdict: &Value) {
    for key in ["intact", "valid", "trusted"] {
        assert_eq!(verdict[key], true, "{key}: {verdict}");
    }
    assert_eq!(verdict["sub_filter"], "/ETSI.CAdES.detached", "{verdict}");
}

/// The test corpus (tests/pdf/make_corpus.py) in `dir`, with the shared
/// fixtures when `../shared/fixtures/pdf` is present; its manifest.
pub fn corpus(dir: &Path, large: bool) -> Vec<Value> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/pdf");
    let mut args = vec![script("make_corpus.py"), dir.display().to_string()];
    if shared.is_dir() {
        args.push("--shared".to_owned());
        args.push(shared.display().to_string());
    }
    if large {
        args.push("--large".to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run(&python(), &args);
    assert!(ok, "make_corpus.py: {out}");
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    serde_json::from_str(&manifest).unwrap()
}
