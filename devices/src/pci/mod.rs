//! PCI: configuration mechanism #1, a host bridge, BARs that the guest places, INTx and MSI.
//! Teaches: how an OS finds devices on a bus it can enumerate — config space at 0xCF8/0xCFC,
//! IDs and class codes, BAR sizing and placement — and how a device's registers then appear
//! wherever the OS put them.
//!
//! The bus owns the host bridge logic ([`PciHost`]): a dword write to 0xCF8 selects bus,
//! device, function and register (bit 31 enables); 0xCFC–0xCFF then read or write that
//! function's [`PciConfig`]. After a write that moves a BAR or flips the command register's
//! I/O or memory enable, the bus re-decodes that function's BARs: its old ranges leave the
//! address maps and the enabled ones enter them. A BAR placed over another device's range is
//! not decoded (counted as `pci-bar-conflict`): the guest's mistake, not a host panic.
//!
//! Only bus 0 exists. Slot 0 is the host bridge (`8086:1237`, class 06 00 00, as on QEMU's
//! i440FX machine); the board puts devices in the slots after it. INTx: slot `s`, pin `p`
//! (1 = INTA#) is wired to GSI 16 + (s + p − 1) mod 4, the usual swizzle onto four PIRQ lines,
//! and the interrupt line register holds that GSI, as firmware would have written it.

pub mod config;
pub mod virtio;

use std::collections::BTreeMap;

pub use config::{BarKind, BarMapping, PciConfig};

use crate::bus::{Bus, BusDevice, DeviceCtx, DeviceId, IrqLine, MachineEvent, MmioOwner, Target};

/// Configuration address and data ports.
pub const CONFIG_ADDRESS: u16 = 0xCF8;
pub const CONFIG_DATA: u16 = 0xCFC;
/// The reset control register QEMU and chipsets put at 0xCF9 (bit 2 resets the machine).
pub const RESET_CONTROL: u16 = 0xCF9;

/// The GSI slot `slot`'s interrupt pin `pin` (1–4) is wired to.
pub fn intx_gsi(slot: u8, pin: u8) -> IrqLine {
    let pirq = (slot as u32 + pin.max(1) as u32 - 1) % 4;
    IrqLine::new(16 + pirq as u8).expect("GSIs 16-19 exist")
}

/// Bus, device, function as one number (`bus << 8 | device << 3 | function`).
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct Bdf(pub u16);

impl Bdf {
    pub fn new(bus: u8, device: u8, function: u8) -> Bdf {
        Bdf((bus as u16) << 8 | ((device as u16) & 31) << 3 | (function as u16 & 7))
    }
    pub fn device(self) -> u8 {
        (self.0 >> 3 & 31) as u8
    }
    pub fn function(self) -> u8 {
        (self.0 & 7) as u8
    }
}

impl std::fmt::Display for Bdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{}",
            self.0 >> 8,
            self.device(),
            self.function()
        )
    }
}

/// The host bridge's state: the address register and which function sits at which BDF.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone)]
pub struct PciHost {
    address: u32,
    functions: BTreeMap<Bdf, DeviceId>,
    /// The BAR ranges each function decodes right now.
    mapped: BTreeMap<DeviceId, Vec<BarMapping>>,
    pub bar_conflicts: u64,
}

/// The host bridge itself, function 00:00.0: IDs and class, nothing else.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct HostBridge {
    config: PciConfig,
}

impl Default for HostBridge {
    fn default() -> Self {
        HostBridge {
            config: PciConfig::new(0x8086, 0x1237, 0x06_00_00, 2),
        }
    }
}

impl BusDevice for HostBridge {
    fn name(&self) -> &'static str {
        "pci-host"
    }
    fn pci_config(&mut self) -> Option<&mut PciConfig> {
        Some(&mut self.config)
    }
    crate::snapshot::plain_data_snapshot!();
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// One line of `vmscope run --devices`: a PCI function and what it decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunctionInfo {
    pub bdf: Bdf,
    pub name: &'static str,
    pub vendor: u16,
    pub device: u16,
    pub class_code: u32,
    pub interrupt_pin: u8,
    pub interrupt_line: u8,
    pub bars: Vec<BarMapping>,
}

impl Bus {
    /// Puts a PCI host bridge on the bus: ports 0xCF8–0xCFF and function 00:00.0.
    pub fn enable_pci(&mut self) -> Result<(), crate::bus::OverlapError> {
        self.ports
            .insert(CONFIG_ADDRESS, CONFIG_DATA + 3, Target::PciConfig)?;
        let id = self.add_device(Box::new(HostBridge::default()));
        self.pci.functions.insert(Bdf::new(0, 0, 0), id);
        Ok(())
    }

    /// Adds a PCI function at bus 0, `slot`, function 0. The device must answer
    /// [`BusDevice::pci_config`]; its BARs decode once the guest places and enables them
    /// (or at once if the board placed them).
    pub fn add_pci_device(
        &mut self,
        mut device: Box<dyn BusDevice>,
        slot: u8,
    ) -> Result<DeviceId, String> {
        let bdf = Bdf::new(0, slot, 0);
        if slot == 0 || slot > 31 {
            return Err(format!(
                "PCI slot {slot} does not exist (1-31 are free for devices)"
            ));
        }
        if self.pci.functions.contains_key(&bdf) {
            return Err(format!("PCI slot {slot} is taken"));
        }
        if device.pci_config().is_none() {
            return Err(format!("{} is not a PCI device", device.name()));
        }
        let id = self.add_device(device);
        self.pci.functions.insert(bdf, id);
        self.remap_bars(id);
        Ok(id)
    }

    /// Every PCI function, by BDF, with what it decodes now.
    pub fn pci_functions(&mut self) -> Vec<PciFunctionInfo> {
        let functions: Vec<_> = self.pci.functions.iter().map(|(b, i)| (*b, *i)).collect();
        functions
            .into_iter()
            .filter_map(|(bdf, id)| {
                let dev = &mut self.slots[id.0].device;
                let name = dev.name();
                let c = dev.pci_config()?;
                Some(PciFunctionInfo {
                    bdf,
                    name,
                    vendor: c.read(config::reg::VENDOR_ID, 2) as u16,
                    device: c.read(config::reg::DEVICE_ID, 2) as u16,
                    class_code: c.read(config::reg::CLASS, 3),
                    interrupt_pin: c.interrupt_pin(),
                    interrupt_line: c.read(config::reg::INTERRUPT_LINE, 1) as u8,
                    bars: self.pci.mapped.get(&id).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The function the address register selects, and the register offset, if enabled.
    fn pci_selected(&self, port: u16) -> Option<(DeviceId, usize)> {
        let a = self.pci.address;
        if a & 0x8000_0000 == 0 {
            return None;
        }
        let bdf = Bdf(((a >> 8) & 0xFFFF) as u16);
        let id = *self.pci.functions.get(&bdf)?;
        Some((id, (a & 0xFC) as usize + (port - CONFIG_DATA) as usize))
    }

    pub(crate) fn pci_config_port_read(&mut self, port: u16, size: u8, _ram: &mut [u8]) -> u32 {
        match port {
            CONFIG_ADDRESS if size == 4 => self.pci.address,
            CONFIG_DATA..=0xCFF => match self.pci_selected(port) {
                Some((id, offset)) => self.slots[id.0]
                    .device
                    .pci_config()
                    .map_or(u32::MAX, |c| c.read(offset, size as usize)),
                // No function there: the bus master aborts, reads are all ones.
                None => u32::MAX,
            },
            _ => u32::MAX,
        }
    }

    pub(crate) fn pci_config_port_write(
        &mut self,
        port: u16,
        size: u8,
        value: u32,
        ram: &mut [u8],
    ) {
        match port {
            CONFIG_ADDRESS if size == 4 => self.pci.address = value & 0x80FF_FFFC,
            RESET_CONTROL if size == 1 && value & 4 != 0 => {
                self.events.push(MachineEvent::ResetRequested);
            }
            CONFIG_DATA..=0xCFF => {
                let Some((id, offset)) = self.pci_selected(port) else {
                    return;
                };
                let remap = self.slots[id.0]
                    .device
                    .pci_config()
                    .is_some_and(|c| c.write(offset, size as usize, value));
                crate::bus::with_device!(self, id, ram, |d, ctx| d
                    .pci_config_written(offset, &mut ctx));
                if remap {
                    self.remap_bars(id);
                }
            }
            _ => {}
        }
    }

    /// Makes the address maps match function `id`'s BARs as they decode now.
    fn remap_bars(&mut self, id: DeviceId) {
        let wanted = self.slots[id.0]
            .device
            .pci_config()
            .map(|c| c.mappings())
            .unwrap_or_default();
        let current = self.pci.mapped.remove(&id).unwrap_or_default();
        for m in &current {
            if m.io {
                self.ports.remove(m.base as u16, Target::Bar(id, m.bar));
            } else {
                self.mmio.remove(m.base, MmioOwner::Bar(id, m.bar));
            }
        }
        let mut placed = Vec::new();
        for m in wanted {
            let last = m.base + m.size - 1;
            let ok = if m.io {
                self.ports
                    .insert(m.base as u16, last as u16, Target::Bar(id, m.bar))
                    .is_ok()
            } else {
                self.mmio
                    .insert(m.base, last, MmioOwner::Bar(id, m.bar))
                    .is_ok()
            };
            if ok {
                placed.push(m);
            } else {
                self.pci.bar_conflicts += 1;
                *self.stats.by_device.entry("pci-bar-conflict").or_default() += 1;
            }
        }
        self.pci.mapped.insert(id, placed);
    }
}

/// Raises or drops a PCI function's interrupt the way its config space says: an MSI when the
/// guest enabled one (sent on the rising edge only), else INTx on `line` unless INTx is
/// disabled; the status register's interrupt bit follows the request either way.
pub fn signal_interrupt(
    config: &mut PciConfig,
    line: IrqLine,
    asserted: bool,
    rising: bool,
    ctx: &mut DeviceCtx,
) {
    config.set_interrupt_status(asserted);
    if let Some(msi) = config.msi() {
        ctx.set_irq_level(line, false);
        if asserted && rising {
            ctx.send_msi(msi);
        }
    } else {
        ctx.set_irq_level(line, asserted && !config.intx_disabled());
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod virtio_tests;
