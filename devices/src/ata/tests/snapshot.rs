//! Snapshots of the ATA device: registers, the transfer in progress and the disk behind them.

use super::*;
use crate::disk_journal::JournaledDisk;
use crate::snapshot::SnapshotError;

fn journaled(sectors: u64) -> Rig {
    let disk = Rc::new(RefCell::new(patterned(sectors)));
    let backend = JournaledDisk::new(Box::new(Shared(disk.clone())));
    Rig {
        ata: Ata::new(Box::new(backend), IrqLine::isa(IRQ)),
        t: TestCtx::default(),
        disk,
    }
}

#[test]
fn a_plain_backend_refuses_the_snapshot_instead_of_leaving_the_disk_out() {
    let rig = Rig::new(8);
    assert!(rig.ata.snapshot().is_none());
}

#[test]
fn a_restored_device_resumes_its_transfer_over_the_disk_as_it_was() {
    let mut rig = journaled(16);
    // WRITE SECTORS to sector 3, then READ SECTORS of sectors 3–4, stopped half-way.
    rig.lba28(0x30, 3, 1);
    rig.write_block(&[0xAB; 512]);
    assert_eq!(rig.status(), READY);
    rig.lba28(0x20, 3, 2);
    let first_half = rig.read_block(256);
    assert_eq!(first_half, vec![0xAB; 256]);
    let snap = rig
        .ata
        .snapshot()
        .expect("a journaled disk can be snapshotted");

    // The future the snapshot must undo: the rest of the read, then new data over 3 and 4.
    let rest = rig.read_block(256 + 512);
    rig.lba28(0x30, 3, 2);
    rig.write_block(&[0xCD; 1024]);
    assert_eq!(rig.disk.borrow().bytes[3 * 512], 0xCD);
    let commands = rig.ata.commands;

    rig.ata.restore(&snap).unwrap();
    assert_eq!(rig.disk.borrow().bytes[3 * 512..4 * 512], [0xAB; 512]);
    assert_eq!(
        rig.disk.borrow().bytes[4 * 512..5 * 512],
        sector_data(4)[..]
    );
    assert_eq!(rig.status(), READY_DRQ, "the read is in progress again");
    assert_eq!(rig.read_block(256 + 512), rest);
    assert_eq!(rig.status(), READY);
    assert!(rig.ata.commands < commands, "the counters went back too");
}

#[test]
fn a_snapshot_of_another_device_version_or_layout_is_refused() {
    let mut rig = journaled(4);
    let good = rig.ata.snapshot().unwrap();
    let other = crate::snapshot::DeviceSnapshot::of("uart", 1, &5u32);
    assert!(matches!(
        rig.ata.restore(&other),
        Err(SnapshotError::Mismatch(_))
    ));
    let newer = crate::snapshot::DeviceSnapshot::of("ata", 2, &5u32);
    assert!(matches!(
        rig.ata.restore(&newer),
        Err(SnapshotError::Version {
            device: "ata",
            found: 2,
            expected: 1
        })
    ));
    let garbage = crate::snapshot::DeviceSnapshot::of("ata", 1, &5u32);
    assert!(matches!(
        rig.ata.restore(&garbage),
        Err(SnapshotError::BadState { device: "ata", .. })
    ));
    rig.ata.restore(&good).unwrap();
}
