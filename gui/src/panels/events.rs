//! The events timeline with counts, and the statistics panel with a live speed plot.
//! Teaches: where a guest spends its exits and traps — and how that changes with the engine.

use egui::RichText;
use egui_plot::{Legend, Line, Plot, Points};

use super::DIM;
use crate::app::VmscopeApp;
use crate::session::EventKind;

const LIST: usize = 300;

fn kind_color(k: EventKind) -> egui::Color32 {
    use egui::Color32 as C;
    match k {
        EventKind::Interrupt => C::from_rgb(0x6C, 0xB6, 0xFF),
        EventKind::Exception => C::from_rgb(0xFF, 0x60, 0x60),
        EventKind::PortIo => C::from_rgb(0x9C, 0xE0, 0x7C),
        EventKind::Mmio => C::from_rgb(0x40, 0xC0, 0xA0),
        EventKind::KvmExit => C::from_rgb(0xE0, 0x9C, 0xFF),
        EventKind::MmuInvalidation => C::from_rgb(0xFF, 0xA5, 0x2E),
        EventKind::ModeSwitch => C::from_rgb(0xFF, 0xE0, 0x50),
        EventKind::EngineSwitch => C::from_rgb(0xFF, 0xFF, 0xFF),
        EventKind::SerialInput => C::from_rgb(0xB0, 0xB0, 0xB0),
        EventKind::NmiButton => C::from_rgb(0xE0, 0x40, 0x40),
    }
}

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    let log = &app.session.events;
    egui::Panel::left("event-counts")
        .resizable(true)
        .default_size(230.0)
        .show(ui, |ui| {
            egui::Grid::new("event-totals")
                .num_columns(2)
                .show(ui, |ui| {
                    for k in EventKind::ALL {
                        ui.label(RichText::new(k.label()).color(kind_color(k)));
                        ui.label(RichText::new(log.total(k).to_string()).monospace());
                        ui.end_row();
                    }
                });
            ui.label(
                RichText::new(format!("{} events on the timeline", log.events.len())).color(DIM),
            );
        });
    egui::Panel::top("event-plot")
        .resizable(true)
        .default_size(110.0)
        .show(ui, |ui| {
            let plot = Plot::new("timeline")
                .height(ui.available_height().max(60.0))
                .show_axes([true, false])
                .allow_scroll(false)
                .x_axis_label("instruction");
            plot.show(ui, |p| {
                for (row, k) in EventKind::ALL.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = log
                        .events
                        .iter()
                        .filter(|e| e.kind == *k)
                        .map(|e| [e.position as f64, -(row as f64)])
                        .collect();
                    if !pts.is_empty() {
                        p.points(
                            Points::new(k.label(), pts)
                                .radius(2.5)
                                .color(kind_color(*k)),
                        );
                    }
                }
            });
        });
    egui::ScrollArea::vertical()
        .id_salt("events")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("event-list")
                .num_columns(4)
                .striped(true)
                .show(ui, |ui| {
                    for e in log.events.iter().rev().take(LIST) {
                        ui.label(
                            RichText::new(format!("#{}", e.position))
                                .monospace()
                                .color(DIM),
                        );
                        ui.label(RichText::new(format!("{:x}", e.rip)).monospace());
                        ui.label(RichText::new(e.kind.label()).color(kind_color(e.kind)));
                        let count = if e.count > 1 {
                            format!(" ×{}", e.count)
                        } else {
                            String::new()
                        };
                        ui.label(format!("{}{count}", e.detail));
                        ui.end_row();
                    }
                });
        });
}

/// Counters (as `vmscope run --stats` prints them) and the instructions-per-second plot.
pub fn stats(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    egui::Panel::right("stats-plot")
        .resizable(true)
        .default_size(ui.available_width() * 0.55)
        .show(ui, |ui| {
            let on_kvm = app.session.engine_kind() == crate::session::EngineKind::Kvm;
            ui.label(
                RichText::new(if on_kvm {
                    "KVM runs natively and cannot count instructions: watch exits/s instead"
                } else {
                    "guest instructions per second (and exits/traps per second)"
                })
                .color(DIM),
            );
            Plot::new("ips")
                .legend(Legend::default())
                .allow_scroll(false)
                .x_axis_label("seconds")
                .show(ui, |p| {
                    let ips: Vec<[f64; 2]> = app.ips.instructions.iter().copied().collect();
                    let exits: Vec<[f64; 2]> = app.ips.exits.iter().copied().collect();
                    p.line(Line::new("instructions/s", ips));
                    p.line(Line::new("exits/s", exits));
                });
        });
    let s = &app.session;
    let interp = s.interpreter();
    let mmu = s.mmu();
    let (frames, deps) = mmu.tracing_footprint();
    let dc = interp.decode_cache_stats();
    let mut text = s.machine.stats.report(&s.machine.bus.stats);
    if let Some(report) = s.engine_report() {
        text.push_str(&report);
        text.push('\n');
    }
    text.push_str(&format!(
        "shadow address spaces: {}, page-table frames traced: {frames} ({deps} dependencies)\n\
         interpreter decode cache: {dc:?}\n\
         step back: {} CPU states recorded, {} machine snapshots (every {} instructions){}\n",
        mmu.spaces().len(),
        s.history.checkpoints(),
        s.history.snapshot_positions().len(),
        s.history.snapshot_every,
        if s.history.kvm_ran {
            " (KVM ran: replay disabled)"
        } else {
            ""
        }
    ));
    egui::ScrollArea::vertical()
        .id_salt("stats")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.label(RichText::new(text).monospace().small());
        });
}
