//! The Seal API under load, beside the raw limits measured in the same run:
//! - hash sealing (`POST /api/v1/seal/hashes` over mutual TLS, CAdES B-B, each
//!   signature self-checked and journaled) in seals/s, against the raw C_Sign/s
//!   of the same key on the same SoftHSM token, for P-256 and RSA-3072;
//! - a PAdES B-B seal of a large file (the largest corpus file, and one of more
//!   than 100,000 objects): seconds and peak memory growth, each seal in a fresh
//!   process, against pyHanko signing the same file in-process with a local key
//!   (benches/pyhanko_sign.py);
//! - PDF bombs (tests/support/pdf_bombs.rs): small files declaring far more
//!   than they hold, each in a fresh process: peak memory growth against the
//!   memory the seal reserves for a file of its size, and CPU seconds against
//!   sealing a sound file of the same size.
//!
//! Numbers and ratios, not pass/fail: `cargo bench --bench seal_load` (or `make
//! bench-seal`). Under `cargo test --all-targets` (no `--bench`) it is a smoke
//! pass of a few seconds: the same set-up, a few requests, a small PDF.
//!
//! SoftHSM reads its configuration once per process, so the bench makes its
//! tokens and re-runs itself with SOFTHSM2_CONF pointing at them.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

#[path = "../tests/support/pdf_bombs.rs"]
mod pdf_bombs;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use sceau::config::{DatabaseSettings, HsmSettings, Settings, TlsSettings, TokenRole};
use sceau::error::HasErrorKind as _;
use sceau::hsm::{KeyAlgorithm, KeyId};
use sceau::pki::issuance::{IssuanceRequest, KeySource};
use sceau::seal::Level;
use sceau::seal::pades::PadesOptions;
use sceau::store::auth::ActivationBinding;
use sceau::store::entities::CredentialStatus;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Digest as _;
use uuid::Uuid;

/// In a grandchild: seal this PDF once and print the figures.
const PADES_MARKER: &str = "SCEAU_BENCH_PADES";
/// Seals of each large file, by sceau and by pyHanko, in the full run.
const PADES_ROUNDS: usize = 5;
/// Threads for the raw C_Sign rate (the machine has 2 cores).
const SIGNERS: usize = 2;

struct Sizes {
    load: Duration,
    raw_sign: Duration,
    clients: usize,
    digests_per_request: usize,
    large_files: bool,
}

fn sizes() -> Sizes {
    if std::env::args().any(|arg| arg == "--bench") {
        Sizes {
            load: Duration::from_secs(8),
            raw_sign: Duration::from_secs(4),
            clients: 8,
            digests_per_request: 32,
            large_files: true,
        }
    } else {
        // `cargo test --all-targets` runs this without `--bench`: a smoke pass.
        Sizes {
            load: Duration::from_millis(300),
            raw_sign: Duration::from_millis(100),
            clients: 2,
            digests_per_request: 2,
            large_files: false,
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = support::softhsm_tokens(root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var(PADES_MARKER) {
        Ok(job) => runtime.block_on(pades_once(&dir, root, &job)),
        Err(_) => runtime.block_on(run(&dir, root)),
    }
}

/// The instance's settings, the same in the bench and in its PAdES children
/// (which reopen the database and tokens the bench set up).
fn settings(tokens: &Path, root: &Path, work: &Path) -> Settings {
    let mut settings = Settings {
        data_dir: work.join("var"),
        database: DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}", work.join("db/sceau.db").display())),
            ..DatabaseSettings::default()
        },
        hsm: HsmSettings {
            tokens: support::token_roles(tokens),
        },
        ..Settings::default()
    };
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.shutdown_grace_secs = 2;
    settings.server.tls = Some(TlsSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        certificate_file: work.join("tls/server.pem"),
        key_file: work.join("tls/server-key.pem"),
        client_ca_files: Vec::new(),
        client_crl_files: Vec::new(),
        crl_refresh_secs: 300,
    });
    settings.ca.ceremony_file = root.join("policies/ceremony.dev.toml");
    settings.ca.transcript_dir = work.join("ceremony");
    settings.ca.policies_dir = root.join("policies/certificates");
    settings.ca.dev_auto_init = true;
    settings.journal.checkpoint_dir = work.join("checkpoints");
    settings.seal.max_concurrent_documents = 64;
    settings
}

/// The DER of a PEM certificate file (the demo's client certificate).
fn certificate_der(pem_file: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_file).unwrap();
    der::pem::decode_vec(&pem).unwrap().1
}

async fn run(tokens: &Path, root: &Path) {
    let sizes = sizes();
    let work = tempfile::tempdir().unwrap();
    let settings = settings(tokens, root, work.path());
    sceau::demo::ensure_server_certificate(settings.server.tls.as_ref().unwrap()).unwrap();
    let app = sceau::app::Application::build(settings, sceau::clock::system())
        .await
        .unwrap();
    let tls_port = app.tls_port().unwrap();
    let state = app.state().clone();
    state.crl.publish_if_needed().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    // The demo organisation (made through the RA, P-256) and a second,
    // RSA-3072 credential of it, activated by the same client certificate.
    let demo_dir = work.path().join("var/demo");
    let demo = sceau::demo::ensure_credential(&state, &demo_dir)
        .await
        .unwrap();
    if std::env::var("SCEAU_BENCH_ONLY").as_deref() == Ok("bombs") {
        for (label, value) in bomb_rows(tokens, work.path(), &demo, &sizes) {
            println!("  {label:<62} {value}");
        }
        let _ = stop.send(());
        server.await.unwrap();
        return;
    }
    let p256 = state
        .store
        .seal_credential(demo.credential_id)
        .await
        .unwrap();
    let issuer = sceau::ca::issuer(
        &state.store,
        &state.hsm,
        &state.journal,
        &state.clock,
        state.policies.clone(),
    )
    .await
    .unwrap();
    let rsa = issuer
        .issue(
            sceau::pki::signing::Grant::validated_request(vec!["bench".to_owned()]),
            IssuanceRequest {
                request_id: Uuid::new_v4(),
                policy_id: "seal-ca-managed".to_owned(),
                entity_id: p256.entity_id,
                seal_name: "Bench RSA seal".to_owned(),
                validity_days: Some(365),
                key: KeySource::Generate {
                    algorithm: Some(KeyAlgorithm::Rsa3072),
                },
            },
        )
        .await
        .unwrap()
        .credential_id
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    state
        .store
        .set_seal_credential_status(rsa, CredentialStatus::Active, now)
        .await
        .unwrap();
    let sha256 = sceau::auth::mtls::fingerprint(&certificate_der(&demo.client_cert_pem));
    state
        .store
        .insert_activation_credential(
            rsa,
            p256.entity_id,
            &ActivationBinding::ClientCertificate { sha256 },
            "bench",
            now,
        )
        .await
        .unwrap();

    let server_pem = std::fs::read(work.path().join("tls/server.pem")).unwrap();
    let mut identity = std::fs::read(&demo.client_cert_pem).unwrap();
    identity.extend(std::fs::read(&demo.client_key_pem).unwrap());
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&server_pem).unwrap())
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .pool_max_idle_per_host(sizes.clients)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{tls_port}/api/v1/seal/hashes");

    let mut rows: Vec<(String, String)> = Vec::new();
    for (name, credential) in [("P-256", demo.credential_id), ("RSA-3072", rsa)] {
        let record = state.store.seal_credential(credential).await.unwrap();
        let seal_token = state.hsm.token(TokenRole::Seal).unwrap().clone();
        let key = seal_token
            .clone()
            .find_key(KeyId::from_bytes(&record.key.key_id).unwrap())
            .await
            .unwrap();
        let raw = raw_sign_rate(&seal_token, &key, sizes.raw_sign).await;
        let sealed = hash_seal_rate(&client, &url, credential, &sizes).await;
        rows.push((
            format!("raw C_Sign/s, {name} seal key, {SIGNERS} threads"),
            format!("{raw:>9.1}"),
        ));
        rows.push((
            format!(
                "hash seals/s, {name}, {} clients x {} digests, mTLS",
                sizes.clients, sizes.digests_per_request
            ),
            format!("{sealed:>9.1}"),
        ));
        let goal = if name == "RSA-3072" { 0.9 } else { 0.5 };
        rows.push((
            format!("  ratio to raw C_Sign (goal >= {goal})"),
            format!("{:>9.2}", sealed / raw),
        ));
    }
    let _ = stop.send(());
    server.await.unwrap();

    // PAdES: each seal in a fresh process, for a clean peak; sceau and
    // pyHanko in turn, several times, the median seconds and the largest
    // growth kept (one cold process is too noisy to compare on its own).
    let files = pades_files(root, work.path(), sizes.large_files);
    let rounds = if sizes.large_files { PADES_ROUNDS } else { 1 };
    for file in &files {
        let size = std::fs::metadata(file).unwrap().len() as f64;
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..rounds {
            ours.push(pades_child(
                tokens,
                work.path(),
                file,
                demo.credential_id,
                &demo.client_cert_pem,
            ));
            theirs.push(pyhanko(root, file, &work.path().join("pyhanko-out.pdf")));
        }
        let (ours, theirs) = (Figures::summary(ours), Figures::summary(theirs));
        let label = file.file_name().unwrap().to_string_lossy().into_owned();
        let mib = |kib: f64| kib / 1024.0;
        rows.push((
            format!("PAdES B-B {label} ({:.1} MiB)", size / 1048576.0),
            String::new(),
        ));
        rows.push((
            format!("  sceau seconds / pyHanko seconds (median of {rounds})"),
            format!("{:>9.3} / {:.3}", ours.seconds, theirs.seconds),
        ));
        rows.push((
            "  speed-up over pyHanko (goal >= 3)".to_owned(),
            format!("{:>9.2}", theirs.seconds / ours.seconds),
        ));
        rows.push((
            "  peak memory growth MiB, sceau / pyHanko (largest)".to_owned(),
            format!(
                "{:>9.1} / {:.1}",
                mib(ours.growth_kib()),
                mib(theirs.growth_kib())
            ),
        ));
        rows.push((
            "  sceau growth / file size (goal <= 2)".to_owned(),
            format!("{:>9.2}", ours.growth_kib() * 1024.0 / size),
        ));
    }

    rows.extend(bomb_rows(tokens, work.path(), &demo, &sizes));

    println!("\nseal API (SQLite, SoftHSM, one 2-core machine shared by client and server)");
    for (label, value) in rows {
        println!("  {label:<62} {value}");
    }
}

async fn raw_sign_rate(
    pool: &Arc<sceau::hsm::TokenPool>,
    key: &sceau::hsm::HsmKey,
    run_for: Duration,
) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..SIGNERS {
        let pool = pool.clone();
        let key = key.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let mut count = 0u64;
            let deadline = Instant::now() + run_for;
            while Instant::now() < deadline {
                pool.sign_blocking(&key.id, key.algorithm.signature_algorithm(), &[7u8; 32])
                    .unwrap();
                count += 1;
            }
            count
        }));
    }
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Signatures returned per second by `clients` concurrent callers, each
/// sending `digests_per_request` distinct digests a request. Every answer is
/// checked: 200, and one signature per digest.
async fn hash_seal_rate(
    client: &reqwest::Client,
    url: &str,
    credential: Uuid,
    sizes: &Sizes,
) -> f64 {
    let signed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + sizes.load;
    let started = Instant::now();
    let mut handles = Vec::new();
    for worker in 0..sizes.clients {
        let client = client.clone();
        let url = url.to_owned();
        let signed = signed.clone();
        let per_request = sizes.digests_per_request;
        handles.push(tokio::spawn(async move {
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                let hashes: Vec<Value> = (0..per_request)
                    .map(|n| {
                        let digest = sha2::Sha256::new_with_prefix(
                            format!("{worker}/{round}/{n}").as_bytes(),
                        );
                        json!({
                            "digest": base64::engine::general_purpose::STANDARD.encode(digest.finalize()),
                            "algorithm": "2.16.840.1.101.3.4.2.1",
                        })
                    })
                    .collect();
                let response = client
                    .post(&url)
                    .json(&json!({ "credential": credential, "level": "B-B", "hashes": hashes }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, 200, "{body}");
                let count = body["signatures"].as_array().unwrap().len();
                assert_eq!(count, per_request, "{body}");
                signed.fetch_add(count as u64, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    signed.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The files to seal: the corpus's largest and its 100,000-object file (made
/// by tests/pdf/make_corpus.py --large), or a small one in the smoke pass.
fn pades_files(root: &Path, work: &Path, large: bool) -> Vec<PathBuf> {
    let corpus = work.join("corpus");
    let python = root.join(".venv/bin/python");
    let python = if python.exists() {
        python
    } else {
        PathBuf::from("python3")
    };
    let mut command = Command::new(&python);
    command
        .arg(root.join("tests/pdf/make_corpus.py"))
        .arg(&corpus);
    if large {
        command.arg("--large");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "make_corpus.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if large {
        vec![
            corpus.join("large-pages.pdf"),
            corpus.join("large-100k-objects.pdf"),
        ]
    } else {
        vec![corpus.join("invoice-reportlab.pdf")]
    }
}

/// One seal's figures: seconds, resident memory before and at its peak.
struct Figures {
    seconds: f64,
    /// User and system CPU time of the seal.
    cpu_seconds: f64,
    rss_before_kib: f64,
    peak_kib: f64,
    /// `sealed`, or the refusal.
    outcome: String,
}

impl Figures {
    /// The median seconds and the largest growth of several runs.
    fn summary(mut runs: Vec<Figures>) -> Figures {
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let seconds = runs[runs.len() / 2].seconds;
        let worst = runs
            .into_iter()
            .max_by(|a, b| a.growth_kib().total_cmp(&b.growth_kib()))
            .unwrap();
        Figures { seconds, ..worst }
    }

    fn growth_kib(&self) -> f64 {
        (self.peak_kib - self.rss_before_kib).max(0.0)
    }

    fn parse(line: &str) -> Self {
        let value: Value =
            serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("not figures: {line:?}"));
        Self {
            seconds: value["seconds"].as_f64().unwrap(),
            // pyHanko's runs (benches/pyhanko_sign.py) report neither.
            cpu_seconds: value["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
            rss_before_kib: value["rss_before_kib"].as_f64().unwrap(),
            peak_kib: value["peak_kib"].as_f64().unwrap(),
            outcome: value["outcome"].as_str().unwrap_or("sealed").to_owned(),
        }
    }
}

fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Each bomb sealed in a fresh process, and a sound file of its size: the
/// outcome, the peak memory growth against what the seal reserves, the CPU
/// seconds against the sound file's.
fn bomb_rows(
    tokens: &Path,
    work: &Path,
    demo: &sceau::demo::DemoCredential,
    sizes: &Sizes,
) -> Vec<(String, String)> {
    // Bombs: each refused, at what cost, against a sound file of its size.
    let bombs: Vec<(&str, Vec<u8>)> = vec![
        (
            "cross-reference rows, 5 x 1.6 M",
            pdf_bombs::xref_row_bomb(pdf_bombs::BOMB_ROWS),
        ),
        (
            "cross-reference rows, 5 x 4 Mi (as reproduced)",
            pdf_bombs::xref_row_bomb(pdf_bombs::REPRODUCED_BOMB_ROWS),
        ),
        (
            "object stream, 256 MiB of spaces",
            pdf_bombs::object_stream_bomb(256 << 20),
        ),
        (
            "1000:1 cross-reference stream, 256 MiB",
            pdf_bombs::deflate_ratio_bomb(256 << 20),
        ),
        ("/Size 2^31 - 1", pdf_bombs::huge_size_bomb()),
    ];
    let mut rows = vec![(
        "PDF bombs (each in a fresh process)".to_owned(),
        String::new(),
    )];
    // The smoke pass tries the cheapest only.
    let keep = if sizes.large_files { bombs.len() } else { 1 };
    for (name, body) in bombs.into_iter().rev().take(keep) {
        let bomb = work.join("bomb.pdf");
        let control = work.join("control.pdf");
        std::fs::write(&control, pdf_bombs::sound_file(body.len())).unwrap();
        let size = body.len();
        std::fs::write(&bomb, body).unwrap();
        let ours = pades_child(
            tokens,
            work,
            &bomb,
            demo.credential_id,
            &demo.client_cert_pem,
        );
        let sound = pades_child(
            tokens,
            work,
            &control,
            demo.credential_id,
            &demo.client_cert_pem,
        );
        let reserved = sceau::seal::pdf_reservation(size) as f64;
        rows.push((
            format!(
                "  {name} ({:.1} KiB): {}",
                size as f64 / 1024.0,
                ours.outcome
            ),
            String::new(),
        ));
        rows.push((
            "    peak growth MiB / reserved MiB (goal <= 1)".to_owned(),
            format!(
                "{:>9.1} / {:.1}",
                ours.growth_kib() / 1024.0,
                reserved / 1048576.0
            ),
        ));
        rows.push((
            "    CPU s, bomb / sound file of its size (goal: a few)".to_owned(),
            format!("{:>9.3} / {:.3}", ours.cpu_seconds, sound.cpu_seconds),
        ));
    }
    rows
}

/// This process's user and system CPU seconds (/proc/self/stat, in ticks
/// of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn pades_child(
    tokens: &Path,
    work: &Path,
    file: &Path,
    credential: Uuid,
    client_cert: &Path,
) -> Figures {
    let job = json!({
        "work": work, "file": file, "credential": credential, "client_cert": client_cert,
    });
    let output = Command::new(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .env(support::CHILD_MARKER, tokens)
        .env(PADES_MARKER, job.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the PAdES child: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    Figures::parse(stdout.lines().last().unwrap_or_default())
}

/// In a fresh process: open the instance the bench made, read the file, reset
/// the peak, seal once (B-B), print the figures.
async fn pades_once(tokens: &Path, root: &Path, job: &str) {
    let job: Value = serde_json::from_str(job).unwrap();
    let work = PathBuf::from(job["work"].as_str().unwrap());
    let mut settings = settings(tokens, root, &work);
    // No listener is needed; the seal is called in-process.
    settings.server.tls = None;
    let app = sceau::app::Application::build(settings, sceau::clock::system())
        .await
        .unwrap();
    let state = app.state().clone();
    // The seal client as mutual TLS would name it.
    let client_cert = certificate_der(Path::new(job["client_cert"].as_str().unwrap()));
    let principal = sceau::auth::mtls::principal(&state.store, &client_cert)
        .await
        .unwrap();
    let credential = Uuid::parse_str(job["credential"].as_str().unwrap()).unwrap();
    let pdf = bytes::Bytes::from(std::fs::read(job["file"].as_str().unwrap()).unwrap());
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kib("VmRSS");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let sealed = state
        .sealer
        .pades(
            &principal,
            credential,
            None,
            Level::BB,
            &PadesOptions::default(),
            pdf.clone(),
        )
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let peak = status_kib("VmHWM");
    let outcome = match sealed {
        Ok(sealed) => {
            assert!(sealed.head == pdf || sealed.tail.starts_with(&pdf));
            "sealed".to_owned()
        }
        Err(refused) => format!("refused ({})", refused.kind().http_status()),
    };
    state.journal.shutdown().await.unwrap();
    println!(
        "{}",
        json!({ "seconds": seconds, "cpu_seconds": cpu, "rss_before_kib": before,
                "peak_kib": peak, "outcome": outcome })
    );
}

fn pyhanko(root: &Path, file: &Path, out: &Path) -> Figures {
    let python = root.join(".venv/bin/python");
    // The figures come back in a file of their own: what pyHanko's
    // dependencies print cannot be taken for them.
    let result = out.with_extension("json");
    let output = Command::new(&python)
        .arg(root.join("benches/pyhanko_sign.py"))
        .arg("--result")
        .arg(&result)
        .arg(file)
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (make deps installs pyHanko)", python.display()));
    assert!(
        output.status.success(),
        "pyhanko_sign.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Figures::parse(&std::fs::read_to_string(&result).unwrap())
}
