//! The initramfs vmscope builds for Linux: a newc cpio archive with busybox, a small init, the
//! device nodes a console needs and the virtio modules — made in memory, no root and no cpio tool.
//! Teaches: what an initramfs is (a file list the kernel unpacks into its first filesystem) and
//! the newc format it is in: a 110-byte ASCII header per file, name and data each padded to 4.
//!
//! Device nodes are just headers with a major/minor number, so `/dev/console` needs no `mknod`
//! on the host. The archive ends with the entry `TRAILER!!!`.

/// One entry of the archive.
pub enum Entry<'a> {
    Dir(&'a str),
    File {
        path: &'a str,
        mode: u32,
        data: &'a [u8],
    },
    Symlink {
        path: &'a str,
        target: &'a str,
    },
    CharDevice {
        path: &'a str,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// A newc ("070701") archive of `entries`, in order.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        match e {
            Entry::Dir(path) => push(&mut out, ino, path, S_IFDIR | 0o755, (0, 0), b""),
            Entry::File { path, mode, data } => {
                push(&mut out, ino, path, S_IFREG | mode, (0, 0), data)
            }
            Entry::Symlink { path, target } => push(
                &mut out,
                ino,
                path,
                S_IFLNK | 0o777,
                (0, 0),
                target.as_bytes(),
            ),
            Entry::CharDevice { path, major, minor } => {
                push(&mut out, ino, path, S_IFCHR | 0o600, (*major, *minor), b"")
            }
        }
    }
    push(&mut out, 0, "TRAILER!!!", 0, (0, 0), b"");
    out
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn push(out: &mut Vec<u8>, ino: u32, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let name_len = path.len() + 1;
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
    // rdevminor, namesize, check: 13 fields of 8 hex digits.
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name_len as u32,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// The line init prints once the kernel has started it: tests and `--stats` look for it.
pub const INIT_MARKER: &str = "vmscope-init: up";

/// The init script: mount what a shell needs, load the virtio modules, say we are up, then run
/// `cmd` and power off (if given) or give the console a shell.
pub fn init_script(cmd: Option<&str>, modules: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n",
    );
    for m in modules {
        s.push_str(&format!("insmod /lib/modules/{m} 2>/dev/null\n"));
    }
    s.push_str(&format!("echo {INIT_MARKER}\n"));
    match cmd {
        Some(c) => {
            s.push_str(c);
            s.push_str("\npoweroff -f\n");
        }
        None => s.push_str("exec setsid cttyhack sh\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the archive back: (name, mode, rdevmajor, rdevminor, data) per entry.
    fn entries(a: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            assert_eq!(&a[at..at + 6], b"070701", "magic at {at}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&a[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) = (
                field(1),
                field(6) as usize,
                field(9),
                field(10),
                field(11) as usize,
            );
            let name_at = at + 110;
            let name = std::str::from_utf8(&a[name_at..name_at + namesize - 1])
                .unwrap()
                .to_string();
            assert_eq!(a[name_at + namesize - 1], 0);
            let data_at = (name_at + namesize).next_multiple_of(4);
            let data = a[data_at..data_at + size].to_vec();
            at = (data_at + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(at, a.len());
                return out;
            }
            out.push((name, mode, rmaj, rmin, data));
        }
    }

    #[test]
    fn the_archive_reads_back_with_names_modes_devices_and_data() {
        let a = newc(&[
            Entry::Dir("dev"),
            Entry::CharDevice {
                path: "dev/console",
                major: 5,
                minor: 1,
            },
            Entry::File {
                path: "init",
                mode: 0o755,
                data: b"#!/bin/sh\n",
            },
            Entry::Symlink {
                path: "bin/sh",
                target: "busybox",
            },
        ]);
        assert_eq!(a.len() % 4, 0);
        let e = entries(&a);
        assert_eq!(e.len(), 4);
        assert_eq!((e[0].0.as_str(), e[0].1), ("dev", S_IFDIR | 0o755));
        assert_eq!((e[1].1, e[1].2, e[1].3), (S_IFCHR | 0o600, 5, 1));
        assert_eq!(
            (e[2].1, e[2].4.as_slice()),
            (S_IFREG | 0o755, &b"#!/bin/sh\n"[..])
        );
        assert_eq!(
            (e[3].1, e[3].4.as_slice()),
            (S_IFLNK | 0o777, &b"busybox"[..])
        );
    }

    #[test]
    fn the_init_runs_the_command_and_powers_off_or_starts_a_shell() {
        let once = init_script(Some("uname -a"), &["virtio.ko".into()]);
        assert!(once.contains("insmod /lib/modules/virtio.ko"));
        assert!(once.contains(INIT_MARKER) && once.ends_with("uname -a\npoweroff -f\n"));
        assert!(init_script(None, &[]).ends_with("sh\n"));
    }

    #[test]
    fn gnu_cpio_lists_what_we_wrote() {
        let Ok(out) = std::process::Command::new("cpio").arg("--version").output() else {
            eprintln!("skipped: no cpio on this machine");
            return;
        };
        assert!(out.status.success());
        let a = newc(&[
            Entry::Dir("bin"),
            Entry::File {
                path: "bin/hello",
                mode: 0o644,
                data: b"hi",
            },
        ]);
        let dir = std::env::temp_dir().join(format!("vmscope-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.cpio");
        std::fs::write(&file, &a).unwrap();
        let listed = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cpio -it < {}", file.display()))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(String::from_utf8_lossy(&listed.stdout), "bin\nbin/hello\n");
    }
}
