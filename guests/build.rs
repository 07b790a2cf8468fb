//! build.rs — assembles and links the guest programs in `asm/` with GNU `as` and `ld`.
//! Teaches: a guest image is just bytes a toolchain produced; rebuilding them from source on
//! every change keeps the images, their comments and the tests that check them in step.
//!
//! Every image is one `.S` file (which may `.include` shared pieces), assembled as 32-bit
//! code (`as --32`; 16- and 64-bit parts switch with `.code16`/`.code64`) and linked with one
//! of the scripts in `link/`. Outputs go to `OUT_DIR`; `src/lib.rs` embeds them.
//!
//! The tools can be overridden for hosts whose native binutils are not x86 ones:
//! `VMSCOPE_AS=x86_64-linux-gnu-as VMSCOPE_LD=x86_64-linux-gnu-ld cargo build`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How an object file becomes an image.
#[derive(Clone, Copy)]
enum Link {
    /// ELF32 at 1 MiB: the loader reads the ELF program headers.
    MultibootElf,
    /// Flat binary at 1 MiB: the Multiboot header's a.out-kludge fields say where it goes.
    MultibootFlat,
    /// Flat 64 KiB firmware ROM, addresses = offsets in segment F000.
    Rom,
    /// Flat boot sector(s) at 0x7C00 for a PC BIOS: whole 512-byte sectors, signed 0x55AA.
    BootDisk,
}

/// One guest image: the file to produce and the source it comes from.
struct Image {
    output: &'static str,
    source: &'static str,
    link: Link,
}

const IMAGES: &[Image] = &[
    image("hello-real.rom", "hello-real.S", Link::Rom),
    // vmscope's boot firmware: real mode to a Multiboot kernel (`--boot firmware`).
    image("firmware.rom", "firmware.S", Link::Rom),
    image("hello32.elf", "hello32.S", Link::MultibootElf),
    image("sieve32.elf", "sieve32.S", Link::MultibootElf),
    image("testdev.elf", "testdev.S", Link::MultibootElf),
    image("hello-aout.bin", "hello-aout.S", Link::MultibootFlat),
    image("hello64.elf", "hello64.S", Link::MultibootElf),
    image("demo.elf", "demo.S", Link::MultibootElf),
    image("triple-fault.elf", "triple-fault.S", Link::MultibootElf),
    image("ud.elf", "ud.S", Link::MultibootElf),
    image("paging-matrix.elf", "paging-matrix.S", Link::MultibootElf),
    image("platform.elf", "platform.S", Link::MultibootElf),
    image("smc.elf", "smc.S", Link::MultibootElf),
    image("jit.elf", "jit.S", Link::MultibootElf),
    image("sensitive.elf", "sensitive.S", Link::MultibootElf),
    // The teaching kernel: one unit of many files in kernel/ (found through `-I kernel/`).
    image("kernel.elf", "../kernel/kernel.S", Link::MultibootElf),
    // The BIOS boot loader that starts a Multiboot kernel from a disk image (for Bochs).
    image("bootdisk.bin", "bootdisk.S", Link::BootDisk),
];

/// A guest written in C (`c/`): one C file compiled by gcc with the flags a distribution uses,
/// started by `c/boot64.S` (Multiboot entry, long mode, `call kmain`).
struct CImage {
    output: &'static str,
    source: &'static str,
}

const C_IMAGES: &[CImage] = &[CImage {
    output: "hardened.elf",
    source: "hardened.c",
}];

/// How Debian's gcc builds hardened code (CET's ENDBR64/NOTRACK, stack canaries), plus what a
/// kernel needs: no red zone, no SSE registers, no PIC, no libc.
const GCC_FLAGS: &[&str] = &[
    "-m64",
    "-O2",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-mno-red-zone",
    "-mgeneral-regs-only",
    "-fcf-protection=full",
    "-fstack-protector-strong",
    "-mstack-protector-guard=global",
    "-fno-asynchronous-unwind-tables",
];

const fn image(output: &'static str, source: &'static str, link: Link) -> Image {
    Image {
        output,
        source,
        link,
    }
}

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let asm_dir = manifest_dir.join("asm");
    let kernel_dir = manifest_dir.join("kernel");
    let link_dir = manifest_dir.join("link");

    // Rebuild when any source, include or linker script changes (or one is added).
    for dir in [&asm_dir, &link_dir, &kernel_dir] {
        println!("cargo:rerun-if-changed={}", dir.display());
        for entry in fs::read_dir(dir)
            .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", dir.display())))
        {
            let path = entry.expect("directory entry").path();
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=VMSCOPE_AS");
    println!("cargo:rerun-if-env-changed=VMSCOPE_LD");

    let assembler = env::var("VMSCOPE_AS").unwrap_or_else(|_| "as".to_string());
    let linker = env::var("VMSCOPE_LD").unwrap_or_else(|_| "ld".to_string());
    require_tool(&assembler, "VMSCOPE_AS", "assembler", "as");
    require_tool(&linker, "VMSCOPE_LD", "linker", "ld");

    for image in IMAGES {
        let source = asm_dir.join(image.source);
        let object = out_dir.join(format!("{}.o", image.output));
        let output = out_dir.join(image.output);

        let mut assemble = Command::new(&assembler);
        assemble
            .arg("--32")
            .arg("--fatal-warnings")
            .arg("-I")
            .arg(&asm_dir)
            .arg("-I")
            .arg(&kernel_dir)
            .arg("-o")
            .arg(&object)
            .arg(&source);
        run(assemble, image.output);

        let script = match image.link {
            Link::MultibootElf | Link::MultibootFlat => "multiboot.ld",
            Link::Rom => "rom.ld",
            Link::BootDisk => "bootdisk.ld",
        };
        let mut link = Command::new(&linker);
        link.args(["-m", "elf_i386", "--fatal-warnings", "--build-id=none"])
            .args(["-z", "noexecstack", "-z", "max-page-size=0x1000"])
            .arg("-T")
            .arg(link_dir.join(script));
        if let Link::MultibootFlat = image.link {
            link.args(["--oformat", "binary"]);
        }
        link.arg("-o").arg(&output).arg(&object);
        run(link, image.output);

        check_output(&output, image);
    }
    build_c_images(&manifest_dir, &out_dir, &assembler, &linker);
}

/// gcc → ELF64 linked at 1 MiB with `boot64.S` → ELF32 (objcopy), which Multiboot loaders take.
fn build_c_images(manifest_dir: &Path, out_dir: &Path, assembler: &str, linker: &str) {
    let c_dir = manifest_dir.join("c");
    println!("cargo:rerun-if-changed={}", c_dir.display());
    for entry in fs::read_dir(&c_dir).unwrap_or_else(|e| fail(format!("cannot read c/: {e}"))) {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("entry").path().display()
        );
    }
    println!("cargo:rerun-if-env-changed=VMSCOPE_CC");
    println!("cargo:rerun-if-env-changed=VMSCOPE_OBJCOPY");
    let compiler = env::var("VMSCOPE_CC").unwrap_or_else(|_| "gcc".to_string());
    let objcopy = env::var("VMSCOPE_OBJCOPY").unwrap_or_else(|_| "objcopy".to_string());
    require_tool(&compiler, "VMSCOPE_CC", "C compiler", "gcc");
    require_tool(&objcopy, "VMSCOPE_OBJCOPY", "objcopy", "objcopy");

    let boot = out_dir.join("boot64.o");
    let mut assemble = Command::new(assembler);
    assemble
        .args(["--64", "--fatal-warnings", "-I"])
        .arg(manifest_dir.join("asm"))
        .arg("-o")
        .arg(&boot)
        .arg(c_dir.join("boot64.S"));
    run(assemble, "boot64.o");
    for image in C_IMAGES {
        let object = out_dir.join(format!("{}.o", image.output));
        let elf64 = out_dir.join(format!("{}.64", image.output));
        let output = out_dir.join(image.output);
        let mut compile = Command::new(&compiler);
        compile
            .args(GCC_FLAGS)
            .arg("-c")
            .arg(c_dir.join(image.source))
            .arg("-o")
            .arg(&object);
        run(compile, image.output);
        let mut link = Command::new(linker);
        link.args([
            "-m",
            "elf_x86_64",
            "-nostdlib",
            "--fatal-warnings",
            "--build-id=none",
        ])
        .args(["-z", "noexecstack", "-z", "max-page-size=0x1000", "-T"])
        .arg(manifest_dir.join("link/multiboot.ld"))
        .arg("-o")
        .arg(&elf64)
        .arg(&boot)
        .arg(&object);
        run(link, image.output);
        let mut convert = Command::new(&objcopy);
        convert.args(["-O", "elf32-i386"]).arg(&elf64).arg(&output);
        run(convert, image.output);
    }
}

/// Stops the build with a message (cargo shows a build script's stderr when it fails).
fn fail(message: String) -> ! {
    eprintln!("\nguests: {message}\n");
    std::process::exit(1);
}

/// Stops the build with a clear message if a tool cannot be started at all.
fn require_tool(tool: &str, variable: &str, what: &str, short: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(format!(
            "`{tool} --version` failed ({}); the guest programs need an x86 GNU {what}.\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => fail(format!(
            "cannot run the {what} `{tool}`: {e}.\n\
             The guest programs are built from source with GNU `as` and `ld` (x86 binutils).\n\
             Install them (Debian/Ubuntu: `apt-get install binutils`; on non-x86 hosts:\n\
             `binutils-x86-64-linux-gnu`) or point {variable} at one: {variable}=x86_64-linux-gnu-{short}"
        )),
    }
}

/// Runs one tool invocation and stops the build with its output if it fails.
fn run(mut command: Command, image: &str) {
    let shown = format!("{command:?}");
    match command.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(format!(
            "building {image} failed ({}):\n  {shown}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => fail(format!("cannot run {shown}: {e}")),
    }
}

/// Cheap sanity checks right after linking, so a broken layout fails the build, not a boot.
fn check_output(output: &Path, image: &Image) {
    let bytes =
        fs::read(output).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", output.display())));
    match image.link {
        Link::Rom if bytes.len() != 0x10000 => fail(format!(
            "{} is {} bytes; a ROM must be exactly 64 KiB (see link/rom.ld)",
            image.output,
            bytes.len()
        )),
        Link::BootDisk
            if !bytes.len().is_multiple_of(512) || bytes.get(510..512) != Some(&[0x55, 0xAA]) =>
        {
            fail(format!(
                "{} is {} bytes; a boot loader must be whole 512-byte sectors with 0x55AA at \
                 offset 510 (see link/bootdisk.ld)",
                image.output,
                bytes.len()
            ))
        }
        _ if bytes.is_empty() => fail(format!("{} is empty", image.output)),
        _ => {}
    }
}
