//! Breakpoints, watchpoints and "break on" conditions, listed and edited.
//! Teaches: the kinds of stop a debugger offers — at an address, when a register expression holds,
//! when memory is touched, and on machine events (exceptions, mode switches, I/O, KVM exits).

use egui::RichText;

use super::{parse_address, DIM, ERROR};
use crate::app::VmscopeApp;
use crate::session::{Breakpoint, MemAccess, Watchpoint};

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    egui::ScrollArea::vertical()
        .id_salt("breakpoints")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            breakpoints(ui, app);
            ui.separator();
            ui.columns(2, |cols| {
                watchpoints(&mut cols[0], app);
                break_on(&mut cols[1], app);
            });
            if let Some(m) = &app.forms.message {
                ui.label(RichText::new(m).color(ERROR));
            }
        });
}

fn breakpoints(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    ui.strong("Breakpoints");
    let mut remove = None;
    let mut errors = Vec::new();
    let symbols = app.session.symbols.clone();
    for (i, b) in app.session.breakpoints.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            ui.checkbox(&mut b.enabled, "")
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::CheckBox, true, "enabled"));
            let name = symbols.describe(b.linear).unwrap_or_default();
            ui.label(RichText::new(format!("{:x} {name}", b.linear)).monospace());
            let mut cond = b.condition_text.clone();
            let r = ui.add(
                egui::TextEdit::singleline(&mut cond)
                    .hint_text("condition, e.g. rax == 1")
                    .desired_width(160.0),
            );
            if r.changed() {
                b.condition_text = cond.clone();
            }
            if r.lost_focus() {
                if let Err(e) = b.set_condition(&cond) {
                    errors.push(format!("condition {cond:?}: {e}"));
                }
            }
            ui.label(RichText::new(format!("{} hits", b.hits)).color(DIM));
            if ui.small_button("x").on_hover_text("remove").clicked() {
                remove = Some(i);
            }
        });
    }
    if let Some(i) = remove {
        app.session.breakpoints.remove(i);
    }
    ui.horizontal_wrapped(|ui| {
        let at = ui.label("break at");
        ui.add(
            egui::TextEdit::singleline(&mut app.forms.bp_addr)
                .hint_text("hex or symbol")
                .desired_width(120.0),
        )
        .labelled_by(at.id);
        let when = ui.label("if");
        ui.add(
            egui::TextEdit::singleline(&mut app.forms.bp_cond)
                .hint_text("e.g. rax == 1 (optional)")
                .desired_width(140.0),
        )
        .labelled_by(when.id);
        if ui.button("Add breakpoint").clicked() {
            let text = app.forms.bp_addr.clone();
            let added = parse_address(app, &text)
                .and_then(|a| Breakpoint::with_condition(a, &app.forms.bp_cond));
            match added {
                Ok(b) => {
                    app.session.breakpoints.retain(|x| x.linear != b.linear);
                    app.session.breakpoints.push(b);
                    app.forms.bp_addr.clear();
                    app.forms.bp_cond.clear();
                    app.forms.message = None;
                }
                Err(e) => errors.push(e),
            }
        }
    });
    if let Some(e) = errors.pop() {
        app.forms.message = Some(e);
    }
}

fn watchpoints(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    ui.strong("Watchpoints (linear addresses)");
    let mut remove = None;
    egui::Grid::new("watch").num_columns(4).show(ui, |ui| {
        for (i, w) in app.session.watchpoints.iter_mut().enumerate() {
            ui.checkbox(&mut w.enabled, "")
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::CheckBox, true, "enabled"));
            ui.label(
                RichText::new(format!("{:x}..{:x}", w.start, w.start.wrapping_add(w.len)))
                    .monospace(),
            );
            ui.label(format!("{} · {} hits", w.access.label(), w.hits));
            if ui.small_button("x").clicked() {
                remove = Some(i);
            }
            ui.end_row();
        }
    });
    if let Some(i) = remove {
        app.session.watchpoints.remove(i);
    }
    ui.horizontal_wrapped(|ui| {
        let at = ui.label("watch");
        ui.add(
            egui::TextEdit::singleline(&mut app.forms.watch_addr)
                .hint_text("hex or symbol")
                .desired_width(100.0),
        )
        .labelled_by(at.id);
        let len = ui.label("bytes");
        ui.add(
            egui::TextEdit::singleline(&mut app.forms.watch_len)
                .hint_text("8")
                .desired_width(40.0),
        )
        .labelled_by(len.id);
        let access = app.forms.watch_access.get_or_insert(MemAccess::Write);
        egui::ComboBox::from_label("access")
            .selected_text(access.label())
            .show_ui(ui, |ui| {
                for a in [MemAccess::Write, MemAccess::Read, MemAccess::ReadWrite] {
                    ui.selectable_value(access, a, a.label());
                }
            });
        if ui.button("Add watchpoint").clicked() {
            let text = app.forms.watch_addr.clone();
            let len = app.forms.watch_len.trim();
            let len = if len.is_empty() {
                Ok(8)
            } else {
                len.parse::<u64>()
                    .map_err(|_| format!("not a length: {len}"))
            };
            match parse_address(app, &text).and_then(|a| len.map(|l| (a, l))) {
                Ok((a, l)) => {
                    let access = app.forms.watch_access.unwrap_or(MemAccess::Write);
                    app.session.watchpoints.push(Watchpoint::new(a, l, access));
                    app.forms.watch_addr.clear();
                    app.forms.message = None;
                }
                Err(e) => app.forms.message = Some(e),
            }
        }
    });
}

fn break_on(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    ui.strong("Break on");
    let b = &mut app.session.break_on;
    ui.checkbox(&mut b.exception, "exception delivered (#PF, #GP, #UD, …)");
    ui.checkbox(
        &mut b.mode_switch,
        "mode switch (real / protected / long, code size)",
    );
    ui.checkbox(
        &mut b.kvm_exit,
        "KVM exit (I/O, MMIO, HLT, interrupt window…)",
    );
    ui.horizontal(|ui| {
        let label = ui.label("I/O ports:");
        if app.forms.io_ports.is_empty() && !b.io_ports.is_empty() {
            app.forms.io_ports = b
                .io_ports
                .iter()
                .map(|p| format!("{p:x}"))
                .collect::<Vec<_>>()
                .join(" ");
        }
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut app.forms.io_ports)
                    .hint_text("hex, e.g. 3f8 60")
                    .desired_width(120.0),
            )
            .labelled_by(label.id);
        if r.changed() {
            b.io_ports = app
                .forms
                .io_ports
                .split([' ', ','])
                .filter_map(|p| u16::from_str_radix(p.trim().trim_start_matches("0x"), 16).ok())
                .collect();
        }
    });
}
