//! The serial console: what the guest wrote to its 16550 UART, and a line to type into it.
//! Teaches: a guest "prints" by writing bytes to I/O port 0x3F8; typed bytes go into the UART's
//! receive FIFO and raise IRQ 4 if the guest enabled it.

use egui::RichText;

use super::DIM;
use crate::app::VmscopeApp;

pub fn show(ui: &mut egui::Ui, app: &mut VmscopeApp) {
    let mut send = None;
    egui::Panel::bottom("serial-input").show(ui, |ui| {
        ui.horizontal(|ui| {
            let label = ui.label("type:");
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut app.serial_input)
                        .hint_text("text for the guest's UART (Enter sends it with a newline)")
                        .desired_width(ui.available_width() - 70.0),
                )
                .labelled_by(label.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Send").clicked() || enter {
                let mut bytes = std::mem::take(&mut app.serial_input).into_bytes();
                bytes.push(b'\n');
                send = Some(bytes);
                r.request_focus();
            }
        });
    });
    if let Some(bytes) = send {
        app.session.send_serial_input(&bytes);
    }
    egui::ScrollArea::vertical()
        .id_salt("serial")
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if app.session.serial.is_empty() {
                ui.label(RichText::new("(the guest has printed nothing yet)").color(DIM));
            } else {
                ui.add(egui::Label::new(RichText::new(&app.session.serial).monospace()).wrap());
            }
        });
}
