//! Journal appends/s: group commit (64 concurrent appenders) against one commit per
//! append (`max_batch = 1`), on SQLite (temp file) and PostgreSQL, beside the raw
//! limit measured in the same run (fdatasync/s on a temp file in the same folder).
//! Numbers, not pass/fail. PostgreSQL comes from `SCEAU_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and is skipped if unreachable.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sceau::config::{DatabaseSettings, JournalSettings};
use sceau::journal::event::{SealCreated, SealMade};
use sceau::journal::{Actor, Event, Journal, SoftwareSigner};

/// Who appends the bench's entries.
const BENCH: Actor = Actor::Task("bench");
/// The digest every bench entry names.
const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
use sceau::store::Store;
use secrecy::SecretString;
use sqlx::Connection;

const RUN: Duration = Duration::from_secs(4);
/// `cargo test --all-targets` runs this binary without `--bench`: a short pass
/// then keeps the bench's code exercised without costing the suite 20 s.
const SMOKE_RUN: Duration = Duration::from_millis(200);

fn run_for() -> Duration {
    if std::env::args().any(|arg| arg == "--bench") {
        RUN
    } else {
        SMOKE_RUN
    }
}
const APPENDERS: usize = 64;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let fsyncs = fdatasync_per_second(dir.path());
    let mut rows = vec![("raw fdatasync (same folder)".to_owned(), fsyncs)];

    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    for (label, batch, appenders) in [
        ("group commit, 64 appenders", 256, APPENDERS),
        ("one commit per append, 64 appenders", 1, APPENDERS),
    ] {
        let url = format!("{sqlite}-{batch}");
        let rate = appends_per_second(
            &url,
            &dir.path().join(format!("cp-{batch}")),
            batch,
            appenders,
        )
        .await;
        rows.push((format!("SQLite: {label}"), rate));
    }

    let admin = std::env::var("SCEAU_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match sqlx::PgConnection::connect(&admin).await {
        Err(e) => println!("PostgreSQL skipped: unreachable ({e})"),
        Ok(mut admin_connection) => {
            for (label, batch, appenders) in [
                ("group commit, 64 appenders", 256, APPENDERS),
                ("one commit per append, 64 appenders", 1, APPENDERS),
            ] {
                let name = format!("sceau_bench_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin_connection)
                    .await
                    .unwrap();
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                let url = format!("{base}/{name}");
                let rate = appends_per_second(
                    &url,
                    &dir.path().join(format!("pg-{batch}")),
                    batch,
                    appenders,
                )
                .await;
                sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(&mut admin_connection)
                    .await
                    .unwrap();
                rows.push((format!("PostgreSQL: {label}"), rate));
            }
        }
    }

    println!();
    println!(
        "{:<50} {:>12} {:>16}",
        "journal appends (durable)", "per second", "vs fdatasync/s"
    );
    for (label, rate) in rows {
        println!("{label:<50} {rate:>12.0} {:>15.2}x", rate / fsyncs);
    }
}

/// How many write + fdatasync rounds a temp file takes per second.
fn fdatasync_per_second(dir: &Path) -> f64 {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < run_for() {
        file.write_all(b"x").unwrap();
        file.sync_data().unwrap();
        rounds += 1;
    }
    rounds as f64 / started.elapsed().as_secs_f64()
}

async fn appends_per_second(
    url: &str,
    checkpoints: &Path,
    max_batch: usize,
    appenders: usize,
) -> f64 {
    let store = Store::connect(&DatabaseSettings {
        url: SecretString::from(url.to_owned()),
        max_connections: 4,
        ..DatabaseSettings::default()
    })
    .await
    .unwrap();
    let settings = JournalSettings {
        checkpoint_dir: checkpoints.to_owned(),
        checkpoint_interval_secs: 3600,
        max_batch,
    };
    let journal = Journal::open(
        store.clone(),
        &settings,
        Arc::new(SoftwareSigner::generate()),
        sceau::clock::system(),
    )
    .await
    .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + run_for();
    let mut tasks = Vec::new();
    for task in 0..appenders {
        let journal = journal.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                // A seal's entry, as the seal API journals one.
                let seal = Event::SealCreated(SealCreated {
                    credential_id: uuid::Uuid::from_u64_pair(task as u64, n),
                    scal: 1,
                    certificate_serial: "7a3f09c2d41e5b86".to_owned(),
                    seal_sha256: DIGEST.to_owned(),
                    seal: SealMade::of("cades", "B-B", DIGEST.to_owned()),
                });
                journal.append(&BENCH, seal).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    journal.shutdown().await.unwrap();
    store.close().await;
    rate
}
