//! `--disk` and `--devices` as a user meets them: where each disk appears, and the errors for
//! images that cannot be used — all before the guest runs, with the file left as it was.

mod support;

use support::vmscope;

use std::path::PathBuf;

fn image(name: &str, len: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmscope-disk-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 512) as u8).collect();
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn devices_lists_every_disk_where_the_guest_finds_it() {
    let (a, b, c) = (
        image("a.img", 1 << 20),
        image("b.img", 1 << 20),
        image("c.img", 1 << 20),
    );
    let before = std::fs::read(&a).unwrap();
    let arg = |p: &PathBuf, opts: &str| format!("{}{opts}", p.display());
    let out = vmscope(&[
        "run",
        "hello64",
        "--engine",
        "interp",
        "--devices",
        "--disk",
        &arg(&a, ",if=ide"),
        "--disk",
        &arg(&b, ",ro,if=virtio-mmio"),
        "--disk",
        &arg(&c, ""),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hello64 = guests::by_name("hello64").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        hello64.expected_serial,
        "{stderr}"
    );
    for want in [
        "port 0x01f0-0x01f7  ata",
        "port 0x0cf8-0x0cff  pci config",
        "mmio 0xd0000000-0xd00001ff  virtio-blk",
        "00:00.0 8086:1237 class 060000 pci-host",
        "00:02.0 1af4:1042 class 018000 virtio-blk INTA gsi 18 bar0 mem 0xe0000000+0x4000",
        "(2048 sectors): ide0 ports 0x1f0-0x1f7,0x3f6 irq 14",
        "(2048 sectors, read-only): virtio-mmio 0xd0000000 gsi 20",
        "virtio-pci 00:02.0 bar0 0xe0000000 gsi 18",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    assert_eq!(
        std::fs::read(&a).unwrap(),
        before,
        "a guest that never touched the disk"
    );
}

#[test]
fn unusable_images_are_errors_before_the_guest_starts() {
    let odd = image("odd.img", 1000);
    let ok = image("ok.img", 4096);
    let ok_arg = ok.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["/nonexistent/vmscope.img".into()],
            "/nonexistent/vmscope.img",
        ),
        (vec![odd.display().to_string()], "1000 bytes"),
        // The same image twice for writing: the second open finds the first one's lock.
        (vec![ok_arg.clone(), ok_arg.clone()], "is in use"),
        (
            vec![format!("{ok_arg},if=ide"), format!("{ok_arg},ro,if=ide")],
            "in use",
        ),
        (
            vec![format!("{ok_arg},if=floppy")],
            "unknown --disk option 'if=floppy'",
        ),
    ];
    for (disks, want) in cases {
        let mut args = vec!["run", "hello64", "--engine", "interp"];
        for d in &disks {
            args.extend(["--disk", d]);
        }
        let out = vmscope(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{disks:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "{disks:?}: want {want:?} in {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{disks:?}: the guest must not have run"
        );
    }
    let two_ide = vmscope(&[
        "run",
        "hello64",
        "--disk",
        &format!("{}", image("i1.img", 512).display()),
        "--disk",
        &format!("{},if=ide", image("i2.img", 512).display()),
        "--disk",
        &format!("{},if=ide", image("i3.img", 512).display()),
    ]);
    assert!(String::from_utf8_lossy(&two_ide.stderr).contains("only one IDE disk"));
    assert!(
        std::fs::read(&odd).unwrap().len() == 1000,
        "nothing grew or shrank"
    );
}
