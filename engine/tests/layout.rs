//! The engine's layout rules (issue 17), checked on the source tree: the top-level modules
//! form no cycle, the block formats (`quant`) do not reach into the kernels, CPU-architecture
//! code stays in `kernels/` and `cpu.rs`, and every architecture file is registered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn files(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(src()).unwrap().to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

/// The code of a file without its comment lines (docs name other modules freely).
fn code(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The top-level module a file belongs to (`kernels/x86_64/avx2.rs` -> `kernels`).
fn top(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Top-level module -> the top-level modules its code names as `crate::<module>`.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &all {
        let from = top(rel);
        if from == "lib" {
            continue;
        }
        let c = code(text);
        for (i, _) in c.match_indices("crate::") {
            let rest = &c[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_').collect();
            if !name.is_empty() && name != from {
                g.entry(from.to_string()).or_default().insert(name);
            }
        }
    }
    g
}

fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
    if from == to {
        return true;
    }
    if !seen.insert(from.to_string()) {
        return false;
    }
    g.get(from).is_some_and(|next| next.iter().any(|n| reaches(g, n, to, seen)))
}

/// Finding (issue 17): `kernels` <-> `quant`, `formats` <-> `tokenizer` and `spec` ->
/// `layers` made the module graph cyclic.
#[test]
fn the_engine_modules_form_no_cycle() {
    let g = edges();
    assert!(g.get("kernels").is_some_and(|e| e.contains("quant")), "the check should see kernels -> quant: {g:?}");
    let mut cycles = Vec::new();
    for (a, next) in &g {
        for b in next {
            if reaches(&g, b, a, &mut BTreeSet::new()) {
                cycles.push(format!("{a} -> {b}"));
            }
        }
    }
    assert!(cycles.is_empty(), "edges on a cycle: {cycles:?}");
    assert!(!g.get("quant").is_some_and(|e| e.contains("kernels")), "the block formats import the kernels");
    assert!(!g.get("spec").is_some_and(|e| e.contains("layers")), "the spec imports the layers");
}

/// CPU-architecture code (`cfg(target_arch)`, `core::arch`) lives in `kernels/` and
/// `cpu.rs` only.
#[test]
fn architecture_specific_code_stays_in_the_kernels_and_cpu_modules() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let outside: Vec<&str> = all
        .iter()
        .filter(|(rel, text)| {
            let c = code(text);
            !(rel.starts_with("kernels/") || rel == "cpu.rs") && (c.contains("target_arch") || c.contains("core::arch"))
        })
        .map(|(rel, _)| rel.as_str())
        .collect();
    assert!(outside.is_empty(), "architecture-specific code outside kernels/ and cpu.rs: {outside:?}");
}

/// The ISA-neutral kernel files (`kernels/mod.rs`, `portable/`, `no_simd.rs`) name no
/// instruction set and hold no `unsafe`: the only `cfg(target_arch)` there is the one that
/// picks the CPU architecture's folder (each followed by its `#[path]`).
#[test]
fn kernel_drivers_are_isa_neutral() {
    let mut all = Vec::new();
    files(&src().join("kernels"), &mut all);
    let neutral = |rel: &str| rel == "kernels/mod.rs" || rel == "kernels/no_simd.rs" || rel.starts_with("kernels/portable/");
    let mut checked = 0;
    for (rel, text) in all.iter().filter(|(rel, _)| neutral(rel)) {
        checked += 1;
        let c = code(text);
        let lines: Vec<&str> = c.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains("target_arch") {
                assert!(
                    lines.get(i + 1).is_some_and(|n| n.trim_start().starts_with("#[path")),
                    "{rel}: cfg(target_arch) outside the folder selection: {l}"
                );
            }
            assert!(!l.contains("core::arch"), "{rel}: uses core::arch: {l}");
            for word in l.split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_') {
                let w = word.to_ascii_lowercase();
                let isa = ["avx", "sse", "neon", "vnni"].iter().any(|p| w.starts_with(p) || w.contains(&format!("_{p}")));
                assert!(!isa && w != "unsafe", "{rel}: names `{word}`: {l}");
            }
        }
    }
    assert_eq!(checked, 5, "the ISA-neutral files moved: update this test");
}

/// Every file of `arch/` is one architecture in the registry, under its file's name.
#[test]
fn every_architecture_file_is_registered() {
    let names: BTreeSet<&str> = llm_engine::arch::ARCHITECTURES.iter().map(|a| a.name).collect();
    let mut files: BTreeSet<String> = BTreeSet::new();
    for e in std::fs::read_dir(src().join("arch")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".rs")
            && stem != "mod"
        {
            files.insert(stem.to_string());
        }
    }
    let files: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(names, files);
    assert_eq!(names.len(), llm_engine::arch::ARCHITECTURES.len(), "an architecture registered twice");
}
