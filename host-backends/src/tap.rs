//! Linux tap devices: a network interface in the host's kernel whose "wire" is a file descriptor.
//! Teaches: what the kernel sends out of a tap, a read returns as one Ethernet frame; a frame
//! written to it arrives at the kernel as if received — the host side of a virtual NIC.
//!
//! Opening one: `open("/dev/net/tun")`, then the `TUNSETIFF` ioctl with an interface name and
//! the flags `IFF_TAP` (Ethernet frames; `IFF_TUN` would be bare IP packets) and `IFF_NO_PI`
//! (no 4-byte packet-information header in front of each frame). The interface lives as long
//! as the descriptor. It is opened non-blocking: the `vmscope net` loop polls it between
//! guest slices and must never wait on it.
//!
//! A tap is created in the network namespace of the thread that opens it, and stays there.
//! [`Tap::open_in_netns`] enters a named namespace (`ip netns add NAME`, a file under
//! `/var/run/netns`) on a short-lived thread — `setns` moves only the calling thread — opens
//! the tap there and hands the descriptor back; reading and writing it then works from any
//! thread, while the process itself never leaves its own namespace. Tests use this to keep
//! the host's real interfaces and addresses out of reach.

use std::ffi::c_short;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Interface names are at most 15 bytes plus the terminating NUL.
const IFNAMSIZ: usize = 16;

/// The prefix of the kernel's `struct ifreq` that `TUNSETIFF` reads and writes: the name,
/// then (in the union that follows) the flags. Padded to the size of the whole `ifreq`
/// (40 bytes on 64-bit hosts), as the kernel copies that much.
#[repr(C)]
struct IfReqFlags {
    name: [u8; IFNAMSIZ],
    flags: c_short,
    _union_rest: [u8; 22],
}

/// An open tap device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    /// The interface's name as the kernel chose it (a `%d` in the requested name is replaced).
    name: String,
    netns: Option<String>,
}

/// `tap NAME` or `tap NAME in netns NS`: how errors name a tap.
fn describe(name: &str, netns: Option<&str>) -> String {
    match netns {
        Some(ns) => format!("tap {name} in network namespace {ns}"),
        None => format!("tap {name}"),
    }
}

fn context(e: io::Error, name: &str, netns: Option<&str>, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what}: {e}", describe(name, netns)))
}

impl Tap {
    /// Creates (or attaches to) the tap `name` in this process's network namespace.
    pub fn open(name: &str) -> io::Result<Tap> {
        Self::open_here(name, None)
    }

    // ANCHOR: open_in_netns
    /// Creates the tap `name` inside the network namespace `netns` (as named by
    /// `ip netns add`, i.e. `/var/run/netns/NETNS`). Needs CAP_SYS_ADMIN for `setns`.
    pub fn open_in_netns(name: &str, netns: &str) -> io::Result<Tap> {
        let invalid = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {why}", describe(name, Some(netns))),
            )
        };
        if netns.is_empty() || netns.contains('/') || netns == "." || netns == ".." {
            return Err(invalid("not a namespace name"));
        }
        let path = Path::new("/var/run/netns").join(netns);
        let ns = File::open(&path)
            .map_err(|e| context(e, name, Some(netns), &format!("opening {}", path.display())))?;
        let (name, netns) = (name.to_owned(), netns.to_owned());
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns only reads the descriptor, which `ns` keeps open for the
                // call; CLONE_NEWNET asks that it be a network namespace (else EINVAL). It
                // changes this thread's namespace only — the thread ends right after.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                if r != 0 {
                    let e = io::Error::last_os_error();
                    return Err(context(e, &name, Some(&netns), "entering the namespace"));
                }
                Self::open_here(&name, Some(&netns))
            })
            .join()
            .unwrap_or_else(|_| Err(invalid("the thread opening it panicked")))
        })
    }
    // ANCHOR_END: open_in_netns

    /// Opens the tap in the calling thread's network namespace.
    fn open_here(name: &str, netns: Option<&str>) -> io::Result<Tap> {
        let invalid = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {why}", describe(name, netns)),
            )
        };
        if name.is_empty() || name.len() >= IFNAMSIZ {
            return Err(invalid("an interface name is 1 to 15 bytes"));
        }
        if name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
        {
            return Err(invalid("an interface name has no NUL, '/' or spaces"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| context(e, name, netns, "opening /dev/net/tun"))?;
        let mut req = IfReqFlags {
            name: [0; IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as c_short,
            _union_rest: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq` at the pointer; `req` is a
        // live, writable `repr(C)` value of that layout's size (name, then the flags at the
        // start of the union), and the descriptor is the tun device opened just above.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut req) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(context(e, name, netns, "TUNSETIFF (needs CAP_NET_ADMIN)"));
        }
        let len = req.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        Ok(Tap {
            file,
            name: String::from_utf8_lossy(&req.name[..len]).into_owned(),
            netns: netns.map(str::to_owned),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace it was opened in, if not the process's own.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The next frame the kernel sent out of the tap, into `buf`; `None` when none is waiting.
    /// A frame longer than `buf` is cut to it (give 65536 bytes to be safe, or
    /// [`devices::net::MAX_FRAME`] when a longer one would be dropped anyway).
    pub fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match self.file.read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(context(e, &self.name, self.netns.as_deref(), "reading"));
                }
            }
        }
    }

    /// Hands `frame` to the kernel, as if it had arrived on the tap's wire. One write is one
    /// frame; the kernel takes it whole or not at all.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let n = loop {
            match self.file.write(frame) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(context(e, &self.name, self.netns.as_deref(), "writing"));
                }
            }
        };
        if n != frame.len() {
            let e = io::Error::new(
                io::ErrorKind::WriteZero,
                format!("{n} of {} bytes written", frame.len()),
            );
            return Err(context(e, &self.name, self.netns.as_deref(), "writing"));
        }
        Ok(())
    }
}

/// For `poll`: readable when a frame is waiting.
impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_layout_of_struct_ifreq() {
        assert_eq!(std::mem::size_of::<IfReqFlags>(), 40);
        assert_eq!(std::mem::offset_of!(IfReqFlags, flags), IFNAMSIZ);
    }

    #[test]
    fn bad_names_are_refused_before_the_kernel_sees_them() {
        for bad in ["", "sixteen-bytes-xx", "a/b", "a b"] {
            let e = Tap::open(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(e.to_string().starts_with(&format!("tap {bad}: ")), "{e}");
        }
        let e = Tap::open_in_netns("t0", "../etc").unwrap_err();
        assert!(e.to_string().contains("in network namespace ../etc"), "{e}");
    }

    #[test]
    fn a_missing_namespace_is_named() {
        let e = Tap::open_in_netns("t0", "vmscope-no-such-namespace").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(
            text.contains("tap t0 in network namespace vmscope-no-such-namespace")
                && text.contains("/var/run/netns/vmscope-no-such-namespace"),
            "{text}"
        );
    }
}
