//! The guest programs vmscope runs, assembled from source (`asm/`) when this crate builds.
//! Teaches: what a VMM is handed to boot — a firmware ROM or a Multiboot kernel — and what a
//! correct run of each must print, so every engine can be checked against the same text.
//!
//! ```
//! let demo = guests::by_name("demo").expect("the demo is built in");
//! assert_eq!(demo.kind, guests::GuestKind::Multiboot);
//! assert!(demo.expected_serial.contains("Hello from ring 3!"));
//! for guest in guests::all() {
//!     println!("{:16} {:>6} bytes  {}", guest.file_name, guest.image.len(), guest.description);
//! }
//! ```
//!
//! The platform every guest assumes is a PC: a 16550 UART at 0x3F8 (where all output goes),
//! an i8259 PIC pair at 0x20/0xA0, an i8254 PIT at 0x40-0x43 and an isa-debug-exit device at
//! port 0xF4. A guest that writes `v` there ends the run; QEMU then exits with status
//! `(v << 1) | 1` (see [`qemu_exit_status`]). The same images boot on QEMU:
//! `qemu-system-x86_64 -kernel hello64.elf -serial stdio -display none -no-reboot
//! -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 64` (ROMs with `-bios` instead).

/// The real-mode firmware ROM (64 KiB; map it at 0xF0000 and at 0xFFFF0000).
pub const HELLO_REAL_ROM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello-real.rom"));
/// vmscope's boot firmware (64 KiB ROM, `asm/firmware.S`): from the reset vector in real mode
/// through a GDT into 32-bit protected mode, then the Multiboot handoff to a kernel the host
/// loaded. Not a guest of its own (it is not in [`all`]): the loader patches the kernel's entry
/// and information address into its parameter block at offset 0xFFE0.
pub const FIRMWARE_ROM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/firmware.rom"));
/// 32-bit protected mode with 32-bit paging (Multiboot ELF).
pub const HELLO32_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello32.elf"));
/// hello32 as a flat binary with the Multiboot a.out kludge.
pub const HELLO_AOUT_BIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello-aout.bin"));
/// A sieve of Eratosthenes over 1 MiB, `rounds=N` times: 32-bit protected mode, paging off,
/// nothing but integer loops (`asm/sieve32.S`) — the CPU-speed benchmark.
pub const SIEVE32_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sieve32.elf"));
/// A probe of QEMU's test devices, pc-testdev and pci-testdev (`asm/testdev.S`).
pub const TESTDEV_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/testdev.elf"));
/// 64-bit long mode, timer interrupts, ring 3 (Multiboot ELF32 with 64-bit code inside).
pub const HELLO64_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello64.elf"));
/// hello64 with a narration for students; ends with a clean halt.
pub const DEMO_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/demo.elf"));
/// Prints one line, then triple-faults on purpose.
pub const TRIPLE_FAULT_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/triple-fault.elf"));
/// Executes FSIN and reports whether it raised #UD.
pub const UD_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ud.elf"));
/// Checks paging from inside: rights matrix (U/S, R/W, XD, WP, SMEP, SMAP, CPL), A/D bits,
/// INVLPG, CR3 switches, large pages and reserved bits.
pub const PAGING_MATRIX_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/paging-matrix.elf"));
/// Checks fw_cfg, ACPI, the local APIC, its timer, the PM timer and the IOAPIC like a QEMU kernel.
pub const PLATFORM_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/platform.elf"));
/// Self-modifying code in ring 3: patched immediates, opcodes and jump targets, data in code
/// pages, REP MOVSB over code (`asm/smc.S`).
pub const SMC_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/smc.elf"));
/// A tiny JIT in ring 3: generates, calls and regenerates code, through two virtual mappings.
pub const JIT_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jit.elf"));
/// Trap-and-emulate in miniature: a guest kernel deprivileged to ring 3 (`asm/sensitive.S`).
pub const SENSITIVE_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sensitive.elf"));
/// A 64-bit kernel in C built by gcc with `-fcf-protection=full -fstack-protector-strong`
/// (`c/hardened.c`): ENDBR64 at its functions, like code from any distribution.
pub const HARDENED_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hardened.elf"));
/// The teaching kernel (`kernel/`): runs the workload suite named on its command line.
pub const KERNEL_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kernel.elf"));
/// The BIOS boot loader (`asm/bootdisk.S`, whole sectors for 0x7C00) that starts a Multiboot
/// kernel from a hard-disk image, for PCs without a Multiboot loader (Bochs). Not a guest of
/// its own (it is not in [`all`]): the host writes a parameter block into its second sector
/// and the kernel's segments after it (`src/bootdisk.rs` in the vmscope crate).
pub const BOOTDISK_BIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bootdisk.bin"));

/// The Multiboot command line the expected outputs assume (only hello32 and hello-aout
/// print it). It is the whole string the loader stores in the information structure; note
/// that QEMU's `-kernel` puts the kernel's file name in front of `-append`'s text.
pub const DEFAULT_CMDLINE: &str = "hello from the command line";

/// The guest RAM size, in MiB, the expected outputs assume. hello32 and hello-aout print
/// the Multiboot `mem_upper`, which a loader computes as the KiB of RAM above 1 MiB:
/// 64 MiB gives 64512. (QEMU reports 128 KiB less: its firmware reserves the top of RAM.)
pub const DEFAULT_MEMORY_MIB: u32 = 64;

/// The I/O port of the isa-debug-exit device the guests report their result to.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

/// How a guest image is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// A 64 KiB firmware image: mapped at 0xF0000-0xFFFFF and at the top of the 4 GiB
    /// address space; the CPU starts in real mode at F000:FFF0 (CS base 0xFFFF0000).
    FirmwareRom,
    /// A Multiboot v1 kernel (ELF32, or a flat binary using the a.out kludge): loaded at
    /// 1 MiB and entered in 32-bit protected mode, paging off, EAX = 0x2BADB002,
    /// EBX = the Multiboot information structure.
    Multiboot,
}

/// How a correct run of a guest ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The guest wrote this value to the debug-exit port (then executes CLI; HLT).
    DebugExit(u32),
    /// The guest halted with interrupts disabled (CLI; HLT) — a clean shutdown.
    HaltWithInterruptsDisabled,
    /// The guest triple-faulted (a real PC resets; QEMU with -no-reboot exits with 0).
    TripleFault,
}

/// One guest program and what a correct run of it looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    /// Short name, as typed on the command line (`hello64`).
    pub name: &'static str,
    /// The image's file name (`hello64.elf`), as built into `OUT_DIR`.
    pub file_name: &'static str,
    pub kind: GuestKind,
    pub image: &'static [u8],
    /// One or two sentences on what the guest does and teaches.
    pub description: &'static str,
    /// Exactly the bytes the guest prints on the UART in a correct run (with
    /// [`DEFAULT_CMDLINE`] and [`DEFAULT_MEMORY_MIB`]).
    pub expected_serial: &'static str,
    /// The value written to the debug-exit port; `None` = the guest does not exit that way
    /// (see [`Guest::ending`]).
    pub exit_value: Option<u32>,
    /// How the run ends (agrees with `exit_value`).
    pub ending: Ending,
}

/// Exit values the guests use.
pub mod exit {
    /// Success.
    pub const OK: u32 = 0x10;
    /// An unexpected exception (hello64, demo), or a CPU without long mode.
    pub const UNEXPECTED_EXCEPTION: u32 = 0x11;
    /// The probe ran when it should not have (ud: FSIN executed without #UD).
    pub const PROBE_RAN: u32 = 0x12;
    /// Not started by a Multiboot loader (EAX was not 0x2BADB002).
    pub const NOT_MULTIBOOT: u32 = 0x13;
    /// A paging check failed (paging-matrix: the FAIL lines say which).
    pub const PAGING_CHECK_FAILED: u32 = 0x15;
    /// A platform check failed (platform: the line before says which).
    pub const PLATFORM_CHECK_FAILED: u32 = 0x14;
    /// The teaching kernel: an unknown workload or a malformed count on the command line.
    pub const KERNEL_BAD_CMDLINE: u32 = 0x16;
    /// The teaching kernel: its pool of page frames ran out.
    pub const KERNEL_NO_MEMORY: u32 = 0x17;
    /// smc, jit: generated or patched code computed something other than its reference.
    pub const CODE_CHECK_FAILED: u32 = 0x18;
    /// bootdisk (the BIOS boot loader): the disk could not be read, or held no kernel.
    pub const BOOT_FAILED: u32 = 0x19;
    /// The teaching kernel: the VMM refused a batch of paravirtual page-table updates.
    pub const KERNEL_PV_FAILED: u32 = 0x1A;
    /// The teaching kernel: a disk workload found no disk (or not the one `disk=` names).
    pub const KERNEL_NO_DISK: u32 = 0x1B;
    /// The teaching kernel: the disk reported an error or did not answer.
    pub const KERNEL_DISK_ERROR: u32 = 0x1C;
    /// The teaching kernel: data read back from the disk differs from what was written.
    pub const KERNEL_DISK_MISMATCH: u32 = 0x1D;
    /// sieve32: `rounds=` on the command line is not a number from 1 to 1000000.
    pub const SIEVE_BAD_ROUNDS: u32 = 0x1E;
    /// The teaching kernel: rng-read found no virtio-rng.
    pub const KERNEL_NO_RNG: u32 = 0x1F;
    /// The teaching kernel: the virtio-rng refused VERSION_1, did not answer or gave short buffers.
    pub const KERNEL_RNG_ERROR: u32 = 0x20;
    /// The teaching kernel: a network workload found no NIC (or not the one `nic=` names).
    pub const KERNEL_NO_NIC: u32 = 0x21;
    /// The teaching kernel: the NIC refused, stopped sending, or delivered a malformed frame.
    pub const KERNEL_NET_ERROR: u32 = 0x22;
    /// The teaching kernel: the peer never answered ARP, or pong/udp-recv waited in vain.
    pub const KERNEL_NET_TIMEOUT: u32 = 0x23;
}

/// The exit status QEMU reports for a debug-exit value: `(value << 1) | 1`.
pub const fn qemu_exit_status(value: u32) -> u32 {
    (value << 1) | 1
}

/// How many primes sieve32 finds: those below 2^20, π(1048576).
pub const SIEVE32_PRIMES: u32 = 82025;

/// The rounds sieve32 runs without `rounds=` on its command line (as with [`DEFAULT_CMDLINE`]).
pub const SIEVE32_DEFAULT_ROUNDS: u32 = 1;

/// What sieve32 prints after `rounds` rounds (`rounds=N` on its command line).
pub fn sieve32_text(rounds: u32) -> String {
    let plural = if rounds == 1 { "" } else { "s" };
    format!("sieve32: {SIEVE32_PRIMES} primes below 1048576, {rounds} round{plural}\n")
}

const HELLO64_TEXT: &str = "\
Hello from 64-bit long mode!
tick 1
tick 2
tick 3
tick 4
tick 5
Hello from ring 3!
Back in ring 0.
";

const DEMO_TEXT: &str = "\
vmscope demo: one small kernel, from the boot loader to user mode and back.
[1] 32-bit protected mode, paging off: this is how the Multiboot loader started us.
[2] Building 4-level page tables for the first 4 MiB, then CR4.PAE, EFER.LME, CR0.PG.
Hello from 64-bit long mode!
[3] 64-bit long mode. EFER = 0x00000d01: the CPU set LMA (bit 10), long mode is active.
[4] Loading an IDT (exceptions 0-31, timer 0x20, int 0x80), a TSS and the SYSCALL MSRs.
[5] Timer: PIC remapped to vectors 0x20-0x2f, PIT counter 0 at 100 Hz; HLT until 5 ticks.
tick 1
tick 2
tick 3
tick 4
tick 5
[6] IRETQ to ring 3. The user program prints with SYSCALL, then returns with INT 0x80:
Hello from ring 3!
Back in ring 0.
[7] Done. Halting with interrupts disabled (CLI; HLT): a clean stop for the VMM.
";

/// What `platform` prints on vmscope. On QEMU 7.2 (TCG) the last two checks print
/// [`PLATFORM_QEMU_DIFFERENCES`] instead: its TCG CPU offers neither TSC-deadline nor x2APIC.
pub const PLATFORM_TEXT: &str = "\
platform: the PC as a QEMU-targeted kernel finds it (64-bit long mode)
cpuid: local APIC present
apic base msr: 0xfee00000, enabled, bootstrap processor
fw_cfg: signature QEMU, port interface, 1 cpu
fw_cfg: files etc/acpi/rsdp (an RSDP), etc/acpi/tables, etc/table-loader
acpi: RSDP in the BIOS area, RSDT with valid MADT and FADT
acpi: madt: 1 local APIC (id 0), IOAPIC at 0xfec00000 (GSI base 0), IRQ 0 -> GSI 2
acpi: fadt: PM timer at port 0x608, 24-bit
acpi: fadt: FACS and DSDT present, DSDT checksum valid
lapic: id 0, version 0x14, 6 LVT entries, enabled with spurious vector 0xff
self-ipi: vector 0x40 went IRR -> ISR -> EOI, PPR followed
tpr: vector 0x45 held in IRR while TPR = 0x50, delivered at TPR 0
cr8: is TPR bits 7:4 (vector 0x46 held at CR8 = 5, taken at TPR 0x20)
timer one-shot: fired once, then the count stayed at 0
timer periodic: 3 interrupts 100 us apart; masked in the LVT it counts on silently
ioapic: version 0x20, 24 inputs; PIT IRQ 0 arrived on GSI 2 as vector 0x50
pm timer: 3.579545 MHz, measured against 50 ms of the PIT
lapic timer: 1 GHz bus clock, measured against 50 ms of the PIT
ioapic: UART IRQ 4 level-triggered as vector 0x51: TMR set, remote IRR until EOI
tsc-deadline: fired at the deadline, then IA32_TSC_DEADLINE read 0
x2apic: MSRs 0x802/0x803 read id 0 and version 0x14; self-IPI 0x83f, EOI 0x80b
platform: all checks passed
";

/// What the teaching kernel prints without `workloads=` on its command line (its usage).
pub const KERNEL_TEXT: &str = "\
vmscope teaching kernel: long mode, ring 3 in own address spaces, SYSCALL + INT 0x80, demand-zero paging, PIT at 100 Hz
usage: workloads=NAME[:N][,NAME[:N]...] or workloads=all; iterations=N (default 100)
workloads: compute syscall int80 portio mmio pagefault ptemod cr3switch divzero cpuid rdtsc cli_sti clock
nothing to run: no workloads= on the command line
";

/// The documented differences of `platform` on QEMU 7.2 TCG: (vmscope's line, QEMU's line).
/// The XSDT is checked only when the RSDP is ACPI 2.0 (ours is; QEMU's pc machine has an
/// ACPI 1.0 RSDP), which prints nothing either way; OEM IDs are never printed.
pub const PLATFORM_QEMU_DIFFERENCES: [(&str, &str); 2] = [
    (
        "tsc-deadline: fired at the deadline, then IA32_TSC_DEADLINE read 0\n",
        "tsc-deadline: not offered by CPUID\n",
    ),
    (
        "x2apic: MSRs 0x802/0x803 read id 0 and version 0x14; self-IPI 0x83f, EOI 0x80b\n",
        "x2apic: not offered by CPUID\n",
    ),
];

/// What `paging-matrix` prints when every case passes: on the interpreter, and on QEMU 7.2
/// with `-cpu max` except for [`PAGING_MATRIX_QEMU_DIFFERENCE`].
pub const PAGING_MATRIX_TEXT: &str = "\
paging-matrix: the MMU checked from inside
ok   32-bit paging: 4 KiB page and 4 MiB PSE page translate
ok   32-bit paging: write to a read-only page with WP=1: #PF 0x3 and CR2
ok   32-bit paging: read of a not-present page: #PF 0x0
ok   32-bit paging: a write through a 4 MiB page sets its dirty bit
ok   PAE paging: 4 KiB page and 2 MiB page translate
ok   PAE paging: fetch from an XD page (EFER.NXE=1): #PF 0x11
ok   PAE paging: write to a read-only page with WP=1: #PF 0x3
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=0 SMAP=0 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=0 SMAP=0 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=1 SMAP=0 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=1 SMAP=0 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=0 SMAP=1 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=0 SMAP=1 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=1 SMAP=1 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=1 SMAP=1 AC=0
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=0 SMAP=0 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=0 SMAP=0 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=1 SMAP=0 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=1 SMAP=0 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=0 SMAP=1 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=0 SMAP=1 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=0 SMEP=1 SMAP=1 AC=1
ok   rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP=1 SMEP=1 SMAP=1 AC=1
ok   accessed bit set by a read; dirty bit not
ok   dirty bit set by a write
ok   write to a read-only page with WP=1: #PF 0x3; dirty bit stays clear
ok   INVLPG: the new mapping is used
ok   read of a not-present page: #PF 0x0
ok   not-present entry made present is used without INVLPG
ok   CR3 switch: each address space sees its own mapping
ok   CR3 switch: edits made while the space was not current are seen
ok   2 MiB page translates
ok   1 GiB page translates
ok   reserved bit (PS in a PML4E): #PF 0x9 (P+RSVD)
paging-matrix: 34 passed, 0 failed
";

/// QEMU 7.2 TCG reports a reserved-bit page fault with error code 0x8 (RSVD without P); the
/// SDM says RSVD "can be set only if bit 0 is also set", and vmscope and hardware push 0x9.
/// (vmscope's lines, QEMU's lines); QEMU then exits with 0x15.
pub const PAGING_MATRIX_QEMU_DIFFERENCE: (&str, &str) = (
    "ok   reserved bit (PS in a PML4E): #PF 0x9 (P+RSVD)\npaging-matrix: 34 passed, 0 failed\n",
    "FAIL reserved bit (PS in a PML4E): #PF 0x9 (P+RSVD)\n     got #PF code 0x00000008\npaging-matrix: 33 passed, 1 failed\n",
);

/// What `smc` prints: the checksums QEMU 7.2 (TCG), KVM (the cases run natively in ring 3)
/// and the interpreter agree on; each "ok" says the case also matched its own reference.
pub const SMC_TEXT: &str = "\
smc: self-modifying code in 64-bit ring 3
a1 store into a MOV's immediate, JMP to it (1000 passes): 0x8159fbc8 ok
a2 store into the next instruction, no branch (1000 passes): 0x38ec6950 ok
a3 store into the loop's first instruction (1000 passes): 0x0c4ec926 ok
a4 an ADD that rewrites its own immediate (64 passes): 0x06735134 ok
b  opcode, JMP target and Jcc of a hot function patched (24 rounds x 300 calls): 0x56a8e094 ok
c  stores to data in the running loop's page and cache line (100000 passes): 0xe282a720 ok
d1 REP MOVSB of 4 templates over a hot function (16 rounds x 300 calls): 0x716855b0 ok
d2 REP MOVSB over the next instructions, then JMP (64 passes): 0xbbc3afc0 ok
d3 REP MOVSB over the next instructions, no branch (64 passes): 0xbbc3afc0 ok
d4 5001-byte function over pages replaced by REP MOVSB, up and down (DF=1): 0x54e2211b ok
e  an instruction across a page boundary, patched in its second page (1000 passes): 0x29b08970 ok
f  code patched by PUSH, STOSQ, XCHG, LOCK CMPXCHG and BTC (200 passes): 0xd11e87c6 ok
smc: 12 cases, 0 failed
";

/// What `jit` prints (agreed by QEMU 7.2 TCG, KVM and the interpreter, like [`SMC_TEXT`]).
/// With `pte-in-code` on the command line it adds case 6 (page-walk A/D writes into code),
/// which QEMU and KVM pass and the interpreter does not yet (see `asm/jit.S`).
pub const JIT_TEXT: &str = "\
jit: code generated at run time in 64-bit ring 3, through two mappings
1 512 functions generated, called, regenerated in place (8 rounds, 2 mappings): 0xfe4ef1c6 ok
2 the same bytes at two virtual addresses, RIP-relative LEA (4 pages x 8 calls): 0x4e6ba000 ok
3 a virtual page remapped between two physical pages of code (32 passes): 0xb4f9a4c0 ok
4 a chain of 64 generated blocks, one rewritten per round (32 rounds x 10 calls): 0x231ffcc0 ok
5 an instruction across two pages, its second page remapped (16 passes): 0xb28c71e0 ok
jit: 5 cases, 0 failed
";

/// What `hardened` prints: its checks with the values gcc's code computed.
const HARDENED_TEXT: &str = "hardened: a gcc -fcf-protection=full kernel in long mode\n\
indirect calls: ok 0000000000012480\n\
jump table: ok 000000000044a48a\n\
recursion: ok 0000000000001a6d\n\
stack canary: ok 4c36f692d90a0d9c\n\
64-bit division: ok 000548fd367c8280\n\
hardened: all checks passed\n";

/// What `sensitive` prints on vmscope's engines (interp, bt) and on KVM with VT-x or AMD-V:
/// vmscope's CPU model offers no UMIP, so SGDT, SIDT, SLDT, STR and SMSW run in ring 3
/// without a trap and show the guest's own ring-0 state.
pub const SENSITIVE_TEXT: &str = "\
sensitive: a guest kernel deprivileged to ring 3 (IOPL 0); ring 0 is the VMM
privileged instructions trap, and the VMM emulates them:
  cli        #GP, the VMM emulates it: the guest's virtual IF is now 0
  sti        #GP, the VMM emulates it: the guest's virtual IF is now 1
  lgdt       #GP, the VMM emulates it: the guest's virtual GDTR is now base 0x0000000000300000 limit 0x007f
sensitive but not privileged: no trap, and the real machine shows through:
  mov %cs    no trap: CS = 0x0023, RPL 3: the kernel sees it is not in ring 0
  sgdt       no trap: base 0x0000000000101000 limit 0x003f, not what the guest loaded
  sidt       no trap: base 0x0000000000105000 limit 0x01ff
  sldt       no trap: LDTR = 0x0000
  str        no trap: TR = 0x0028
  smsw       no trap: CR0[15:0] = 0x0011
  lar %cs    no trap: descriptor present 1, DPL 3
  pushf      no trap: RFLAGS.IF = 0, IOPL = 0 although the guest's STI set its virtual IF to 1
  popf IF=1  no trap: RFLAGS.IF = 0, IOPL = 0: the change was dropped silently
the VMM saw 3 traps in 12 probes
";

// ANCHOR: sensitive_pvm
/// How `sensitive` differs under PVM (KVM in software, guest ring 3 on the host CPU):
/// (vmscope's line, PVM's line). CS reads the host's user code selector 0x33, and PUSHF the
/// host's real IF = 1. SGDT, SIDT, SLDT, STR and SMSW print the guest's own values: the host
/// CPU has UMIP on, so they fault in the host and PVM emulates them invisibly.
pub const SENSITIVE_PVM_DIFFERENCES: [(&str, &str); 3] = [
    (
        "  mov %cs    no trap: CS = 0x0023, RPL 3: the kernel sees it is not in ring 0\n",
        "  mov %cs    no trap: CS = 0x0033, RPL 3: the kernel sees it is not in ring 0\n",
    ),
    (
        "  pushf      no trap: RFLAGS.IF = 0, IOPL = 0 although the guest's STI set its virtual IF to 1\n",
        "  pushf      no trap: RFLAGS.IF = 1, IOPL = 0 although the guest's STI set its virtual IF to 1\n",
    ),
    (
        "  popf IF=1  no trap: RFLAGS.IF = 0, IOPL = 0: the change was dropped silently\n",
        "  popf IF=1  no trap: RFLAGS.IF = 1, IOPL = 0: the change was dropped silently\n",
    ),
];
// ANCHOR_END: sensitive_pvm

static GUESTS: [Guest; 16] = [
    Guest {
        name: "demo",
        file_name: "demo.elf",
        kind: GuestKind::Multiboot,
        image: DEMO_ELF,
        description: "The built-in demo: hello64 narrating each step, from the loader's 32-bit \
                      protected mode through paging and long mode to timer interrupts, ring 3 and \
                      back; ends with CLI; HLT.",
        expected_serial: DEMO_TEXT,
        exit_value: None,
        ending: Ending::HaltWithInterruptsDisabled,
    },
    Guest {
        name: "hello-real",
        file_name: "hello-real.rom",
        kind: GuestKind::FirmwareRom,
        image: HELLO_REAL_ROM,
        description: "Firmware ROM started at the reset vector F000:FFF0: sets up a real-mode \
                      stack, installs an IVT entry for INT 0x60 and prints through it.",
        expected_serial: "Hello from real mode!\n\
                          INT 0x60 went through the IVT entry at 0000:0180 -> handler at f000:8000\n",
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "hello32",
        file_name: "hello32.elf",
        kind: GuestKind::Multiboot,
        image: HELLO32_ELF,
        description: "Multiboot kernel: own GDT, 32-bit paging (page directory + page table \
                      identity-mapping 4 MiB), then prints the Multiboot command line and mem_upper.",
        expected_serial: "Hello from 32-bit protected mode with paging!\n\
                          command line: hello from the command line\n\
                          mem_upper: 64512 KiB\n",
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "hello-aout",
        file_name: "hello-aout.bin",
        kind: GuestKind::Multiboot,
        image: HELLO_AOUT_BIN,
        description: "hello32 linked as a flat binary whose Multiboot header uses the a.out \
                      kludge (load/bss/entry addresses in the header), for the loader's other path.",
        expected_serial: "Hello from an a.out-kludge kernel!\n\
                          command line: hello from the command line\n\
                          mem_upper: 64512 KiB\n",
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "sieve32",
        file_name: "sieve32.elf",
        kind: GuestKind::Multiboot,
        image: SIEVE32_ELF,
        description: "The CPU-speed benchmark: a sieve of Eratosthenes over a 1 MiB byte array \
                      in 32-bit protected mode, paging off, repeated `rounds=N` times (default \
                      1) with no I/O in its loops; prints the primes below 2^20 (82025). \
                      Exits 0x1E on a malformed rounds=.",
        expected_serial: "sieve32: 82025 primes below 1048576, 1 round\n",
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "testdev",
        file_name: "testdev.elf",
        kind: GuestKind::Multiboot,
        image: TESTDEV_ELF,
        description: "Checks QEMU's test devices from the inside: pc-testdev's scratch register, \
                      byte window, device memory and IRQ lines, and pci-testdev's write tests \
                      on both BARs. Run with `--device pc-testdev --device pci-testdev` (QEMU: \
                      `-device pc-testdev -device pci-testdev`); without them it reports both \
                      absent.",
        expected_serial: "pc-testdev: absent\npci-testdev: absent\n",
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "hello64",
        file_name: "hello64.elf",
        kind: GuestKind::Multiboot,
        image: HELLO64_ELF,
        description: "Switches itself to long mode (4-level paging, EFER.LME), loads IDT and TSS, \
                      counts 5 PIT interrupts through the PIC, enters ring 3 with IRETQ, prints via \
                      SYSCALL and comes back with INT 0x80. Exceptions exit with 0x11.",
        expected_serial: HELLO64_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "triple-fault",
        file_name: "triple-fault.elf",
        kind: GuestKind::Multiboot,
        image: TRIPLE_FAULT_ELF,
        description: "Loads an IDT with limit 0 and executes INT3: #BP -> #GP -> #DF -> triple \
                      fault (shutdown).",
        expected_serial: "about to triple fault\n",
        exit_value: None,
        ending: Ending::TripleFault,
    },
    Guest {
        name: "ud",
        file_name: "ud.elf",
        kind: GuestKind::Multiboot,
        image: UD_ELF,
        description: "Executes the x87 instruction FSIN at 0x100010 with a #UD handler installed. \
                      Every engine has an x87, as CPUs and QEMU do: it prints \"fsin executed \
                      without #UD\" and exits with 0x12. Built with --defsym PROBE_UD2=1 the \
                      probe is UD2 and the handler prints \"caught #UD at 0x00100010\".",
        expected_serial: "fsin executed without #UD\n",
        exit_value: Some(exit::PROBE_RAN),
        ending: Ending::DebugExit(exit::PROBE_RAN),
    },
    Guest {
        name: "paging-matrix",
        file_name: "paging-matrix.elf",
        kind: GuestKind::Multiboot,
        image: PAGING_MATRIX_ELF,
        description: "Checks the MMU from inside: 32-bit (4 MiB PSE) and PAE paging with WP, XD \
                      and not-present faults (skipped with the command line nolegacy), then in \
                      long mode every combination of U/S, \
                      R/W, XD, CR0.WP, SMEP, SMAP, RFLAGS.AC and CPL for reads, writes and \
                      fetches, A/D bits, INVLPG, CR3 switches, 2 MiB/1 GiB pages, a reserved \
                      bit. Exits 0x15 if a case fails.",
        expected_serial: PAGING_MATRIX_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "platform",
        file_name: "platform.elf",
        kind: GuestKind::Multiboot,
        image: PLATFORM_ELF,
        description: "Uses the PC platform as kernels written for QEMU do: fw_cfg (signature, CPU \
                      count, file directory), the ACPI tables (RSDP scan, RSDT/XSDT, MADT, FADT, \
                      DSDT), the local APIC (self-IPI, TPR and CR8, one-shot/periodic/TSC-deadline timer, \
                      x2APIC), the PM timer and the IOAPIC (edge and level). Exits 0x14 on a failure.",
        expected_serial: PLATFORM_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "smc",
        file_name: "smc.elf",
        kind: GuestKind::Multiboot,
        image: SMC_ELF,
        description: "Self-modifying code in 64-bit ring 3: stores into the running block \
                      (after a JMP, into the next instruction, into the loop head, an ADD \
                      rewriting its own immediate), a hot function's opcode, JMP target and Jcc \
                      patched, data stores in a code page, REP MOVSB over code (also DF=1, \
                      5 KiB across pages), an instruction across a page boundary patched in its \
                      second page, patches by PUSH, STOSQ, XCHG, LOCK CMPXCHG and BTC. Each \
                      case checks itself; exits 0x18 if one fails.",
        expected_serial: SMC_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "jit",
        file_name: "jit.elf",
        kind: GuestKind::Multiboot,
        image: JIT_ELF,
        description: "A tiny JIT in 64-bit ring 3: generates 512 functions, calls them and \
                      regenerates them in place, writing and running through two virtual \
                      mappings of one buffer; RIP-relative code at two addresses, a page \
                      remapped with INVLPG, a chain of generated blocks rewritten while hot, an \
                      instruction across two pages whose second page is remapped. Checked \
                      against an interpreter of the same code; exits 0x18 on a mismatch.",
        expected_serial: JIT_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "sensitive",
        file_name: "sensitive.elf",
        kind: GuestKind::Multiboot,
        image: SENSITIVE_ELF,
        description: "Why classic x86 was not virtualizable: a guest kernel run deprivileged in \
                      ring 3 with IOPL 0, its ring 0 playing a trap-and-emulate VMM. CLI, STI and \
                      LGDT trap (#GP) and are emulated; SGDT, SIDT, SLDT, STR, SMSW, LAR, PUSHF, \
                      POPF and MOV from CS run without a trap and show the real machine.",
        expected_serial: SENSITIVE_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "hardened",
        file_name: "hardened.elf",
        kind: GuestKind::Multiboot,
        image: HARDENED_ELF,
        description: "A kernel in C, compiled as distributions compile code (gcc -O2 \
                      -fcf-protection=full -fstack-protector-strong): ENDBR64 at every function \
                      reached indirectly, a switch table, recursion, a stack canary, 64-bit \
                      division. Runs on CPUs without CET because ENDBR is a hint NOP there.",
        expected_serial: HARDENED_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
    Guest {
        name: "kernel",
        file_name: "kernel.elf",
        kind: GuestKind::Multiboot,
        image: KERNEL_ELF,
        description: "The teaching kernel behind `vmscope compare`: long mode, GDT/IDT/TSS, PIT \
                      interrupts, ring-3 tasks in their own address spaces, SYSCALL and INT 0x80, \
                      demand-zero page faults; runs the workloads named by \
                      `workloads=NAME[:N],... iterations=N` and prints one RESULT line each.",
        expected_serial: KERNEL_TEXT,
        exit_value: Some(exit::OK),
        ending: Ending::DebugExit(exit::OK),
    },
];

/// Every guest, the demo first.
pub fn all() -> &'static [Guest] {
    &GUESTS
}

/// Finds a guest by its short name (`hello64`) or its file name (`hello64.elf`).
pub fn by_name(name: &str) -> Option<&'static Guest> {
    GUESTS
        .iter()
        .find(|g| g.name == name || g.file_name == name)
}

#[cfg(test)]
mod tests;
