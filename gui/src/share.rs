//! "Link to this state": the URL (in a browser) or the command (on the desktop) that recreates it.
//! Teaches: a deterministic machine needs only its image, command line and an instruction count to be shared.

use crate::start::StartOptions;
use crate::VmscopeApp;

/// The window, drawn while `app.share_open`.
pub fn window(ctx: &egui::Context, app: &mut VmscopeApp) {
    if !app.share_open {
        return;
    }
    let mut open = true;
    egui::Window::new("Link to this state")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| match StartOptions::of_session(&app.session) {
            Ok(options) => {
                ui.label(
                    "Opens this guest with the same command line and engine, paused at the \
                     same instruction (replayed deterministically):",
                );
                let mut text = match &app.page_url {
                    Some(base) => format!("{base}?{}", options.to_query()),
                    None => options.to_args(),
                };
                ui.add(
                    egui::TextEdit::multiline(&mut text)
                        .desired_rows(2)
                        .desired_width(f32::INFINITY),
                );
                if ui.button("Copy").clicked() {
                    ui.ctx().copy_text(text);
                }
            }
            Err(why) => {
                ui.label(why);
            }
        });
    app.share_open = open;
}
