//! `vmscope-gui`: the stepping debugger in a desktop window (`vmscope gui` starts it).
//! Teaches: the desktop shell around the app — arguments in, an eframe window (OpenGL) out.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::Cell;
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};

    use emulator::machine::loader::BootMethod;
    use gui::session::{EngineKind, GuestDisk, GuestImage, Session};
    use gui::start::StartOptions;
    use gui::VmscopeApp;

    const USAGE: &str = "\
usage: vmscope-gui [IMAGE] [options]

IMAGE is a Multiboot kernel, a firmware ROM (.rom/.bin), a flat binary, a snapshot file
(Ctrl+S in the window, `vmscope run --save`; it starts where it was saved), or the name of
a built-in guest (see `vmscope guests`); default: demo.

options:
  --cmdline TEXT      Multiboot command line
  --engine NAME       start on this engine: interp (default), bt or kvm
  --boot firmware|direct
                      how a Multiboot kernel starts: at the reset vector F000:FFF0 in real
                      mode through vmscope's boot firmware (default), or directly in 32-bit
                      protected mode at its entry
  --disk FILE[,ro][,if=ide|virtio-mmio|virtio-pci]
                      attach a raw disk image, as `vmscope run --disk` does (several
                      allowed); step back rolls what the guest wrote back with it
  --steps N           execute N instructions before the window opens
  --break ADDR        set a breakpoint (hex address or symbol) and run to it first
  --screenshot FILE   draw a few frames, save the window as PNG to FILE and exit
  --size WxH          window size in points (default 1500x950)
";

    struct Args {
        /// IMAGE: a built-in guest's name or a file.
        image: Option<String>,
        start: StartOptions,
        disks: Vec<String>,
        screenshot: Option<PathBuf>,
        size: [f32; 2],
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args {
            image: None,
            start: StartOptions::default(),
            disks: Vec::new(),
            screenshot: None,
            size: [1500.0, 950.0],
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => return Err(String::new()),
                "--cmdline" => a.start.cmdline = Some(value("--cmdline")?),
                "--engine" => {
                    let name = value("--engine")?;
                    a.start.engine = EngineKind::from_label(&name)
                        .ok_or_else(|| format!("unknown engine {name:?}"))?;
                }
                "--boot" => {
                    a.start.boot = match value("--boot")?.as_str() {
                        "firmware" => BootMethod::Firmware,
                        "direct" => BootMethod::Direct,
                        other => return Err(format!("unknown boot method {other:?}")),
                    }
                }
                "--steps" => {
                    a.start.steps = value("--steps")?
                        .parse()
                        .map_err(|_| "--steps needs a number".to_string())?
                }
                "--break" => a.start.break_at = Some(value("--break")?),
                "--disk" => a.disks.push(value("--disk")?),
                "--screenshot" => a.screenshot = Some(PathBuf::from(value("--screenshot")?)),
                "--size" => {
                    let v = value("--size")?;
                    let bad = || format!("--size {v}: WxH in points, e.g. 1500x950");
                    let (w, h) = v.split_once('x').ok_or_else(bad)?;
                    let (w, h): (u32, u32) = (
                        w.trim().parse().map_err(|_| bad())?,
                        h.trim().parse().map_err(|_| bad())?,
                    );
                    // A window the debugger's panels fit in, and one a screen can show.
                    if !(200..=16384).contains(&w) || !(150..=16384).contains(&h) {
                        return Err(format!(
                            "--size {v}: the window must be 200 to 16384 points wide and 150 \
                             to 16384 high"
                        ));
                    }
                    a.size = [w as f32, h as f32];
                }
                s if s.starts_with('-') => return Err(format!("unknown option {s}")),
                s if a.image.is_none() => a.image = Some(s.to_string()),
                s => return Err(format!("unexpected argument {s}")),
            }
        }
        Ok(a)
    }

    /// The image by the same rule as the CLI: a built-in name unless a file of that name exists.
    fn image(args: &Args) -> Result<GuestImage, String> {
        let name = args.image.as_deref().unwrap_or("demo");
        let image = match GuestImage::builtin(name) {
            Some(g) if args.image.is_none() || !std::path::Path::new(name).exists() => g,
            _ => {
                let bytes = gui::session::read_image_file(name)?;
                GuestImage::from_file(name, bytes)?
            }
        };
        if image.restore.is_some() && !args.disks.is_empty() {
            return Err(format!(
                "--disk: {name} is a snapshot file, whose machine is rebuilt as it was saved"
            ));
        }
        let disks = args
            .disks
            .iter()
            .map(|spec| GuestDisk::open(spec))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(args.start.apply_to(image).with_disks(disks))
    }

    fn session(args: &Args) -> Result<Session, String> {
        args.start.session(image(args)?)
    }

    /// Wraps the app to take a screenshot after a few frames (for CI's smoke test).
    struct Shooter {
        app: VmscopeApp,
        path: Option<PathBuf>,
        frame: u32,
        ok: Rc<Cell<bool>>,
        /// Filled by the screenshot callback (which may run on another thread).
        image: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
    }

    const SHOT_AT_FRAME: u32 = 5;
    const GIVE_UP_AT_FRAME: u32 = 300;

    impl eframe::App for Shooter {
        fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
            eframe::App::ui(&mut self.app, ui, frame);
            let Some(path) = &self.path else {
                return;
            };
            self.frame += 1;
            let ctx = ui.ctx().clone();
            let shot = self.image.lock().ok().and_then(|mut i| i.take());
            if let Some(img) = shot {
                let [w, h] = img.size;
                let rgba: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
                match image::RgbaImage::from_raw(w as u32, h as u32, rgba)
                    .ok_or_else(|| "bad screenshot size".to_string())
                    .and_then(|i| i.save(path).map_err(|e| e.to_string()))
                {
                    Ok(()) => {
                        eprintln!(
                            "vmscope-gui: screenshot {w}x{h} saved to {}",
                            path.display()
                        );
                        self.ok.set(true);
                    }
                    Err(e) => eprintln!("vmscope-gui: saving {}: {e}", path.display()),
                }
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else if self.frame == SHOT_AT_FRAME {
                let slot = self.image.clone();
                let repaint = ctx.clone();
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
                    egui::ScreenshotCallback::new(move |img| {
                        if let Ok(mut s) = slot.lock() {
                            *s = Some(img);
                        }
                        repaint.request_repaint();
                    }),
                ));
            } else if self.frame > GIVE_UP_AT_FRAME {
                eprintln!("vmscope-gui: no screenshot arrived after {GIVE_UP_AT_FRAME} frames");
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            ctx.request_repaint();
        }

        fn save(&mut self, storage: &mut dyn eframe::Storage) {
            if self.path.is_none() {
                eframe::App::save(&mut self.app, storage);
            }
        }
    }

    pub fn main() -> ExitCode {
        let args = match parse_args() {
            Ok(a) => a,
            Err(e) if e.is_empty() => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("vmscope-gui: {e}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        let session = match session(&args) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vmscope-gui: {e}");
                return ExitCode::from(2);
            }
        };
        let ok = Rc::new(Cell::new(false));
        let shooting = args.screenshot.is_some();
        let options = eframe::NativeOptions {
            viewport: egui::ViewportBuilder::default()
                .with_title(format!("vmscope — {}", session.image.name))
                .with_inner_size(args.size),
            persist_window: !shooting,
            ..Default::default()
        };
        let shared_ok = ok.clone();
        let result = eframe::run_native(
            "vmscope",
            options,
            Box::new(move |cc| {
                let app = if shooting {
                    VmscopeApp::new(session)
                } else {
                    VmscopeApp::with_storage(session, cc.storage)
                };
                Ok(Box::new(Shooter {
                    app,
                    path: args.screenshot,
                    frame: 0,
                    ok: shared_ok,
                    image: Arc::new(Mutex::new(None)),
                }))
            }),
        );
        match result {
            Err(e) => {
                eprintln!("vmscope-gui: cannot open a window: {e}");
                ExitCode::from(2)
            }
            Ok(()) if shooting && !ok.get() => ExitCode::from(1),
            Ok(()) => ExitCode::SUCCESS,
        }
    }
}
