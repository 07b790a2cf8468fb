//! Paravirtualization: the interface a guest that knows it is virtual uses instead of trapping.
//! Teaches: discovery through CPUID, a hypercall door, batched page-table updates, a shared clock.
//!
//! With `Machine::pv` on (`--pv on`), CPUID offers two interfaces: KVM's, which Linux knows
//! (kvmclock), and vmscope's own (hypercalls). Every engine answers the same CPUID; what
//! differs between engines is what a hypercall costs — one instruction in the interpreter,
//! one exit to user space under KVM — and what a batch of page-table updates saves, which is
//! a lot where the VMM shadows the guest's tables and little where hardware walks them.
//!
//! - [`abi`]: the numbers of the contract (the guest's copy is `guests/kernel/pv_abi.inc`).
//! - [`hypercall`]: the one dispatcher every engine's door leads to.
//! - [`kvmclock`]: the time-info structure the VMM keeps in guest memory.

pub mod abi;
pub mod hypercall;
pub mod kvmclock;

pub use hypercall::{dispatch, Door, HypercallRegs, PvHost};
