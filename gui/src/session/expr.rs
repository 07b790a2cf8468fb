//! Conditions for breakpoints: a small expression language over registers, flags and memory.
//! Teaches: how a debugger turns `rax == 0x10 && zf` into a tree it can evaluate at every hit.
//!
//! Grammar (Rust's precedence: arithmetic, shifts, `&`, `^`, `|`, comparisons, `&&`, `||`):
//! numbers (`16`, `0x10`, `1_000`), registers (`rax`, `eax`, `ax`, `al`, `ah`, `r8d`, …, `rip`,
//! `rflags`), flags (`cf pf af zf sf tf if df of`), `cr0 cr2 cr3 cr4 cr8 efer`, selectors
//! (`cs ds es fs gs ss`), `cpl`, memory at a linear address (`[rsp]` reads 8 bytes,
//! `byte [x]`, `word [x]`, `dword [x]`, `qword [x]`), unary `! - ~`, binary
//! `* / % + - << >> & ^ | == != < <= > >= && ||`, parentheses. All values are 64-bit unsigned.

use emulator::cpu::{flags, CpuState, Seg};

/// Reads guest memory for `[…]` without side effects; `None` = not mapped.
pub trait MemoryReader {
    fn read_linear(&mut self, linear: u64, size: usize) -> Option<u64>;
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Num(u64),
    Reg(Operand),
    Mem(Box<Expr>, usize),
    Unary(char, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
}

/// Something in the CPU state an expression can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// General register `index`, bits `shift..shift + bits`.
    Gpr {
        index: usize,
        shift: u32,
        bits: u32,
    },
    Rip,
    Rflags,
    Flag(u64),
    Cr(u8),
    Efer,
    Selector(Seg),
    Cpl,
}

const GPR64: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
const GPR32: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const GPR16: [&str; 8] = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const GPR8: [&str; 8] = ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"];
const GPR8H: [&str; 4] = ["ah", "ch", "dh", "bh"];

fn operand(name: &str) -> Option<Operand> {
    let gpr = |index, shift, bits| Some(Operand::Gpr { index, shift, bits });
    if let Some(i) = GPR64.iter().position(|n| *n == name) {
        return gpr(i, 0, 64);
    }
    if let Some(i) = GPR32.iter().position(|n| *n == name) {
        return gpr(i, 0, 32);
    }
    if let Some(i) = GPR16.iter().position(|n| *n == name) {
        return gpr(i, 0, 16);
    }
    if let Some(i) = GPR8.iter().position(|n| *n == name) {
        return gpr(i, 0, 8);
    }
    if let Some(i) = GPR8H.iter().position(|n| *n == name) {
        return gpr(i, 8, 8);
    }
    // r8d, r8w, r8b … r15b
    if let Some(rest) = name.strip_prefix('r') {
        let (num, bits) = match rest.chars().last() {
            Some('d') => (&rest[..rest.len() - 1], 32),
            Some('w') => (&rest[..rest.len() - 1], 16),
            Some('b') => (&rest[..rest.len() - 1], 8),
            _ => ("", 0),
        };
        if let Ok(n) = num.parse::<usize>() {
            if (8..16).contains(&n) {
                return gpr(n, 0, bits);
            }
        }
    }
    let flag = |f| Some(Operand::Flag(f));
    match name {
        "rip" | "eip" | "ip" => Some(Operand::Rip),
        "rflags" | "eflags" | "flags" => Some(Operand::Rflags),
        "cf" => flag(flags::CF),
        "pf" => flag(flags::PF),
        "af" => flag(flags::AF),
        "zf" => flag(flags::ZF),
        "sf" => flag(flags::SF),
        "tf" => flag(flags::TF),
        "if" => flag(flags::IF),
        "df" => flag(flags::DF),
        "of" => flag(flags::OF),
        "cr0" => Some(Operand::Cr(0)),
        "cr2" => Some(Operand::Cr(2)),
        "cr3" => Some(Operand::Cr(3)),
        "cr4" => Some(Operand::Cr(4)),
        "cr8" => Some(Operand::Cr(8)),
        "efer" => Some(Operand::Efer),
        "cpl" => Some(Operand::Cpl),
        _ => Seg::ALL
            .iter()
            .find(|s| s.name() == name)
            .map(|s| Operand::Selector(*s)),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(u64),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 24] = [
    "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "<", ">", "+", "-", "*", "/", "%", "&", "|",
    "^", "!", "~", "(", ")", "[", "]",
];

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let text: String = s[start..i].chars().filter(|c| *c != '_').collect();
            let v = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16)
            } else {
                text.parse::<u64>()
            };
            out.push(Tok::Num(
                v.map_err(|_| format!("not a number: {}", &s[start..i]))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_ascii_lowercase()));
        } else if let Some(op) = OPS.iter().find(|op| s[i..].starts_with(**op)) {
            out.push(Tok::Op(op));
            i += op.len();
        } else {
            return Err(format!("unexpected {c:?} at column {}", i + 1));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Binary operators by precedence level, loosest first.
const LEVELS: [&[&str]; 9] = [
    &["||"],
    &["&&"],
    &["==", "!=", "<=", ">=", "<", ">"],
    &["|"],
    &["^"],
    &["&"],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {op:?}"))
        }
    }

    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        while let Some(op) = self.peek_op().filter(|o| LEVELS[level].contains(o)) {
            self.pos += 1;
            let rhs = self.binary(level + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
            if level == 2 {
                break; // comparisons do not chain
            }
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if let Some(op @ ("!" | "-" | "~")) = self.peek_op() {
            self.pos += 1;
            let inner = self.unary()?;
            return Ok(Expr::Unary(
                op.chars().next().unwrap_or('!'),
                Box::new(inner),
            ));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Op("(")) => {
                let e = self.binary(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Op("[")) => self.memory(8),
            Some(Tok::Ident(name)) => {
                let size = match name.as_str() {
                    "byte" => Some(1),
                    "word" => Some(2),
                    "dword" => Some(4),
                    "qword" => Some(8),
                    _ => None,
                };
                if let (Some(size), Some("[")) = (size, self.peek_op()) {
                    self.pos += 1;
                    return self.memory(size);
                }
                operand(&name)
                    .map(Expr::Reg)
                    .ok_or_else(|| format!("unknown name {name:?} (registers, flags, cr0…)"))
            }
            Some(Tok::Op(op)) => Err(format!("unexpected {op:?}")),
            None => Err("the expression ends too early".into()),
        }
    }

    fn memory(&mut self, size: usize) -> Result<Expr, String> {
        let addr = self.binary(0)?;
        self.expect("]")?;
        Ok(Expr::Mem(Box::new(addr), size))
    }
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Parser {
            toks: tokenize(text)?,
            pos: 0,
        };
        let e = p.binary(0)?;
        if p.pos < p.toks.len() {
            return Err(format!(
                "unexpected {:?} after the expression",
                p.toks[p.pos]
            ));
        }
        Ok(e)
    }

    pub fn eval(&self, cpu: &CpuState, mem: &mut dyn MemoryReader) -> Result<u64, String> {
        Ok(match self {
            Expr::Num(n) => *n,
            Expr::Reg(op) => read_operand(cpu, *op),
            Expr::Mem(addr, size) => {
                let a = addr.eval(cpu, mem)?;
                mem.read_linear(a, *size)
                    .ok_or_else(|| format!("memory at {a:#x} is not mapped"))?
            }
            Expr::Unary(op, e) => {
                let v = e.eval(cpu, mem)?;
                match op {
                    '!' => (v == 0) as u64,
                    '-' => v.wrapping_neg(),
                    _ => !v,
                }
            }
            Expr::Binary(op, l, r) => {
                let a = l.eval(cpu, mem)?;
                // && and || short-circuit, so `rsp != 0 && [rsp] == 1` never reads at 0.
                match *op {
                    "&&" if a == 0 => return Ok(0),
                    "||" if a != 0 => return Ok(1),
                    _ => {}
                }
                let b = r.eval(cpu, mem)?;
                match *op {
                    "&&" | "||" => (b != 0) as u64,
                    "==" => (a == b) as u64,
                    "!=" => (a != b) as u64,
                    "<" => (a < b) as u64,
                    "<=" => (a <= b) as u64,
                    ">" => (a > b) as u64,
                    ">=" => (a >= b) as u64,
                    "|" => a | b,
                    "^" => a ^ b,
                    "&" => a & b,
                    "<<" => a.checked_shl(b as u32).unwrap_or(0),
                    ">>" => a.checked_shr(b as u32).unwrap_or(0),
                    "+" => a.wrapping_add(b),
                    "-" => a.wrapping_sub(b),
                    "*" => a.wrapping_mul(b),
                    "/" => a.checked_div(b).ok_or("division by zero")?,
                    _ => a.checked_rem(b).ok_or("division by zero")?,
                }
            }
        })
    }
}

fn read_operand(cpu: &CpuState, op: Operand) -> u64 {
    match op {
        Operand::Gpr { index, shift, bits } => {
            let v = cpu.gpr[index] >> shift;
            if bits == 64 {
                v
            } else {
                v & ((1u64 << bits) - 1)
            }
        }
        Operand::Rip => cpu.rip,
        Operand::Rflags => cpu.rflags,
        Operand::Flag(bit) => (cpu.rflags & bit != 0) as u64,
        Operand::Cr(0) => cpu.cr0,
        Operand::Cr(2) => cpu.cr2,
        Operand::Cr(3) => cpu.cr3,
        Operand::Cr(4) => cpu.cr4,
        Operand::Cr(_) => cpu.cr8,
        Operand::Efer => cpu.efer,
        Operand::Selector(s) => cpu.seg[s as usize].selector as u64,
        Operand::Cpl => cpu.cpl() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem;
    impl MemoryReader for Mem {
        fn read_linear(&mut self, linear: u64, size: usize) -> Option<u64> {
            // Every mapped byte holds the low byte of its address; nothing above 64 KiB.
            (linear < 0x10000)
                .then(|| (0..size).fold(0, |v, i| v | ((linear + i as u64) & 0xFF) << (8 * i)))
        }
    }

    fn eval(text: &str, cpu: &CpuState) -> Result<u64, String> {
        Expr::parse(text)?.eval(cpu, &mut Mem)
    }

    #[test]
    fn registers_of_every_width_and_flags() {
        let mut cpu = CpuState::reset();
        cpu.gpr[0] = 0x1122_3344_5566_7788;
        cpu.gpr[9] = 0xAABB_CCDD_EEFF_0011;
        cpu.rflags |= flags::ZF;
        assert_eq!(eval("rax", &cpu), Ok(0x1122_3344_5566_7788));
        assert_eq!(eval("eax", &cpu), Ok(0x5566_7788));
        assert_eq!(eval("ax", &cpu), Ok(0x7788));
        assert_eq!(eval("ah", &cpu), Ok(0x77));
        assert_eq!(eval("al", &cpu), Ok(0x88));
        assert_eq!(eval("r9d", &cpu), Ok(0xEEFF_0011));
        assert_eq!(eval("r9b", &cpu), Ok(0x11));
        assert_eq!(eval("zf && !cf", &cpu), Ok(1));
        assert_eq!(eval("cs", &cpu), Ok(0xF000));
    }

    #[test]
    fn precedence_follows_rust() {
        let mut cpu = CpuState::reset();
        cpu.gpr[0] = 0x1234;
        // & binds tighter than ==, so this masks first.
        assert_eq!(eval("rax & 0xff == 0x34", &cpu), Ok(1));
        assert_eq!(eval("1 + 2 * 3", &cpu), Ok(7));
        assert_eq!(eval("(1 + 2) * 3", &cpu), Ok(9));
        assert_eq!(eval("1 << 4 | 1", &cpu), Ok(17));
        assert_eq!(eval("rax > 0x1000 && rax < 0x2000 || 0", &cpu), Ok(1));
        assert_eq!(eval("-1", &cpu), Ok(u64::MAX));
    }

    #[test]
    fn memory_reads_and_short_circuit() {
        let mut cpu = CpuState::reset();
        cpu.gpr[4] = 0x1234; // rsp
        assert_eq!(eval("byte [rsp]", &cpu), Ok(0x34));
        assert_eq!(eval("word [rsp + 1]", &cpu), Ok(0x3635));
        assert!(
            eval("[0x20000]", &cpu).is_err(),
            "unmapped memory is an error"
        );
        assert_eq!(
            eval("0 && [0x20000]", &cpu),
            Ok(0),
            "&& does not evaluate its right side"
        );
    }

    #[test]
    fn malformed_expressions_say_what_is_wrong() {
        assert!(Expr::parse("rax ==")
            .unwrap_err()
            .contains("ends too early"));
        assert!(Expr::parse("foo == 1")
            .unwrap_err()
            .contains("unknown name"));
        assert!(Expr::parse("(rax").unwrap_err().contains("expected"));
        assert!(Expr::parse("rax $ 1").unwrap_err().contains("unexpected"));
        assert!(Expr::parse("1 2").is_err());
        assert_eq!(
            Expr::parse("1/0")
                .unwrap()
                .eval(&CpuState::reset(), &mut Mem),
            Err("division by zero".into())
        );
    }
}
