//! A device that writes guest code by DMA: the interpreter's decoded instructions and bt's
//! translated blocks must see it, exactly as they see the CPU's own writes.
//! Teaches: DMA goes around the CPU, so the VMM must tell its caches what a device wrote.

use std::any::Any;

use devices::{BusDevice, DeviceCtx};
use emulator::bt::BinaryTranslator;
use emulator::cpu::{flags, reg, Seg, Segment};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

/// Port 0x300: the byte written is stored by DMA at guest-physical `target`.
struct CodePatcher {
    target: u64,
}

impl BusDevice for CodePatcher {
    fn name(&self) -> &'static str {
        "code-patcher"
    }
    fn pio_write(&mut self, _port: u16, _size: u8, value: u32, ctx: &mut DeviceCtx) {
        ctx.dma.write(self.target, &[value as u8]).unwrap();
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Three passes over `mov al, IMM`; after pass k the device rewrites IMM to k + 1. The guest
/// exits with AL of the third pass: 3 if every pass ran the bytes in memory.
const GUEST: [u8; 23] = [
    0x31, 0xC9, // xor cx, cx
    0xB0, 0x01, // loop: mov al, 1   (IMM at 0x7C03)
    0x41, // inc cx
    0x83, 0xF9, 0x03, // cmp cx, 3
    0x74, 0x0A, // je done
    0x88, 0xC8, // mov al, cl
    0x04, 0x01, // add al, 1
    0xBA, 0x00, 0x03, // mov dx, 0x300
    0xEE, // out dx, al       (the device patches IMM)
    0xEB, 0xEE, // jmp loop
    0xE6, 0xF4, // done: out 0xF4, al
    0xF4, // hlt
];

fn machine() -> Machine {
    let mut m = Machine::new(2 << 20).unwrap();
    m.ram.write(0x7C00, &GUEST).unwrap();
    m.cpu.seg = [Segment::real_mode(0, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::real_mode(0, true);
    m.cpu.rip = 0x7C00;
    m.cpu.gpr[reg::RSP] = 0x7000;
    m.cpu.rflags = flags::FIXED1;
    m.bus
        .add_pio_device(Box::new(CodePatcher { target: 0x7C03 }), &[(0x300, 0x300)])
        .unwrap();
    m
}

#[test]
fn code_written_by_dma_is_what_runs_next_on_every_emulated_engine() {
    let engines: [(&str, Box<dyn Engine>); 2] = [
        ("interp", Box::new(Interpreter::new())),
        ("bt", Box::new(BinaryTranslator::default())),
    ];
    for (name, mut engine) in engines {
        let mut m = machine();
        let exit = engine.run(&mut m, RunLimit::instructions(10_000)).unwrap();
        assert_eq!(
            exit,
            Exit::DebugExit {
                value: 3,
                status: 7
            },
            "{name}: a stale copy of the patched instruction ran"
        );
        let mut imm = [0u8];
        m.ram.read(0x7C03, &mut imm).unwrap();
        assert_eq!(imm, [3], "{name}: the device's last write is in RAM");
        assert!(
            !m.bus.has_dma_writes(),
            "{name}: the engine drained the DMA log"
        );
    }
}
