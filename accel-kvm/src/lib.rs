//! The KVM engine: the vmscope machine run by Linux KVM, behind the same `Engine` trait as the
//! interpreter. Teaches: hardware-assisted virtualization from the VMM's side — VM exits, state, time.
//!
//! The guest's RAM is the machine's RAM (mapped, not copied); port I/O and MMIO exits end on the
//! same `Bus` the emulated engines use; interrupts come from the machine's own PIC and are
//! injected from user space (no in-kernel irqchip). The host's KVM flavour is detected and shown,
//! because on a PVM host (software, no VT-x) the numbers mean something different.
//!
//! ```
//! use accel_kvm::{detect_flavour, kvm_available, KvmEngine};
//! use emulator::cpu::state::{ctl, CpuState};
//! use emulator::{Engine, Exit, Machine};
//!
//! if let Err(why) = kvm_available() {
//!     println!("skipping: {why}");
//!     return;
//! }
//! println!("KVM here is {}", detect_flavour());
//! let mut machine = Machine::new(1 << 20).unwrap();
//! // 32-bit code at 1 MiB - 64 KiB: mov al, 'k'; out 0xE9, al; mov al, 0; out 0xF4, al
//! let code = [0xB0, b'k', 0xE6, 0xE9, 0xB0, 0x00, 0xE6, 0xF4];
//! machine.ram.write(0xF_0000, &code).unwrap();
//! machine.cpu = CpuState::multiboot_entry(0xF_0000, 0);
//! let mut kvm = KvmEngine::new(&machine).unwrap();
//! let exit = kvm.run(&mut machine, Default::default()).unwrap();
//! assert_eq!(exit, Exit::DebugExit { value: 0, status: 1 });
//! assert_eq!(machine.bus.take_console_output(), b"k");
//! assert_eq!(machine.cpu.rip, 0xF_0008); // the OUT has retired
//! ```

//! # What this host's KVM does (measured on PVM, kernel 6.18, `cargo run --example kvm_probe`)
//!
//! - Real mode (including INT/IRET through the IVT and the reset vector in the ROM alias),
//!   unpaged protected mode, and long mode — set up directly or by a Multiboot guest switching
//!   itself with CR4.PAE, EFER.LME and CR0.PG — all run.
//! - Paging without long mode (32-bit and PAE) raises #GP on the CR0.PG write.
//! - Guest ring 0 is interpreted by KVM's instruction emulator at ≈ 1 M instructions/s; it
//!   cannot execute a protected-mode IRET, INT3 or x87 instructions such as FSIN
//!   (`EngineError::Unsupported` with the bytes). IRETQ and SYSRETQ in long mode work.
//! - Guest ring 3 runs natively (≈ 5 G simple instructions/s), and exceptions from ring 3
//!   reach the ring-0 IDT handler. But PVM enters a guest kernel from user mode only its own
//!   paravirtual way (a PVM vCPU struct and event entry registered through PVM MSRs), so an
//!   ordinary kernel sees: SYSCALL sets RCX, R11 and RIP = LSTAR but stays at CPL 3 (a user
//!   #PF on the kernel's entry page follows), and INT 0x80 through a DPL-3 gate raises #UD.
//!   The VMM cannot change this: `KVM_GET_MSR_INDEX_LIST` lists no PVM MSRs, and the only
//!   ones `KVM_GET_MSRS` answers (0x4b564d10-0x4b564d13, signature "PVM") refuse writes.
//!   `tests/system_calls.rs` pins both behaviours; hello64 recognises them and carries on.
//! - A port-I/O exit costs ≈ 14 µs from ring 0 and ≈ 40 µs from ring 3.
//! - Under single-stepping, HLT retires like a NOP and an I/O instruction gets no trap of its
//!   own; the run loop restores both meanings. A ring-0 VMCALL spins inside KVM_RUN forever.
//! - KVM_SET_FPU ignores MXCSR (upstream KVM too), so the FPU travels through KVM_SET_XSAVE.
//! - There is no TSC scaling: the guest TSC ticks at the host rate while KVM runs it.

mod apic_msr;
pub mod clock;
pub mod convert;
mod engine;
mod error;
pub mod flavour;
mod pv_door;
mod run_loop;
pub mod state;
pub mod vm;

pub use engine::KvmEngine;
pub use error::KvmError;
pub use flavour::{detect_flavour, kvm_available, kvm_for_tests, KvmFlavour};
