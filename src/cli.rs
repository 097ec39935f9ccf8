//! The command line: serve, ca init, ca renew-ocsp, ca renew-tsu, ca arl, ca terminate, audit
//! verify, config check.
//! Every failure ends as one line on stderr and a non-zero exit; never a panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{AppError, Application, CEREMONY_ROLES, SERVING_ROLES};
use crate::ca::{self, CaError};
use crate::clock::{self, SharedClock};
use crate::config::{Settings, TokenRole};
use crate::error;
use crate::hsm::Hsm;
use crate::journal::Actor;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "sceau",
    version,
    about = "Remote qualified electronic sealing service"
)]
struct Cli {
    /// The configuration file (TOML); SCEAU_* environment variables override it.
    #[arg(long, short, global = true, env = "SCEAU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the public, seal and back-office APIs.
    Serve,
    /// Check the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// CA key ceremonies.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// The audit journal.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load the settings, the ceremony file and every token (module, token, PIN).
    Check,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Run the key ceremony: generate the CA and service keys, issue their certificates.
    Init {
        /// Make a new hierarchy even though one exists.
        #[arg(long)]
        force: bool,
    },
    /// Issue a new delegated OCSP responder certificate with a new key.
    RenewOcsp,
    /// Issue a new time-stamping unit key and certificate (rotation; the old
    /// one's tokens stay verifiable).
    RenewTsu,
    /// Issue the root's CRL (the ARL) with the root token, and store it for `/crl/root.crl`.
    Arl,
    /// End the issuing CA, once two CA administrators approved it
    /// (`POST /ca/v1/termination/approvals`): revoke everything it issued, publish
    /// its last CRL and OCSP responses, revoke it in the ARL and destroy its key.
    /// Needs every token, the root's included. Resumes an interrupted termination.
    Terminate,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the journal's tree and check every checkpoint, in and outside the database.
    Verify,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sceau: error: {}", one_line(&error::chain(&e)));
            ExitCode::FAILURE
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| AppError::Io {
            what: "starting the async runtime".to_owned(),
            source,
        })?;
    let clock = clock::system();
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings, clock).await,
            Command::Config {
                command: ConfigCommand::Check,
            } => config_check(settings).await,
            Command::Ca {
                command: CaCommand::Init { force },
            } => ca_init(settings, clock, force).await,
            Command::Ca {
                command: CaCommand::RenewOcsp,
            } => renew_ocsp(settings, clock).await,
            Command::Ca {
                command: CaCommand::Arl,
            } => ca_arl(settings, clock).await,
            Command::Ca {
                command: CaCommand::RenewTsu,
            } => renew_tsu(settings, clock).await,
            Command::Ca {
                command: CaCommand::Terminate,
            } => ca_terminate(settings, clock).await,
            Command::Audit {
                command: AuditCommand::Verify,
            } => audit_verify(settings).await,
        }
    })
}

async fn serve(settings: Settings, clock: SharedClock) -> Result<ExitCode, AppError> {
    let dev = settings.ca.dev_auto_init;
    let public_url = settings.public_url().to_owned();
    let data_dir = settings.data_dir.clone();
    if let (true, Some(tls)) = (dev, &settings.server.tls) {
        crate::demo::ensure_server_certificate(tls)?;
    }
    let application = Application::build(settings, clock).await?;
    let port = application.port();
    let demo = if dev {
        Some(write_demo_file(&data_dir, &public_url, &application).await?)
    } else {
        None
    };
    println!("sceau is serving on port {port} (public URL {public_url})");
    for path in [
        "/healthz",
        "/readyz",
        "/certs/root.pem",
        "/certs/issuing.pem",
    ] {
        println!("  {public_url}{path}");
    }
    if let Some(curl) = demo.and_then(|d| d.curl) {
        println!(
            "\nSeal the sample PDF at B-LT as the demo organisation's server (mutual TLS):\n\n{curl}\n"
        );
    }
    let shutdown = crate::api::shutdown_signal();
    application.run_until_stopped(shutdown).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The sample PDF `make run`'s curl command seals (shipped in the repository).
const SAMPLE_PDF: &str = "deploy/demo/invoice.pdf";

/// What `serve` prints once the demo is written.
struct DemoWritten {
    /// The ready-to-paste command, when the mutual-TLS listener is on.
    curl: Option<String>,
}

/// `var/demo/demo.json`: what a newcomer (or a demo script) needs to talk to
/// the instance: the public and mutual-TLS URLs, the root certificate, the
/// demo credential and the client certificate and key that activate it.
async fn write_demo_file(
    data_dir: &Path,
    public_url: &str,
    application: &Application,
) -> Result<DemoWritten, AppError> {
    let state = application.state();
    let dir = data_dir.join("demo");
    let io = |what: String| move |source| AppError::Io { what, source };
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let root = state
        .publication
        .get("root")
        .ok_or(CaError::Incomplete("root"))?;
    let root_pem = dir.join("root.pem");
    std::fs::write(&root_pem, &root.pem).map_err(io(format!("writing {}", root_pem.display())))?;
    let root_pem = std::fs::canonicalize(&root_pem).unwrap_or(root_pem);
    let mut demo = serde_json::json!({
        "public_url": public_url,
        "portal_url": format!("{}/portal", public_url.trim_end_matches('/')),
        "root_pem": root_pem,
    });
    let mut curl = None;
    if let (Some(tls), Some(tls_port)) = (&state.settings.server.tls, application.tls_port()) {
        let credential = crate::demo::ensure_credential(state, &dir).await?;
        // A wildcard listener (a container's 0.0.0.0) is reached on loopback.
        let host = match tls.listen.ip() {
            ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let mtls_url = format!("https://{}", std::net::SocketAddr::new(host, tls_port));
        let server_pem = std::fs::canonicalize(&tls.certificate_file)
            .unwrap_or_else(|_| tls.certificate_file.clone());
        let sample = std::fs::canonicalize(SAMPLE_PDF).unwrap_or_else(|_| SAMPLE_PDF.into());
        let command = format!(
            "curl --fail-with-body --cacert {server} --cert {cert} --key {key} \\\n  \
             -H 'Content-Type: application/pdf' --data-binary @{sample} \\\n  \
             '{mtls_url}/api/v1/seal/pades?credential={id}&level=B-LT' -o invoice-sealed.pdf",
            server = server_pem.display(),
            cert = credential.client_cert_pem.display(),
            key = credential.client_key_pem.display(),
            sample = sample.display(),
            id = credential.credential_id,
        );
        demo["mtls_url"] = mtls_url.into();
        demo["server_ca_pem"] = serde_json::json!(server_pem);
        demo["credential_id"] = credential.credential_id.to_string().into();
        demo["client_cert_pem"] = serde_json::json!(credential.client_cert_pem);
        demo["client_key_pem"] = serde_json::json!(credential.client_key_pem);
        demo["sample_pdf"] = serde_json::json!(sample);
        demo["curl"] = command.clone().into();
        curl = Some(command);
    }
    let path = dir.join("demo.json");
    let text =
        serde_json::to_string_pretty(&demo).map_err(|e| AppError::Internal(e.to_string()))?;
    std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
    Ok(DemoWritten { curl })
}

async fn config_check(settings: Settings) -> Result<ExitCode, AppError> {
    let (ceremony_file, _) = ca::ceremony_file(&settings)?;
    let policies = ca::certificate_policies(&settings)?;
    crate::notify::transport(&settings.notify).map_err(|e| AppError::Internal(e.to_string()))?;
    settings
        .database
        .backend()
        .map_err(crate::config::ConfigError::from)?;
    // The recorded hierarchy: a client-authentication CA is reported when missing
    // (hierarchies made before it existed), so the operator learns it here and
    // not from a refused issuance.
    let store = Store::connect(&settings.database).await?;
    let recorded = store.latest_ceremony().await?;
    let client_auth_ca = ca::active_client_auth_ca(&store).await?;
    store.close().await;
    let mut notes = Vec::new();
    if ceremony_file.client_auth.is_none() {
        notes.push(
            CaError::NoClientAuthCa("the ceremony file has no [client_auth] section").to_string(),
        );
    }
    if let Some(ceremony) = &recorded
        && client_auth_ca.is_none()
    {
        notes.push(format!(
            "{} (ceremony '{}' of {})",
            CaError::NoClientAuthCa("the recorded CA hierarchy has none"),
            ceremony.name,
            crate::clock::format::rfc3339(ceremony.completed_at)
        ));
    }
    if let Some(tls) = &settings.server.tls {
        // Reads the certificate, key, client CAs and CRLs as serving would.
        crate::api::tls::install_crypto_provider();
        crate::api::tls::ReloadableConfig::load(tls, client_auth_ca.map(|c| c.der), None)?;
    }
    let hsm = Hsm::connect(&settings.hsm, &TokenRole::ALL).await?;
    hsm.ping().await?;
    let tokens: Vec<String> = TokenRole::ALL
        .iter()
        .filter_map(|role| {
            hsm.token(*role)
                .ok()
                .map(|t| format!("{role}={}", t.token_label()))
        })
        .collect();
    println!(
        "configuration OK: tokens {}; ceremony file {}; {} certificate policies ({})",
        tokens.join(", "),
        settings.ca.ceremony_file.display(),
        policies.len(),
        policies
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for note in notes {
        eprintln!(
            "warning: {note}; client certificates for mutual-TLS activation cannot be issued"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn ca_init(
    settings: Settings,
    clock: SharedClock,
    force: bool,
) -> Result<ExitCode, AppError> {
    let store = Store::connect(&settings.database).await?;
    let hsm = Hsm::connect(&settings.hsm, &CEREMONY_ROLES).await?;
    let transcript = ca::perform_ceremony(&settings, &store, &hsm, &clock, force).await?;
    println!("key ceremony '{}' completed", transcript.ceremony);
    for key in &transcript.keys {
        println!(
            "  key {:<8} {} on {} (id {}, public key sha256 {})",
            serde_json::to_value(key.purpose)
                .unwrap_or_default()
                .as_str()
                .unwrap_or(""),
            key.algorithm,
            key.token,
            key.key_id,
            key.public_key_sha256
        );
    }
    for certificate in &transcript.certificates {
        println!(
            "  certificate {} serial {} sha256 {}",
            certificate.subject, certificate.serial, certificate.sha256
        );
    }
    println!(
        "transcript written to {} and to the audit journal; the root token can now be taken offline",
        settings.ca.transcript_dir.display()
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn renew_ocsp(settings: Settings, clock: SharedClock) -> Result<ExitCode, AppError> {
    let store = Store::connect(&settings.database).await?;
    let hsm = Hsm::connect(&settings.hsm, &SERVING_ROLES).await?;
    let renewed = ca::renew_ocsp_responder(&settings, &store, &hsm, &clock).await?;
    println!(
        "OCSP responder certificate renewed: serial {} sha256 {} (restart serving instances to publish it)",
        renewed.serial, renewed.sha256
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn renew_tsu(settings: Settings, clock: SharedClock) -> Result<ExitCode, AppError> {
    let store = Store::connect(&settings.database).await?;
    let hsm = Hsm::connect(&settings.hsm, &SERVING_ROLES).await?;
    let renewed = ca::renew_time_stamping_unit(&settings, &store, &hsm, &clock).await;
    store.close().await;
    let renewed = renewed?;
    println!(
        "time-stamping unit renewed: serial {} sha256 {} (serving instances switch to it within tsa.clock_sync_check_secs)",
        renewed.serial, renewed.sha256
    );
    Ok(ExitCode::SUCCESS)
}

async fn ca_arl(settings: Settings, clock: SharedClock) -> Result<ExitCode, AppError> {
    let store = Store::connect(&settings.database).await?;
    // The root token for the signature, the services token for the journal's key.
    let hsm = Hsm::connect(&settings.hsm, &CEREMONY_ROLES).await?;
    let published = ca::issue_arl(
        &settings,
        &store,
        &hsm,
        &clock,
        &Actor::Task("sceau ca arl"),
    )
    .await?;
    println!(
        "ARL number {} issued: {} entries, next update {}, sha256 {}",
        published.number,
        published.entries,
        crate::clock::format::rfc3339(published.next_update),
        published.sha256
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn ca_terminate(settings: Settings, clock: SharedClock) -> Result<ExitCode, AppError> {
    let store = Store::connect(&settings.database).await?;
    let hsm = Hsm::connect(&settings.hsm, &TokenRole::ALL).await?;
    let outcome = ca::terminate_issuing_ca(
        &settings,
        &store,
        &hsm,
        &clock,
        &Actor::Task("sceau ca terminate"),
    )
    .await;
    store.close().await;
    let report = outcome?;
    println!(
        "issuing CA {} terminated: {} certificates revoked, final CRL number {} (nextUpdate 99991231235959Z), \
         {} final OCSP responses, revoked in ARL number {}, CA key destroyed, {} seal keys destroyed",
        report.ca_serial,
        report.certificates_revoked,
        report.final_crl_number,
        report.final_ocsp_responses,
        report.arl_number,
        report.seal_keys_destroyed
    );
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(settings: Settings) -> Result<ExitCode, AppError> {
    let store = Store::connect(&settings.database).await?;
    let report = crate::journal::verify(&store, &settings.journal.checkpoint_dir).await?;
    store.close().await;
    println!("{report}");
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
