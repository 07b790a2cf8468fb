//! A minimal W3C WebDriver client for the browser tests: chromedriver over plain HTTP/1.1.
//! Teaches: what a browser-automation library does underneath — JSON over HTTP to a driver.
//!
//! WebDriver (<https://www.w3.org/TR/webdriver2/>) is a small REST protocol: `POST /session`
//! starts a browser and answers a session id, then `POST /session/{id}/url` navigates,
//! `POST /session/{id}/execute/sync` runs a script and answers its return value as JSON, and
//! `GET /session/{id}/screenshot` answers a base64 PNG. Every answer is `{"value": …}`; a
//! failure has an HTTP error status and `value.error` / `value.message`. That is all this
//! module speaks: one TCP connection per request (`Connection: close`), `serde_json` bodies,
//! no async runtime and no client crate.
//!
//! Included with `#[path]` by `tests/web_demo.rs` and `benches/web.rs` (std and serde_json only).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium's flags for a headless run as root on a machine without a network: no sandbox
/// (root), no GPU process, and none of the background connections (updates, sync, QUIC) that
/// a closed network refuses. WebGL then runs on SwiftShader, which Chromium wants named.
pub const HEADLESS_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
    "--window-size=1400,900",
];

/// How long a script run by `execute` may take (the page's synchronous `vmscope.bench`).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// A headless Chromium driven through chromedriver; both end when this is dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

/// The reply of one HTTP request: status code and parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Browser {
    /// Whether this machine has the browser and its driver (Debian's `chromium` and
    /// `chromium-driver`, which `scripts/setup.sh` installs); the reason when not.
    pub fn available() -> Result<(), String> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(path).exists() {
                return Err(format!(
                    "{path} is missing (Debian package {package}; scripts/setup.sh installs it)"
                ));
            }
        }
        Ok(())
    }

    /// Whether a browser test should go on: true where the browser is there; where it is not,
    /// prints why and answers false (the caller skips) — unless `VMSCOPE_REQUIRE_BROWSER=1`,
    /// which makes a missing browser a failure (scripts/test.sh sets it after setup
    /// installed the packages).
    pub fn present_or_skip(what: &str) -> bool {
        let required = std::env::var("VMSCOPE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        match Browser::available() {
            Ok(()) => true,
            Err(why) if required => panic!("{what}: VMSCOPE_REQUIRE_BROWSER=1 but {why}"),
            Err(why) => {
                eprintln!("{what} skipped: {why} (VMSCOPE_REQUIRE_BROWSER=1 makes this a failure)");
                false
            }
        }
    }

    /// Starts chromedriver on a free port, waits until it is ready and opens a session with a
    /// fresh profile.
    pub fn start() -> Result<Browser, String> {
        Browser::available()?;
        let port = free_port()?;
        let log_dir = target_dir().join("web-demo");
        std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let log = log_dir.join("chromedriver.log");
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that Drop can end chromedriver and any Chromium it left.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd
            .spawn()
            .map_err(|e| format!("starting {CHROMEDRIVER}: {e}"))?;
        let profile =
            std::env::temp_dir().join(format!("vmscope-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        browser.wait_ready(Duration::from_secs(20))?;
        browser.session = browser.new_session()?;
        Ok(browser)
    }

    /// Polls `GET /status` until the driver says `ready` (it is up within a second or so).
    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited at start: {status}"));
            }
            match http(self.port, "GET", "/status", None, Duration::from_secs(5)) {
                Ok(r) if r.body["value"]["ready"] == json!(true) => return Ok(()),
                Ok(r) => last = format!("status {}: {}", r.status, r.body),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "chromedriver on port {} not ready after {limit:?}: {last}",
            self.port
        ))
    }

    fn new_session(&self) -> Result<String, String> {
        let mut args: Vec<String> = HEADLESS_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", self.profile.display()));
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                "timeouts": {
                    "script": SCRIPT_TIMEOUT.as_millis() as u64,
                    "pageLoad": 60_000,
                    "implicit": 0
                }
            }}
        });
        let v = self.call("POST", "/session", Some(caps), Duration::from_secs(60))?;
        v["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("POST /session answered no sessionId: {v}"))
    }

    /// One WebDriver command: answers the reply's `value`, or an error that names the request
    /// and carries the driver's answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, String> {
        let r = http(self.port, method, path, body.as_ref(), timeout)
            .map_err(|e| format!("WebDriver {method} {path}: {e}"))?;
        if r.status != 200 {
            let v = &r.body["value"];
            let message = v["message"].as_str().unwrap_or_default();
            let message = message.lines().next().unwrap_or_default();
            return Err(format!(
                "WebDriver {method} {path}: HTTP {} {}: {message}",
                r.status,
                v["error"].as_str().unwrap_or("(no error code)")
            ));
        }
        Ok(r.body["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}/{rest}", self.session)
    }

    /// Gives a file to the page's `<input type=file>` matched by `css`, as a user choosing it
    /// in the file picker would (the input's change event fires).
    pub fn upload_file(&self, css: &str, path: &std::path::Path) -> Result<(), String> {
        self.send_keys(css, &path.display().to_string())
    }

    /// Types `text` into the element matched by `css` (focusing it first). WebDriver spells
    /// special keys as private-use characters: F5 is U+E035, F11 U+E03B.
    pub fn send_keys(&self, css: &str, text: &str) -> Result<(), String> {
        let found = self.call(
            "POST",
            &self.session_path("element"),
            Some(json!({ "using": "css selector", "value": css })),
            Duration::from_secs(20),
        )?;
        // W3C's key for an element reference.
        let id = found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .ok_or_else(|| format!("no element matches {css:?}: {found}"))?;
        self.call(
            "POST",
            &self.session_path(&format!("element/{id}/value")),
            Some(json!({ "text": text })),
            Duration::from_secs(20),
        )?;
        Ok(())
    }

    /// Navigates and waits until the page has loaded (the driver's page-load strategy).
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.call(
            "POST",
            &self.session_path("url"),
            Some(json!({ "url": url })),
            Duration::from_secs(90),
        )
        .map(|_| ())
    }

    /// Runs `script` as the body of a function in the page (`arguments[i]` are `args`) and
    /// answers what it returns.
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, String> {
        self.call(
            "POST",
            &self.session_path("execute/sync"),
            Some(json!({ "script": script, "args": args })),
            SCRIPT_TIMEOUT + Duration::from_secs(30),
        )
    }

    /// Runs `script` every 100 ms until it returns something other than null/false, and
    /// answers that; fails after `limit` with the last value seen.
    pub fn wait_for(&self, what: &str, script: &str, limit: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.execute(script, &[])?;
            if !v.is_null() && v != json!(false) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out after {limit:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page as it looks now, as PNG bytes.
    pub fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let v = self.call(
            "GET",
            &self.session_path("screenshot"),
            None,
            Duration::from_secs(60),
        )?;
        let b64 = v
            .as_str()
            .ok_or_else(|| format!("screenshot answered no string: {v}"))?;
        base64_decode(b64)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.call("DELETE", &path, None, Duration::from_secs(20));
        }
        kill_group(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Ends a child started in its own process group, and the group with it (SIGTERM to -pid),
/// then reaps the child.
pub fn kill_group(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The workspace's target directory (where screenshots and logs go).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A port on 127.0.0.1 that nothing listens on right now (the OS picks it).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// One HTTP/1.1 request to 127.0.0.1:`port` with an optional JSON body; the answer's body is
/// parsed as JSON (an empty body is `null`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Reply, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket timeout: {e}"))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Accept: application/json\r\n"
    );
    if body.is_some() {
        request.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
    request.push_str(&payload);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut reader = BufReader::new(stream);
    let (status, body) = read_response(&mut reader)?;
    let text = String::from_utf8_lossy(&body);
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|e| {
            let start: String = text.chars().take(300).collect();
            format!("HTTP {status}: the body is not JSON ({e}): {start}")
        })?
    };
    Ok(Reply { status, body })
}

/// Reads one HTTP/1.1 response: the status line, headers, then the body by Content-Length,
/// by chunks (`Transfer-Encoding: chunked`), or up to the end of the connection.
pub fn read_response(r: &mut impl BufRead) -> Result<(u16, Vec<u8>), String> {
    let mut line = String::new();
    let read_line = |r: &mut dyn BufRead, line: &mut String| -> Result<(), String> {
        line.clear();
        r.read_line(line)
            .map_err(|e| format!("reading the response: {e}"))?;
        Ok(())
    };
    read_line(r, &mut line)?;
    if line.is_empty() {
        return Err("the connection closed without a response".into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        read_line(r, &mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    let io = |e: std::io::Error| format!("reading the body: {e}");
    if chunked {
        loop {
            read_line(r, &mut line)?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).map_err(io)?;
            read_line(r, &mut line)?; // the CRLF after each chunk
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io)?;
    } else {
        r.read_to_end(&mut body).map_err(io)?;
    }
    Ok((status, body))
}

/// Standard base64 (RFC 4648, with `=` padding; whitespace ignored).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = value(c).ok_or_else(|| format!("not base64: byte {c:#04x}"))?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
