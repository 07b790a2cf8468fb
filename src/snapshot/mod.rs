//! Snapshot files: a running guest saved to a file and continued later, on any engine.
//! Teaches: a machine is data — CPU, RAM, every device — and so it can be written down.

pub mod file;
