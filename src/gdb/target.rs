//! The machine as a gdb target: the `gdbstub` traits answering register, memory, breakpoint packets.
//! Teaches: a debugger stub is a thin translation layer over `CpuState` and guest memory.
//!
//! gdb numbers the x86-64 registers its own way (rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8…)
//! and sends whole register files (`g`/`G`) in the order of `arch.rs`'s target description:
//! `gdbstub_arch`'s x86-64 core + SSE, then the segment bases and the system registers.
//! Breakpoints are not `int3` bytes patched into the guest: they are addresses the run loop
//! compares RIP against between instructions (`run.rs`), so guest memory stays untouched and
//! the same code works on every engine. Watchpoints are checked the same way, from the memory
//! operands of the instruction about to run.

use emulator::cpu::{flags, CpuMode, Seg};
use gdbstub::common::Signal;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::monitor_cmd::{outputln, ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::{Target, TargetError, TargetResult};

use super::arch::{MachineRegs, VmscopeX86_64};
use super::memory;
use super::run::{ExecMode, VmTarget, Watchpoint};

/// gdb's register `i` (rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8–r15) is `CpuState::gpr[GDB_GPR[i]]`.
const GDB_GPR: [usize; 16] = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];

impl Target for VmTarget {
    type Arch = VmscopeX86_64;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

/// Bytes `at..at + N` of the FXSAVE image.
fn fx<const N: usize>(fxsave: &[u8; 512], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&fxsave[at..at + N]);
    out
}

fn fx_u16(fxsave: &[u8; 512], at: usize) -> u32 {
    u16::from_le_bytes(fx(fxsave, at)) as u32
}

fn fx_u32(fxsave: &[u8; 512], at: usize) -> u32 {
    u32::from_le_bytes(fx(fxsave, at))
}

impl SingleThreadBase for VmTarget {
    fn read_registers(&mut self, all: &mut MachineRegs) -> TargetResult<(), Self> {
        let cpu = &self.machine.cpu;
        all.system = [
            cpu.seg[Seg::Fs as usize].base,
            cpu.seg[Seg::Gs as usize].base,
            cpu.msrs.kernel_gs_base,
            cpu.cr0,
            cpu.cr2,
            cpu.cr3,
            cpu.cr4,
            cpu.cr8,
            cpu.efer,
        ];
        let regs = &mut all.core;
        for (i, r) in regs.regs.iter_mut().enumerate() {
            *r = cpu.gpr[GDB_GPR[i]];
        }
        regs.rip = cpu.rip;
        regs.eflags = cpu.rflags as u32;
        let sel = |s: Seg| cpu.seg[s as usize].selector as u32;
        regs.segments.cs = sel(Seg::Cs);
        regs.segments.ss = sel(Seg::Ss);
        regs.segments.ds = sel(Seg::Ds);
        regs.segments.es = sel(Seg::Es);
        regs.segments.fs = sel(Seg::Fs);
        regs.segments.gs = sel(Seg::Gs);
        // x87 and SSE from the FXSAVE image every engine carries.
        let f = &cpu.fpu.fxsave;
        for (i, st) in regs.st.iter_mut().enumerate() {
            *st = fx(f, 32 + 16 * i);
        }
        regs.fpu.fctrl = fx_u16(f, 0);
        regs.fpu.fstat = fx_u16(f, 2);
        // FXSAVE keeps an abridged tag (1 bit per register: in use); gdb wants the full
        // two-bit tags. In use is shown as "valid" (00), free as "empty" (11).
        let abridged = f[4];
        regs.fpu.ftag = (0..8)
            .filter(|i| abridged & (1 << i) == 0)
            .fold(0, |tag, i| tag | 3 << (2 * i));
        regs.fpu.fioff = fx_u32(f, 8);
        regs.fpu.fiseg = fx_u16(f, 12);
        regs.fpu.fooff = fx_u32(f, 16);
        regs.fpu.foseg = fx_u16(f, 20);
        regs.fpu.fop = fx_u16(f, 6) & 0x7FF;
        for (i, x) in regs.xmm.iter_mut().enumerate() {
            *x = u128::from_le_bytes(fx(f, 160 + 16 * i));
        }
        regs.mxcsr = fx_u32(f, 24);
        Ok(())
    }

    fn write_registers(&mut self, all: &MachineRegs) -> TargetResult<(), Self> {
        let regs = &all.core;
        // Control registers and EFER are shown, not written: a change would be a mode switch
        // (paging, long mode) that only the CPU's own MOV to CR / WRMSR checks and carries out.
        let c = &self.machine.cpu;
        if all.system[3..] != [c.cr0, c.cr2, c.cr3, c.cr4, c.cr8, c.efer] {
            return Err(TargetError::NonFatal);
        }
        // Segment selectors first: a change outside real mode would need a descriptor load
        // (the hidden base, limit and attributes), which a debugger write must not fake.
        let real = matches!(
            self.machine.cpu.mode(),
            CpuMode::Real | CpuMode::Virtual8086
        );
        let wanted = [
            (Seg::Cs, regs.segments.cs),
            (Seg::Ss, regs.segments.ss),
            (Seg::Ds, regs.segments.ds),
            (Seg::Es, regs.segments.es),
            (Seg::Fs, regs.segments.fs),
            (Seg::Gs, regs.segments.gs),
        ];
        for (s, v) in wanted {
            let seg = &mut self.machine.cpu.seg[s as usize];
            if seg.selector as u32 == v {
                continue;
            }
            if !real || v > 0xFFFF {
                return Err(TargetError::NonFatal);
            }
            seg.selector = v as u16;
            seg.base = (v as u64) << 4;
        }
        let cpu = &mut self.machine.cpu;
        for (i, r) in regs.regs.iter().enumerate() {
            cpu.gpr[GDB_GPR[i]] = *r;
        }
        cpu.rip = regs.rip;
        cpu.rflags = (cpu.rflags & !0xFFFF_FFFF) | regs.eflags as u64 | flags::FIXED1;
        let f = &mut cpu.fpu.fxsave;
        for (i, st) in regs.st.iter().enumerate() {
            f[32 + 16 * i..32 + 16 * i + 10].copy_from_slice(st);
        }
        f[0..2].copy_from_slice(&(regs.fpu.fctrl as u16).to_le_bytes());
        f[2..4].copy_from_slice(&(regs.fpu.fstat as u16).to_le_bytes());
        f[4] = (0..8)
            .filter(|i| (regs.fpu.ftag >> (2 * i)) & 3 != 3)
            .fold(0, |tag, i| tag | 1 << i);
        f[6..8].copy_from_slice(&((regs.fpu.fop & 0x7FF) as u16).to_le_bytes());
        f[8..12].copy_from_slice(&regs.fpu.fioff.to_le_bytes());
        f[12..14].copy_from_slice(&(regs.fpu.fiseg as u16).to_le_bytes());
        f[16..20].copy_from_slice(&regs.fpu.fooff.to_le_bytes());
        f[20..22].copy_from_slice(&(regs.fpu.foseg as u16).to_le_bytes());
        for (i, x) in regs.xmm.iter().enumerate() {
            f[160 + 16 * i..176 + 16 * i].copy_from_slice(&x.to_le_bytes());
        }
        f[24..28].copy_from_slice(&regs.mxcsr.to_le_bytes());
        cpu.seg[Seg::Fs as usize].base = all.system[0];
        cpu.seg[Seg::Gs as usize].base = all.system[1];
        cpu.msrs.kernel_gs_base = all.system[2];
        Ok(())
    }

    fn read_addrs(&mut self, start_addr: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        match memory::read_linear(&mut self.machine, start_addr, data) {
            // Nothing readable there: gdb shows "Cannot access memory at address …".
            0 if !data.is_empty() => Err(TargetError::Errno(14)),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start_addr: u64, data: &[u8]) -> TargetResult<(), Self> {
        // write_linear bumps the machine's memory epoch: every engine's caches drop themselves.
        memory::write_linear(&mut self.machine, start_addr, data)
            .map_err(|_| TargetError::Errno(14))?;
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for VmTarget {
    fn resume(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        // A signal would mean "deliver this to the program": a machine has no signals. gdb
        // passes one only when told to (`signal N`); refuse rather than pretend.
        if let Some(s) = signal {
            return Err(format!(
                "cannot continue with signal {s}: a machine has none"
            ));
        }
        self.mode = ExecMode::Continue;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for VmTarget {
    fn step(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if let Some(s) = signal {
            return Err(format!("cannot step with signal {s}: a machine has none"));
        }
        self.mode = ExecMode::Step;
        Ok(())
    }
}

impl Breakpoints for VmTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

/// Adds `addr` to a breakpoint list (once); removes it: whether it was there.
fn remove(list: &mut Vec<u64>, addr: u64) -> bool {
    let before = list.len();
    list.retain(|&a| a != addr);
    list.len() != before
}

impl SwBreakpoint for VmTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if !self.sw_breakpoints.contains(&addr) {
            self.sw_breakpoints.push(addr);
        }
        Ok(true)
    }
    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(remove(&mut self.sw_breakpoints, addr))
    }
}

impl HwBreakpoint for VmTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if !self.hw_breakpoints.contains(&addr) {
            self.hw_breakpoints.push(addr);
        }
        Ok(true)
    }
    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(remove(&mut self.hw_breakpoints, addr))
    }
}

impl HwWatchpoint for VmTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.watchpoints.push(Watchpoint {
            start: addr,
            len: len.max(1),
            kind,
        });
        Ok(true)
    }
    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let found = self
            .watchpoints
            .iter()
            .position(|w| w.start == addr && w.len == len.max(1) && w.kind == kind);
        Ok(found.map(|i| self.watchpoints.remove(i)).is_some())
    }
}

impl MonitorCmd for VmTarget {
    /// `monitor regs`: the system registers the x86-64 core layout has no slot for;
    /// `monitor walk ADDR`: where a virtual address lands in guest-physical memory.
    fn handle_monitor_cmd(&mut self, cmd: &[u8], mut out: ConsoleOutput<'_>) -> Result<(), String> {
        let cmd = String::from_utf8_lossy(cmd);
        let mut words = cmd.split_whitespace();
        match (words.next(), words.next()) {
            (Some("regs"), None) => {
                let c = &self.machine.cpu;
                outputln!(
                    out,
                    "cr0 {:#x}  cr2 {:#x}  cr3 {:#x}  cr4 {:#x}  cr8 {:#x}",
                    c.cr0,
                    c.cr2,
                    c.cr3,
                    c.cr4,
                    c.cr8
                );
                outputln!(
                    out,
                    "efer {:#x}  mode {:?}  cpl {}",
                    c.efer,
                    c.mode(),
                    c.cpl()
                );
                outputln!(
                    out,
                    "gdtr {:#x}/{:#x}  idtr {:#x}/{:#x}",
                    c.gdtr.base,
                    c.gdtr.limit,
                    c.idtr.base,
                    c.idtr.limit
                );
                for s in Seg::ALL {
                    let d = &c.seg[s as usize];
                    outputln!(
                        out,
                        "{} {:#06x} base {:#x} limit {:#x} attr {:#06x}",
                        s.name(),
                        d.selector,
                        d.base,
                        d.limit,
                        d.attributes()
                    );
                }
                outputln!(out, "instructions {}", self.machine.stats.instructions);
            }
            (Some("walk"), Some(addr)) => {
                let parsed = addr
                    .strip_prefix("0x")
                    .map_or_else(|| addr.parse(), |h| u64::from_str_radix(h, 16));
                match parsed {
                    Ok(a) => match memory::translate(&mut self.machine, a) {
                        Some(p) => outputln!(out, "{a:#x} -> guest-physical {p:#x}"),
                        None => outputln!(out, "{a:#x} is not mapped"),
                    },
                    Err(_) => outputln!(out, "not an address: {addr}"),
                }
            }
            _ => {
                outputln!(out, "vmscope monitor commands:");
                outputln!(
                    out,
                    "  monitor regs        control registers, EFER, GDTR/IDTR, segment caches"
                );
                outputln!(out, "  monitor walk ADDR   translate a virtual address through the guest's page tables");
            }
        }
        Ok(())
    }
}
