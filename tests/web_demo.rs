//! The browser demo in a real browser: the gui app built to wasm32, served, driven in headless Chromium.
//! Teaches: that the web demo runs the same guests as the CLI — the same serial text, step and step-back.
//!
//! `scripts/web.sh build` builds the site (quick when it is fresh), `scripts/web.sh serve
//! --port 0 --no-build` serves it, and Chromium, driven over WebDriver
//! (`tests/support/webdriver.rs`), opens pages and reads `window.vmscope.status()`:
//! hello64 on interp (then step back and forward), hello64 on bt, the demo with no parameters
//! and the teaching kernel with a small `compute` run, each checked against the text the CLI
//! prints (`guests::Guest::expected_serial`, the kernel's RESULT checksum computed here).
//! A screenshot goes to `target/web-demo/screenshot.png` and must not be blank; no page may
//! report an error (`window.__vmscope_errors`). Without Chromium the test is skipped, with a
//! reason — unless `VMSCOPE_REQUIRE_BROWSER=1` (scripts/test.sh), which makes that a failure.

#[path = "support/web_site.rs"]
mod web_site;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vmscope::compare::suite;
use web_site::{wait_ready, wait_status, Site};
use webdriver::Browser;

/// Long enough for a cold wasm compile in a loaded CI machine; a warm page is ready in ~1 s.
const READY: Duration = Duration::from_secs(60);
/// hello64, the demo and a 3-round kernel run take a few seconds each in the page.
const FINISH: Duration = Duration::from_secs(60);
/// A queued command is applied on the app's next frame.
const COMMAND: Duration = Duration::from_secs(15);

/// `compute` rounds for the kernel case: ~0.65 M guest instructions, fast on interp too.
const KERNEL_ROUNDS: u64 = 3;

#[test]
fn web_demo_in_headless_chromium() {
    if !Browser::present_or_skip("web_demo") {
        return;
    }
    let t0 = Instant::now();
    web_site::build().unwrap_or_else(|e| panic!("{e}"));
    let built = t0.elapsed();
    let site = Site::serve().unwrap_or_else(|e| panic!("{e}"));
    let browser = Browser::start().unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "web_demo: site built in {built:.1?}, served at {}, browser started",
        site.url
    );
    let t1 = Instant::now();
    let mut report = Vec::new();
    let mut case = |name: &str, f: &dyn Fn(&Browser, &Site) -> Result<String, String>| {
        let t = Instant::now();
        match f(&browser, &site) {
            Ok(note) => {
                let line = format!("{name}: ok in {:.1?} ({note})", t.elapsed());
                eprintln!("web_demo: {line}");
                report.push(line);
            }
            Err(e) => panic!("web_demo case {name} failed: {e}"),
        }
    };
    case(
        "hello64 interp, back 5, step 2, screenshot",
        &hello64_interp,
    );
    case("hello64 bt", &|b, s| {
        finished_with_serial(b, s, "guest=hello64&engine=bt", "hello64", "bt")
    });
    case("demo (no parameters)", &|b, s| {
        finished_with_serial(b, s, "", "demo", "interp")
    });
    case("demo bt", &|b, s| {
        finished_with_serial(b, s, "engine=bt", "demo", "bt")
    });
    case("kernel compute interp", &|b, s| {
        kernel_compute(b, s, "interp")
    });
    case("kernel compute bt", &|b, s| kernel_compute(b, s, "bt"));
    case("a link to a breakpoint, then step back on bt", &break_link);
    case("a user's own image through the file picker", &own_image);
    case(
        "F11 steps and F5 runs; the browser's F5 is cancelled",
        &debugger_keys,
    );
    eprintln!(
        "web_demo: {} cases in {:.1?} (browser part), {:.1?} in all",
        report.len(),
        t1.elapsed(),
        t0.elapsed()
    );
}

/// Opens `query`, waits until the guest has finished, checks serial, engine, errors and
/// frames; answers the final status.
fn open_and_finish(b: &Browser, site: &Site, query: &str, engine: &str) -> Result<Value, String> {
    let url = site.page(query);
    b.goto(&url)?;
    wait_ready(b, READY).map_err(|e| format!("{url}: {e}"))?;
    let s = wait_status(b, "status().finished", FINISH, |s| {
        s["finished"].as_str().is_some()
    })
    .map_err(|e| format!("{url}: {e}"))?;
    if s["engine"] != json!(engine) {
        return Err(format!(
            "{url}: engine is {} (expected {engine})",
            s["engine"]
        ));
    }
    if s["frames"].as_u64().unwrap_or(0) == 0 {
        return Err(format!(
            "{url}: no egui frame was drawn (frames = {})",
            s["frames"]
        ));
    }
    if !s["errors"].as_array().is_some_and(|a| a.is_empty()) {
        return Err(format!("{url}: status().errors = {}", s["errors"]));
    }
    Ok(s)
}

fn first_instruction(s: &Value) -> String {
    match s["first_instruction_ms"].as_f64() {
        Some(ms) => format!("first instruction at {ms:.0} ms"),
        None => "first_instruction_ms is null".into(),
    }
}

fn check_serial(s: &Value, guest: &str) -> Result<(), String> {
    let g = guests::by_name(guest).ok_or(format!("no built-in guest {guest}"))?;
    let want = g
        .expected_serial
        .replace("{cmdline}", guests::DEFAULT_CMDLINE);
    let got = s["serial"].as_str().unwrap_or_default();
    if got != want {
        return Err(format!(
            "{guest}'s serial output in the page differs from the CLI's:\n--- page\n{got}\n--- expected\n{want}"
        ));
    }
    Ok(())
}

fn finished_with_serial(
    b: &Browser,
    site: &Site,
    query: &str,
    guest: &str,
    engine: &str,
) -> Result<String, String> {
    let s = open_and_finish(b, site, query, engine)?;
    check_serial(&s, guest)?;
    Ok(format!(
        "{} instructions, finished: {}, {} frames, {}",
        s["instructions"],
        s["finished"].as_str().unwrap_or_default(),
        s["frames"],
        first_instruction(&s)
    ))
}

/// Queues `command` and waits until the instruction count is `want`.
fn command_to(b: &Browser, command: &str, want: u64) -> Result<Value, String> {
    b.execute("window.vmscope.command(arguments[0]);", &[json!(command)])?;
    wait_status(
        b,
        &format!("{command:?} to reach {want} instructions"),
        COMMAND,
        |s| s["instructions"].as_u64() == Some(want),
    )
}

fn hex(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// Whether a disassembly line shows `addr` (as hexadecimal, with or without 0x and zeros).
fn mentions_address(line: &str, addr: u64) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .map(|w| w.trim_start_matches("0x"))
        .filter(|w| w.len() >= 4)
        .any(|w| u64::from_str_radix(w, 16) == Ok(addr))
}

fn hello64_interp(b: &Browser, site: &Site) -> Result<String, String> {
    let s = open_and_finish(b, site, "guest=hello64&engine=interp", "interp")?;
    check_serial(&s, "hello64")?;
    let end = s["instructions"]
        .as_u64()
        .ok_or("status().instructions is not a number")?;
    let rip_end = hex(&s["rip"]).ok_or(format!("status().rip is not hex: {}", s["rip"]))?;
    if end < 10 {
        return Err(format!("only {end} instructions ran"));
    }
    let back = command_to(b, "back 5", end - 5)?;
    let rip_back = hex(&back["rip"]).ok_or("rip after back 5 is not hex")?;
    if rip_back == rip_end {
        return Err(format!("back 5 left rip at {rip_end:#x}"));
    }
    let fwd = command_to(b, "step 2", end - 3)?;
    let rip = hex(&fwd["rip"]).ok_or("rip after step 2 is not hex")?;
    if rip == rip_back {
        return Err(format!("step 2 left rip at {rip:#x}"));
    }
    if hex(&fwd["registers"]["rip"]) != Some(rip) {
        return Err(format!(
            "registers.rip {} is not rip {:#x}",
            fwd["registers"]["rip"], rip
        ));
    }
    // The code view draws on the next frame: wait until it marks the new rip as current
    // (the page marks the current line with "=>").
    let fwd = wait_status(b, "the code view to mark rip", COMMAND, |s| {
        s["code"].as_array().is_some_and(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .any(|l| l.trim_start().starts_with("=>") && mentions_address(l, rip))
        })
    })
    .map_err(|e| format!("code view after step 2 (rip {rip:#x}): {e}"))?;
    let code_lines = fwd["code"].as_array().map_or(0, |c| c.len());
    let shot = screenshot(b)?;
    Ok(format!(
        "{end} instructions; back 5: rip {rip_end:#x} -> {rip_back:#x}; step 2: rip {rip:#x}; \
         {code_lines} code lines; {}; screenshot {shot}",
        first_instruction(&s)
    ))
}

fn kernel_compute(b: &Browser, site: &Site, engine: &str) -> Result<String, String> {
    let cmdline = format!("workloads=compute iterations={KERNEL_ROUNDS}");
    let query = format!(
        "guest=kernel&engine={engine}&cmdline={}",
        web_site::query_value(&cmdline)
    );
    let s = open_and_finish(b, site, &query, engine)?;
    let serial = s["serial"].as_str().unwrap_or_default();
    let results = suite::parse_results(serial)?;
    let want = suite::expected_checksum("compute", KERNEL_ROUNDS);
    match results.as_slice() {
        [r] if r.workload == "compute" && r.ops == KERNEL_ROUNDS && Some(r.checksum) == want => {}
        _ => {
            return Err(format!(
                "expected one RESULT line for compute × {KERNEL_ROUNDS} with checksum {want:x?}; \
                 the page's serial output:\n{serial}"
            ))
        }
    }
    Ok(format!(
        "RESULT checksum {:#x} as computed here, {} instructions, finished: {}",
        results[0].checksum,
        s["instructions"],
        s["finished"].as_str().unwrap_or_default()
    ))
}

/// A teacher's link: the demo paused at the symbol `long_mode` on bt; one step back there
/// lands one instruction earlier, at a different RIP.
fn break_link(b: &Browser, site: &Site) -> Result<String, String> {
    b.goto(&site.page("guest=demo&engine=bt&break=long_mode"))?;
    let s = wait_status(
        b,
        "the demo paused at long_mode",
        Duration::from_secs(60),
        |s| s["ready"] == json!(true) && s["running"] == json!(false),
    )?;
    let stop = s["stop"].as_str().unwrap_or_default();
    if s["engine"] != json!("bt") || !stop.contains("reakpoint") {
        return Err(format!("expected a breakpoint stop on bt, got {s}"));
    }
    let at = s["instructions"].as_u64().unwrap_or_default();
    let rip = hex(&s["rip"]);
    if at == 0 {
        return Err(format!("the breakpoint stop is at instruction 0: {s}"));
    }
    let back = command_to(b, "back 1", at - 1)?;
    if hex(&back["rip"]) == rip || back["engine"] != json!("bt") {
        return Err(format!(
            "step back from {rip:x?} left rip or the engine unchanged: {back}"
        ));
    }
    Ok(format!(
        "paused at instruction {at}, rip {}; one back: rip {}",
        s["rip"], back["rip"]
    ))
}

/// A user's own file: hello32's ELF, written out and chosen through the page's file picker
/// (the input the Guest menu's "Open image file…" clicks); then a command line, then a run.
/// The page must print what the CLI prints for hello32 with that command line.
fn own_image(b: &Browser, site: &Site) -> Result<String, String> {
    let g = guests::by_name("hello32").ok_or("no hello32 guest")?;
    let dir = webdriver::target_dir().join("web-demo");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("my-kernel.elf");
    std::fs::write(&path, g.image).map_err(|e| format!("{}: {e}", path.display()))?;
    b.goto(&site.page("run=0"))?;
    wait_ready(b, READY)?;
    b.upload_file("#vmscope-file", &path)?;
    wait_status(b, "the uploaded image to be the guest", COMMAND, |s| {
        s["guest"] == json!("my-kernel.elf")
    })?;
    b.execute(
        "window.vmscope.command(arguments[0]);",
        &[json!(format!("cmdline {}", guests::DEFAULT_CMDLINE))],
    )?;
    b.execute("window.vmscope.command('run');", &[])?;
    let s = wait_status(b, "my-kernel.elf to finish", FINISH, |s| {
        s["finished"].is_string()
    })?;
    if s["serial"] != json!(g.expected_serial) || s["cmdline"] != json!(guests::DEFAULT_CMDLINE) {
        return Err(format!(
            "my-kernel.elf (hello32's bytes) printed {:?} with command line {}; the CLI prints {:?}",
            s["serial"], s["cmdline"], g.expected_serial
        ));
    }
    Ok(format!(
        "{} instructions, {}",
        s["instructions"], s["finished"]
    ))
}

/// The debugger's keys reach the app and not the browser: F11 steps one instruction, F5 runs
/// the guest to its end, and the page cancelled both keys' browser defaults (F5 would reload
/// it). WebDriver's synthetic keys never trigger the browser's own shortcuts, so the test
/// reads `defaultPrevented` from a listener that runs after the page's.
fn debugger_keys(b: &Browser, site: &Site) -> Result<String, String> {
    const F5: &str = "\u{E035}";
    const F11: &str = "\u{E03B}";
    b.goto(&site.page("guest=hello64&run=0"))?;
    wait_ready(b, READY)?;
    b.execute(
        "window.__keys = []; window.addEventListener('keydown', \
         (e) => window.__keys.push([e.key, e.defaultPrevented]), { capture: true });",
        &[],
    )?;
    b.send_keys("#vmscope-canvas", F11)?;
    wait_status(b, "F11 to step one instruction", COMMAND, |s| {
        s["instructions"] == json!(1)
    })?;
    b.send_keys("#vmscope-canvas", F5)?;
    let s = wait_status(b, "F5 to run hello64 to its end", FINISH, |s| {
        s["finished"].is_string()
    })?;
    check_serial(&s, "hello64")?;
    let keys = b.execute("return window.__keys;", &[])?;
    for key in ["F11", "F5"] {
        if !keys
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k[0] == json!(key) && k[1] == json!(true))
        {
            return Err(format!("{key}'s browser default was not cancelled: {keys}"));
        }
    }
    Ok(format!(
        "{} instructions after F11, F5; keys seen: {keys}",
        s["instructions"]
    ))
}

/// Saves the page to target/web-demo/screenshot.png and checks that it shows something.
fn screenshot(b: &Browser) -> Result<String, String> {
    let png = b.screenshot_png()?;
    let dir = webdriver::target_dir().join("web-demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("screenshot.png");
    std::fs::write(&path, &png).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("web_demo: screenshot saved to {}", path.display());
    let look = png_colors(&png).map_err(|e| format!("{}: {e}", path.display()))?;
    look.not_blank()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "{}x{}, {} colours, the commonest on {:.0}%",
        look.width,
        look.height,
        look.distinct,
        look.top_share * 100.0
    ))
}

/// What a screenshot's pixels look like: how many colours, and how much of it the commonest
/// one covers (a blank page: one colour on 100%).
#[derive(Debug)]
struct Colors {
    width: u32,
    height: u32,
    distinct: usize,
    top_share: f64,
}

impl Colors {
    fn not_blank(&self) -> Result<(), String> {
        if self.distinct < 16 || self.top_share > 0.98 {
            return Err(format!(
                "the page looks blank: {} colours, the commonest on {:.1}% of the pixels",
                self.distinct,
                self.top_share * 100.0
            ));
        }
        Ok(())
    }
}

/// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are) far
/// enough to count its colours: the IHDR, the zlib stream of the IDAT chunks, and each row's
/// filter (none, sub, up, average, Paeth) undone against the row above.
fn png_colors(png: &[u8]) -> Result<Colors, String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIGNATURE) {
        return Err("not a PNG".into());
    }
    let (mut at, mut ihdr, mut idat) = (SIGNATURE.len(), None, Vec::new());
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = png
            .get(at + 8..at + 8 + len)
            .ok_or("a chunk runs past the end")?;
        match kind {
            b"IHDR" => ihdr = Some(data.to_vec()),
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len; // length, type, data, CRC
    }
    let ihdr = ihdr.ok_or("no IHDR chunk")?;
    if ihdr.len() < 13 {
        return Err("IHDR too short".into());
    }
    let width = u32::from_be_bytes(ihdr[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(ihdr[4..8].try_into().unwrap());
    let (depth, color, interlace) = (ihdr[8], ihdr[9], ihdr[12]);
    let bpp = match (depth, color, interlace) {
        (8, 2, 0) => 3,
        (8, 6, 0) => 4,
        _ => {
            return Err(format!(
                "unexpected PNG format: depth {depth}, colour type {color}, interlace {interlace}"
            ))
        }
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| format!("IDAT: {e}"))?;
    let stride = width as usize * bpp;
    if raw.len() < (stride + 1) * height as usize {
        return Err(format!(
            "IDAT holds {} bytes, too few for {width}x{height}",
            raw.len()
        ));
    }
    let mut prev = vec![0u8; stride];
    let mut row = vec![0u8; stride];
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for y in 0..height as usize {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let filter = line[0];
        for i in 0..stride {
            let a = if i >= bpp { row[i - bpp] } else { 0 };
            let (b, c) = (prev[i], if i >= bpp { prev[i - bpp] } else { 0 });
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => paeth(a, b, c),
                f => return Err(format!("row {y}: unknown filter {f}")),
            };
            row[i] = line[1 + i].wrapping_add(predicted);
        }
        for px in row.chunks(bpp) {
            let key = px.iter().fold(0u32, |k, &v| (k << 8) | v as u32);
            *counts.entry(key).or_default() += 1;
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let total = width as u64 * height as u64;
    let top = counts.values().copied().max().unwrap_or(0);
    Ok(Colors {
        width,
        height,
        distinct: counts.len(),
        top_share: if total == 0 {
            1.0
        } else {
            top as f64 / total as f64
        },
    })
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// A PNG of `w`×`h` RGB pixels from `pixel(x, y)`, every row with filter `filter`
/// (none or sub), for the checker's own test. The CRCs are left zero: the checker skips them.
fn make_png(w: u32, h: u32, filter: u8, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    use std::io::Write;
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(filter);
        let mut left = [0u8; 3];
        for x in 0..w {
            let p = pixel(x, y);
            for i in 0..3 {
                raw.push(if filter == 1 {
                    p[i].wrapping_sub(left[i])
                } else {
                    p[i]
                });
            }
            left = p;
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&[0; 4]);
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn the_screenshot_check_tells_a_blank_page_from_a_drawn_one() {
    let blank = png_colors(&make_png(64, 48, 0, |_, _| [255, 255, 255])).unwrap();
    assert_eq!((blank.width, blank.height, blank.distinct), (64, 48, 1));
    assert!(blank.not_blank().is_err());
    let black = png_colors(&make_png(64, 48, 1, |_, _| [0, 0, 0])).unwrap();
    assert!(black.not_blank().is_err());
    // A dark page with light "text" in many shades: what an egui frame looks like.
    let drawn = png_colors(&make_png(64, 48, 1, |x, y| {
        if y % 6 == 2 && x > 4 {
            [(x * 3) as u8, 200, (y * 5) as u8]
        } else {
            [27, 27, 27]
        }
    }))
    .unwrap();
    assert!(drawn.distinct > 16, "{drawn:?}");
    drawn.not_blank().unwrap();
}

#[test]
fn the_webdriver_client_reads_http_bodies_and_base64() {
    let mut chunked: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    assert_eq!(
        webdriver::read_response(&mut chunked).unwrap(),
        (200, b"{\"a\":1}".to_vec())
    );
    let mut sized: &[u8] = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}trailing";
    assert_eq!(
        webdriver::read_response(&mut sized).unwrap(),
        (404, b"{}".to_vec())
    );
    assert_eq!(webdriver::base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(
        webdriver::base64_decode("AAEC/w==").unwrap(),
        [0, 1, 2, 255]
    );
    assert!(webdriver::base64_decode("a*b").is_err());
    assert!(mentions_address(
        "→ 0x0000000000101a2f  mov eax, 1",
        0x101a2f
    ));
    assert!(!mentions_address("0x101a30 mov eax, 1", 0x101a2f));
    assert_eq!(web_site::query_value("a=b c&d"), "a%3Db%20c%26d");
}
