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

pub mod clock;
pub mod convert;
mod engine;
mod error;
pub mod flavour;
mod run_loop;
pub mod state;
pub mod vm;

pub use engine::KvmEngine;
pub use error::KvmError;
pub use flavour::{detect_flavour, kvm_available, KvmFlavour};
