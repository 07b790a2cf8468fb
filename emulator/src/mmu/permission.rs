//! Access rights: U/S, R/W with CR0.WP, XD with EFER.NXE, SMEP and SMAP with RFLAGS.AC.
//! Teaches: the rights of a page are the AND of every level's bits, and who may do what with them.

use super::fault::Access;
use super::mode::ControlRegs;
use crate::cpu::flags;

/// The rights a translation grants: the AND over every level that has the bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// U/S = 1 at every level: a user-mode page.
    pub user: bool,
    /// R/W = 1 at every level.
    pub writable: bool,
    /// No level has XD = 1 (or NXE is off, or 32-bit paging).
    pub executable: bool,
}

impl Rights {
    pub const ALL: Rights = Rights {
        user: true,
        writable: true,
        executable: true,
    };
}

/// Why an access to a present, well-formed translation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// A user-mode access to a supervisor page (U/S = 0 at some level).
    SupervisorPage,
    /// A write to a read-only page by user mode, or by supervisor mode with CR0.WP = 1.
    ReadOnly,
    /// An instruction fetch from a page with XD = 1 at some level (EFER.NXE = 1).
    NoExecute,
    /// CR4.SMEP: supervisor-mode instruction fetch from a user page.
    Smep,
    /// CR4.SMAP: supervisor-mode data access to a user page (implicit, or RFLAGS.AC = 0).
    Smap,
}

impl Denial {
    pub fn explain(&self) -> &'static str {
        match self {
            Denial::SupervisorPage => "user-mode access to a supervisor page (U/S=0 at some level)",
            Denial::ReadOnly => {
                "write to a read-only page (R/W=0 at some level; user mode or CR0.WP=1)"
            }
            Denial::NoExecute => {
                "instruction fetch from a no-execute page (XD=1 at some level, EFER.NXE=1)"
            }
            Denial::Smep => "SMEP: supervisor-mode instruction fetch from a user page",
            Denial::Smap => {
                "SMAP: supervisor-mode data access to a user page (implicit access, or RFLAGS.AC=0)"
            }
        }
    }
}

/// Does SMAP block a supervisor data access to user pages right now?
pub fn smap_blocks(regs: &ControlRegs, rflags: u64, access: Access) -> bool {
    regs.smap() && (access.implicit || rflags & flags::AC == 0)
}

/// The full permission check of the SDM ("Access Rights"), done at the end of every walk.
pub fn check(regs: &ControlRegs, rflags: u64, access: Access, r: Rights) -> Result<(), Denial> {
    if access.user {
        if !r.user {
            return Err(Denial::SupervisorPage);
        }
        if access.write && !r.writable {
            return Err(Denial::ReadOnly);
        }
        if access.fetch && !r.executable {
            return Err(Denial::NoExecute);
        }
        return Ok(());
    }
    if access.fetch {
        if r.user && regs.smep() {
            return Err(Denial::Smep);
        }
        if !r.executable {
            return Err(Denial::NoExecute);
        }
        return Ok(());
    }
    if r.user && smap_blocks(regs, rflags, access) {
        return Err(Denial::Smap);
    }
    if access.write && !r.writable && regs.wp() {
        return Err(Denial::ReadOnly);
    }
    Ok(())
}

/// Flag bits of a shadow entry, in the low 12 bits of its frame address.
pub mod sflag {
    pub const USER: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const EXEC: u64 = 1 << 2;
    /// The leaf's dirty bit is set, so a write needs no walk.
    pub const DIRTY: u64 = 1 << 3;
    pub const GLOBAL: u64 = 1 << 4;
    /// Guest page size: 0 = 4 KiB, 1 = 2 MiB, 2 = 4 MiB, 3 = 1 GiB (bits 5-6).
    pub const SIZE_SHIFT: u32 = 5;
    pub const SIZE_MASK: u64 = 3 << SIZE_SHIFT;
    pub const ALL: u64 = 0x7F;
}

/// The shadow's fast check: which flag bits an access needs and which it must not see.
/// Anything this refuses goes to the walker, which produces the exact fault or sets D.
#[inline]
pub fn fast_masks(regs: &ControlRegs, rflags: u64, access: Access) -> (u64, u64) {
    use sflag::*;
    if access.user {
        let mut need = USER;
        if access.write {
            need |= WRITABLE | DIRTY;
        }
        if access.fetch {
            need |= EXEC;
        }
        return (need, 0);
    }
    if access.fetch {
        return (EXEC, if regs.smep() { USER } else { 0 });
    }
    let deny = if smap_blocks(regs, rflags, access) {
        USER
    } else {
        0
    };
    if access.write {
        let need = DIRTY | if regs.wp() { WRITABLE } else { 0 };
        return (need, deny);
    }
    (0, deny)
}
