//! Probes what this host's KVM can run: CPU modes, mode switches made by the guest itself, the
//! instructions PVM's ring-0 interpreter refuses, and what an exit costs.
//! Teaches: "KVM" is not one machine — run this on a VT-x host and on a PVM host and compare.
//!
//! Run with `cargo run -p accel-kvm --example kvm_probe`.
//!
//! Not probed, because it never comes back: on PVM a ring-0 VMCALL leaves the vCPU spinning
//! inside KVM_RUN with RIP on the VMCALL and no exit; only a signal returns control (measured
//! with a raw vCPU and `alarm`). Paravirtual doorbells therefore use port I/O or MMIO.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use accel_kvm::{detect_flavour, kvm_available, KvmEngine};
use common::*;
use emulator::cpu::state::{reg, CpuState, Seg, Segment};
use emulator::{Engine, Exit, Machine, RunLimit};

/// Runs `m` to its end and describes the outcome in one line.
fn outcome(m: &mut Machine) -> String {
    let mut kvm = match KvmEngine::new(m) {
        Ok(k) => k,
        Err(e) => return format!("engine refused: {e}"),
    };
    let started = Instant::now();
    let result = kvm.run(m, RunLimit::UNLIMITED);
    let elapsed = started.elapsed();
    let console = String::from_utf8_lossy(&m.bus.take_console_output()).into_owned();
    match result {
        Ok(Exit::DebugExit { value, .. }) => format!(
            "ok (exit value {value:#x}, console {console:?}, {} exits, {elapsed:.2?})",
            m.stats.total_exits()
        ),
        Ok(other) => format!("{other:?} at rip {:#x} (console {console:?})", m.cpu.rip),
        Err(e) => format!("error: {e}"),
    }
}

fn real_mode_machine(code: &[u8], at: u64) -> Machine {
    let mut m = Machine::new(RAM).unwrap();
    m.ram.write(at, code).unwrap();
    m.cpu = CpuState::reset();
    m.cpu.seg[Seg::Cs as usize] = Segment::real_mode(0, true);
    m.cpu.rip = at;
    m.cpu.gpr[reg::RSP] = 0x7000;
    m
}

fn probe_real_mode() -> String {
    let code = [0xB0, b'R', 0xE6, 0xE9, 0xB0, 0x01, 0xE6, 0xF4];
    outcome(&mut real_mode_machine(&code, 0x7C00))
}

fn probe_real_mode_int_iret() -> String {
    let mut a = Asm::new(0x7C00);
    a.b(&[0xCD, 0x30]) // int 0x30
        .mov_al(0x01)
        .out_al(0xF4)
        .label("handler")
        .mov_al(b'i')
        .out_al(0xE9)
        .b(&[0xCF]); // iret
    let code = a.finish();
    let mut m = real_mode_machine(&code, 0x7C00);
    m.ram.write_le(0x30 * 4, 4, a.addr("handler")).unwrap(); // IVT: offset, segment 0
    outcome(&mut m)
}

fn probe_reset_vector() -> String {
    let mut m = Machine::new(RAM).unwrap();
    let mut rom = vec![0xF4u8; 64 << 10];
    let code = [0xB0, b'B', 0xE6, 0xE9, 0xB0, 0x01, 0xE6, 0xF4];
    let at = rom.len() - 16;
    rom[at..at + code.len()].copy_from_slice(&code);
    m.rom = rom;
    outcome(&mut m)
}

/// Multiboot-style entry (32-bit, paging off) that turns on long mode itself, as hello64 does.
fn probe_multiboot_to_long_mode() -> String {
    let mut a = Asm::new(CODE);
    a.imm32(&[0xB8], PML4 as u32) // mov eax, PML4
        .b(&[0x0F, 0x22, 0xD8]) // mov cr3, eax
        .b(&[0x0F, 0x20, 0xE0]) // mov eax, cr4
        .imm32(&[0x0D], 0x20) // or eax, CR4.PAE
        .b(&[0x0F, 0x22, 0xE0]) // mov cr4, eax
        .imm32(&[0xB9], 0xC000_0080) // mov ecx, IA32_EFER
        .b(&[0x0F, 0x32]) // rdmsr
        .imm32(&[0x0D], 0x100) // or eax, EFER.LME
        .b(&[0x0F, 0x30]) // wrmsr
        .b(&[0x0F, 0x20, 0xC0]) // mov eax, cr0
        .imm32(&[0x0D], 0x8000_0000) // or eax, CR0.PG
        .b(&[0x0F, 0x22, 0xC0]) // mov cr0, eax
        .abs32(&[0xEA], "long64") // jmp far 0x20:long64
        .b(&(SEL_CODE64).to_le_bytes())
        .label("long64")
        .mov_al(b'L')
        .out_al(0xE9)
        .mov_al(0x64)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    write_page_tables(&mut m);
    outcome(&mut m)
}

/// 32-bit paging (no PAE) with one 4 MiB page, switched on by the guest.
fn probe_paging32() -> String {
    let pd = 0x3_0000u32;
    let mut a = Asm::new(CODE);
    a.imm32(&[0xB8], pd) // mov eax, pd
        .b(&[0x0F, 0x22, 0xD8]) // mov cr3, eax
        .b(&[0x0F, 0x20, 0xE0]) // mov eax, cr4
        .imm32(&[0x0D], 0x10) // or eax, CR4.PSE
        .b(&[0x0F, 0x22, 0xE0]) // mov cr4, eax
        .b(&[0x0F, 0x20, 0xC0]) // mov eax, cr0
        .imm32(&[0x0D], 0x8000_0000) // or eax, CR0.PG
        .b(&[0x0F, 0x22, 0xC0]) // mov cr0, eax
        .mov_al(b'P')
        .out_al(0xE9)
        .mov_al(0x32)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.ram.write_le(pd as u64, 4, 0x83).unwrap(); // 4 MiB page at 0, present, writable, PS
    outcome(&mut m)
}

/// PAE paging without long mode, switched on by the guest.
fn probe_pae32() -> String {
    let pdpt = 0x3_0000u32;
    let pd = 0x3_1000u64;
    let mut a = Asm::new(CODE);
    a.imm32(&[0xB8], pdpt) // mov eax, pdpt
        .b(&[0x0F, 0x22, 0xD8]) // mov cr3, eax
        .b(&[0x0F, 0x20, 0xE0]) // mov eax, cr4
        .imm32(&[0x0D], 0x20) // or eax, CR4.PAE
        .b(&[0x0F, 0x22, 0xE0]) // mov cr4, eax
        .b(&[0x0F, 0x20, 0xC0]) // mov eax, cr0
        .imm32(&[0x0D], 0x8000_0000) // or eax, CR0.PG
        .b(&[0x0F, 0x22, 0xC0]) // mov cr0, eax
        .mov_al(b'A')
        .out_al(0xE9)
        .mov_al(0x36)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.ram.write_le(pdpt as u64, 8, pd | 1).unwrap();
    m.ram.write_le(pd, 8, 0x83).unwrap(); // 2 MiB page at 0
    outcome(&mut m)
}

/// IRETD to the same ring in 32-bit protected mode.
fn probe_iretd() -> String {
    let mut a = Asm::new(CODE);
    a.b(&[0x9C]) // pushfd
        .b(&[0x0E]) // push cs
        .abs32(&[0x68], "back") // push back
        .b(&[0xCF]) // iretd
        .label("back")
        .mov_al(0x0D)
        .out_al(0xF4);
    let code = a.finish();
    outcome(&mut protected_machine(&code, CODE, CODE))
}

/// IRETQ to the same ring in long mode.
fn probe_iretq() -> String {
    let mut a = Asm::new(CODE);
    a.b(&[0x48, 0x89, 0xE0]) // mov rax, rsp
        .b(&[0x6A, SEL_DATA as u8]) // push ss
        .b(&[0x50]) // push rax
        .b(&[0x9C]) // pushfq
        .b(&[0x6A, SEL_CODE64 as u8]) // push cs
        .abs32(&[0x68], "back") // push back
        .b(&[0x48, 0xCF]) // iretq
        .label("back")
        .mov_al(0x0E)
        .out_al(0xF4);
    let code = a.finish();
    outcome(&mut long_mode_machine(&code, CODE, CODE))
}

/// A count-down loop of `n` iterations in ring 0, or in ring 3 entered with IRETQ (IOPL = 3,
/// so the ring-3 code may still use OUT to exit). Returns the outcome and guest MIPS.
fn probe_loop(n: u32, ring3: bool) -> String {
    let mut a = Asm::new(CODE);
    if ring3 {
        a.b(&[0x6A, SEL_USER_DATA as u8]) // push ss
            .imm32(&[0x68], 0x6000) // push rsp for ring 3
            .imm32(&[0x68], 0x3002) // push rflags: IOPL 3
            .b(&[0x6A, SEL_USER_CODE64 as u8]) // push cs
            .abs32(&[0x68], "user") // push rip
            .b(&[0x48, 0xCF]); // iretq
    }
    a.label("user")
        .imm32(&[0xB9], n) // mov ecx, n
        .label("spin")
        .b(&[0xFF, 0xC9]) // dec ecx
        .j8(0x75, "spin") // jnz spin
        .mov_al(0x03)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = long_mode_machine(&code, CODE, CODE);
    let started = Instant::now();
    let line = outcome(&mut m);
    let mips = 2.0 * n as f64 / started.elapsed().as_secs_f64() / 1e6;
    format!("{line}; ≈ {mips:.1} M guest instructions/s")
}

/// SYSRET to ring 3 in long mode.
fn probe_sysret() -> String {
    let mut a = Asm::new(CODE);
    a.abs32(&[0xB9], "user") // mov ecx, user (RCX = new RIP)
        .imm32(&[0x41, 0xBB], 0x3002) // mov r11d, 0x3002 (new RFLAGS, IOPL 3)
        .b(&[0x48, 0x0F, 0x07]) // sysretq
        .label("user")
        .mov_al(0x05)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = long_mode_machine(&code, CODE, CODE);
    m.cpu.efer |= emulator::cpu::state::ctl::EFER_SCE;
    // SYSRET to 64-bit code takes CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8.
    m.cpu.msrs.star = ((SEL_USER_CODE64 as u64 - 16) | 3) << 48 | (SEL_CODE32 as u64) << 32;
    outcome(&mut m)
}

/// Port-I/O exits: the round trip guest → KVM → vmscope → guest, from ring 0 or ring 3.
fn probe_exit_cost(ring3: bool) -> String {
    let n = 2000u32;
    let mut a = Asm::new(CODE);
    if ring3 {
        a.b(&[0x6A, SEL_USER_DATA as u8]) // push ss
            .imm32(&[0x68], 0x6000) // push rsp for ring 3
            .imm32(&[0x68], 0x3002) // push rflags: IOPL 3
            .b(&[0x6A, SEL_USER_CODE64 as u8]) // push cs
            .abs32(&[0x68], "user") // push rip
            .b(&[0x48, 0xCF]); // iretq
    }
    a.label("user")
        .imm32(&[0xB9], n) // mov ecx, n
        .label("again")
        .out_al(0x80) // POST port: one exit each
        .b(&[0xFF, 0xC9]) // dec ecx
        .j8(0x75, "again")
        .mov_al(0x00)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = long_mode_machine(&code, CODE, CODE);
    let mut kvm = KvmEngine::new(&m).expect("engine");
    let started = Instant::now();
    let exit = kvm.run(&mut m, RunLimit::UNLIMITED);
    let per_exit = started.elapsed() / (n + 1);
    format!("{exit:?}: {per_exit:.2?} per port-I/O exit (including the bus dispatch)")
}

fn probe_cpuid() -> String {
    // cpuid(0) then exit: the vendor string is in EBX, EDX, ECX of the state we get back.
    let code = [0x31, 0xC0, 0x0F, 0xA2, 0xB0, 0x01, 0xE6, 0xF4];
    let mut m = protected_machine(&code, CODE, CODE);
    let line = outcome(&mut m);
    let mut vendor = Vec::new();
    for r in [reg::RBX, reg::RDX, reg::RCX] {
        vendor.extend_from_slice(&(m.cpu.gpr[r] as u32).to_le_bytes());
    }
    format!("{line}; vendor {:?}", String::from_utf8_lossy(&vendor))
}

/// A probe: its name and the function that runs it and describes the outcome.
type Probe = (&'static str, fn() -> String);

fn main() {
    if let Err(why) = kvm_available() {
        println!("no KVM here: {why}");
        return;
    }
    println!("KVM flavour: {}", detect_flavour());
    let m = Machine::new(RAM).unwrap();
    match KvmEngine::new(&m) {
        Ok(k) => k.notes().iter().for_each(|n| println!("note: {n}")),
        Err(e) => println!("engine: {e}"),
    }
    let probes: [Probe; 14] = [
        ("real mode, OUT", probe_real_mode),
        ("real mode, INT + IRET", probe_real_mode_int_iret),
        ("reset vector in ROM (F000:FFF0)", probe_reset_vector),
        (
            "Multiboot entry → long mode by the guest",
            probe_multiboot_to_long_mode,
        ),
        ("32-bit paging by the guest", probe_paging32),
        ("PAE paging (no long mode) by the guest", probe_pae32),
        ("IRETD, ring 0 → ring 0", probe_iretd),
        ("IRETQ, ring 0 → ring 0", probe_iretq),
        ("SYSRETQ to ring 3", probe_sysret),
        ("CPUID", probe_cpuid),
        ("loop of 200 k in ring 0", || probe_loop(200_000, false)),
        ("loop of 50 M in ring 3 (via IRETQ)", || {
            probe_loop(50_000_000, true)
        }),
        ("exit cost, OUT from ring 0", || probe_exit_cost(false)),
        ("exit cost, OUT from ring 3", || probe_exit_cost(true)),
    ];
    for (name, probe) in probes {
        println!("{name:<42} {}", probe());
    }
}
