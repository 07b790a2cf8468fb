//! Accesses and page faults: what kind of access is translated, and the #PF error code it can earn.
//! Teaches: the five bits of a page-fault error code and why the CPU also hands the OS CR2.

/// What kind of access is being translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    pub write: bool,
    /// A user-mode access (an explicit access made at CPL 3).
    pub user: bool,
    pub fetch: bool,
    /// An implicit supervisor-mode access (descriptor tables, TSS, IDT): SMAP ignores RFLAGS.AC.
    pub implicit: bool,
}

impl Access {
    pub const fn read(user: bool) -> Self {
        Access {
            write: false,
            user,
            fetch: false,
            implicit: false,
        }
    }
    pub const fn write(user: bool) -> Self {
        Access {
            write: true,
            user,
            fetch: false,
            implicit: false,
        }
    }
    pub const fn fetch(user: bool) -> Self {
        Access {
            write: false,
            user,
            fetch: true,
            implicit: false,
        }
    }
    /// An implicit supervisor-mode access (reads of the GDT, IDT, TSS; the busy-bit write of LTR).
    pub const fn implicit(write: bool) -> Self {
        Access {
            write,
            user: false,
            fetch: false,
            implicit: true,
        }
    }

    /// "supervisor read", "user write", "supervisor fetch", "implicit supervisor read", …
    pub fn describe(&self) -> String {
        let who = if self.user {
            "user"
        } else if self.implicit {
            "implicit supervisor"
        } else {
            "supervisor"
        };
        let what = if self.fetch {
            "instruction fetch"
        } else if self.write {
            "write"
        } else {
            "read"
        };
        format!("{who} {what}")
    }
}

/// The bits of a page-fault error code (SDM Vol. 3, "Page-Fault Exceptions").
pub mod pf {
    /// 0 = the entry was not present; 1 = a protection or reserved-bit violation.
    pub const P: u32 = 1 << 0;
    /// The access was a write.
    pub const W: u32 = 1 << 1;
    /// The access was a user-mode access.
    pub const U: u32 = 1 << 2;
    /// A reserved bit was set in some paging-structure entry.
    pub const RSVD: u32 = 1 << 3;
    /// An instruction fetch (reported only with CR4.SMEP = 1 or PAE/4-level paging with NXE = 1).
    pub const ID: u32 = 1 << 4;
}

/// A page fault: the linear address (for CR2) and the error code pushed by the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFault {
    pub linear: u64,
    pub error_code: u32,
}

impl PageFault {
    /// Spells out the error code, e.g. "P=1 (protection) W=1 U=0 RSVD=0 I/D=0".
    pub fn describe_code(&self) -> String {
        let c = self.error_code;
        let bit = |b: u32| (c & b != 0) as u8;
        format!(
            "{:#x} = P={} ({}) W={} U={} RSVD={} I/D={}",
            c,
            bit(pf::P),
            if c & pf::P != 0 {
                "protection or reserved bit"
            } else {
                "not present"
            },
            bit(pf::W),
            bit(pf::U),
            bit(pf::RSVD),
            bit(pf::ID)
        )
    }
}
