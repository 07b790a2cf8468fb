//! The bus's side of interrupts and machine requests: what the engines ask between
//! instructions (an interrupt to take, an NMI, the acknowledge cycle), the platform MSRs, and the
//! requests a device raised (debug exit, reset, power-off).

use super::*;

impl Bus {
    // ---- interrupts and requests ----

    /// Does the CPU have an external interrupt to take? Either the local APIC has a vector the
    /// priority rules (IRR vs. PPR) let through, or the PIC asserts INTR and reaches the CPU
    /// through LINT0 (ExtINT, or the APIC globally disabled).
    pub fn interrupt_pending(&self) -> bool {
        self.lapic.has_interrupt() || (self.lapic.accepts_pic() && self.pic.has_interrupt())
    }

    /// Takes an NMI the local APIC latched (a self-IPI in NMI mode, or LINT1): the engine makes
    /// it pending in the CPU, where it waits until NMIs are unblocked.
    pub fn take_nmi(&mut self) -> bool {
        self.lapic.take_nmi()
    }

    /// Is an NMI waiting for the engine to take it? (A halted CPU wakes for one.)
    pub fn nmi_latched(&self) -> bool {
        self.lapic.nmi_latched()
    }

    /// The board's NMI line (a front-panel NMI button, or QEMU's monitor command `nmi`): an edge
    /// on the local APIC's LINT1 pin.
    pub fn raise_nmi(&mut self) {
        self.lapic.lint1_edge();
    }

    /// The interrupt-acknowledge cycle: the local APIC's vector goes first (IRR → ISR), else the
    /// PIC hands over its vector and marks it in service. With neither — the request went away
    /// between the poll and the acknowledge — the CPU gets a spurious vector.
    pub fn acknowledge_interrupt(&mut self) -> u8 {
        if self.lapic.has_interrupt() {
            self.lapic.acknowledge()
        } else if self.lapic.accepts_pic() {
            self.pic.acknowledge()
        } else {
            self.lapic.spurious_vector()
        }
    }

    /// RDMSR of an MSR that belongs to the platform: IA32_APIC_BASE (0x1B), IA32_TSC_DEADLINE
    /// (0x6E0) and the x2APIC registers (0x800–0x8FF). `None`: not a bus MSR, the engine's own;
    /// `Some(Err(_))`: the CPU raises #GP(0).
    pub fn msr_read(&mut self, index: u32) -> Option<Result<u64, ApicError>> {
        let now = self.clock.now_ns();
        let r = self.lapic.msr_read(index, now)?;
        *self.stats.by_device.entry("lapic").or_default() += 1;
        Some(r)
    }

    /// WRMSR of a platform MSR (see [`Bus::msr_read`]).
    pub fn msr_write(&mut self, index: u32, value: u64) -> Option<Result<(), ApicError>> {
        let now = self.clock.now_ns();
        let r = self.lapic.msr_write(index, value, now)?;
        self.deadline_epoch = self.deadline_epoch.wrapping_add(1);
        *self.stats.by_device.entry("lapic").or_default() += 1;
        self.sync_irqs();
        Some(r)
    }

    /// Requests devices made since the last call (exit, reset).
    pub fn take_events(&mut self) -> Vec<MachineEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }
}
