//! Boots every guest of the `guests` crate under the KVM engine and compares the serial output
//! and the ending with what a correct run produces.
//! Teaches: where this host's KVM runs the project's kernels as-is, and where (and why) it cannot.
//!
//! Run with `cargo run -p accel-kvm --example kvm_guests`.

use std::time::Instant;

use accel_kvm::{detect_flavour, kvm_available, KvmEngine};
use emulator::machine::loader::load_image;
use emulator::{Engine, Exit, Machine, RunLimit};
use guests::Ending;

/// Runs one guest; returns (serial output, how it ended).
pub fn run_guest(guest: &guests::Guest) -> (String, Result<Exit, String>) {
    let ram = u64::from(guests::DEFAULT_MEMORY_MIB) << 20;
    let mut m = Machine::new(ram).expect("guest RAM");
    if let Err(e) = load_image(
        &mut m,
        guest.file_name,
        guest.image,
        guests::DEFAULT_CMDLINE,
    ) {
        return (String::new(), Err(format!("load: {e}")));
    }
    let mut kvm = match KvmEngine::new(&m) {
        Ok(k) => k,
        Err(e) => return (String::new(), Err(format!("engine: {e}"))),
    };
    let exit = kvm
        .run(&mut m, RunLimit::UNLIMITED)
        .map_err(|e| e.to_string());
    let serial = String::from_utf8_lossy(&m.bus.take_serial_output()).into_owned();
    (serial, exit)
}

fn main() {
    if let Err(why) = kvm_available() {
        println!("no KVM here: {why}");
        return;
    }
    println!("KVM flavour: {}\n", detect_flavour());
    for guest in guests::all() {
        let started = Instant::now();
        let (serial, exit) = run_guest(guest);
        let elapsed = started.elapsed();
        let ending_ok = matches!(
            (&exit, guest.ending),
            (Ok(Exit::DebugExit { value, .. }), Ending::DebugExit(v)) if *value == v
        ) || matches!(
            (&exit, guest.ending),
            (Ok(Exit::Shutdown), Ending::HaltWithInterruptsDisabled)
        ) || matches!(
            (&exit, guest.ending),
            (Ok(Exit::TripleFault { .. }), Ending::TripleFault)
        );
        let verdict = if ending_ok && serial == guest.expected_serial {
            "as expected"
        } else {
            "DIFFERS"
        };
        println!(
            "== {} ({elapsed:.2?}): {verdict}; ended with {exit:?}",
            guest.name
        );
        if verdict != "as expected" {
            println!(
                "-- serial output:\n{serial}-- expected:\n{}",
                guest.expected_serial
            );
        }
    }
}
