//! The memory panel: a hex view of linear or physical memory that can follow a register.
//! Teaches: the same bytes seen through the page tables (linear) or directly (physical); orange
//! backgrounds are bytes the guest wrote lately (brighter = more recent).

use std::collections::HashMap;

use egui::{Color32, RichText, Sense};

use super::{addr_text, parse_address, DIM};
use crate::app::{Space, VmscopeApp};
use crate::guestmem::{phys_byte, translate};

const ROWS: u64 = 16;
const COLS: u64 = 16;
const FOLLOW: [&str; 9] = ["", "rip", "rsp", "rbp", "rsi", "rdi", "rbx", "rax", "cr2"];

/// Where the view starts: the followed register (rounded down to a row), else the set address.
fn start_address(app: &mut VmscopeApp) -> u64 {
    let follow = app.settings.memory_follow.clone();
    if follow.is_empty() {
        return app.settings.memory_addr;
    }
    let cpu = &app.session.machine.cpu;
    let v = match follow.as_str() {
        "rip" => cpu.linear_rip(),
        "cr2" => cpu.cr2,
        _ => parse_address(app, &follow).unwrap_or(0),
    };
    let v = if follow == "rsp" || follow == "rbp" {
        // Stack addresses go through SS outside long mode.
        let cpu = &app.session.machine.cpu;
        if cpu.long_mode_active() {
            v
        } else {
            cpu.ss().base.wrapping_add(v) & 0xFFFF_FFFF
        }
    } else {
        v
    };
    v & !(COLS - 1)
}

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    ui.horizontal_wrapped(|ui| {
        ui.heading("Memory");
        let s = &mut app.settings;
        ui.selectable_value(&mut s.memory_space, Space::Linear, "linear")
            .on_hover_text("addresses as the program uses them, through the page tables");
        ui.selectable_value(&mut s.memory_space, Space::Physical, "physical")
            .on_hover_text("guest-physical addresses: RAM as the hardware sees it");
        egui::ComboBox::from_label("is followed")
            .selected_text(if s.memory_follow.is_empty() {
                "(none)"
            } else {
                s.memory_follow.as_str()
            })
            .width(60.0)
            .show_ui(ui, |ui| {
                for f in FOLLOW {
                    let label = if f.is_empty() { "(none)" } else { f };
                    ui.selectable_value(&mut s.memory_follow, f.to_string(), label);
                }
            });
        let label = ui.label("address:");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut app.forms.mem_addr)
                    .hint_text("hex, symbol or rsp+8")
                    .desired_width(120.0),
            )
            .labelled_by(label.id);
        let go = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Go").clicked() || go {
            let text = app.forms.mem_addr.clone();
            match parse_address(app, &text) {
                Ok(a) => {
                    app.settings.memory_addr = a & !(COLS - 1);
                    app.settings.memory_follow.clear();
                    app.forms.message = None;
                }
                Err(e) => app.forms.message = Some(e),
            }
        }
        for (label, delta) in [
            ("-0x100", -((ROWS * COLS) as i64)),
            ("+0x100", (ROWS * COLS) as i64),
        ] {
            if ui.small_button(label).clicked() {
                let base = start_address(app);
                app.settings.memory_follow.clear();
                app.settings.memory_addr = base.wrapping_add_signed(delta);
            }
        }
        if let Some(m) = &app.forms.message {
            ui.label(RichText::new(m).color(super::ERROR));
        }
    });

    let base = start_address(app);
    let linear = app.settings.memory_space == Space::Linear;
    let position = app.session.position();
    // Recent writes by guest-physical byte → how many instructions ago.
    let mut age: HashMap<u64, u64> = HashMap::new();
    for &(phys, size, pos) in &app.session.recent_writes.writes {
        for b in 0..size as u64 {
            age.insert(phys + b, position.saturating_sub(pos));
        }
    }

    egui::ScrollArea::vertical()
        .id_salt("memory")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.spacing_mut().item_spacing = egui::vec2(0.0, 1.0);
            for row in 0..ROWS {
                let row_addr = base.wrapping_add(row * COLS);
                let frame = if linear {
                    translate(&mut app.session.machine, row_addr & !0xFFF)
                } else {
                    Some(row_addr & !0xFFF)
                };
                ui.horizontal(|ui| {
                    ui.label(
                        RichText::new(format!("{}  ", addr_text(app, row_addr)))
                            .monospace()
                            .color(DIM),
                    );
                    let mut ascii = String::new();
                    for col in 0..COLS {
                        let a = row_addr.wrapping_add(col);
                        let phys = frame.map(|f| f | (a & 0xFFF));
                        let byte = phys.and_then(|p| phys_byte(&app.session.machine, p));
                        let text = byte.map_or("--".to_string(), |b| format!("{b:02x}"));
                        ascii.push(match byte {
                            Some(b) if b.is_ascii_graphic() || b == b' ' => b as char,
                            Some(_) => '.',
                            None => ' ',
                        });
                        let mut rich = RichText::new(text).monospace();
                        if let Some(ago) = phys.and_then(|p| age.get(&p)) {
                            app.facts.memory_highlighted += 1;
                            if *ago == 0 {
                                app.facts.memory_written_last += 1;
                            }
                            rich = rich
                                .background_color(write_color(*ago))
                                .color(Color32::BLACK);
                        }
                        if byte.is_none() {
                            rich = rich.color(DIM);
                        }
                        let r = ui.add(egui::Label::new(rich).sense(Sense::click()));
                        let r = r.on_hover_text(match phys {
                            Some(p) => format!("linear {a:#x} -> physical {p:#x}"),
                            None => format!("{a:#x}: not mapped"),
                        });
                        if r.clicked() && linear {
                            app.walk_target = Some((a, "memory view"));
                        }
                        ui.add_space(if col == 7 { 10.0 } else { 5.0 });
                    }
                    ui.add_space(8.0);
                    ui.label(RichText::new(ascii).monospace().color(DIM));
                });
            }
        });
}

/// Bright orange for a write by the last instruction, fading over about a thousand.
fn write_color(ago: u64) -> Color32 {
    let fade = (ago.min(1024) as f32 / 1024.0).sqrt();
    let a = 255.0 - 150.0 * fade;
    Color32::from_rgb(a as u8, (a * 0.6) as u8, 0x20)
}
