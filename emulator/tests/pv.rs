//! Paravirtualization on the emulated engines: CPUID discovery, the hypercall doors, batched
//! page-table updates against the trapped path, and kvmclock.
//! Teaches: a PV interface is only trustworthy if it is invisible when off, exact when on, and
//! leaves the VMM's shadow in the very state the trapping path would.

mod support;

use emulator::cpu::reg;
use emulator::interp::Interpreter;
use emulator::pv::{abi, kvmclock};
use emulator::{Engine, Exit, Machine, RunLimit};
use support::assemble;

const EXIT: &str = "mov al, 0x21\nout 0xF4, al\n";
const DONE: Exit = Exit::DebugExit {
    value: 0x21,
    status: 0x43,
};

fn long_mode(source: &str, pv: bool) -> Machine {
    let mut m = support::long_mode(&assemble(64, 0x10000, &format!("{source}\n{EXIT}")));
    m.pv = pv;
    m
}

#[test]
fn cpuid_shows_the_hypervisor_only_with_pv_on() {
    let source = r#"
        mov eax, 1
        cpuid
        mov r8, rcx
        mov eax, 0x40000000
        cpuid
        mov r9, rbx
        mov r10, rcx
        mov r11, rdx
        mov r12, rax
        mov eax, 0x40000101
        cpuid
        mov r13, rax
        mov r14, rbx
    "#;
    let mut on = long_mode(source, true);
    assert_eq!(support::run(&mut on), DONE);
    let g = on.cpu.gpr;
    assert_ne!(g[reg::R8] & (1 << 31), 0, "hypervisor bit");
    let sig: Vec<u8> = [g[reg::R9], g[reg::R10], g[reg::R11]]
        .iter()
        .flat_map(|v| (*v as u32).to_le_bytes())
        .collect();
    assert_eq!(&sig, abi::KVM_SIGNATURE);
    assert_eq!(g[reg::R12], 0x4000_0001);
    assert_eq!(
        g[reg::R13] as u32,
        abi::F_HYPERCALL | abi::F_MMU_UPDATE | abi::F_CONSOLE
    );
    assert_eq!(g[reg::R14], abi::HYPERCALL_PORT as u64);

    let mut off = long_mode(source, false);
    assert_eq!(support::run(&mut off), DONE);
    let g = off.cpu.gpr;
    assert_eq!(g[reg::R8] & (1 << 31), 0, "no hypervisor bit");
    // Like bare Intel hardware: a leaf above the maximum repeats the highest basic leaf.
    let [a, b, c, d] = emulator::cpu::cpuid::cpuid(emulator::cpu::cpuid::MAX_BASIC_LEAF, 0);
    assert_eq!(
        [g[reg::R12], g[reg::R9], g[reg::R10], g[reg::R11]],
        [a, b, c, d].map(u64::from)
    );
}

#[test]
fn the_port_door_and_vmcall_both_reach_the_dispatcher() {
    let source = r#"
        mov eax, 0
        mov dx, 0x5650
        in eax, dx
        mov r8, rax
        mov eax, 99
        in eax, dx
        mov r9, rax
        mov eax, 0
        vmcall
        mov r10, rax
    "#;
    let mut m = long_mode(source, true);
    assert_eq!(support::run(&mut m), DONE);
    assert_eq!(m.cpu.gpr[reg::R8], 1, "HC_VERSION");
    assert_eq!(m.cpu.gpr[reg::R9], (-abi::ENOSYS) as u32 as u64);
    assert_eq!(m.cpu.gpr[reg::R10], 1, "the same call through VMCALL");
    assert_eq!(m.stats.hypercalls[&("version", "port")], 1);
    assert_eq!(m.stats.hypercalls[&("version", "vmcall")], 1);
    assert_eq!(m.stats.hypercalls[&("unknown", "port")], 1);
    let report = m.stats.report(&m.bus.stats);
    assert!(report.contains("via vmcall"), "{report}");

    // Off: the port is an empty bus (all ones) and VMCALL is #UD, as on hardware without VT-x.
    let mut off = long_mode(
        "mov eax, 0\nmov dx, 0x5650\nin eax, dx\nmov r8, rax\nvmcall",
        false,
    );
    let exit = Interpreter::new()
        .run(&mut off, RunLimit::instructions(100))
        .unwrap();
    assert_ne!(exit, DONE);
    assert_eq!(off.cpu.gpr[reg::R8], 0xFFFF_FFFF);
    assert_eq!(off.stats.exceptions.get("#UD"), Some(&1));
    assert!(off.stats.hypercalls.is_empty());
}

/// Sixteen mapped pages at 0x80000.. (PT entries at 0x4000 + 0x80*8 ..) are touched, then
/// remapped to frames 0x150000.. and read again: by plain stores + INVLPG (`pv = false`) or by
/// one HC_MMU_UPDATE batch (`pv = true`). R8 = the sum read afterwards.
fn remap_sixteen_pages(pv: bool) -> (Machine, Interpreter) {
    let remap = if pv {
        r#"
        mov edi, 0x90000                # the batch: 16 PTE writes, then 16 INVLPGs
        xor ecx, ecx
    2:  lea rax, [rcx * 8 + 0x4400]
        mov [rdi], rax                  # target (op 0 = write PTE)
        lea rax, [rcx + 0x150]
        shl rax, 12
        or rax, 3
        mov [rdi + 8], rax
        add rdi, 16
        inc ecx
        cmp ecx, 16
        jb 2b
        xor ecx, ecx
    3:  mov qword ptr [rdi], 1          # op 1 = INVLPG
        lea rax, [rcx + 0x80]
        shl rax, 12
        mov [rdi + 8], rax
        add rdi, 16
        inc ecx
        cmp ecx, 16
        jb 3b
        mov eax, 1
        mov ebx, 0x90000
        mov ecx, 32
        mov dx, 0x5650
        in eax, dx
        mov r9, rax
        "#
    } else {
        r#"
        xor ecx, ecx
    2:  lea rax, [rcx + 0x150]
        shl rax, 12
        or rax, 3
        mov [rcx * 8 + 0x4400], rax     # a store into a traced page-table frame
        lea rax, [rcx + 0x80]
        shl rax, 12
        invlpg [rax]
        inc ecx
        cmp ecx, 16
        jb 2b
        "#
    };
    let source = format!(
        r#"
        xor ecx, ecx                    # warm the shadow for all sixteen pages
    1:  lea rax, [rcx + 0x80]
        shl rax, 12
        mov rbx, [rax]
        inc ecx
        cmp ecx, 16
        jb 1b
        {remap}
        xor r8d, r8d
        xor ecx, ecx
    4:  lea rax, [rcx + 0x80]
        shl rax, 12
        add r8, [rax]
        inc ecx
        cmp ecx, 16
        jb 4b
        "#
    );
    let mut m = long_mode(&source, true);
    for i in 0..16u64 {
        m.ram.write_le(0x150000 + i * 0x1000, 8, i + 1).unwrap();
    }
    let mut interp = Interpreter::new();
    let exit = interp.run(&mut m, RunLimit::instructions(10_000)).unwrap();
    assert_eq!(exit, DONE);
    (m, interp)
}

#[test]
fn a_batch_leaves_the_shadow_as_the_trapped_stores_do_without_the_traps() {
    let (trapped, trapped_mmu) = remap_sixteen_pages(false);
    let (batched, batched_mmu) = remap_sixteen_pages(true);
    assert_eq!(
        trapped.cpu.gpr[reg::R8],
        (1..=16).sum::<u64>(),
        "new frames read"
    );
    assert_eq!(batched.cpu.gpr[reg::R8], (1..=16).sum::<u64>());
    assert_eq!(batched.cpu.gpr[reg::R9], 32, "all requests applied");
    // The same guest page tables and the same shadow entries afterwards.
    let tables = |m: &Machine| m.ram.read_le(0x4400, 8).unwrap();
    assert_eq!(tables(&trapped), tables(&batched));
    let remapped = |i: &Interpreter| -> Vec<_> {
        let spaces = i.mmu().spaces();
        assert_eq!(spaces.len(), 1);
        spaces[0]
            .entries
            .iter()
            .filter(|e| (0x80000..0x90000).contains(&e.linear))
            .cloned()
            .collect()
    };
    let (a, b) = (remapped(&trapped_mmu), remapped(&batched_mmu));
    assert_eq!(a.len(), 16, "{a:?}");
    assert_eq!(a, b);
    // ... but the batch took no write-protect traps: it told the shadow directly.
    assert!(
        trapped.stats.mmu.pt_write_traps >= 16,
        "{:?}",
        trapped.stats.mmu
    );
    assert_eq!(batched.stats.mmu.pt_write_traps, 0);
    assert_eq!(batched.stats.mmu.pv_pte_writes, 16);
    assert_eq!(batched.stats.mmu.pv_traps_avoided, 16);
    assert_eq!(batched.stats.mmu.pv_invlpg, 16);
    assert_eq!(batched.stats.hypercalls[&("mmu_update", "port")], 1);
}

#[test]
fn the_batch_runs_the_same_on_the_translator() {
    let (_, _) = remap_sixteen_pages(true);
    // support::run compares interp and bt from the same start, state, RAM and count.
    let mut m = long_mode(
        "mov eax, 1\nmov ebx, 0x90000\nmov ecx, 1\nmov dx, 0x5650\nin eax, dx\nmov r8, [0x80000]",
        true,
    );
    m.ram.write_le(0x90000, 8, 0x4400).unwrap();
    m.ram.write_le(0x90008, 8, 0x150003).unwrap();
    m.ram.write_le(0x150000, 8, 0xABCD).unwrap();
    assert_eq!(support::run(&mut m), DONE);
    assert_eq!(m.cpu.gpr[reg::R8], 0xABCD);
}

#[test]
fn kvmclock_on_the_interpreter_counts_virtual_nanoseconds() {
    // Register the structure at 0x8000, read it twice 1000 instructions apart.
    let source = r#"
        mov ecx, 0x4b564d01
        mov eax, 0x8001
        xor edx, edx
        wrmsr
        mov r8, [0x8010]                # system_time
        mov r9, [0x8008]                # tsc_timestamp
        mov ecx, 1000
    1:  loop 1b
        rdtsc
        shl rdx, 32
        or rax, rdx
        mov r10, rax
    "#;
    let mut m = long_mode(source, true);
    assert_eq!(support::run(&mut m), DONE);
    let info = kvmclock::read(&m.ram, 0x8000).unwrap();
    assert_eq!(info.version % 2, 0);
    assert_eq!(info.system_time, m.cpu.gpr[reg::R8]);
    assert_eq!(info.tsc_timestamp, m.cpu.gpr[reg::R9]);
    // 1000 LOOP iterations later, kvmclock says 1000-odd ns more: one instruction, one ns.
    let elapsed = info.time_at(m.cpu.gpr[reg::R10]) - info.system_time;
    assert!((1000..1010).contains(&elapsed), "{elapsed}");
    // Without PV the MSR does not exist.
    let mut off = long_mode(source, false);
    Interpreter::new()
        .run(&mut off, RunLimit::instructions(100))
        .unwrap();
    assert_eq!(off.stats.exceptions.get("#GP"), Some(&1));
}
