//! Embeds the end-to-end harness `slipway demo` runs (tests/e2e: install.sh, lib.sh and
//! both test OSes) into the binary: `OUT_DIR/harness.rs` lists every file with its path
//! relative to the repository root, its text and whether it is executable.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    let mut files = Vec::new();
    for part in ["tests/e2e/install.sh", "tests/e2e/lib.sh"] {
        files.push(root.join(part));
    }
    for dir in ["tests/e2e/testos", "tests/e2e/realos"] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
        walk(&root.join(dir), &mut files);
    }
    let mut code =
        String::from("/// The harness files: (path from the repository root, text, executable).\n");
    code.push_str("pub const FILES: &[(&str, &str, bool)] = &[\n");
    for f in &files {
        println!("cargo::rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&root)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let exec = std::fs::metadata(f).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        let abs = f.canonicalize().unwrap_or_else(|_| f.clone());
        let _ = writeln!(
            code,
            "    ({rel:?}, include_str!({:?}), {exec}),",
            abs.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("harness.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
