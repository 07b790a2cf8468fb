//! The DSDT: the PCI root bridge, its windows and how its interrupt pins reach the IOAPIC.
//! Teaches: what an OS cannot probe on a PC — which bus numbers, ports and addresses the root bridge forwards, and which GSI each slot's INTA#–INTD# drives — it reads here, as AML.
//!
//! In ASL, what [`dsdt_body`] encodes reads:
//!
//! ```text
//! Name (\_S5, Package () { 5, 5, 0, 0 })      // soft-off: SLP_TYP 5 (pm_timer.rs)
//! Scope (\_SB) {
//!     Device (PCI0) {
//!         Name (_HID, EisaId ("PNP0A03"))      // a PCI root bridge
//!         Name (_UID, 0)
//!         Name (_BBN, 0)                       // its bus number
//!         Name (_CRS, ResourceTemplate () {    // what it forwards
//!             WordBusNumber (…, 0x00, 0xFF, …)
//!             IO (Decode16, 0x0CF8, 0x0CF8, 1, 8)        // its own config ports
//!             WordIO (…, 0x0000, 0x0CF7, …)
//!             WordIO (…, 0x0D00, 0xFFFF, …)
//!             DWordMemory (…, 0xE0000000, 0xFEBFFFFF, …)  // board::PCI_MEMORY_WINDOW
//!         })
//!         Name (_PRT, Package () {             // slot, pin → GSI, for every slot
//!             Package () { 0x0001FFFF, 0, 0, 17 },       // slot 1 INTA# → GSI 17
//!             …
//!         })
//!     }
//! }
//! ```
//!
//! The routing comes from [`crate::pci::intx_gsi`], the function the PCI bus raises its
//! interrupts by, so the table and the wiring cannot disagree. A `_PRT` entry whose source is
//! 0 names a GSI directly (no interrupt link device): the IOAPIC pins 16–19, level-triggered
//! and shared, as on QEMU's q35 without link devices.

use super::aml::{self, Resources};
use crate::board::PCI_MEMORY_WINDOW;
use crate::pci::CONFIG_ADDRESS;

/// PCI slots on bus 0 (device numbers 0–31).
const SLOTS: u8 = 32;

/// The AML after the DSDT's header.
pub fn dsdt_body() -> Vec<u8> {
    let crs = Resources::default()
        .bus_numbers(0, 0xFF)
        .io(CONFIG_ADDRESS, CONFIG_ADDRESS, 1, 8)
        .io_window(0, CONFIG_ADDRESS - 1)
        .io_window(0x0D00, 0xFFFF)
        .memory_window(PCI_MEMORY_WINDOW.0, PCI_MEMORY_WINDOW.1)
        .finish();
    let mut routes = Vec::new();
    for slot in 0..SLOTS {
        for pin in 0..4u8 {
            let gsi = crate::pci::intx_gsi(slot, pin + 1).number();
            routes.push(aml::package(&[
                aml::integer(((slot as u64) << 16) | 0xFFFF),
                aml::integer(pin as u64),
                aml::integer(0),
                aml::integer(gsi as u64),
            ]));
        }
    }
    let mut bridge = Vec::new();
    bridge.extend(aml::name_object(
        "_HID",
        aml::integer(aml::eisa_id("PNP0A03") as u64),
    ));
    bridge.extend(aml::name_object("_UID", aml::integer(0)));
    bridge.extend(aml::name_object("_BBN", aml::integer(0)));
    bridge.extend(aml::name_object("_CRS", crs));
    bridge.extend(aml::name_object("_PRT", aml::package(&routes)));
    // \_S5: the sleep-type values for soft-off (PM1a, PM1b, reserved ×2).
    let s5 = crate::pm_timer::SLP_TYP_S5 as u64;
    let mut body = aml::name_object(
        "_S5_",
        aml::package(&[
            aml::integer(s5),
            aml::integer(s5),
            aml::integer(0),
            aml::integer(0),
        ]),
    );
    body.extend(aml::scope("\\_SB", aml::device("PCI0", bridge)));
    body
}
