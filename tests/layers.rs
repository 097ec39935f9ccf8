//! The layer rules of `docs/ARCHITECTURE.md`, read from the sources and the
//! manifests: the layers below the service are crates (`sceau-core`,
//! `sceau-hsm` with cryptoki, `sceau-store` with sqlx, `sceau-pdf`), each
//! depending only on crates below it, and the service lists neither cryptoki
//! nor sqlx, so the compiler keeps those boundaries. Inside the service each
//! top-level module uses only modules of a lower layer, and the PDF reader and
//! writer only in `seal`. A new import that breaks a rule fails here, naming
//! the file and the module it reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may use the modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["error", "clock", "revocation"],
    &["config", "crypto"],
    &["telemetry", "store", "hsm"],
    &["journal"],
    &["notify", "pki"],
    &["auth"],
    &["seal", "ra"],
    &["csc_vocabulary", "ca"],
    &["state"],
    &["api"],
    &["portal"],
    &["app"],
    &["demo"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The file's lines that are code (comments and doc comments left out).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| {
        let line = line.trim_start();
        !line.starts_with("//")
    })
}

/// The top-level modules a line names through `crate::…`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let name: String = if rest.starts_with('{') {
            "{".to_owned()
        } else {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        named.push(name);
    }
    named
}

#[test]
fn each_module_uses_only_lower_layers_and_the_boundaries_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in sources(&root) {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = relative.split(['/', '.']).next().unwrap().to_owned();
        if ["lib", "main", "bin"].contains(&top.as_str()) {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            violations.push(format!("src/{relative}: module `{top}` is in no layer"));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        // A unit test module may reach its parent (`use super::*`).
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in code_lines(text) {
            for used in crate_paths(line) {
                if used.starts_with('{') {
                    violations.push(format!(
                        "src/{relative}: a grouped `crate::{{…}}` import hides its layers"
                    ));
                    continue;
                }
                if used == top {
                    continue;
                }
                match layer_of(&used) {
                    Some(layer) if layer < own => {
                        edges.entry(top.clone()).or_default().push(used);
                    }
                    Some(_) => violations.push(format!(
                        "src/{relative}: `{top}` uses `{used}`, which is not below it"
                    )),
                    None => violations.push(format!(
                        "src/{relative}: `{top}` uses `{used}`, which is in no layer"
                    )),
                }
            }
            for (word, owner) in [
                ("sqlx", "store"),
                ("cryptoki", "hsm"),
                ("sceau_pdf", "seal"),
            ] {
                let named = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
                if top != owner && named.into_iter().any(|w| w == word) {
                    violations.push(format!(
                        "src/{relative}: `{word}` is used outside `{owner}`"
                    ));
                }
            }
        }
    }
    assert!(
        edges.len() > 10,
        "the dependency graph was read ({edges:?})"
    );
    assert_eq!(violations, Vec::<String>::new());
}

#[test]
fn the_pdf_codec_is_a_crate_that_depends_on_nothing_of_the_service() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("crates/pdf/Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let named: Vec<&str> = dependencies
        .lines()
        .filter_map(|line| line.split('=').next())
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect();
    assert_eq!(named, ["lopdf", "flate2"], "{manifest}");
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(workspace.contains("sceau-pdf = { path = \"crates/pdf\" }"));
}

/// The names a manifest lists in its `[dependencies]` table.
fn dependencies_of(manifest: &str) -> Vec<String> {
    let Some(table) = manifest.split("\n[dependencies]\n").nth(1) else {
        return Vec::new();
    };
    table
        .split("\n[")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split('=').next())
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_lower_layers_are_crates_that_depend_only_on_crates_below_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    // Each crate with the sceau crates it may use, lowest first.
    let crates: [(&str, &[&str]); 5] = [
        ("crates/core/Cargo.toml", &[]),
        ("crates/pdf/Cargo.toml", &[]),
        ("crates/hsm/Cargo.toml", &["sceau-core"]),
        ("crates/store/Cargo.toml", &["sceau-core"]),
        (
            "Cargo.toml",
            &["sceau-core", "sceau-hsm", "sceau-pdf", "sceau-store"],
        ),
    ];
    let mut found = Vec::new();
    for (manifest, allowed) in crates {
        let dependencies = dependencies_of(&read(manifest));
        assert!(
            !dependencies.is_empty(),
            "{manifest}: no [dependencies] read"
        );
        for dependency in &dependencies {
            if dependency.starts_with("sceau") && !allowed.contains(&dependency.as_str()) {
                found.push(format!("{manifest} depends on {dependency}"));
            }
            // The two boundaries the compiler now keeps.
            for (word, owner) in [
                ("cryptoki", "crates/hsm/Cargo.toml"),
                ("sqlx", "crates/store/Cargo.toml"),
            ] {
                if dependency == word && manifest != owner {
                    found.push(format!("{manifest} lists {word}, which is {owner}'s alone"));
                }
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
    let workspace = read("Cargo.toml");
    for member in ["crates/core", "crates/hsm", "crates/pdf", "crates/store"] {
        assert!(workspace.contains(&format!("\"{member}\"")), "{member}");
    }
}

#[test]
fn the_reader_of_crate_paths_sees_what_it_must() {
    assert_eq!(
        crate_paths("use crate::pki::ceremony::{self, CeremonyFile};"),
        vec!["pki"]
    );
    assert_eq!(
        crate_paths("let x = crate::store::Store::x(); crate::hsm::y()"),
        vec!["store", "hsm"]
    );
    assert_eq!(crate_paths("use crate::{a, b};"), vec!["{"]);
    assert_eq!(crate_paths("$crate::foo"), Vec::<String>::new());
    assert!(code_lines("// crate::api\n/// crate::app\nx").eq(["x"]));
    assert_eq!(
        dependencies_of(
            "[package]\nname = \"x\"\n\n[dependencies]\n# a\na = \"1\"\nb = { path = \"b\" }\n\n[dev-dependencies]\nc = \"1\"\n"
        ),
        ["a", "b"]
    );
}

/// The architecture step's size rule, kept: no source file of the service or
/// of the workspace's crates is over 700 lines, its unit tests counted (they
/// may move to a sibling `tests.rs`). Files under `tests/` are exempt.
#[test]
fn no_source_file_is_over_700_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(entry.unwrap().path().join("src"));
    }
    let mut over = Vec::new();
    let mut read = 0;
    for dir in dirs {
        for file in sources(&dir) {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            read += 1;
            if lines > 700 {
                over.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(read > 100, "only {read} files read");
    assert!(over.is_empty(), "over 700 lines: {over:?}");
}
