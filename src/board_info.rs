//! `vmscope run --devices`: the machine's devices, where each answers, and the disks, consoles, rng and NIC behind them.
//! Teaches: reading a board — ports, MMIO ranges, PCI functions with their BARs, interrupt lines.

use std::fmt::Write as _;

use devices::Bus;

use crate::attach::Attached;

/// The device table printed before the guest starts.
pub fn describe(bus: &mut Bus, attached: &Attached) -> String {
    let disks = &attached.disks;
    let mut out = String::from("devices:\n");
    for (first, last, name) in bus.port_map() {
        let _ = writeln!(out, "  port {first:#06x}-{last:#06x}  {name}");
    }
    for (first, last, name) in bus.mmio_map() {
        let _ = writeln!(out, "  mmio {first:#010x}-{last:#010x}  {name}");
    }
    let _ = writeln!(
        out,
        "  mmio 0xfec00000-0xfec00fff  ioapic\n  mmio 0xfee00000-0xfee00fff  lapic"
    );
    out.push_str("pci:\n");
    for f in bus.pci_functions() {
        let _ = write!(
            out,
            "  {} {:04x}:{:04x} class {:06x} {}",
            f.bdf, f.vendor, f.device, f.class_code, f.name
        );
        if f.interrupt_pin != 0 {
            let _ = write!(
                out,
                " INT{} gsi {}",
                (b'A' + f.interrupt_pin - 1) as char,
                f.interrupt_line
            );
        }
        for b in &f.bars {
            let kind = if b.io { "io" } else { "mem" };
            let _ = write!(out, " bar{} {kind} {:#x}+{:#x}", b.bar, b.base, b.size);
        }
        out.push('\n');
    }
    if !disks.is_empty() {
        out.push_str("disks:\n");
    }
    for d in disks {
        let _ = writeln!(
            out,
            "  {} ({} sectors{}): {}",
            d.spec.path.display(),
            d.sectors,
            if d.spec.read_only { ", read-only" } else { "" },
            d.location
        );
    }
    if let Some(c) = &attached.console {
        let _ = writeln!(
            out,
            "consoles:\n  uart (COM1): port 0x3f8 irq 4\n  virtio-console: {} (its output joins the UART's)",
            c.location
        );
    }
    if let Some(r) = &attached.rng {
        let _ = writeln!(
            out,
            "entropy:\n  virtio-rng: {}; bytes from SplitMix64, seed {}",
            r.location, r.spec.seed
        );
    }
    if let Some(n) = &attached.nic {
        let peer = match &n.spec.tap {
            Some(t) => match &t.netns {
                Some(ns) => format!("tap {} in network namespace {ns}", t.name),
                None => format!("tap {}", t.name),
            },
            None => "nothing (no --tap: the link is down, frames sent are dropped)".to_string(),
        };
        let _ = writeln!(
            out,
            "network:\n  {}: {}, mac {}; its cable goes to {peer}",
            n.spec.model.name(),
            n.location,
            n.spec.mac
        );
    }
    if !attached.test_devices.is_empty() {
        out.push_str("test devices:\n");
    }
    for t in &attached.test_devices {
        let _ = writeln!(out, "  {t}");
    }
    out
}
