//! A real sceau instance for a test: its own SoftHSM tokens (made by hsm-sim/),
//! configuration, database and data directory, run as the `sceau` binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::db::TestDb;

pub struct Instance {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub database_url: String,
    child: Option<Child>,
    pub port: Option<u16>,
    /// Extra environment for every command (e.g. `SCEAU_*` overrides).
    pub env: Vec<(String, String)>,
}

/// What to change in the generated configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dev_auto_init: bool,
    pub body_limit_bytes: Option<usize>,
    /// The certificate policies; the project's `policies/certificates` when absent.
    pub policies_dir: Option<std::path::PathBuf>,
    /// Extra TOML appended at the end of the file.
    pub extra: String,
}

impl Instance {
    /// Tokens in `dir/softhsm`, data in `dir/var`, configuration in `dir/sceau.toml`.
    pub fn new(db: &TestDb, options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        super::hsm::create_tokens(&dir.path().join("softhsm"));
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let var = dir.path().join("var");
        let pins = dir.path().join("softhsm/pins");
        let mut config = format!(
            r#"data_dir = "{var}"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"
body_limit_bytes = {limit}
shutdown_grace_secs = 5
[database]
url = "{url}"
max_connections = 4
[ca]
ceremony_file = "{ceremony}"
transcript_dir = "{var}/ceremony"
policies_dir = "{policies}"
dev_auto_init = {dev}
[tsa]
policy_file = "{tsa_policy}"
[journal]
checkpoint_dir = "{var}/checkpoints"
"#,
            var = var.display(),
            limit = options.body_limit_bytes.unwrap_or(1024 * 1024),
            url = db.url,
            tsa_policy = root.join("policies/tsa.toml").display(),
            ceremony = root.join("policies/ceremony.dev.toml").display(),
            policies = options
                .policies_dir
                .clone()
                .unwrap_or_else(|| root.join("policies/certificates"))
                .display(),
            dev = options.dev_auto_init,
        );
        for (role, label) in [
            ("root", "sceau-root"),
            ("issuing", "sceau-issuing"),
            ("services", "sceau-services"),
            ("seal", "sceau-seal"),
        ] {
            config.push_str(&format!(
                "[hsm.tokens.{role}]\ntoken_label = \"{label}\"\npin = {{ file = \"{}\" }}\n",
                pins.join(format!("{label}.pin")).display()
            ));
        }
        config.push_str(&options.extra);
        let path = dir.path().join("sceau.toml");
        std::fs::write(&path, config).unwrap();
        Self {
            dir,
            config: path,
            database_url: db.url.clone(),
            child: None,
            port: None,
            env: Vec::new(),
        }
    }

    pub fn softhsm_conf(&self) -> PathBuf {
        self.dir.path().join("softhsm/softhsm2.conf")
    }

    pub fn var(&self) -> PathBuf {
        self.dir.path().join("var")
    }

    pub fn pin(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("softhsm/pins/{label}.pin")))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sceau"));
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("SOFTHSM2_CONF", self.softhsm_conf())
            .env("RUST_LOG", "warn")
            .env_remove("SCEAU_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs a one-shot command (`ca init`, `audit verify`, …) to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `sceau serve` and waits (bounded) until it says which port it serves.
    pub fn serve(&mut self) -> u16 {
        let (child, port) = self.spawn_serve(&[], &self.log_path());
        self.child = Some(child);
        self.port = Some(port);
        port
    }

    /// A second `sceau serve` of the same configuration, tokens and database
    /// (another instance of one deployment), with `env` on top; stopped when
    /// the twin is dropped.
    pub fn serve_twin(&self, env: &[(&str, &str)]) -> Twin {
        let log = self.dir.path().join("twin.log");
        let (child, port) = self.spawn_serve(env, &log);
        Twin { child, port }
    }

    fn spawn_serve(&self, env: &[(&str, &str)], log: &Path) -> (Child, u16) {
        let mut child = self
            .command(&["serve"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            // To a file: a pipe nobody reads would block the server once full.
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("sceau is serving on port ") {
                    let port: u16 = rest.split_whitespace().next().unwrap().parse().unwrap();
                    let _ = sender.send(port);
                }
            }
        });
        match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(port) => (child, port),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sceau serve did not start: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }

    /// Where `serve` writes its logs.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port.unwrap())
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sceau did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `sceau audit verify` against the test's database and the checkpoints in
/// `dir/checkpoints`.
pub fn audit_verify(db: &super::db::TestDb, dir: &std::path::Path) -> std::process::Output {
    let mut config = format!(
        "data_dir = \"{dir}\"\n[database]\nurl = \"{url}\"\n[journal]\ncheckpoint_dir = \"{dir}/checkpoints\"\n",
        dir = dir.display(),
        url = db.url
    );
    // `audit verify` opens no token, but a configuration always names them.
    for role in ["root", "issuing", "services", "seal"] {
        config.push_str(&format!(
            "[hsm.tokens.{role}]\ntoken_label = \"unused\"\npin = {{ env = \"UNUSED\" }}\n"
        ));
    }
    let path = dir.join("audit.toml");
    std::fs::write(&path, config).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_sceau"))
        .args(["--config", path.to_str().unwrap(), "audit", "verify"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Another serving process of an [`Instance`]'s deployment.
pub struct Twin {
    child: Child,
    pub port: u16,
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
