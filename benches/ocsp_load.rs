//! OCSP responses per second over HTTP on loopback, measured with `wrk` in one run:
//! cached answers (no nonce) against a static route of the same HTTP stack
//! (`GET /certs/issuing.der`) and against `openssl ocsp -port`, and freshly signed
//! answers (a distinct nonce in every request) against the raw C_Sign rate of the
//! responder key on the same SoftHSM token. Numbers and ratios, not pass/fail:
//! `cargo bench --bench ocsp_load` (or `make bench-ocsp`, which installs wrk).
//!
//! Every phase checks that it measured successful OCSP answers: one answer
//! fetched and decoded before and after each load, wrk's byte count against the
//! size of that answer, and for the nonce phase every body read by the Lua script.
//! Under `cargo test --all-targets` (no `--bench`) it is a smoke pass of a few
//! seconds without wrk: the same set-up and checks, a few sequential requests.
//!
//! SoftHSM reads its configuration once per process, so the bench makes its
//! tokens and re-runs itself with SOFTHSM2_CONF pointing at them.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use der::{Decode, DecodePem, Encode};
use rand::RngCore;
use sceau::config::{DatabaseSettings, HsmSettings, OcspOverLimit, Settings, TokenRole};
use sceau::hsm::{HsmKey, KeyId, TokenPool};
use sceau::pki::issuance::{IssuanceRequest, KeySource};
use sceau::store::entities::NewEntity;
use sceau::store::status::SerialStatus;
use secrecy::SecretString;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{BasicOcspResponse, CertId, CertStatus, OcspResponse, OcspResponseStatus};

/// wrk threads and connections; the machine has 2 cores, shared by wrk and the server.
#[path = "support/tsa_flood.rs"]
mod flood;

const WRK_THREADS: usize = 2;
const WRK_CONNECTIONS: usize = 32;
/// Alternated static and cached phases whose median ratio is reported.
const PAIRS: usize = 5;
/// Threads for the raw C_Sign rate (as benches/issuance.rs).
const SIGNERS: usize = 2;
/// Nonce length (OpenSSL's default).
const NONCE_OCTETS: usize = 16;
/// The serial number the `openssl ocsp` responder's index lists as valid.
const OPENSSL_SERIAL: &str = "5CEA0C5B0000000000000000000B0001";

struct Sizes {
    /// Each wrk run; `None`: no wrk, a few sequential requests per phase (smoke).
    load: Option<Duration>,
    smoke_requests: usize,
    /// Distinct nonce requests prepared (reused in turn if the run asks more).
    nonce_requests: usize,
    raw_sign: Duration,
}

fn sizes() -> Sizes {
    if std::env::args().any(|arg| arg == "--bench") {
        Sizes {
            load: Some(Duration::from_secs(10)),
            smoke_requests: 0,
            nonce_requests: 40_000,
            raw_sign: Duration::from_secs(5),
        }
    } else {
        // `cargo test --all-targets` runs this without `--bench`: a smoke pass.
        Sizes {
            load: None,
            smoke_requests: 5,
            nonce_requests: 5,
            raw_sign: Duration::from_millis(100),
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
    runtime.block_on(run(&dir, root));
}

/// One measured phase: what was loaded, its rate, and what wrk counted.
struct Phase {
    label: String,
    rate: f64,
    note: String,
    /// Cores other processes than the server and wrk kept busy meanwhile.
    other_cores: f64,
}

async fn run(tokens: &Path, root: &Path) {
    let sizes = sizes();
    if sizes.load.is_none() {
        parses_wrk_output();
    }
    let wrk = sizes.load.map(|_| {
        which("wrk").unwrap_or_else(|| {
            panic!("wrk not found: `make bench-ocsp` installs it (Debian package wrk)")
        })
    });
    let work = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: work.path().join("var"),
        database: DatabaseSettings {
            url: SecretString::from(format!(
                "sqlite://{}",
                work.path().join("db/sceau.db").display()
            )),
            ..DatabaseSettings::default()
        },
        hsm: HsmSettings {
            tokens: support::token_roles(tokens),
        },
        ..Settings::default()
    };
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.shutdown_grace_secs = 2;
    settings.ca.ceremony_file = root.join("policies/ceremony.dev.toml");
    settings.ca.transcript_dir = work.path().join("ceremony");
    settings.ca.policies_dir = root.join("policies/certificates");
    settings.ca.dev_auto_init = true;
    settings.journal.checkpoint_dir = work.path().join("checkpoints");
    // The nonce phase measures signing throughput: the bucket is set high enough
    // that the HSM (and `signing_concurrency`, left at its default) is the limit.
    settings.ocsp.nonce_signatures_per_second = 1_000_000;
    settings.ocsp.nonce_burst = 1_000_000;
    settings.ocsp.over_limit = OcspOverLimit::TryLater;
    // The same instance without the TSA's token bucket (out of reach), as
    // before it existed: started after this one stops, for the flood phases.
    let mut unbounded = settings.clone();
    unbounded.tsa.requests_per_second = 1_000_000;
    unbounded.tsa.burst = 1_000_000;
    let signing_concurrency = settings.ocsp.signing_concurrency;

    let instance = Instance::start(settings).await;
    let (state, base) = (instance.state.clone(), instance.base.clone());
    state.crl.publish_if_needed().await.unwrap();

    // One seal certificate, issued as the RA would.
    let entity = state
        .store
        .insert_entity(
            &NewEntity {
                legal_name: "Bench SA".to_owned(),
                organization_identifier: "NTRFR-732829320".to_owned(),
                country: "FR".to_owned(),
            },
            time::OffsetDateTime::now_utc(),
        )
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
    let issued = issuer
        .issue(
            sceau::pki::signing::Grant::validated_request(vec!["bench".to_owned()]),
            IssuanceRequest {
                request_id: Uuid::new_v4(),
                policy_id: "seal-ca-managed".to_owned(),
                entity_id: entity.id,
                seal_name: "Bench seal".to_owned(),
                validity_days: Some(365),
                key: KeySource::Generate { algorithm: None },
            },
        )
        .await
        .unwrap();
    let active = state.store.active_ca_certificates().await.unwrap();
    let record = |purpose: &str| active.iter().find(|c| c.purpose == purpose).unwrap();
    let issuing = Certificate::from_der(&record("issuing").der).unwrap();
    let issuing_der = record("issuing").der.clone();
    let responder_key_id = KeyId::from_bytes(&record("ocsp").key.key_id).unwrap();
    let services = state.hsm.token(TokenRole::Services).unwrap().clone();
    let responder_key = services.clone().find_key(responder_key_id).await.unwrap();

    let cert_id = CertId::from_issuer::<sha2::Sha256>(
        &issuing,
        SerialNumber::new(&hex::decode(&issued.serial).unwrap()).unwrap(),
    )
    .unwrap();
    let cached_url = format!("{base}/ocsp/{}", get_path(&ocsp_request(&cert_id, None)));
    let static_url = format!("{base}/certs/issuing.der");
    let mut nonces = Vec::with_capacity(sizes.nonce_requests);
    let mut nonce_paths = String::new();
    for _ in 0..sizes.nonce_requests {
        let mut nonce = [0u8; NONCE_OCTETS];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let path = format!("/ocsp/{}", get_path(&ocsp_request(&cert_id, Some(&nonce))));
        nonce_paths.push_str(&path);
        nonce_paths.push('\n');
        nonces.push((nonce, path));
    }
    let scripts = LuaScripts::write(work.path(), &nonce_paths);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut phases = Vec::new();

    // 1. Static bytes through the same router, middleware and listener.
    let check_static = || async {
        let (body, size) = fetch(&client, &static_url).await;
        assert_eq!(body, issuing_der, "GET /certs/issuing.der");
        size
    };
    let load = Load::plain(
        "static GET /certs/issuing.der (same HTTP stack)",
        &static_url,
    );
    phases.push(measure(&sizes, wrk.as_deref(), &scripts, load, check_static).await);

    // 2. Cached OCSP answers: the first request signs and fills the cache.
    let check_cached = || async {
        let (body, size) = fetch(&client, &cached_url).await;
        assert_good(&body, None);
        size
    };
    check_cached().await;
    let signed_before = services.sign_calls();
    let reads_before = state.ocsp.database_reads();
    let load = Load::plain("OCSP GET, cached (no nonce)", &cached_url);
    let mut cached = measure(&sizes, wrk.as_deref(), &scripts, load, check_cached).await;
    let signed = services.sign_calls() - signed_before;
    let reads = state.ocsp.database_reads();
    cached.note = format!(
        "{}; {signed} C_Sign on the services token; {} status queries, {} generation reads",
        cached.note,
        reads.0 - reads_before.0,
        reads.1 - reads_before.1
    );
    phases.push(cached);

    // The ratio of 1 to 2 moves with the machine's state between two phases
    // (0.68 and 0.86 in two runs of one build): more pairs, alternated, and
    // their median ratio.
    let mut pairs = vec![(phases[0].rate, phases[1].rate)];
    let pair_reads_before = state.ocsp.database_reads();
    for _ in 1..PAIRS {
        let load = Load::plain("static, again", &static_url);
        let again_static = measure(&sizes, wrk.as_deref(), &scripts, load, check_static).await;
        let load = Load::plain("cached, again", &cached_url);
        let again_cached = measure(&sizes, wrk.as_deref(), &scripts, load, check_cached).await;
        pairs.push((again_static.rate, again_cached.rate));
    }
    let pair_reads = state.ocsp.database_reads();
    let pair_reads = (
        pair_reads.0 - pair_reads_before.0,
        pair_reads.1 - pair_reads_before.1,
    );
    // 3. `openssl ocsp -port`: a throwaway CA and responder (P-256, as ours).
    let openssl_dir = work.path().join("openssl");
    let responder = OpensslResponder::start(&openssl_dir);
    let openssl_issuer =
        Certificate::from_pem(std::fs::read(openssl_dir.join("ca.pem")).unwrap()).unwrap();
    let openssl_id = CertId::from_issuer::<sha2::Sha256>(
        &openssl_issuer,
        SerialNumber::new(&hex::decode(OPENSSL_SERIAL).unwrap()).unwrap(),
    )
    .unwrap();
    let openssl_url = format!(
        "http://127.0.0.1:{}/{}",
        responder.port,
        get_path(&ocsp_request(&openssl_id, None))
    );
    wait_until_answering(&client, &openssl_url).await;
    let check_openssl = || async {
        let (body, size) = fetch(&client, &openssl_url).await;
        assert_good(&body, None);
        size
    };
    let load = Load {
        // Once wrk stops, `openssl ocsp` may be stuck on a connection wrk closed
        // before sending anything (see LUA_RESOLVE): no request after the load.
        check_after: false,
        server_pid: Some(responder.child.id()),
        ..Load::plain("openssl ocsp -port (one process), no nonce", &openssl_url)
    };
    phases.push(measure(&sizes, wrk.as_deref(), &scripts, load, check_openssl).await);
    drop(responder);

    // 4. A fresh signature for every request: distinct nonces.
    let (first_nonce, first_path) = &nonces[0];
    let check_nonce = || async {
        let (body, size) = fetch(&client, &format!("{base}{first_path}")).await;
        assert_good(&body, Some(first_nonce));
        size
    };
    let signed_before = services.sign_calls();
    let mut fresh = if sizes.load.is_some() {
        let load = Load {
            nonce_script: true,
            ..Load::plain(
                &format!("OCSP GET, distinct nonce (signing_concurrency {signing_concurrency})"),
                &format!("{base}/"),
            )
        };
        measure(&sizes, wrk.as_deref(), &scripts, load, check_nonce).await
    } else {
        check_nonce().await;
        let started = Instant::now();
        for (nonce, path) in &nonces {
            let (body, _) = fetch(&client, &format!("{base}{path}")).await;
            assert_good(&body, Some(nonce));
        }
        Phase {
            label: format!("OCSP GET, distinct nonce (signing_concurrency {signing_concurrency})"),
            rate: nonces.len() as f64 / started.elapsed().as_secs_f64(),
            note: format!("smoke: {} sequential requests", nonces.len()),
            other_cores: 0.0,
        }
    };
    let signed = services.sign_calls() - signed_before;
    fresh.note = format!("{}; {signed} C_Sign on the services token", fresh.note);
    phases.push(fresh);

    // 5. The raw HSM rate of the responder key, same token, server idle.
    let before = CpuTimes::now("self");
    let raw = raw_sign_rate(&services, &responder_key, sizes.raw_sign).await;
    let cpu = CpuTimes::now("self").since(&before);
    let other_cores = (cpu.busy - cpu.server).max(0.0) / cpu.seconds;
    phases.push(Phase {
        label: format!(
            "raw C_Sign/s, responder key ({}), {SIGNERS} threads",
            responder_key.algorithm
        ),
        rate: raw,
        note: format!(
            "{:?}; cores busy: bench {:.2}, other {other_cores:.2}",
            sizes.raw_sign,
            cpu.server / cpu.seconds
        ),
        other_cores: if sizes.load.is_some() {
            other_cores
        } else {
            0.0
        },
    });
    // 6. What each fresh response also does in software: the signer checks the
    // signature against the key, then the response is checked against the
    // responder certificate (`pki::ocsp::build`): two verifications.
    let before = CpuTimes::now("self");
    let verify = software_verify_rate(&services, &responder_key, sizes.raw_sign).await;
    let cpu = CpuTimes::now("self").since(&before);
    let other_cores = (cpu.busy - cpu.server).max(0.0) / cpu.seconds;
    phases.push(Phase {
        label: format!(
            "software verify/s, crypto::verify ({}), {SIGNERS} threads",
            responder_key.algorithm
        ),
        rate: verify,
        note: format!(
            "{:?}, two per fresh response; cores busy: bench {:.2}, other {other_cores:.2}",
            sizes.raw_sign,
            cpu.server / cpu.seconds
        ),
        other_cores: if sizes.load.is_some() {
            other_cores
        } else {
            0.0
        },
    });

    // 7 and 8. The cached path without HTTP, from as many tasks as wrk has
    // connections: the responder alone, then its database status lookup alone.
    let cached_der = ocsp_request(&cert_id, None);
    let cached_len = fetch(&client, &cached_url).await.0.len();
    let responder = state.ocsp.clone();
    let (rate, note) = in_process_rate(sizes.raw_sign, move || {
        let (responder, der) = (responder.clone(), cached_der.clone());
        async move {
            let answer = responder.respond(&der).await;
            assert!(answer.cacheable.is_some() && answer.der.len() == cached_len);
        }
    })
    .await;
    phases.push(Phase {
        label: format!("OcspResponder::respond, cached, {WRK_CONNECTIONS} tasks, no HTTP"),
        rate,
        note,
        other_cores: 0.0,
    });
    let store = state.store.clone();
    let serial = issued.serial.clone();
    let (rate, note) = in_process_rate(sizes.raw_sign, move || {
        let (store, serial) = (store.clone(), serial.clone());
        async move {
            let found = store.certificate_status(&serial).await.unwrap();
            assert_eq!(found.status, SerialStatus::Good);
        }
    })
    .await;
    phases.push(Phase {
        label: format!("Store::certificate_status, {WRK_CONNECTIONS} tasks, no HTTP"),
        rate,
        note,
        other_cores: 0.0,
    });

    // 9. Cached OCSP latency, idle and under a flood of time-stamp requests,
    // with the TSA's token bucket (this instance).
    let cached_path = cached_url.trim_start_matches(&base).to_owned();
    let mut floods =
        vec![flood::measure("with the TSA bucket", &base, &cached_path, sizes.load).await];

    // Idle keep-alive connections would hold the graceful shutdown for its grace time.
    drop(client);
    instance.stop().await;

    // The same, on an instance whose TSA has no bucket (as before it existed).
    let instance = Instance::start(unbounded).await;
    let unbounded_base = instance.base.clone();
    floods.push(
        flood::measure(
            "without a TSA bucket",
            &unbounded_base,
            &cached_path,
            sizes.load,
        )
        .await,
    );
    instance.stop().await;

    let rate = |i: usize| phases[i].rate;
    let (static_rate, cached_rate, openssl_rate) = (rate(0), rate(1), rate(2));
    let (nonce_rate, raw_rate, verify_rate) = (rate(3), rate(4), rate(5));
    let load = match sizes.load {
        Some(d) => format!(
            "wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{}s, loopback, 2 cores shared by wrk and the server",
            d.as_secs()
        ),
        None => "smoke pass: sequential requests, not a measurement".to_owned(),
    };
    println!("\nOCSP over HTTP ({load}; SQLite, SoftHSM)");
    for phase in &phases {
        println!(
            "  {:<58} {:>9.1}/s  {}",
            phase.label, phase.rate, phase.note
        );
    }
    let pair_ratios: Vec<f64> = pairs.iter().map(|(s, c)| c / s).collect();
    let mut sorted = pair_ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ratio = sorted[sorted.len() / 2];
    println!(
        "  cached / static in {PAIRS} alternated pairs: {}",
        pairs
            .iter()
            .map(|(s, c)| format!("{:.0}/{:.0}k = {:.2}", c / 1000.0, s / 1000.0, c / s))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  (pairs 2-{PAIRS}: {} status queries, {} generation reads)",
        pair_reads.0, pair_reads.1
    );
    println!("  ratios");
    for (label, value, goal) in [
        ("cached / static, first pair", cached_rate / static_rate, ""),
        (
            "cached / static, median of the pairs",
            median_ratio,
            "goal >= 0.8",
        ),
        (
            "cached / openssl ocsp",
            cached_rate / openssl_rate,
            "goal >= 20",
        ),
        ("nonce / raw C_Sign", nonce_rate / raw_rate, ""),
        (
            "nonce / (1 C_Sign + 2 verifies), raw",
            nonce_rate / (1.0 / (1.0 / raw_rate + 2.0 / verify_rate)),
            "",
        ),
    ] {
        println!("  {label:<58} {value:>9.2}   {goal}");
    }
    println!(
        "  cached OCSP latency under a time-stamp flood ({}/s from {} tasks, {} measuring)",
        flood::FLOOD_RATE,
        flood::FLOODERS,
        flood::PROBES
    );
    for report in &floods {
        println!("  {report}");
    }
    let busiest = phases.iter().map(|p| p.other_cores).fold(0.0, f64::max);
    if busiest > 0.2 {
        println!(
            "  warning: other processes kept up to {busiest:.2} cores busy during a load: \
             the machine was not quiet, rates are low"
        );
    }
}

/// One sceau instance serving on a free loopback port for a bench phase.
struct Instance {
    state: sceau::app::AppState,
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Instance {
    async fn start(settings: Settings) -> Self {
        let app = sceau::app::Application::build(settings, sceau::clock::system())
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            state,
            base,
            stop,
            server,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .unwrap()
            .unwrap();
    }
}

/// The base64 of a DER request, percent-encoded for a GET path (RFC 6960 A.1).
fn get_path(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

fn ocsp_request(id: &CertId, nonce: Option<&[u8]>) -> Vec<u8> {
    let mut builder =
        OcspRequestBuilder::default().with_request(x509_ocsp::Request::new(id.clone()));
    if let Some(nonce) = nonce {
        builder = builder.with_extension(Nonce::new(nonce).unwrap()).unwrap();
    }
    builder.build().to_der().unwrap()
}

/// GETs `url`: the body, and the size of the whole HTTP response as wrk counts it
/// (status line, headers, body), to compare with wrk's bytes read per request.
async fn fetch(client: &reqwest::Client, url: &str) -> (Vec<u8>, usize) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    let version = match response.version() {
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut size = format!("{version} 200 OK\r\n").len() + 2;
    for (name, value) in response.headers() {
        size += name.as_str().len() + 2 + value.len() + 2;
    }
    let body = response.bytes().await.unwrap().to_vec();
    size += body.len();
    (body, size)
}

/// A successful OCSP answer saying `good`, echoing `nonce` when one was sent.
fn assert_good(der: &[u8], nonce: Option<&[u8]>) {
    let response = OcspResponse::from_der(der).unwrap();
    assert_eq!(response.response_status, OcspResponseStatus::Successful);
    let basic =
        BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes()).unwrap();
    assert!(matches!(
        basic.tbs_response_data.responses[0].cert_status,
        CertStatus::Good(_)
    ));
    assert_eq!(
        basic.nonce().map(|n| n.0.as_bytes().to_vec()).as_deref(),
        nonce
    );
}

/// One wrk run.
struct Load {
    label: String,
    url: String,
    /// The nonce script (its own paths, every body checked), else the plain one.
    nonce_script: bool,
    /// Check one answer after the load too.
    check_after: bool,
    /// The server's process when it is not this one.
    server_pid: Option<u32>,
}

impl Load {
    fn plain(label: &str, url: &str) -> Self {
        Self {
            label: label.to_owned(),
            url: url.to_owned(),
            nonce_script: false,
            check_after: true,
            server_pid: None,
        }
    }
}

/// Runs `load` with wrk (or, in the smoke pass, a few sequential requests), with
/// a checked answer before (and after). `check` returns the HTTP size of one answer.
async fn measure<F, Fut>(
    sizes: &Sizes,
    wrk: Option<&Path>,
    scripts: &LuaScripts,
    load: Load,
    check: F,
) -> Phase
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let label = load.label.as_str();
    let expected = check().await;
    let (Some(duration), Some(wrk)) = (sizes.load, wrk) else {
        let started = Instant::now();
        for _ in 0..sizes.smoke_requests {
            check().await;
        }
        return Phase {
            label: label.to_owned(),
            rate: sizes.smoke_requests as f64 / started.elapsed().as_secs_f64(),
            note: format!("smoke: {} sequential requests", sizes.smoke_requests),
            other_cores: 0.0,
        };
    };
    eprintln!("ocsp_load: {label}: wrk for {}s", duration.as_secs());
    // Through bash, whose `times` then prints wrk's CPU time (its children's).
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(r#""$0" "$@"; status=$?; times; exit $status"#)
        .arg(wrk)
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{WRK_CONNECTIONS}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("-s")
        .arg(if load.nonce_script {
            &scripts.nonce
        } else {
            &scripts.plain
        })
        .arg(&load.url);
    if load.nonce_script {
        command
            .arg("--")
            .arg(&scripts.nonce_paths)
            .arg(WRK_THREADS.to_string());
    }
    let server = load
        .server_pid
        .map_or_else(|| "self".to_owned(), |pid| pid.to_string());
    let before = CpuTimes::now(&server);
    let output = command.kill_on_drop(true).output().await.unwrap();
    let cpu = CpuTimes::now(&server).since(&before);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = WrkReport::parse(&text);
    assert!(
        !text.contains("Non-2xx or 3xx responses") && !text.contains("Socket errors"),
        "{label}: wrk saw errors:\n{text}"
    );
    assert_eq!(
        report.failed, 0,
        "{label}: unsuccessful OCSP answers:\n{text}"
    );
    assert!(
        report.requests > 0,
        "{label}: no request completed:\n{text}"
    );
    // All answers have the checked one's size (within a few octets: ECDSA
    // signatures vary in length), so none of them was an error.
    let per_request = report.bytes as f64 / report.requests as f64;
    assert!(
        (per_request - expected as f64).abs() <= expected as f64 * 0.01,
        "{label}: {per_request:.1} octets per answer, the checked answer has {expected}:\n{text}"
    );
    if load.check_after {
        check().await;
    }
    let other_cores = (cpu.busy - cpu.server - report.wrk_cpu).max(0.0) / cpu.seconds;
    Phase {
        label: label.to_owned(),
        rate: report.rate,
        note: format!(
            "{} requests, {per_request:.0} B/answer; cores busy: server {:.2}, wrk {:.2}, other {other_cores:.2}",
            report.requests,
            cpu.server / cpu.seconds,
            report.wrk_cpu / cpu.seconds,
        ),
        other_cores,
    }
}

/// What the bench reads from wrk's output: its "Requests/sec:" line and the
/// line the scripts' `done` prints.
#[derive(Debug, PartialEq)]
struct WrkReport {
    rate: f64,
    requests: u64,
    bytes: u64,
    failed: u64,
    /// CPU seconds (user + system) wrk used, from bash's `times`.
    wrk_cpu: f64,
}

impl WrkReport {
    fn parse(text: &str) -> Self {
        let rate = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
            .unwrap_or_else(|| panic!("no Requests/sec line in wrk's output:\n{text}"))
            .trim()
            .parse()
            .unwrap();
        let done = text
            .lines()
            .find_map(|line| line.strip_prefix("bench:"))
            .unwrap_or_else(|| panic!("no bench: line in wrk's output:\n{text}"));
        let field = |name: &str| -> u64 {
            done.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {name} in {done}"))
                .parse()
                .unwrap()
        };
        // `times`: the shell's user and system time, then its children's.
        let children = text
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap();
        let wrk_cpu = children.split_whitespace().map(minutes_seconds).sum();
        Self {
            rate,
            requests: field("requests"),
            bytes: field("bytes"),
            failed: field("failed"),
            wrk_cpu,
        }
    }
}

/// `1m2.500s` as seconds.
fn minutes_seconds(text: &str) -> f64 {
    let (minutes, seconds) = text
        .strip_suffix('s')
        .and_then(|t| t.split_once('m'))
        .unwrap_or_else(|| panic!("not a `times` value: {text}"));
    minutes.parse::<f64>().unwrap() * 60.0 + seconds.parse::<f64>().unwrap()
}

/// CPU time used, from /proc: by every process (busy, all cores) and by the
/// server (this process, or the `openssl ocsp` one), in seconds, and the wall time.
struct CpuTimes {
    busy: f64,
    server: f64,
    at: Instant,
}

/// A [`CpuTimes`] difference; `seconds` is the wall time between the two.
struct CpuUse {
    busy: f64,
    server: f64,
    seconds: f64,
}

/// USER_HZ, the unit of /proc/stat and /proc/self/stat (100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuTimes {
    /// `server`: a process id, or `self`.
    fn now(server: &str) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        // cpu user nice system idle iowait irq softirq steal ...
        let fields: Vec<f64> = stat
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        let busy = fields.iter().take(8).sum::<f64>() - fields[3] - fields[4];
        let own = std::fs::read_to_string(format!("/proc/{server}/stat")).unwrap();
        // After the command name: state is field 3, utime and stime fields 14 and 15.
        let after_name: Vec<f64> = own
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap())
            .collect();
        Self {
            busy: busy / TICKS_PER_SECOND,
            server: after_name.iter().sum::<f64>() / TICKS_PER_SECOND,
            at: Instant::now(),
        }
    }

    fn since(&self, before: &Self) -> CpuUse {
        CpuUse {
            busy: self.busy - before.busy,
            server: self.server - before.server,
            seconds: self.at.duration_since(before.at).as_secs_f64(),
        }
    }
}

/// The smoke pass's check of the parser, on wrk 4.1's output.
fn parses_wrk_output() {
    let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 32 connections\n\
                \x20 1000 requests in 10.00s, 1.00MB read\n\
                Requests/sec:    100.25\nTransfer/sec:      0.10MB\n\
                bench: requests=1000 bytes=1048576 failed=0\n\
                0m0.003s 0m0.001s\n1m1.250s 0m3.500s\n";
    assert_eq!(
        WrkReport::parse(text),
        WrkReport {
            rate: 100.25,
            requests: 1000,
            bytes: 1_048_576,
            failed: 0,
            wrk_cpu: 64.75,
        }
    );
    let cpu = CpuTimes::now("self");
    assert!(cpu.busy > 0.0 && cpu.server >= 0.0);
}

/// The wrk Lua scripts and the nonce requests' paths.
struct LuaScripts {
    plain: PathBuf,
    nonce: PathBuf,
    nonce_paths: PathBuf,
}

/// wrk's default `resolve` opens and closes a test connection without sending
/// anything: `openssl ocsp` (3.0) then spins on that connection and never
/// answers again. Every script resolves without it.
const LUA_RESOLVE: &str = r#"
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end
"#;

/// Prints what the bench parses (summary.errors counts are also in wrk's own
/// "Socket errors" line); `failed` comes from the threads' `failed` counters.
const LUA_DONE: &str = r#"
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("failed") or 0)
  end
  io.write(string.format("bench: requests=%d bytes=%d failed=%d\n",
    summary.requests, summary.bytes, failed))
end
"#;

/// The nonce script: thread k of n sends paths k+1, k+1+n, ... in turn, and
/// counts answers that are not a successful OCSPResponse (responseStatus 0).
const LUA_NONCE: &str = r#"
local paths, next_index, step
function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  step = tonumber(args[2])
  next_index = id
  failed = 0
end
function request()
  local path = paths[next_index % #paths + 1]
  next_index = next_index + step
  return wrk.format("GET", path)
end
-- OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }
local function ocsp_status(body)
  if body == nil or #body < 5 or body:byte(1) ~= 0x30 then return -1 end
  local length = body:byte(2)
  local at = 3
  if length >= 0x80 then at = 3 + (length - 0x80) end
  if body:byte(at) ~= 0x0a or body:byte(at + 1) ~= 0x01 then return -1 end
  return body:byte(at + 2)
end
function response(status, headers, body)
  if status ~= 200 or ocsp_status(body) ~= 0 then
    failed = failed + 1
  end
end
"#;

impl LuaScripts {
    fn write(dir: &Path, nonce_paths: &str) -> Self {
        let scripts = Self {
            plain: dir.join("plain.lua"),
            nonce: dir.join("nonce.lua"),
            nonce_paths: dir.join("nonce-paths.txt"),
        };
        std::fs::write(&scripts.plain, format!("{LUA_RESOLVE}{LUA_DONE}")).unwrap();
        std::fs::write(
            &scripts.nonce,
            format!("{LUA_RESOLVE}{LUA_DONE}{LUA_NONCE}"),
        )
        .unwrap();
        std::fs::write(&scripts.nonce_paths, nonce_paths).unwrap();
        scripts
    }
}

/// `openssl ocsp -port` with a throwaway CA, a delegated responder (P-256,
/// ecdsa-with-SHA256, as ours) and an index listing one valid serial. Killed
/// when dropped. It listens on every interface (`-port` takes no address);
/// only 127.0.0.1 is sent anything.
struct OpensslResponder {
    child: Child,
    port: u16,
}

impl OpensslResponder {
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let p256 = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &p256,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "30",
                    "-subj",
                    "/C=FR/O=Bench/CN=Bench OCSP baseline CA",
                    "-addext",
                    "basicConstraints=critical,CA:true",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &p256,
                &[
                    "-keyout",
                    "ocsp.key",
                    "-out",
                    "ocsp.csr",
                    "-subj",
                    "/C=FR/O=Bench/CN=Bench OCSP baseline responder",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("ocsp.ext"),
            "basicConstraints=critical,CA:false\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=critical,OCSPSigning\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "ocsp.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x1001",
            "-days",
            "30",
            "-extfile",
            "ocsp.ext",
            "-out",
            "ocsp.pem",
        ]);
        // status, expiry, revocation date (empty), serial (BN_bn2hex form), file, subject.
        std::fs::write(
            dir.join("index.txt"),
            format!("V\t491231235959Z\t\t{OPENSSL_SERIAL}\tunknown\t/C=FR/O=Bench/CN=Bench seal\n"),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("openssl")
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "ca.pem",
                "-rsigner",
                "ocsp.pem",
                "-rkey",
                "ocsp.key",
                "-nmin",
                "60",
                "-port",
            ])
            .arg(port.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // It logs every request's first line on stderr.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, port }
    }
}

impl Drop for OpensslResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls with real requests (a bare connect would stall `openssl ocsp`).
async fn wait_until_answering(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => return,
            outcome => {
                assert!(
                    Instant::now() < deadline,
                    "openssl ocsp does not answer at {url}: {outcome:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Calls per second of `one`, from `WRK_CONNECTIONS` tasks looping for `run_for`,
/// and a note with the cores this process kept busy.
async fn in_process_rate<F, Fut>(run_for: Duration, one: F) -> (f64, String)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let before = CpuTimes::now("self");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRK_CONNECTIONS {
        let one = one.clone();
        tasks.spawn(async move {
            let deadline = Instant::now() + run_for;
            let mut count = 0u64;
            while Instant::now() < deadline {
                one().await;
                count += 1;
            }
            count
        });
    }
    let mut total = 0;
    while let Some(count) = tasks.join_next().await {
        total += count.unwrap();
    }
    let cpu = CpuTimes::now("self").since(&before);
    (
        total as f64 / cpu.seconds,
        format!(
            "{run_for:?}; cores busy: bench {:.2}, other {:.2}",
            cpu.server / cpu.seconds,
            (cpu.busy - cpu.server).max(0.0) / cpu.seconds
        ),
    )
}

/// Verifications per second of one signature made by `key`, on `SIGNERS` threads.
async fn software_verify_rate(pool: &Arc<TokenPool>, key: &HsmKey, run_for: Duration) -> f64 {
    let algorithm = key.algorithm.signature_algorithm();
    let message = b"tbs".to_vec();
    let signature = pool
        .clone()
        .sign(key.id, algorithm, message.clone())
        .await
        .unwrap();
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..SIGNERS {
        let (public_key, message, signature) =
            (key.public_key.clone(), message.clone(), signature.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            let mut count = 0u64;
            let deadline = Instant::now() + run_for;
            while Instant::now() < deadline {
                sceau::crypto::verify(&public_key, algorithm, &message, &signature).unwrap();
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

async fn raw_sign_rate(pool: &Arc<TokenPool>, key: &HsmKey, run_for: Duration) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..SIGNERS {
        let pool = pool.clone();
        let key = key.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let mut count = 0u64;
            let deadline = Instant::now() + run_for;
            while Instant::now() < deadline {
                pool.sign_blocking(&key.id, key.algorithm.signature_algorithm(), b"tbs")
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
