//! The browser demo's site for the browser tests: `scripts/web.sh build`, then `serve` on a port.
//! Teaches: nothing for students; it keeps `tests/web_demo.rs` and `benches/web.rs` short.
//!
//! Included with `#[path]` next to `webdriver.rs` (std and serde_json only).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What `scripts/web.sh serve` prints before the URL.
pub const URL_PREFIX: &str = "vmscope web demo: ";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where `scripts/web.sh build` puts the site.
pub fn dist() -> PathBuf {
    repo().join("web-demo/dist")
}

fn script() -> Result<PathBuf, String> {
    let s = repo().join("scripts/web.sh");
    if s.exists() {
        Ok(s)
    } else {
        Err(format!("{} is missing", s.display()))
    }
}

/// Builds the site (`scripts/web.sh build`; quick when nothing changed). Its output goes to
/// this process's stderr, so a failing build shows why.
pub fn build() -> Result<(), String> {
    let status = Command::new("bash")
        .arg(script()?)
        .arg("build")
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("running scripts/web.sh build: {e}"))?;
    if !status.success() {
        return Err(format!("scripts/web.sh build failed: {status}"));
    }
    if !dist().join("index.html").exists() {
        return Err(format!(
            "scripts/web.sh build made no {}",
            dist().join("index.html").display()
        ));
    }
    Ok(())
}

/// The site served by `scripts/web.sh serve --port 0 --no-build`; the server ends on drop.
pub struct Site {
    server: Child,
    /// `http://127.0.0.1:PORT/`, as the server printed it.
    pub url: String,
}

impl Site {
    /// Starts the server and waits (up to 30 s) for the line with its URL.
    pub fn serve() -> Result<Site, String> {
        let mut cmd = Command::new("bash");
        cmd.arg(script()?)
            .args(["serve", "--port", "0", "--no-build"])
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Its own process group: the script may start the server as a child of its own.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut server = cmd
            .spawn()
            .map_err(|e| format!("starting scripts/web.sh serve: {e}"))?;
        let stdout = server.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads every line (so the server never blocks on a full pipe); the URL line is sent.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix(URL_PREFIX) {
                    let _ = tx.send(url.trim().to_string());
                } else {
                    eprintln!("web.sh serve: {line}");
                }
            }
        });
        let mut site = Site {
            server,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => site.url = url,
            Err(_) => {
                let state = match site.server.try_wait() {
                    Ok(Some(status)) => format!("it exited: {status}"),
                    _ => "it is still running".to_string(),
                };
                return Err(format!(
                    "scripts/web.sh serve printed no line starting {URL_PREFIX:?} in 30 s ({state})"
                ));
            }
        }
        Ok(site)
    }

    /// The site's URL with a query string (`"guest=hello64&engine=bt"`; empty for none).
    pub fn page(&self, query: &str) -> String {
        let base = if self.url.ends_with('/') {
            self.url.clone()
        } else {
            format!("{}/", self.url)
        };
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        crate::webdriver::kill_group(&mut self.server);
    }
}

/// Percent-encodes a query value (spaces, `=`, `&` and everything not unreserved).
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page's `vmscope.status()` and `window.__vmscope_errors` in one round trip
/// (`{ "status": …|null, "errors": [...] }`; status is null before the wasm has started).
const STATUS_SCRIPT: &str = "\
    const errors = (window.__vmscope_errors || []).map(String);\
    const status = window.vmscope ? JSON.parse(JSON.stringify(window.vmscope.status())) : null;\
    return { status, errors };";

/// The page's errors so far (`window.__vmscope_errors`).
pub fn page_errors(b: &crate::webdriver::Browser) -> Result<Vec<String>, String> {
    let v = b.execute("return (window.__vmscope_errors || []).map(String);", &[])?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default())
}

/// Polls `vmscope.status()` every 100 ms until `done(status)` holds and answers that status.
/// Fails at once when the page reports an error, and after `limit` with the last status seen.
pub fn wait_status(
    b: &crate::webdriver::Browser,
    what: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value, String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let v = b.execute(STATUS_SCRIPT, &[])?;
        let errors = v["errors"].as_array().cloned().unwrap_or_default();
        if !errors.is_empty() {
            return Err(format!(
                "the page reported errors while waiting for {what}: {errors:?}"
            ));
        }
        let status = &v["status"];
        if !status.is_null() && done(status) {
            return Ok(status.clone());
        }
        if std::time::Instant::now() >= deadline {
            let shown = if status.is_null() {
                "window.vmscope does not exist".to_string()
            } else {
                let mut s = status.clone();
                // The serial text can be long; its tail is what helps.
                if let Some(text) = s["serial"].as_str() {
                    let tail: String = text
                        .chars()
                        .rev()
                        .take(400)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    s["serial"] = serde_json::Value::String(format!("…{tail}"));
                }
                s.to_string()
            };
            return Err(format!(
                "timed out after {limit:?} waiting for {what}; last status: {shown}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the wasm has started and the app says it is ready.
pub fn wait_ready(
    b: &crate::webdriver::Browser,
    limit: Duration,
) -> Result<serde_json::Value, String> {
    wait_status(b, "vmscope.status().ready", limit, |s| {
        s["ready"] == serde_json::json!(true)
    })
}
