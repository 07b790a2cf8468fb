//! Paging modes, the control-register bits that choose them, and PAE's PDPTE registers.
//! Teaches: CR0.PG, CR4.PAE/PSE/PGE/PCIDE and EFER.LMA/NXE select how a walk goes; MOV to CR3 loads and checks.

use crate::cpu::{ctl, CpuState};
use crate::machine::Machine;

/// MAXPHYADDR: physical-address width of our CPU model (CPUID 8000_0008h:EAX[7:0]).
pub const PHYS_ADDR_BITS: u32 = 40;
/// The address field of a PAE/4-level entry (bits 39:12 with MAXPHYADDR = 40).
pub const ADDR_MASK: u64 = ((1 << PHYS_ADDR_BITS) - 1) & !0xFFF;
/// Bits 51:MAXPHYADDR of a PAE/4-level entry: reserved, must be 0.
pub const HIGH_RESERVED: u64 = ((1 << 52) - 1) & !((1 << PHYS_ADDR_BITS) - 1);
/// Reserved bits of a PAE PDPTE: 2:1, 8:5 and 63:MAXPHYADDR (NX is reserved there too).
pub const PDPTE_RESERVED: u64 = 0x1E6 | !((1 << PHYS_ADDR_BITS) - 1);

/// How linear addresses become physical ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingMode {
    /// CR0.PG = 0: linear = physical (truncated to 32 bits).
    Off,
    /// 32-bit paging: 2 levels of 4-byte entries; 4 MiB pages with CR4.PSE.
    Bits32,
    /// PAE paging: 4 PDPTE registers, then 2 levels of 8-byte entries; 2 MiB pages.
    Pae,
    /// 4-level paging (long mode): PML4, PDPT, PD, PT; 1 GiB and 2 MiB pages.
    FourLevel,
}

impl std::fmt::Display for PagingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PagingMode::Off => "paging off",
            PagingMode::Bits32 => "32-bit paging",
            PagingMode::Pae => "PAE paging",
            PagingMode::FourLevel => "4-level paging",
        })
    }
}

/// The registers that steer paging, captured together (before and after a MOV to CRn/WRMSR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlRegs {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

impl ControlRegs {
    pub fn of(cpu: &CpuState) -> Self {
        ControlRegs {
            cr0: cpu.cr0,
            cr3: cpu.cr3,
            cr4: cpu.cr4,
            efer: cpu.efer,
        }
    }

    pub fn mode(&self) -> PagingMode {
        if self.cr0 & ctl::CR0_PG == 0 {
            PagingMode::Off
        } else if self.cr4 & ctl::CR4_PAE == 0 {
            PagingMode::Bits32
        } else if self.efer & ctl::EFER_LMA != 0 {
            PagingMode::FourLevel
        } else {
            PagingMode::Pae
        }
    }

    /// Does the XD bit count? Only with PAE/4-level paging and EFER.NXE = 1.
    pub fn nxe(&self) -> bool {
        matches!(self.mode(), PagingMode::Pae | PagingMode::FourLevel)
            && self.efer & ctl::EFER_NXE != 0
    }
    pub fn wp(&self) -> bool {
        self.cr0 & ctl::CR0_WP != 0
    }
    pub fn pse(&self) -> bool {
        self.cr4 & ctl::CR4_PSE != 0
    }
    pub fn pge(&self) -> bool {
        self.cr4 & ctl::CR4_PGE != 0
    }
    pub fn smep(&self) -> bool {
        self.cr4 & ctl::CR4_SMEP != 0
    }
    pub fn smap(&self) -> bool {
        self.cr4 & ctl::CR4_SMAP != 0
    }
    pub fn pcide(&self) -> bool {
        self.cr4 & ctl::CR4_PCIDE != 0
    }
    /// The current PCID (CR3[11:0] when CR4.PCIDE = 1, else 0).
    pub fn pcid(&self) -> u16 {
        if self.pcide() {
            (self.cr3 & 0xFFF) as u16
        } else {
            0
        }
    }

    /// Physical address of the top-level table (the PDPT for PAE).
    pub fn root(&self) -> u64 {
        match self.mode() {
            PagingMode::Off => 0,
            PagingMode::Bits32 => self.cr3 & 0xFFFF_F000,
            PagingMode::Pae => self.cr3 & 0xFFFF_FFE0,
            PagingMode::FourLevel => self.cr3 & ADDR_MASK,
        }
    }

    /// The bits that change what a walk means; when any changes, every shadow entry is stale.
    pub fn walk_semantics(&self) -> (PagingMode, bool, bool, bool, bool) {
        (
            self.mode(),
            self.nxe(),
            self.pse(),
            self.pge(),
            self.pcide(),
        )
    }
}

/// Why a control-register write is refused with #GP(0) by the paging rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PagingGp {
    /// PDPTE {index} at guest-physical {addr:#x} = {raw:#018x} has reserved bits {reserved:#x} set
    #[error("PDPTE {index} at guest-physical {addr:#x} = {raw:#018x} has reserved bits {reserved:#x} set")]
    ReservedPdpte {
        index: usize,
        addr: u64,
        raw: u64,
        reserved: u64,
    },
    /// CR3 = {0:#x} sets bits above MAXPHYADDR
    #[error("CR3 = {0:#x} sets bits above MAXPHYADDR")]
    ReservedCr3(u64),
    /// CR4.PCIDE can be set only in long mode with CR3[11:0] = 0
    #[error("CR4.PCIDE can be set only in long mode with CR3[11:0] = 0")]
    PcideNotAllowed,
    /// paging cannot be turned off while CR4.PCIDE = 1
    #[error("paging cannot be turned off while CR4.PCIDE = 1")]
    PagingOffWithPcide,
}

/// Reads the four PDPTEs a MOV to CR3 (or to CR0/CR4 entering PAE paging) loads into registers.
pub fn load_pdptes(machine: &mut Machine, cr3: u64) -> Result<[u64; 4], PagingGp> {
    let base = cr3 & 0xFFFF_FFE0;
    let mut out = [0u64; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        let addr = base + 8 * i as u64;
        let raw = machine.phys_read(addr, 8);
        if raw & 1 != 0 && raw & PDPTE_RESERVED != 0 {
            return Err(PagingGp::ReservedPdpte {
                index: i,
                addr,
                raw,
                reserved: raw & PDPTE_RESERVED,
            });
        }
        *slot = raw;
    }
    Ok(out)
}
