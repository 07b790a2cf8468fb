//! A real window: `vmscope-gui` under Xvfb with OpenGL (Mesa's software renderer), screenshotted.
//! Teaches: the last mile a headless test cannot see — a window system, a GL context, a frame
//! on screen. The screenshot lands in the target directory for a person to look at.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child (Xvfb) when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The screenshot's path (kept after the test for people and CI artifacts).
pub fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vmscope-gui-window.png")
}

#[test]
fn the_window_opens_under_xvfb_and_draws_the_debugger() {
    if Command::new("Xvfb").arg("-help").output().is_err() {
        println!(
            "skipping: Xvfb is not installed (scripts/setup.sh installs it: apt-get install xvfb)"
        );
        return;
    }
    // -displayfd: Xvfb picks a free display and prints its number once it accepts clients.
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1600x1000x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let stdout = xvfb.stdout.take().expect("piped stdout");
    let _xvfb = Reap(xvfb);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("Xvfb reports its display");
    assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
    let display = format!(":{}", line.trim());

    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let mut gui = Command::new(env!("CARGO_BIN_EXE_vmscope-gui"))
        .args([
            "demo",
            "--break",
            "long_mode",
            "--steps",
            "0",
            "--size",
            "1500x950",
        ])
        .arg("--screenshot")
        .arg(&shot)
        .env("DISPLAY", &display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY")
        .spawn()
        .expect("vmscope-gui starts");
    let status = wait_with_timeout(&mut gui, Duration::from_secs(180));
    if status.is_none() {
        let _ = gui.kill();
    }
    let status = status.expect("vmscope-gui finished within 180 s");
    assert!(status.success(), "vmscope-gui failed: {status}");

    let img = image::open(&shot)
        .expect("the screenshot is a PNG")
        .to_rgba8();
    assert!(
        img.width() >= 1400 && img.height() >= 900,
        "{}x{}",
        img.width(),
        img.height()
    );
    // The current-instruction highlight (panels::CURRENT_BG) is on screen: our UI drew a frame.
    let highlight = image::Rgba([0x2E, 0x5A, 0x2E, 0xFF]);
    let hits = img.pixels().filter(|p| **p == highlight).count();
    assert!(hits > 1000, "current-line highlight pixels: {hits}");
    println!("screenshot: {}", shot.display());
}
