//! The lake's operations (`ingest`, `forget`, `compact`, `check`) depend only on the transaction
//! module (`commit`) and the shared layers under it, never on one another: an operation's source
//! files must not name another operation's module (nor `repair` or `kineto`, the older paths of
//! `check`/`forget` and of ingest's Kineto part).

use std::path::{Path, PathBuf};

/// Each operation, its source files (a file or a folder under `src/`) and the module names that
/// reach it.
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("ingest", "ingest", &["ingest", "kineto"]),
    ("forget", "forget.rs", &["forget", "repair"]),
    ("compact", "compact.rs", &["compact"]),
    ("check", "check.rs", &["check", "repair"]),
];

fn sources(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            sources(&e.unwrap().path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

/// The places `text` names module `m` of the crate: `crate::m`, `super::m` from a top-level
/// module, or `m` inside a `use crate::{…}` group.
fn mentions(text: &str, m: &str) -> Vec<String> {
    let word = |s: &str| !s.starts_with(|c: char| c.is_alphanumeric() || c == '_');
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for prefix in ["crate::", "super::"] {
            for (i, _) in line.match_indices(prefix) {
                let rest = &line[i + prefix.len()..];
                let named = rest.strip_prefix(m).is_some_and(word)
                    || rest.starts_with('{')
                        && rest[1..].split(['}', ',']).any(|p| p.trim().split("::").next() == Some(m));
                if named {
                    found.push(format!("line {}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn operations_never_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (op, place, _) in OPERATIONS {
        let mut files = Vec::new();
        sources(&src.join(place), &mut files);
        assert!(!files.is_empty(), "no sources for operation {op} at src/{place}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (other, _, names) in OPERATIONS.iter().filter(|o| o.0 != *op) {
                // `super::` reaches a sibling operation only from a top-level module.
                for m in names.iter() {
                    for hit in mentions(&text, m) {
                        let top_level = f.parent() == Some(src.as_path());
                        if hit.contains("crate::") || top_level {
                            violations.push(format!("{} uses {other}: {hit}", f.strip_prefix(&src).unwrap().display()));
                        }
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "operations must depend only on `commit` and the shared layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_a_violation() {
    assert_eq!(mentions("use crate::compact::release;", "compact").len(), 1);
    assert_eq!(mentions("use crate::{LakeError, compact};", "compact").len(), 1);
    assert_eq!(mentions("let x = crate::ingest::kineto::FORMAT_ID;", "ingest").len(), 1);
    assert!(mentions("use crate::commit::release;", "compact").is_empty());
    assert!(mentions("use crate::compaction::x;", "compact").is_empty());
}
