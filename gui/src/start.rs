//! How a debugging session starts — which guest, command line, engine, boot method, how far to go.
//! Teaches: one description of "a prepared state" serves the desktop's arguments and a web page's URL alike.
//!
//! `vmscope-gui kernel --cmdline "workloads=compute" --engine bt --break main` and the web demo's
//! `?guest=kernel&cmdline=workloads%3Dcompute&engine=bt&break=main` both become a
//! [`StartOptions`], and [`StartOptions::session`] builds the same paused (or running) session
//! from either: a teacher can link to the state a lesson starts in.

use emulator::machine::loader::BootMethod;

use crate::session::{EngineKind, GuestImage, Session};

/// Everything that says where a session starts.
#[derive(Debug, Clone, PartialEq)]
pub struct StartOptions {
    /// A built-in guest's name (or, on the desktop, a file); `None` = the demo.
    pub guest: Option<String>,
    /// The Multiboot command line; `None` = the guest's default.
    pub cmdline: Option<String>,
    pub engine: EngineKind,
    pub boot: BootMethod,
    /// Instructions to execute before the user takes over.
    pub steps: u64,
    /// A breakpoint (symbol or hex address) to set and run to first.
    pub break_at: Option<String>,
    /// Leave the guest running (the web page's default when the URL names no stopping place:
    /// its first view is the guest at work).
    pub run: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            guest: None,
            cmdline: None,
            engine: EngineKind::Interp,
            boot: BootMethod::Firmware,
            steps: 0,
            break_at: None,
            run: false,
        }
    }
}

/// Up to this many `steps` are single steps (each recorded in the events log); more are one
/// fast replay.
const STEP_ONE_BY_ONE: u64 = 10_000;

/// The URL parameters [`StartOptions::from_query`] understands, for error messages and help.
pub const QUERY_KEYS: &str = "guest, cmdline, engine, boot, steps, break, run";

impl StartOptions {
    /// Reads a URL's query string (`guest=kernel&cmdline=workloads%3Dcompute&engine=bt`, with or
    /// without the leading `?`). Unknown keys and bad values are errors that name the key.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut o = StartOptions::default();
        let mut run = None;
        for pair in query.trim_start_matches('?').split('&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key)?;
            let value = percent_decode(value)?;
            match key.as_str() {
                "guest" => o.guest = Some(value),
                "cmdline" => o.cmdline = Some(value),
                "engine" => o.engine = parse_engine(&value)?,
                "boot" => o.boot = parse_boot(&value)?,
                "steps" => {
                    o.steps = value
                        .parse()
                        .map_err(|_| format!("steps={value:?}: not a number"))?
                }
                "break" => o.break_at = Some(value),
                "run" => {
                    run = Some(match value.as_str() {
                        "1" | "true" | "yes" | "" => true,
                        "0" | "false" | "no" => false,
                        _ => return Err(format!("run={value:?}: use run=1 or run=0")),
                    })
                }
                other => {
                    return Err(format!(
                        "unknown URL parameter {other:?} (known: {QUERY_KEYS})"
                    ))
                }
            }
        }
        // A page runs its guest on load, unless the URL says where to stop (a step count or a
        // breakpoint: the state a link points at) or run=0.
        o.run = run.unwrap_or(o.steps == 0 && o.break_at.is_none());
        Ok(o)
    }

    /// The query string that names this state (the inverse of [`StartOptions::from_query`]).
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = &self.guest {
            parts.push(format!("guest={}", percent_encode(g)));
        }
        if let Some(c) = &self.cmdline {
            parts.push(format!("cmdline={}", percent_encode(c)));
        }
        if self.engine != EngineKind::Interp {
            parts.push(format!("engine={}", self.engine.label()));
        }
        if self.boot == BootMethod::Direct {
            parts.push("boot=direct".into());
        }
        if self.steps > 0 {
            parts.push(format!("steps={}", self.steps));
        }
        if let Some(b) = &self.break_at {
            parts.push(format!("break={}", percent_encode(b)));
        }
        if !self.run {
            parts.push("run=0".into());
        }
        parts.join("&")
    }

    /// Options that recreate `s` where it is now: its built-in guest, command line, boot method,
    /// engine and position (paused there). A file the user opened has no name to link to.
    pub fn of_session(s: &Session) -> Result<Self, String> {
        if s.image.restore.is_some() {
            return Err(format!(
                "this guest was restored from the snapshot file {}: a link cannot carry a \
                 machine's state — share a snapshot file instead (Ctrl+S saves one)",
                s.image.name
            ));
        }
        let g = guests::by_name(&s.image.name)
            .filter(|g| g.image == &s.image.bytes[..])
            .ok_or_else(|| {
                format!(
                    "{} is not a built-in guest: a link can only name the guests vmscope carries",
                    s.image.name
                )
            })?;
        let default_cmdline = GuestImage::builtin(g.name).map(|i| i.cmdline);
        Ok(StartOptions {
            guest: Some(g.name.to_string()),
            cmdline: Some(s.image.cmdline.clone()).filter(|c| Some(c) != default_cmdline.as_ref()),
            engine: s.engine_kind(),
            boot: s.image.boot,
            steps: s.position(),
            break_at: None,
            run: false,
        })
    }

    /// The desktop command that starts this state (`vmscope-gui hello64 --steps 40 …`).
    pub fn to_args(&self) -> String {
        let mut args = vec!["vmscope-gui".to_string()];
        args.push(self.guest.clone().unwrap_or_else(|| "demo".into()));
        if let Some(c) = &self.cmdline {
            args.push(format!("--cmdline '{}'", c.replace('\'', "'\\''")));
        }
        if self.engine != EngineKind::Interp {
            args.push(format!("--engine {}", self.engine.label()));
        }
        if self.boot == BootMethod::Direct {
            args.push("--boot direct".into());
        }
        if self.steps > 0 {
            args.push(format!("--steps {}", self.steps));
        }
        if let Some(b) = &self.break_at {
            args.push(format!("--break {b}"));
        }
        args.join(" ")
    }

    /// The guest image these options name: a built-in guest (the demo by default).
    pub fn builtin_image(&self) -> Result<GuestImage, String> {
        let name = self.guest.as_deref().unwrap_or("demo");
        let image = GuestImage::builtin(name).ok_or_else(|| {
            let names: Vec<&str> = guests::all().iter().map(|g| g.name).collect();
            format!(
                "no built-in guest {name:?} (there are: {})",
                names.join(", ")
            )
        })?;
        Ok(self.apply_to(image))
    }

    /// `image` with these options' command line and boot method.
    pub fn apply_to(&self, mut image: GuestImage) -> GuestImage {
        if let Some(c) = &self.cmdline {
            image.cmdline = c.clone();
        }
        image.with_boot(self.boot)
    }

    /// Boots `image` and brings it where the options say: steps, a breakpoint, the engine,
    /// running or paused.
    pub fn session(&self, image: GuestImage) -> Result<Session, String> {
        let mut s = Session::new(image)?;
        // KVM goes there itself: its path may differ from the interpreter's, and its past
        // cannot be replayed (so every step is a single step, however many).
        let on_kvm = self.engine == EngineKind::Kvm;
        if on_kvm {
            s.switch_engine(self.engine)?;
        }
        if self.steps <= STEP_ONE_BY_ONE || on_kvm {
            for _ in 0..self.steps {
                s.step_into();
            }
        } else {
            // Far into a run: replay at the interpreter's full speed (deterministic, so the
            // same state as stepping there one instruction at a time).
            s.rewind_to(self.steps)?;
        }
        if let Some(b) = &self.break_at {
            let hex = b.trim_start_matches("0x");
            let addr = s
                .symbols
                .find(b)
                .or_else(|| u64::from_str_radix(hex, 16).ok())
                .ok_or(format!("break: no symbol or hex address {b:?}"))?;
            s.toggle_breakpoint(addr);
            s.run();
            s.run_until_stopped(1_000_000, 1_000);
        }
        if self.engine != s.engine_kind() {
            s.switch_engine(self.engine)?;
        }
        if self.run && s.finished.is_none() {
            s.run();
        }
        Ok(s)
    }
}

fn parse_engine(name: &str) -> Result<EngineKind, String> {
    EngineKind::from_label(name).ok_or_else(|| {
        let names: Vec<&str> = EngineKind::ALL.iter().map(|k| k.label()).collect();
        format!("unknown engine {name:?} (engines: {})", names.join(", "))
    })
}

fn parse_boot(name: &str) -> Result<BootMethod, String> {
    match name {
        "firmware" => Ok(BootMethod::Firmware),
        "direct" => Ok(BootMethod::Direct),
        other => Err(format!(
            "unknown boot method {other:?} (use firmware or direct)"
        )),
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
pub fn percent_decode(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut it = text.bytes();
    while let Some(b) = it.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex: Vec<u8> = it.by_ref().take(2).collect();
                let byte = std::str::from_utf8(&hex)
                    .ok()
                    .filter(|h| h.len() == 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad %-escape in {text:?}"))?;
                bytes.push(byte);
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// Encodes text for a URL query value (letters, digits and `-_.~:,` stay as they are).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_guest_cmdline_engine_and_how_far_to_go() {
        let o = StartOptions::from_query(
            "?guest=kernel&cmdline=workloads%3Dcompute+iterations%3D2&engine=bt&steps=7&break=main&run=0",
        )
        .unwrap();
        assert_eq!(o.guest.as_deref(), Some("kernel"));
        assert_eq!(o.cmdline.as_deref(), Some("workloads=compute iterations=2"));
        assert_eq!(o.engine, EngineKind::Bt);
        assert_eq!(o.steps, 7);
        assert_eq!(o.break_at.as_deref(), Some("main"));
        assert!(!o.run);
        // The page runs the guest unless told not to or told where to stop; the desktop does not.
        assert!(StartOptions::from_query("").unwrap().run);
        assert!(!StartOptions::from_query("break=long_mode").unwrap().run);
        assert!(!StartOptions::from_query("steps=10").unwrap().run);
        assert!(StartOptions::from_query("steps=10&run=1").unwrap().run);
        assert!(!StartOptions::default().run);
    }

    #[test]
    fn to_query_round_trips() {
        let o = StartOptions {
            guest: Some("hello64".into()),
            cmdline: Some("a=b c&d%".into()),
            engine: EngineKind::Bt,
            boot: BootMethod::Direct,
            steps: 3,
            break_at: None,
            run: false,
        };
        assert_eq!(StartOptions::from_query(&o.to_query()).unwrap(), o);
    }

    #[test]
    fn a_paused_session_links_to_itself_and_far_links_replay() {
        let o = StartOptions::from_query("guest=kernel&cmdline=workloads%3Dcompute&run=0").unwrap();
        let mut s = o.session(o.builtin_image().unwrap()).unwrap();
        s.run();
        s.run_until_stopped(20_000, 1);
        s.pause();
        let here = StartOptions::of_session(&s).unwrap();
        assert_eq!(here.steps, s.position());
        assert!(here.steps > STEP_ONE_BY_ONE, "{}", here.steps);
        assert_eq!(here.cmdline.as_deref(), Some("workloads=compute"));
        assert!(here.to_args().contains(&format!("--steps {}", here.steps)));
        let again = here.session(here.builtin_image().unwrap()).unwrap();
        assert_eq!(again.position(), s.position());
        assert_eq!(again.machine.cpu, s.machine.cpu);
        assert_eq!(again.serial, s.serial);
        let own = Session::new(GuestImage::from_bytes("mine.bin", vec![0xf4])).unwrap();
        assert!(StartOptions::of_session(&own)
            .unwrap_err()
            .contains("mine.bin"));
    }

    #[test]
    fn bad_queries_name_the_key() {
        let e = StartOptions::from_query("engine=qemu").unwrap_err();
        assert!(e.contains("qemu") && e.contains("interp"), "{e}");
        let e = StartOptions::from_query("colour=red").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = StartOptions::from_query("steps=many").unwrap_err();
        assert!(e.contains("steps"), "{e}");
        assert!(percent_decode("%G1").is_err());
        assert!(percent_decode("%4").is_err());
        let e = StartOptions::from_query("guest=nosuch")
            .unwrap()
            .builtin_image()
            .unwrap_err();
        assert!(e.contains("nosuch") && e.contains("hello64"), "{e}");
    }

    #[test]
    fn a_session_from_options_is_where_they_say() {
        let o = StartOptions::from_query("guest=hello64&steps=5").unwrap();
        let s = o.session(o.builtin_image().unwrap()).unwrap();
        assert_eq!(s.position(), 5);
        assert!(!s.is_running());
        let o = StartOptions::from_query("guest=hello64&engine=bt").unwrap();
        let s = o.session(o.builtin_image().unwrap()).unwrap();
        assert_eq!(s.engine_kind(), EngineKind::Bt);
        assert!(s.is_running());
        // A link to a breakpoint stays there, whichever engine it names.
        let o = StartOptions::from_query("guest=demo&break=long_mode&engine=bt").unwrap();
        let s = o.session(o.builtin_image().unwrap()).unwrap();
        assert!(!s.is_running());
        assert_eq!(
            Some(s.machine.cpu.linear_rip()),
            s.symbols.find("long_mode")
        );
        assert_eq!(s.engine_kind(), EngineKind::Bt);
    }
}
