//! `vmscope mmu`: explain one page walk of a running guest, or list the interpreter's shadow tables.
//! Teaches: reading a guest's page tables the way the CPU does, and what a shadow MMU keeps of them.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use emulator::bt::BinaryTranslator;
use emulator::interp::Interpreter;
use emulator::machine::loader::BootMethod;
use emulator::mmu::{Access, SpaceView};
use emulator::{Engine, Exit, Machine, RunLimit};

use crate::engines::{bt_cache_bytes, make_engine, EngineChoice};
use crate::image::{FormatArg, ImageFormat};

/// What the explained access is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessKind {
    Read,
    Write,
    Fetch,
}

#[derive(Debug, Subcommand)]
pub enum MmuCommand {
    /// Run N instructions, then explain step by step how ADDR translates under the current CR3.
    Walk {
        /// Path to the image, or the name of a built-in guest (see `vmscope guests`).
        image: String,
        /// The linear address to explain (hex with 0x, or decimal).
        #[arg(long, value_parser = parse_address)]
        va: u64,
        /// Run this many guest instructions first.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, value_enum, default_value_t = AccessKind::Read)]
        access: AccessKind,
        /// Explain a user-mode (CPL 3) access instead of the guest's current privilege level.
        #[arg(long)]
        user: bool,
        /// The engine that runs the guest first; interp and bt explain with their own MMU,
        /// kvm (the host CPU's MMU) from the tables in guest memory.
        #[arg(long, value_enum, default_value_t = EngineChoice::Interp)]
        engine: EngineChoice,
        #[arg(long, default_value = "")]
        cmdline: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Run N instructions on the interpreter, then list its shadow address spaces and entries.
    Shadow {
        image: String,
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many lines per address space.
        #[arg(long, default_value_t = 40)]
        limit: usize,
        #[arg(long, default_value = "")]
        cmdline: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

fn parse_address(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("not an address: {s:?} (try 0x101000)"))
}

/// A machine with the image loaded.
fn load(name: &str, bytes: &[u8], cmdline: &str, format: ImageFormat) -> Result<Machine> {
    let mut machine = Machine::new(64 << 20).context("creating the machine")?;
    crate::image::load(
        &mut machine,
        name,
        bytes,
        cmdline,
        BootMethod::Direct,
        format,
    )?;
    Ok(machine)
}

/// Runs `after` instructions on `engine`; says how the run ended.
fn run_for(engine: &mut dyn Engine, machine: &mut Machine, after: u64) -> Result<String> {
    let exit = if after > 0 {
        engine.run(machine, RunLimit::instructions(after))?
    } else {
        Exit::LimitReached
    };
    let when = match exit {
        Exit::LimitReached => format!("after {after} instructions on {}", engine.name()),
        other => format!(
            "the guest stopped before {after} instructions ({})",
            crate::runner::exit_summary(&other)
        ),
    };
    Ok(when)
}

/// The engine `mmu walk` runs the guest on, kept by kind so its MMU can explain the walk.
enum WalkEngine {
    Interp(Box<Interpreter>),
    Bt(Box<BinaryTranslator>),
    Other(Box<dyn Engine>),
}

/// `vmscope mmu walk`: the explanation as text.
#[allow(clippy::too_many_arguments)]
pub fn walk_report(
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    format: ImageFormat,
    engine: EngineChoice,
    after: u64,
    va: u64,
    kind: AccessKind,
    user: bool,
) -> Result<String> {
    // Wrong in every mode, so refused before the guest runs; the mode decides the rest below.
    if !is_canonical(va) {
        anyhow::bail!(
            "{va:#x} is not canonical (bits 63:47 differ): no page walk translates it — in long \
             mode the CPU raises #GP for it first, and outside long mode linear addresses are \
             32-bit"
        );
    }
    let mut machine = load(name, bytes, cmdline, format)?;
    // The software engines explain with their own MMU (it holds the PAE PDPTE registers the
    // CPU loaded); KVM's MMU is the host CPU's, so its walk is read from guest memory alone.
    let mut engine = match engine {
        EngineChoice::Interp => WalkEngine::Interp(Box::new(Interpreter::new())),
        EngineChoice::Bt => WalkEngine::Bt(Box::new(BinaryTranslator::new(bt_cache_bytes()))),
        // KVM maps this machine's RAM when it is made, so the engine comes after the machine.
        EngineChoice::Kvm | EngineChoice::Auto => {
            WalkEngine::Other(make_engine(engine, &machine, &mut |n| eprintln!("{n}"))?)
        }
    };
    let engine_ref: &mut dyn Engine = match &mut engine {
        WalkEngine::Interp(i) => i.as_mut(),
        WalkEngine::Bt(b) => b.as_mut(),
        WalkEngine::Other(e) => e.as_mut(),
    };
    let when = run_for(engine_ref, &mut machine, after)?;
    check_linear_address(&machine.cpu, va)?;
    let user = user || machine.cpu.cpl() == 3;
    let access = match kind {
        AccessKind::Read => Access::read(user),
        AccessKind::Write => Access::write(user),
        AccessKind::Fetch => Access::fetch(user),
    };
    let explanation = match &engine {
        WalkEngine::Interp(i) => i.mmu().explain(&mut machine, va, access),
        WalkEngine::Bt(b) => b.mmu().explain(&mut machine, va, access),
        WalkEngine::Other(_) => emulator::mmu::explain(&mut machine, va, access),
    };
    let mut out = String::new();
    writeln!(out, "{name}, {when}, RIP = {:#x}", machine.cpu.rip)?;
    write!(out, "{explanation}")?;
    Ok(out)
}

/// `vmscope mmu shadow`: the interpreter's shadow address spaces as text.
pub fn shadow_report(
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    format: ImageFormat,
    after: u64,
    limit: usize,
) -> Result<String> {
    let mut machine = load(name, bytes, cmdline, format)?;
    let mut interp = Interpreter::new();
    let when = run_for(&mut interp, &mut machine, after)?;
    let mmu = interp.mmu();
    let spaces = mmu.spaces();
    let config = mmu.config();
    let (frames, deps) = mmu.tracing_footprint();
    let mut out = String::new();
    writeln!(out, "{name}, {when}, CR3 = {:#x}", machine.cpu.cr3)?;
    writeln!(
        out,
        "shadow MMU: {} address space(s) kept (at most {}, retention {}); write-protect tracing \
         watches {frames} page-table frame(s) through {deps} dependencies",
        spaces.len(),
        config.max_spaces,
        if config.retain_address_spaces {
            "on"
        } else {
            "off"
        },
    )?;
    for s in &spaces {
        write_space(&mut out, s, limit)?;
    }
    Ok(out)
}

fn write_space(out: &mut String, s: &SpaceView, limit: usize) -> std::fmt::Result {
    writeln!(
        out,
        "\naddress space #{}: top-level table at {:#x}, PCID {}{}, {} entries",
        s.id,
        s.root,
        s.pcid,
        if s.current { " (current)" } else { "" },
        s.entries.len()
    )?;
    writeln!(
        out,
        "  {:<37} {:<20} {:<6} rights (U/S R/W X, D dirty, G global)",
        "linear pages", "guest-physical", "from"
    )?;
    // Runs of consecutive pages with consecutive frames and equal rights print as one line.
    let mut lines = 0;
    let mut i = 0;
    while i < s.entries.len() {
        let first = s.entries[i];
        let mut j = i + 1;
        while j < s.entries.len() {
            let (prev, e) = (s.entries[j - 1], s.entries[j]);
            let same = (
                e.user,
                e.writable,
                e.executable,
                e.dirty,
                e.global,
                e.guest_page_size,
            ) == (
                first.user,
                first.writable,
                first.executable,
                first.dirty,
                first.global,
                first.guest_page_size,
            );
            if !same || e.linear != prev.linear + 0x1000 || e.phys != prev.phys + 0x1000 {
                break;
            }
            j += 1;
        }
        if lines == limit {
            writeln!(out, "  … (--limit {limit} reached)")?;
            break;
        }
        let last = s.entries[j - 1];
        let size = match first.guest_page_size {
            0x1000 => "4K",
            0x20_0000 => "2M",
            0x40_0000 => "4M",
            _ => "1G",
        };
        writeln!(
            out,
            "  {:#018x}-{:#018x} {:<20} {:<6} {} {} {} {} {}",
            first.linear,
            last.linear + 0xFFF,
            format!("{:#x}", first.phys),
            size,
            if first.user { "U" } else { "S" },
            if first.writable { "W" } else { "R" },
            if first.executable { "X" } else { "-" },
            if first.dirty { "D" } else { "-" },
            if first.global { "G" } else { "-" },
        )?;
        lines += 1;
        i = j;
    }
    Ok(())
}

/// A linear address the CPU in its current mode could form at all: canonical in 64-bit long
/// mode (else hardware raises #GP before any walk), at most 32 bits otherwise.
fn check_linear_address(cpu: &emulator::cpu::CpuState, va: u64) -> Result<()> {
    if cpu.long_mode_active() {
        if !is_canonical(va) {
            anyhow::bail!(
                "{va:#x} is not canonical (bits 63:47 differ): in long mode the CPU raises #GP \
                 for it before any page walk"
            );
        }
    } else if va > 0xFFFF_FFFF {
        anyhow::bail!(
            "{va:#x} is wider than 32 bits: in {} linear addresses are 32-bit",
            cpu.mode()
        );
    }
    Ok(())
}

/// Bits 63:47 all equal (4-level paging's 48-bit linear addresses).
fn is_canonical(va: u64) -> bool {
    let top = (va as i64) >> 47;
    top == 0 || top == -1
}
