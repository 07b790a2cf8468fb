//! What gcc emits, through the interpreter's decoder and dispatch: a C corpus compiled with the
//! flag sets kernels and distributions use, every instruction of the result looked up.
//! Teaches: "runs real code" is a claim about compilers' output; this test makes it checkable.
//!
//! For kernel flags (no SSE registers) every instruction must be one the interpreter
//! executes. For user-space flags, instructions of features CPUID does not offer (SSE, x87)
//! may be missing: a program that uses them without asking CPUID gets #UD, as on such a CPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use iced_x86::{CpuidFeature, Decoder, DecoderOptions, Mnemonic};

/// (what, gcc flags, decoder bitness, user code?)
const FLAG_SETS: &[(&str, &[&str], u32, bool)] = &[
    (
        "kernel -O2 with CET and canaries",
        &[
            "-m64",
            "-O2",
            "-mno-red-zone",
            "-mgeneral-regs-only",
            "-fcf-protection=full",
            "-fstack-protector-strong",
            "-mstack-protector-guard=global",
        ],
        64,
        false,
    ),
    (
        "kernel -Os",
        &["-m64", "-Os", "-mno-red-zone", "-mgeneral-regs-only"],
        64,
        false,
    ),
    (
        "kernel -O0",
        &["-m64", "-O0", "-mgeneral-regs-only"],
        64,
        false,
    ),
    (
        "kernel -O3 frame pointers",
        &[
            "-m64",
            "-O3",
            "-fno-omit-frame-pointer",
            "-mgeneral-regs-only",
            "-fcf-protection=full",
        ],
        64,
        false,
    ),
    (
        "kernel -mcmodel=kernel",
        &[
            "-m64",
            "-O2",
            "-mcmodel=kernel",
            "-mno-red-zone",
            "-mgeneral-regs-only",
            "-fno-pic",
        ],
        64,
        false,
    ),
    (
        "kernel x86-64-v2",
        &["-m64", "-O2", "-march=x86-64-v2", "-mgeneral-regs-only"],
        64,
        false,
    ),
    (
        "32-bit kernel with CET",
        &[
            "-m32",
            "-O2",
            "-mgeneral-regs-only",
            "-fcf-protection=full",
            "-fno-pic",
        ],
        32,
        false,
    ),
    (
        "user -O2 PIE",
        &[
            "-m64",
            "-O2",
            "-fPIE",
            "-fcf-protection=full",
            "-fstack-protector-strong",
            "-DUSER_CODE",
        ],
        64,
        true,
    ),
    (
        "user 32-bit -O2",
        &["-m32", "-O2", "-fPIE", "-DUSER_CODE"],
        32,
        true,
    ),
];

/// Features vmscope's CPUID does not offer (so their instructions fault, as they should).
const NOT_OFFERED: &[CpuidFeature] = &[
    CpuidFeature::SSE,
    CpuidFeature::SSE2,
    CpuidFeature::SSE3,
    CpuidFeature::SSSE3,
    CpuidFeature::SSE4_1,
    CpuidFeature::SSE4_2,
    CpuidFeature::FPU,
];

fn compile(flags: &[&str], dir: &Path) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/compiler_corpus.c");
    let object = dir.join("corpus.o");
    let status = Command::new("gcc")
        .args(flags)
        .args([
            "-ffreestanding",
            "-fno-asynchronous-unwind-tables",
            "-c",
            "-o",
        ])
        .arg(&object)
        .arg(source)
        .status();
    match status {
        Ok(s) if s.success() => Some(object),
        Ok(s) => panic!("gcc {flags:?} failed: {s}"),
        Err(e) => {
            // gcc is installed by scripts/setup.sh; without it this check cannot run.
            panic!("gcc is needed for this test (scripts/setup.sh installs it): {e}")
        }
    }
}

/// The bytes of each code section (`.text` and the hot/cold/startup parts gcc splits off).
fn code_sections(object: &Path, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for section in [".text", ".text.unlikely", ".text.startup", ".text.hot"] {
        let bin = dir.join(format!("section{section}.bin"));
        let ok = Command::new("objcopy")
            .args(["-O", "binary", "-j", section])
            .arg(object)
            .arg(&bin)
            .status()
            .expect("objcopy (binutils) is needed");
        assert!(ok.success(), "objcopy -j {section}");
        let bytes = std::fs::read(&bin).unwrap_or_default();
        if !bytes.is_empty() {
            out.push((section.to_string(), bytes));
        }
    }
    out
}

#[test]
fn the_interpreter_executes_everything_gcc_emits_for_kernels_and_programs() {
    let dir = std::env::temp_dir().join(format!("vmscope-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut problems = Vec::new();
    let mut endbr = 0;
    for (what, flags, bits, user) in FLAG_SETS {
        let object = compile(flags, &dir).unwrap();
        let sections = code_sections(&object, &dir);
        assert!(!sections.is_empty(), "{what}: no code");
        let (mut total, mut faulting) = (0, 0);
        for (section, bytes) in sections {
            let mut decoder = Decoder::new(*bits, &bytes, DecoderOptions::NONE);
            for ins in &mut decoder {
                total += 1;
                let at = ins.ip() as usize;
                let raw = &bytes[at..at + ins.len().max(1)];
                if ins.is_invalid() {
                    problems.push(format!(
                        "{what}: {section}+{at:#x} {raw:02x?} does not decode"
                    ));
                    continue;
                }
                if matches!(ins.mnemonic(), Mnemonic::Endbr64 | Mnemonic::Endbr32) {
                    endbr += 1;
                }
                if emulator::interp::implements(ins.mnemonic()) {
                    continue;
                }
                let features = ins.cpuid_features();
                if *user && features.iter().any(|f| NOT_OFFERED.contains(f)) {
                    faulting += 1;
                    continue;
                }
                problems.push(format!(
                    "{what}: {section}+{at:#x} {:?} {raw:02x?} ({features:?}) is not implemented",
                    ins.mnemonic()
                ));
            }
        }
        println!("{what}: {total} instructions, {faulting} of features CPUID does not offer");
        assert!(total > 200, "{what}: suspiciously little code ({total})");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        endbr > 20,
        "the CET builds should start functions with ENDBR ({endbr})"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
