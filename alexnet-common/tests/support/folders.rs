//! What a test folder holds: a fresh temporary folder, its entries, everything below it.
//! No dependencies, so every test crate that downloads can include it with
//! `#[path = "<relative path to>/alexnet-common/tests/support/folders.rs"] mod folders;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh, empty temporary folder for test `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names of the entries of a folder, sorted (empty when it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every path below `dir`, relative and sorted (empty when it does not exist).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    for name in listing(dir) {
        paths.extend(
            tree(&dir.join(&name))
                .into_iter()
                .map(|p| format!("{name}/{p}")),
        );
        paths.push(name);
    }
    paths.sort();
    paths
}
