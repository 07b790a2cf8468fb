//! kvmclock across engine switches: the guest keeps reading the paravirtual clock while the
//! machine moves from the interpreter to KVM to the translator, and time never runs backwards.
//! Teaches: a paravirtual clock is shared state between guest and VMM; when the VMM changes
//! (here: the engine), the new one must continue the old one's time, not its own.

mod support;

use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::pv::kvmclock::{self, Publisher};
use emulator::{Engine, Exit, Machine, RunLimit};
use support::kvm_skip_reason;
use vmscope::compare::suite::parse_results;

const READS: u64 = 30_000;

fn kernel_machine(cmdline: &str) -> Machine {
    let mut m = Machine::new(64 << 20).unwrap();
    m.pv = true;
    emulator::machine::loader::load_image(&mut m, "kernel.elf", guests::KERNEL_ELF, cmdline)
        .unwrap();
    m
}

/// Runs `engine` until the guest exits; returns the serial output and the exit.
fn finish(engine: &mut dyn Engine, m: &mut Machine, serial: &mut Vec<u8>) -> Exit {
    for _ in 0..10_000 {
        let exit = engine.run(m, RunLimit::instructions(1_000_000)).unwrap();
        serial.extend(m.bus.take_serial_output());
        if exit != Exit::LimitReached {
            return exit;
        }
    }
    panic!("the kernel did not finish");
}

#[test]
fn kvmclock_never_goes_backwards_from_interp_to_kvm_to_bt() {
    if let Some(why) = kvm_skip_reason() {
        eprintln!("skipped: KVM is not usable here: {why}");
        return;
    }
    let cmdline = format!("workloads=clock:{READS}");
    let mut m = kernel_machine(&cmdline);
    let mut serial = Vec::new();
    // Boot and the first reads on the interpreter (the kernel enables kvmclock while booting).
    let mut interp = Interpreter::new();
    assert_eq!(
        interp.run(&mut m, RunLimit::instructions(400_000)).unwrap(),
        Exit::LimitReached
    );
    serial.extend(m.bus.take_serial_output());
    assert_ne!(
        m.cpu.msrs.kvm_system_time & 1,
        0,
        "kvmclock enabled by the guest"
    );
    assert_eq!(m.kvmclock.publisher, Publisher::Emulated);
    let addr = m.cpu.msrs.kvm_system_time & !1;
    let before_kvm = kvmclock::read(&m.ram, addr)
        .unwrap()
        .time_at(m.bus.now_ns());
    // A slice on KVM, whose kernel keeps the structure with the host TSC.
    let mut kvm = accel_kvm::KvmEngine::new(&m).unwrap();
    let exit = kvm.run(&mut m, RunLimit::time_ns(30_000_000)).unwrap();
    assert_eq!(exit, Exit::LimitReached, "the reads outlast the slice");
    serial.extend(m.bus.take_serial_output());
    assert_eq!(m.kvmclock.publisher, Publisher::Kvm);
    assert!(
        m.kvmclock.floor_ns >= before_kvm,
        "KVM continued the emulated clock"
    );
    // The rest on the translator.
    let mut bt = BinaryTranslator::default();
    let exit = finish(&mut bt, &mut m, &mut serial);
    assert!(
        matches!(exit, Exit::DebugExit { value: 0x10, .. }),
        "{exit:?}"
    );
    assert_eq!(m.kvmclock.publisher, Publisher::Emulated);
    let text = String::from_utf8_lossy(&serial);
    assert!(text.contains("kvmclock in use"), "{text}");
    let results = parse_results(&text).unwrap();
    assert_eq!(results.len(), 1, "{text}");
    // The checksum counts the reads that were not below the previous one: all of them.
    assert_eq!(results[0].checksum, READS, "{text}");
}

#[test]
fn the_emulated_engines_alone_publish_once_and_agree() {
    let cmdline = format!("workloads=clock:{}", READS / 10);
    let mut a = kernel_machine(&cmdline);
    let mut b = kernel_machine(&cmdline);
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    finish(&mut Interpreter::new(), &mut a, &mut sa);
    finish(&mut BinaryTranslator::default(), &mut b, &mut sb);
    assert_eq!(sa, sb, "same output on interp and bt");
    assert_eq!(a.cpu, b.cpu);
    let addr = a.cpu.msrs.kvm_system_time & !1;
    assert_eq!(
        kvmclock::read(&a.ram, addr),
        kvmclock::read(&b.ram, addr),
        "the same publication"
    );
    assert_eq!(a.kvmclock.offset_ns, 0, "nothing to catch up with");
}
