//! Arbitrary bytes through `vmscope run`'s image path: `detect`, then `load_image_with_boot`
//! (direct and firmware boot) into a small Machine, named *.elf, *.bin or *.rom. Errors are fine; panics are not.
#![no_main]

use emulator::machine::loader::{detect, load_image_with_boot, BootMethod};
use emulator::Machine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the name and the boot method; the rest is the file.
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = ["fuzz.elf", "fuzz.bin", "fuzz.rom", "FUZZ.ROM"][usize::from(pick & 3)];
    let boot = if pick & 4 == 0 {
        BootMethod::Direct
    } else {
        BootMethod::Firmware
    };
    let cmdline = if pick & 8 == 0 {
        ""
    } else {
        "console=ttyS0 rounds=1"
    };
    let _ = detect(name, bytes);
    // Small RAM: a kernel that asks for more than there is must be refused, not crash.
    let ram = if pick & 16 == 0 { 2 << 20 } else { 8 << 20 };
    let mut m = Machine::new(ram).expect("a small machine");
    let _ = load_image_with_boot(&mut m, name, bytes, cmdline, boot, guests::FIRMWARE_ROM);
});
