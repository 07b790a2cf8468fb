//! The host half of vmscope's devices: what a device model reads and writes on the host.
//! Teaches: the device model is portable (it runs in a browser), its backend is not — a file
//! with a lock here, a tap device for networking (Linux) — so backends live outside the core.

pub mod disk;
#[cfg(target_os = "linux")]
pub mod tap;
