//! `vmscope mmu walk` and `vmscope mmu shadow` on the demo guest, as a user runs them.
//! Teaches: the explanation of a 4-level walk is part of the course; a snapshot keeps it exact.

use std::process::Command;

fn vmscope(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vmscope"))
        .args(args)
        .output()
        .expect("running vmscope");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// After 5000 instructions the demo runs in long mode with its own 4-level tables.
#[test]
fn walk_explains_a_four_level_walk_of_the_demo() {
    let text = vmscope(&[
        "mmu", "walk", "demo", "--va", "0x200010", "--after", "5000", "--access", "write", "--user",
    ]);
    insta::assert_snapshot!("demo_user_write_walk", text);
}

#[test]
fn walk_explains_the_fault_of_a_user_read_of_kernel_memory() {
    let text = vmscope(&[
        "mmu", "walk", "demo", "--va", "0x101000", "--after", "5000", "--user",
    ]);
    insta::assert_snapshot!("demo_user_read_kernel_fault", text);
}

#[test]
fn shadow_lists_the_current_address_space_with_merged_runs() {
    let text = vmscope(&["mmu", "shadow", "demo", "--after", "20000"]);
    assert!(text.contains("(current)"), "{text}");
    assert!(
        text.contains("0x0000000000200000-0x0000000000201fff 0x200000             2M     U W X"),
        "the user program's two pages, cut from one 2 MiB guest page:\n{text}"
    );
    assert!(
        text.contains("write-protect tracing watches 3 page-table frame(s)"),
        "{text}"
    );
}

/// The walk reads only the machine's state, so it explains a guest KVM ran just the same.
#[test]
fn walk_works_after_a_kvm_run_and_reads_the_same_tables() {
    if accel_kvm::kvm_for_tests().is_err() {
        eprintln!("skipped: KVM is not usable here");
        return;
    }
    let args = |engine| {
        vmscope(&[
            "mmu", "walk", "demo", "--va", "0x200010", "--after", "5000", "--engine", engine,
        ])
    };
    let (kvm, interp) = (args("kvm"), args("interp"));
    assert!(kvm.contains("after 5000 instructions on kvm"), "{kvm}");
    let tables = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains(" index "))
            .map(String::from)
            .collect()
    };
    assert_eq!(tables(&kvm), tables(&interp));
    assert_eq!(tables(&kvm).len(), 3, "PML4E, PDPTE and the 2 MiB PDE");
}
