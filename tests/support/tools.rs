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

/// A TimeStampResp's PKIStatus and its failInfo BIT STRING (DER), if any.
pub fn tsa_status(reply: &[u8]) -> (u8, Option<Vec<u8>>) {
    use der::{Decode, Encode};
    let any = der::Any::from_der(reply).unwrap();
    let mut reader = der::SliceReader::new(any.value()).unwrap();
    let status_info: der::Any = der::Decode::decode(&mut reader).unwrap();
    let mut inner = der::SliceReader::new(status_info.value()).unwrap();
    let status: u8 = der::Decode::decode(&mut inner).unwrap();
    let mut fail = None;
    while !der::Reader::is_finished(&inner) {
        let next: der::Any = der::Decode::decode(&mut inner).unwrap();
        if der::Tagged::tag(&next) == der::Tag::BitString {
            fail = Some(next.to_der().unwrap());
        }
    }
    (status, fail)
}

/// Whether a DER BIT STRING has `bit` set (tag, length, unused bits, then MSB first).
pub fn fail_bit(bits: &[u8], bit: usize) -> bool {
    bits[3..]
        .get(bit / 8)
        .is_some_and(|byte| byte & (0x80 >> (bit % 8)) != 0)
}
