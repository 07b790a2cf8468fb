//! Criterion benchmark of the interpreter and the binary translator on a compute-bound guest.
//! Teaches: measure guest instructions per second on a fixed workload, never in a test.
//!
//! The workload is a sieve of Eratosthenes; both engines retire exactly the same instructions,
//! so `interp/sieve32` and `bt/sieve32` compare per-instruction cost directly.
//!
//! The guest (32-bit protected mode, flat segments, paging off) is assembled with GNU `as` when
//! the benchmark starts, like the interpreter tests do. Criterion reports the throughput in
//! "elements" per second, where an element is one retired guest instruction.

use std::process::Command;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use emulator::bt::BinaryTranslator;
use emulator::cpu::{reg, CpuState, DescriptorTable, Seg, Segment};
use emulator::interp::Interpreter;
use emulator::{Engine, Exit, Machine, RunLimit};

/// Sieve of Eratosthenes below 100,000 with byte flags at 2 MiB; EAX = number of primes (9592).
const SIEVE: &str = r#"
    .set N, 100000
    .set FLAGS, 0x200000
    xor ecx, ecx
clear:
    mov byte ptr [ecx + FLAGS], 1
    inc ecx
    cmp ecx, N
    jb clear
    mov ebx, 2
    xor esi, esi
outer:
    cmp byte ptr [ebx + FLAGS], 0
    je next
    inc esi
    mov eax, ebx
    imul eax, ebx
    cmp eax, N
    jae next
mark:
    mov byte ptr [eax + FLAGS], 0
    add eax, ebx
    cmp eax, N
    jb mark
next:
    inc ebx
    cmp ebx, N
    jb outer
    mov eax, esi
    hlt
"#;

const CODE_ADDR: u64 = 0x10000;

fn assemble(source: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("vmscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (src, obj, bin) = (dir.join("b.s"), dir.join("b.o"), dir.join("b.bin"));
    std::fs::write(&src, format!(".intel_syntax noprefix\n.code32\n{source}\n")).expect("write");
    let ok = Command::new("as")
        .args(["--32", "-o"])
        .arg(&obj)
        .arg(&src)
        .status()
        .expect("GNU as is needed for this benchmark (Debian package binutils)");
    assert!(ok.success(), "assembling the benchmark guest failed");
    let ok = Command::new("ld")
        .args(["-m", "elf_i386", "--oformat", "binary", "-e", "0", "-Ttext"])
        .arg(format!("{CODE_ADDR:#x}"))
        .arg("-o")
        .arg(&bin)
        .arg(&obj)
        .status()
        .expect("GNU ld");
    assert!(ok.success(), "linking the benchmark guest failed");
    let bytes = std::fs::read(&bin).expect("read binary");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// A 32-bit flat protected-mode machine with `code` at CODE_ADDR.
fn machine(code: &[u8]) -> Machine {
    let mut m = Machine::new(4 << 20).expect("RAM");
    m.ram.write(CODE_ADDR, code).expect("code fits");
    m.ram
        .write_le(0x1008, 8, 0x00CF_9A00_0000_FFFF)
        .expect("gdt");
    m.ram
        .write_le(0x1010, 8, 0x00CF_9200_0000_FFFF)
        .expect("gdt");
    m.cpu = CpuState::multiboot_entry(CODE_ADDR as u32, 0);
    m.cpu.seg = [Segment::flat32(0x10, false); 6];
    m.cpu.seg[Seg::Cs as usize] = Segment::flat32(0x08, true);
    m.cpu.gdtr = DescriptorTable {
        base: 0x1000,
        limit: 23,
    };
    m.cpu.gpr[reg::RSP] = 0x9000;
    m
}

/// Runs the sieve to its HLT on `engine`; returns the retired instruction count (and the
/// machine and engine, so that criterion drops them outside the timed region).
fn run_sieve<E: Engine>((mut m, mut engine): (Machine, E)) -> (u64, Machine, E) {
    let exit = engine
        .run(&mut m, RunLimit::instructions(100_000_000))
        .expect("engine");
    assert_eq!(exit, Exit::Shutdown);
    assert_eq!(m.cpu.gpr[reg::RAX], 9592, "the sieve counts 9592 primes");
    (m.stats.instructions, m, engine)
}

/// One group per engine, e.g. `interp/sieve32`, with a fresh engine (empty caches) per sample.
fn bench_engine<E: Engine>(c: &mut Criterion, name: &str, code: &[u8], make: fn() -> E) {
    let setup = || (machine(code), make());
    let instructions = run_sieve(setup()).0;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(instructions));
    group.sample_size(10);
    // Building the machine (RAM, devices, caches) is not part of the measurement.
    group.bench_function("sieve32", |b| {
        b.iter_batched(setup, run_sieve, BatchSize::LargeInput)
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let code = assemble(SIEVE);
    bench_engine(c, "interp", &code, Interpreter::new);
    // The translation time of the sieve's few blocks is part of every sample.
    bench_engine(c, "bt", &code, BinaryTranslator::default);
}

criterion_group!(benches, bench);
criterion_main!(benches);
