//! The APIC side of the standard PC bus: ISA lines through the IOAPIC to the local APIC, the
//! PIC through LINT0, EOIs back to the IOAPIC, the APIC timer on virtual time, fw_cfg and ACPI.
//! Teaches: how the two interrupt paths of a PC share one "is an interrupt pending?" question.

use devices::acpi;
use devices::fwcfg::{FwCfg, FW_CFG_PORT_DATA, FW_CFG_PORT_SEL};
use devices::{Bus, PcPlatformConfig};

const LAPIC: u64 = 0xFEE0_0000;
const IOAPIC: u64 = 0xFEC0_0000;

fn pc() -> Bus {
    Bus::new_pc(PcPlatformConfig::default())
}

fn lapic_write(bus: &mut Bus, offset: u64, value: u32) {
    assert!(bus.mmio_write(LAPIC + offset, 4, value as u64));
}

fn lapic_read(bus: &mut Bus, offset: u64) -> u32 {
    bus.mmio_read(LAPIC + offset, 4).expect("the LAPIC answers") as u32
}

fn ioapic_write(bus: &mut Bus, index: u32, value: u32) {
    bus.mmio_write(IOAPIC, 4, index as u64);
    bus.mmio_write(IOAPIC + 0x10, 4, value as u64);
}

fn ioapic_read(bus: &mut Bus, index: u32) -> u32 {
    bus.mmio_write(IOAPIC, 4, index as u64);
    bus.mmio_read(IOAPIC + 0x10, 4).unwrap() as u32
}

/// What a kernel does first: enable the APIC, mask the PIC and LINT0.
fn apic_mode(bus: &mut Bus) {
    lapic_write(bus, 0xF0, 0x1FF);
    lapic_write(bus, 0x350, 0x1_0700);
    bus.io_out(0x21, 1, 0xFF);
    bus.io_out(0xA1, 1, 0xFF);
}

#[test]
fn without_apic_programming_the_pic_still_interrupts_through_lint0() {
    let mut bus = pc();
    // The PIC's reset vector base is 0x08; unmask IRQ 0 and let the PIT fire.
    bus.io_out(0x21, 1, 0xFE);
    bus.io_out(0x43, 1, 0x34);
    bus.io_out(0x40, 1, 100);
    bus.io_out(0x40, 1, 0);
    bus.advance_time(1_000_000);
    assert!(bus.interrupt_pending());
    assert_eq!(bus.acknowledge_interrupt(), 0x08);
    // Masking LINT0 cuts the PIC off; the request stays in the PIC.
    lapic_write(&mut bus, 0xF0, 0x1FF);
    lapic_write(&mut bus, 0x350, 0x1_0700);
    bus.io_out(0x20, 1, 0x20);
    bus.advance_time(2_000_000);
    assert!(!bus.interrupt_pending());
    assert_eq!(bus.pic.registers()[0].irr & 1, 1);
}

#[test]
fn the_pit_reaches_the_cpu_through_ioapic_input_2() {
    let mut bus = pc();
    apic_mode(&mut bus);
    ioapic_write(&mut bus, 0x14, 0x30); // input 2 → vector 0x30, edge, to APIC 0
    ioapic_write(&mut bus, 0x15, 0);
    bus.io_out(0x43, 1, 0x34);
    bus.io_out(0x40, 1, 0xA9); // 1193 ticks: 1 ms
    bus.io_out(0x40, 1, 0x04);
    let deadline = bus.next_deadline().unwrap();
    bus.advance_time(deadline);
    assert!(bus.interrupt_pending());
    assert_eq!(bus.acknowledge_interrupt(), 0x30);
    assert!(!bus.interrupt_pending(), "one edge, one interrupt");
    assert_eq!(
        lapic_read(&mut bus, 0x110),
        1 << 16,
        "0x30 in service (ISR word 1, bit 16)"
    );
    lapic_write(&mut bus, 0xB0, 0);
    assert_eq!(lapic_read(&mut bus, 0x110), 0);
}

#[test]
fn the_apic_goes_before_the_pic_and_both_are_served() {
    let mut bus = pc();
    lapic_write(&mut bus, 0xF0, 0x1FF); // enabled; LINT0 still ExtINT
    bus.io_out(0x21, 1, 0xFE);
    bus.io_out(0x43, 1, 0x34);
    bus.io_out(0x40, 1, 100);
    bus.io_out(0x40, 1, 0);
    bus.advance_time(1_000_000);
    lapic_write(&mut bus, 0x300, (1 << 18) | 0x90); // self-IPI
    assert_eq!(bus.acknowledge_interrupt(), 0x90);
    assert!(bus.interrupt_pending(), "the PIC's request is still there");
    assert_eq!(bus.acknowledge_interrupt(), 0x08);
}

#[test]
fn a_level_triggered_interrupt_holds_remote_irr_until_the_eoi() {
    let mut bus = pc();
    apic_mode(&mut bus);
    // Route the UART (IRQ 4) level-triggered; its THR-empty interrupt asserts the line.
    ioapic_write(&mut bus, 0x18, 0x8000 | 0x44);
    ioapic_write(&mut bus, 0x19, 0);
    bus.io_out(0x3FC, 1, 0x0B);
    bus.io_out(0x3F9, 1, 0x02);
    assert_eq!(bus.acknowledge_interrupt(), 0x44);
    assert_ne!(ioapic_read(&mut bus, 0x18) & (1 << 14), 0, "remote IRR");
    assert_ne!(
        lapic_read(&mut bus, 0x180 + 0x20) & (1 << 4),
        0,
        "TMR bit of 0x44"
    );
    // The guest's EOI goes to the LAPIC; the bus carries it on to the IOAPIC.
    lapic_write(&mut bus, 0xB0, 0);
    assert_eq!(ioapic_read(&mut bus, 0x18) & (1 << 14), 0);
    // The UART pulsed once; no second message without a new edge.
    assert!(!bus.interrupt_pending());
}

#[test]
fn the_apic_timer_runs_on_the_bus_clock() {
    let mut bus = pc();
    apic_mode(&mut bus);
    lapic_write(&mut bus, 0x3E0, 0xB); // divide by 1
    lapic_write(&mut bus, 0x320, (1 << 17) | 0x61); // periodic
    lapic_write(&mut bus, 0x380, 250_000); // 250 µs
    let mut fired = Vec::new();
    while let Some(d) = bus.next_deadline().filter(|&d| d <= 1_000_000) {
        bus.advance_time(d);
        while bus.interrupt_pending() {
            fired.push((bus.now_ns(), bus.acknowledge_interrupt()));
            lapic_write(&mut bus, 0xB0, 0);
        }
    }
    let times: Vec<u64> = fired.iter().map(|f| f.0).collect();
    assert_eq!(times, [250_000, 500_000, 750_000, 1_000_000]);
    assert!(fired.iter().all(|f| f.1 == 0x61));
}

#[test]
fn platform_msrs_go_to_the_local_apic() {
    let mut bus = pc();
    assert_eq!(bus.msr_read(0x1B), Some(Ok(0xFEE0_0900)));
    assert_eq!(
        bus.msr_read(0x10),
        None,
        "the TSC is the CPU's, not the bus's"
    );
    assert!(matches!(bus.msr_read(0x802), Some(Err(_))), "no x2APIC yet");
    assert_eq!(bus.msr_write(0x1B, 0xFEE0_0D00), Some(Ok(())));
    assert!(!bus.is_mmio(LAPIC), "x2APIC mode: the MMIO page is gone");
    bus.msr_write(0x80F, 0x1FF).unwrap().unwrap();
    bus.msr_write(0x83F, 0x77).unwrap().unwrap();
    assert!(bus.interrupt_pending());
    assert_eq!(bus.acknowledge_interrupt(), 0x77);
    // TSC deadline: fires when the bus clock reaches it.
    bus.msr_write(0x832, (2 << 17) | 0x78).unwrap().unwrap();
    bus.msr_write(0x80B, 0).unwrap().unwrap();
    bus.msr_write(0x6E0, 5_000).unwrap().unwrap();
    assert_eq!(bus.next_deadline(), Some(5_000));
    bus.advance_time(5_000);
    assert_eq!(bus.acknowledge_interrupt(), 0x78);
}

#[test]
fn fw_cfg_offers_the_same_acpi_tables_the_machine_places() {
    let mut bus = pc();
    let fw = bus.device_mut::<FwCfg>().expect("fw_cfg is on the PC bus");
    let (select, size) = fw.find_file(acpi::FILE_RSDP).expect("etc/acpi/rsdp");
    let blobs = acpi::build();
    assert_eq!(size, blobs.rsdp.len());
    bus.io_out(FW_CFG_PORT_SEL, 2, select as u32);
    let rsdp: Vec<u8> = (0..size)
        .map(|_| bus.io_in(FW_CFG_PORT_DATA, 1) as u8)
        .collect();
    assert_eq!(rsdp, blobs.rsdp);
    // The NB_CPUS item reads 1 through the ports.
    bus.io_out(FW_CFG_PORT_SEL, 2, 5);
    assert_eq!(bus.io_in(FW_CFG_PORT_DATA, 2), 1);
    // And the PM timer sits where the FADT says.
    bus.advance_time(1_000_000);
    assert_eq!(bus.io_in(0x608, 4), 3579);
}
