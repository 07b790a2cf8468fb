//! The code panel: disassembly around RIP, the next instruction highlighted, breakpoints in the gutter.
//! Teaches: what "the next instruction" is — CS:RIP decoded in the CPU's current mode (16, 32 or 64-bit).

use egui::{RichText, Role, Sense, Shape, Vec2, WidgetInfo};

use super::{addr_text, BREAKPOINT, CURRENT_BG, CURSOR_BG, DIM, SYMBOL};
use crate::app::VmscopeApp;
use crate::disasm;

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    let cpu = app.session.machine.cpu.clone();
    let rip = cpu.rip;
    let linear_rip = cpu.linear_rip();
    ui.horizontal(|ui| {
        ui.heading("Code").on_hover_text(
            "click a line: cursor (run to cursor, page walk) · double-click: run to it · \
             click the gutter: toggle a breakpoint",
        );
        ui.label(format!(
            "{}:{} ({}-bit code)",
            format_args!("{:04x}", cpu.cs().selector),
            addr_text(app, rip),
            cpu.code_bits()
        ));
        if let Some(sym) = app.session.symbols.describe(linear_rip) {
            ui.label(RichText::new(format!("in {sym}")).color(SYMBOL));
        }
    });
    ui.separator();

    let (before, after) = (
        app.settings.code_lines_before,
        app.settings.code_lines_after,
    );
    let lines = disasm::listing(
        &mut app.session.machine,
        &app.session.symbols,
        rip,
        before,
        after,
    );
    egui::ScrollArea::both()
        .id_salt("code")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.spacing_mut().item_spacing.y = 1.0;
            for line in &lines {
                app.facts.code_lines.push((line.ip, line.text.clone()));
                if line.current {
                    app.facts.code_current = Some(line.ip);
                }
                if let Some(label) = &line.label {
                    ui.label(RichText::new(format!("{label}:")).monospace().color(SYMBOL));
                }
                code_line(ui, app, line);
            }
        });
}

fn code_line(ui: &mut egui::Ui, app: &mut VmscopeApp, line: &disasm::Line) {
    let background = ui.painter().add(Shape::Noop);
    let row = ui.horizontal(|ui| {
        let bp = app.session.breakpoint_at(line.linear).map(|b| b.enabled);
        // Keep clear of the registers panel's resize handle at our left edge.
        ui.add_space(6.0);
        let (rect, gutter) = ui.allocate_exact_size(Vec2::new(18.0, 16.0), Sense::click());
        let (c, r) = (rect.center(), 5.0);
        match bp {
            Some(true) => {
                ui.painter().circle_filled(c, r, BREAKPOINT);
            }
            Some(false) => {
                ui.painter().circle_stroke(c, r, (1.5, BREAKPOINT));
            }
            None if gutter.hovered() => {
                ui.painter().circle_stroke(c, r, (1.0, DIM));
            }
            None => {}
        }
        let linear = line.linear;
        gutter.widget_info(|| {
            WidgetInfo::labeled(Role::Button, true, format!("breakpoint {linear:x}"))
        });
        if gutter.on_hover_text("toggle breakpoint").clicked() {
            app.session.toggle_breakpoint(linear);
        }
        let marker = if line.current { "→" } else { " " };
        let mut bytes: String = line
            .bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        if line.bytes.len() > 8 {
            bytes.push('…');
        }
        let text = format!(
            "{marker} {}  {bytes:<17} {}",
            addr_text(app, line.ip),
            line.text
        );
        let mut rich = RichText::new(text).monospace();
        if line.current {
            rich = rich.strong();
        }
        let r = ui.add(egui::Label::new(rich).sense(Sense::click()).extend());
        if line.current && app.code_scrolled_to != Some(line.ip) {
            r.scroll_to_me(Some(egui::Align::Center));
            app.code_scrolled_to = Some(line.ip);
        }
        if r.clicked() {
            app.cursor = Some(linear);
            app.walk_target = Some((linear, "code view"));
        }
        if r.double_clicked() {
            app.cursor = Some(linear);
            app.session.run_to(linear);
        }
    });
    let color = if line.current {
        Some(CURRENT_BG)
    } else if app.cursor == Some(line.linear) {
        Some(CURSOR_BG)
    } else {
        None
    };
    if let Some(c) = color {
        let mut rect = row.response.rect;
        rect.max.x = rect.max.x.max(ui.max_rect().max.x);
        ui.painter()
            .set(background, Shape::rect_filled(rect, 2.0, c));
    }
}
