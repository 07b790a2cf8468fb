//! Snapshot files from the GUI: save a running guest, read the file back, continue it.
//! Teaches: a saved machine is only right if the restored one goes on exactly as the original.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use devices::block::MemDisk;
use devices::disk_journal::JournaledDisk;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use gui::save::{DiskFiles, FileSink};
use gui::session::{GuestDisk, GuestImage, Session, StopReason, DEFAULT_MEMORY};
use support::{app, harness};

/// A file the sink was given: its name and bytes.
type SavedFile = (String, Vec<u8>);

/// A sink that keeps what it is given, as the browser's download or the desktop's file would.
#[derive(Clone, Default)]
struct Kept(Rc<RefCell<Vec<SavedFile>>>);

impl FileSink for Kept {
    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<String, String> {
        self.0.borrow_mut().push((name.to_string(), bytes.to_vec()));
        Ok(format!("the test's sink as {name}"))
    }
}

fn run_to_end(s: &mut Session) {
    s.run();
    assert!(s.run_until_stopped(50_000, 20_000), "the guest ended");
    assert!(s.finished.is_some(), "ended by itself: {:?}", s.last_stop);
}

/// Runs `guest` `n` instructions in slices (interrupts and all), paused after.
fn ran(guest: &str, n: u64) -> Session {
    let mut s = Session::builtin(guest).unwrap();
    s.run();
    while s.is_running() && s.position() < n {
        let left = n - s.position();
        s.tick(left.min(4_000));
    }
    s.pause();
    assert_eq!(
        s.position(),
        n,
        "{guest} is still running: {:?}",
        s.last_stop
    );
    s
}

#[test]
fn a_saved_session_restores_to_the_same_state_and_goes_on_with_the_same_output() {
    let mut original = ran("demo", 6_000);
    let bytes = original.save_snapshot().expect("saves");

    // The file is what `vmscope restore` reads.
    let loaded = snapfile::load_bytes(&bytes).expect("the file loads");
    assert_eq!(loaded.meta.instructions, 6_000);
    assert_eq!(loaded.meta.memory, DEFAULT_MEMORY);
    assert!(!loaded.meta.pv);
    assert!(
        loaded.meta.image.starts_with("demo.elf"),
        "{}",
        loaded.meta.image
    );
    assert_eq!(
        (
            &loaded.meta.virtio_console,
            &loaded.meta.virtio_rng,
            loaded.meta.test_devices.len(),
            loaded.meta.disks.len()
        ),
        (&None, &None, 0, 0),
        "the GUI's machine is the bare board"
    );
    assert_eq!(loaded.parts.cpu, original.machine.cpu);

    let image = GuestImage::from_snapshot("saved.vmsnap", &bytes).expect("restores");
    let mut restored = Session::new(image).unwrap();
    assert_eq!(restored.machine.cpu, original.machine.cpu);
    assert_eq!(restored.position(), original.position());
    assert_eq!(restored.machine.bus.now_ns(), original.machine.bus.now_ns());
    assert_eq!(restored.last_stop, Some(StopReason::Restored { at: 6_000 }));
    assert!(
        restored.loaded.contains("a snapshot of demo.elf"),
        "{}",
        restored.loaded
    );

    let printed_before = original.serial.len();
    run_to_end(&mut original);
    run_to_end(&mut restored);
    assert!(
        original.serial.len() > printed_before,
        "the demo prints after the save point"
    );
    assert_eq!(restored.serial, original.serial[printed_before..]);
    assert_eq!(restored.finished, original.finished);
    assert_eq!(restored.position(), original.position());
    assert_eq!(restored.machine.cpu, original.machine.cpu);
}

#[test]
fn a_restored_session_steps_back_but_not_before_the_file() {
    let mut original = ran("hello64", 500);
    let bytes = original.save_snapshot().unwrap();
    let mut s = Session::new(GuestImage::from_snapshot("h.vmsnap", &bytes).unwrap()).unwrap();
    let blocked = s.step_back_blocker().expect("nothing before the file");
    assert!(blocked.contains("instruction 500"), "{blocked}");

    s.step_into();
    s.step_into();
    let two = s.machine.cpu.clone();
    s.step_into();
    s.step_back(1).unwrap();
    assert_eq!(
        (s.position(), &s.machine.cpu),
        (502, &two),
        "replayed from the file's state"
    );
    s.step_back(100).unwrap();
    assert_eq!(s.position(), 500, "back to the file, no further");
    assert_eq!(s.machine.cpu, original.machine.cpu);
    // Reload starts from the file again.
    s.step_into();
    let reloaded = Session::new(s.image.clone()).unwrap();
    assert_eq!(reloaded.position(), 500);
    assert_eq!(reloaded.machine.cpu, original.machine.cpu);
}

#[test]
fn ctrl_s_saves_through_the_sink_and_opening_the_file_restores_it() {
    let mut h = harness(app("demo"));
    let kept = Kept::default();
    h.state_mut().file_sink = Box::new(kept.clone());
    for _ in 0..5 {
        h.key_press(Key::F11);
    }
    h.run();
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run();
    assert_eq!(
        h.state().forms.save_name.as_deref(),
        Some("vmscope-demo-5.vmsnap"),
        "the window opened with the default name"
    );
    h.get_by_label("Save").click();
    h.run();
    assert!(h.state().forms.save_name.is_none(), "the window closed");
    let notice = h.state().session.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("saved the machine at instruction 5 to the test's sink"),
        "{notice}"
    );
    let (name, bytes) = kept.0.borrow_mut().pop().expect("the sink got the file");
    assert_eq!(name, "vmscope-demo-5.vmsnap");

    // Move on, then open the file as a user would open an image.
    h.key_press(Key::F11);
    h.run();
    let at_five = {
        let s = &mut h.state_mut().session;
        s.step_back(1).unwrap();
        s.machine.cpu.clone()
    };
    h.state_mut().open_bytes(&name, bytes, None);
    h.run();
    let s = &h.state().session;
    assert_eq!(h.state().error, None);
    assert_eq!((s.position(), &s.machine.cpu), (5, &at_five));
    assert!(s.image.restore.is_some());
    assert!(h
        .query_by_label_contains("restored from a snapshot file, saved at instruction 5")
        .is_some());
    // Saved again, it is named after the guest, not after the file.
    assert_eq!(s.snapshot_file_name(), "vmscope-demo-5.vmsnap");
}

#[test]
fn a_damaged_snapshot_file_is_refused_with_the_loaders_reason() {
    let mut s = ran("hello64", 300);
    let good = s.save_snapshot().unwrap();
    let mut h = harness(app("demo"));
    h.run();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    h.state_mut().open_bytes("bad.vmsnap", flipped, None);
    h.run();
    let error = h.state().error.clone().expect("an error is shown");
    assert!(
        error.starts_with("bad.vmsnap is not a usable snapshot: "),
        "{error}"
    );
    assert!(error.contains("section"), "names the section: {error}");
    assert!(h
        .query_by_label_contains("bad.vmsnap is not a usable snapshot")
        .is_some());
    assert_eq!(
        h.state().session.image.name,
        "demo.elf",
        "the old guest stays"
    );

    // Every truncation is refused, never a panic; so is a header alone.
    for len in [8, 12, 16, 40, good.len() / 3, good.len() - 1] {
        let e = GuestImage::from_snapshot("cut.vmsnap", &good[..len]).unwrap_err();
        assert!(
            e.starts_with("cut.vmsnap is not a usable snapshot"),
            "{len}: {e}"
        );
    }
    // What is not a snapshot file is an image, as before.
    assert!(GuestImage::from_file("x.bin", vec![0xF4])
        .unwrap()
        .restore
        .is_none());
}

#[test]
fn machines_the_gui_cannot_save_or_rebuild_are_refused() {
    // A disk: its contents are a file outside the machine.
    let disk = GuestDisk {
        label: "data.img,if=ide".into(),
        transport: None,
        backend: JournaledDisk::new(Box::new(MemDisk::new(vec![0; 64 << 10]))),
    };
    let image = GuestImage::builtin("hello64")
        .unwrap()
        .with_disks(vec![disk]);
    let mut app = gui::VmscopeApp::new(Session::new(image).unwrap());
    let kept = Kept::default();
    app.file_sink = Box::new(kept.clone());
    app.act(gui::app::Action::SaveSnapshot);
    let error = app.error.clone().expect("refused");
    assert!(error.contains("disks (data.img,if=ide)"), "{error}");
    assert!(app.forms.save_name.is_none(), "no save window");
    assert!(app.save_snapshot_as("x.vmsnap").is_err());
    assert!(kept.0.borrow().is_empty(), "nothing was written");

    // A file from `vmscope run --virtio-rng`: the GUI cannot place the rng as the CLI did.
    let s = ran("hello64", 100);
    let meta = snapfile::Meta {
        virtio_rng: Some(("virtio-pci".into(), 0)),
        ..snapfile::Meta::describe(&s.machine, "hello64.elf")
    };
    let bytes = snapfile::encode_file(&meta, &s.machine.snapshot().unwrap().to_parts()).unwrap();
    let e = GuestImage::from_snapshot("rng.vmsnap", &bytes).unwrap_err();
    assert!(e.contains("a virtio-rng (virtio-pci)"), "{e}");
    assert!(e.contains("vmscope restore rng.vmsnap"), "{e}");
}

#[test]
fn the_desktop_writes_the_file_whole_and_never_over_another() {
    let dir = std::env::temp_dir().join(format!("vmscope-gui-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vmscope-hello64-300.vmsnap");
    let _ = std::fs::remove_file(&path);
    let mut s = ran("hello64", 300);
    let bytes = s.save_snapshot().unwrap();
    let name = path.to_str().unwrap();
    let place = DiskFiles.save(name, &bytes).expect("written");
    assert!(place.starts_with(name), "{place}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!path.with_extension("partial").exists());
    let again = DiskFiles.save(name, b"other").unwrap_err();
    assert!(again.contains("exists already"), "{again}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");

    // Opened by path, as the Open window does.
    let mut app = gui::VmscopeApp::new(Session::builtin("demo").unwrap());
    app.open_path(name);
    assert_eq!(app.error, None);
    assert_eq!(app.session.position(), 300);
    assert_eq!(app.session.machine.cpu, s.machine.cpu);
    std::fs::remove_dir_all(&dir).unwrap();
}
