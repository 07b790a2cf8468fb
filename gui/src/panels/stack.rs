//! The stack panel: the slots at SS:RSP, with return addresses named by symbols.
//! Teaches: CALL pushes where to come back to, PUSH saves registers, and interrupts push a frame.

use egui::RichText;
use emulator::cpu::reg;

use super::{addr_text, DIM, SYMBOL};
use crate::app::VmscopeApp;
use crate::guestmem::read_linear_le;

const SLOTS: u64 = 16;

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    let cpu = app.session.machine.cpu.clone();
    let width: u64 = if cpu.long_mode_active() {
        8
    } else if cpu.ss().db {
        4
    } else {
        2
    };
    let mask = if width == 8 {
        u64::MAX
    } else if width == 4 {
        0xFFFF_FFFF
    } else {
        0xFFFF
    };
    let rsp = cpu.gpr[reg::RSP] & mask;
    let rbp = cpu.gpr[reg::RBP] & mask;
    let ss_base = if cpu.long_mode_active() {
        0
    } else {
        cpu.ss().base
    };
    ui.label(
        RichText::new(format!(
            "SS:RSP = {:04x}:{rsp:x}, {width}-byte slots",
            cpu.ss().selector
        ))
        .color(DIM),
    );
    egui::Grid::new("stack")
        .num_columns(3)
        .spacing([10.0, 1.0])
        .show(ui, |ui| {
            for i in 0..SLOTS {
                let offset = rsp.wrapping_add(i * width) & mask;
                let linear = ss_base.wrapping_add(offset);
                let value = read_linear_le(&mut app.session.machine, linear, width as usize);
                let mut mark = String::new();
                if offset == rsp {
                    mark.push_str("rsp→");
                }
                if offset == rbp {
                    mark.push_str("rbp→");
                }
                let addr = ui.add(
                    egui::Label::new(
                        RichText::new(format!("{mark:>8} {}", addr_text(app, linear))).monospace(),
                    )
                    .sense(egui::Sense::click()),
                );
                if addr.on_hover_text("click: explain this address").clicked() {
                    app.walk_target = Some((linear, "stack"));
                }
                match value {
                    Some(v) => {
                        let digits = (width * 2) as usize;
                        ui.label(RichText::new(format!("{v:0digits$x}")).monospace());
                        let note = app.session.symbols.describe(v).unwrap_or_default();
                        ui.label(RichText::new(note).color(SYMBOL));
                    }
                    None => {
                        ui.label(RichText::new("(not mapped)").color(DIM));
                        ui.label("");
                    }
                }
                ui.end_row();
            }
        });
}
