//! The MMU through the interpreter: MOV to CR3 with PCIDs, INVPCID, INVLPG, STAC/CLAC and a
//! guest that rewrites its own page table, checked by what the guest reads and by the counters.
//! Teaches: the paging instructions are the guest's only handles on the shadow; each one must
//! leave the shadow exactly as coherent as the architecture promises.

mod support;

use emulator::cpu::{flags, reg};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};
use support::assemble;

fn run(m: &mut Machine) -> Exit {
    Interpreter::new()
        .run(m, RunLimit::instructions(100_000))
        .unwrap()
}

#[test]
fn a_guest_remapping_its_own_page_sees_the_new_frame_with_or_without_invlpg() {
    let code = assemble(
        64,
        0x10000,
        r#"
        mov dword ptr [0x80000], 0x1111
        mov dword ptr [0x81000], 0x2222
        mov eax, [0x80000]            # warm the shadow: 0x80000 -> frame 0x80000
        mov qword ptr [0x4000 + 0x80 * 8], 0x81003   # remap it to frame 0x81000, no INVLPG
        mov ebx, [0x80000]            # 0x2222: write-protect tracing caught the PTE write
        mov qword ptr [0x4000 + 0x80 * 8], 0x80003
        invlpg [0x80000]
        mov ecx, [0x80000]            # 0x1111
        mov eax, 0x10
        out 0xF4, eax
        "#,
    );
    let mut m = support::long_mode(&code);
    assert!(matches!(run(&mut m), Exit::DebugExit { value: 0x10, .. }));
    assert_eq!(m.cpu.gpr[reg::RBX] & 0xFFFF_FFFF, 0x2222);
    assert_eq!(m.cpu.gpr[reg::RCX] & 0xFFFF_FFFF, 0x1111);
    let s = m.stats.mmu;
    assert!(s.pt_write_traps >= 2 && s.inval_pt_write >= 1, "{s:?}");
}

#[test]
fn pcids_invpcid_and_stac_clac_through_the_interpreter() {
    let code = assemble(
        64,
        0x10000,
        r#"
        mov rax, cr4
        or eax, 1 << 17               # CR4.PCIDE (CR3[11:0] is 0)
        mov cr4, rax
        mov eax, 0x5007               # CR3 0x5000 with PCID 7
        mov cr3, rax
        mov rbx, cr3                  # reads back 0x5007
        mov rax, 0x8000000000001000   # back to 0x1000/PCID 0, bit 63: keep PCID 0's entries
        mov cr3, rax
        mov rcx, cr3                  # 0x1000: bit 63 is not stored
        mov qword ptr [0x8000], 7     # INVPCID descriptor: PCID 7, address 0
        mov qword ptr [0x8008], 0
        mov eax, 1                    # type 1: one PCID
        invpcid rax, [0x8000]
        stac
        pushfq
        pop rdx                       # AC set
        clac
        mov eax, 0x10
        out 0xF4, eax
        "#,
    );
    let mut m = support::long_mode(&code);
    assert!(matches!(run(&mut m), Exit::DebugExit { value: 0x10, .. }));
    assert_eq!(m.cpu.gpr[reg::RBX], 0x5007);
    assert_eq!(m.cpu.gpr[reg::RCX], 0x1000);
    assert_ne!(m.cpu.gpr[reg::RDX] & flags::AC, 0);
    assert_eq!(m.cpu.rflags & flags::AC, 0);
    let s = m.stats.mmu;
    assert_eq!(s.cr3_writes, 2);
    assert!(s.inval_invpcid >= 1, "PCID 7's entries were dropped: {s:?}");
    assert!(s.space_reuses >= 1, "{s:?}");
}

#[test]
fn a_cr3_above_maxphyaddr_is_a_general_protection_fault() {
    // With no IDT the #GP becomes a triple fault; the detail names the vector.
    let code = assemble(
        64,
        0x10000,
        r#"
        mov rax, 1 << 45              # above MAXPHYADDR
        mov cr3, rax
        "#,
    );
    let mut m = support::long_mode(&code);
    assert!(matches!(run(&mut m), Exit::TripleFault { .. }));
    assert_eq!(m.cpu.cr3, 0x1000, "CR3 kept its value");
    assert_eq!(m.stats.exceptions.get("#GP").copied(), Some(1));
}
