//! Memory and I/O under KVM: shared RAM, the read-only ROM, MMIO devices and open bus, string I/O,
//! device requests, and the virtual clock carried across engine runs.
//! Teaches: every access KVM cannot satisfy from guest RAM becomes an exit served by the same Bus.

mod common;

use std::any::Any;

use common::*;
use devices::{BusDevice, DeviceCtx, MachineEvent};
use emulator::cpu::state::reg;
use emulator::{Engine, Exit, RunLimit};

/// An MMIO register file for tests: remembers writes, answers reads with `0xC0DE0000 | offset`.
#[derive(Default)]
struct Scratch {
    writes: Vec<(u64, u8, u64)>,
}

impl BusDevice for Scratch {
    fn name(&self) -> &'static str {
        "scratch"
    }
    fn mmio_read(&mut self, offset: u64, _size: u8, _ctx: &mut DeviceCtx) -> u64 {
        0xC0DE_0000 | offset
    }
    fn mmio_write(&mut self, offset: u64, size: u8, value: u64, _ctx: &mut DeviceCtx) {
        self.writes.push((offset, size, value));
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A port that asks the machine for a reset when written, like the 8042's 0xFE command.
struct ResetPort;

impl BusDevice for ResetPort {
    fn name(&self) -> &'static str {
        "reset-port"
    }
    fn pio_write(&mut self, _port: u16, _size: u8, _value: u32, ctx: &mut DeviceCtx) {
        ctx.request(MachineEvent::ResetRequested);
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

const MMIO_BASE: u32 = 0xFEB0_0000;

#[test]
fn mmio_reaches_bus_devices_and_unassigned_reads_are_all_ones() {
    if !kvm_or_skip("mmio_reaches_bus_devices_and_unassigned_reads_are_all_ones") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.imm32(&[0xB8], 0x1234_5678) // mov eax, 0x12345678
        .imm32(&[0xA3], MMIO_BASE + 8) // mov [MMIO_BASE + 8], eax
        .imm32(&[0x8B, 0x1D], MMIO_BASE + 4) // mov ebx, [MMIO_BASE + 4]
        .imm32(&[0x8B, 0x0D], 0xE000_0000) // mov ecx, [0xE0000000]: nothing there
        .imm32(&[0x66, 0x8B, 0x15], 0xE000_0000) // mov dx, [0xE0000000]
        .mov_al(0)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.bus
        .add_mmio_device(Box::new(Scratch::default()), MMIO_BASE as u64, 0x1000)
        .unwrap();
    m.cpu.gpr[reg::RDX] = 0xAAAA_0000;
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::UNLIMITED).unwrap(),
        Exit::DebugExit {
            value: 0,
            status: 1
        }
    );
    let scratch = m.bus.device_mut::<Scratch>().unwrap();
    assert_eq!(scratch.writes, vec![(8, 4, 0x1234_5678)]);
    assert_eq!(m.cpu.gpr[reg::RBX], 0xC0DE_0004);
    assert_eq!(m.cpu.gpr[reg::RCX], 0xFFFF_FFFF);
    assert_eq!(
        m.cpu.gpr[reg::RDX],
        0xAAAA_FFFF,
        "a 16-bit read changes only DX"
    );
    assert_eq!(m.stats.exits["mmio"], 4);
}

#[test]
fn ram_is_shared_and_the_rom_is_read_only() {
    if !kvm_or_skip("ram_is_shared_and_the_rom_is_read_only") {
        return;
    }
    let rom_base = 0xFFFF_F000u32;
    let mut a = Asm::new(CODE);
    a.imm32(&[0xA1], 0x8000) // mov eax, [0x8000]: written by the host before the run
        .b(&[0x40]) // inc eax
        .imm32(&[0xA3], 0x8004) // mov [0x8004], eax: read by the host after the run
        .imm32(&[0xC7, 0x05], rom_base) // mov dword [rom_base], imm32
        .b(&0xDEAD_BEEFu32.to_le_bytes())
        .imm32(&[0x8B, 0x1D], rom_base) // mov ebx, [rom_base]
        .mov_al(0)
        .out_al(0xF4);
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.rom = vec![0x5A; 4096];
    m.ram.write_le(0x8000, 4, 41).unwrap();
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::UNLIMITED).unwrap(),
        Exit::DebugExit {
            value: 0,
            status: 1
        }
    );
    assert_eq!(
        m.ram.read_le(0x8004, 4).unwrap(),
        42,
        "the guest's store is in our RAM"
    );
    eprintln!("ROM read-only: {:?}", kvm.rom_read_only());
    if kvm.rom_read_only() == Some(true) {
        assert_eq!(
            m.cpu.gpr[reg::RBX],
            0x5A5A_5A5A,
            "the ROM ignored the write"
        );
        assert_eq!(
            m.stats.exits["mmio"], 1,
            "the write to the read-only slot exited"
        );
    }
    assert_eq!(m.rom, vec![0x5A; 4096], "our ROM copy is never changed");
}

#[test]
fn string_io_moves_every_element() {
    if !kvm_or_skip("string_io_moves_every_element") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.abs32(&[0xBE], "text") // mov esi, text
        .imm32(&[0xB9], 5) // mov ecx, 5
        .imm32(&[0xBA], 0xE9) // mov edx, 0xE9
        .b(&[0xF3, 0x6E]) // rep outsb
        .imm32(&[0xBF], 0x9000) // mov edi, 0x9000
        .imm32(&[0xB9], 3) // mov ecx, 3
        .imm32(&[0xBA], 0x99) // mov edx, 0x99: unassigned
        .b(&[0x66, 0xF3, 0x6D]) // rep insw
        .mov_al(0)
        .out_al(0xF4)
        .label("text")
        .b(b"KVM!\n");
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::UNLIMITED).unwrap(),
        Exit::DebugExit {
            value: 0,
            status: 1
        }
    );
    assert_eq!(m.bus.take_console_output(), b"KVM!\n");
    let mut buf = [0u8; 8];
    m.ram.read(0x9000, &mut buf).unwrap();
    assert_eq!(buf, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]);
    assert_eq!((m.cpu.gpr[reg::RCX], m.cpu.gpr[reg::RDI]), (0, 0x9006));
    assert_eq!(m.bus.stats.by_port[&0x99], (3, 0));
}

#[test]
fn a_device_reset_request_ends_the_run_after_the_instruction() {
    if !kvm_or_skip("a_device_reset_request_ends_the_run_after_the_instruction") {
        return;
    }
    let code = [0xB0, 0xFE, 0xE6, 0x55, 0xEB, 0xFE]; // mov al, 0xFE; out 0x55, al; jmp $
    let mut m = protected_machine(&code, CODE, CODE);
    m.bus
        .add_pio_device(Box::new(ResetPort), &[(0x55, 0x55)])
        .unwrap();
    let mut kvm = engine(&m);
    assert_eq!(
        kvm.run(&mut m, RunLimit::UNLIMITED).unwrap(),
        Exit::ResetRequested
    );
    assert_eq!(m.cpu.rip, CODE + 4);
}

#[test]
fn virtual_time_continues_from_where_the_machine_was() {
    if !kvm_or_skip("virtual_time_continues_from_where_the_machine_was") {
        return;
    }
    let code = [0xB0, 0x00, 0xE6, 0xF4];
    let mut m = protected_machine(&code, CODE, CODE);
    m.bus.advance_time(5_000_000_000); // an emulated engine ran for 5 s of guest time
    let mut kvm = engine(&m);
    let host_before = std::time::Instant::now();
    kvm.run(&mut m, RunLimit::UNLIMITED).unwrap();
    let host_spent = host_before.elapsed().as_nanos() as u64;
    let now = m.bus.now_ns();
    assert!(now >= 5_000_000_000, "time never goes back: {now}");
    assert!(
        now <= 5_000_000_000 + host_spent,
        "and advances no faster than the host: {now}"
    );
}

#[test]
fn the_guest_tsc_starts_at_the_virtual_clock_and_never_goes_back() {
    if !kvm_or_skip("the_guest_tsc_starts_at_the_virtual_clock_and_never_goes_back") {
        return;
    }
    let mut a = Asm::new(CODE);
    a.label("again")
        .b(&[0x0F, 0x31]) // rdtsc
        .imm32(&[0xA3], 0x8000) // mov [0x8000], eax
        .imm32(&[0x89, 0x15], 0x8004) // mov [0x8004], edx
        .out_al(0x80)
        .j8(0xEB, "again");
    let code = a.finish();
    let mut m = protected_machine(&code, CODE, CODE);
    m.bus.advance_time(3_000_000_000);
    let mut kvm = engine(&m);
    let mut last = 0;
    for _ in 0..4 {
        assert_eq!(
            kvm.run(&mut m, RunLimit::io_accesses(1)).unwrap(),
            Exit::LimitReached
        );
        let tsc = m.ram.read_le(0x8000, 8).unwrap();
        assert!(tsc >= 3_000_000_000, "starts from virtual time: {tsc}");
        assert!(tsc > last, "monotonic: {tsc} after {last}");
        last = tsc;
    }
}
