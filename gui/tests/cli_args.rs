//! `vmscope-gui`'s command line: help, bad options and unreadable images fail before any window.
//! Teaches: a GUI program still owes its user clear errors on the terminal.

use std::process::Command;

fn gui(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmscope-gui"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("vmscope-gui runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_options() {
    let (code, out, _) = gui(&["--help"]);
    assert_eq!(code, 0);
    for opt in ["--engine", "--boot", "--break", "--screenshot", "--steps"] {
        assert!(out.contains(opt), "{opt} in {out}");
    }
    assert!(out.contains("interp (default), bt or kvm"), "{out}");
}

#[test]
fn bad_arguments_and_images_are_reported_with_status_2() {
    let (code, _, err) = gui(&["--engine", "bochs"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown engine \"bochs\""), "{err}");

    let (code, _, err) = gui(&["--boot", "bios"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown boot method \"bios\""), "{err}");

    let (code, _, err) = gui(&["/nonexistent/kernel.elf"]);
    assert_eq!(code, 2);
    assert!(err.contains("reading /nonexistent/kernel.elf"), "{err}");

    let (code, _, err) = gui(&["demo", "--break", "no_such_symbol"]);
    assert_eq!(code, 2);
    assert!(err.contains("no symbol or hex address"), "{err}");

    // An ELF without a Multiboot header: the loader's own explanation reaches the user.
    let dir = std::env::temp_dir().join(format!("vmscope-gui-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let elf = dir.join("plain.elf");
    std::fs::write(&elf, b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0").unwrap();
    let (code, _, err) = gui(&[elf.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.to_lowercase().contains("multiboot"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_window_size_that_cannot_be_shown_is_refused() {
    // 0x0 used to be taken and the window left at eframe's choice, without a word.
    for size in [
        "0x0",
        "1500x0",
        "100x950",
        "99999x950",
        "1500",
        "wide x tall",
        "-5x-5",
    ] {
        let (code, _, err) = gui(&["demo", "--size", size]);
        assert_eq!(code, 2, "--size {size}: {err}");
        assert!(err.contains(&format!("--size {size}:")), "{err}");
    }
    let (code, _, err) = gui(&["demo", "--size", "0x0"]);
    assert_eq!(code, 2);
    assert!(err.contains("200 to 16384 points wide"), "{err}");
}

#[test]
fn an_endless_file_is_refused_at_the_image_cap_not_read_until_memory_runs_out() {
    let (code, _, err) = gui(&["/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("larger than 512 MiB"),
        "{err}"
    );
}
