//! Unit tests of the local APIC: registers, priorities, EOI, IPIs, MSRs and the timer.
//! Teaches: what each APIC rule looks like from the outside, one behaviour per test.

use super::*;

fn off(r: u32) -> u64 {
    (r * 16) as u64
}

fn write(l: &mut LocalApic, r: u32, v: u32, now: u64) {
    l.mmio_write(off(r), 4, v as u64, now);
}

fn read(l: &mut LocalApic, r: u32, now: u64) -> u32 {
    l.mmio_read(off(r), 4, now) as u32
}

/// A software-enabled APIC with spurious vector 0xFF.
fn enabled() -> LocalApic {
    let mut l = LocalApic::new();
    write(&mut l, reg::SVR, 0x1FF, 0);
    l
}

fn self_ipi(l: &mut LocalApic, vector: u8) {
    write(l, reg::ICR_LOW, (1 << 18) | vector as u32, 0); // shorthand "self", fixed
}

#[test]
fn reset_state_matches_what_a_bios_leaves() {
    let mut l = LocalApic::new();
    assert_eq!(l.apic_base(), 0xFEE0_0900);
    assert_eq!(l.mmio_base(), Some(LAPIC_BASE));
    assert_eq!(read(&mut l, reg::VERSION, 0), 0x0005_0014);
    assert_eq!(read(&mut l, reg::SVR, 0), 0xFF);
    assert_eq!(read(&mut l, reg::DFR, 0), 0xFFFF_FFFF);
    assert_eq!(
        read(&mut l, reg::LVT_LINT0, 0),
        0x700,
        "LINT0 = ExtINT, unmasked"
    );
    assert_eq!(read(&mut l, reg::LVT_TIMER, 0), LVT_MASKED);
    assert!(l.accepts_pic());
    assert!(!l.software_enabled());
}

#[test]
fn self_ipi_goes_through_irr_isr_and_eoi() {
    let mut l = enabled();
    self_ipi(&mut l, 0x40);
    assert!(l.has_interrupt());
    assert_eq!(
        read(&mut l, reg::IRR0 + 2, 0),
        1,
        "vector 0x40 = bit 0 of IRR word 2"
    );
    assert_eq!(l.acknowledge(), 0x40);
    assert_eq!(read(&mut l, reg::IRR0 + 2, 0), 0);
    assert_eq!(read(&mut l, reg::ISR0 + 2, 0), 1);
    assert_eq!(
        read(&mut l, reg::PPR, 0),
        0x40,
        "in service raises the processor priority"
    );
    write(&mut l, reg::EOI, 0, 0);
    assert_eq!(read(&mut l, reg::ISR0 + 2, 0), 0);
    assert_eq!(read(&mut l, reg::PPR, 0), 0);
    assert!(
        l.take_eoi_broadcasts().is_empty(),
        "edge vectors are not broadcast"
    );
}

#[test]
fn a_software_disabled_apic_drops_fixed_interrupts() {
    let mut l = LocalApic::new();
    self_ipi(&mut l, 0x40);
    assert!(!l.has_interrupt());
    assert_eq!(read(&mut l, reg::IRR0 + 2, 0), 0);
}

#[test]
fn tpr_blocks_equal_and_lower_classes() {
    let mut l = enabled();
    write(&mut l, reg::TPR, 0x50, 0);
    self_ipi(&mut l, 0x45);
    assert!(!l.has_interrupt(), "class 4 is below TPR class 5");
    self_ipi(&mut l, 0x5F);
    assert!(
        !l.has_interrupt(),
        "class 5 equals TPR class 5: still blocked"
    );
    assert_eq!(read(&mut l, reg::PPR, 0), 0x50);
    self_ipi(&mut l, 0x61);
    assert_eq!(l.acknowledge(), 0x61);
    write(&mut l, reg::EOI, 0, 0);
    write(&mut l, reg::TPR, 0, 0);
    assert_eq!(l.acknowledge(), 0x5F, "highest first");
    assert!(!l.has_interrupt(), "0x45 waits: 0x5F in service is class 5");
    write(&mut l, reg::EOI, 0, 0);
    assert_eq!(l.acknowledge(), 0x45);
}

#[test]
fn set_tpr_is_the_same_register_cr8_writes() {
    let mut l = enabled();
    l.set_tpr(0x70);
    assert_eq!(read(&mut l, reg::TPR, 0), 0x70);
    self_ipi(&mut l, 0x65);
    assert!(!l.has_interrupt());
    l.set_tpr(0);
    assert_eq!(l.tpr(), 0);
    assert_eq!(l.acknowledge(), 0x65);
}

#[test]
fn nested_interrupts_end_highest_first() {
    let mut l = enabled();
    self_ipi(&mut l, 0x30);
    assert_eq!(l.acknowledge(), 0x30);
    self_ipi(&mut l, 0x80);
    assert_eq!(
        l.acknowledge(),
        0x80,
        "a higher class interrupts the handler"
    );
    self_ipi(&mut l, 0x31);
    assert!(!l.has_interrupt());
    write(&mut l, reg::EOI, 0, 0); // ends 0x80
    assert!(l.isr.get(0x30) && !l.isr.get(0x80));
    write(&mut l, reg::EOI, 0, 0); // ends 0x30
    assert_eq!(l.acknowledge(), 0x31);
}

#[test]
fn level_triggered_eoi_is_broadcast() {
    let mut l = enabled();
    l.accept(0x70, true);
    assert!(l.tmr.get(0x70));
    assert_eq!(l.acknowledge(), 0x70);
    write(&mut l, reg::EOI, 0, 0);
    assert_eq!(l.take_eoi_broadcasts(), vec![0x70]);
}

#[test]
fn acknowledge_without_a_request_returns_the_spurious_vector() {
    let mut l = enabled();
    write(&mut l, reg::SVR, 0x1E7, 0);
    assert_eq!(l.acknowledge(), 0xE7);
    assert_eq!(
        l.isr.highest(),
        None,
        "a spurious vector is never in service"
    );
}

#[test]
fn illegal_vectors_set_esr_after_the_latching_write() {
    let mut l = enabled();
    self_ipi(&mut l, 0x05);
    assert!(!l.has_interrupt());
    assert_eq!(
        read(&mut l, reg::ESR, 0),
        0,
        "ESR shows errors only after a write"
    );
    write(&mut l, reg::ESR, 0, 0);
    let esr = read(&mut l, reg::ESR, 0);
    assert_eq!(esr, ESR_SEND_ILLEGAL_VECTOR | ESR_RECEIVE_ILLEGAL_VECTOR);
    write(&mut l, reg::ESR, 0, 0);
    assert_eq!(read(&mut l, reg::ESR, 0), 0);
}

#[test]
fn error_lvt_interrupts_on_errors() {
    let mut l = enabled();
    write(&mut l, reg::LVT_ERROR, 0xFE, 0);
    let _ = l.mmio_read(0x000, 4, 0); // register 0 does not exist
    assert_eq!(l.acknowledge(), 0xFE);
}

#[test]
fn software_disable_masks_lvt_entries_and_they_stay_masked() {
    let mut l = enabled();
    write(&mut l, reg::LVT_LINT0, 0x700, 0);
    write(&mut l, reg::SVR, 0xFF, 0);
    assert_eq!(read(&mut l, reg::LVT_LINT0, 0), 0x10700);
    assert!(!l.accepts_pic(), "masked LINT0 no longer passes the PIC");
    write(&mut l, reg::LVT_LINT0, 0x700, 0);
    assert_ne!(read(&mut l, reg::LVT_LINT0, 0) & LVT_MASKED, 0);
}

#[test]
fn pic_passes_only_through_unmasked_extint_or_a_disabled_apic() {
    let mut l = enabled();
    write(&mut l, reg::LVT_LINT0, 0x10700, 0);
    assert!(!l.accepts_pic());
    write(&mut l, reg::LVT_LINT0, 0x000, 0); // fixed mode: not ExtINT
    assert!(!l.accepts_pic());
    write(&mut l, reg::LVT_LINT0, 0x700, 0);
    assert!(l.accepts_pic());
    write(&mut l, reg::LVT_LINT0, 0x10700, 0);
    assert_eq!(
        l.msr_write(msr::IA32_APIC_BASE, 0xFEE0_0000, 0),
        Some(Ok(()))
    );
    assert!(l.accepts_pic(), "globally disabled: LINT0 is the INTR pin");
    assert_eq!(l.mmio_base(), None);
}

#[test]
fn mmio_narrow_reads_and_padding() {
    let mut l = enabled();
    assert_eq!(l.mmio_read(off(reg::VERSION) + 2, 1, 0), 0x05);
    assert_eq!(
        l.mmio_read(off(reg::VERSION) + 4, 4, 0),
        0,
        "bytes 4-15 of a slot are padding"
    );
    write(&mut l, reg::ID, 0x0300_0000, 0);
    assert_eq!(read(&mut l, reg::ID, 0), 0x0300_0000);
}

// ---- MSRs and x2APIC ----

fn x2apic() -> LocalApic {
    let mut l = LocalApic::new();
    assert_eq!(
        l.msr_write(msr::IA32_APIC_BASE, 0xFEE0_0C00, 0),
        Some(Ok(()))
    );
    assert!(l.x2apic_mode());
    l.msr_write(0x80F, 0x1FF, 0).unwrap().unwrap();
    l
}

#[test]
fn x2apic_registers_are_msrs_and_mmio_disappears() {
    let mut l = x2apic();
    assert_eq!(l.mmio_base(), None);
    assert_eq!(
        l.msr_read(0x802, 0),
        Some(Ok(0)),
        "x2APIC ID is the full register"
    );
    assert_eq!(l.msr_read(0x803, 0), Some(Ok(VERSION as u64)));
    assert_eq!(l.msr_read(0x80D, 0), Some(Ok(1)), "LDR: cluster 0, bit 0");
    assert_eq!(l.msr_read(0x1B, 0), Some(Ok(0xFEE0_0D00)));
    assert_eq!(l.msr_read(0x10, 0), None, "not an APIC MSR");
}

#[test]
fn x2apic_self_ipi_and_eoi() {
    let mut l = x2apic();
    l.msr_write(0x83F, 0x44, 0).unwrap().unwrap();
    assert_eq!(l.acknowledge(), 0x44);
    assert_eq!(l.msr_read(0x812, 0), Some(Ok(0x10)), "ISR word 2 bit 4");
    assert_eq!(
        l.msr_write(0x80B, 1, 0),
        Some(Err(ApicError::ReservedBits {
            index: 0x80B,
            value: 1
        }))
    );
    l.msr_write(0x80B, 0, 0).unwrap().unwrap();
    assert_eq!(l.msr_read(0x812, 0), Some(Ok(0)));
    // The 64-bit ICR sends in one write.
    l.msr_write(0x830, 0x0000_0000_0000_0051, 0)
        .unwrap()
        .unwrap();
    assert_eq!(l.acknowledge(), 0x51, "physical destination 0 = this CPU");
}

#[test]
fn x2apic_access_errors_are_reported() {
    let mut l = LocalApic::new();
    assert_eq!(l.msr_read(0x802, 0), Some(Err(ApicError::NotX2Apic(0x802))));
    let mut l = x2apic();
    assert_eq!(l.msr_read(0x80B, 0), Some(Err(ApicError::WriteOnly(0x80B))));
    assert_eq!(
        l.msr_write(0x803, 0, 0),
        Some(Err(ApicError::ReadOnly(0x803)))
    );
    assert_eq!(
        l.msr_read(0x80E, 0),
        Some(Err(ApicError::NoSuchRegister(0x80E))),
        "no DFR"
    );
    assert_eq!(
        l.msr_read(0x831, 0),
        Some(Err(ApicError::NoSuchRegister(0x831))),
        "no ICR high"
    );
}

#[test]
fn apic_base_transitions_follow_the_sdm() {
    let mut l = LocalApic::new();
    let bad = |from, to| Some(Err(ApicError::InvalidTransition { from, to }));
    assert_eq!(
        l.msr_write(0x1B, 0xFEE0_0400, 0),
        bad(0xFEE0_0900, 0xFEE0_0400)
    );
    l.msr_write(0x1B, 0xFEE0_0C00, 0).unwrap().unwrap();
    assert_eq!(
        l.msr_write(0x1B, 0xFEE0_0800, 0),
        bad(0xFEE0_0D00, 0xFEE0_0800)
    );
    l.msr_write(0x1B, 0xFEE0_0000, 0).unwrap().unwrap();
    assert!(!l.hardware_enabled());
    assert_eq!(
        l.msr_write(0x1B, 0xFEE0_0C00, 0),
        bad(0xFEE0_0100, 0xFEE0_0C00)
    );
    l.msr_write(0x1B, 0xFED0_0800, 0).unwrap().unwrap();
    assert_eq!(l.mmio_base(), Some(0xFED0_0000), "relocated");
    assert_eq!(
        read(&mut l, reg::LVT_LINT0, 0),
        LVT_MASKED,
        "re-enabled APIC comes up masked"
    );
    assert!(matches!(
        l.msr_write(0x1B, 1 << 50, 0),
        Some(Err(ApicError::ReservedBits { .. }))
    ));
}

// ---- the timer ----

#[test]
fn divide_configuration_selects_the_divisor() {
    let mut t = timer::ApicTimer::default();
    for (code, div) in [
        (0, 2),
        (1, 4),
        (2, 8),
        (3, 16),
        (8, 32),
        (9, 64),
        (0xA, 128),
        (0xB, 1),
    ] {
        t.set_divide(code, TimerMode::OneShot, 0);
        assert_eq!(t.divisor(), div, "code {code:#x}");
    }
}

#[test]
fn one_shot_counts_down_fires_once_and_stays_at_zero() {
    let mut l = enabled();
    write(&mut l, reg::TIMER_DIVIDE, 0x3, 0); // divide by 16
    write(&mut l, reg::LVT_TIMER, 0x41, 0);
    write(&mut l, reg::TIMER_INITIAL, 1000, 100);
    assert_eq!(l.next_deadline(), Some(100 + 16_000));
    assert_eq!(read(&mut l, reg::TIMER_CURRENT, 100 + 1600), 900);
    l.tick(100 + 15_999);
    assert!(!l.has_interrupt());
    l.tick(100 + 16_000);
    assert_eq!(l.acknowledge(), 0x41);
    assert_eq!(read(&mut l, reg::TIMER_CURRENT, 50_000), 0);
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn periodic_reloads_and_keeps_its_phase() {
    let mut l = enabled();
    write(&mut l, reg::TIMER_DIVIDE, 0xB, 0); // divide by 1
    write(&mut l, reg::LVT_TIMER, (1 << 17) | 0x42, 0);
    write(&mut l, reg::TIMER_INITIAL, 500, 0);
    let mut fired = Vec::new();
    let mut now = 0;
    while let Some(d) = l.next_deadline().filter(|&d| d <= 2000) {
        now = d;
        l.tick(now);
        if l.has_interrupt() {
            fired.push(now);
            l.acknowledge();
            write(&mut l, reg::EOI, 0, now);
        }
    }
    assert_eq!(fired, vec![500, 1000, 1500, 2000]);
    assert_eq!(read(&mut l, reg::TIMER_CURRENT, now + 100), 400);
    // Late ticks collapse: one interrupt, the next deadline stays on the 500 ns grid.
    l.tick(3_700);
    assert_eq!(l.acknowledge(), 0x42);
    assert!(!l.has_interrupt());
    assert_eq!(l.next_deadline(), Some(4_000));
}

#[test]
fn a_masked_timer_counts_but_does_not_interrupt() {
    let mut l = enabled();
    write(&mut l, reg::LVT_TIMER, LVT_MASKED | 0x43, 0);
    write(&mut l, reg::TIMER_INITIAL, 100, 0);
    assert_eq!(
        read(&mut l, reg::TIMER_CURRENT, 100),
        50,
        "divide by 2 after reset"
    );
    l.tick(200);
    assert!(!l.has_interrupt());
    assert_eq!(read(&mut l, reg::TIMER_CURRENT, 300), 0);
}

#[test]
fn writing_zero_stops_the_timer() {
    let mut l = enabled();
    write(&mut l, reg::LVT_TIMER, (1 << 17) | 0x42, 0);
    write(&mut l, reg::TIMER_INITIAL, 100, 0);
    write(&mut l, reg::TIMER_INITIAL, 0, 10);
    assert_eq!(l.next_deadline(), None);
    assert_eq!(read(&mut l, reg::TIMER_CURRENT, 20), 0);
}

#[test]
fn tsc_deadline_mode_fires_at_the_deadline_and_disarms() {
    let mut l = enabled();
    write(&mut l, reg::LVT_TIMER, (2 << 17) | 0x46, 0);
    write(&mut l, reg::TIMER_INITIAL, 100, 0);
    assert_eq!(
        l.next_deadline(),
        None,
        "the initial count is ignored in TSC-deadline mode"
    );
    l.msr_write(msr::IA32_TSC_DEADLINE, 5_000, 1_000)
        .unwrap()
        .unwrap();
    assert_eq!(l.msr_read(msr::IA32_TSC_DEADLINE, 1_000), Some(Ok(5_000)));
    assert_eq!(l.next_deadline(), Some(5_000));
    l.tick(5_000);
    assert_eq!(l.acknowledge(), 0x46);
    write(&mut l, reg::EOI, 0, 5_000);
    assert_eq!(
        l.msr_read(msr::IA32_TSC_DEADLINE, 5_000),
        Some(Ok(0)),
        "fired: disarmed"
    );
    // A deadline in the past fires at once; leaving the mode disarms a pending one.
    l.msr_write(msr::IA32_TSC_DEADLINE, 10, 6_000)
        .unwrap()
        .unwrap();
    assert!(l.has_interrupt());
    l.msr_write(msr::IA32_TSC_DEADLINE, 9_000, 6_000)
        .unwrap()
        .unwrap();
    write(&mut l, reg::LVT_TIMER, 0x46, 6_000);
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn tsc_deadline_writes_outside_the_mode_are_ignored() {
    let mut l = enabled();
    l.msr_write(msr::IA32_TSC_DEADLINE, 5_000, 0)
        .unwrap()
        .unwrap();
    assert_eq!(l.next_deadline(), None);
    assert_eq!(l.msr_read(msr::IA32_TSC_DEADLINE, 0), Some(Ok(0)));
}

#[test]
fn changing_the_divider_keeps_the_remaining_count() {
    let mut l = enabled();
    write(&mut l, reg::TIMER_DIVIDE, 0xB, 0); // 1 ns per tick
    write(&mut l, reg::LVT_TIMER, 0x47, 0);
    write(&mut l, reg::TIMER_INITIAL, 1000, 0);
    write(&mut l, reg::TIMER_DIVIDE, 0x0, 400); // 2 ns per tick; 600 ticks left
    assert_eq!(read(&mut l, reg::TIMER_CURRENT, 400), 600);
    assert_eq!(l.next_deadline(), Some(400 + 1200));
}

#[test]
fn an_nmi_ipi_latches_an_nmi_not_a_vector() {
    let mut l = enabled();
    // Self, NMI delivery mode, vector field 0x30 (ignored for NMIs).
    write(
        &mut l,
        reg::ICR_LOW,
        (1 << 18) | DELIVERY_NMI << 8 | 0x30,
        0,
    );
    assert!(!l.has_interrupt(), "an NMI does not go through IRR");
    assert!(l.take_nmi());
    assert!(!l.take_nmi(), "taken once");
    // To another APIC ID: nobody here.
    write(&mut l, reg::ICR_HIGH, 5 << 24, 0);
    write(&mut l, reg::ICR_LOW, DELIVERY_NMI << 8, 0);
    assert!(!l.take_nmi());
}

#[test]
fn lint1_follows_its_lvt_entry() {
    let mut l = enabled();
    l.lint1_edge();
    assert!(!l.take_nmi(), "masked at reset: nothing");
    write(&mut l, reg::LVT_LINT1, DELIVERY_NMI << 8, 0);
    l.lint1_edge();
    assert!(l.take_nmi(), "NMI delivery mode");
    write(&mut l, reg::LVT_LINT1, 0x41, 0);
    l.lint1_edge();
    assert!(!l.take_nmi());
    assert_eq!(l.acknowledge(), 0x41, "fixed delivery mode: its vector");
    // Software-disabled: every LVT entry acts masked.
    write(&mut l, reg::LVT_LINT1, DELIVERY_NMI << 8, 0);
    write(&mut l, reg::SVR, 0xFF, 0);
    l.lint1_edge();
    assert!(!l.take_nmi());
}
