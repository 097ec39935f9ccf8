//! `journal-load`: appends entries to the audit journal from many concurrent tasks,
//! printing `appended <index>` as soon as each append has returned (durable). Used by
//! the durability tests (which SIGKILL it part-way) and for manual load runs.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sceau::config::{DatabaseSettings, JournalSettings};
use sceau::journal::event::LoadTest;
use sceau::journal::{Actor, Event, Journal, SoftwareSigner};
use sceau::store::Store;
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(about = "Append entries to the sceau audit journal concurrently")]
struct Args {
    #[arg(long)]
    database_url: String,
    /// External checkpoints go here; the software audit key is kept here too.
    #[arg(long)]
    checkpoint_dir: PathBuf,
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 1)]
    concurrency: u64,
    #[arg(long, default_value_t = 256)]
    max_batch: usize,
    #[arg(long, default_value_t = 1)]
    checkpoint_interval_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("journal-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("journal-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let store = Store::connect(&DatabaseSettings {
        url: SecretString::from(args.database_url.clone()),
        max_connections: 4,
        ..DatabaseSettings::default()
    })
    .await
    .map_err(|e| sceau::error::chain(&e))?;
    let signer = SoftwareSigner::load_or_create(&args.checkpoint_dir.join("journal-load.key"))
        .map_err(|e| format!("audit key: {e}"))?;
    let settings = JournalSettings {
        checkpoint_dir: args.checkpoint_dir.clone(),
        checkpoint_interval_secs: args.checkpoint_interval_secs,
        max_batch: args.max_batch,
    };
    let journal = Journal::open(
        store.clone(),
        &settings,
        Arc::new(signer),
        sceau::clock::system(),
    )
    .await
    .map_err(|e| sceau::error::chain(&e))?;
    let concurrency = args.concurrency.max(1);
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let journal = journal.clone();
        let count = args.count;
        tasks.push(tokio::spawn(async move {
            let mut n = task;
            while n < count {
                let event = Event::LoadTest(LoadTest {
                    pid: std::process::id(),
                    task,
                    n,
                });
                let index = journal
                    .append(&Actor::Task("journal-load"), event)
                    .await
                    .map_err(|e| sceau::error::chain(&e))?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "appended {index}")
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("stdout: {e}"))?;
                n += concurrency;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    journal
        .shutdown()
        .await
        .map_err(|e| sceau::error::chain(&e))?;
    store.close().await;
    Ok(())
}
