//! The panels of the debugger window and the small helpers they share.
//! Teaches: each panel is one question a student asks of the machine — "what runs next?",
//! "what changed?", "where does this address really go?", "what did the guest print?".

pub mod breakpoints;
pub mod code;
pub mod events;
pub mod memory;
pub mod pagewalk;
pub mod registers;
pub mod serial;
pub mod stack;

use egui::{Color32, RichText};

use crate::app::{BottomTab, VmscopeApp};
use crate::guestmem::MachineReader;
use crate::session::expr::Expr;

/// A value the last step changed.
pub const CHANGED: Color32 = Color32::from_rgb(0xFF, 0xA5, 0x2E);
/// The instruction at RIP.
pub const CURRENT_BG: Color32 = Color32::from_rgb(0x2E, 0x5A, 0x2E);
/// The selected line (run-to-cursor target).
pub const CURSOR_BG: Color32 = Color32::from_rgb(0x2A, 0x3A, 0x5A);
pub const BREAKPOINT: Color32 = Color32::from_rgb(0xE0, 0x40, 0x40);
pub const SYMBOL: Color32 = Color32::from_rgb(0x8C, 0xC8, 0xFF);
pub const DIM: Color32 = Color32::from_gray(0x80);
pub const RUNNING: Color32 = Color32::from_rgb(0x70, 0xD0, 0x70);
pub const NOTICE: Color32 = Color32::from_rgb(0xE8, 0xC0, 0x50);
pub const ERROR: Color32 = Color32::from_rgb(0xFF, 0x60, 0x60);

/// Monospace text, highlighted when `changed`.
pub fn value_text(text: impl Into<String>, changed: bool) -> RichText {
    let t = RichText::new(text.into()).monospace();
    if changed {
        t.color(CHANGED).strong()
    } else {
        t
    }
}

/// Parses an address typed by the user: hex digits (`100000`, `0x100000`), a symbol name
/// (`long_mode_entry`), or an expression over registers and memory (`rsp + 8`, `[rsp]`).
pub fn parse_address(app: &mut VmscopeApp, text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("type an address".into());
    }
    let hex = t.strip_prefix("0x").unwrap_or(t);
    if !hex.is_empty() && hex.len() <= 16 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return u64::from_str_radix(hex, 16).map_err(|e| e.to_string());
    }
    if let Some(a) = app.session.symbols.find(t) {
        return Ok(a);
    }
    let e = Expr::parse(t)?;
    let cpu = app.session.machine.cpu.clone();
    e.eval(&cpu, &mut MachineReader(&mut app.session.machine))
}

/// Hex with as many digits as the CPU mode has address bits.
pub fn addr_text(app: &VmscopeApp, a: u64) -> String {
    if app.session.machine.cpu.code_bits() == 64 || a > 0xFFFF_FFFF {
        format!("{a:016x}")
    } else {
        format!("{a:08x}")
    }
}

/// The right-hand side: the stack on top, the page walk below.
pub fn inspector(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    egui::ScrollArea::vertical()
        .id_salt("inspector")
        .show(ui, |ui| {
            egui::CollapsingHeader::new("Stack")
                .default_open(true)
                .show(ui, |ui| stack::show(ui, app));
            egui::CollapsingHeader::new("Page walk")
                .default_open(true)
                .show(ui, |ui| pagewalk::show(ui, app));
        });
}

/// The bottom tabs: serial console, events, statistics, breakpoints.
pub fn bottom_tabs(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    ui.horizontal(|ui| {
        let tab = &mut app.settings.bottom_tab;
        ui.selectable_value(tab, BottomTab::Serial, "Serial console");
        ui.selectable_value(tab, BottomTab::Events, "Events");
        ui.selectable_value(tab, BottomTab::Stats, "Stats");
        ui.selectable_value(tab, BottomTab::Breakpoints, "Breakpoints");
    });
    ui.separator();
    match app.settings.bottom_tab {
        BottomTab::Serial => serial::show(ui, app),
        BottomTab::Events => events::show(ui, app),
        BottomTab::Stats => events::stats(ui, app),
        BottomTab::Breakpoints => breakpoints::show(ui, app),
    }
}
