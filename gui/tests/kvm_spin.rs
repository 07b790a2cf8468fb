//! A kvm guest that spins without I/O still gives the window its frames back.
//! Teaches: an engine that cannot count instructions needs a time limit, or a frame never ends.

use gui::session::{EngineKind, GuestImage, Session};

#[test]
fn a_spinning_kvm_guest_returns_from_every_tick() {
    if let Err(why) = accel_kvm::kvm_for_tests() {
        eprintln!("kvm skipped: {why}");
        return;
    }
    // Real mode at 0x7C00: `jmp $`, forever, no I/O.
    let mut s = Session::new(GuestImage::from_bytes("spin.bin", vec![0xEB, 0xFE])).unwrap();
    s.switch_engine(EngineKind::Kvm).unwrap();
    s.run();
    let started = std::time::Instant::now();
    for _ in 0..5 {
        s.tick(1_000_000);
        assert!(s.is_running(), "still running: {:?}", s.last_stop);
    }
    // Five frames of a fraction of a second each; far below this even on a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    s.pause();
    assert_eq!(s.machine.cpu.rip, 0x7C00, "the guest is where it spins");
}
