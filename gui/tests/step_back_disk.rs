//! Step back with a disk: the guest writes its disk, the user rewinds, and the disk goes back too.
//! Teaches: a machine snapshot without the disk would replay reads of data written "later" —
//! the session's disks keep an undo journal, and a rewind rolls them back with everything else.

use devices::block::{MemDisk, SharedMemDisk};
use devices::disk_journal::JournaledDisk;
use devices::placement::Transport;
use gui::session::{GuestDisk, GuestImage, Session};

const DISK_BYTES: usize = 256 << 10;

/// The teaching kernel writing its disk (through `transport`, IDE when `None`) and reading it
/// back, with a machine snapshot every 20,000 instructions.
fn kernel_on(transport: Option<Transport>) -> (Session, SharedMemDisk) {
    let initial: Vec<u8> = (0..DISK_BYTES).map(|i| (i * 7 + 3) as u8).collect();
    let mem = SharedMemDisk::new(MemDisk::new(initial));
    let disk = GuestDisk {
        label: "test.img".into(),
        transport,
        backend: JournaledDisk::new(Box::new(mem.clone())),
    };
    let mut image = GuestImage::builtin("kernel")
        .unwrap()
        .with_disks(vec![disk]);
    image.cmdline = "workloads=disk-write iterations=24 request=4096 depth=4".into();
    let mut s = Session::new(image).unwrap();
    s.history.snapshot_every = 20_000;
    (s, mem)
}

fn run_to_end(s: &mut Session) {
    s.run();
    for _ in 0..10_000 {
        if !s.is_running() {
            break;
        }
        s.tick(50_000);
    }
    assert!(s.finished.is_some(), "the kernel ended: {}", s.serial);
}

fn bytes(mem: &SharedMemDisk) -> Vec<u8> {
    mem.0.borrow().bytes.clone()
}

fn rewinds_the_disk_with_the_guest(transport: Option<Transport>) {
    let (mut s, mem) = kernel_on(transport);
    let before = bytes(&mem);
    run_to_end(&mut s);
    let (end, after, serial) = (s.position(), bytes(&mem), s.serial.clone());
    assert!(serial.contains("disk-write"), "{serial}");
    assert_ne!(after, before, "the workload wrote its disk");
    assert!(
        s.history.snapshot_positions().len() >= 3,
        "snapshots were taken while the disk changed: {:?}",
        s.history.snapshot_positions()
    );

    // The middle of the run: the disk must be what a fresh run had written by then.
    let middle = end / 2;
    s.rewind_to(middle).unwrap();
    assert!(s.notice.is_none(), "{:?}", s.notice);
    let (mut reference, reference_mem) = kernel_on(transport);
    reference.history.snapshot_ring = 0;
    reference.run();
    while reference.position() < middle && reference.is_running() {
        reference.tick(middle - reference.position());
    }
    assert_eq!(reference.position(), middle);
    assert_eq!(s.machine.cpu, reference.machine.cpu);
    assert!(bytes(&mem) == bytes(&reference_mem), "the disk at {middle}");

    // Before the first write: the disk as it was at power-on.
    s.rewind_to(10).unwrap();
    assert!(bytes(&mem) == before, "the disk at power-on");

    // Forward again: the same writes, the same end.
    run_to_end(&mut s);
    assert_eq!(s.position(), end);
    assert!(bytes(&mem) == after, "the disk after the replayed run");
    assert_eq!(s.serial, serial);
}

#[test]
fn step_back_rolls_an_ide_disk_back() {
    rewinds_the_disk_with_the_guest(None);
}

#[test]
fn step_back_rolls_a_virtio_pci_disk_back() {
    rewinds_the_disk_with_the_guest(Some(Transport::Pci));
}

#[test]
fn step_back_rolls_a_virtio_mmio_disk_back() {
    rewinds_the_disk_with_the_guest(Some(Transport::Mmio));
}

#[test]
fn a_disk_file_opened_by_the_gui_is_locked_and_keeps_the_rewound_contents() {
    let dir = std::env::temp_dir().join(format!("vmscope-gui-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("d.img");
    std::fs::write(&path, vec![0u8; DISK_BYTES]).unwrap();
    let spec = format!("{},if=ide", path.display());
    let disk = GuestDisk::open(&spec).unwrap();
    let second = GuestDisk::open(&spec).unwrap_err();
    assert!(second.contains("in use"), "{second}");

    let mut image = GuestImage::builtin("kernel")
        .unwrap()
        .with_disks(vec![disk]);
    image.cmdline = "workloads=disk-write iterations=4 request=4096".into();
    let mut s = Session::new(image).unwrap();
    run_to_end(&mut s);
    let written = std::fs::read(&path).unwrap();
    assert!(
        written.iter().any(|&b| b != 0),
        "the guest's writes are in the file"
    );
    s.rewind_to(10).unwrap();
    let rewound = std::fs::read(&path).unwrap();
    assert!(
        rewound.iter().all(|&b| b == 0),
        "the file is back at power-on"
    );
    assert_eq!(rewound.len(), DISK_BYTES, "and never grew");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
