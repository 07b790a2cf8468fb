//! `vmscope compare` from the command line: the table on stdout, JSON and SVG files, errors.
//! Teaches: what a user sees; the exit status a script can rely on.

use std::process::Command;

fn vmscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmscope"))
}

#[test]
fn compare_writes_the_table_json_and_plot() {
    let dir = std::env::temp_dir().join(format!("vmscope-compare-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, plot) = (dir.join("r.json"), dir.join("r.svg"));
    let out = vmscope()
        .args([
            "compare",
            "--engines",
            "interp",
            "--workloads",
            "syscall,cpuid",
        ])
        .args(["--iterations", "5", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("syscall") && stdout.contains("cpuid"),
        "{stdout}"
    );
    assert!(stdout.contains("all agree"), "{stdout}");
    assert!(
        stderr.contains("compare: interp: syscall × 5"),
        "progress goes to stderr: {stderr}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["workload"], "syscall");
    assert_eq!(results[0]["ops"], 5);
    assert_eq!(results[0]["checksum"], "0x000000000000000f"); // 1 + 2 + 3 + 4 + 5
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<title>").count(), 2, "one bar per result");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_engines_and_workloads_are_errors_naming_the_choices() {
    let out = vmscope()
        .args(["compare", "--engines", "virtualbox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown engine \"virtualbox\"")
            && err.contains("qemu-tcg")
            && err.contains("bochs"),
        "{err}"
    );

    let out = vmscope()
        .args(["compare", "--engines", "interp", "--workloads", "fork"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown workload \"fork\"") && err.contains("pagefault"),
        "{err}"
    );
}
