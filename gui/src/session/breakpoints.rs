//! Breakpoints, watchpoints and "break on" conditions: the reasons a running guest stops.
//! Teaches: a software debugger checks conditions between instructions; a watchpoint needs to know
//! which memory an instruction touches before it runs (iced-x86's instruction info tells us).

use emulator::cpu::CpuState;

use super::expr::{Expr, MemoryReader};

/// Stop before executing the instruction at a linear address, optionally only when a
/// register expression is true (`rax == 0x10 && zf`).
#[derive(Debug, Clone)]
pub struct Breakpoint {
    pub linear: u64,
    pub enabled: bool,
    /// The condition as typed; empty = always.
    pub condition_text: String,
    condition: Option<Expr>,
    pub hits: u64,
}

impl Breakpoint {
    pub fn new(linear: u64) -> Self {
        Breakpoint {
            linear,
            enabled: true,
            condition_text: String::new(),
            condition: None,
            hits: 0,
        }
    }

    /// A breakpoint with a condition; `Err` explains a malformed expression.
    pub fn with_condition(linear: u64, text: &str) -> Result<Self, String> {
        let mut b = Breakpoint::new(linear);
        b.set_condition(text)?;
        Ok(b)
    }

    pub fn set_condition(&mut self, text: &str) -> Result<(), String> {
        let text = text.trim();
        self.condition = if text.is_empty() {
            None
        } else {
            Some(Expr::parse(text)?)
        };
        self.condition_text = text.to_string();
        Ok(())
    }

    /// Does this breakpoint stop the CPU now? A condition that cannot be evaluated (memory
    /// not mapped) counts as true, so the user sees why.
    pub(super) fn triggers(&self, cpu: &CpuState, mem: &mut dyn MemoryReader) -> bool {
        if !self.enabled || cpu.linear_rip() != self.linear {
            return false;
        }
        match &self.condition {
            None => true,
            Some(e) => e.eval(cpu, mem).map(|v| v != 0).unwrap_or(true),
        }
    }
}

/// What kind of memory access a watchpoint waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemAccess {
    Read,
    Write,
    ReadWrite,
}

impl MemAccess {
    pub fn label(self) -> &'static str {
        match self {
            MemAccess::Read => "read",
            MemAccess::Write => "write",
            MemAccess::ReadWrite => "read/write",
        }
    }
    fn matches(self, read: bool, write: bool) -> bool {
        match self {
            MemAccess::Read => read,
            MemAccess::Write => write,
            MemAccess::ReadWrite => read || write,
        }
    }
}

/// Stop after an instruction that reads or writes guest memory in `[start, start + len)`
/// (linear addresses, as the program sees them).
#[derive(Debug, Clone)]
pub struct Watchpoint {
    pub start: u64,
    pub len: u64,
    pub access: MemAccess,
    pub enabled: bool,
    pub hits: u64,
}

impl Watchpoint {
    pub fn new(start: u64, len: u64, access: MemAccess) -> Self {
        Watchpoint {
            start,
            len: len.max(1),
            access,
            enabled: true,
            hits: 0,
        }
    }

    fn overlaps(&self, addr: u64, size: u64) -> bool {
        addr < self.start.saturating_add(self.len) && self.start < addr.saturating_add(size)
    }
}

/// Conditions that stop a run whatever the address.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakOn {
    /// An exception was delivered to the guest (#PF, #GP, …).
    pub exception: bool,
    /// The CPU changed mode (real ↔ protected ↔ long, or the code size).
    pub mode_switch: bool,
    /// One of these I/O ports was read or written.
    pub io_ports: Vec<u16>,
    /// KVM returned to us for a reason other than single-stepping (I/O, MMIO, HLT, …).
    pub kvm_exit: bool,
}

impl BreakOn {
    pub fn any(&self) -> bool {
        self.exception || self.mode_switch || !self.io_ports.is_empty() || self.kvm_exit
    }
}

pub use emulator::inspect::{memory_uses, MemoryUse};

/// The first watchpoint the instruction will trigger, with the use that triggers it.
pub(super) fn watch_hit(
    watchpoints: &[Watchpoint],
    uses: &[MemoryUse],
) -> Option<(usize, MemoryUse)> {
    for (i, w) in watchpoints.iter().enumerate() {
        if !w.enabled {
            continue;
        }
        for u in uses {
            if w.access.matches(u.read, u.write) && w.overlaps(u.linear, u.size) {
                return Some((i, *u));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use emulator::cpu::Seg;
    use iced_x86::{Decoder, DecoderOptions, Instruction};

    fn decode64(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    fn long_mode_cpu() -> CpuState {
        let mut cpu = CpuState::reset();
        cpu.cr0 |= emulator::cpu::state::ctl::CR0_PE;
        cpu.efer |= emulator::cpu::state::ctl::EFER_LMA;
        cpu.seg[Seg::Cs as usize].l = true;
        cpu
    }

    #[test]
    fn store_through_a_register_is_a_write_at_the_register_plus_displacement() {
        let mut cpu = long_mode_cpu();
        cpu.gpr[3] = 0x5000; // rbx
                             // mov [rbx+8], eax
        let uses = memory_uses(&decode64(&[0x89, 0x43, 0x08]), &cpu);
        assert_eq!(
            uses,
            vec![MemoryUse {
                linear: 0x5008,
                size: 4,
                read: false,
                write: true
            }]
        );
        let w = [Watchpoint::new(0x500A, 1, MemAccess::Write)];
        assert!(watch_hit(&w, &uses).is_some());
        let r = [Watchpoint::new(0x500A, 1, MemAccess::Read)];
        assert!(
            watch_hit(&r, &uses).is_none(),
            "a read watch ignores stores"
        );
        let far = [Watchpoint::new(0x500C, 4, MemAccess::Write)];
        assert!(watch_hit(&far, &uses).is_none(), "bytes after the store");
    }

    #[test]
    fn push_writes_below_the_stack_pointer_and_rep_movs_covers_rcx_elements() {
        let mut cpu = long_mode_cpu();
        cpu.gpr[4] = 0x8000; // rsp
        let uses = memory_uses(&decode64(&[0x50]), &cpu); // push rax
        assert_eq!(uses.len(), 1);
        assert_eq!(
            (uses[0].linear, uses[0].size, uses[0].write),
            (0x7FF8, 8, true)
        );

        cpu.gpr[1] = 16; // rcx
        cpu.gpr[6] = 0x1000; // rsi
        cpu.gpr[7] = 0x2000; // rdi
        let uses = memory_uses(&decode64(&[0xF3, 0xA4]), &cpu); // rep movsb
        let dst = uses.iter().find(|u| u.write).expect("movs writes");
        assert_eq!((dst.linear, dst.size), (0x2000, 16));
        let w = [Watchpoint::new(0x200F, 1, MemAccess::Write)];
        assert!(watch_hit(&w, &uses).is_some(), "the last byte of the copy");
    }

    #[test]
    fn segment_bases_apply_outside_long_mode() {
        let mut cpu = CpuState::reset(); // real mode
        cpu.seg[Seg::Ds as usize] = emulator::cpu::state::Segment::real_mode(0x1000, false);
        cpu.gpr[3] = 0x20; // bx
        let ins = Decoder::with_ip(16, &[0x8A, 0x07], 0, DecoderOptions::NONE).decode(); // mov al,[bx]
        let uses = memory_uses(&ins, &cpu);
        assert_eq!(uses[0].linear, 0x10020);
        assert!(uses[0].read && !uses[0].write);
    }
}
