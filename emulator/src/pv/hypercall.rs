//! The hypercall dispatcher: what each hypercall does, the same code behind every engine's door.
//! Teaches: a hypercall is a system call one level down — numbered, with arguments in
//! registers, and every argument checked, because the guest may pass anything.
//!
//! The door differs by engine: the interpreter and translator see `in %dx, %eax` on
//! [`abi::HYPERCALL_PORT`] (or VMCALL) as an instruction; KVM sees the same IN as a port-I/O
//! exit. Each engine then calls [`dispatch`] with the registers and a [`PvHost`] that knows
//! how that engine writes guest memory and keeps its TLB or shadow right.

use super::abi::{self, E2BIG, EFAULT, EINVAL, ENOSYS};
use crate::machine::Machine;

/// How the guest reached the hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `in %dx, %eax` on the hypercall port: works on every engine (one exit under KVM).
    Port,
    /// VMCALL: taken by the interpreter and the translator only (KVM keeps VMCALL in the
    /// kernel, and PVM refuses it).
    Vmcall,
}

impl Door {
    pub fn name(self) -> &'static str {
        match self {
            Door::Port => "port",
            Door::Vmcall => "vmcall",
        }
    }
}

/// The registers of a hypercall: RAX = number, RBX, RCX, RSI, RDI = arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HypercallRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rsi: u64,
    pub rdi: u64,
}

/// What an engine lends the dispatcher: the machine, and its way of changing guest page
/// tables and forgetting translations.
pub trait PvHost {
    fn machine(&mut self) -> &mut Machine;
    /// Writes the 8-byte page-table entry at guest-physical `addr` (checked to be in RAM) as
    /// the engine's own stores do (decoded and translated code sees it), and tells the MMU
    /// the entry changed — without a write-protect trap.
    fn write_pte(&mut self, addr: u64, value: u64);
    /// Forgets the translation of one linear address (INVLPG).
    fn invlpg(&mut self, linear: u64);
    /// Forgets every non-global translation (as a CR3 reload does).
    fn flush_tlb(&mut self);
    /// Can this engine update guest page tables for the guest? (Not KVM with shadow paging in
    /// the kernel; CPUID then does not offer HC_MMU_UPDATE, and a call gets -ENOSYS.)
    fn can_update_page_tables(&self) -> bool {
        true
    }
}

// ANCHOR: dispatch
/// Runs hypercall `regs.rax` and returns its result for EAX (negative: an error).
pub fn dispatch(host: &mut dyn PvHost, door: Door, regs: &HypercallRegs) -> i32 {
    let (name, result) = match regs.rax {
        abi::HC_VERSION => ("version", abi::ABI_VERSION as i32),
        abi::HC_MMU_UPDATE if !host.can_update_page_tables() => ("mmu_update", -ENOSYS),
        abi::HC_MMU_UPDATE => ("mmu_update", mmu_update(host, regs.rbx, regs.rcx)),
        abi::HC_CONSOLE_WRITE => ("console_write", console_write(host, regs.rbx, regs.rcx)),
        _ => ("unknown", -ENOSYS),
    };
    let stats = &mut host.machine().stats;
    *stats.hypercalls.entry((name, door.name())).or_default() += 1;
    if result < 0 {
        stats.hypercall_errors += 1;
    }
    result
}
// ANCHOR_END: dispatch

/// Is `[addr, addr + len)` inside guest RAM (without overflowing)?
fn in_ram(m: &Machine, addr: u64, len: u64) -> bool {
    addr.checked_add(len).is_some() && (len == 0 || m.ram.contains(addr, len as usize))
}

/// One decoded HC_MMU_UPDATE request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    WritePte { addr: u64, value: u64 },
    Invlpg(u64),
    Flush,
}

// ANCHOR: mmu_update
/// Reads and checks the whole batch first, then applies it in order: all or nothing.
fn mmu_update(host: &mut dyn PvHost, base: u64, count: u64) -> i32 {
    if count > abi::MMU_BATCH_MAX {
        return -E2BIG;
    }
    let m = host.machine();
    if !in_ram(m, base, count * abi::MMU_REQUEST_SIZE) {
        return -EFAULT;
    }
    let mut batch = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = base + i * abi::MMU_REQUEST_SIZE;
        let (Ok(target), Ok(value)) = (m.ram.read_le(at, 8), m.ram.read_le(at + 8, 8)) else {
            return -EFAULT;
        };
        let request = match target & 7 {
            abi::MMU_OP_WRITE_PTE if in_ram(m, target, 8) => Request::WritePte {
                addr: target,
                value,
            },
            abi::MMU_OP_WRITE_PTE => return -EFAULT,
            abi::MMU_OP_INVLPG => Request::Invlpg(value),
            abi::MMU_OP_FLUSH => Request::Flush,
            _ => return -EINVAL,
        };
        batch.push(request);
    }
    for request in batch {
        match request {
            Request::WritePte { addr, value } => {
                host.write_pte(addr, value);
                host.machine().stats.mmu.pv_pte_writes += 1;
            }
            Request::Invlpg(linear) => {
                host.invlpg(linear);
                host.machine().stats.mmu.pv_invlpg += 1;
            }
            Request::Flush => host.flush_tlb(),
        }
    }
    count as i32
}
// ANCHOR_END: mmu_update

fn console_write(host: &mut dyn PvHost, addr: u64, len: u64) -> i32 {
    if len > abi::CONSOLE_MAX {
        return -E2BIG;
    }
    let m = host.machine();
    if !in_ram(m, addr, len) {
        return -EFAULT;
    }
    let mut bytes = vec![0u8; len as usize];
    if m.ram.read(addr, &mut bytes).is_err() {
        return -EFAULT;
    }
    m.bus.write_console(&bytes);
    len as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that writes RAM directly and records what the MMU was told.
    struct Recorder {
        m: Machine,
        told: Vec<Request>,
    }

    impl PvHost for Recorder {
        fn machine(&mut self) -> &mut Machine {
            &mut self.m
        }
        fn write_pte(&mut self, addr: u64, value: u64) {
            self.m.ram.write_le(addr, 8, value).unwrap();
            self.told.push(Request::WritePte { addr, value });
        }
        fn invlpg(&mut self, linear: u64) {
            self.told.push(Request::Invlpg(linear));
        }
        fn flush_tlb(&mut self) {
            self.told.push(Request::Flush);
        }
    }

    fn host() -> Recorder {
        Recorder {
            m: Machine::new(4 << 20).unwrap(),
            told: Vec::new(),
        }
    }

    fn call(h: &mut Recorder, rax: u64, rbx: u64, rcx: u64) -> i32 {
        let regs = HypercallRegs {
            rax,
            rbx,
            rcx,
            ..Default::default()
        };
        dispatch(h, Door::Port, &regs)
    }

    fn put_requests(h: &mut Recorder, at: u64, requests: &[(u64, u64)]) {
        for (i, (t, v)) in requests.iter().enumerate() {
            h.m.ram.write_le(at + 16 * i as u64, 8, *t).unwrap();
            h.m.ram.write_le(at + 16 * i as u64 + 8, 8, *v).unwrap();
        }
    }

    #[test]
    fn version_and_unknown_numbers() {
        let mut h = host();
        assert_eq!(call(&mut h, abi::HC_VERSION, 0, 0), 1);
        assert_eq!(call(&mut h, 3, 0, 0), -ENOSYS);
        assert_eq!(call(&mut h, u64::MAX, 0, 0), -ENOSYS);
        assert_eq!(h.m.stats.hypercalls[&("version", "port")], 1);
        assert_eq!(h.m.stats.hypercalls[&("unknown", "port")], 2);
        assert_eq!(h.m.stats.hypercall_errors, 2);
    }

    #[test]
    fn a_batch_is_applied_in_order() {
        let mut h = host();
        put_requests(
            &mut h,
            0x1000,
            &[
                (0x2008, 0xAAAA_0003),
                (0x1 | 0x7000, 0x40_0000),
                (0x2, 0),
                (0x2010, 7),
            ],
        );
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, 4), 4);
        assert_eq!(h.m.ram.read_le(0x2008, 8).unwrap(), 0xAAAA_0003);
        assert_eq!(h.m.ram.read_le(0x2010, 8).unwrap(), 7);
        assert_eq!(
            h.told,
            [
                Request::WritePte {
                    addr: 0x2008,
                    value: 0xAAAA_0003
                },
                Request::Invlpg(0x40_0000),
                Request::Flush,
                Request::WritePte {
                    addr: 0x2010,
                    value: 7
                },
            ]
        );
        assert_eq!(h.m.stats.mmu.pv_pte_writes, 2);
        assert_eq!(h.m.stats.mmu.pv_invlpg, 1);
    }

    #[test]
    fn a_bad_request_applies_nothing() {
        let mut h = host();
        // The third request is an unknown op: the first two must not happen either.
        put_requests(&mut h, 0x1000, &[(0x2008, 1), (0x2010, 2), (0x2013, 3)]);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, 3), -EINVAL);
        assert!(h.told.is_empty());
        assert_eq!(h.m.ram.read_le(0x2008, 8).unwrap(), 0);
        // A PTE outside RAM, the array outside RAM, the array wrapping around.
        put_requests(&mut h, 0x1000, &[(0x2008, 1), (0xFFFF_FFF8, 2)]);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, 2), -EFAULT);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, (4 << 20) - 16, 2), -EFAULT);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, u64::MAX - 15, 1), -EFAULT);
        assert!(h.told.is_empty());
    }

    #[test]
    fn batch_limits() {
        let mut h = host();
        let max = abi::MMU_BATCH_MAX;
        let requests: Vec<(u64, u64)> = (0..max).map(|i| (0x20_0000 + 8 * i, i)).collect();
        put_requests(&mut h, 0x1000, &requests);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, max), max as i32);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, max + 1), -E2BIG);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, u64::MAX), -E2BIG);
        assert_eq!(call(&mut h, abi::HC_MMU_UPDATE, 0x1000, 0), 0);
    }

    #[test]
    fn console_write_reaches_the_serial_output() {
        let mut h = host();
        h.m.ram.write(0x3000, b"hello via hypercall\n").unwrap();
        assert_eq!(call(&mut h, abi::HC_CONSOLE_WRITE, 0x3000, 20), 20);
        assert_eq!(h.m.bus.take_serial_output(), b"hello via hypercall\n");
        assert_eq!(call(&mut h, abi::HC_CONSOLE_WRITE, 0x3000, 4097), -E2BIG);
        assert_eq!(
            call(&mut h, abi::HC_CONSOLE_WRITE, (4 << 20) - 2, 3),
            -EFAULT
        );
        assert_eq!(call(&mut h, abi::HC_CONSOLE_WRITE, u64::MAX, 2), -EFAULT);
        assert!(h.m.bus.take_serial_output().is_empty());
    }
}
