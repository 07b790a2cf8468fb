//! `vmscope bt show` and the translator's other command-line faces: `--bt-cache`, `step` and
//! `mmu walk` on `--engine bt`. Teaches: what a translated block looks like, and that a fast
//! engine answers the same questions as the interpreter.

mod support;

use support::vmscope;

/// Stdout of a run that must succeed.
fn ok(args: &[&str]) -> String {
    let out = vmscope(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "vmscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// After 129,032 instructions the kernel's ring-3 `compute` workload is at the head of its
/// CRC-32 fill loop (`u_crc32` in guests/kernel/user.S), a block that has run hundreds of times:
/// a `mov [m],r` byte store, `inc`/`cmp`/`jb` back to itself (its chain link), then the bit loop
/// `shr`/`jae`/`xor`/`dec`/`jne`. Flags are "dead" where the next instruction overwrites them
/// before anything reads them (`inc ecx` before `cmp`), "live" where a branch reads them or an
/// instruction that may fault (the `movzx` load) comes first.
#[test]
fn show_prints_the_crc_loop_block_of_the_compute_workload() {
    let text = ok(&[
        "bt",
        "show",
        "kernel",
        "--after",
        "129032",
        "--cmdline",
        "workloads=compute:1",
    ]);
    assert!(
        text.starts_with("after 129032 instructions: 64-bit long mode, CPL 3, rip 0x200093\n"),
        "{text}"
    );
    assert!(text.contains("mov [m],r"), "the byte store:\n{text}");
    assert!(
        text.contains("dec     esi                        dec r          live"),
        "dec feeds jne, so its flags are live:\n{text}"
    );
    assert!(
        text.contains("inc     ecx                        inc r          dead"),
        "cmp overwrites inc's flags:\n{text}"
    );
    assert!(
        text.contains("chained to: 0x200093"),
        "the loop links back to itself:\n{text}"
    );
    insta::assert_snapshot!("kernel_crc_fill_loop_block", text);
}

#[test]
fn show_with_stats_reports_the_translator_counters() {
    let text = ok(&[
        "bt",
        "show",
        "kernel",
        "--after",
        "160892",
        "--cmdline",
        "workloads=compute:1",
        "--stats",
    ]);
    assert!(text.contains("block at rip 0x2000bd"), "{text}");
    assert!(text.contains("binary translator: "), "{text}");
    assert!(
        text.contains("translation cache: ") && text.contains("(capacity 32768 KiB)"),
        "the default 32 MiB cache:\n{text}"
    );
}

#[test]
fn a_cache_below_64k_is_rejected_with_the_allowed_range() {
    let out = vmscope(&["run", "kernel", "--engine", "bt", "--bt-cache", "1K"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1K: the translation cache must be between 64K and 4G"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "the guest must not run");
}

/// 64 KiB holds fewer blocks than the kernel and all its workloads need (it translates only
/// code that runs twice, so one workload alone fits), so the cache fills and is flushed whole;
/// the guest neither notices nor prints anything different.
#[test]
fn a_64k_cache_works_and_shows_capacity_flushes() {
    let out = vmscope(&[
        "run",
        "kernel",
        "--cmdline",
        "workloads=all iterations=2",
        "--engine",
        "bt",
        "--bt-cache",
        "64K",
        "--stats",
    ]);
    let reference = vmscope(&[
        "run",
        "kernel",
        "--cmdline",
        "workloads=all iterations=2",
        "--engine",
        "interp",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), reference.status.code(), "{stderr}");
    assert_eq!(out.stdout, reference.stdout, "serial output");
    let cache = stderr
        .lines()
        .find(|l| l.starts_with("translation cache: "))
        .unwrap_or_else(|| panic!("no translation cache line:\n{stderr}"));
    assert!(cache.contains("(capacity 64 KiB)"), "{cache}");
    // "  blocks invalidated by: …, capacity flushes 226 (3 flushes), …"
    let line = stderr
        .lines()
        .find(|l| l.contains("capacity flushes"))
        .unwrap_or_else(|| panic!("no capacity flush count:\n{stderr}"));
    let flushes: u64 = line
        .split("capacity flushes ")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|n| n.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no capacity flush count in {line:?}"));
    assert!(flushes >= 1, "{line}");
}

/// `step --engine bt` runs each instruction through the translator's interpreter path: the
/// printed instructions and register changes equal the interpreter's, also in a hot loop.
#[test]
fn step_on_bt_prints_what_the_interpreter_prints() {
    for args in [
        &["step", "hello-real", "-n", "8"][..],
        &[
            "step",
            "kernel",
            "--skip",
            "129032",
            "--cmdline",
            "workloads=compute:1",
            "-n",
            "12",
        ][..],
    ] {
        let interp = ok(&[args, &["--engine", "interp"]].concat());
        let bt = ok(&[args, &["--engine", "bt"]].concat());
        assert_eq!(bt, interp, "vmscope {args:?}");
        assert!(bt.lines().count() >= 8, "{bt}");
    }
}

/// `mmu walk --engine bt` runs the guest on the translator and explains with its MMU.
#[test]
fn mmu_walk_on_bt_explains_like_the_interpreter() {
    let walk = |engine| {
        ok(&[
            "mmu", "walk", "demo", "--va", "0x200010", "--after", "5000", "--access", "write",
            "--user", "--engine", engine,
        ])
    };
    let (bt, interp) = (walk("bt"), walk("interp"));
    assert!(bt.contains("after 5000 instructions on bt"), "{bt}");
    assert_eq!(
        bt.replacen(" on bt,", " on interp,", 1),
        interp,
        "same walk, same result"
    );
}

/// `run --engine bt` with a switch, as the README shows it: the engine line names both, the
/// guest's output and exit status are those of a plain run, `--stats` has the translator.
#[test]
fn run_switches_from_bt_to_interp_and_back_on_the_command_line() {
    let reference = vmscope(&["run", "hello64", "--engine", "interp"]);
    assert_eq!(reference.status.code(), Some(33));
    for (from, to, engines) in [
        (
            "bt",
            "interp",
            "engine: bt (software, translated blocks) → interp",
        ),
        (
            "interp",
            "bt",
            "engine: interp (software, one instruction at a time) → bt (software, translated blocks)",
        ),
    ] {
        let out = vmscope(&[
            "run",
            "hello64",
            "--engine",
            from,
            "--switch-after",
            "20",
            "--switch-to",
            to,
            "--stats",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(33), "{from} → {to}: {stderr}");
        assert_eq!(out.stdout, reference.stdout, "{from} → {to}");
        assert!(stderr.contains(engines), "{stderr}");
        assert!(stderr.contains("binary translator: "), "{stderr}");
    }
}
