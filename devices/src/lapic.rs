//! The local APIC: the CPU's own interrupt controller, reached as xAPIC MMIO at 0xFEE00000 or as
//! x2APIC MSRs 0x800–0x8FF. Teaches: interrupt priority (IRR → ISR, TPR/PPR), EOI, the LVT,
//! self-IPIs and the APIC timer — how a modern x86 CPU decides which interrupt to take next.
//!
//! Each of the 256 vectors has three bits: **IRR** (requested), **ISR** (in service: the CPU took
//! it and has not yet written EOI) and **TMR** (it was level-triggered, so its EOI must be passed
//! on to the IOAPIC). The *priority class* of a vector is its upper nibble. The processor priority
//! **PPR** is the higher of the task priority **TPR** (set by software) and the class of the
//! highest in-service vector; an interrupt is delivered only if its class is above PPR's class.
//!
//! The **local vector table** (LVT) says what each local source does: the timer, thermal and
//! performance sensors, the LINT0/LINT1 pins and internal errors. On a PC the legacy 8259 PIC is
//! wired to LINT0, programmed as *ExtINT*: "ask the PIC for the vector". That is how the PIC still
//! works on a CPU with an APIC (see [`LocalApic::accepts_pic`]).
//!
//! The reset state is the one QEMU and KVM present after a BIOS: globally enabled at 0xFEE00000,
//! software-disabled (SVR bit 8 clear), LINT0 = ExtINT unmasked, every other LVT entry masked.
//! **NMI** comes two ways: an IPI with NMI delivery mode (to self), and the LINT1 pin, where a PC
//! wires the chipset's NMI line (LVT LINT1 programmed with NMI delivery mode; with the APIC
//! globally disabled the pin goes straight to the CPU). Either latches [`LocalApic::take_nmi`];
//! the engines move it into the CPU's `PendingEvents`, which blocks further NMIs until IRET.
//! What is not modelled: SMI, INIT and SIPI delivery (one CPU), lowest-priority arbitration (one
//! CPU wins it), EOI-broadcast suppression (not advertised).

#[cfg(test)]
mod tests;
mod timer;

use timer::ApicTimer;
pub use timer::{TimerMode, BUS_TICKS_PER_NS};

/// Default guest-physical base of the xAPIC register page.
pub const LAPIC_BASE: u64 = 0xFEE0_0000;
/// Size of the xAPIC register page.
pub const LAPIC_WINDOW: u64 = 0x1000;

/// The MSRs of the local APIC that live outside the x2APIC range.
pub mod msr {
    /// IA32_APIC_BASE: base address, global enable (bit 11), x2APIC mode (bit 10), BSP (bit 8).
    pub const IA32_APIC_BASE: u32 = 0x1B;
    /// IA32_TSC_DEADLINE: the TSC value at which the timer fires in TSC-deadline mode.
    pub const IA32_TSC_DEADLINE: u32 = 0x6E0;
    /// First and last MSR of the x2APIC register space (register = MSR - 0x800).
    pub const X2APIC_FIRST: u32 = 0x800;
    pub const X2APIC_LAST: u32 = 0x8FF;
}

/// IA32_APIC_BASE bits.
pub mod base {
    pub const BSP: u64 = 1 << 8;
    pub const X2APIC: u64 = 1 << 10;
    pub const ENABLE: u64 = 1 << 11;
    /// The page address bits (MAXPHYADDR = 40).
    pub const ADDR_MASK: u64 = 0xFF_FFFF_F000;
}

/// Register numbers: the xAPIC MMIO offset divided by 16, which is also the x2APIC MSR minus 0x800.
pub mod reg {
    pub const ID: u32 = 0x02;
    pub const VERSION: u32 = 0x03;
    pub const TPR: u32 = 0x08;
    pub const APR: u32 = 0x09;
    pub const PPR: u32 = 0x0A;
    pub const EOI: u32 = 0x0B;
    pub const RRD: u32 = 0x0C;
    pub const LDR: u32 = 0x0D;
    pub const DFR: u32 = 0x0E;
    pub const SVR: u32 = 0x0F;
    pub const ISR0: u32 = 0x10;
    pub const TMR0: u32 = 0x18;
    pub const IRR0: u32 = 0x20;
    pub const ESR: u32 = 0x28;
    pub const ICR_LOW: u32 = 0x30;
    pub const ICR_HIGH: u32 = 0x31;
    pub const LVT_TIMER: u32 = 0x32;
    pub const LVT_THERMAL: u32 = 0x33;
    pub const LVT_PERF: u32 = 0x34;
    pub const LVT_LINT0: u32 = 0x35;
    pub const LVT_LINT1: u32 = 0x36;
    pub const LVT_ERROR: u32 = 0x37;
    pub const TIMER_INITIAL: u32 = 0x38;
    pub const TIMER_CURRENT: u32 = 0x39;
    pub const TIMER_DIVIDE: u32 = 0x3E;
    /// x2APIC only: writing a vector sends a fixed IPI to this CPU.
    pub const SELF_IPI: u32 = 0x3F;
}

/// Version register: version 0x14 (an integrated APIC), 6 LVT entries (max LVT index 5) — as QEMU.
pub const VERSION: u32 = 0x0005_0014;

/// LVT bit: the entry is masked.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT/ICR delivery mode field (bits 8–10) values.
pub const DELIVERY_FIXED: u32 = 0;
pub const DELIVERY_LOWEST: u32 = 1;
pub const DELIVERY_NMI: u32 = 4;
pub const DELIVERY_EXTINT: u32 = 7;
/// SVR bit 8: the APIC is software-enabled.
pub const SVR_ENABLE: u32 = 1 << 8;
/// ESR bits.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Writable bits of each LVT entry (timer, thermal, perf, LINT0, LINT1, error).
const LVT_WRITABLE: [u32; 6] = [
    0x0007_00FF,
    0x0001_07FF,
    0x0001_07FF,
    0x0001_A7FF,
    0x0001_A7FF,
    0x0001_00FF,
];

/// Why an x2APIC or APIC MSR access fails; the CPU raises #GP(0) for every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApicError {
    /// The x2APIC MSRs exist only while IA32_APIC_BASE has both EN and EXTD set.
    #[error("MSR {0:#x} is an x2APIC register, but the local APIC is not in x2APIC mode")]
    NotX2Apic(u32),
    /// There is no x2APIC register at this MSR.
    #[error("MSR {0:#x} is not an x2APIC register")]
    NoSuchRegister(u32),
    /// The register can only be read.
    #[error("x2APIC register MSR {0:#x} is read-only")]
    ReadOnly(u32),
    /// The register can only be written (EOI, SELF IPI).
    #[error("x2APIC register MSR {0:#x} is write-only")]
    WriteOnly(u32),
    /// The value sets bits the register reserves.
    #[error("reserved bits set writing {value:#x} to MSR {index:#x}")]
    ReservedBits { index: u32, value: u64 },
    /// IA32_APIC_BASE only allows disabled ⇄ xAPIC ⇄ x2APIC → disabled.
    #[error("IA32_APIC_BASE cannot change from {from:#x} to {to:#x}")]
    InvalidTransition { from: u64, to: u64 },
}

/// A 256-bit register (IRR, ISR, TMR) as eight 32-bit words, as the guest sees them.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VectorBits(pub [u32; 8]);

impl VectorBits {
    pub fn get(&self, v: u8) -> bool {
        self.0[v as usize / 32] & (1 << (v % 32)) != 0
    }
    pub fn set(&mut self, v: u8, on: bool) {
        let bit = 1 << (v % 32);
        if on {
            self.0[v as usize / 32] |= bit;
        } else {
            self.0[v as usize / 32] &= !bit;
        }
    }
    /// The highest vector whose bit is set.
    pub fn highest(&self) -> Option<u8> {
        (0..8)
            .rev()
            .find(|&i| self.0[i] != 0)
            .map(|i| (i * 32 + 31 - self.0[i].leading_zeros() as usize) as u8)
    }
}

/// One local APIC (vmscope has one CPU, APIC ID 0).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct LocalApic {
    apic_base: u64,
    /// The APIC ID (xAPIC: bits 31–24 of the ID register; x2APIC: the whole register).
    id: u32,
    tpr: u32,
    svr: u32,
    ldr: u32,
    dfr: u32,
    pub irr: VectorBits,
    pub isr: VectorBits,
    pub tmr: VectorBits,
    /// ESR as last latched (read side) and errors seen since (latched by the next ESR write).
    esr: u32,
    esr_pending: u32,
    icr: u64,
    lvt: [u32; 6],
    timer: ApicTimer,
    /// Cached result of the priority check, so the per-instruction poll is one load.
    deliverable: Option<u8>,
    /// Vectors of level-triggered interrupts whose EOI the IOAPIC must hear about.
    eoi_broadcasts: Vec<u8>,
    /// An NMI was delivered to this CPU and the engine has not taken it yet.
    nmi_latched: bool,
}

impl Default for LocalApic {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalApic {
    /// The state a PC BIOS leaves the bootstrap processor's APIC in (see the module docs).
    pub fn new() -> Self {
        let mut apic = LocalApic::disabled_state(LAPIC_BASE | base::ENABLE | base::BSP);
        apic.lvt[lvt_index(reg::LVT_LINT0)] = DELIVERY_EXTINT << 8;
        apic
    }

    /// The architectural reset values of every register, with the given IA32_APIC_BASE.
    fn disabled_state(apic_base: u64) -> Self {
        LocalApic {
            apic_base,
            id: 0,
            tpr: 0,
            svr: 0xFF,
            ldr: 0,
            dfr: 0xFFFF_FFFF,
            irr: VectorBits::default(),
            isr: VectorBits::default(),
            tmr: VectorBits::default(),
            esr: 0,
            esr_pending: 0,
            icr: 0,
            lvt: [LVT_MASKED; 6],
            timer: ApicTimer::default(),
            deliverable: None,
            eoi_broadcasts: Vec::new(),
            nmi_latched: false,
        }
    }

    // ---- state queries ----

    pub fn apic_base(&self) -> u64 {
        self.apic_base
    }

    /// IA32_APIC_BASE.EN: the APIC exists for software.
    pub fn hardware_enabled(&self) -> bool {
        self.apic_base & base::ENABLE != 0
    }

    /// SVR bit 8 (and the hardware enable): the APIC accepts and delivers interrupts.
    pub fn software_enabled(&self) -> bool {
        self.hardware_enabled() && self.svr & SVR_ENABLE != 0
    }

    pub fn x2apic_mode(&self) -> bool {
        self.hardware_enabled() && self.apic_base & base::X2APIC != 0
    }

    /// Where the xAPIC register page answers, if it does (not when disabled or in x2APIC mode).
    pub fn mmio_base(&self) -> Option<u64> {
        (self.hardware_enabled() && !self.x2apic_mode()).then_some(self.apic_base & base::ADDR_MASK)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// The timer mode the LVT timer entry selects.
    pub fn timer_mode(&self) -> TimerMode {
        TimerMode::from_lvt(self.lvt[0])
    }

    /// The LVT entry of a register number (`reg::LVT_TIMER` … `reg::LVT_ERROR`).
    pub fn lvt(&self, register: u32) -> u32 {
        self.lvt[lvt_index(register)]
    }

    /// Does the PIC's INTR reach the CPU? Yes when the APIC is globally disabled (LINT0 is then a
    /// plain INTR pin), or when LINT0 is unmasked in ExtINT mode — the "virtual wire" a BIOS sets up.
    pub fn accepts_pic(&self) -> bool {
        let lint0 = self.lvt[lvt_index(reg::LVT_LINT0)];
        !self.hardware_enabled() || (lint0 & LVT_MASKED == 0 && (lint0 >> 8) & 7 == DELIVERY_EXTINT)
    }

    /// The task-priority register (0x80); CR8 in 64-bit mode is its bits 7:4.
    pub fn tpr(&self) -> u8 {
        self.tpr as u8
    }

    /// Writes the task priority (what MOV to CR8 does, with the value shifted left by 4).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = tpr as u32;
        self.update();
    }

    /// The processor priority: TPR, or the class of the highest vector in service if higher.
    pub fn ppr(&self) -> u32 {
        let isrv = self.isr.highest().unwrap_or(0) as u32;
        if self.tpr & 0xF0 >= isrv & 0xF0 {
            self.tpr & 0xFF
        } else {
            isrv & 0xF0
        }
    }

    /// Is an interrupt waiting that the priority rules let through now?
    pub fn has_interrupt(&self) -> bool {
        self.deliverable.is_some()
    }

    /// The spurious-interrupt vector (SVR bits 0–7).
    pub fn spurious_vector(&self) -> u8 {
        self.svr as u8
    }

    fn update(&mut self) {
        self.deliverable = None;
        if !self.hardware_enabled() {
            return;
        }
        if let Some(v) = self.irr.highest() {
            if v as u32 & 0xF0 > self.ppr() & 0xF0 {
                self.deliverable = Some(v);
            }
        }
    }

    // ---- interrupt flow ----

    /// A fixed interrupt arrives (from the IOAPIC, an IPI or a local source): set IRR, and TMR
    /// for level-triggered ones. A software-disabled APIC drops it; vectors 0–15 are illegal.
    pub fn accept(&mut self, vector: u8, level_triggered: bool) {
        if vector < 16 {
            self.record_error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        if !self.software_enabled() {
            return;
        }
        self.irr.set(vector, true);
        self.tmr.set(vector, level_triggered);
        self.update();
    }

    /// The interrupt-acknowledge cycle: the highest deliverable vector moves from IRR to ISR.
    /// With nothing deliverable (the request vanished) the CPU gets the spurious vector.
    pub fn acknowledge(&mut self) -> u8 {
        let Some(v) = self.deliverable else {
            return self.spurious_vector();
        };
        self.irr.set(v, false);
        self.isr.set(v, true);
        self.update();
        v
    }

    /// A write to the EOI register: the highest in-service vector is done.
    pub fn end_of_interrupt(&mut self) {
        if let Some(v) = self.isr.highest() {
            self.isr.set(v, false);
            if self.tmr.get(v) {
                self.eoi_broadcasts.push(v);
            }
            self.update();
        }
    }

    /// Level-triggered vectors whose EOI happened since the last call (for the IOAPIC).
    pub fn take_eoi_broadcasts(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.eoi_broadcasts)
    }

    fn record_error(&mut self, bits: u32) {
        let new = bits & !self.esr_pending;
        self.esr_pending |= bits;
        let lvt = self.lvt[lvt_index(reg::LVT_ERROR)];
        if new != 0 && lvt & LVT_MASKED == 0 && (lvt & 0xFF) >= 16 {
            self.accept(lvt as u8, false);
        }
    }

    /// Sends an IPI as written to the ICR (xAPIC: high word = destination in bits 56–63;
    /// x2APIC: bits 32–63). Only fixed and lowest-priority IPIs to this CPU have an effect.
    fn send_ipi(&mut self, icr: u64) {
        let vector = icr as u8;
        let mode = (icr as u32 >> 8) & 7;
        let to_self = match (icr >> 18) & 3 {
            0 => self.is_destination(icr),
            1 | 2 => true, // self; all including self
            _ => false,    // all excluding self: nobody else here
        };
        if mode == DELIVERY_NMI {
            // The vector field is ignored; an NMI to this CPU is latched for the engine.
            self.nmi_latched |= to_self;
            return;
        }
        if mode != DELIVERY_FIXED && mode != DELIVERY_LOWEST {
            return; // SMI, INIT, SIPI: not modelled for a single CPU
        }
        if vector < 16 {
            self.record_error(ESR_SEND_ILLEGAL_VECTOR);
        }
        if to_self {
            self.accept(vector, false);
        }
    }

    /// Takes the latched NMI, if any (the engine then makes it pending in the CPU).
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi_latched)
    }

    /// Is an NMI latched for the CPU?
    pub fn nmi_latched(&self) -> bool {
        self.nmi_latched
    }

    /// An edge on the LINT1 pin (a PC's NMI line). With the APIC globally disabled the pin is
    /// the CPU's NMI input itself; otherwise LVT LINT1 decides: masked — nothing, NMI delivery
    /// mode — an NMI, fixed — its vector as an edge-triggered interrupt.
    pub fn lint1_edge(&mut self) {
        if !self.hardware_enabled() {
            self.nmi_latched = true;
            return;
        }
        let lvt = self.lvt[lvt_index(reg::LVT_LINT1)];
        if lvt & LVT_MASKED != 0 || !self.software_enabled() {
            return;
        }
        match (lvt >> 8) & 7 {
            DELIVERY_NMI => self.nmi_latched = true,
            DELIVERY_FIXED => self.accept(lvt as u8, false),
            _ => {} // ExtINT, SMI, INIT are not for LINT1 here
        }
    }

    fn is_destination(&self, icr: u64) -> bool {
        let logical = icr & (1 << 11) != 0;
        let dest = if self.x2apic_mode() {
            (icr >> 32) as u32
        } else {
            (icr >> 56) as u32
        };
        if logical {
            self.matches_logical(dest)
        } else {
            let broadcast = if self.x2apic_mode() { u32::MAX } else { 0xFF };
            dest == broadcast || dest == self.id
        }
    }

    /// Does a logical destination address this APIC? (Flat or cluster model in xAPIC mode,
    /// cluster in x2APIC mode.) Used by the IOAPIC too.
    pub fn matches_logical(&self, dest: u32) -> bool {
        if self.x2apic_mode() {
            let ldr = self.x2apic_ldr();
            return dest >> 16 == ldr >> 16 && dest & ldr & 0xFFFF != 0;
        }
        let dest = dest & 0xFF;
        let ldr = self.ldr >> 24;
        if self.dfr >> 28 == 0xF {
            dest & ldr != 0 // flat: one bit per CPU
        } else {
            dest >> 4 == ldr >> 4 && dest & ldr & 0xF != 0 // cluster: 4-bit cluster, 4-bit mask
        }
    }

    /// Does a physical destination address this APIC (IOAPIC redirection entries)?
    pub fn matches_physical(&self, dest: u32) -> bool {
        dest == 0xFF || dest == self.id
    }

    fn x2apic_ldr(&self) -> u32 {
        ((self.id >> 4) << 16) | (1 << (self.id & 0xF))
    }

    // ---- the timer ----

    /// When the timer next needs [`LocalApic::tick`].
    pub fn next_deadline(&self) -> Option<u64> {
        self.timer.deadline()
    }

    /// Time has reached `now`: fire the timer if it expired.
    pub fn tick(&mut self, now: u64) {
        let mode = self.timer_mode();
        if self.timer.expire(mode, now) {
            let lvt = self.lvt[0];
            if lvt & LVT_MASKED == 0 {
                self.accept(lvt as u8, false);
            }
        }
    }

    // ---- register file ----

    /// Reads a register by number; `None` where no register is.
    fn read_reg(&self, r: u32, now: u64) -> Option<u32> {
        Some(match r {
            reg::ID if self.x2apic_mode() => self.id,
            reg::ID => self.id << 24,
            reg::VERSION => VERSION,
            reg::TPR => self.tpr,
            reg::APR => 0,
            reg::PPR => self.ppr(),
            reg::LDR if self.x2apic_mode() => self.x2apic_ldr(),
            reg::LDR => self.ldr,
            reg::DFR if !self.x2apic_mode() => self.dfr,
            reg::SVR => self.svr,
            0x10..=0x17 => self.isr.0[(r - reg::ISR0) as usize],
            0x18..=0x1F => self.tmr.0[(r - reg::TMR0) as usize],
            0x20..=0x27 => self.irr.0[(r - reg::IRR0) as usize],
            reg::ESR => self.esr,
            reg::ICR_LOW => self.icr as u32,
            reg::ICR_HIGH if !self.x2apic_mode() => (self.icr >> 32) as u32,
            reg::LVT_TIMER..=reg::LVT_ERROR => self.lvt[lvt_index(r)],
            reg::TIMER_INITIAL => self.timer.initial,
            reg::TIMER_CURRENT => self.timer.current_count(self.timer_mode(), now),
            reg::TIMER_DIVIDE => self.timer.divide_config,
            _ => return None,
        })
    }

    /// Writes a register by number (xAPIC and x2APIC share this; mode checks are the callers').
    fn write_reg(&mut self, r: u32, value: u32, now: u64) {
        match r {
            reg::ID if !self.x2apic_mode() => self.id = value >> 24,
            reg::TPR => self.tpr = value & 0xFF,
            reg::EOI => self.end_of_interrupt(),
            reg::LDR if !self.x2apic_mode() => self.ldr = value & 0xFF00_0000,
            reg::DFR if !self.x2apic_mode() => self.dfr = value | 0x0FFF_FFFF,
            reg::SVR => {
                self.svr = value & 0x3FF;
                if value & SVR_ENABLE == 0 {
                    // Software disable masks every LVT entry (SDM 10.4.7.2).
                    for lvt in &mut self.lvt {
                        *lvt |= LVT_MASKED;
                    }
                }
            }
            reg::ESR => {
                self.esr = std::mem::take(&mut self.esr_pending);
            }
            reg::ICR_LOW => {
                self.icr = (self.icr & !0xFFFF_FFFF) | (value & 0x000C_CFFF) as u64;
                self.send_ipi(self.icr);
            }
            reg::ICR_HIGH => {
                self.icr = (self.icr & 0xFFFF_FFFF) | ((value & 0xFF00_0000) as u64) << 32
            }
            reg::LVT_TIMER..=reg::LVT_ERROR => {
                let i = lvt_index(r);
                let mut v = value & LVT_WRITABLE[i];
                if !self.software_enabled() {
                    v |= LVT_MASKED; // cannot unmask while software-disabled
                }
                let old_mode = self.timer_mode();
                self.lvt[i] = v;
                if i == 0 {
                    self.timer.mode_changed(old_mode, self.timer_mode());
                }
            }
            reg::TIMER_INITIAL => self.timer.load(value, self.timer_mode(), now),
            reg::TIMER_DIVIDE => self.timer.set_divide(value, self.timer_mode(), now),
            reg::SELF_IPI if self.x2apic_mode() => self.accept(value as u8, false),
            _ => {}
        }
        self.update();
    }

    // ---- xAPIC MMIO ----

    /// An MMIO read at `offset` in the register page. Registers are 32 bits wide at 16-byte
    /// boundaries; narrower reads see part of the register, the padding reads as zero.
    pub fn mmio_read(&mut self, offset: u64, size: u8, now: u64) -> u64 {
        let within = (offset & 0xF) as u32;
        if within + size as u32 > 4 {
            return 0;
        }
        let r = (offset >> 4) as u32 & 0xFF;
        let value = match r {
            reg::EOI | reg::SELF_IPI => Some(0),
            _ => self.read_reg(r, now),
        };
        match value {
            Some(v) => (v >> (8 * within)) as u64,
            None => {
                self.record_error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    /// An MMIO write. Only aligned 32-bit writes reach a register (as on hardware, where
    /// other widths are undefined); read-only registers ignore writes.
    pub fn mmio_write(&mut self, offset: u64, size: u8, value: u64, now: u64) {
        if offset & 0xF != 0 || size != 4 {
            return;
        }
        let r = (offset >> 4) as u32 & 0xFF;
        if r == reg::SELF_IPI {
            return; // x2APIC only
        }
        if self.read_reg(r, now).is_none() && r != reg::EOI {
            self.record_error(ESR_ILLEGAL_REGISTER);
            return;
        }
        self.write_reg(r, value as u32, now);
    }

    // ---- MSRs ----

    /// RDMSR of IA32_APIC_BASE, IA32_TSC_DEADLINE or an x2APIC register; `None` for other MSRs.
    pub fn msr_read(&mut self, index: u32, now: u64) -> Option<Result<u64, ApicError>> {
        Some(match index {
            msr::IA32_APIC_BASE => Ok(self.apic_base),
            msr::IA32_TSC_DEADLINE => Ok(match self.timer_mode() {
                TimerMode::TscDeadline => self.timer.tsc_deadline,
                _ => 0,
            }),
            msr::X2APIC_FIRST..=msr::X2APIC_LAST => self.x2apic_read(index, now),
            _ => return None,
        })
    }

    fn x2apic_read(&mut self, index: u32, now: u64) -> Result<u64, ApicError> {
        if !self.x2apic_mode() {
            return Err(ApicError::NotX2Apic(index));
        }
        let r = index - msr::X2APIC_FIRST;
        match r {
            reg::EOI | reg::SELF_IPI => Err(ApicError::WriteOnly(index)),
            reg::ICR_LOW => Ok(self.icr),
            _ => self
                .read_reg(r, now)
                .map(u64::from)
                .ok_or(ApicError::NoSuchRegister(index)),
        }
    }

    /// WRMSR of IA32_APIC_BASE, IA32_TSC_DEADLINE or an x2APIC register; `None` for other MSRs.
    pub fn msr_write(&mut self, index: u32, value: u64, now: u64) -> Option<Result<(), ApicError>> {
        Some(match index {
            msr::IA32_APIC_BASE => self.set_apic_base(value),
            msr::IA32_TSC_DEADLINE => {
                self.timer.set_tsc_deadline(value, self.timer_mode());
                self.tick(now); // a deadline already in the past fires at once
                Ok(())
            }
            msr::X2APIC_FIRST..=msr::X2APIC_LAST => self.x2apic_write(index, value, now),
            _ => return None,
        })
    }

    fn x2apic_write(&mut self, index: u32, value: u64, now: u64) -> Result<(), ApicError> {
        if !self.x2apic_mode() {
            return Err(ApicError::NotX2Apic(index));
        }
        let r = index - msr::X2APIC_FIRST;
        let reserved = |mask: u64| {
            if value & !mask != 0 {
                Err(ApicError::ReservedBits { index, value })
            } else {
                Ok(())
            }
        };
        match r {
            reg::ID | reg::VERSION | reg::PPR | reg::LDR | reg::TIMER_CURRENT => {
                return Err(ApicError::ReadOnly(index))
            }
            0x10..=0x27 => return Err(ApicError::ReadOnly(index)),
            reg::EOI | reg::ESR => reserved(0)?,
            reg::TPR | reg::SELF_IPI => reserved(0xFF)?,
            reg::SVR => reserved(0x3FF)?,
            reg::ICR_LOW => {
                reserved(0xFFFF_FFFF_000C_CFFF)?;
                self.icr = value;
                self.send_ipi(value);
                self.update();
                return Ok(());
            }
            reg::LVT_TIMER..=reg::LVT_ERROR => reserved(LVT_WRITABLE[lvt_index(r)] as u64)?,
            reg::TIMER_INITIAL => reserved(0xFFFF_FFFF)?,
            reg::TIMER_DIVIDE => reserved(0xB)?,
            _ => return Err(ApicError::NoSuchRegister(index)),
        }
        self.write_reg(r, value as u32, now);
        Ok(())
    }

    /// WRMSR IA32_APIC_BASE: relocate, enable/disable, switch to x2APIC mode.
    fn set_apic_base(&mut self, value: u64) -> Result<(), ApicError> {
        let allowed = base::ADDR_MASK | base::X2APIC | base::ENABLE | base::BSP;
        let invalid = ApicError::InvalidTransition {
            from: self.apic_base,
            to: value,
        };
        if value & !allowed != 0 {
            return Err(ApicError::ReservedBits {
                index: msr::IA32_APIC_BASE,
                value,
            });
        }
        let mode = |v: u64| (v & base::ENABLE != 0, v & base::X2APIC != 0);
        let value = (value & !base::BSP) | (self.apic_base & base::BSP); // BSP is read-only
        match (mode(self.apic_base), mode(value)) {
            (_, (false, true)) => return Err(invalid), // x2APIC without enable
            ((true, true), (true, false)) => return Err(invalid), // x2APIC → xAPIC
            ((false, _), (true, true)) => return Err(invalid), // disabled → x2APIC
            _ => {}
        }
        if value & base::ENABLE == 0 {
            // Disabling the APIC resets it; re-enabling finds every LVT entry masked.
            let id = self.id;
            *self = LocalApic::disabled_state(value);
            self.id = id;
        } else {
            self.apic_base = value;
        }
        self.update();
        Ok(())
    }
}

fn lvt_index(register: u32) -> usize {
    (register - reg::LVT_TIMER) as usize
}
