//! The web demo's shell: starts vmscope's egui app on a page's canvas and lets JavaScript drive it.
//! Teaches: the same machine, engines and debugger run in a browser — only this glue is web-specific.
//!
//! `index.html` loads the module wasm-bindgen made from this crate, then calls `start`. The
//! URL's query names the starting state (see `gui::start::StartOptions::from_query`). While the
//! guest runs, every animation frame executes one slice of guest instructions (the app sizes
//! the slice so frames stay near 60 per second), so the page stays responsive without threads.
//! `status`, `command`, `bench` and `load_image` are the page's remote control
//! (`gui::remote`): the browser test and the page's own file picker use them.

#[cfg(target_arch = "wasm32")]
mod web;
