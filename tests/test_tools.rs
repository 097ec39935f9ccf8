//! The test tools' own guarantees: the lock check that `make test` runs
//! refuses a Python environment that differs from the lock in any way, and a
//! Python helper's verdict comes from its result file, so nothing it prints
//! (a dependency's deprecation warning, say) can change it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::pades::{python, python_result_with, script};

const LOCK: &str = "tests/python/requirements.lock";

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `check_lock.py` run by the project's Python on `lock`: its exit code and
/// what it said on stderr.
fn check(lock: &Path) -> (i32, String) {
    let output = Command::new(python())
        .arg(manifest().join("tests/python/check_lock.py"))
        .arg(lock)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The real lock with `edit` applied, written to a temporary file.
fn edited_lock(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let lock = std::fs::read_to_string(manifest().join(LOCK)).unwrap();
    let file = dir.join("requirements.lock");
    std::fs::write(&file, edit(lock)).unwrap();
    file
}

/// The lock's entry for `name`: its `name==version` line, its hashes and its
/// comments, up to the next entry.
fn entry(lock: &str, name: &str) -> String {
    let mut lines = lock.split_inclusive('\n');
    let first = lines
        .find(|line| line.starts_with(&format!("{name}==")))
        .unwrap_or_else(|| panic!("{name} is not in the lock"));
    let rest = lines.take_while(|line| !line.starts_with(|c: char| c.is_ascii_alphanumeric()));
    std::iter::once(first).chain(rest).collect()
}

#[test]
fn the_installed_python_tools_are_exactly_the_locked_ones() {
    let (code, said) = check(&manifest().join(LOCK));
    assert_eq!(code, 0, "{said}");
}

#[test]
fn an_installed_package_the_lock_does_not_name_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let lock = edited_lock(dir.path(), |lock| {
        let pyyaml = entry(&lock, "pyyaml");
        lock.replace(&pyyaml, "")
    });
    let (code, said) = check(&lock);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("pyyaml 6.0.4 is installed but not in the lock"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
}

#[test]
fn another_version_than_the_locked_one_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let lock = edited_lock(dir.path(), |lock| {
        lock.replace("\npyyaml==6.0.4", "\npyyaml==6.0.3")
    });
    let (code, said) = check(&lock);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("pyyaml is 6.0.4, the lock says 6.0.3"),
        "{said}"
    );
}

#[test]
fn a_locked_package_that_is_missing_or_unhashed_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let lock = edited_lock(dir.path(), |lock| {
        format!(
            "{lock}not-installed-here==1.0 \\\n    --hash=sha256:{}\nunhashed-pin==2.0\n",
            "0".repeat(64)
        )
    });
    let (code, said) = check(&lock);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("not-installed-here==1.0 is locked but not installed"),
        "{said}"
    );
    assert!(
        said.contains("unhashed-pin: locked without a hash"),
        "{said}"
    );
}

/// A `sitecustomize` that makes the interpreter noisy on both streams, at
/// start and at exit, with lines that look like verdicts.
const NOISE: &str = r#"
import atexit, sys, warnings
warnings.warn("a dependency's deprecation warning", DeprecationWarning)
warnings.warn("another warning, printed by default", UserWarning)
print('[{"intact": false, "valid": false, "trusted": false}]')
print('{"noise": "on stderr"}', file=sys.stderr)
atexit.register(lambda: print('[{"intact": false}]'))
"#;

#[test]
fn a_python_helpers_verdict_cannot_be_changed_by_what_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sitecustomize.py"), NOISE).unwrap();
    let root = dir.path().join("root.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=noise test root", "-days", "1"])
        .arg("-keyout")
        .arg(dir.path().join("root.key"))
        .arg("-out")
        .arg(&root)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let unsigned = manifest().join("deploy/demo/invoice.pdf");
    let noisy = std::env::join_paths(
        std::iter::once(dir.path().to_path_buf()).chain(
            std::env::var_os("PYTHONPATH")
                .iter()
                .flat_map(std::env::split_paths),
        ),
    )
    .unwrap();
    let found = python_result_with(
        &script("validate_pades.py"),
        &[unsigned.to_str().unwrap(), root.to_str().unwrap()],
        &[("PYTHONPATH", noisy.as_os_str())],
    );
    // An unsigned PDF has no signature to judge: the verdict is the empty
    // list, whatever the interpreter printed around it.
    assert_eq!(found.trim(), "[]");
}
