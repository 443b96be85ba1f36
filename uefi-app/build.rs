//! Optional model embedding and link settings for the UEFI binary.
//!
//! LLM_EMBED_MODEL=path/to/model.bin builds the checkpoint into the .efi, so the single file
//! boots on its own (used when the boot volume has no \model.bin).

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embedded_model)");
    println!("cargo::rerun-if-env-changed=LLM_EMBED_MODEL");
    if let Ok(path) = std::env::var("LLM_EMBED_MODEL")
        && !path.is_empty()
    {
        println!("cargo::rerun-if-changed={path}");
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_model.bin");
        std::fs::copy(&path, &out).unwrap_or_else(|e| panic!("LLM_EMBED_MODEL={path}: {e}"));
        println!("cargo::rustc-cfg=embedded_model");
    }
    // lld's default image base (0x1_4000_0000) splits high memory and makes multi-GiB page
    // allocations fail; a low base leaves it whole. The map file lets tests find symbols.
    println!("cargo::rustc-link-arg-bins=/BASE:0x800000");
    // OUT_DIR is <target>/<triple>/<profile>/build/<pkg>-<hash>/out: the map goes beside the .efi.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let map = out_dir.ancestors().nth(3).expect("OUT_DIR layout").join("llm-baremetal.map");
    println!("cargo::rustc-link-arg-bins=/MAP:{}", map.display());
}
