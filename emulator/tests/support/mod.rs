//! Test support: assemble small guest programs with GNU as at test time.
//! Teaches: nothing for students; it keeps interpreter tests readable as assembly.

use std::process::Command;

/// Assembles Intel-syntax `source` for `bits` (16, 32 or 64) into a flat binary based at `org`.
pub fn assemble(bits: u32, org: u64, source: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "vmscope-asm-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.s");
    let obj = dir.join("t.o");
    let bin = dir.join("t.bin");
    let code = match bits {
        16 => ".code16",
        32 => ".code32",
        _ => ".code64",
    };
    std::fs::write(&src, format!(".intel_syntax noprefix\n{code}\n{source}\n")).unwrap();
    let as_arch = if bits == 64 { "--64" } else { "--32" };
    let ok = Command::new("as")
        .args([as_arch, "-o"])
        .arg(&obj)
        .arg(&src)
        .status()
        .expect("GNU as is needed for these tests (Debian package binutils)");
    assert!(ok.success(), "assembling failed:\n{source}");
    let emul = if bits == 64 { "elf_x86_64" } else { "elf_i386" };
    let ok = Command::new("ld")
        .args(["-m", emul, "--oformat", "binary", "-e", "0", "-Ttext"])
        .arg(format!("{org:#x}"))
        .arg("-o")
        .arg(&bin)
        .arg(&obj)
        .status()
        .unwrap();
    assert!(ok.success(), "linking failed");
    let bytes = std::fs::read(&bin).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
