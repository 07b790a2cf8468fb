//! Disk images on the host: `--disk FILE[,ro][,if=ide|virtio-mmio|virtio-pci]`, a raw file
//! behind a device model, locked so two vmscope processes (or the CLI and the GUI) never write one image.
//! Teaches: the host half of a virtual disk — what "the guest flushed it" means for a file
//! (the write reached the file, `fsync` made it durable) and why images are locked.
//!
//! A file is opened, checked and locked before the guest starts: a missing or unreadable file,
//! one whose size is not a whole number of 512-byte sectors, or one another process holds is
//! an error naming the file. Writes go to the file as the device completes them (no cache in
//! between), so an engine switch or an exit never loses them; FLUSH calls `sync_data`. The
//! file never grows: device models check sectors against the size, and [`FileDisk`] refuses
//! anything past it once more.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use devices::block::{check_range, BlockBackend, BlockError};
use devices::placement::Transport;

/// Which device model the guest sees the disk through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskInterface {
    /// ATA PIO on the primary IDE channel (0x1F0–0x1F7, 0x3F6, IRQ 14): fully emulated.
    Ide,
    /// virtio-blk behind the virtio-mmio transport (as Firecracker offers disks).
    VirtioMmio,
    /// virtio-blk behind virtio-pci (modern capabilities).
    VirtioPci,
}

impl DiskInterface {
    pub fn name(self) -> &'static str {
        match self {
            DiskInterface::Ide => "ide",
            DiskInterface::VirtioMmio => "virtio-mmio",
            DiskInterface::VirtioPci => "virtio-pci",
        }
    }

    /// The virtio transport behind this interface (`None` for IDE).
    pub fn virtio_transport(self) -> Option<Transport> {
        match self {
            DiskInterface::Ide => None,
            DiskInterface::VirtioMmio => Some(Transport::Mmio),
            DiskInterface::VirtioPci => Some(Transport::Pci),
        }
    }
}

/// One `--disk` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    pub path: PathBuf,
    pub read_only: bool,
    pub interface: DiskInterface,
}

impl std::str::FromStr for DiskSpec {
    type Err = String;

    /// `FILE[,ro][,if=ide|virtio-mmio|virtio-pci]`; the interface defaults to virtio-pci.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let path = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or("--disk needs a file name")?;
        let mut spec = DiskSpec {
            path: PathBuf::from(path),
            read_only: false,
            interface: DiskInterface::VirtioPci,
        };
        for opt in parts {
            match opt {
                "ro" => spec.read_only = true,
                "rw" => spec.read_only = false,
                "if=ide" => spec.interface = DiskInterface::Ide,
                "if=virtio-mmio" => spec.interface = DiskInterface::VirtioMmio,
                "if=virtio-pci" | "if=virtio" => spec.interface = DiskInterface::VirtioPci,
                other => {
                    return Err(format!(
                        "unknown --disk option '{other}' (expected ro, rw, if=ide, if=virtio-mmio or if=virtio-pci)"
                    ))
                }
            }
        }
        Ok(spec)
    }
}

/// A raw image file as a block backend.
#[derive(Debug)]
pub struct FileDisk {
    file: File,
    path: PathBuf,
    len: u64,
    read_only: bool,
}

impl FileDisk {
    /// Opens and locks `path` (exclusively when writable, shared when read-only).
    pub fn open(path: &Path, read_only: bool) -> Result<FileDisk> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .with_context(|| {
                format!(
                    "opening disk image {} {}",
                    path.display(),
                    if read_only {
                        "read-only"
                    } else {
                        "for reading and writing"
                    }
                )
            })?;
        let lock = if read_only {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match lock {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "disk image {} is in use: another vmscope holds its lock, or it was given twice; \
                 stop that one, or open both with ,ro if they only read",
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking disk image {}", path.display()))
            }
        }
        let meta = file
            .metadata()
            .with_context(|| format!("reading the size of {}", path.display()))?;
        if !meta.is_file() {
            bail!("disk image {} is not a regular file", path.display());
        }
        let len = meta.len();
        if len == 0 || !len.is_multiple_of(512) {
            bail!(
                "disk image {} is {len} bytes; a disk needs a whole, non-zero number of 512-byte sectors \
                 (a new, empty one: truncate -s 16M new-disk.img)",
                path.display()
            );
        }
        Ok(FileDisk {
            file,
            path: path.to_path_buf(),
            len,
            read_only,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io_error(path: &Path, e: std::io::Error) -> BlockError {
    BlockError::Io(format!("{}: {e}", path.display()))
}

impl BlockBackend for FileDisk {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len() as u64, self.len)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| io_error(&self.path, e))
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, data.len() as u64, self.len)?;
        self.file
            .write_all_at(data, offset)
            .map_err(|e| io_error(&self.path, e))
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| io_error(&self.path, e))
    }
    fn id(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.chars().take(20).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vmscope-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn specs_parse_and_bad_options_are_named() {
        let s: DiskSpec = "a.img,ro,if=ide".parse().unwrap();
        assert_eq!((s.read_only, s.interface), (true, DiskInterface::Ide));
        let s: DiskSpec = "b.img".parse().unwrap();
        assert_eq!(s.interface, DiskInterface::VirtioPci);
        let e = "c.img,if=scsi".parse::<DiskSpec>().unwrap_err();
        assert!(e.contains("if=scsi"), "{e}");
        assert!(",ro".parse::<DiskSpec>().is_err());
    }

    #[test]
    fn writes_reach_the_file_and_never_grow_it() {
        let p = image("grow.img", &[0u8; 1024]);
        let mut d = FileDisk::open(&p, false).unwrap();
        d.write_at(512, &[0xAB; 512]).unwrap();
        assert!(d.write_at(1000, &[1; 100]).is_err());
        d.flush().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 1024);
        assert!(bytes[512..].iter().all(|&b| b == 0xAB) && bytes[..512].iter().all(|&b| b == 0));
        assert_eq!(d.id(), "grow.img");
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_image() {
        let p = image("lock.img", &[0u8; 512]);
        let first = FileDisk::open(&p, false).unwrap();
        let e = FileDisk::open(&p, false).unwrap_err().to_string();
        assert!(e.contains("is in use"), "{e}");
        let e = FileDisk::open(&p, true).unwrap_err().to_string();
        assert!(
            e.contains("in use"),
            "a reader may not share a writer's image: {e}"
        );
        drop(first);
        let _r1 = FileDisk::open(&p, true).unwrap();
        let _r2 = FileDisk::open(&p, true).expect("two readers share");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let missing = std::env::temp_dir().join("vmscope-no-such-disk.img");
        let e = format!("{:#}", FileDisk::open(&missing, false).unwrap_err());
        assert!(e.contains("vmscope-no-such-disk.img"), "{e}");
        let odd = image("odd.img", &[0u8; 700]);
        let e = FileDisk::open(&odd, false).unwrap_err().to_string();
        assert!(e.contains("700 bytes") && e.contains("512-byte"), "{e}");
        let ro = image("ro.img", &[0u8; 512]);
        let mut d = FileDisk::open(&ro, true).unwrap();
        assert_eq!(d.write_at(0, &[1]), Err(BlockError::ReadOnly));
    }
}
