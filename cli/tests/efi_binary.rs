//! The UEFI binary really uses hardware floating point: SSE/AVX instructions in its code and
//! no soft-float helper linked in (the built-in x86_64-unknown-uefi target is soft-float and
//! would turn every f32 operation into a call to __mulsf3 / __addsf3 / fmaf ...).

mod common;

use common::*;
use std::process::Command;

#[test]
fn efi_has_sse_and_avx_code_and_no_soft_float_helpers() {
    let efi = efi();
    let out = Command::new("objdump").arg("-d").arg(&efi).output().expect("objdump (binutils) is needed: make setup installs it");
    assert!(out.status.success(), "objdump failed: {}", String::from_utf8_lossy(&out.stderr));
    let asm = String::from_utf8_lossy(&out.stdout);
    let count = |mnemonics: &[&str]| {
        asm.lines().filter(|l| l.split('\t').nth(2).is_some_and(|ins| mnemonics.iter().any(|m| ins.starts_with(m)))).count()
    };
    let sse = count(&["mulss", "addss", "mulps", "addps", "subss", "divss", "sqrtss", "maxss"]);
    let fma = count(&["vfmadd"]);
    assert!(sse > 100, "only {sse} SSE float instructions in {}: built soft-float?", efi.display());
    assert!(fma > 10, "only {fma} FMA instructions: the AVX2 kernels are missing");
    // The linker map lists every symbol in the image: no soft-float helper may be there.
    let map = efi.with_file_name("llm-baremetal.map");
    let map_text = std::fs::read_to_string(&map).unwrap_or_else(|_| panic!("{} missing: build with `make efi`", map.display()));
    assert!(map_text.contains("efi_main"), "the map file does not describe this binary");
    for helper in [
        "__addsf3",
        "__subsf3",
        "__mulsf3",
        "__divsf3",
        "__addsf3vfp",
        "__gesf2",
        "__ltsf2",
        "__fixsfsi",
        "__floatsisf",
        "__adddf3",
        "__muldf3",
    ] {
        assert!(!map_text.contains(helper), "soft-float helper {helper} is linked into {}", efi.display());
    }
}
