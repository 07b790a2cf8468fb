//! The egui application: menus, toolbar, keyboard shortcuts and where each panel sits.
//! Teaches: an immediate-mode GUI redraws everything each frame from the model — here a `Session`.
//!
//! `VmscopeApp::ui` draws one frame into any `egui::Ui`: eframe's window on the desktop, a
//! canvas in the browser, or egui_kittest's headless harness in tests. While the guest runs,
//! each frame first executes one slice of guest instructions, sized so frames stay smooth.

use std::collections::VecDeque;

use egui::{Key, Modifiers, RichText};

use emulator::machine::loader::BootMethod;

use crate::panels;
use crate::session::{kvm_status, EngineKind, Session};

/// Instructions per frame to start with; adapted to the frame time while running.
const START_BUDGET: u64 = 200_000;
const MAX_BUDGET: u64 = 50_000_000;
const MIN_BUDGET: u64 = 1_000;

/// The tabs of the bottom panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BottomTab {
    Serial,
    Events,
    Stats,
    Breakpoints,
}

/// Linear (through the page tables) or guest-physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Space {
    Linear,
    Physical,
}

/// What the page-walk panel pretends the access is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WalkAccess {
    Read,
    Write,
    Fetch,
}

/// Everything about the layout and the views that is remembered between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub bottom_tab: BottomTab,
    pub show_registers: bool,
    pub show_inspector: bool,
    pub show_bottom: bool,
    pub show_memory: bool,
    pub memory_space: Space,
    /// Register the memory view follows ("" = none, else "rip", "rsp", "rsi", …).
    pub memory_follow: String,
    pub memory_addr: u64,
    pub walk_access: WalkAccess,
    pub walk_user: bool,
    pub code_lines_before: usize,
    pub code_lines_after: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bottom_tab: BottomTab::Serial,
            show_registers: true,
            show_inspector: true,
            show_bottom: true,
            show_memory: true,
            memory_space: Space::Linear,
            memory_follow: "rsp".into(),
            memory_addr: 0,
            walk_access: WalkAccess::Read,
            walk_user: false,
            code_lines_before: 8,
            code_lines_after: 24,
        }
    }
}

/// What the last frame showed, recorded while drawing (tests read it; so could a tutorial).
#[derive(Debug, Clone, Default)]
pub struct FrameFacts {
    /// Registers drawn highlighted because the last step changed them.
    pub highlighted_registers: Vec<String>,
    /// (ip, text) of the code lines drawn; the current one is `code_current`.
    pub code_lines: Vec<(u64, String)>,
    pub code_current: Option<u64>,
    /// The lines of the page-walk panel.
    pub walk_lines: Vec<String>,
    /// Bytes the memory view drew highlighted as recently written.
    pub memory_highlighted: usize,
    /// Of those, the bytes the last instruction wrote.
    pub memory_written_last: usize,
}

/// Samples of guest speed for the stats plot.
#[derive(Debug, Clone, Default)]
pub struct IpsMeter {
    /// [host seconds, guest instructions per second]
    pub instructions: VecDeque<[f64; 2]>,
    /// [host seconds, exits per second]
    pub exits: VecDeque<[f64; 2]>,
    last: Option<(f64, u64, u64)>,
}

impl IpsMeter {
    fn sample(&mut self, time: f64, s: &Session) {
        let instr = s.machine.stats.instructions;
        let exits = s.machine.stats.total_exits();
        let Some((t0, i0, e0)) = self.last else {
            self.last = Some((time, instr, exits));
            return;
        };
        if time - t0 < 0.25 {
            return;
        }
        let dt = time - t0;
        for (q, v) in [
            (&mut self.instructions, instr.saturating_sub(i0)),
            (&mut self.exits, exits.saturating_sub(e0)),
        ] {
            if q.len() == 240 {
                q.pop_front();
            }
            q.push_back([time, v as f64 / dt]);
        }
        self.last = Some((time, instr, exits));
    }
}

/// Things a user can do, from a menu, the toolbar or a shortcut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RunOrPause,
    StepInto,
    StepOver,
    StepOut,
    RunToCursor,
    StepBack,
    ToggleBreakpoint,
    Reload,
    /// Write the machine to a snapshot file (Ctrl+S; opens the "Save snapshot" window).
    SaveSnapshot,
    /// Pulse the board's NMI line (LINT1).
    SendNmi,
    Help,
    LoadBuiltin(&'static str),
    /// Reload the guest booting the given way (keeps breakpoints).
    SetBoot(BootMethod),
    SwitchEngine(EngineKind),
}

/// Text fields of the forms (kept between frames while the user types).
#[derive(Debug, Clone, Default)]
pub struct Forms {
    pub bp_addr: String,
    pub bp_cond: String,
    pub watch_addr: String,
    pub watch_len: String,
    pub watch_access: Option<crate::session::MemAccess>,
    pub io_ports: String,
    pub mem_addr: String,
    pub walk_addr: String,
    pub open_path: String,
    /// The file name in the "Save snapshot" window (`None` = window closed).
    pub save_name: Option<String>,
    /// Put the keyboard focus in that name field on the next frame.
    pub save_focus: bool,
    /// The command line being edited in the "Command line" window (`None` = window closed).
    pub cmdline: Option<String>,
    pub message: Option<String>,
}

/// The vmscope debugger window.
pub struct VmscopeApp {
    pub session: Session,
    pub settings: Settings,
    /// The selected line of the code view (a linear address): run-to-cursor and F9 use it.
    pub cursor: Option<u64>,
    /// The address the page-walk panel explains, and where it was picked ("memory view", …);
    /// `None` = the current instruction.
    pub walk_target: Option<(u64, &'static str)>,
    pub help_open: bool,
    pub open_dialog: bool,
    /// The user asked to open a file from their computer; the web shell shows the browser's
    /// file picker and clears this (a page cannot read paths).
    pub pick_file_requested: bool,
    /// The "Link to this state" window is open.
    pub share_open: bool,
    /// Where the app is served from, in a browser (`http://host/path/`): links are URLs then.
    pub page_url: Option<String>,
    pub serial_input: String,
    pub error: Option<String>,
    /// Instructions per frame while running.
    pub budget: u64,
    /// Keep `budget` as set (tests) instead of adapting it to the frame time.
    pub fixed_budget: bool,
    pub ips: IpsMeter,
    pub forms: Forms,
    pub kvm: Result<String, String>,
    /// Every engine of `EngineKind::ALL` with whether it runs here (probed once).
    pub engines_available: Vec<(EngineKind, Result<String, String>)>,
    pub facts: FrameFacts,
    /// The RIP the code view last scrolled to (it follows RIP when it changes).
    pub code_scrolled_to: Option<u64>,
    /// Where saved snapshot files go: files on the desktop; the web shell puts its download here.
    pub file_sink: Box<dyn crate::save::FileSink>,
}

impl VmscopeApp {
    pub fn new(session: Session) -> Self {
        VmscopeApp {
            session,
            settings: Settings::default(),
            cursor: None,
            walk_target: None,
            help_open: false,
            open_dialog: false,
            pick_file_requested: false,
            share_open: false,
            page_url: None,
            serial_input: String::new(),
            error: None,
            budget: START_BUDGET,
            fixed_budget: false,
            ips: IpsMeter::default(),
            forms: Forms::default(),
            kvm: kvm_status(),
            engines_available: EngineKind::ALL
                .iter()
                .map(|k| (*k, k.availability()))
                .collect(),
            facts: FrameFacts::default(),
            code_scrolled_to: None,
            file_sink: crate::save::default_sink(),
        }
    }

    /// The app on the demo guest.
    pub fn demo() -> Self {
        VmscopeApp::new(Session::builtin("demo").expect("the demo guest is built in"))
    }

    /// Does what a menu item, toolbar button or shortcut asks.
    pub fn act(&mut self, action: Action) {
        self.error = None;
        let s = &mut self.session;
        match action {
            Action::RunOrPause if s.is_running() => s.pause(),
            Action::RunOrPause => s.run(),
            Action::StepInto => s.step_into(),
            Action::StepOver => s.step_over(),
            Action::StepOut => s.step_out(),
            Action::RunToCursor => match self.cursor {
                Some(c) => s.run_to(c),
                None => s.notice = Some("click a line in the code view first".into()),
            },
            Action::StepBack => {
                let _ = s.step_back(1);
            }
            Action::ToggleBreakpoint => {
                let at = self.cursor.unwrap_or_else(|| s.machine.cpu.linear_rip());
                s.toggle_breakpoint(at);
            }
            Action::Reload => {
                let image = s.image.clone();
                self.replace_session(Session::new(image), true);
            }
            Action::SaveSnapshot => self.request_snapshot_save(),
            Action::SendNmi => s.send_nmi(),
            Action::Help => self.help_open = !self.help_open,
            Action::LoadBuiltin(name) => {
                // A new guest starts the way the current one did (firmware or direct).
                let (boot, disks) = (s.image.boot, s.image.disks.clone());
                let image = crate::session::GuestImage::builtin(name)
                    .map(|i| i.with_boot(boot).with_disks(disks))
                    .ok_or_else(|| format!("no built-in guest {name:?}"));
                self.replace_session(image.and_then(Session::new), false)
            }
            Action::SetBoot(boot) => {
                let image = s.image.clone().with_boot(boot);
                self.replace_session(Session::new(image), true);
            }
            Action::SwitchEngine(kind) => {
                if let Err(e) = s.switch_engine(kind) {
                    self.error = Some(e);
                }
            }
        }
    }

    /// Opens another guest (or the same one afresh, keeping breakpoints when `keep_breaks`).
    pub fn replace_session(&mut self, new: Result<Session, String>, keep_breaks: bool) {
        match new {
            Ok(mut s) => {
                if keep_breaks {
                    s.breakpoints = std::mem::take(&mut self.session.breakpoints);
                    s.watchpoints = std::mem::take(&mut self.session.watchpoints);
                    s.break_on = self.session.break_on.clone();
                    for b in &mut s.breakpoints {
                        b.hits = 0;
                    }
                }
                self.session = s;
                self.cursor = None;
                self.walk_target = None;
                self.ips = IpsMeter::default();
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let pressed = |m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_key(m, k));
        let mut actions = Vec::new();
        if pressed(Modifiers::SHIFT, Key::F11) {
            actions.push(Action::StepOut);
        } else if pressed(Modifiers::NONE, Key::F11) {
            actions.push(Action::StepInto);
        }
        if pressed(Modifiers::COMMAND, Key::S) {
            actions.push(Action::SaveSnapshot);
        }
        if pressed(Modifiers::COMMAND, Key::F10) {
            actions.push(Action::RunToCursor);
        } else if pressed(Modifiers::NONE, Key::F10) {
            actions.push(Action::StepOver);
        }
        for (key, action) in [
            (Key::F5, Action::RunOrPause),
            (Key::F7, Action::StepBack),
            (Key::F9, Action::ToggleBreakpoint),
            (Key::F1, Action::Help),
        ] {
            if pressed(Modifiers::NONE, key) {
                actions.push(action);
            }
        }
        if self.help_open && pressed(Modifiers::NONE, Key::Escape) {
            self.help_open = false;
        }
        for a in actions {
            self.act(a);
        }
    }

    // ANCHOR: frame_slice
    /// Runs one frame's slice of guest instructions while the guest runs.
    fn advance(&mut self, ui: &egui::Ui) {
        let (dt, time) = ui.input(|i| (i.unstable_dt, i.time));
        if self.session.is_running() {
            if !self.fixed_budget {
                if dt > 0.050 {
                    self.budget = (self.budget * 7 / 10).max(MIN_BUDGET);
                } else if dt < 0.025 {
                    self.budget = (self.budget * 13 / 10).min(MAX_BUDGET);
                }
            }
            self.session.tick(self.budget);
            ui.ctx().request_repaint();
        }
        self.ips.sample(time, &self.session);
    }
    // ANCHOR_END: frame_slice

    /// Draws one frame.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.facts = FrameFacts::default();
        self.shortcuts(ui.ctx());
        self.advance(ui);

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if self.settings.show_registers {
            egui::Panel::left("registers")
                .resizable(true)
                .default_size(330.0)
                .show(ui, |ui| panels::registers::show(ui, self));
        }
        if self.settings.show_inspector {
            egui::Panel::right("inspector")
                .resizable(true)
                .default_size(420.0)
                .show(ui, |ui| panels::inspector(ui, self));
        }
        if self.settings.show_bottom {
            let h = ui.available_height();
            egui::Panel::bottom("tabs")
                .resizable(true)
                .default_size((h * 0.3).min(260.0))
                .show(ui, |ui| panels::bottom_tabs(ui, self));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if self.settings.show_memory {
                let h = ui.available_height();
                egui::Panel::bottom("memory")
                    .resizable(true)
                    .default_size((h * 0.4).min(220.0))
                    .show(ui, |ui| panels::memory::show(ui, self));
            }
            panels::code::show(ui, self);
        });
        crate::help::window(ui.ctx(), self);
        self.open_window(ui.ctx());
        self.save_window(ui.ctx());
        crate::share::window(ui.ctx(), self);
        self.dropped_files(ui.ctx());
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("Guest", |ui| {
                for g in guests::all() {
                    let current = self.session.image.name == g.file_name;
                    let r = ui
                        .selectable_label(current, g.name)
                        .on_hover_text(g.description);
                    if r.clicked() {
                        self.act(Action::LoadBuiltin(g.name));
                        ui.close();
                    }
                }
                ui.separator();
                if ui
                    .button("Open image file…")
                    .on_hover_text(
                        "a guest image or a snapshot file (.vmsnap); or drop a file on the window",
                    )
                    .clicked()
                {
                    self.open_dialog = cfg!(not(target_arch = "wasm32"));
                    self.pick_file_requested = cfg!(target_arch = "wasm32");
                    ui.close();
                }
                let blocker = self.session.snapshot_file_blocker();
                if ui
                    .add_enabled(
                        blocker.is_none(),
                        egui::Button::new("Save snapshot…").shortcut_text("Ctrl+S"),
                    )
                    .on_hover_text("the whole machine at this instruction, as a file")
                    .on_disabled_hover_text(blocker.unwrap_or_default())
                    .clicked()
                {
                    self.act(Action::SaveSnapshot);
                    ui.close();
                }
                if ui
                    .button("Send NMI")
                    .on_hover_text(
                        "pulse the NMI line into the local APIC's LINT1, as a PC's NMI button does; \
                         the guest takes an NMI if it programmed LINT1 for one",
                    )
                    .clicked()
                {
                    self.act(Action::SendNmi);
                    ui.close();
                }
                if ui.button("Command line…").clicked() {
                    self.forms.cmdline = Some(self.session.image.cmdline.clone());
                    ui.close();
                }
                if ui
                    .button("Link to this state…")
                    .on_hover_text("a URL or command that reopens the guest where it is now")
                    .clicked()
                {
                    self.share_open = true;
                    ui.close();
                }
                if ui.button("Reload (keep breakpoints)").clicked() {
                    self.act(Action::Reload);
                    ui.close();
                }
                ui.separator();
                let mut firmware = self.session.image.boot == BootMethod::Firmware;
                let r = ui
                    .add_enabled(
                        self.session.image.is_multiboot(),
                        egui::Checkbox::new(&mut firmware, "Boot through the firmware"),
                    )
                    .on_hover_text(
                        "On: a Multiboot kernel starts at the reset vector F000:FFF0 in real \
                         mode and vmscope's boot ROM switches to protected mode and jumps to it. \
                         Off: the loader starts it directly in 32-bit protected mode. \
                         Changing it reloads the guest.",
                    )
                    .on_disabled_hover_text("ROMs and flat binaries always start in real mode");
                if r.changed() {
                    let boot = if firmware {
                        BootMethod::Firmware
                    } else {
                        BootMethod::Direct
                    };
                    self.act(Action::SetBoot(boot));
                    ui.close();
                }
            });
            ui.menu_button("Run", |ui| {
                for (label, key, action) in toolbar_actions(self.session.is_running()) {
                    if ui
                        .add(egui::Button::new(label).shortcut_text(key))
                        .clicked()
                    {
                        self.act(action);
                        ui.close();
                    }
                }
                if ui
                    .add(egui::Button::new("Toggle breakpoint").shortcut_text("F9"))
                    .clicked()
                {
                    self.act(Action::ToggleBreakpoint);
                    ui.close();
                }
            });
            ui.menu_button("Engine", |ui| self.engine_choice(ui));
            ui.menu_button("View", |ui| {
                let s = &mut self.settings;
                ui.checkbox(&mut s.show_registers, "Registers");
                ui.checkbox(&mut s.show_inspector, "Stack and page walk");
                ui.checkbox(&mut s.show_memory, "Memory");
                ui.checkbox(&mut s.show_bottom, "Serial, events, stats, breakpoints");
                if ui.button("Reset layout").clicked() {
                    *s = Settings::default();
                    ui.ctx().memory_mut(|m| *m = Default::default());
                    ui.close();
                }
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .add(egui::Button::new("Shortcuts and concepts").shortcut_text("F1"))
                    .clicked()
                {
                    self.help_open = true;
                    ui.close();
                }
            });
        });
    }

    fn engine_choice(&mut self, ui: &mut egui::Ui) {
        let running = self.session.is_running();
        let active = self.session.engine_kind();
        for (kind, availability) in self.engines_available.clone() {
            let (label, tip) = match &availability {
                Ok(label) => (label.clone(), kind.about().to_string()),
                Err(why) => (format!("{} (unavailable)", kind.label()), why.clone()),
            };
            let r = ui
                .add_enabled(
                    !running && availability.is_ok(),
                    egui::Button::selectable(active == kind, label),
                )
                .on_hover_text(tip.clone())
                .on_disabled_hover_text(if running {
                    "pause the guest to switch engines".to_string()
                } else {
                    tip
                });
            if r.clicked() {
                self.act(Action::SwitchEngine(kind));
            }
        }
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            for (label, key, action) in toolbar_actions(self.session.is_running()) {
                let enabled = match action {
                    Action::RunOrPause => true,
                    Action::StepBack => self.session.step_back_blocker().is_none(),
                    _ => !self.session.is_running() && self.session.finished.is_none(),
                };
                let mut b = ui
                    .add_enabled(enabled, egui::Button::new(label))
                    .on_hover_text(key);
                if action == Action::StepBack {
                    if let Some(why) = self.session.step_back_blocker() {
                        b = b.on_disabled_hover_text(why);
                    }
                }
                if b.clicked() {
                    self.act(action);
                }
            }
            ui.separator();
            ui.label("Engine:");
            self.engine_choice(ui);
            ui.separator();
            if ui.button("?").on_hover_text("Help (F1)").clicked() {
                self.help_open = true;
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        let s = &self.session;
        let cpu = &s.machine.cpu;
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(s.engine_description()).strong());
            ui.separator();
            ui.label(format!("{} · CPL {}", cpu.mode(), cpu.cpl()));
            ui.separator();
            ui.label(format!("instruction {}", s.position()));
            if let (true, Some([_, ips])) = (s.is_running(), self.ips.instructions.back()) {
                ui.label(format!("· {:.1} M instr/s", ips / 1e6));
            }
            if s.machine.stats.uncounted_runs > 0 {
                ui.label(format!("(+ {} KVM runs)", s.machine.stats.uncounted_runs));
            }
            ui.separator();
            if s.is_running() {
                ui.label(RichText::new("running").color(panels::RUNNING));
            } else if let Some(stop) = &s.last_stop {
                ui.label(format!("paused: {stop}"));
            } else {
                ui.label(format!(
                    "paused at the entry · {}",
                    s.loaded.lines().next().unwrap_or("")
                ));
            }
            if let Some(n) = &s.notice {
                ui.separator();
                ui.label(RichText::new(n).color(panels::NOTICE));
            }
            if let Some(e) = &self.error {
                ui.separator();
                ui.label(RichText::new(e).color(panels::ERROR));
            }
        });
    }

    fn open_window(&mut self, ctx: &egui::Context) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut open = self.open_dialog;
            let mut chosen = None;
            egui::Window::new("Open image file")
                .open(&mut open)
                .collapsible(false)
                .show(ctx, |ui| {
                    ui.label(
                        "A Multiboot kernel, a firmware ROM (.rom/.bin), a flat binary or a \
                         snapshot file (.vmsnap):",
                    );
                    let r = ui.text_edit_singleline(&mut self.forms.open_path);
                    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                    if ui.button("Open").clicked() || enter {
                        chosen = Some(self.forms.open_path.clone());
                    }
                });
            self.open_dialog = open && chosen.is_none();
            if let Some(path) = chosen {
                self.open_path(path.trim());
            }
        }
        self.cmdline_window(ctx);
    }

    /// The "Command line" window: edit the Multiboot command line and reboot with it.
    fn cmdline_window(&mut self, ctx: &egui::Context) {
        let Some(mut text) = self.forms.cmdline.take() else {
            return;
        };
        let mut open = true;
        let mut reboot = false;
        egui::Window::new("Command line")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                ui.label("The Multiboot command line (e.g. workloads=compute iterations=2):");
                let r = ui.text_edit_singleline(&mut text);
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                reboot = ui.button("Reboot with it").clicked() || enter;
            });
        if reboot {
            let mut image = self.session.image.clone();
            image.cmdline = text.trim().to_string();
            self.replace_session(Session::new(image), true);
        } else if open {
            self.forms.cmdline = Some(text);
        }
    }

    /// Files dropped on the window: the first one becomes the guest.
    fn dropped_files(&mut self, ctx: &egui::Context) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let dropped = ctx.input_mut(|i| std::mem::take(&mut i.raw.dropped_files));
            if let Some(file) = dropped.first() {
                match file.bytes() {
                    Ok(bytes) => {
                        let name = file.path().display().to_string();
                        self.open_bytes(&name, bytes, None);
                    }
                    Err(e) => self.error = Some(format!("reading the dropped file: {e}")),
                }
            }
        }
        // In a browser the page's own drop handler reads the file (asynchronously) and calls
        // `open_bytes`; see web-demo/index.html.
        #[cfg(target_arch = "wasm32")]
        let _ = ctx;
    }
}

/// The run-control buttons in toolbar order: (label, shortcut, action).
fn toolbar_actions(running: bool) -> [(&'static str, &'static str, Action); 6] {
    [
        (
            if running { "Pause" } else { "Run" },
            "F5",
            Action::RunOrPause,
        ),
        ("Step into", "F11", Action::StepInto),
        ("Step over", "F10", Action::StepOver),
        ("Step out", "Shift+F11", Action::StepOut),
        ("Run to cursor", "Ctrl+F10", Action::RunToCursor),
        ("Step back", "F7", Action::StepBack),
    ]
}

impl eframe::App for VmscopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        VmscopeApp::ui(self, ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

impl VmscopeApp {
    /// The app as eframe creates it: settings from the last run, if any.
    pub fn with_storage(session: Session, storage: Option<&dyn eframe::Storage>) -> Self {
        let mut app = VmscopeApp::new(session);
        if let Some(s) = storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)) {
            app.settings = s;
        }
        app
    }
}
