//! A throwaway network namespace for tests that give vmscope a tap device, and Debian's tcpdump.
//! Teaches: nothing for students; it keeps the host's real interfaces out of every test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn tcpdump() -> Option<PathBuf> {
    ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A network namespace for one test, deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    /// The namespace, or why namespaces and taps cannot be made here.
    pub fn new(tag: &str) -> Result<Netns, String> {
        if !Path::new("/dev/net/tun").exists() {
            return Err("no /dev/net/tun".into());
        }
        let name = format!("vmscope-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(Netns(name))
        } else {
            Err("`ip netns add` failed (needs root and iproute2)".into())
        }
    }

    pub fn ip(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        c
    }

    /// Waits until vmscope has created `tap` in the namespace, then gives it `addr`.
    pub fn configure(&self, tap: &str, addr: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.ip(&["link", "show", tap]) {
            assert!(Instant::now() < until, "the tap {tap} never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.ip(&["link", "set", tap, "up"]));
        assert!(self.ip(&["addr", "add", addr, "dev", tap]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
