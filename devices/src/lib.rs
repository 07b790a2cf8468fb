//! Device models of a small PC and the bus they hang on.
//! Teaches: how a CPU reaches devices (port I/O, MMIO), and how devices reach the CPU (interrupt lines).
//!
//! Devices know nothing about engines: the interpreter, the binary translator and KVM all end in the
//! same [`Bus`] dispatch, and all poll the same interrupt controllers (the [`pic::PicPair`]
//! behind the [`lapic::LocalApic`], fed also by the [`ioapic::IoApic`]) through one pair of
//! calls, [`Bus::interrupt_pending`] and [`Bus::acknowledge_interrupt`].
//!
//! ```
//! use devices::{Bus, PcPlatformConfig};
//! let mut bus = Bus::new_pc(PcPlatformConfig::default());
//! bus.io_out(0xE9, 1, b'h' as u32); // the debug console takes one byte
//! assert_eq!(bus.take_console_output(), b"h");
//! ```

pub mod acpi;
pub mod ata;
pub mod block;
pub mod board;
pub mod bus;
pub mod clock;
pub mod cmos;
pub mod debug;
pub mod disk_journal;
pub mod fwcfg;
pub mod i8042;
pub mod ioapic;
pub mod lapic;
pub mod net;
pub mod null;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod placement;
pub mod pm_timer;
pub mod snapshot;
pub mod testdev;
pub mod uart;
pub mod virtio;

pub use board::PcPlatformConfig;
pub use bus::{
    Bus, BusDevice, DeviceCtx, DeviceId, Dma, DmaError, DmaWrite, IoStats, IrqLine, IrqLines,
    MachineEvent, MsiMessage,
};
pub use clock::VirtualClock;
pub use snapshot::{BusSnapshot, DeviceSnapshot, SnapshotError};
