//! Every module of the library imports only from layers below its own (../shared/DESIGN.md's
//! drawing, bottom up): read from the source, so an arrow that runs back up fails here.

use std::path::Path;

/// Top-level modules of `src/`, bottom layer first; a module may use those of lower rank only.
/// `tensor` is `gpu::tensor` re-exported, so it counts as `gpu`.
const LAYERS: &[&[&str]] = &[
    &["error", "rng"],
    // Plain data shared by everything (architectures, genotypes), and atomic file writes.
    &["space", "durable"],
    &["data"],
    &["gpu", "tensor"],
    &["ops"],
    &["autograd"],
    &["nn", "optim"],
    &["checkpoint", "metrics"],
    &["run_loop", "run_dir"],
    &["darts", "enas", "train"],
    &["pipeline", "demo", "export", "fixtures"],
    &["web"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The `crate::NAME` paths in the code of a file (comments left out).
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // `crate::Error`, `crate::Gpu`...: the root's re-exports, below every layer that
            // uses them (error and gpu).
            if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                found.push(name);
            }
            rest = tail;
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.iter().next().unwrap().to_string_lossy().into_owned();
        if first == "bin" || first == "lib.rs" {
            continue; // the front end and the crate root see everything
        }
        let module = first.trim_end_matches(".rs").to_string();
        let own = rank(&module).unwrap_or_else(|| panic!("src/{first} is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        for dep in crate_paths(&text) {
            let Some(r) = rank(&dep) else {
                panic!("{} uses crate::{dep}, which is in no layer: add it to LAYERS", rel.display());
            };
            let same_module = dep == module || (module == "gpu" && dep == "tensor");
            if r > own || (r == own && !same_module) {
                wrong.push(format!("src/{} (layer {own}) uses crate::{dep} (layer {r})", rel.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports that run up or across a layer:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    // The reader finds paths in code and skips them in comments.
    assert_eq!(crate_paths("use crate::ops::conv; // crate::darts"), ["ops"]);
    assert_eq!(crate_paths("let x = crate::gpu::tensor::Tensor::zeros(crate::Gpu);"), ["gpu"]);
    assert!(rank("ops").unwrap() > rank("gpu").unwrap() && rank("autograd").unwrap() > rank("ops").unwrap());
}
