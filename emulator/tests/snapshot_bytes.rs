//! Machine snapshots as bytes: a running teaching kernel taken apart into `SnapshotParts`,
//! written as postcard bytes, read back and restored into a freshly built machine.
//! Teaches: when every piece of a machine is data, "save, load, continue" is the same run as
//! "continue" — the serial output, the CPU, the instruction count and virtual time all agree,
//! on the interpreter and on the translator; and damaged bytes are refused, never a panic.

use std::cell::RefCell;

use devices::block::{MemDisk, SharedMemDisk};
use devices::disk_journal::JournaledDisk;
use devices::placement::{attach_ide, Transport, VirtioPlacement};
use devices::virtio::blk::VirtioBlk;
use devices::virtio::console::VirtioConsole;
use devices::virtio::rng::VirtioRng;
use emulator::bt::BinaryTranslator;
use emulator::cpu::CpuState;
use emulator::interp::Interpreter;
use emulator::machine::loader::{load_image_with_boot, BootMethod};
use emulator::machine::snapshot::{MachineSnapshot, SnapshotParts};
use emulator::{Engine, Exit, Machine, RunLimit};
use proptest::prelude::*;

const CMDLINE: &str =
    "workloads=disk-write:6,disk-read:6,rng-read:400,console-write:100,syscall:200 console=virtio";
const DISK_BYTES: usize = 256 << 10;

#[derive(Clone, Copy, Debug)]
enum Disk {
    Ide,
    VirtioBlk,
}

fn disk() -> (JournaledDisk, SharedMemDisk) {
    let initial: Vec<u8> = (0..DISK_BYTES).map(|i| (i * 7 + 3) as u8).collect();
    let mem = SharedMemDisk::new(MemDisk::new(initial));
    (JournaledDisk::new(Box::new(mem.clone())), mem)
}

/// The teaching kernel with a disk on `journal`, a virtio-console (into the UART's stream)
/// and a seeded virtio-rng — the same shape every time it is called.
fn boot(how: Disk, journal: &JournaledDisk) -> Machine {
    let mut m = Machine::new(64 << 20).unwrap();
    load_image_with_boot(
        &mut m,
        "kernel.elf",
        guests::KERNEL_ELF,
        CMDLINE,
        BootMethod::Direct,
        guests::FIRMWARE_ROM,
    )
    .unwrap();
    let mut placement = VirtioPlacement::default();
    let backend = Box::new(journal.clone());
    match how {
        Disk::Ide => attach_ide(&mut m.bus, backend).map(|_| ()),
        Disk::VirtioBlk => placement
            .place(
                &mut m.bus,
                Box::new(VirtioBlk::new(backend)),
                Transport::Pci,
            )
            .map(|_| ()),
    }
    .unwrap();
    let mut console = VirtioConsole::new();
    console.set_output_sink(m.bus.console_writer().unwrap());
    placement
        .place(&mut m.bus, Box::new(console), Transport::Pci)
        .unwrap();
    placement
        .place(
            &mut m.bus,
            Box::new(VirtioRng::new(0x5EED)),
            Transport::Mmio,
        )
        .unwrap();
    m
}

/// Runs to `target` instructions or the guest's end; collects the serial output.
fn run_to(engine: &mut dyn Engine, m: &mut Machine, target: u64, serial: &mut Vec<u8>) -> Exit {
    let exit = loop {
        let left = target.saturating_sub(m.stats.instructions);
        if left == 0 {
            break Exit::LimitReached;
        }
        let exit = engine.run(m, RunLimit::instructions(left)).unwrap();
        serial.extend(m.bus.take_serial_output());
        if exit != Exit::LimitReached {
            break exit;
        }
    };
    serial.extend(m.bus.take_serial_output());
    exit
}

/// How a run ended: the exit, serial output, CPU, instructions, virtual time, the disk.
#[derive(Debug, PartialEq)]
struct End {
    exit: Exit,
    serial: String,
    cpu: CpuState,
    instructions: u64,
    now_ns: u64,
    disk: Vec<u8>,
}

fn finish(engine: &mut dyn Engine, m: &mut Machine, mem: &SharedMemDisk) -> End {
    let mut serial = Vec::new();
    let exit = run_to(engine, m, u64::MAX, &mut serial);
    End {
        exit,
        serial: String::from_utf8_lossy(&serial).into_owned(),
        cpu: m.cpu.clone(),
        instructions: m.stats.instructions,
        now_ns: m.bus.now_ns(),
        disk: mem.0.borrow().bytes.clone(),
    }
}

fn encode(parts: &SnapshotParts) -> Vec<u8> {
    postcard::to_allocvec(parts).unwrap()
}

fn decode(bytes: &[u8]) -> Option<MachineSnapshot> {
    let parts: SnapshotParts = postcard::from_bytes(bytes).ok()?;
    MachineSnapshot::from_parts(parts).ok()
}

/// The length of the whole run, checking that every device was used.
fn run_length(how: Disk) -> u64 {
    let (journal, mem) = disk();
    let mut probe = boot(how, &journal);
    let end = finish(&mut Interpreter::new(), &mut probe, &mem);
    for workload in ["disk-write", "disk-read", "rng-read", "console-write"] {
        assert!(end.serial.contains(workload), "{}", end.serial);
    }
    end.instructions
}

/// Snapshot at `n`, bytes, a fresh machine, on to the end on each engine: as if never stopped.
fn round_trip(how: Disk, n: u64) {
    let (journal, mem) = disk();
    let mut machine = boot(how, &journal);
    let mut interp = Interpreter::new();
    assert_eq!(
        run_to(&mut interp, &mut machine, n, &mut Vec::new()),
        Exit::LimitReached
    );
    let snap = machine.snapshot().unwrap();
    let bytes = encode(&snap.to_parts());
    let without_ram = {
        let mut parts = snap.to_parts();
        parts.pages.clear();
        parts.rom.clear();
        encode(&parts).len()
    };
    eprintln!(
        "{how:?} at {n}: {} bytes encoded, {without_ram} without RAM and ROM ({} pages)",
        bytes.len(),
        snap.ram_pages()
    );
    let reference = finish(&mut interp, &mut machine, &mem);
    assert!(!reference.serial.is_empty());

    // The snapshot stays alive: it holds the disk's checkpoint the decoded copy refers to.
    let engines: [(&str, Box<dyn Engine>); 2] = [
        ("interp", Box::new(Interpreter::new())),
        ("bt", Box::new(BinaryTranslator::new(32 << 20))),
    ];
    for (name, mut engine) in engines {
        let decoded = decode(&bytes).expect("the bytes decode");
        let mut fresh = boot(how, &journal);
        fresh.restore(&decoded).unwrap();
        assert_eq!(fresh.cpu, snap.cpu);
        let end = finish(&mut *engine, &mut fresh, &mem);
        let at = format!("{how:?} from {n} on {name}");
        assert_eq!(end.serial, reference.serial, "{at}: serial");
        assert_eq!(end.exit, reference.exit, "{at}");
        assert_eq!(end.cpu, reference.cpu, "{at}: CPU");
        assert_eq!(end.instructions, reference.instructions, "{at}");
        assert_eq!(end.now_ns, reference.now_ns, "{at}: time");
        assert!(end.disk == reference.disk, "{at}: the disk");
    }
}

/// Snapshots at sixteenths of the run: while the disk is written and read, the rng read,
/// the console written.
fn round_trips(how: Disk) {
    let total = run_length(how);
    for k in 1..16 {
        round_trip(how, total * k / 16);
    }
}

#[test]
fn a_kernel_with_an_ide_disk_continues_from_bytes_as_if_never_stopped() {
    round_trips(Disk::Ide);
}

#[test]
fn a_kernel_with_virtio_blk_continues_from_bytes_as_if_never_stopped() {
    round_trips(Disk::VirtioBlk);
}

#[test]
fn the_parts_encode_to_the_same_bytes_after_a_round_trip() {
    let (journal, _) = disk();
    let mut m = boot(Disk::VirtioBlk, &journal);
    run_to(&mut Interpreter::new(), &mut m, 400_000, &mut Vec::new());
    let snap = m.snapshot().unwrap();
    let bytes = encode(&snap.to_parts());
    let again = decode(&bytes).unwrap();
    assert_eq!(encode(&again.to_parts()), bytes);
}

/// Damaged parts: a cut or a flipped bit anywhere is refused on decode or restore, or gives
/// some machine state — never a panic.
#[test]
fn truncated_or_flipped_bytes_are_an_error_not_a_panic() {
    let (journal, _) = disk();
    let mut m = boot(Disk::VirtioBlk, &journal);
    run_to(&mut Interpreter::new(), &mut m, 400_000, &mut Vec::new());
    let snap = m.snapshot().unwrap();
    let mut parts = snap.to_parts();
    parts.pages.truncate(3); // the device state is what matters here; keep cases fast
    let bytes = encode(&parts);
    let target = RefCell::new(boot(Disk::VirtioBlk, &journal));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    let strategy = (0..bytes.len(), any::<u8>(), any::<bool>());
    runner
        .run(&strategy, |(at, bit, cut)| {
            let mut damaged = bytes.clone();
            if cut {
                damaged.truncate(at);
            } else {
                damaged[at] ^= 1 << (bit % 8);
            }
            match decode(&damaged) {
                // A cut never decodes: postcard needs every byte of the parts.
                None => {}
                Some(_) if cut => prop_assert!(false, "a cut at {at} decoded"),
                Some(s) => {
                    let _ = target.borrow_mut().restore(&s);
                }
            }
            Ok(())
        })
        .unwrap();
}
