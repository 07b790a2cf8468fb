//! NMIs: a self-IPI with NMI delivery mode and the LINT1 pin, delivered whatever IF says,
//! blocked until IRET, and carried across engine switches — on interp, bt and kvm alike.

#[path = "../emulator/tests/support/mod.rs"]
mod asm;
mod support;

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

/// Counters the guest keeps: NMIs handled, the deepest nesting seen, and a loop counter.
const COUNT: u64 = 0x20000;
const MAX_DEPTH: u64 = 0x20004;
const DEPTH: u64 = 0x20008;
const IDT: u64 = 0x2000;
const HANDLER: u64 = 0x10100;

/// The NMI handler at HANDLER: counts, records its nesting depth, and the first time sends
/// itself a second NMI, which must wait for the IRET (else the depth would reach 2).
const HANDLER_ASM: &str = "
    .org 0x100
nmi:
    inc dword ptr [0x20008]
    mov eax, [0x20008]
    cmp eax, [0x20004]
    jbe 1f
    mov [0x20004], eax
1:  inc dword ptr [0x20000]
    cmp dword ptr [0x20000], 1
    jne 2f
    mov dword ptr [0xFEE00300], 0x44400
    nop
    nop
    nop
2:  dec dword ptr [0x20008]
    iretd
";

/// Software-enables the APIC, then with IF = 0 sends itself an NMI (ICR: self, NMI, assert).
fn self_ipi_program() -> Vec<u8> {
    asm::assemble(
        32,
        0x10000,
        &format!(
            "
    cli
    mov dword ptr [0xFEE000F0], 0x1FF
    mov dword ptr [0xFEE00300], 0x44400
    mov esi, [0x20000]
    hlt
    {HANDLER_ASM}"
        ),
    )
}

/// Programs LVT LINT1 with `lvt`, then spins until the handler has counted an NMI.
fn lint1_program(lvt: u32) -> Vec<u8> {
    asm::assemble(
        32,
        0x10000,
        &format!(
            "
    cli
    mov dword ptr [0xFEE000F0], 0x1FF
    mov dword ptr [0xFEE00360], {lvt:#x}
1:  inc edi
    cmp dword ptr [0x20000], 0
    je 1b
    hlt
    {HANDLER_ASM}"
        ),
    )
}

fn machine(code: &[u8]) -> Machine {
    let mut m = asm::protected_mode(code);
    // IDT gate 2: a 32-bit interrupt gate to HANDLER.
    let low = (HANDLER & 0xFFFF) | 0x08 << 16;
    let high = (HANDLER & 0xFFFF_0000) | 0x8E00;
    m.ram.write_le(IDT + 16, 8, high << 32 | low).unwrap();
    m.cpu.idtr = emulator::cpu::DescriptorTable {
        base: IDT,
        limit: 0x7FF,
    };
    m
}

fn counters(m: &Machine) -> (u64, u64) {
    let read = |a| {
        let mut b = [0u8; 4];
        m.ram.read(a, &mut b).unwrap();
        u32::from_le_bytes(b) as u64
    };
    assert_eq!(read(DEPTH), 0, "every handler returned");
    (read(COUNT), read(MAX_DEPTH))
}

/// The engines to try: interp, bt, and kvm where it works (else the reason is printed).
fn engines() -> Vec<&'static str> {
    let mut names = vec!["interp", "bt"];
    match support::kvm_skip_reason() {
        None => names.push("kvm"),
        Some(why) => eprintln!("kvm not tested: {why}"),
    }
    names
}

fn make(name: &str, m: &Machine) -> Box<dyn Engine> {
    match name {
        "interp" => Box::new(Interpreter::new()),
        "bt" => Box::new(BinaryTranslator::default()),
        _ => Box::new(accel_kvm::KvmEngine::new(m).unwrap()),
    }
}

#[test]
fn a_self_nmi_arrives_with_interrupts_off_and_a_second_waits_for_iret() {
    for name in engines() {
        let mut m = machine(&self_ipi_program());
        let mut engine = make(name, &m);
        let exit = engine.run(&mut m, RunLimit::instructions(10_000)).unwrap();
        assert_eq!(exit, Exit::Shutdown, "{name}: HLT with IF = 0 ends the run");
        let (count, depth) = counters(&m);
        assert_eq!(count, 2, "{name}: both NMIs were handled");
        assert_eq!(depth, 1, "{name}: the second NMI waited for the first IRET");
        assert_eq!(
            m.cpu.gpr[emulator::cpu::reg::RSI],
            2,
            "{name}: both came before the instruction after the ICR write retired"
        );
        assert!(!m.cpu.events.nmi_blocked && !m.cpu.events.nmi_pending);
    }
}

#[test]
fn lint1_delivers_an_nmi_when_its_lvt_says_so_and_nothing_when_masked() {
    for name in engines() {
        // Delivered, the handler counts it and the self-NMI it sends: 2.
        for (lvt, expect) in [(0x400u32, 2u64), (0x1_0400, 0)] {
            let mut m = machine(&lint1_program(lvt));
            let mut engine = make(name, &m);
            let first = engine.run(&mut m, RunLimit::instructions(2_000)).unwrap();
            assert_eq!(
                first,
                Exit::LimitReached,
                "{name}: spinning before the edge"
            );
            m.bus.raise_nmi();
            let exit = engine.run(&mut m, RunLimit::instructions(2_000)).unwrap();
            let (count, _) = counters(&m);
            assert_eq!(count, expect, "{name}: LVT LINT1 {lvt:#x}");
            let want = if expect > 0 {
                Exit::Shutdown
            } else {
                Exit::LimitReached
            };
            assert_eq!(exit, want, "{name}: LVT LINT1 {lvt:#x}");
        }
    }
}

#[test]
fn a_blocked_nmi_travels_with_the_cpu_state_to_another_engine() {
    // Stop inside the first handler, after it sent the second NMI (pending, blocked), and
    // finish on every other engine: the second NMI must still come, after the IRET.
    for from in engines() {
        let mut m = machine(&self_ipi_program());
        let mut first = make(from, &m);
        // cli, SVR, ICR, then the NMI: inc, mov, cmp, jbe, mov, inc, cmp, jne, ICR write, nop.
        first.run(&mut m, RunLimit::instructions(13)).unwrap();
        assert!(
            m.cpu.events.nmi_blocked,
            "{from}: stopped inside the handler"
        );
        assert!(
            m.cpu.events.nmi_pending || m.bus.nmi_latched(),
            "{from}: the second NMI waits"
        );
        let snapshot = m.snapshot().unwrap();
        for to in engines() {
            let mut t = Machine::new(m.ram.size()).unwrap();
            t.restore(&snapshot).unwrap();
            let mut second = make(to, &t);
            let exit = second.run(&mut t, RunLimit::instructions(10_000)).unwrap();
            assert_eq!(exit, Exit::Shutdown, "{from} → {to}");
            assert_eq!(counters(&t), (2, 1), "{from} → {to}");
        }
    }
}

#[test]
fn the_teaching_kernels_nmi_workload_counts_every_nmi_unnested_on_every_engine() {
    let want = vmscope::compare::suite::expected_checksum("nmi", 500).unwrap();
    assert_eq!(want, 500 | 1 << 32);
    for engine in support::engines_with_kvm() {
        let mut o = support::opts(engine);
        o.cmdline = "workloads=nmi iterations=500".into();
        let (_, serial) = support::run_builtin("kernel", o);
        let line = serial
            .lines()
            .find(|l| l.starts_with("RESULT workload=nmi"))
            .unwrap_or_else(|| panic!("{engine:?}: no RESULT line in {serial}"));
        assert!(
            line.ends_with(&format!("checksum={want:#018x}")),
            "{engine:?}: {line}"
        );
    }
}
