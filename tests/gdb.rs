//! `vmscope run --gdb`: Debian's real gdb drives the stub in batch mode against the teaching kernel.
//! Teaches: what a debugger asks of a VMM — registers, memory by virtual address, breakpoints, runs.
//!
//! The answers are checked against the kernel's ELF file (symbol addresses, the bytes there),
//! on interp, bt and (where /dev/kvm works) kvm. A second test speaks the protocol itself to
//! interrupt a running guest (Ctrl-C is the byte 0x03) and kill it. Skipped, with the reason
//! printed, when /usr/bin/gdb is missing (scripts/setup.sh installs it; VMSCOPE_REQUIRE_GDB=1,
//! as scripts/test.sh sets, makes that a failure).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const GDB: &str = "/usr/bin/gdb";
const VMSCOPE: &str = env!("CARGO_BIN_EXE_vmscope");
/// A short run of the teaching kernel: three demand-zero page faults, then exit 0x10 (status 33).
const CMDLINE: &str = "workloads=pagefault iterations=3";

/// Is gdb missing (the test then skips, saying so)? With `VMSCOPE_REQUIRE_GDB=1`
/// (scripts/test.sh, after setup.sh installed it) a missing gdb is a failure.
fn gdb_missing() -> bool {
    if Path::new(GDB).exists() {
        return false;
    }
    if std::env::var("VMSCOPE_REQUIRE_GDB").is_ok_and(|v| v == "1") {
        panic!("VMSCOPE_REQUIRE_GDB=1 but {GDB} is missing");
    }
    eprintln!("skipping: {GDB} is missing (apt-get install gdb, or scripts/setup.sh)");
    true
}

/// The built-in guests' files, as `vmscope guests --export` writes them.
fn exported_guests(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmscope-gdb-{}-{tag}", std::process::id()));
    let status = Command::new(VMSCOPE)
        .args(["guests", "--export"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("vmscope guests --export");
    assert!(status.success());
    dir
}

/// Just enough of ELF32 to find a symbol and the file's bytes at a virtual address.
struct Elf32(Vec<u8>);

impl Elf32 {
    fn u16(&self, at: usize) -> usize {
        u16::from_le_bytes([self.0[at], self.0[at + 1]]) as usize
    }
    fn u32(&self, at: usize) -> usize {
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap()) as usize
    }

    fn symbol(&self, name: &str) -> u64 {
        let (shoff, shentsize, shnum) = (self.u32(0x20), self.u16(0x2E), self.u16(0x30));
        for i in 0..shnum {
            let sh = shoff + i * shentsize;
            if self.u32(sh + 4) != 2 {
                continue; // not SHT_SYMTAB
            }
            let (off, size) = (self.u32(sh + 0x10), self.u32(sh + 0x14));
            let strtab = shoff + self.u32(sh + 0x18) * shentsize;
            let strings = self.u32(strtab + 0x10);
            for sym in (off..off + size).step_by(16) {
                let at = strings + self.u32(sym);
                let end = at + self.0[at..].iter().position(|&b| b == 0).unwrap();
                if &self.0[at..end] == name.as_bytes() {
                    return self.u32(sym + 4) as u64;
                }
            }
        }
        panic!("no symbol {name} in the ELF file");
    }

    fn bytes_at(&self, vaddr: u64, n: usize) -> Vec<u8> {
        let (phoff, phentsize, phnum) = (self.u32(0x1C), self.u16(0x2A), self.u16(0x2C));
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            let (offset, start, filesz) = (self.u32(ph + 4), self.u32(ph + 8), self.u32(ph + 0x10));
            let v = vaddr as usize;
            if self.u32(ph) == 1 && (start..start + filesz).contains(&v) {
                return self.0[offset + v - start..][..n].to_vec();
            }
        }
        panic!("{vaddr:#x} is not in a loaded segment");
    }
}

/// `vmscope run … --gdb 127.0.0.1:0` (the port the kernel picks is read from its stderr).
struct Vm {
    child: Child,
    addr: String,
    stderr: Receiver<String>,
    stdout: std::thread::JoinHandle<String>,
}

fn start_vm(image: &str, engine: &str, cmdline: &str) -> Vm {
    let mut child = Command::new(VMSCOPE)
        .args(["run", image, "--engine", engine, "--cmdline", cmdline])
        .args(["--gdb", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vmscope");
    let (tx, stderr) = channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr
            .recv_timeout(left)
            .expect("vmscope never said it was waiting for gdb");
        if let Some(a) = line.strip_prefix("vmscope: waiting for gdb on ") {
            break a.to_string();
        }
    };
    Vm {
        child,
        addr,
        stderr,
        stdout,
    }
}

impl Vm {
    /// Waits (bounded) for vmscope to exit; returns its status, stdout and stderr.
    fn finish(mut self, secs: u64) -> (ExitStatus, String, String) {
        let status = wait_bounded(&mut self.child, secs, "vmscope");
        let out = self.stdout.join().unwrap();
        let err: Vec<String> = self.stderr.try_iter().collect();
        (status, out, err.join("\n"))
    }
}

fn wait_bounded(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs gdb in batch mode with these commands (after connecting); returns its stdout + stderr.
fn gdb_batch(elf: &Path, addr: &str, commands: &[&str]) -> String {
    let mut cmd = Command::new(GDB);
    cmd.args([
        "-nx",
        "-batch",
        "-ex",
        "set pagination off",
        "-ex",
        "set confirm off",
    ])
    // The kernel file is ELF32 (Multiboot), its code after long_mode is 64-bit.
    .args(["-ex", "set architecture i386:x86-64", "-ex"])
    .arg(format!("file {}", elf.display()))
    .args(["-ex", &format!("target remote {addr}")]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting gdb");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    wait_bounded(&mut child, 10, "gdb");
    format!("{}{}", o.join().unwrap(), e.join().unwrap())
}

/// The values of `info registers NAME` lines, in order.
fn register_values(output: &str, name: &str) -> Vec<u64> {
    output
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name))
                .then(|| w.next())
                .flatten()
                .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        })
        .collect()
}

fn engines() -> Vec<&'static str> {
    let mut e = vec!["interp", "bt"];
    // Fails instead of skipping when VMSCOPE_REQUIRE_KVM is set (scripts/test.sh).
    match accel_kvm::kvm_for_tests() {
        Ok(_) => e.push("kvm"),
        Err(why) => eprintln!("kvm skipped: {why}"),
    }
    e
}

#[test]
fn gdb_breaks_steps_reads_and_watches_the_teaching_kernel() {
    if gdb_missing() {
        return;
    }
    let dir = exported_guests("batch");
    let elf_path = dir.join("kernel.elf");
    let elf = Elf32(std::fs::read(&elf_path).unwrap());
    let long_mode = elf.symbol("long_mode");
    let demand_zero = elf.symbol("demand_zero");
    let after_demand_zero = elf.symbol("release_pages");
    let print_u64 = elf.symbol("print_u64");
    let code: Vec<String> = elf
        .bytes_at(long_mode, 4)
        .iter()
        .map(|b| format!("{b:#04x}"))
        .collect();

    for engine in engines() {
        let vm = start_vm("kernel", engine, CMDLINE);
        let out = gdb_batch(
            &elf_path,
            &vm.addr,
            &[
                "break long_mode",
                "continue",
                "info registers rip",
                "info registers cr0 cr3 efer",
                "x/4xb long_mode",
                "x/2xb 0x7fff00000000",
                "stepi",
                "info registers rip",
                "set $old = $r11",
                "set var $r11 = 0x1122334455667788",
                "info registers r11",
                "set var $r11 = $old",
                "set var *(long*)&demand_zero_faults = 0x55",
                "x/1xg &demand_zero_faults",
                "set var *(long*)&demand_zero_faults = 0",
                "watch *(long*)&demand_zero_faults",
                "continue",
                "info registers rip",
                "delete",
                "hbreak print_u64",
                "continue",
                "info registers rip",
                "delete",
                "continue",
            ],
        );
        let (status, serial, stderr) = vm.finish(5);
        let ctx = format!("engine {engine}\n--- gdb:\n{out}\n--- vmscope stderr:\n{stderr}");
        let rips = register_values(&out, "rip");
        assert_eq!(rips.len(), 4, "{ctx}");
        assert_eq!(
            rips[0], long_mode,
            "the breakpoint stops at the symbol; {ctx}"
        );
        // The target description's system registers: in long mode, paging on.
        let cr0 = register_values(&out, "cr0");
        let efer = register_values(&out, "efer");
        assert!(cr0.len() == 1 && cr0[0] & (1 << 31) != 0, "CR0.PG; {ctx}");
        assert!(
            efer.len() == 1 && efer[0] & (1 << 10) != 0,
            "EFER.LMA; {ctx}"
        );
        assert!(out.contains("[ SCE LME LMA NXE ]"), "EFER's flags; {ctx}");
        assert_ne!(register_values(&out, "cr3"), [0], "{ctx}");
        assert!(
            out.contains(&format!("<long_mode>:\t{}", code.join("\t"))),
            "memory at long_mode = the ELF's bytes {code:?}; {ctx}"
        );
        assert!(
            out.contains("Cannot access memory at address 0x7fff00000000"),
            "an unmapped address is an error; {ctx}"
        );
        assert!(
            rips[1] > rips[0] && rips[1] < rips[0] + 16,
            "stepi advances rip by one instruction; {ctx}"
        );
        assert_eq!(
            register_values(&out, "r11"),
            [0x1122334455667788],
            "register write; {ctx}"
        );
        assert!(
            out.contains(":\t0x0000000000000055"),
            "memory write read back; {ctx}"
        );
        assert!(
            out.contains("Old value = 0\nNew value = 1"),
            "the watchpoint sees the first demand-zero fault counted; {ctx}"
        );
        assert!(
            (demand_zero..after_demand_zero).contains(&rips[2]),
            "stopped right after the write, in demand_zero; {ctx}"
        );
        assert_eq!(rips[3], print_u64, "hardware breakpoint; {ctx}");
        assert!(
            out.contains("[Inferior 1 (process 1) exited with code 041]"),
            "the W packet carries exit status 33 (041 in gdb's octal); {ctx}"
        );
        assert_eq!(status.code(), Some(33), "{ctx}");
        assert!(
            serial.contains("RESULT workload=pagefault ops=3"),
            "the guest's serial output: {serial}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn gdb_detach_lets_the_guest_run_to_its_end() {
    if gdb_missing() {
        return;
    }
    let dir = exported_guests("detach");
    let vm = start_vm("kernel", "interp", CMDLINE);
    let out = gdb_batch(
        &dir.join("kernel.elf"),
        &vm.addr,
        &["break long_mode", "continue", "detach"],
    );
    let (status, serial, stderr) = vm.finish(5);
    assert!(out.contains("Breakpoint 1, "), "{out}");
    assert!(
        stderr.contains("gdb detached; the guest runs on"),
        "{stderr}"
    );
    assert_eq!(status.code(), Some(33), "{out}\n{stderr}");
    assert!(
        serial.contains("RESULT workload=pagefault ops=3"),
        "{serial}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_breakpoint_at_an_interrupt_handler_stops_just_past_it() {
    if gdb_missing() {
        return;
    }
    // hello64 counts PIT interrupts; the step that delivers one also runs the handler's first
    // instruction, so the stop comes one instruction late, as a SIGTRAP (never a missed stop).
    let dir = exported_guests("handler");
    let elf_path = dir.join("hello64.elf");
    let handler = Elf32(std::fs::read(&elf_path).unwrap()).symbol("timer_handler");
    let vm = start_vm("hello64", "interp", "");
    let out = gdb_batch(
        &elf_path,
        &vm.addr,
        &[
            "break timer_handler",
            "continue",
            "info registers rip",
            "kill",
        ],
    );
    let (_, _, stderr) = vm.finish(5);
    assert!(out.contains("SIGTRAP"), "{out}");
    let rip = register_values(&out, "rip");
    assert!(
        rip.len() == 1 && rip[0] > handler && rip[0] < handler + 16,
        "{out}"
    );
    assert!(stderr.contains("was entered by an interrupt"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A minimal remote-protocol client: `$data#checksum` packets, `+` acknowledgements.
struct Rsp(TcpStream);

impl Rsp {
    fn send(&mut self, data: &str) {
        let sum = data.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        write!(self.0, "${data}#{sum:02x}").unwrap();
    }

    /// The next packet's data (acknowledged), skipping `+`.
    fn recv(&mut self) -> String {
        let mut byte = [0u8];
        let mut data = Vec::new();
        loop {
            self.0.read_exact(&mut byte).expect("reading from the stub");
            if byte[0] == b'$' {
                break;
            }
        }
        loop {
            self.0.read_exact(&mut byte).unwrap();
            if byte[0] == b'#' {
                break;
            }
            data.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.0.read_exact(&mut sum).unwrap();
        self.0.write_all(b"+").unwrap();
        String::from_utf8_lossy(&data).into_owned()
    }
}

#[test]
fn ctrl_c_interrupts_a_running_guest_and_kill_stops_it() {
    // No gdb needed: the test speaks the protocol. A guest that computes for minutes.
    let vm = start_vm("sieve32", "interp", "rounds=100000");
    let stream = TcpStream::connect(&vm.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rsp = Rsp(stream);
    rsp.send("?");
    let first = rsp.recv();
    assert!(first.starts_with('T') || first.starts_with('S'), "{first}");
    rsp.send("c");
    std::thread::sleep(Duration::from_millis(300));
    rsp.0.write_all(&[0x03]).unwrap();
    let stop = rsp.recv();
    assert!(
        stop.starts_with("T02") || stop.starts_with("S02"),
        "Ctrl-C stops the guest with SIGINT: {stop}"
    );
    rsp.send("g");
    let regs = rsp.recv();
    // Run-length encoded (`0*(` = "0" repeated), so only its shape is checked.
    assert!(
        !regs.is_empty() && !regs.starts_with('E'),
        "a register file: {regs}"
    );
    rsp.send("k");
    let (status, _, stderr) = vm.finish(5);
    assert!(stderr.contains("gdb killed the guest"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_non_loopback_address_is_refused() {
    let out = Command::new(VMSCOPE)
        .args([
            "run",
            "hello64",
            "--engine",
            "interp",
            "--gdb",
            "0.0.0.0:1234",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");
}
