//! Live migration, pre-copy: a running guest moved to another vmscope, on any engine.
//! Teaches: copy RAM while the guest runs, then again what it dirtied meanwhile, round after
//! round, until what is left is small enough to send with the guest stopped — the downtime.
//!
//! `vmscope migrate-listen ADDR [--engine E]` waits for one guest; `vmscope run …
//! --migrate-to ADDR --migrate-after N` sends it (`source.rs`): after N instructions (or
//! `Nms` of guest time) RAM's dirty log starts (`GuestRam::start_dirty_log`: the emulated
//! engines set bits from their write path and for device DMA, KVM from its own dirty log on the
//! memory slot), every non-zero page is sent, then each round sends the pages dirtied during
//! the round before. The guest runs between batches. The link has a speed in bytes per
//! second of guest time (`--migrate-bandwidth`), so with the emulated engines every figure —
//! rounds, pages, the pages left for the stop-and-copy — is the same on every run. When the
//! dirty pages left fit in one slice of the link, or after `MAX_ROUNDS`, the guest stops; its
//! last pages and its state (the snapshot file's sections, `snapshot::state_sections`) go
//! over, and the destination (`dest.rs`) restores and answers GOOD: then the source exits
//! and the guest continues there. Until GOOD, the guest is the source's: a connection that
//! drops, or a FAIL, lets it run on where it was, with nothing lost.
//!
//! Addresses are loopback only: `127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT`, or
//! `unix:PATH` for a Unix socket; `thread:ENGINE` runs the destination in this process
//! (`thread_dest.rs`). `wire.rs` is the stream's format.

pub mod dest;
pub mod source;
pub mod thread_dest;
pub mod wire;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Where a migration goes: a loopback TCP address, a Unix socket, or a destination in a
/// thread of this process (`thread:ENGINE`, over a socket pair: the whole protocol in one
/// command, for the book and for trying it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
    Thread(crate::EngineChoice),
}

impl Endpoint {
    /// Parses `unix:PATH`, `thread:ENGINE` or `HOST:PORT`; a host that is not loopback is
    /// refused.
    pub fn parse(s: &str) -> Result<Endpoint> {
        if let Some(engine) = s.strip_prefix("thread:") {
            let engine =
                <crate::EngineChoice as clap::ValueEnum>::from_str(engine, true).map_err(|_| {
                    anyhow::anyhow!("{s:?}: thread: needs an engine (interp, bt, kvm, auto)")
                })?;
            return Ok(Endpoint::Thread(engine));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                bail!("{s:?}: unix: needs a socket path, e.g. unix:/tmp/vmscope-migrate.sock");
            }
            return Ok(Endpoint::Unix(path.into()));
        }
        let addrs: Vec<SocketAddr> = s
            .to_socket_addrs()
            .with_context(|| {
                format!("{s:?} is not an address (HOST:PORT, e.g. 127.0.0.1:4444, or unix:PATH)")
            })?
            .collect();
        match addrs.iter().find(|a| a.ip().is_loopback()) {
            Some(a) => Ok(Endpoint::Tcp(*a)),
            None => bail!("{s:?} is not a loopback address: migrations stay on this machine (127.0.0.1, ::1 or unix:PATH)"),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Thread(e) => write!(f, "a thread running {e}"),
        }
    }
}

/// A connected stream of either kind.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `to`.
    pub fn connect(to: &Endpoint) -> Result<Stream> {
        let stream = match to {
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, Duration::from_secs(5))
                    .with_context(|| format!("connecting to {a}"))?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            Endpoint::Unix(p) => Stream::Unix(
                UnixStream::connect(p).with_context(|| format!("connecting to {}", p.display()))?,
            ),
            Endpoint::Thread(engine) => {
                let (mine, theirs) = UnixStream::pair().context("making a socket pair")?;
                thread_dest::start(*engine, Stream::Unix(theirs));
                Stream::Unix(mine)
            }
        };
        Ok(stream)
    }

    /// Bounds every read and write (a peer that stops answering is a dropped connection).
    pub fn set_timeouts(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A bound listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `at` (a Unix socket path left by an earlier run is replaced).
    pub fn bind(at: &Endpoint) -> Result<Listener> {
        Ok(match at {
            Endpoint::Tcp(a) => {
                Listener::Tcp(TcpListener::bind(a).with_context(|| format!("listening on {a}"))?)
            }
            Endpoint::Thread(_) => bail!("thread: is a destination to send to, not to listen on"),
            Endpoint::Unix(p) => {
                if std::fs::symlink_metadata(p)
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                {
                    std::fs::remove_file(p)
                        .with_context(|| format!("removing the old socket {}", p.display()))?;
                }
                Listener::Unix(
                    UnixListener::bind(p)
                        .with_context(|| format!("listening on {}", p.display()))?,
                    p.clone(),
                )
            }
        })
    }

    /// The address it listens on (the port the system chose for `127.0.0.1:0`).
    pub fn endpoint(&self) -> Result<Endpoint> {
        Ok(match self {
            Listener::Tcp(l) => Endpoint::Tcp(l.local_addr()?),
            Listener::Unix(_, p) => Endpoint::Unix(p.clone()),
        })
    }

    /// Waits for one connection.
    pub fn accept(&self) -> Result<Stream> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().context("accepting a connection")?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            Listener::Unix(l, _) => Stream::Unix(l.accept().context("accepting a connection")?.0),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// When `--migrate-after` starts the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateAfter {
    /// After this many guest instructions (KVM counts them by single-stepping).
    Instructions(u64),
    /// After this much guest time, in ns (`300ms`): no single-stepping on KVM.
    GuestNs(u64),
}

impl std::str::FromStr for MigrateAfter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?}: expected N (instructions) or Nms (guest time)"))
        };
        match s.strip_suffix("ms") {
            Some(ms) => Ok(MigrateAfter::GuestNs(number(ms)?.saturating_mul(1_000_000))),
            None => Ok(MigrateAfter::Instructions(number(s)?)),
        }
    }
}

/// `--migrate-to ADDR --migrate-after N [--migrate-bandwidth B]`.
#[derive(Debug, Clone)]
pub struct MigratePlan {
    pub to: Endpoint,
    pub after: MigrateAfter,
    /// The link's speed: bytes per second of guest time.
    pub bandwidth: u64,
}

/// `--migrate-bandwidth`'s default: 256 MiB per second of guest time.
pub const DEFAULT_BANDWIDTH: u64 = 256 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_on_this_machine() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:4444").unwrap(),
            Endpoint::Tcp("127.0.0.1:4444".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("unix:/tmp/x.sock").unwrap(),
            Endpoint::Unix("/tmp/x.sock".into())
        );
        let far = Endpoint::parse("192.0.2.1:4444").unwrap_err().to_string();
        assert!(far.contains("not a loopback address"), "{far}");
        assert!(Endpoint::parse("unix:").is_err());
        assert_eq!(
            Endpoint::parse("thread:bt").unwrap(),
            Endpoint::Thread(crate::EngineChoice::Bt)
        );
        assert!(Endpoint::parse("thread:vmware").is_err());
        assert!(Endpoint::parse("nonsense").is_err());
    }

    #[test]
    fn migrate_after_takes_instructions_or_guest_milliseconds() {
        assert_eq!("5000".parse(), Ok(MigrateAfter::Instructions(5000)));
        assert_eq!("300ms".parse(), Ok(MigrateAfter::GuestNs(300_000_000)));
        assert!("3s".parse::<MigrateAfter>().is_err());
    }
}
