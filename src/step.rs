//! `vmscope step`: run a guest one instruction at a time and show what each one changed.
//! Teaches: an instruction is a state transition; watching the diff is how you learn what it does.

use std::fmt::Write as _;

use emulator::cpu::{CpuState, Seg};
use emulator::mmu::peek_linear;
use emulator::Machine;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// Disassembles the instruction at the guest's current CS:RIP: (address text, bytes, text).
pub fn disassemble_current(machine: &mut Machine) -> (String, Vec<u8>, String) {
    let cpu = &machine.cpu;
    let bits = cpu.code_bits();
    let rip = cpu.rip;
    let addr = if bits == 64 {
        format!("{rip:016x}")
    } else {
        format!("{:04x}:{rip:08x}", cpu.cs().selector)
    };
    let linear = cpu.linear_rip();
    let mut bytes = [0u8; 15];
    if let Err(lin) = peek_linear(machine, linear, &mut bytes) {
        // Decode what we could read (up to the unmapped page).
        let n = (lin - linear) as usize;
        bytes[n..].fill(0);
    }
    let mut decoder = Decoder::with_ip(bits, &bytes, rip, DecoderOptions::NONE);
    let ins = decoder.decode();
    let mut text = String::new();
    if ins.is_invalid() {
        text.push_str("(bad)");
    } else {
        IntelFormatter::new().format(&ins, &mut text);
    }
    let len = ins.len().max(1);
    (addr, bytes[..len].to_vec(), text)
}

/// The registers that differ between two states, as "rax=0x1 → 0x2" items.
pub fn changed_registers(before: &CpuState, after: &CpuState) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in GPR_NAMES.iter().enumerate() {
        if before.gpr[i] != after.gpr[i] {
            out.push(format!("{name}={:#x}", after.gpr[i]));
        }
    }
    if before.rflags != after.rflags {
        out.push(format!("rflags={:#x}", after.rflags));
    }
    for seg in Seg::ALL {
        let (b, a) = (before.seg[seg as usize], after.seg[seg as usize]);
        if b != a {
            out.push(format!(
                "{}={:#06x} (base {:#x})",
                seg.name(),
                a.selector,
                a.base
            ));
        }
    }
    let crs = [
        ("cr0", before.cr0, after.cr0),
        ("cr2", before.cr2, after.cr2),
        ("cr3", before.cr3, after.cr3),
        ("cr4", before.cr4, after.cr4),
        ("efer", before.efer, after.efer),
    ];
    for (name, b, a) in crs {
        if b != a {
            out.push(format!("{name}={a:#x}"));
        }
    }
    if before.gdtr != after.gdtr {
        out.push(format!(
            "gdtr={:#x}/{:#x}",
            after.gdtr.base, after.gdtr.limit
        ));
    }
    if before.idtr != after.idtr {
        out.push(format!(
            "idtr={:#x}/{:#x}",
            after.idtr.base, after.idtr.limit
        ));
    }
    if before.mode() != after.mode() {
        out.push(format!("mode: {}", after.mode()));
    }
    out
}

/// Formats one step line: address, bytes, disassembly, then the changes it made.
pub fn format_step(addr: &str, bytes: &[u8], text: &str, changes: &[String]) -> String {
    let mut hex = String::new();
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    format!("{addr}  {hex:<24} {text:<36} {}", changes.join(" "))
}
