//! What the benches share: SoftHSM tokens made for the run, and the token
//! settings over them. SoftHSM reads its configuration once per process, so a
//! bench makes its tokens and re-runs itself with SOFTHSM2_CONF pointing at
//! them.
#![expect(unreachable_pub, reason = "helpers shared by the bench binaries")]

use std::path::{Path, PathBuf};
use std::process::Command;

use sceau::config::{DEFAULT_SOFTHSM_MODULE, PinSource, TokenRoles, TokenSettings};

/// Set in the re-run child: the directory of its tokens.
pub const CHILD_MARKER: &str = "SCEAU_BENCH_SOFTHSM_DIR";

/// In the child, the tokens' directory. In the parent, makes the tokens
/// (hsm-sim/create-tokens.sh), re-runs this bench with the same arguments
/// against them and exits with the child's status.
pub fn softhsm_tokens(root: &Path) -> PathBuf {
    if let Ok(dir) = std::env::var(CHILD_MARKER) {
        return PathBuf::from(dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("bash")
        .arg(root.join("hsm-sim/create-tokens.sh"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "hsm-sim/create-tokens.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let status = Command::new(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .env(CHILD_MARKER, dir.path())
        .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
        .status()
        .unwrap();
    drop(dir);
    std::process::exit(status.code().unwrap_or(1));
}

/// The four tokens hsm-sim/create-tokens.sh made in `dir`, one per role.
pub fn token_roles(dir: &Path) -> TokenRoles {
    TokenRoles {
        root: token(dir, "sceau-root"),
        issuing: token(dir, "sceau-issuing"),
        services: token(dir, "sceau-services"),
        seal: token(dir, "sceau-seal"),
    }
}

/// The settings of the token `label` made in `dir`.
fn token(dir: &Path, label: &str) -> TokenSettings {
    TokenSettings {
        module: DEFAULT_SOFTHSM_MODULE.into(),
        token_label: Some(label.to_owned()),
        slot: None,
        pin: PinSource::File(dir.join("pins").join(format!("{label}.pin"))),
    }
}
