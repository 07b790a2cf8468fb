//! The registers panel: general registers and flags, segment caches, control registers, MSRs.
//! Teaches: the architectural state an instruction changes — orange marks what the last step touched.

use egui::RichText;
use emulator::cpu::{CpuState, Seg, Segment};

use super::{value_text, DIM};
use crate::app::VmscopeApp;
use crate::decode::{self, Bit};

const GPR64: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
const GPR32: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const FLAG_ROW: [&str; 9] = ["CF", "PF", "AF", "ZF", "SF", "TF", "IF", "DF", "OF"];

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    let cpu = app.session.machine.cpu.clone();
    let prev = app.session.prev_cpu.clone();
    let mut changed_names = Vec::new();
    egui::ScrollArea::vertical()
        .id_salt("registers")
        .show(ui, |ui| {
            ui.heading("Registers");
            general(ui, &cpu, &prev, &mut changed_names);
            flags(ui, &cpu, &prev, &mut changed_names);
            ui.add_space(4.0);
            egui::CollapsingHeader::new("Segments (selector + hidden descriptor cache)")
                .default_open(true)
                .show(ui, |ui| segments(ui, &cpu, &prev, &mut changed_names));
            egui::CollapsingHeader::new("Control registers and mode")
                .default_open(true)
                .show(ui, |ui| control(ui, &cpu, &prev, &mut changed_names));
            egui::CollapsingHeader::new("MSRs")
                .default_open(false)
                .show(ui, |ui| msrs(ui, &cpu));
        });
    app.facts.highlighted_registers = changed_names;
}

fn general(ui: &mut egui::Ui, cpu: &CpuState, prev: &CpuState, changed: &mut Vec<String>) {
    let long = cpu.long_mode_active();
    let count = if long { 16 } else { 8 };
    egui::Grid::new("gpr")
        .num_columns(4)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            for i in 0..count {
                let name = if long { GPR64[i] } else { GPR32[i] };
                let (v, p) = if long {
                    (cpu.gpr[i], prev.gpr[i])
                } else {
                    (cpu.gpr[i] & 0xFFFF_FFFF, prev.gpr[i] & 0xFFFF_FFFF)
                };
                let text = if long {
                    format!("{v:016x}")
                } else {
                    format!("{v:08x}")
                };
                reg_cell(ui, name, text, v != p, changed);
                if i % 2 == 1 {
                    ui.end_row();
                }
            }
            let rip = if long {
                format!("{:016x}", cpu.rip)
            } else {
                format!("{:08x}", cpu.rip)
            };
            reg_cell(
                ui,
                if long { "rip" } else { "eip" },
                rip,
                cpu.rip != prev.rip,
                changed,
            );
            let fl = format!("{:08x}", cpu.rflags);
            reg_cell(ui, "rflags", fl, cpu.rflags != prev.rflags, changed);
            ui.end_row();
        });
}

fn reg_cell(ui: &mut egui::Ui, name: &str, value: String, is_changed: bool, out: &mut Vec<String>) {
    ui.label(RichText::new(name).monospace().color(DIM));
    ui.label(value_text(value, is_changed));
    if is_changed {
        out.push(name.to_string());
    }
}

fn flags(ui: &mut egui::Ui, cpu: &CpuState, prev: &CpuState, changed: &mut Vec<String>) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("flags").monospace().color(DIM));
        for name in FLAG_ROW {
            let Some(bit) = decode::RFLAGS_BITS.iter().find(|b| b.0 == name) else {
                continue;
            };
            let set = cpu.rflags & bit.1 != 0;
            let was = prev.rflags & bit.1 != 0;
            let text = format!("{name}={}", set as u8);
            let rich = if set != was {
                changed.push(name.to_ascii_lowercase());
                value_text(text, true)
            } else if set {
                RichText::new(text).monospace().strong()
            } else {
                RichText::new(text).monospace().color(DIM)
            };
            ui.label(rich).on_hover_text(bit.2);
        }
        let iopl = (cpu.rflags >> 12) & 3;
        ui.label(RichText::new(format!("IOPL={iopl}")).monospace().color(DIM));
    });
}

fn segment_row(ui: &mut egui::Ui, name: &str, s: &Segment, p: &Segment, changed: &mut Vec<String>) {
    let is_changed = s != p;
    if is_changed {
        changed.push(name.to_string());
    }
    ui.label(RichText::new(name).monospace().color(DIM));
    ui.label(value_text(format!("{:04x}", s.selector), is_changed));
    ui.label(value_text(format!("{:x}", s.base), is_changed));
    ui.label(value_text(format!("{:x}", s.limit), is_changed));
    ui.label(value_text(format!("{:04x}", s.attributes()), is_changed))
        .on_hover_text(decode::describe_segment(s));
    ui.end_row();
}

fn segments(ui: &mut egui::Ui, cpu: &CpuState, prev: &CpuState, changed: &mut Vec<String>) {
    egui::Grid::new("segments")
        .num_columns(5)
        .spacing([10.0, 2.0])
        .show(ui, |ui| {
            for h in ["", "sel", "base", "limit", "attr"] {
                ui.label(RichText::new(h).color(DIM));
            }
            ui.end_row();
            for s in Seg::ALL {
                let i = s as usize;
                segment_row(ui, s.name(), &cpu.seg[i], &prev.seg[i], changed);
            }
            segment_row(ui, "ldtr", &cpu.ldtr, &prev.ldtr, changed);
            segment_row(ui, "tr", &cpu.tr, &prev.tr, changed);
        });
    ui.label(
        RichText::new(format!("cs: {}", decode::describe_segment(cpu.cs())))
            .small()
            .color(DIM),
    );
    for (name, t, p) in [("gdtr", cpu.gdtr, prev.gdtr), ("idtr", cpu.idtr, prev.idtr)] {
        if t != p {
            changed.push(name.to_string());
        }
        ui.label(value_text(
            format!("{name} base {:x} limit {:x}", t.base, t.limit),
            t != p,
        ));
    }
}

fn bits_line(
    ui: &mut egui::Ui,
    name: &str,
    value: u64,
    old: u64,
    bits: &[Bit],
    changed: &mut Vec<String>,
) {
    if value != old {
        changed.push(name.to_string());
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(name).monospace().color(DIM));
        ui.label(value_text(format!("{value:x}"), value != old));
        for (bit_name, mask, meaning) in bits {
            let set = value & mask != 0;
            let rich = if (value ^ old) & mask != 0 {
                value_text(*bit_name, true)
            } else if set {
                RichText::new(*bit_name).monospace().strong()
            } else {
                RichText::new(*bit_name).monospace().color(DIM).weak()
            };
            let state = if set { "set" } else { "clear" };
            ui.label(rich)
                .on_hover_text(format!("{bit_name} ({state}): {meaning}"));
        }
    });
}

fn control(ui: &mut egui::Ui, cpu: &CpuState, prev: &CpuState, changed: &mut Vec<String>) {
    bits_line(ui, "cr0", cpu.cr0, prev.cr0, decode::CR0_BITS, changed);
    bits_line(ui, "cr4", cpu.cr4, prev.cr4, decode::CR4_BITS, changed);
    bits_line(ui, "efer", cpu.efer, prev.efer, decode::EFER_BITS, changed);
    for (name, v, p, what) in [
        (
            "cr2",
            cpu.cr2,
            prev.cr2,
            "the linear address of the last page fault",
        ),
        (
            "cr3",
            cpu.cr3,
            prev.cr3,
            "the physical address of the top page table",
        ),
        ("cr8", cpu.cr8, prev.cr8, "task priority"),
    ] {
        if v != p {
            changed.push(name.to_string());
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new(name).monospace().color(DIM));
            ui.label(value_text(format!("{v:x}"), v != p))
                .on_hover_text(what);
        });
    }
    let paging = emulator::mmu::ControlRegs::of(cpu).mode();
    ui.label(format!(
        "{} · CPL {} · paging: {paging}",
        cpu.mode(),
        cpu.cpl()
    ));
    let e = cpu.events;
    if e.halted || e.interrupt_shadow || e.nmi_pending {
        ui.label(
            RichText::new(format!(
                "{}{}{}",
                if e.halted { "halted (HLT) " } else { "" },
                if e.interrupt_shadow {
                    "interrupt shadow "
                } else {
                    ""
                },
                if e.nmi_pending { "NMI pending" } else { "" }
            ))
            .color(super::NOTICE),
        );
    }
}

fn msrs(ui: &mut egui::Ui, cpu: &CpuState) {
    let m = &cpu.msrs;
    egui::Grid::new("msrs").num_columns(2).show(ui, |ui| {
        for (name, v) in [
            ("STAR", m.star),
            ("LSTAR", m.lstar),
            ("CSTAR", m.cstar),
            ("FMASK", m.fmask),
            ("KERNEL_GS_BASE", m.kernel_gs_base),
            ("SYSENTER_CS", m.sysenter_cs),
            ("SYSENTER_ESP", m.sysenter_esp),
            ("SYSENTER_EIP", m.sysenter_eip),
            ("PAT", m.pat),
            ("APIC_BASE", m.apic_base),
        ] {
            ui.label(RichText::new(name).monospace().color(DIM));
            ui.label(RichText::new(format!("{v:x}")).monospace());
            ui.end_row();
        }
    });
}
