//! The Dockerfile is built by `scripts/docker-check.sh` (10-20 minutes, not in CI), so what can
//! be checked without building it is checked here: the builder stage copies every file the
//! crate compiles in (`include_str!`/`include_bytes!` outside `src/`).

mod common;

use std::path::{Component, Path, PathBuf};

use common::repo;

/// Paths (relative to the repository) that `src/` compiles in.
fn included() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![repo().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            for part in text.split("include_").skip(1) {
                let Some(rest) = part
                    .strip_prefix("str!(\"")
                    .or_else(|| part.strip_prefix("bytes!(\""))
                else {
                    continue;
                };
                let Some(rel) = rest.split('"').next() else {
                    continue;
                };
                out.push(normalise(&path.parent().expect("dir").join(rel)));
            }
        }
    }
    out
}

fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.strip_prefix(repo())
        .map(Path::to_path_buf)
        .unwrap_or(out)
}

#[test]
fn the_builder_stage_copies_everything_the_crate_compiles_in() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let builder: String = dockerfile
        .split("\nFROM ")
        .find(|stage| stage.contains("AS builder"))
        .expect("a builder stage")
        .to_string();
    let copied: Vec<&str> = builder
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len().saturating_sub(1)].to_vec()
        })
        .map(|w| w.trim_end_matches('/'))
        .collect();
    let files = included();
    assert!(
        files.iter().any(|f| f.starts_with("migrations")),
        "found no included files: {files:?}"
    );
    for file in files {
        if file.starts_with("src") {
            continue;
        }
        assert!(
            copied.iter().any(|c| file.starts_with(c)),
            "{} is compiled in but the Dockerfile's builder stage does not COPY it (copies: {copied:?})",
            file.display()
        );
        assert!(repo().join(&file).exists(), "{} is missing", file.display());
    }
}
