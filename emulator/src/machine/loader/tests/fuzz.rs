//! Fuzz-style robustness: thousands of random and mutated images must never panic a loader.
//! Teaches: a loader's input is hostile; mutate valid files near their fields and look for crashes.

use super::*;
use crate::machine::loader::{detect, load_image, load_multiboot, LoadedImage};
use crate::machine::Machine;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that tend to break size and offset arithmetic.
const INTERESTING: [u32; 12] = [
    0,
    1,
    0x7F,
    0x1000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0xFFFF_FFF0,
    0x10_0000,
    0x1F_FFFF,
    0x8000,
    0xFFFF,
];

fn seeds() -> Vec<Vec<u8>> {
    let elf = elf32(
        0x10_0000,
        &[
            ElfSeg::load(0x10_0000, vec![0xF4; 0x30], 0x30),
            ElfSeg::load(0x10_1000, vec![1; 0x10], 0x400),
        ],
        Some(MB_MEMINFO),
    );
    let aout = aout_image(
        &[0xF4; 16],
        0x40,
        Aout {
            header_addr: 0x10_0040,
            load_addr: 0x10_0000,
            load_end_addr: 0,
            bss_end_addr: 0x10_0800,
            entry_addr: 0x10_0000,
        },
        MB_MEMINFO,
        &[0xAA; 0x20],
    );
    vec![elf, aout]
}

fn mutate(rng: &mut Rng, image: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !image.is_empty() => {
                let at = rng.below(image.len());
                image[at] = rng.next() as u8;
            }
            1 if image.len() >= 4 => {
                // An interesting value at a 4-aligned offset inside the headers.
                let at = rng.below(image.len().min(0x200) / 4) * 4;
                let v = INTERESTING[rng.below(INTERESTING.len())];
                image[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            2 => {
                let len = rng.below(image.len() + 1);
                image.truncate(len);
            }
            3 => image.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            4 if image.len() >= ELF_MB_OFFSET + 12 => {
                // Re-sign the Multiboot header so mutations reach the fields behind it.
                let flags = rng.next() as u32 & 0x0001_0003;
                image[ELF_MB_OFFSET..ELF_MB_OFFSET + 12].copy_from_slice(&mb_header(flags));
            }
            _ if image.len() >= 2 => {
                let at = rng.below(image.len() - 1);
                image[at] ^= 1 << rng.below(8);
            }
            _ => {}
        }
    }
}

/// What every successful load must satisfy, whatever the input.
fn check_success(m: &Machine, loaded: &LoadedImage) {
    for &(addr, len) in &loaded.segments {
        let inside_ram = addr.checked_add(len).is_some_and(|end| end <= m.ram.size());
        let rom_alias = m.rom_base() == Some(addr);
        assert!(inside_ram || rom_alias, "{loaded}");
    }
    if let Some(info) = loaded.info_addr {
        assert_eq!(m.cpu.gpr[crate::cpu::reg::RBX], info);
        let cmdline = super::read32(m, info + 16) as u64;
        for &(a, l) in &loaded.segments {
            for (start, len) in [(info, 116), (cmdline, 1)] {
                let clear = l == 0 || start + len <= a || a + l <= start;
                assert!(
                    clear,
                    "information at {start:#x} inside a segment: {loaded}"
                );
            }
        }
        assert_eq!(m.cpu.rip, loaded.entry);
        assert!(
            loaded
                .segments
                .iter()
                .any(|&(a, l)| loaded.entry >= a && loaded.entry - a < l),
            "entry inside a segment: {loaded}"
        );
    }
}

#[test]
fn mutated_kernels_never_panic_the_multiboot_loader() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut m = machine(2 << 20);
    let seeds = seeds();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..6000 {
        let mut image = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut image);
        match load_multiboot(&mut m, "fuzz.elf", &image, "fuzz") {
            Ok(loaded) => {
                check_success(&m, &loaded);
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz.elf: "), "{e}");
                err += 1;
            }
        }
    }
    // The mutator must actually exercise both paths, or this test proves little.
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}

#[test]
fn random_bytes_never_panic_detection_or_any_loader() {
    let mut rng = Rng(0xDEAD_BEEF_0BAD_F00D);
    let mut m = machine(1 << 20);
    let names = ["a.rom", "b.bin", "c.elf", "d.img", ""];
    for i in 0..3000 {
        let len = match rng.below(4) {
            0 => rng.below(64),
            1 => rng.below(9000),
            2 => 64 << 10,
            _ => rng.below(300 << 10),
        };
        let mut image: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 3 == 0 && len >= 64 {
            // Plant a valid header (random flags) at a random aligned spot in the window.
            let at = rng.below(len.min(8192) / 4 - 2) * 4;
            let flags = rng.next() as u32 & 0x0001_0003;
            image[at..at + 12].copy_from_slice(&mb_header(flags));
        }
        if i % 5 == 0 && len >= 4 {
            image[..4].copy_from_slice(b"\x7fELF");
        }
        let name = names[rng.below(names.len())];
        let _ = detect(name, &image);
        match load_image(&mut m, name, &image, "") {
            Ok(loaded) => check_success(&m, &loaded),
            Err(e) => assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}"),
        }
    }
}
