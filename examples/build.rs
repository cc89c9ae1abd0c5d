//! One `#[test]` per scenario file in `regressions/`: a user keeps their
//! shrunk failures there and each becomes a test of its own, named after
//! its file, without editing any code.

use std::fmt::Write;
use std::path::Path;
use std::{env, fs};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("examples/regressions exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = String::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy();
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        writeln!(
            out,
            "#[test]\nfn {name}() {{\n    check_regression(std::path::Path::new({:?}));\n}}\n",
            file.display().to_string()
        )
        .unwrap();
    }
    let target = Path::new(&env::var("OUT_DIR").unwrap()).join("regressions.rs");
    fs::write(target, out).expect("OUT_DIR is writable");
}
