//! "Save snapshot" (Ctrl+S) and opening snapshot files: the window, and where saved bytes go.
//! Teaches: one feature, two shells — the app makes the file's bytes, the shell decides what
//! "give the user a file" means (a file on disk, a browser download).
//!
//! The app asks the session for the bytes (`Session::save_snapshot`) and hands them to its
//! [`FileSink`]: on the desktop [`DiskFiles`] writes them (whole or not at all, never over an
//! existing file), in the browser the web shell's sink offers a download, in tests a sink
//! keeps them. Opening needs no shell help: a picked or dropped file arrives as bytes either
//! way, and `GuestImage::from_file` tells a snapshot from an image by its magic number.

use egui::Key;

use crate::session::{GuestImage, Session};
use crate::VmscopeApp;

/// Where a saved file goes.
pub trait FileSink {
    /// Gives `bytes` to the user as a file called `name`; says where it went, for the notice.
    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<String, String>;
    /// The button's label in the "Save snapshot" window.
    fn verb(&self) -> &'static str {
        "Save"
    }
}

/// The desktop's sink: `name` is a path, relative to the current directory.
#[derive(Debug, Default)]
pub struct DiskFiles;

#[cfg(not(target_arch = "wasm32"))]
impl FileSink for DiskFiles {
    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<String, String> {
        use std::io::Write;
        let path = std::path::Path::new(name);
        if name.is_empty() {
            return Err("the snapshot needs a file name".into());
        }
        if path.exists() {
            return Err(format!("{name} exists already; choose another name"));
        }
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        // Written next to the target and renamed: a reader never sees half a file.
        let partial = path.with_extension("partial");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&partial, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(format!("writing {}: {e}", shown.display()));
        }
        Ok(format!(
            "{} ({} KiB)",
            shown.display(),
            bytes.len().div_ceil(1024)
        ))
    }
}

/// The browser build has no file system: the web shell installs its download sink.
#[cfg(target_arch = "wasm32")]
impl FileSink for DiskFiles {
    fn save(&mut self, _name: &str, _bytes: &[u8]) -> Result<String, String> {
        Err("this build has no place to put files (the web shell offers downloads)".into())
    }
}

/// The default sink for the build: files on the desktop.
pub fn default_sink() -> Box<dyn FileSink> {
    Box::new(DiskFiles)
}

impl VmscopeApp {
    /// Ctrl+S: pauses the guest and opens the "Save snapshot" window with a default name, or
    /// says why this machine cannot be saved.
    pub fn request_snapshot_save(&mut self) {
        self.session.pause();
        match self.session.snapshot_file_blocker() {
            Some(why) => self.error = Some(format!("cannot save a snapshot: {why}")),
            None => {
                self.forms.save_name = Some(self.session.snapshot_file_name());
                self.forms.save_focus = true;
            }
        }
    }

    /// Writes the session's machine as a snapshot file called `name` through the sink; the
    /// notice line says where it went, the error line why it did not.
    pub fn save_snapshot_as(&mut self, name: &str) -> Result<(), String> {
        let saved = self
            .session
            .save_snapshot()
            .and_then(|bytes| self.file_sink.save(name, &bytes));
        match saved {
            Ok(place) => {
                self.error = None;
                self.session.notice = Some(format!(
                    "saved the machine at instruction {} to {place} — open it here again, or \
                     `vmscope restore FILE`",
                    self.session.position()
                ));
                Ok(())
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The "Save snapshot" window, drawn while `forms.save_name` is set.
    pub(crate) fn save_window(&mut self, ctx: &egui::Context) {
        let Some(mut name) = self.forms.save_name.take() else {
            return;
        };
        let mut open = true;
        let mut confirm = false;
        let verb = self.file_sink.verb();
        egui::Window::new("Save snapshot")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                ui.label(format!(
                    "The whole machine at instruction {} — CPU, RAM, every device, the clock — \
                     as a snapshot file. Open it here again, or continue it with \
                     `vmscope restore FILE --engine interp|bt|kvm`.",
                    self.session.position()
                ));
                let label = ui.label(if cfg!(target_arch = "wasm32") {
                    "File name of the download:"
                } else {
                    "File (relative to the current directory):"
                });
                let r = ui
                    .add(egui::TextEdit::singleline(&mut name).id_salt("snapshot file"))
                    .labelled_by(label.id);
                if std::mem::take(&mut self.forms.save_focus) {
                    r.request_focus();
                }
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                confirm = ui.button(verb).clicked() || enter;
                if let Some(e) = &self.error {
                    ui.colored_label(crate::panels::ERROR, e);
                }
            });
        let saved = confirm && self.save_snapshot_as(name.trim()).is_ok();
        if open && !saved {
            self.forms.save_name = Some(name);
        }
    }

    /// Opens a file's bytes (a dropped file, the browser's file picker, a path on the
    /// desktop): a snapshot file is restored where it was saved, anything else is booted as
    /// an image the way the current guest was (firmware or direct, the same disks).
    pub fn open_bytes(&mut self, name: &str, bytes: Vec<u8>, cmdline: Option<String>) {
        let image = if crate::session::is_snapshot_file(&bytes) {
            GuestImage::from_snapshot(name, &bytes)
        } else {
            let mut image = GuestImage::from_bytes(name, bytes)
                .with_boot(self.session.image.boot)
                .with_disks(self.session.image.disks.clone());
            if let Some(c) = cmdline {
                image.cmdline = c;
            }
            Ok(image)
        };
        self.replace_session(image.and_then(Session::new), false);
    }

    /// Opens an image or snapshot file by path (desktop only: a browser has no file system).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_path(&mut self, path: &str) {
        match crate::session::read_image_file(path) {
            Ok(bytes) => self.open_bytes(path, bytes, None),
            Err(e) => self.error = Some(e),
        }
    }
}
