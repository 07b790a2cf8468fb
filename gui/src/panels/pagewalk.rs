//! The page-walk panel: how one linear address becomes a physical one, entry by entry.
//! Teaches: CR3 → PML4E → PDPTE → PDE → PTE, the bits of each entry, the permission rules that
//! apply, and the exact #PF when the walk fails. Click a byte, a stack slot or a code line to
//! explain its address.

use egui::RichText;
use emulator::mmu::explain::decode_bits;
use emulator::mmu::Access;

use super::{parse_address, DIM, ERROR, RUNNING};
use crate::app::{VmscopeApp, WalkAccess};

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    let (linear, source) = app
        .walk_target
        .unwrap_or((app.session.machine.cpu.linear_rip(), "the next instruction"));
    let explaining_rip = app.walk_target.is_none();
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("explain:");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut app.forms.walk_addr)
                    .hint_text("hex, symbol or rsp+8")
                    .desired_width(140.0),
            )
            .labelled_by(label.id);
        let go = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Explain").clicked() || go {
            let text = app.forms.walk_addr.clone();
            match parse_address(app, &text) {
                Ok(a) => app.walk_target = Some((a, "typed")),
                Err(e) => app.forms.message = Some(e),
            }
        }
        if !explaining_rip
            && ui
                .button("RIP")
                .on_hover_text("explain the next instruction")
                .clicked()
        {
            app.walk_target = None;
        }
    });
    ui.horizontal(|ui| {
        let s = &mut app.settings;
        ui.selectable_value(&mut s.walk_access, WalkAccess::Read, "read");
        ui.selectable_value(&mut s.walk_access, WalkAccess::Write, "write");
        ui.selectable_value(&mut s.walk_access, WalkAccess::Fetch, "fetch");
        ui.checkbox(&mut s.walk_user, "as user (CPL 3)");
    });
    let user = app.settings.walk_user;
    let access = if explaining_rip {
        Access::fetch(app.session.machine.cpu.cpl() == 3)
    } else {
        match app.settings.walk_access {
            WalkAccess::Read => Access::read(user),
            WalkAccess::Write => Access::write(user),
            WalkAccess::Fetch => Access::fetch(user),
        }
    };
    let e = app.session.explain(linear, access);
    let text = e.to_string();
    app.facts.walk_lines = text.lines().map(str::to_string).collect();

    ui.label(RichText::new(format!("{linear:#x} ({source}): {}", access.describe())).strong());
    let lines: Vec<&str> = text.lines().collect();
    let first_step = lines.iter().position(|l| l.starts_with("1. "));
    let tail = lines
        .iter()
        .position(|l| l.starts_with("rights over") || l.starts_with("result:"))
        .unwrap_or(lines.len());
    for l in &lines[1..first_step.unwrap_or(tail).max(1)] {
        ui.label(RichText::new(*l).monospace().small());
    }
    if !e.steps.is_empty() {
        egui::Grid::new("walk")
            .num_columns(5)
            .striped(true)
            .spacing([8.0, 2.0])
            .show(ui, |ui| {
                for h in ["entry", "index", "at", "value", "bits"] {
                    ui.label(RichText::new(h).color(DIM));
                }
                ui.end_row();
                for s in &e.steps {
                    ui.label(RichText::new(s.level.entry_name()).monospace().strong());
                    ui.label(RichText::new(format!("{}", s.index)).monospace())
                        .on_hover_text(format!(
                            "linear bits {}..{} pick this entry",
                            s.region_shift,
                            s.region_shift as u32 + if s.size == 4 { 9 } else { 8 }
                        ));
                    ui.label(RichText::new(format!("{:x}", s.entry_addr)).monospace())
                        .on_hover_text(format!("table at {:#x}", s.table));
                    let digits = s.size as usize * 2;
                    ui.label(RichText::new(format!("{:0digits$x}", s.raw)).monospace());
                    ui.label(RichText::new(decode_bits(s, e.mode)).monospace().small());
                    ui.end_row();
                }
            });
    }
    for l in &lines[tail..] {
        let color = if l.contains("[FAIL]") || l.contains("#PF") {
            ERROR
        } else if l.contains("[ok]") || l.starts_with("result: physical") {
            RUNNING
        } else {
            DIM
        };
        ui.label(RichText::new(*l).monospace().small().color(color));
    }
}
