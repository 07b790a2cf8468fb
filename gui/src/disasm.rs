//! Disassembly around an address, with symbol names, for the code panel.
//! Teaches: x86 code can only be decoded forwards — to show what comes *before* RIP we must guess
//! where an earlier instruction starts and check that decoding from there lands exactly on RIP.

use emulator::cpu::{CpuMode, CpuState};
use emulator::Machine;
use iced_x86::{
    Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, OpKind, SymbolResolver,
    SymbolResult,
};

use crate::guestmem::read_linear;
use crate::symbols::Symbols;

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The instruction pointer value (offset in CS) of the instruction.
    pub ip: u64,
    pub linear: u64,
    pub bytes: Vec<u8>,
    pub text: String,
    /// A symbol that starts exactly here (shown as `name:` above the line).
    pub label: Option<String>,
    /// This is the instruction at CS:RIP, the next one to execute.
    pub current: bool,
}

/// The linear address of `ip` in the current code segment.
pub fn linear_of(cpu: &CpuState, ip: u64) -> u64 {
    if cpu.mode() == CpuMode::Long64 {
        ip
    } else {
        cpu.cs().base.wrapping_add(ip) & 0xFFFF_FFFF
    }
}

/// The instruction at CS:RIP, if its bytes are readable and valid.
pub fn decode_current(m: &mut Machine) -> Option<Instruction> {
    let (bits, rip) = (m.cpu.code_bits(), m.cpu.rip);
    let mut buf = [0u8; 15];
    let n = read_linear(m, m.cpu.linear_rip(), &mut buf);
    let ins = Decoder::with_ip(bits, &buf[..n], rip, DecoderOptions::NONE).decode();
    (!ins.is_invalid()).then_some(ins)
}

/// Formats branch targets and addresses that are exactly a symbol with the symbol's name.
struct Resolver(Symbols);

impl SymbolResolver for Resolver {
    fn symbol(
        &mut self,
        instruction: &Instruction,
        _operand: u32,
        instruction_operand: Option<u32>,
        address: u64,
        _address_size: u32,
    ) -> Option<SymbolResult<'_>> {
        let branch = instruction_operand.is_some_and(|op| {
            matches!(
                instruction.op_kind(op),
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
            )
        });
        if branch {
            let (name, off) = self.0.lookup(address)?;
            return Some(SymbolResult::with_string(address - off, name.to_string()));
        }
        let name = self.0.exact(address)?;
        Some(SymbolResult::with_string(address, name.to_string()))
    }
}

/// A formatter that names symbols: `call serial_puts` instead of `call 0x100234`.
pub fn formatter(symbols: &Symbols) -> IntelFormatter {
    let mut f = IntelFormatter::with_options(Some(Box::new(Resolver(symbols.clone()))), None);
    f.options_mut().set_first_operand_char_index(8);
    f.options_mut().set_hex_prefix("0x");
    f.options_mut().set_hex_suffix("");
    f.options_mut().set_uppercase_hex(false);
    f.options_mut().set_space_after_operand_separator(true);
    f
}

/// Decodes forwards from `start_ip`, returning each instruction's IP, until `stop_ip` is passed.
fn starts_from(bytes: &[u8], bits: u32, start_ip: u64, stop_ip: u64) -> Vec<u64> {
    let mut d = Decoder::with_ip(bits, bytes, start_ip, DecoderOptions::NONE);
    let mut out = Vec::new();
    while d.can_decode() && d.ip() < stop_ip {
        out.push(d.ip());
        let _ = d.decode();
    }
    if d.ip() == stop_ip {
        out
    } else {
        Vec::new()
    }
}

/// Where to start decoding so that `before` instructions precede `ip`: from the enclosing
/// symbol if it is close (exact for code), else the furthest earlier byte from which
/// decoding lands on `ip` (x86 decoding usually re-synchronises within a few instructions).
fn earlier_starts(
    m: &mut Machine,
    symbols: &Symbols,
    ip: u64,
    bits: u32,
    before: usize,
) -> Vec<u64> {
    if before == 0 {
        return Vec::new();
    }
    let cpu = m.cpu.clone();
    let window = (before as u64 * 8).min(ip);
    let try_from = |start: u64, m: &mut Machine| {
        let len = (ip - start) as usize;
        let mut buf = vec![0u8; len];
        if read_linear(m, linear_of(&cpu, start), &mut buf) < len {
            return Vec::new();
        }
        starts_from(&buf, bits, start, ip)
    };
    if let Some((_, off)) = symbols.lookup(linear_of(&cpu, ip)) {
        if off > 0 && off <= 2048 && off <= ip {
            let v = try_from(ip - off, m);
            if !v.is_empty() {
                return v[v.len().saturating_sub(before)..].to_vec();
            }
        }
    }
    for back in (1..=window).rev() {
        let v = try_from(ip - back, m);
        if !v.is_empty() {
            return v[v.len().saturating_sub(before)..].to_vec();
        }
    }
    Vec::new()
}

/// `before` instructions before `anchor_ip`, the one there, and `after` more, in the current
/// code segment and mode.
pub fn listing(
    m: &mut Machine,
    symbols: &Symbols,
    anchor_ip: u64,
    before: usize,
    after: usize,
) -> Vec<Line> {
    let bits = m.cpu.code_bits();
    let cpu = m.cpu.clone();
    let ip_mask = match bits {
        16 => 0xFFFF,
        32 => 0xFFFF_FFFF,
        _ => u64::MAX,
    };
    let anchor_ip = anchor_ip & ip_mask;
    let starts = earlier_starts(m, symbols, anchor_ip, bits, before);
    let first = starts.first().copied().unwrap_or(anchor_ip);
    let span = (anchor_ip - first) as usize + (after + 1) * 15;
    let mut buf = vec![0u8; span];
    let readable = read_linear(m, linear_of(&cpu, first), &mut buf);
    buf.truncate(readable);

    let mut fmt = formatter(symbols);
    let mut lines = Vec::new();
    let mut d = Decoder::with_ip(bits, &buf, first, DecoderOptions::NONE);
    let wanted = starts.len() + after + 1;
    while d.can_decode() && lines.len() < wanted {
        let ip = d.ip();
        let ins = d.decode();
        let off = (ip - first) as usize;
        let len = if ins.is_invalid() { 1 } else { ins.len() };
        let mut text = String::new();
        if ins.is_invalid() {
            text.push_str("(bad)");
        } else {
            fmt.format(&ins, &mut text);
        }
        let linear = linear_of(&cpu, ip);
        lines.push(Line {
            ip,
            linear,
            bytes: buf.get(off..off + len).unwrap_or_default().to_vec(),
            text,
            label: symbols.exact(linear).map(str::to_string),
            current: ip == cpu.rip,
        });
    }
    if lines.is_empty() {
        lines.push(Line {
            ip: anchor_ip,
            linear: linear_of(&cpu, anchor_ip),
            bytes: Vec::new(),
            text: "(memory not mapped)".into(),
            label: None,
            current: anchor_ip == cpu.rip,
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32-bit machine with `code` at 0x1000 and RIP at `rip`.
    fn machine_with(code: &[u8], rip: u64) -> Machine {
        let mut m = Machine::new(1 << 20).unwrap();
        m.ram.write(0x1000, code).unwrap();
        m.cpu = CpuState::multiboot_entry(rip as u32, 0);
        m
    }

    #[test]
    fn the_listing_finds_the_instructions_before_rip() {
        // nop; mov eax, 0x12345678; add eax, ebx; inc ecx; ret
        let code = [0x90, 0xB8, 0x78, 0x56, 0x34, 0x12, 0x01, 0xD8, 0x41, 0xC3];
        let mut m = machine_with(&code, 0x1008); // at `inc ecx`
        let syms = Symbols::from_pairs([(0x1000, "start".to_string())]);
        let lines = listing(&mut m, &syms, 0x1008, 2, 1);
        let ips: Vec<u64> = lines.iter().map(|l| l.ip).collect();
        assert_eq!(ips, vec![0x1001, 0x1006, 0x1008, 0x1009]);
        let current: Vec<&Line> = lines.iter().filter(|l| l.current).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].text, "inc     ecx");
        assert_eq!(lines[0].bytes, vec![0xB8, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(lines[3].text, "ret");
    }

    #[test]
    fn branch_targets_are_named_by_symbols() {
        // call 0x1010 (e8 rel32), then at 0x1010: ret
        let mut code = vec![0xE8, 0x0B, 0x00, 0x00, 0x00];
        code.resize(0x10, 0x90);
        code.push(0xC3);
        let mut m = machine_with(&code, 0x1000);
        let syms = Symbols::from_pairs([(0x1010, "helper".to_string())]);
        let lines = listing(&mut m, &syms, 0x1000, 0, 0);
        assert_eq!(lines[0].text, "call    helper");
        let lines = listing(&mut m, &syms, 0x1010, 0, 0);
        assert_eq!(lines[0].label.as_deref(), Some("helper"));
    }

    #[test]
    fn unmapped_code_gives_a_placeholder_line() {
        let mut m = machine_with(&[0x90], 0x1000);
        let lines = listing(&mut m, &Symbols::default(), 0x7FFF_FFF0, 4, 4);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].text.contains("not mapped"));
    }
}
