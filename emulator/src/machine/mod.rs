//! The machine: guest RAM, firmware ROM, the device bus, one CPU state and its statistics.
//! Teaches: what a virtual machine monitor holds on to, independent of how instructions execute.

pub mod engine;
pub mod loader;
pub mod snapshot;
pub mod stats;

pub use engine::{Engine, EngineError, Exit, Invalidate, RunLimit};
pub use snapshot::MachineSnapshot;
pub use stats::{MmuStats, Stats, TranslatorStats};

use devices::{Bus, PcPlatformConfig};

use crate::cpu::CpuState;
use crate::memory::{GuestRam, MemoryError};

/// Size of the window at the top of the 4 GiB space where the firmware ROM is aliased.
pub const FOUR_GIB: u64 = 1 << 32;

/// One virtual PC.
pub struct Machine {
    pub ram: GuestRam,
    /// Firmware ROM contents, visible read-only at `[4 GiB - len, 4 GiB)` (and copied at 1 MiB - len).
    pub rom: Vec<u8>,
    pub bus: Bus,
    pub cpu: CpuState,
    pub stats: Stats,
    /// Paravirtualization offered to the guest (`--pv on`): CPUID's hypervisor leaves, the
    /// hypercall door, kvmclock. Off, the machine looks like bare hardware.
    pub pv: bool,
    /// Which engine last published kvmclock, and how to continue its time.
    pub kvmclock: crate::pv::kvmclock::Kvmclock,
    /// Bumped whenever guest memory or paging state may have changed behind the emulated
    /// engines' backs: a KVM run, a debugger's write, a restore. Every cache of guest memory
    /// (decoded instructions, translated blocks, shadow page tables) remembers the epoch it was
    /// filled in and drops itself when the machine's differs. (Device DMA is finer: logged
    /// writes, see `Dma`.)
    pub memory_epoch: u64,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("ram", &self.ram)
            .field("rom_len", &self.rom.len())
            .field("rip", &format_args!("{:#x}", self.cpu.rip))
            .finish()
    }
}

impl Machine {
    /// A PC with `ram_bytes` of RAM, the standard devices and a CPU in its reset state. The
    /// ACPI tables are already in RAM, where a BIOS would have left them (`devices::acpi`).
    pub fn new(ram_bytes: u64) -> Result<Self, MemoryError> {
        let mut ram = GuestRam::new(ram_bytes)?;
        install_acpi_tables(&mut ram);
        Ok(Machine {
            ram,
            rom: Vec::new(),
            bus: Bus::new_pc(PcPlatformConfig { ram_bytes }),
            cpu: CpuState::reset(),
            stats: Stats::default(),
            pv: false,
            kvmclock: Default::default(),
            memory_epoch: 0,
        })
    }

    /// Guest memory or paging state changed where no engine saw it: every engine's caches of
    /// it are dropped before it runs again (see [`Machine::memory_epoch`]).
    pub fn memory_changed_behind_engines(&mut self) {
        self.memory_epoch = self.memory_epoch.wrapping_add(1);
    }

    /// Marks the pages of device writes no engine has taken yet as dirty (before the last
    /// round of a migration: the DMA log is drained only when an engine runs again).
    pub fn mark_pending_dma_dirty(&mut self) {
        let pending: Vec<(u64, u64)> = self
            .bus
            .pending_dma_writes()
            .iter()
            .map(|w| (w.addr, w.len))
            .collect();
        for (addr, len) in pending {
            self.ram.mark_dirty(addr, len);
        }
    }

    /// Guest-physical start of the high ROM alias, if a ROM is loaded.
    pub fn rom_base(&self) -> Option<u64> {
        (!self.rom.is_empty()).then(|| FOUR_GIB - self.rom.len() as u64)
    }

    /// Reads `size` bytes (1, 2, 4 or 8) at a guest-physical address: RAM, ROM alias, MMIO, or
    /// open bus (all ones) where nothing answers. Accesses that straddle the end of RAM are split.
    pub fn phys_read(&mut self, addr: u64, size: usize) -> u64 {
        if self.ram.contains(addr, size) {
            return self.ram.read_le(addr, size).unwrap_or(u64::MAX);
        }
        if let Some(v) = self
            .bus
            .mmio_read_with(addr, size as u8, self.ram.as_mut_slice())
        {
            self.stats.count_exit("mmio");
            return v;
        }
        let mut value = 0u64;
        for i in 0..size {
            value |= (self.phys_read_byte_slow(addr.wrapping_add(i as u64)) as u64) << (8 * i);
        }
        value
    }

    fn phys_read_byte_slow(&self, addr: u64) -> u8 {
        if let Ok(v) = self.ram.read_le(addr, 1) {
            return v as u8;
        }
        if let Some(base) = self.rom_base() {
            if (base..FOUR_GIB).contains(&addr) {
                return self.rom[(addr - base) as usize];
            }
        }
        0xFF
    }

    /// Writes `size` bytes at a guest-physical address; writes to ROM or nowhere are dropped.
    /// Lets device `id` act on host news now (`Bus::service_device`): a frame for a NIC.
    pub fn service_device(&mut self, id: devices::bus::DeviceId) {
        self.bus.service_device(id, self.ram.as_mut_slice());
    }

    pub fn phys_write(&mut self, addr: u64, size: usize, value: u64) {
        if self.ram.contains(addr, size) {
            let _ = self.ram.write_le(addr, size, value);
            return;
        }
        if self
            .bus
            .mmio_write_with(addr, size as u8, value, self.ram.as_mut_slice())
        {
            self.stats.count_exit("mmio");
            return;
        }
        for i in 0..size {
            let a = addr.wrapping_add(i as u64);
            if self.ram.contains(a, 1) {
                let _ = self.ram.write_le(a, 1, value >> (8 * i));
            }
        }
    }
}

/// Writes the ACPI tables (RSDP at 0xE0000, the rest just above it) into RAM that reaches past
/// them; smaller machines go without. The boot memory map reserves `devices::acpi::RESERVED`.
fn install_acpi_tables(ram: &mut GuestRam) {
    if ram.size() < devices::acpi::RESERVED.1 {
        return;
    }
    for (addr, bytes) in devices::acpi::build_tables() {
        // In range by the check above; a failure would only leave the tables out.
        let _ = ram.write(addr, &bytes);
    }
}
