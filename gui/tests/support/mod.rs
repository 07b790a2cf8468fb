//! Shared helpers for the GUI tests: a harness around the app, rendered by a CPU rasteriser.
//! Teaches: how to drive an immediate-mode GUI from a test — feed input, run frames, read state.

#![allow(dead_code)]

pub mod soft_render;

use egui_kittest::Harness;
use gui::session::{GuestImage, Session};
use gui::VmscopeApp;

/// The window size the snapshots use.
pub const SIZE: [f32; 2] = [1500.0, 950.0];

/// The app on a built-in guest, with a fixed number of instructions per frame so runs are
/// the same every time.
pub fn app(guest: &str) -> VmscopeApp {
    let mut app = VmscopeApp::new(Session::builtin(guest).expect("built-in guest"));
    app.fixed_budget = true;
    app.budget = 20_000;
    app
}

/// A flat real-mode image at 0x7C00 (the boot-sector convention).
pub fn flat(code: &[u8]) -> Session {
    Session::new(GuestImage::from_bytes("test.img", code.to_vec())).expect("flat image loads")
}

pub fn harness(app: VmscopeApp) -> Harness<'static, VmscopeApp> {
    Harness::builder()
        .with_size(SIZE)
        .with_pixels_per_point(1.0)
        .renderer(soft_render::SoftRenderer::default())
        .build_ui_state(|ui, app: &mut VmscopeApp| app.ui(ui), app)
}

/// Runs frames until the guest pauses (at most `max` frames).
pub fn run_until_paused(h: &mut Harness<'static, VmscopeApp>, max: usize) {
    for _ in 0..max {
        if !h.state().session.is_running() {
            break;
        }
        h.step();
    }
    assert!(
        !h.state().session.is_running(),
        "the guest did not stop within {max} frames"
    );
    h.step();
}
