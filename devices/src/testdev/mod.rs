//! QEMU's test devices, so test kernels written for QEMU's harness (kvm-unit-tests and the like)
//! run unchanged: pc-testdev on ISA ports and MMIO, pci-testdev on the PCI bus.
//! Teaches: a machine can carry instruments for its own tests — devices with no purpose but to
//! let a guest check, from the inside, that the platform decodes and routes what it should.
//!
//! Neither is on the standard board: `vmscope run --device pc-testdev|pci-testdev` adds them
//! (see `placement.rs`), as QEMU's `-device` does.

pub mod pc;
pub mod pci;
#[cfg(test)]
mod tests;

pub use pc::PcTestDev;
pub use pci::PciTestDev;
