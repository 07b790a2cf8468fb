//! vmscope's stepping GUI: one guest, one instruction at a time, every register and page walk in view.
//! Teaches: what a debugger shows of a virtual machine — registers, memory, page walks, exits.
//!
//! The crate splits in two. [`session`] is the debugger without a screen: a `Machine`, the
//! engines (interpreter, KVM), breakpoints, watchpoints, the events timeline and step-back
//! by deterministic replay. [`app`] and [`panels`] draw it with egui, and the same
//! [`VmscopeApp`] runs in a desktop window (`vmscope-gui`), in a browser (wasm32) and in
//! headless tests (egui_kittest).
//!
//! ```
//! use gui::session::Session;
//! let mut s = Session::builtin("demo").unwrap();
//! let rip = s.machine.cpu.rip;
//! s.step_into();
//! assert_ne!(s.machine.cpu.rip, rip);
//! s.step_back(1).unwrap();
//! assert_eq!(s.machine.cpu.rip, rip);
//! ```

pub mod app;
pub mod decode;
pub mod disasm;
pub mod guestmem;
mod help;
pub mod panels;
pub mod remote;
pub mod save;
pub mod session;
mod share;
pub mod start;
pub mod symbols;

pub use app::{Settings, VmscopeApp};
