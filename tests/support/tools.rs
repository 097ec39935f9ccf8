//! The independent validators the suite runs (OpenSSL, pkilint): found on PATH
//! or in the project's `.venv`, and a clear failure when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The path of a test tool, looking in `.venv/bin` first (where `make deps` puts them).
pub fn tool(name: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    if venv.exists() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    panic!("{name} is not installed: run `make deps` (it is part of the test suite)");
}

pub fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

/// Runs pkilint's `lint_pkix_cert` and returns its findings at ERROR or above.
pub fn pkilint_errors(linter: &str, args: &[&str], file: &Path) -> String {
    let mut all: Vec<&str> = vec!["lint"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-s", "ERROR"]);
    let file = file.to_str().unwrap();
    all.push(file);
    let output = run(&tool(linter), &all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() || !stdout.trim().is_empty(),
        "{linter} failed to run on {file}: {stderr}"
    );
    stdout.trim().to_owned()
}

/// Everything a pkilint linter reports (all severities), and what it printed on
/// stderr (the detected certificate type with `-o`).
pub fn pkilint_report(linter: &str, args: &[&str], file: &Path) -> (String, String) {
    let mut all: Vec<&str> = vec!["lint"];
    all.extend_from_slice(args);
    let file = file.to_str().unwrap();
    all.push(file);
    let output = run(&tool(linter), &all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success() || !stdout.trim().is_empty(),
        "{linter} failed to run on {file}: {stderr}"
    );
    (stdout.trim().to_owned(), stderr.trim().to_owned())
}
