//! Multiboot kernels where QEMU loads them: linked at 0x8000, or with ELF headers at 0xff000.
//! Teaches: the loader must place its information where the kernel is not, then the kernel runs.
//!
//! Each kernel is an ELF32 built byte by byte here: it prints the command line it finds through
//! EBX (Multiboot `cmdline`, offset 16) to the serial port, then writes 0 to isa-debug-exit.
//! It runs on the interpreter and the binary translator (`support::run`), and — when
//! `qemu-system-x86_64` is installed — the 0xff000 one on QEMU's own loader, which prints the same.

mod support;

use std::process::Command;

use emulator::cpu::reg;
use emulator::machine::loader::{load_multiboot, BOOTLOADER_MAGIC, INFO_ADDR};
use emulator::{Exit, Machine};

/// `mov esi,[ebx+16]; mov dx,0x3f8; 1: lodsb; test al,al; jz 2f; out dx,al; jmp 1b;
/// 2: mov al,0; out 0xf4,al; hlt`
const PRINT_CMDLINE: [u8; 20] = [
    0x8B, 0x73, 0x10, 0x66, 0xBA, 0xF8, 0x03, 0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xB0,
    0x00, 0xE6, 0xF4, 0xF4,
];

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// An ELF32 i386 executable: ELF header, program headers, the Multiboot header at 0x100, the code
/// at file offset 0x1000. `loads` are (file offset, paddr, filesz, memsz).
fn kernel(entry: u32, loads: &[(u32, u32, u32, u32)]) -> Vec<u8> {
    let mut f = vec![0u8; 0x1000];
    f[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
    f[16..20].copy_from_slice(&[2, 0, 3, 0]); // ET_EXEC, EM_386
    put32(&mut f, 20, 1);
    put32(&mut f, 24, entry);
    put32(&mut f, 28, 52);
    f[40..46].copy_from_slice(&[52, 0, 32, 0, loads.len() as u8, 0]);
    for (i, &(offset, paddr, filesz, memsz)) in loads.iter().enumerate() {
        let ph = 52 + 32 * i;
        for (k, v) in [1, offset, paddr, paddr, filesz, memsz, 7, 0x1000]
            .iter()
            .enumerate()
        {
            put32(&mut f, ph + 4 * k, *v);
        }
    }
    let flags = 1 << 1; // memory information
    put32(&mut f, 0x100, 0x1BAD_B002);
    put32(&mut f, 0x104, flags);
    put32(&mut f, 0x108, 0u32.wrapping_sub(0x1BAD_B002 + flags));
    f.extend_from_slice(&PRINT_CMDLINE);
    f.resize(0x1000 + 0x100, 0);
    f
}

/// Linked at 1 MiB the way GNU ld lays it out: the headers' page loads at 0xff000.
fn headers_at_0xff000() -> Vec<u8> {
    kernel(
        0x10_0000,
        &[
            (0, 0xF_F000, 0x1000, 0x1000),
            (0x1000, 0x10_0000, 0x100, 0x2000),
        ],
    )
}

/// Linked at 0x8000 (where vmscope used to put its information), with `memsz - 0x100` of bss.
fn linked_at_0x8000(memsz: u32) -> Vec<u8> {
    kernel(0x8000, &[(0x1000, 0x8000, 0x100, memsz)])
}

/// Boots on vmscope (interp, then bt from the same state): the exit and the serial output.
fn vmscope(image: &[u8], cmdline: &str) -> (Exit, String, u64) {
    let mut m = Machine::new(32 << 20).unwrap();
    let loaded = load_multiboot(&mut m, "k.elf", image, cmdline).unwrap();
    assert_eq!(m.cpu.gpr[reg::RAX], u64::from(BOOTLOADER_MAGIC));
    let exit = support::run(&mut m);
    let out = String::from_utf8_lossy(&m.bus.take_serial_output()).into_owned();
    (exit, out, loaded.info_addr.unwrap())
}

#[test]
fn a_kernel_linked_at_0x8000_reads_its_command_line() {
    let (exit, out, info) = vmscope(&linked_at_0x8000(0x3000), "hello from 0x8000");
    assert!(matches!(exit, Exit::DebugExit { value: 0, .. }), "{exit:?}");
    assert_eq!(out, "hello from 0x8000");
    assert!(
        !(0x8000..0xB000).contains(&info) && info != INFO_ADDR,
        "{info:#x}"
    );
}

#[test]
fn an_elf_with_its_headers_at_0xff000_loads_and_runs() {
    let (exit, out, _) = vmscope(&headers_at_0xff000(), "root=/dev/vda");
    assert!(matches!(exit, Exit::DebugExit { value: 0, .. }), "{exit:?}");
    assert_eq!(out, "root=/dev/vda");
}

/// QEMU's output for the kernel, or `None` (with the reason printed) when QEMU is absent.
fn qemu(image: &[u8], cmdline: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("vmscope-mbplace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("k{}.elf", image.len() ^ image[0x40] as usize));
    std::fs::write(&path, image).unwrap();
    let out = Command::new("timeout")
        .args([
            "20",
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-display",
            "none",
        ])
        .args([
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-m",
            "32M",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel"])
        .arg(&path)
        .args(["-append", cmdline])
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    match out {
        Ok(o) if o.status.code() == Some(1) => {
            Some(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Ok(o) if o.status.code() == Some(127) => {
            eprintln!("skipped: qemu-system-x86_64 is not installed");
            None
        }
        Ok(o) => panic!(
            "QEMU ended with {:?}: {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            eprintln!("skipped: cannot run timeout/qemu-system-x86_64: {e}");
            None
        }
    }
}

/// Only the 0xff000 kernel is compared: QEMU 7.2 keeps its information structure at a fixed
/// 0x9000 (`MULTIBOOT_STRUCT_ADDR` in hw/i386/multiboot.c) and puts the command line right after
/// the kernel, so for a kernel at 0x8000–0x9000 the structure lands on the command line (seen:
/// QEMU's kernel printed two garbage bytes). vmscope places both clear of the kernel.
#[test]
fn qemu_prints_the_same_for_the_0xff000_kernel() {
    let (image, cmdline) = (headers_at_0xff000(), "root=/dev/vda");
    let Some(out) = qemu(&image, cmdline) else {
        return;
    };
    // QEMU's Multiboot command line starts with the kernel's file name, then a space.
    let tail = out.split_once(' ').map(|(_, t)| t).unwrap_or("");
    assert_eq!(tail, vmscope(&image, cmdline).1, "QEMU printed {out:?}");
}
