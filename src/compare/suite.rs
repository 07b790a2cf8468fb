//! The workload suite as the host knows it: names, what one operation is, how many to run on
//! each engine, the checksum each must produce, and the `RESULT` lines the kernel prints.
//! Teaches: a benchmark is only trustworthy if its answer is checked — here against values
//! computed independently in Rust, mirroring the guest code in `guests/kernel/`.

use super::engines::EngineId;

/// One workload of the teaching kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub name: &'static str,
    /// The privilege level its hot loop runs at (0 or 3).
    pub ring: u8,
    /// What one operation is, in a few words.
    pub op: &'static str,
    /// Default iterations per engine, in `EngineId::ALL` order (interp, bt, kvm,
    /// qemu-tcg, qemu-kvm, bochs): about 0.3 s each on the machines this was tuned on (KVM = PVM, where
    /// ring-0 code is interpreted by the host).
    pub iterations: [u64; ENGINES],
}

const ENGINES: usize = EngineId::ALL.len();

const fn w(name: &'static str, ring: u8, op: &'static str, iterations: [u64; ENGINES]) -> Workload {
    Workload {
        name,
        ring,
        op,
        iterations,
    }
}

/// The suite, in the kernel's table order (`guests/kernel/workloads.S`).
pub const SUITE: &[Workload] = &[
    w(
        "compute",
        3,
        "sieve + CRC-32 + xorshift round",
        [100, 300, 2_000, 2_000, 500, 300],
    ),
    w(
        "syscall",
        3,
        "SYSCALL/SYSRET round trip",
        [200_000, 600_000, 3_000, 100_000, 3_000, 750_000],
    ),
    w(
        "int80",
        3,
        "INT 0x80/IRETQ round trip",
        [200_000, 600_000, 3_000, 100_000, 1_000, 250_000],
    ),
    w(
        "portio",
        0,
        "OUT + IN on a null port",
        [300_000, 900_000, 10_000, 100_000, 10_000, 300_000],
    ),
    w(
        "mmio",
        0,
        "read of a null MMIO register",
        [300_000, 900_000, 20_000, 100_000, 20_000, 300_000],
    ),
    w(
        "pagefault",
        3,
        "demand-zero page fault",
        [50_000, 150_000, 500, 50_000, 300, 20_000],
    ),
    w(
        "ptemod",
        0,
        "PTE change + INVLPG + read",
        [300_000, 900_000, 30_000, 100_000, 20_000, 200_000],
    ),
    w(
        "cr3switch",
        0,
        "CR3 write + read",
        [300_000, 900_000, 30_000, 100_000, 20_000, 200_000],
    ),
    w(
        "divzero",
        3,
        "#DE to ring 0 and back",
        [100_000, 300_000, 4_000, 50_000, 1_000, 200_000],
    ),
    w(
        "cpuid",
        0,
        "CPUID leaf 0x80000001",
        [300_000, 900_000, 30_000, 100_000, 20_000, 1_500_000],
    ),
    w(
        "rdtsc",
        3,
        "RDTSC",
        [300_000, 900_000, 15_000, 1_000_000, 10_000, 4_000_000],
    ),
    w(
        "cli_sti",
        0,
        "CLI + STI",
        [500_000, 1_500_000, 30_000, 1_000_000, 30_000, 6_000_000],
    ),
    // Full virtualization reads the PIT (3 port accesses, 3 exits on KVM: ~55 µs on PVM);
    // with kvmclock (`--pv on`, and QEMU+KVM, which always offers it) memory + RDTSC.
    w(
        "clock",
        0,
        "clock read: PIT latch + 2 reads, or kvmclock",
        [250_000, 400_000, 6_000, 2_000_000, 15_000, 750_000],
    ),
];

/// Workloads of the teaching kernel that `compare` runs only when asked (`--workloads nmi`):
/// not in the suite (nor in the kernel's `workloads=all`), so the suite's table stays as it is.
pub const ON_REQUEST: &[Workload] = &[w(
    "nmi",
    0,
    "self-NMI: ICR write, NMI handler, IRETQ",
    [300_000, 900_000, 2_000, 100_000, 2_000, 200_000],
)];

/// Finds a workload of the suite, or one run on request, by name.
pub fn workload(name: &str) -> Option<&'static Workload> {
    SUITE.iter().chain(ON_REQUEST).find(|w| w.name == name)
}

impl Workload {
    /// The default iteration count on `engine`.
    pub fn default_iterations(&self, engine: EngineId) -> u64 {
        self.iterations[engine.index()]
    }
}

/// Why `compare` leaves `name` out on `engine` when it runs the whole suite (`None`: it runs).
/// Asked for explicitly (`--workloads`), it still runs, and its checksum shows the difference.
pub fn not_comparable(name: &str, engine: EngineId) -> Option<&'static str> {
    match (name, engine) {
        ("portio" | "mmio", EngineId::Bochs) => Some(
            "Bochs has no null device: unassigned ports and memory read all ones, not 0 as on \
             vmscope and QEMU, so the checksum differs",
        ),
        _ => None,
    }
}

/// Guest instructions in one operation, as the interpreter counts them, for workloads whose
/// instruction stream does not depend on the engine: engines that do not count instructions
/// (Bochs) report their `compute` speed as this × operations per second.
pub fn instructions_per_op(name: &str) -> Option<u64> {
    match name {
        // user_compute: sieve of 8192 + CRC-32 of 1 KiB + 4096 xorshift steps + the loop.
        "compute" => Some(COMPUTE_INSTRUCTIONS_PER_OP),
        _ => None,
    }
}

/// One round of `compute` on the interpreter (checked by tests/compare.rs).
pub const COMPUTE_INSTRUCTIONS_PER_OP: u64 = 217_196;

/// One `RESULT workload=… ops=… guest_tsc=… checksum=0x…` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    pub workload: String,
    pub ops: u64,
    pub guest_tsc: u64,
    pub checksum: u64,
}

/// Every RESULT line in `serial`, in order. Lines that start with `RESULT` but are malformed
/// are errors: a kernel that prints them is broken, and silently dropping them would hide it.
pub fn parse_results(serial: &str) -> Result<Vec<ResultLine>, String> {
    serial
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("RESULT "))
        .map(parse_result_line)
        .collect()
}

fn parse_result_line(line: &str) -> Result<ResultLine, String> {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| format!("RESULT line without {key}=: {line:?}"))
    };
    let number = |key: &str| {
        field(key)?
            .parse::<u64>()
            .map_err(|e| format!("{key}= in {line:?}: {e}"))
    };
    let checksum = field("checksum")?;
    let hex = checksum
        .strip_prefix("0x")
        .ok_or_else(|| format!("checksum= is not 0x-hexadecimal in {line:?}"))?;
    Ok(ResultLine {
        workload: field("workload")?.to_string(),
        ops: number("ops")?,
        guest_tsc: number("guest_tsc")?,
        checksum: u64::from_str_radix(hex, 16)
            .map_err(|e| format!("checksum= in {line:?}: {e}"))?,
    })
}

/// The checksum the kernel must report for `name` after `n` operations, computed here from
/// the definition in the guest source; `None` for a workload this host does not know.
pub fn expected_checksum(name: &str, n: u64) -> Option<u64> {
    let sum_i = |f: &dyn Fn(u64) -> u64| (0..n).fold(0u64, |acc, i| acc.wrapping_add(f(i)));
    // Two values read alternately, the first at op 0: ceil(n/2) of one, floor(n/2) of the other.
    let alternate = |a: u64, b: u64| a * n.div_ceil(2) + b * (n / 2);
    Some(match name {
        "compute" => (0..n).fold(0u64, |acc, i| acc.rotate_left(7) ^ compute_round(i)),
        "syscall" | "int80" => sum_i(&|i| i + 1),
        // The null device reads 0, so only the count of ops is implicit in the time.
        "portio" | "mmio" => 0,
        // Each fault reads 0 (XOR i), plus PF_PAGES for every release after a full window.
        "pagefault" => sum_i(&|i| i).wrapping_add(PF_PAGES * (n.saturating_sub(1) / PF_PAGES)),
        "ptemod" => alternate(0x1111, 0x2222),
        "cr3switch" => alternate(0x3333, 0x4444),
        "divzero" => sum_i(&|i| i ^ 0xDEDE),
        // rdtsc and clock: one per read not below the previous one — all of them.
        "cpuid" | "rdtsc" | "cli_sti" | "clock" => n,
        "dirty" => dirty_checksum(n),
        // NMIs counted | the deepest the handlers nested (1: each waited for an IRETQ) << 32.
        "nmi" => n | u64::from(n > 0) << 32,
        _ => return None,
    })
}

/// `dirty:N`'s checksum (`guests/kernel/dirty.S`): tick i stores i << 16 | j in slot i mod 512
/// of page (16i + j) mod 1024, j < 16; then h = h × 31 + q over the area's qwords in order.
fn dirty_checksum(n: u64) -> u64 {
    const PAGES: u64 = 1024;
    const PER_TICK: u64 = 16;
    let mut area = vec![0u64; (PAGES * 512) as usize];
    for i in 0..n {
        for j in 0..PER_TICK {
            let page = (i * PER_TICK + j) % PAGES;
            area[(page * 512 + i % 512) as usize] = i << 16 | j;
        }
    }
    area.iter()
        .fold(0u64, |h, q| h.wrapping_mul(31).wrapping_add(*q))
}

/// pagefault's window (`PF_PAGES` in `guests/kernel/layout.inc`).
const PF_PAGES: u64 = 128;

/// One round of `compute` for iteration `i` (`user_compute` in `guests/kernel/user.S`).
pub fn compute_round(i: u64) -> u64 {
    (sieve_primes(8192) as u64)
        .wrapping_add(crc32_round(i) as u64)
        .wrapping_add(xorshift_round(i))
}

/// How many primes are below `limit` (Eratosthenes, as `u_sieve`).
fn sieve_primes(limit: usize) -> u32 {
    let mut crossed = vec![false; limit];
    let mut count = 0;
    for p in 2..limit {
        if !crossed[p] {
            count += 1;
            (p * p..limit).step_by(p).for_each(|m| crossed[m] = true);
        }
    }
    count
}

/// CRC-32 (IEEE, reflected 0xEDB88320) of the 1 KiB buffer `(k * 31 + i) mod 256`.
fn crc32_round(i: u64) -> u32 {
    let mut crc = u32::MAX;
    for k in 0..1024u32 {
        crc ^= k.wrapping_mul(31).wrapping_add(i as u32) & 0xFF;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// 4096 steps of xorshift64 (13, 7, 17) from `i + 1`.
fn xorshift_round(i: u64) -> u64 {
    let mut x = i.wrapping_add(1);
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

// ---- the disk workloads (`guests/kernel/disk.S`) ------------------------------------------
// They need a disk, so they are not in SUITE (and not in the kernel's `workloads=all`); their
// answers depend on the disk and on `request=`, so they have references of their own.

/// The teaching kernel's workloads that need a disk (`--disk`).
pub const DISK_WORKLOADS: [&str; 2] = ["disk-read", "disk-write"];
/// The multiplier of the disk checksum: `h = (h + word) × DISK_FOLD` over 8-byte words.
pub const DISK_FOLD: u64 = 0x9E37_79B9_7F4A_7C15;
/// disk-write's pattern: each 8-byte word is its byte offset on the disk XOR this.
pub const DISK_WRITE_XOR: u64 = 0xD15C_0000_D15C_0000;
/// `request=` when the command line does not say.
pub const DISK_DEFAULT_REQUEST: u64 = 4096;

/// Byte `offset` of the images the host makes for the disk workloads: 8-byte word k is
/// splitmix64(k), little-endian — every sector different, so a misplaced one shows.
pub fn disk_pattern(offset: u64) -> u8 {
    (splitmix64(offset / 8) >> (8 * (offset % 8))) as u8
}

fn splitmix64(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A disk image of `bytes` bytes holding [`disk_pattern`].
pub fn disk_image(bytes: u64) -> Vec<u8> {
    (0..bytes / 8)
        .flat_map(|k| splitmix64(k).to_le_bytes())
        .chain((bytes / 8 * 8..bytes).map(disk_pattern))
        .collect()
}

/// Writes [`disk_image`] to `path` (a whole number of sectors: `bytes` is rounded down).
pub fn write_disk_image(path: &std::path::Path, bytes: u64) -> std::io::Result<()> {
    std::fs::write(path, disk_image(bytes / 512 * 512))
}

/// The word disk-write puts at byte `offset` (a multiple of 8) of the disk.
pub fn disk_write_word(offset: u64) -> u64 {
    offset ^ DISK_WRITE_XOR
}

/// Where the kernel's `n` requests of `request` bytes start on a disk of `disk_bytes`: at 0,
/// then each where the last ended, back at 0 before one that would run past the end.
pub fn disk_request_offsets(disk_bytes: u64, request: u64, n: u64) -> Vec<u64> {
    let mut pos = 0;
    (0..n)
        .map(|_| {
            let at = pos;
            pos += request;
            if pos + request > disk_bytes {
                pos = 0;
            }
            at
        })
        .collect()
}

fn fold_words(acc: u64, bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(acc, |h, w| {
        h.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()))
            .wrapping_mul(DISK_FOLD)
    })
}

/// What disk-read folds into its checksum (the kernel's `verify=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskVerify {
    /// Every 8-byte word (`verify=words`, the default).
    Words,
    /// The first word of every 512-byte sector (`verify=sectors`).
    Sectors,
}

impl DiskVerify {
    /// The kernel's command-line word for it.
    pub fn word(self) -> &'static str {
        match self {
            DiskVerify::Words => "verify=words",
            DiskVerify::Sectors => "verify=sectors",
        }
    }
}

/// The checksum disk-read or disk-write reports after `n` requests of `request` bytes on a
/// disk that held `disk` before the run; `None` for another workload, or a request size the
/// kernel refuses (not a multiple of 512, larger than the disk).
pub fn expected_disk_checksum(name: &str, n: u64, request: u64, disk: &[u8]) -> Option<u64> {
    expected_disk_checksum_with(name, n, request, disk, DiskVerify::Words)
}

/// [`expected_disk_checksum`] for a disk-read that folds what `verify` says.
pub fn expected_disk_checksum_with(
    name: &str,
    n: u64,
    request: u64,
    disk: &[u8],
    verify: DiskVerify,
) -> Option<u64> {
    let len = disk.len() as u64 / 512 * 512;
    if request == 0 || !request.is_multiple_of(512) || request > len {
        return None;
    }
    let offsets = disk_request_offsets(len, request, n);
    match name {
        "disk-read" => Some(offsets.iter().fold(0, |h, &at| {
            let data = &disk[at as usize..(at + request) as usize];
            match verify {
                DiskVerify::Words => fold_words(h, data),
                DiskVerify::Sectors => data
                    .chunks_exact(512)
                    .fold(h, |h, sector| fold_words(h, &sector[..8])),
            }
        })),
        "disk-write" => Some(offsets.iter().fold(0, |h, &at| {
            (at..at + request).step_by(8).fold(h, |h, o| {
                h.wrapping_add(disk_write_word(o)).wrapping_mul(DISK_FOLD)
            })
        })),
        _ => None,
    }
}

/// What a disk that held `before` holds after disk-write's `n` requests of `request` bytes:
/// the pattern where a request wrote, the old bytes everywhere else.
pub fn disk_after_write(before: &[u8], request: u64, n: u64) -> Vec<u8> {
    let mut after = before.to_vec();
    let len = before.len() as u64 / 512 * 512;
    for at in disk_request_offsets(len, request, n) {
        for o in (at..at + request).step_by(8) {
            after[o as usize..o as usize + 8].copy_from_slice(&disk_write_word(o).to_le_bytes());
        }
    }
    after
}

// ---- console-write (`guests/kernel/console.S`) --------------------------------------------
// Lines through whichever console the kernel prints on (`console=uart|virtio`); not in SUITE.

/// The workload that prints `n` lines through the kernel's console.
pub const CONSOLE_WORKLOAD: &str = "console-write";
/// Bytes per console-write line, its '\n' included.
pub const CONSOLE_LINE_BYTES: u64 = 64;
const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01B3;

/// Line `i` exactly as console-write prints it: "line 0000002a: qrst…ijkl\n" — the index in
/// 8 hex digits, then 48 letters from 'a' + i mod 26 on.
pub fn console_line(i: u64) -> String {
    let letters: String = (0..CONSOLE_LINE_BYTES - 16)
        .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
        .collect();
    format!("line {:08x}: {letters}\n", i as u32)
}

/// console-write's checksum after `n` lines: every line's eight 8-byte words (little-endian)
/// folded as `h = (h ^ word) × FNV_PRIME` from `FNV_OFFSET` (FNV-1a, a word at a time).
pub fn expected_console_checksum(n: u64) -> u64 {
    let mut h = FNV_OFFSET;
    for i in 0..n {
        for word in console_line(i).as_bytes().chunks_exact(8) {
            h = (h ^ u64::from_le_bytes(word.try_into().unwrap())).wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// Checks that `serial` holds console-write's `n` lines intact, in order, one after the
/// other: what arrived on the host's side of the console, byte for byte.
pub fn check_console_lines(serial: &str, n: u64) -> Result<(), String> {
    let want: String = (0..n).map(console_line).collect();
    if want.is_empty() || serial.contains(&want) {
        return Ok(());
    }
    let got: Vec<&str> = serial
        .split_inclusive('\n')
        .filter(|l| l.starts_with("line "))
        .collect();
    for i in 0..n {
        let expected = console_line(i);
        match got.get(i as usize) {
            Some(line) if *line == expected => {}
            Some(line) => return Err(format!("line {i}: got {line:?}, want {expected:?}")),
            None => return Err(format!("{} of {n} lines arrived", got.len())),
        }
    }
    Err(format!(
        "the {n} lines are all there but not one after the other"
    ))
}

// ---- rng-read (`guests/kernel/rng.S`) -----------------------------------------------------
// Requests to a virtio-rng (`--virtio-rng`); not in SUITE (it needs the device).

/// The workload that asks the virtio-rng for `n` buffers.
pub const RNG_WORKLOAD: &str = "rng-read";
/// Bytes the kernel asks for per request (`RNG_REQUEST` in `guests/kernel/rng.S`).
pub const RNG_REQUEST_BYTES: u64 = 64;

/// rng-read's checksum after `n` requests to a virtio-rng seeded with `seed`: the device
/// fills each buffer with consecutive `SplitMix64::new(seed)` outputs, little-endian, from the
/// start of the stream (the kernel resets the device before each rng-read), and the kernel
/// folds every word as console-write does, `h = (h ^ word) × FNV_PRIME` from `FNV_OFFSET`.
pub fn expected_rng_checksum(seed: u64, n: u64) -> u64 {
    let mut rng = devices::virtio::rng::SplitMix64::new(seed);
    (0..n * (RNG_REQUEST_BYTES / 8)).fold(FNV_OFFSET, |h, _| {
        (h ^ rng.next_u64()).wrapping_mul(FNV_PRIME)
    })
}

/// `ping:N`'s checksum when every reply came back (and `pong:N`'s): each echo payload is seven
/// 8-byte words, word i of sequence number s (1..=N) = s << 32 | i, folded as console-write's.
pub fn expected_ping_checksum(n: u64) -> u64 {
    (1..=n).fold(FNV_OFFSET, |h, seq| {
        (0..7).fold(h, |h, i| (h ^ (seq << 32 | i)).wrapping_mul(FNV_PRIME))
    })
}

/// `udp-send:N`'s (and `udp-recv:N`'s) checksum: 1024-byte payloads, word i of datagram k
/// (0..N) = k << 32 | i.
pub fn expected_udp_checksum(n: u64) -> u64 {
    (0..n).fold(FNV_OFFSET, |h, k| {
        (0..128).fold(h, |h, i| (h ^ (k << 32 | i)).wrapping_mul(FNV_PRIME))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_checksums_match_the_kernel() {
        // Printed by the teaching kernel on QEMU (tests/net_guest_qemu.rs) and on vmscope's
        // engines (tests/net.rs): ping:5/pong:5, udp-send:200/udp-recv:200.
        assert_eq!(expected_ping_checksum(5), 0x364d_586e_af16_8d4c);
        assert_eq!(expected_udp_checksum(200), 0xb52d_5c72_77a2_cf25);
        assert_eq!(expected_ping_checksum(0), FNV_OFFSET);
    }

    #[test]
    fn rng_read_checksum_matches_the_kernel() {
        // Printed by the teaching kernel on interp, bt and kvm, virtio-pci and virtio-mmio:
        // `--virtio-rng [--virtio-rng-seed 1] --cmdline workloads=rng-read:16,rng-read:3`.
        assert_eq!(expected_rng_checksum(0, 16), 0x536e_b97d_cacf_09d2);
        assert_eq!(expected_rng_checksum(0, 3), 0xf27c_4b95_1265_ba10);
        assert_eq!(expected_rng_checksum(1, 3), 0x3518_baad_2ad0_0fb6);
        assert_eq!(expected_rng_checksum(7, 0), FNV_OFFSET);
        // SplitMix64's first output from seed 0 (the published reference value), folded once
        // per word: the first request's eight words.
        let mut rng = devices::virtio::rng::SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        let one = (1..8).fold(
            (FNV_OFFSET ^ 0xe220_a839_7b1d_cdaf).wrapping_mul(FNV_PRIME),
            |h, _| (h ^ rng.next_u64()).wrapping_mul(FNV_PRIME),
        );
        assert_eq!(expected_rng_checksum(0, 1), one);
        assert_ne!(expected_rng_checksum(0, 4), expected_rng_checksum(1, 4));
    }

    #[test]
    fn console_write_lines_and_checksum_match_the_kernel() {
        // Printed by the teaching kernel on interp: workloads=console-write:3.
        assert_eq!(
            console_line(2),
            "line 00000002: cdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwx\n"
        );
        assert_eq!(console_line(42).len() as u64, CONSOLE_LINE_BYTES);
        assert_eq!(expected_console_checksum(3), 0x2a9f_8915_1148_0807);
        let serial: String = (0..3).map(console_line).collect();
        assert!(check_console_lines(&format!("banner\n{serial}RESULT\n"), 3).is_ok());
        let broken = serial.replace("line 00000001: b", "line 00000001: X");
        let e = check_console_lines(&broken, 3).unwrap_err();
        assert!(e.starts_with("line 1: got"), "{e}");
        assert!(check_console_lines(&serial, 4)
            .unwrap_err()
            .contains("3 of 4"));
    }

    #[test]
    fn the_pieces_of_compute_are_the_textbook_algorithms() {
        assert_eq!(sieve_primes(8192), 1028);
        assert_eq!(sieve_primes(100), 25);
        // The standard check value of CRC-32 is over "123456789"; our buffer differs, so
        // check the bitwise loop on that input through the same step.
        let mut crc = u32::MAX;
        for b in b"123456789" {
            crc ^= *b as u32;
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
        assert_eq!(!crc, 0xCBF4_3926);
    }

    #[test]
    fn checksums_match_values_the_kernel_printed_on_every_engine() {
        // Seen from interp, kvm, qemu-tcg and qemu-kvm with iterations=10 (and 3 for compute).
        assert_eq!(expected_checksum("compute", 10), Some(0x83080fcc67c96207));
        assert_eq!(expected_checksum("compute", 3), Some(0x45c4127ea6529233));
        assert_eq!(expected_checksum("syscall", 10), Some(0x37));
        assert_eq!(expected_checksum("pagefault", 10), Some(0x2d));
        assert_eq!(expected_checksum("ptemod", 10), Some(0xffff));
        assert_eq!(expected_checksum("cr3switch", 3), Some(0xaaaa));
        assert_eq!(expected_checksum("divzero", 10), Some(0x8b489));
        assert_eq!(expected_checksum("cli_sti", 7), Some(7));
        // Measured from the guest on interp and kvm (`workloads=dirty:20`, `dirty:100`).
        assert_eq!(expected_checksum("dirty", 20), Some(0xfc0252f2090ad600));
        assert_eq!(expected_checksum("dirty", 100), Some(0x2feea14380fc2e00));
        assert_eq!(expected_checksum("clock", 50), Some(0x32));
        assert_eq!(expected_checksum("no-such-workload", 1), None);
        // pagefault adds each release's count: the first after op 128, the next after 256.
        let base = |n: u64| (0..n).sum::<u64>();
        assert_eq!(expected_checksum("pagefault", 128), Some(base(128)));
        assert_eq!(expected_checksum("pagefault", 129), Some(base(129) + 128));
        assert_eq!(expected_checksum("pagefault", 257), Some(base(257) + 256));
    }

    #[test]
    fn clock_counts_every_read_that_did_not_go_back_in_time() {
        // k_clock in guests/kernel/work_kernel.S: time never runs backwards, so every read
        // counts, whichever clock the kernel found (PIT or kvmclock).
        for n in [0, 1, 5_000, 250_000] {
            assert_eq!(expected_checksum("clock", n), Some(n));
        }
        let clock = workload("clock").unwrap();
        assert_eq!(clock.ring, 0);
        assert_eq!(
            SUITE.last(),
            Some(clock),
            "the kernel's table ends with clock"
        );
    }

    #[test]
    fn result_lines_parse_and_malformed_ones_are_errors() {
        let serial = "boot banner\r\nRESULT workload=syscall ops=10 guest_tsc=416 checksum=0x0000000000000037\r\nkernel: done\n";
        let lines = parse_results(serial).unwrap();
        assert_eq!(
            lines,
            vec![ResultLine {
                workload: "syscall".into(),
                ops: 10,
                guest_tsc: 416,
                checksum: 0x37
            }]
        );
        assert!(parse_results("RESULT workload=x ops=1 guest_tsc=2 checksum=37\n").is_err());
        assert!(parse_results("RESULT workload=x ops=-1 guest_tsc=2 checksum=0x1\n").is_err());
        assert!(parse_results("RESULT workload=x guest_tsc=2 checksum=0x1\n").is_err());
    }

    #[test]
    fn disk_requests_wrap_before_the_end_and_checksums_follow_the_data() {
        // 3 requests of 512 fit a 1536-byte disk; the fourth starts over at 0.
        assert_eq!(disk_request_offsets(1536, 512, 5), [0, 512, 1024, 0, 512]);
        // 1024-byte requests on 1536 bytes: the second would run past the end.
        assert_eq!(disk_request_offsets(1536, 1024, 3), [0, 0, 0]);
        let disk = disk_image(4096);
        assert_eq!(disk.len(), 4096);
        assert!((0..4096).all(|i| disk[i] == disk_pattern(i as u64)));
        // disk-read of a disk disk-write has written = disk-write's checksum.
        let written = disk_after_write(&disk, 1024, 6);
        assert_eq!(
            expected_disk_checksum("disk-read", 6, 1024, &written),
            expected_disk_checksum("disk-write", 6, 1024, &disk)
        );
        assert_ne!(
            expected_disk_checksum("disk-read", 6, 1024, &disk),
            expected_disk_checksum("disk-read", 6, 1024, &written)
        );
        assert_eq!(expected_disk_checksum("disk-read", 1, 1000, &disk), None);
        assert_eq!(expected_disk_checksum("disk-read", 1, 8192, &disk), None);
        assert_eq!(expected_disk_checksum("compute", 1, 512, &disk), None);
        for name in DISK_WORKLOADS {
            assert!(
                workload(name).is_none(),
                "{name} is not in the default suite"
            );
            assert_eq!(expected_checksum(name, 1), None);
        }
    }

    #[test]
    fn every_suite_workload_has_a_reference_and_defaults() {
        for w in SUITE {
            assert!(expected_checksum(w.name, 5).is_some(), "{}", w.name);
            assert!(w.iterations.iter().all(|&n| n > 0), "{}", w.name);
            assert!(w.ring == 0 || w.ring == 3);
        }
        assert_eq!(
            workload("cpuid")
                .unwrap()
                .default_iterations(EngineId::Interp),
            300_000
        );
    }
}
