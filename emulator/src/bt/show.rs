//! Showing a translated block: each guest instruction beside the op it became.
//! Teaches: what a translation looks like — which instructions got a fast form, which are callouts.

use std::fmt::Write;

use iced_x86::{Formatter, IntelFormatter};

use super::cache::{Block, BtStats, TranslationCache};
use super::ops::{Op, NONE};

const REGS: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

fn reg(i: u8) -> &'static str {
    REGS[(i & 15) as usize]
}

/// What the handler is given, in words.
fn operands(op: &Op) -> String {
    let mem = || {
        let m = &op.mem;
        let mut parts = Vec::new();
        if m.base != NONE {
            parts.push(format!("{}/{}", reg(m.base), m.base_size * 8));
        }
        if m.index != NONE {
            parts.push(format!(
                "{}/{}<<{}",
                reg(m.index),
                m.index_size * 8,
                m.scale
            ));
        }
        parts.push(format!("{:#x}", m.disp));
        format!("{:?}:[{}]", m.seg, parts.join("+"))
    };
    let name = op.name;
    let size = op.size as u32 * 8;
    match name {
        "callout" => "interpreter executes the instruction".to_string(),
        "nop" => String::new(),
        "jmp" => format!("rip={:#x}", op.imm),
        "jcc" => format!("if {:?}: rip={:#x} else {:#x}", op.cc, op.imm, op.next_rip),
        "lea" => format!("{}/{} <- {}", reg(op.dst), size, mem()),
        "push r" => format!("{}/{}", reg(op.src), size),
        "pop r" | "inc r" | "dec r" | "not r" => format!("{}/{}", reg(op.dst), size),
        "shift r,imm" => format!("{}/{} by {}", reg(op.dst), size, op.imm),
        "imul r,r,imm" => format!("{}/{size} <- {} * {:#x}", reg(op.dst), reg(op.src), op.imm),
        "imul r,[m],imm" => format!("{}/{size} <- {} * {:#x}", reg(op.dst), mem(), op.imm),
        "setcc r8" => format!("{}/8 <- {:?}", reg(op.dst), op.cc),
        "cmovcc r,r" => format!("if {:?}: {}/{size} <- {}", op.cc, reg(op.dst), reg(op.src)),
        _ if name.ends_with("r,r") => format!(
            "{}/{}, {}/{}",
            reg(op.dst),
            size,
            reg(op.src),
            op.src_size * 8
        ),
        _ if name.ends_with("r,imm") => format!("{}/{}, {:#x}", reg(op.dst), size, op.imm),
        _ if name.ends_with("r,[m]") => {
            format!("{}/{}, {}/{}", reg(op.dst), size, mem(), op.src_size * 8)
        }
        _ if name.ends_with("[m],r") => {
            format!("{}/{}, {}/{}", mem(), size, reg(op.src), op.src_size * 8)
        }
        _ if name.ends_with("[m],imm") => format!("{}/{}, {:#x}", mem(), size, op.imm),
        _ => String::new(),
    }
}

/// The block as a table; the line of the instruction at `rip` is marked `=>`.
pub fn format_block(block: &Block, stats: &BtStats, rip: u64) -> String {
    let mut out = String::new();
    let mut fmt = IntelFormatter::new();
    fmt.options_mut().set_first_operand_char_index(8);
    let _ = writeln!(
        out,
        "block at rip {:#x} (physical {:#x}, mode {:#x}): {} instructions, {} guest bytes, run {} times",
        block.key.rip,
        block.key.phys,
        block.key.mode,
        block.ops.len(),
        block.guest_bytes,
        block.executions
    );
    let _ = writeln!(
        out,
        "     {:<18} {:<34} {:<14} {:<6} operands",
        "guest rip", "guest instruction", "op", "flags"
    );
    for op in &block.ops {
        let mut text = String::new();
        fmt.format(&op.ins, &mut text);
        let flags = if op.name == "callout" {
            "-"
        } else if op.ins.rflags_modified() == 0 {
            ""
        } else if op.flags_live {
            "live"
        } else {
            "dead"
        };
        let _ = writeln!(
            out,
            "  {} {:<#18x} {:<34} {:<14} {:<6} {}",
            if op.rip == rip { "=>" } else { "  " },
            op.rip,
            text,
            op.name,
            flags,
            operands(op)
        );
    }
    let exits: Vec<String> = block
        .links
        .iter()
        .flatten()
        .map(|(rip, id)| format!("{rip:#x} (block {id})"))
        .collect();
    let _ = writeln!(
        out,
        "  chained to: {}",
        if exits.is_empty() {
            "nothing yet".to_string()
        } else {
            exits.join(", ")
        }
    );
    let fast = block.ops.iter().filter(|o| o.name != "callout").count();
    let _ = writeln!(
        out,
        "  {} of {} instructions have a specialised form; {} translated blocks so far",
        fast,
        block.ops.len(),
        stats.blocks_translated
    );
    out
}

/// The translation cache's size for `--stats` (its counters are in `Stats`).
pub fn format_cache_usage(cache: &TranslationCache) -> String {
    format!(
        "translation cache: {} live blocks using {} KiB of host memory (capacity {} KiB)",
        cache.live_blocks(),
        cache.used().div_ceil(1024),
        cache.capacity() / 1024
    )
}
