//! The interpreter: executes one guest instruction at a time, the project's reference semantics.
//! Teaches: the fetch–decode–execute loop, and where interrupts and exceptions fit between instructions.
//!
//! iced-x86 decodes; everything after decoding is ours, written to be read: `access` (registers,
//! memory through segments and the MMU), `flags`, `alu`, `control`, `string`, `system`, `segments`
//! and `exceptions` (delivery through the IVT/IDT, double and triple faults).

mod access;
mod alu;
mod alu_muldiv;
mod alu_shift;
mod boundary;
mod control;
mod debug;
mod decode_cache;
mod descriptors;
pub(crate) mod exceptions;
mod flags;
mod gates;
mod legacy;
pub(crate) mod pv_door;
mod segments;
mod simd;
mod string;
mod sysenter;
mod system;
mod task;
mod x87;

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic};

use crate::cpu::{flags as fl, CpuMode, CpuState};
use crate::machine::{Engine, EngineError, Exit, Machine, RunLimit};
use crate::mmu::{Access, Mmu};

pub(crate) use boundary::{at_boundary, retire, Boundary, Timing};
pub use decode_cache::DecodeCacheStats;

pub(crate) use access::{is_canonical, mask, seg_of, sext};
pub(crate) use decode_cache::DecodeCache;

/// The pure semantic functions the binary translator shares with the interpreter: one
/// definition of each instruction's arithmetic.
pub(crate) mod alu_api {
    pub(crate) use super::alu::{binary, inc_dec, BinOp};
    pub(crate) use super::alu_muldiv::imul_truncated;
    pub(crate) use super::alu_shift::shift_value;
    pub(crate) use super::flags::condition;

    /// Status flags of `a + b`, `a - b` and a logical result at `size` bytes.
    #[inline(always)]
    pub(crate) fn add_flags(a: u64, b: u64, size: u32) -> u64 {
        super::flags::add(a, b, 0, size).1
    }
    #[inline(always)]
    pub(crate) fn sub_flags(a: u64, b: u64, size: u32) -> u64 {
        super::flags::sub(a, b, 0, size).1
    }
    #[inline(always)]
    pub(crate) fn logic_flags(r: u64, size: u32) -> u64 {
        super::flags::logic(r, size)
    }
}
pub use exceptions::vector_name;

/// Why the current instruction could not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// An exception to deliver to the guest (fault: RIP stays at the instruction).
    Exception {
        vector: u8,
        error_code: Option<u32>,
        /// The faulting linear address, for #PF (goes to CR2).
        cr2: Option<u64>,
    },
    /// Stop running and report to the user (triple fault, device request).
    Stop(Exit),
}

pub(crate) type R<T> = Result<T, Fault>;

pub(crate) mod vec {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    /// x87 floating-point error (an unmasked exception, with CR0.NE).
    pub const MF: u8 = 16;
}

pub(crate) fn exception(vector: u8, error_code: Option<u32>) -> Fault {
    Fault::Exception {
        vector,
        error_code,
        cr2: None,
    }
}

pub(crate) fn gp(code: u32) -> Fault {
    exception(vec::GP, Some(code))
}

pub(crate) fn ud() -> Fault {
    exception(vec::UD, None)
}

/// The interpreter engine.
#[derive(Default)]
pub struct Interpreter {
    pub(crate) mmu: Mmu,
    code: decode_cache::DecodeCache,
    /// When recording: every guest-physical write (address, size) the interpreter made.
    write_log: Option<Vec<(u64, u32)>>,
    /// `Machine::memory_epoch` when the decode cache was last known good.
    seen_epoch: u64,
}

impl Interpreter {
    pub fn new() -> Self {
        Interpreter::default()
    }

    /// An interpreter whose shadow MMU uses `config` (e.g. without address-space retention).
    pub fn with_mmu_config(config: crate::mmu::ShadowConfig) -> Self {
        Interpreter {
            mmu: Mmu::with_config(config),
            ..Interpreter::default()
        }
    }

    /// The software MMU (its shadow address spaces can be listed and explained).
    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// Flushes cached translations and decoded instructions, e.g. after another engine ran or a
    /// loader or debugger wrote guest memory behind the interpreter's back.
    pub fn flush_caches(&mut self, machine: &mut Machine) {
        self.mmu.flush(&mut machine.stats, false);
        self.code.flush();
    }

    /// Delivers a hardware interrupt with `vector` at the current instruction boundary, as the
    /// CPU does between instructions (the frame pushed, the gate's handler entered). For an
    /// engine that must not let the hardware do it: KVM while single-stepping, where the
    /// pushed RFLAGS would carry the trap flag KVM uses to step. `Some(exit)` if the delivery
    /// itself stopped the machine (a triple fault).
    pub fn deliver_external_interrupt(
        &mut self,
        machine: &mut Machine,
        vector: u8,
    ) -> Option<Exit> {
        self.flush_caches(machine);
        let mut cpu = Cpu::new(machine, &mut self.mmu, &mut self.code, &mut self.write_log);
        cpu.start_rip = cpu.s().rip;
        cpu.st().events.halted = false;
        let exit = match exceptions::deliver_external(&mut cpu, vector) {
            Err(Fault::Stop(exit)) => Some(exit),
            _ => None,
        };
        cpu.sync_clock();
        exit
    }

    /// Counters of the decoded-instruction cache.
    pub fn decode_cache_stats(&self) -> DecodeCacheStats {
        self.code.stats
    }

    /// Starts (or stops) recording the guest-physical writes the interpreter makes, as a
    /// conformance harness needs to check that nothing else changed.
    pub fn record_writes(&mut self, on: bool) {
        self.write_log = on.then(Vec::new);
    }

    /// The writes recorded since the last call, as (guest-physical address, size in bytes).
    pub fn take_recorded_writes(&mut self) -> Vec<(u64, u32)> {
        self.write_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// The execution context of one instruction: the machine, the MMU, and where the instruction is.
pub(crate) struct Cpu<'a> {
    pub m: &'a mut Machine,
    pub mmu: &'a mut Mmu,
    pub code: &'a mut decode_cache::DecodeCache,
    pub write_log: &'a mut Option<Vec<(u64, u32)>>,
    /// RIP of the instruction being executed (faults report it).
    pub start_rip: u64,
    /// Guest virtual time in ns, advanced by one per retired instruction.
    pub now_ns: u64,
    /// Did anything reach the bus (I/O, MMIO, MSRs, time) since interrupts were last polled?
    /// Only then can the answer of `Bus::interrupt_pending` have changed, so the run loop asks
    /// the interrupt controllers again only then instead of before every instruction.
    pub bus_touched: bool,
    /// `Bus::interrupt_pending` as of the last poll.
    pub irq_pending: bool,
    /// Which unit executes each mnemonic (see `dispatch_table`).
    units: &'static [Unit],
    /// DR0–DR3 data breakpoints hit by the current instruction (DR6 bits 0–3), reported as a
    /// #DB trap when it completes.
    pub data_hits: u64,
    /// Set when an access reached something other than RAM (a device may now want an interrupt)
    /// or wrote to a page holding translated code. The binary translator ends a block early
    /// when it sees it; the interpreter, which looks between every instruction anyway, ignores it.
    pub end_block: bool,
    /// Status flags the translator has deferred (see `bt::lazy`); the interpreter never
    /// defers, and RFLAGS is exact whenever code outside a translated block runs.
    pub lazy: crate::bt::lazy::LazyFlags,
    /// The translator's TLB for ring-3 data accesses (see `bt::tlb`); unused by the interpreter.
    pub tlb: crate::bt::tlb::SoftTlb,
}

impl<'a> Cpu<'a> {
    /// The context an engine runs instructions in, with virtual time taken from the bus.
    pub(crate) fn new(
        m: &'a mut Machine,
        mmu: &'a mut Mmu,
        code: &'a mut decode_cache::DecodeCache,
        write_log: &'a mut Option<Vec<(u64, u32)>>,
    ) -> Self {
        let now_ns = m.bus.now_ns();
        Cpu {
            m,
            mmu,
            code,
            write_log,
            start_rip: 0,
            now_ns,
            bus_touched: true,
            irq_pending: false,
            units: dispatch_table(),
            data_hits: 0,
            end_block: false,
            lazy: Default::default(),
            tlb: Default::default(),
        }
    }
}

impl Cpu<'_> {
    pub fn s(&self) -> &CpuState {
        &self.m.cpu
    }

    pub fn st(&mut self) -> &mut CpuState {
        &mut self.m.cpu
    }

    /// Every guest-physical write the interpreter makes ends here: the decoded-instruction cache
    /// drops the instructions it overlaps (self-modifying code), a recording logs it.
    #[inline]
    pub fn phys_write(&mut self, phys: u64, size: u32, value: u64) {
        if self.code.note_write(phys, size) {
            self.end_block = true;
        }
        if let Some(log) = self.write_log.as_mut() {
            log.push((phys, size));
        }
        if !self.m.ram.contains(phys, size as usize) {
            self.bus_touched = true;
            self.end_block = true;
            self.m.phys_write(phys, size as usize, value);
            self.absorb_device_writes();
            return;
        }
        self.m.phys_write(phys, size as usize, value);
    }

    // ANCHOR: absorb_device_writes
    /// Device DMA into guest RAM since the last bus access is treated like the CPU's own
    /// writes: decoded instructions and translated blocks it overlaps are dropped, and shadow
    /// entries built from page-table frames it rewrote are queued for the compare-and-drop a
    /// write-protect trap would have caused.
    pub fn absorb_device_writes(&mut self) {
        if !self.m.bus.has_dma_writes() {
            return;
        }
        for w in self.m.bus.take_dma_writes() {
            self.m.ram.mark_dirty(w.addr, w.len);
            let end = w.addr.saturating_add(w.len);
            let mut at = w.addr;
            while at < end {
                let chunk = (end - at).min(0x1000 - (at & 0xFFF));
                self.code.note_write(at, chunk as u32);
                self.mmu.device_wrote_frame(at);
                at += chunk;
            }
        }
        self.end_block = true;
    }
    // ANCHOR_END: absorb_device_writes

    /// Reads guest-physical memory; anything but RAM may be a device, which counts as a bus access.
    #[inline]
    pub fn phys_read(&mut self, phys: u64, size: u32) -> u64 {
        if !self.m.ram.contains(phys, size as usize) {
            self.bus_touched = true;
            self.end_block = true;
            let v = self.m.phys_read(phys, size as usize);
            self.absorb_device_writes();
            return v;
        }
        self.m.phys_read(phys, size as usize)
    }

    /// The time-stamp counter: virtual time in ns plus what WRMSR IA32_TSC set (wrapping).
    pub fn tsc(&self) -> u64 {
        self.now_ns.wrapping_add(self.s().msrs.tsc_offset)
    }

    /// Brings the device clock up to the CPU's time (before any device access).
    pub fn sync_clock(&mut self) {
        self.m
            .bus
            .advance_time_with(self.now_ns, self.m.ram.as_mut_slice());
        self.bus_touched = true;
        self.absorb_device_writes();
    }

    /// Is an interrupt request pending at the controllers? Asks the bus only after the CPU
    /// touched it (see `bus_touched`); the answer cannot change otherwise.
    #[inline]
    fn interrupt_requested(&mut self) -> bool {
        if self.bus_touched {
            self.irq_pending = self.m.bus.interrupt_pending();
            self.bus_touched = false;
        }
        self.irq_pending
    }

    /// Checks for device requests (debug exit, reset) raised by the last access.
    pub fn check_device_events(&mut self) -> R<()> {
        if !self.m.bus.has_events() {
            return Ok(());
        }
        // The first request wins; later ones in the same access are moot once the machine stops.
        match self.m.bus.take_events().first() {
            Some(event @ devices::MachineEvent::DebugExit { value }) => {
                let status = event.exit_status().unwrap_or(1);
                Err(Fault::Stop(Exit::DebugExit {
                    value: *value,
                    status,
                }))
            }
            Some(devices::MachineEvent::ResetRequested) => Err(Fault::Stop(Exit::ResetRequested)),
            Some(devices::MachineEvent::PowerOff) => Err(Fault::Stop(Exit::PowerOff)),
            None => Ok(()),
        }
    }
}

impl Engine for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn describe(&self) -> String {
        "interp (software, one instruction at a time)".to_string()
    }

    fn run(&mut self, machine: &mut Machine, limit: RunLimit) -> Result<Exit, EngineError> {
        if machine.memory_epoch != self.seen_epoch {
            // Memory changed where the interpreter did not see it: decoded bytes may be stale
            // (the MMU checks the epoch itself).
            self.code.flush();
            self.seen_epoch = machine.memory_epoch;
        }
        let mut cpu = Cpu::new(machine, &mut self.mmu, &mut self.code, &mut self.write_log);
        pv_door::adopt_kvmclock(&mut cpu);
        // A device the host serviced between runs (`Bus::service_device`) may have written RAM.
        cpu.absorb_device_writes();
        let exit = run_loop(&mut cpu, limit);
        cpu.sync_clock();
        Ok(exit)
    }
}

// ANCHOR: run_loop
fn run_loop(cpu: &mut Cpu, limit: RunLimit) -> Exit {
    let first = cpu.m.stats.instructions;
    let io_start = cpu.m.stats.io_accesses();
    let time_end = limit.time_ns.map(|t| cpu.now_ns.saturating_add(t));
    let mut timing = Timing::new(cpu, time_end);
    loop {
        if limit
            .instructions
            .is_some_and(|n| cpu.m.stats.instructions - first >= n)
            || time_end.is_some_and(|end| cpu.now_ns >= end)
        {
            return Exit::LimitReached;
        }
        if limit
            .io_accesses
            .is_some_and(|n| cpu.m.stats.io_accesses() - io_start >= n)
        {
            return Exit::LimitReached;
        }
        match at_boundary(cpu, &mut timing) {
            Boundary::Execute { .. } => {}
            Boundary::Again => continue,
            Boundary::Stop(exit) => return exit,
        }
        let result = step_instruction(cpu);
        if let Some(exit) = retire(cpu, result) {
            return exit;
        }
    }
}
// ANCHOR_END: run_loop

// ANCHOR: step_instruction
/// Fetches, decodes and executes one instruction at RIP, with TF single-step and debug
/// registers honoured.
pub(crate) fn step_instruction(cpu: &mut Cpu) -> R<()> {
    let state = cpu.s();
    let bits = state.code_bits();
    let rip = state.rip;
    let single_step = state.rflags & fl::TF != 0;
    let breakpoints = state.dr[7] & 0xFF != 0;
    cpu.start_rip = rip;
    if breakpoints {
        cpu.data_hits = 0;
        debug::instruction_breakpoint(cpu)?;
    }
    let mut ins = Instruction::default();
    fetch_decode(cpu, bits, rip, &mut ins)?;
    execute_decoded(cpu, &ins, bits)?;
    // MOV SS / POP SS hold debug traps, like interrupts, until after the next instruction.
    let ss_shadow = cpu.s().events.interrupt_shadow
        && ins.op_count() > 0
        && ins.op0_kind() == iced_x86::OpKind::Register
        && ins.op0_register() == iced_x86::Register::SS;
    if (single_step || breakpoints && cpu.data_hits != 0) && !ss_shadow {
        return debug::debug_trap(cpu, &ins, single_step);
    }
    Ok(())
}
// ANCHOR_END: step_instruction

/// Executes an instruction already decoded at `cpu.start_rip` (the interpreter's fetch or a
/// translated block's copy): RIP moves past it, a fault puts RIP back, RF clears on completion.
#[inline]
pub(crate) fn execute_decoded(cpu: &mut Cpu, ins: &Instruction, bits: u32) -> R<()> {
    let ip_mask = match bits {
        16 => 0xFFFF,
        32 => 0xFFFF_FFFF,
        _ => u64::MAX,
    };
    cpu.st().rip = ins.next_ip() & ip_mask;
    match execute(cpu, ins) {
        // Faults leave RIP at the faulting instruction; `Stop` after completion keeps next RIP.
        Err(fault @ Fault::Exception { .. }) => {
            cpu.st().rip = cpu.start_rip;
            Err(fault)
        }
        Err(stop) => Err(stop),
        Ok(()) => {
            // RF suppresses instruction breakpoints until an instruction completes; IRET is
            // how a debug handler sets it, so IRET's own RF survives.
            if !matches!(
                ins.mnemonic(),
                Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq
            ) {
                cpu.st().rflags &= !fl::RF;
            }
            // A REP string instruction suspended between iterations (to let an interrupt or a
            // single-step trap in) sets RF, so the frame of that event carries RF = 1 and the
            // restart does not hit its instruction breakpoint again (measured on Intel).
            if cpu.s().rip == cpu.start_rip && ins.is_string_instruction() {
                cpu.st().rflags |= fl::RF;
            }
            Ok(())
        }
    }
}

/// The instruction at CS:RIP: from the decoded-instruction cache, or fetched through the MMU and
/// decoded by iced-x86 (then cached if it lies within one page of RAM or ROM).
pub(crate) fn fetch_decode(cpu: &mut Cpu, bits: u32, rip: u64, ins: &mut Instruction) -> R<()> {
    let linear = cpu.s().linear_rip();
    let user = cpu.s().cpl() == 3;
    let phys = cpu.translate(linear, Access::fetch(user))?;
    if cpu.code.lookup(phys, bits, rip, ins) {
        return Ok(());
    }
    if bits == 16 && rip > 0xFFF0 && cpu.s().mode() == CpuMode::Real {
        return decode_wrapping(cpu, rip, ins);
    }
    let mut bytes = [0u8; 15];
    // Fetch the first page's part; the next page is touched only if the decoder needs it.
    let first = (0x1000 - (linear & 0xFFF)).min(15) as usize;
    fetch_bytes(cpu, phys, &mut bytes[..first]);
    Decoder::with_ip(bits, &bytes[..first], rip, DecoderOptions::NONE).decode_out(ins);
    if ins.is_invalid() && first < 15 {
        let next = cpu.translate(linear + first as u64, Access::fetch(user))?;
        fetch_bytes(cpu, next, &mut bytes[first..]);
        Decoder::with_ip(bits, &bytes, rip, DecoderOptions::NONE).decode_out(ins);
    } else if ins.len() <= first && cacheable(cpu.m, phys) {
        cpu.code.insert(phys, bits, ins);
    }
    if ins.is_invalid() {
        return Err(ud());
    }
    Ok(())
}

/// Real mode, IP near the end of the segment: the bytes after offset FFFF come from offset 0
/// (the 286 wraps instruction fetch within the 64 KiB segment). Never cached.
fn decode_wrapping(cpu: &mut Cpu, rip: u64, ins: &mut Instruction) -> R<()> {
    let base = cpu.s().cs().base;
    let mut bytes = [0u8; 15];
    for (i, b) in bytes.iter_mut().enumerate() {
        let linear = base.wrapping_add((rip + i as u64) & 0xFFFF) & 0xFFFF_FFFF;
        let phys = cpu.translate(linear, Access::fetch(false))?;
        *b = cpu.phys_read(phys, 1) as u8;
    }
    Decoder::with_ip(16, &bytes, rip, DecoderOptions::NONE).decode_out(ins);
    if ins.is_invalid() {
        return Err(ud());
    }
    Ok(())
}

/// RAM and ROM hold code that only changes through writes we see; MMIO may change any time.
pub(crate) fn cacheable(m: &Machine, phys: u64) -> bool {
    m.ram.contains(phys, 1)
        || m.rom_base()
            .is_some_and(|b| phys >= b && phys < crate::machine::FOUR_GIB)
}

pub(crate) fn fetch_bytes(cpu: &mut Cpu, phys: u64, out: &mut [u8]) {
    if out.is_empty() || cpu.m.ram.read(phys, out).is_ok() {
        return;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = cpu.phys_read(phys + i as u64, 1) as u8;
    }
}

/// Instructions with no architectural effect on this machine (no caches, one CPU, no CET).
///
/// Most of them live in the *hint space* 0F 18–0F 1F (and 0F 0D), which Intel reserved as
/// multi-byte NOPs on the P6 so that later CPUs could give some encodings a meaning that older
/// CPUs simply skip: prefetches, CLDEMOTE, and CET's ENDBR32/ENDBR64 and RDSSP, which gcc's
/// `-fcf-protection` puts at every function entry. Without CET (CR4.CET is reserved here and
/// CPUID does not offer it) they all execute as NOPs, memory operands are never accessed, and
/// RDSSP leaves its register unchanged — as on a CPU without shadow stacks.
pub(crate) fn is_no_op(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Nop
            | M::Pause
            | M::Reservednop
            | M::Prefetch
            | M::Prefetchw
            | M::Prefetchwt1
            | M::Prefetchnta
            | M::Prefetcht0
            | M::Prefetcht1
            | M::Prefetcht2
            | M::Prefetchit0
            | M::Prefetchit1
            | M::Cldemote
            | M::Endbr32
            | M::Endbr64
            | M::Rdsspd
            | M::Rdsspq
            | M::Lfence
            | M::Sfence
            | M::Mfence
    )
}

pub use x87::TRANSCENDENTALS as X87_TRANSCENDENTALS;

/// Does the interpreter execute `m` (in the modes where it is valid)? This reads the same
/// dispatch `execute` uses, so `vmscope isa` cannot drift from the code.
pub fn implements(m: Mnemonic) -> bool {
    unit_of(m) != Unit::Missing
}

/// May this instruction carry a LOCK prefix? (Otherwise LOCK raises #UD, as on the 386 and later.)
pub fn lock_allowed(ins: &Instruction) -> bool {
    !ins.is_invalid() && (!ins.has_lock_prefix() || alu::lockable(ins))
}

// ANCHOR: dispatch
/// Executes one decoded instruction. RIP already points at the next instruction.
pub(crate) fn execute(cpu: &mut Cpu, ins: &Instruction) -> R<()> {
    use Mnemonic as M;
    // Bytes that do not decode are a #UD, not an unimplemented instruction (the translator
    // hands them here; the interpreter's own fetch raises the #UD itself).
    if ins.is_invalid() {
        return Err(ud());
    }
    if ins.has_lock_prefix() && !alu::lockable(ins) {
        return Err(ud());
    }
    let m = ins.mnemonic();
    match cpu.units[m as usize] {
        Unit::NoOp => Ok(()),
        Unit::Alu => alu::execute(cpu, ins),
        Unit::Legacy => legacy::execute(cpu, ins),
        Unit::Descriptors => descriptors::execute(cpu, ins),
        Unit::Control => control::execute(cpu, ins),
        Unit::String => {
            // INS/OUTS reach devices (the interrupt poll must look again).
            cpu.bus_touched |= matches!(
                m,
                M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd
            );
            string::execute(cpu, ins)
        }
        Unit::Simd => simd::execute(cpu, ins),
        Unit::X87 => x87::execute(cpu, ins),
        Unit::System => {
            // I/O, MSRs, CR8 and HLT/STI can change what the interrupt controllers report.
            cpu.bus_touched = true;
            system::execute(cpu, ins)
        }
        Unit::Missing => {
            // Not implemented: the guest sees #UD, and the user sees the count.
            cpu.m.stats.count_unimplemented(m);
            Err(ud())
        }
    }
}
// ANCHOR_END: dispatch

/// Which part of the interpreter executes a mnemonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Missing,
    NoOp,
    Alu,
    Legacy,
    Descriptors,
    Control,
    String,
    /// MMX, SSE, SSE2 and the FXSAVE state (`simd`).
    Simd,
    /// The x87 FPU (`x87`).
    X87,
    System,
}

pub(crate) fn unit_of(m: Mnemonic) -> Unit {
    if is_no_op(m) {
        Unit::NoOp
    } else if alu::handles(m) {
        Unit::Alu
    } else if legacy::handles(m) {
        Unit::Legacy
    } else if descriptors::handles(m) {
        Unit::Descriptors
    } else if control::handles(m) {
        Unit::Control
    } else if string::handles(m) {
        Unit::String
    } else if simd::handles(m) && simd::offered() {
        Unit::Simd
    } else if x87::handles(m) && x87::offered() {
        Unit::X87
    } else if system::handles(m) {
        Unit::System
    } else {
        Unit::Missing
    }
}

/// The dispatch table, one entry per iced-x86 mnemonic, built once from the `handles` lists:
/// one indexed load per instruction instead of a chain of large `matches!`.
fn dispatch_table() -> &'static [Unit] {
    static TABLE: std::sync::OnceLock<Vec<Unit>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let count = Mnemonic::values()
            .map(|m| m as usize + 1)
            .max()
            .unwrap_or(0);
        let mut table = vec![Unit::Missing; count];
        for m in Mnemonic::values() {
            table[m as usize] = unit_of(m);
        }
        table
    })
}
