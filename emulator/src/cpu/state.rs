//! `CpuState`: everything an engine must hand to another to continue at an instruction boundary.
//! Teaches: the visible registers and the hidden parts (segment caches, pending events) that make a CPU.

/// General-purpose register numbers in encoding order.
pub mod reg {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
}

/// Segment register numbers in encoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Seg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

impl Seg {
    pub const ALL: [Seg; 6] = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];
    pub fn name(self) -> &'static str {
        ["es", "cs", "ss", "ds", "fs", "gs"][self as usize]
    }
}

/// RFLAGS bits.
pub mod flags {
    pub const CF: u64 = 1 << 0;
    pub const FIXED1: u64 = 1 << 1;
    pub const PF: u64 = 1 << 2;
    pub const AF: u64 = 1 << 4;
    pub const ZF: u64 = 1 << 6;
    pub const SF: u64 = 1 << 7;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const DF: u64 = 1 << 10;
    pub const OF: u64 = 1 << 11;
    pub const IOPL: u64 = 3 << 12;
    pub const NT: u64 = 1 << 14;
    pub const RF: u64 = 1 << 16;
    pub const VM: u64 = 1 << 17;
    pub const AC: u64 = 1 << 18;
    pub const VIF: u64 = 1 << 19;
    pub const VIP: u64 = 1 << 20;
    pub const ID: u64 = 1 << 21;
    /// The six arithmetic status flags.
    pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
}

/// Control register and EFER bits used by the engines.
pub mod ctl {
    pub const CR0_PE: u64 = 1 << 0;
    pub const CR0_MP: u64 = 1 << 1;
    pub const CR0_EM: u64 = 1 << 2;
    pub const CR0_TS: u64 = 1 << 3;
    pub const CR0_ET: u64 = 1 << 4;
    pub const CR0_NE: u64 = 1 << 5;
    pub const CR0_WP: u64 = 1 << 16;
    pub const CR0_AM: u64 = 1 << 18;
    pub const CR0_NW: u64 = 1 << 29;
    pub const CR0_CD: u64 = 1 << 30;
    pub const CR0_PG: u64 = 1 << 31;
    pub const CR4_VME: u64 = 1 << 0;
    pub const CR4_PVI: u64 = 1 << 1;
    pub const CR4_TSD: u64 = 1 << 2;
    pub const CR4_DE: u64 = 1 << 3;
    pub const CR4_PSE: u64 = 1 << 4;
    pub const CR4_PAE: u64 = 1 << 5;
    pub const CR4_MCE: u64 = 1 << 6;
    pub const CR4_PGE: u64 = 1 << 7;
    pub const CR4_PCE: u64 = 1 << 8;
    pub const CR4_OSFXSR: u64 = 1 << 9;
    pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
    pub const CR4_PCIDE: u64 = 1 << 17;
    pub const CR4_SMEP: u64 = 1 << 20;
    pub const CR4_SMAP: u64 = 1 << 21;
    pub const EFER_SCE: u64 = 1 << 0;
    pub const EFER_LME: u64 = 1 << 8;
    pub const EFER_LMA: u64 = 1 << 10;
    pub const EFER_NXE: u64 = 1 << 11;
}

/// MSR numbers the machine implements.
pub mod msr {
    pub const IA32_TSC: u32 = 0x10;
    pub const IA32_APIC_BASE: u32 = 0x1B;
    pub const IA32_SYSENTER_CS: u32 = 0x174;
    pub const IA32_SYSENTER_ESP: u32 = 0x175;
    pub const IA32_SYSENTER_EIP: u32 = 0x176;
    pub const IA32_PAT: u32 = 0x277;
    pub const IA32_EFER: u32 = 0xC000_0080;
    pub const IA32_STAR: u32 = 0xC000_0081;
    pub const IA32_LSTAR: u32 = 0xC000_0082;
    pub const IA32_CSTAR: u32 = 0xC000_0083;
    pub const IA32_FMASK: u32 = 0xC000_0084;
    pub const IA32_FS_BASE: u32 = 0xC000_0100;
    pub const IA32_GS_BASE: u32 = 0xC000_0101;
    pub const IA32_KERNEL_GS_BASE: u32 = 0xC000_0102;
    pub const IA32_TSC_AUX: u32 = 0xC000_0103;
}

/// A segment register: the visible selector and the hidden descriptor cache loaded with it.
/// Field meanings follow the descriptor (and KVM's `kvm_segment`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    /// Byte-granular limit (already scaled by G).
    pub limit: u32,
    /// Descriptor type (4 bits): for code/data bit 3 = code, bit 1 = writable/readable, bit 0 = accessed.
    pub type_: u8,
    /// S: 1 = code/data, 0 = system.
    pub s: bool,
    pub dpl: u8,
    pub present: bool,
    pub avl: bool,
    /// L: 64-bit code segment.
    pub l: bool,
    /// D/B: 32-bit default operand size / stack size.
    pub db: bool,
    pub g: bool,
    /// A null selector was loaded (only meaningful for data segments in protected mode).
    pub unusable: bool,
}

impl Segment {
    /// A real-mode segment: base = selector * 16, 64 KiB limit, read/write data.
    pub fn real_mode(selector: u16, code: bool) -> Self {
        Segment {
            selector,
            base: (selector as u64) << 4,
            limit: 0xFFFF,
            type_: if code { 0xB } else { 0x3 },
            s: true,
            dpl: 0,
            present: true,
            ..Default::default()
        }
    }

    /// A flat 4 GiB segment as Multiboot loaders leave them.
    pub fn flat32(selector: u16, code: bool) -> Self {
        Segment {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            type_: if code { 0xB } else { 0x3 },
            s: true,
            dpl: 0,
            present: true,
            db: true,
            g: true,
            ..Default::default()
        }
    }

    pub fn is_code(&self) -> bool {
        self.s && self.type_ & 8 != 0
    }

    /// The attribute word as stored in a descriptor's bytes 5–6 (type..G), as the GUI shows it.
    pub fn attributes(&self) -> u16 {
        (self.type_ as u16 & 0xF)
            | (self.s as u16) << 4
            | ((self.dpl as u16) & 3) << 5
            | (self.present as u16) << 7
            | (self.avl as u16) << 12
            | (self.l as u16) << 13
            | (self.db as u16) << 14
            | (self.g as u16) << 15
    }
}

/// GDTR or IDTR.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DescriptorTable {
    pub base: u64,
    pub limit: u16,
}

/// Events that belong to the CPU between instructions.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingEvents {
    /// Interrupts are blocked for one instruction after STI or MOV SS/POP SS.
    pub interrupt_shadow: bool,
    /// The CPU executed HLT and waits for an interrupt.
    pub halted: bool,
    /// An NMI arrived and waits for delivery (it is not lost while NMIs are blocked).
    pub nmi_pending: bool,
    /// NMIs are blocked: an NMI handler runs, until the next IRET (SDM Vol. 3, 6.7.1).
    pub nmi_blocked: bool,
}

pub use super::fpu::FpuState;

/// The MSRs that matter to the guests and engines.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Msrs {
    /// MSR_KVM_SYSTEM_TIME_NEW (kvmclock: the time info's address | enable) and
    /// MSR_KVM_WALL_CLOCK_NEW; only with paravirtualization on (`Machine::pv`).
    pub kvm_system_time: u64,
    pub kvm_wall_clock: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub fmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub pat: u64,
    pub tsc_aux: u64,
    /// What WRMSR IA32_TSC added to virtual time (wrapping): the emulated engines' TSC is
    /// virtual ns + this. KVM keeps its own TSC (a write there goes to KVM).
    pub tsc_offset: u64,
    pub apic_base: u64,
}

/// The complete architectural state of the virtual CPU.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CpuState {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15.
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    /// ES, CS, SS, DS, FS, GS (indexed by [`Seg`]).
    pub seg: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: DescriptorTable,
    pub idtr: DescriptorTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub dr: [u64; 8],
    pub msrs: Msrs,
    pub fpu: FpuState,
    pub events: PendingEvents,
}

impl Default for CpuState {
    fn default() -> Self {
        Self::reset()
    }
}

/// The CPU's operating mode, as a student names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    Real,
    Virtual8086,
    Protected16,
    Protected32,
    /// Long mode, 16/32-bit code segment.
    Compatibility,
    Long64,
}

impl std::fmt::Display for CpuMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CpuMode::Real => "real mode",
            CpuMode::Virtual8086 => "virtual-8086 mode",
            CpuMode::Protected16 => "16-bit protected mode",
            CpuMode::Protected32 => "32-bit protected mode",
            CpuMode::Compatibility => "compatibility mode",
            CpuMode::Long64 => "64-bit long mode",
        })
    }
}

impl CpuState {
    /// The state after power-on/RESET: real mode, CS:IP = F000:FFF0 with CS.base = 0xFFFF0000,
    /// so the first fetch comes from the top of the 4 GiB space where the firmware ROM is aliased.
    pub fn reset() -> Self {
        let mut seg = [Segment::real_mode(0, false); 6];
        seg[Seg::Cs as usize] = Segment {
            base: 0xFFFF_0000,
            ..Segment::real_mode(0xF000, true)
        };
        CpuState {
            gpr: [0; 16],
            rip: 0xFFF0,
            rflags: flags::FIXED1,
            seg,
            ldtr: Segment {
                type_: 2,
                s: false,
                limit: 0xFFFF,
                present: true,
                ..Default::default()
            },
            tr: Segment {
                type_: 3,
                s: false,
                limit: 0xFFFF,
                present: true,
                ..Default::default()
            },
            gdtr: DescriptorTable {
                base: 0,
                limit: 0xFFFF,
            },
            idtr: DescriptorTable {
                base: 0,
                limit: 0xFFFF,
            },
            cr0: ctl::CR0_ET | ctl::CR0_CD | ctl::CR0_NW,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            dr: [0, 0, 0, 0, 0xFFFF_0FF0, 0x400, 0xFFFF_0FF0, 0x400],
            msrs: Msrs {
                pat: 0x0007_0406_0007_0406,
                apic_base: 0xFEE0_0900,
                ..Default::default()
            },
            fpu: FpuState::default(),
            events: PendingEvents::default(),
        }
    }

    /// The state a Multiboot v1 loader leaves: 32-bit protected mode, paging off, flat CS/DS,
    /// EAX = 0x2BADB002, EBX = address of the multiboot info, interrupts off.
    pub fn multiboot_entry(entry: u32, info_addr: u32) -> Self {
        let mut s = CpuState::reset();
        s.cr0 = ctl::CR0_PE | ctl::CR0_ET;
        s.seg = [Segment::flat32(0x18, false); 6];
        s.seg[Seg::Cs as usize] = Segment::flat32(0x10, true);
        s.gdtr = DescriptorTable { base: 0, limit: 0 };
        s.idtr = DescriptorTable { base: 0, limit: 0 };
        s.tr = Segment {
            type_: 0xB,
            s: false,
            limit: 0xFFFF,
            present: true,
            ..Default::default()
        };
        s.rip = entry as u64;
        s.gpr[reg::RAX] = 0x2BAD_B002;
        s.gpr[reg::RBX] = info_addr as u64;
        s
    }

    pub fn cs(&self) -> &Segment {
        &self.seg[Seg::Cs as usize]
    }

    pub fn ss(&self) -> &Segment {
        &self.seg[Seg::Ss as usize]
    }

    /// Current privilege level: CS.DPL in protected mode (= SS.DPL), 0 in real mode, 3 in VM86.
    pub fn cpl(&self) -> u8 {
        if self.cr0 & ctl::CR0_PE == 0 {
            0
        } else if self.rflags & flags::VM != 0 {
            3
        } else {
            self.seg[Seg::Cs as usize].dpl & 3
        }
    }

    pub fn long_mode_active(&self) -> bool {
        self.efer & ctl::EFER_LMA != 0
    }

    pub fn paging_enabled(&self) -> bool {
        self.cr0 & ctl::CR0_PG != 0 && self.cr0 & ctl::CR0_PE != 0
    }

    pub fn mode(&self) -> CpuMode {
        if self.cr0 & ctl::CR0_PE == 0 {
            CpuMode::Real
        } else if self.long_mode_active() {
            if self.cs().l {
                CpuMode::Long64
            } else {
                CpuMode::Compatibility
            }
        } else if self.rflags & flags::VM != 0 {
            CpuMode::Virtual8086
        } else if self.cs().db {
            CpuMode::Protected32
        } else {
            CpuMode::Protected16
        }
    }

    /// Default code size in bits: 16, 32 or 64.
    pub fn code_bits(&self) -> u32 {
        match self.mode() {
            CpuMode::Long64 => 64,
            CpuMode::Real | CpuMode::Virtual8086 | CpuMode::Protected16 => 16,
            CpuMode::Protected32 => 32,
            CpuMode::Compatibility => {
                if self.cs().db {
                    32
                } else {
                    16
                }
            }
        }
    }

    /// Linear address of the current instruction.
    pub fn linear_rip(&self) -> u64 {
        if self.mode() == CpuMode::Long64 {
            self.rip
        } else {
            self.cs().base.wrapping_add(self.rip) & 0xFFFF_FFFF
        }
    }
}
