//! The i8042 keyboard controller (ports 0x60/0x64) with a minimal PS/2 keyboard, and port 0x92.
//! Teaches: a command/data port protocol with status polling, and why "reboot" on a PC means asking the keyboard controller.
//!
//! The guest talks to the controller through two ports:
//! - 0x64: read = status (bit 0: a byte waits in the output buffer), write = controller command;
//! - 0x60: read = the output buffer, write = a command's parameter or a byte for the keyboard.
//!
//! Beyond the keyboard, the 8042 historically drives two system lines through its output port:
//! the CPU reset line (command 0xFE pulses it, which is how most PC operating systems reboot) and
//! the A20 gate. Port 0x92 ("fast A20 and reset") does the same two jobs without the controller.
//! There is no mouse: bytes for the auxiliary device are accepted and dropped.

use std::any::Any;
use std::collections::VecDeque;

use crate::bus::{BusDevice, DeviceCtx, MachineEvent};

// Status register (port 0x64 read).
const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM_FLAG: u8 = 0x04;
const STATUS_LAST_WRITE_WAS_COMMAND: u8 = 0x08;
const STATUS_NOT_INHIBITED: u8 = 0x10;
const STATUS_AUX_DATA: u8 = 0x20;

// Controller command byte (internal RAM byte 0).
const CMD_KEYBOARD_INTERRUPT: u8 = 0x01;
const CMD_AUX_INTERRUPT: u8 = 0x02;
const CMD_SYSTEM_FLAG: u8 = 0x04;
const CMD_KEYBOARD_DISABLED: u8 = 0x10;
const CMD_AUX_DISABLED: u8 = 0x20;
const CMD_TRANSLATE: u8 = 0x40;

// Replies of the keyboard.
const KEYBOARD_ACK: u8 = 0xFA;
const KEYBOARD_RESEND: u8 = 0xFE;
const KEYBOARD_SELF_TEST_PASSED: u8 = 0xAA;

/// A real controller holds one byte; we queue a few so bursts of replies or keys are not lost,
/// but never so many that a guest (or a stuck key) could grow host memory.
const MAX_QUEUED_BYTES: usize = 64;

/// Who produced a byte in the output buffer: it decides the AUX status bit and the IRQ line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Source {
    /// The controller or the keyboard: IRQ 1.
    Keyboard,
    /// The auxiliary (mouse) port: IRQ 12.
    Aux,
}

/// What the next write to port 0x60 means, after a controller command that takes a parameter.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
enum PendingParameter {
    /// 0x60–0x7F: write internal RAM byte n (byte 0 is the command byte).
    WriteRam(usize),
    /// 0xD1: write the output port (bit 0: reset line, active low; bit 1: A20 gate).
    OutputPort,
    /// 0xD2 / 0xD3: put the byte in the output buffer as if the keyboard / aux device sent it.
    EchoAs(Source),
    /// 0xD4: send the byte to the aux device (absent here).
    ToAux,
}

/// Commands the keyboard understands that take one parameter byte.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
enum KeyboardParameter {
    SetLeds,
    SetTypematic,
    ScanCodeSet,
}

/// The i8042 controller with a PS/2 keyboard behind it and port 0x92.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct I8042 {
    /// Bytes for the guest; the front one is in the output buffer.
    output: VecDeque<(u8, Source)>,
    /// What a read of 0x60 returns when nothing new arrived (the buffer keeps its old value).
    last_output: u8,
    /// Internal RAM; byte 0 is the command byte.
    ram: [u8; 32],
    pending: Option<PendingParameter>,
    system_flag: bool,
    last_write_was_command: bool,
    a20_enabled: bool,
    port_92: u8,
    keyboard_scanning: bool,
    keyboard_pending: Option<KeyboardParameter>,
    scan_code_set: u8,
    leds: u8,
    /// The keyboard's and the aux port's lines (ISA IRQ 1 and 12 on a PC).
    lines: [crate::bus::IrqLine; 2],
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// The controller as a BIOS leaves it: keyboard interrupt on, translation on, system flag set,
    /// A20 enabled.
    pub fn new() -> Self {
        let mut ram = [0; 32];
        ram[0] = CMD_KEYBOARD_INTERRUPT | CMD_SYSTEM_FLAG | CMD_TRANSLATE;
        I8042 {
            output: VecDeque::new(),
            last_output: 0,
            ram,
            pending: None,
            system_flag: true,
            last_write_was_command: false,
            a20_enabled: true,
            port_92: 0x02,
            keyboard_scanning: true,
            keyboard_pending: None,
            scan_code_set: 2,
            leds: 0,
            lines: [crate::bus::IrqLine::isa(1), crate::bus::IrqLine::isa(12)],
        }
    }

    /// The same controller with its keyboard and aux interrupts on other lines.
    pub fn with_irqs(mut self, keyboard: crate::bus::IrqLine, aux: crate::bus::IrqLine) -> Self {
        self.lines = [keyboard, aux];
        self
    }

    /// Is the A20 gate open (addresses are not wrapped at 1 MiB)?
    pub fn a20_enabled(&self) -> bool {
        self.a20_enabled
    }

    /// The controller command byte (interrupt enables, disables, translation).
    pub fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    /// The keyboard LEDs the guest last set (bit 0 scroll, 1 num, 2 caps lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// Key presses and releases from the user, as scan code bytes (set 1, what guests see with
    /// translation on). Dropped while the guest has the keyboard disabled.
    pub fn press_scancodes(&mut self, bytes: &[u8], ctx: &mut DeviceCtx) {
        if self.keyboard_scanning && self.ram[0] & CMD_KEYBOARD_DISABLED == 0 {
            for &byte in bytes {
                self.push(byte, Source::Keyboard);
            }
        }
        self.update_irqs(ctx);
    }

    fn push(&mut self, byte: u8, source: Source) {
        if self.output.len() < MAX_QUEUED_BYTES {
            self.output.push_back((byte, source));
        }
    }

    fn status(&self) -> u8 {
        let mut status = STATUS_NOT_INHIBITED;
        if let Some(&(_, source)) = self.output.front() {
            status |= STATUS_OUTPUT_FULL;
            if source == Source::Aux {
                status |= STATUS_AUX_DATA;
            }
        }
        if self.system_flag {
            status |= STATUS_SYSTEM_FLAG;
        }
        if self.last_write_was_command {
            status |= STATUS_LAST_WRITE_WAS_COMMAND;
        }
        status
    }

    /// IRQ 1 / IRQ 12 follow "output buffer full" for their source, when enabled in the command byte.
    fn update_irqs(&self, ctx: &mut DeviceCtx) {
        let front = self.output.front().map(|&(_, source)| source);
        let keyboard = front == Some(Source::Keyboard) && self.ram[0] & CMD_KEYBOARD_INTERRUPT != 0;
        let aux = front == Some(Source::Aux) && self.ram[0] & CMD_AUX_INTERRUPT != 0;
        ctx.set_irq_level(self.lines[0], keyboard);
        ctx.set_irq_level(self.lines[1], aux);
    }

    fn set_output_port(&mut self, value: u8, ctx: &mut DeviceCtx) {
        self.a20_enabled = value & 0x02 != 0;
        // The reset line is active low: clearing bit 0 resets the CPU.
        if value & 0x01 == 0 {
            ctx.request(MachineEvent::ResetRequested);
        }
    }

    fn controller_command(&mut self, command: u8, ctx: &mut DeviceCtx) {
        self.pending = None;
        match command {
            0x20..=0x3F => self.push(self.ram[(command & 0x1F) as usize], Source::Keyboard),
            0x60..=0x7F => {
                self.pending = Some(PendingParameter::WriteRam((command & 0x1F) as usize))
            }
            0xA7 => self.ram[0] |= CMD_AUX_DISABLED,
            0xA8 => self.ram[0] &= !CMD_AUX_DISABLED,
            // Interface tests: 0x00 means "no error".
            0xA9 | 0xAB => self.push(0x00, Source::Keyboard),
            0xAA => {
                // Controller self-test: 0x55 means it passed.
                self.system_flag = true;
                self.push(0x55, Source::Keyboard);
            }
            0xAD => self.ram[0] |= CMD_KEYBOARD_DISABLED,
            0xAE => self.ram[0] &= !CMD_KEYBOARD_DISABLED,
            0xD0 => {
                let port = 0x01 | ((self.a20_enabled as u8) << 1);
                self.push(port, Source::Keyboard);
            }
            0xD1 => self.pending = Some(PendingParameter::OutputPort),
            0xD2 => self.pending = Some(PendingParameter::EchoAs(Source::Keyboard)),
            0xD3 => self.pending = Some(PendingParameter::EchoAs(Source::Aux)),
            0xD4 => self.pending = Some(PendingParameter::ToAux),
            0xDD => self.a20_enabled = false,
            0xDF => self.a20_enabled = true,
            // Pulse output-port lines whose bit is 0 in the low nibble; bit 0 is the reset line.
            0xF0..=0xFF if command & 0x01 == 0 => ctx.request(MachineEvent::ResetRequested),
            _ => {}
        }
    }

    fn write_data(&mut self, value: u8, ctx: &mut DeviceCtx) {
        match self.pending.take() {
            Some(PendingParameter::WriteRam(index)) => {
                self.ram[index] = value;
                if index == 0 {
                    self.system_flag = value & CMD_SYSTEM_FLAG != 0;
                }
            }
            Some(PendingParameter::OutputPort) => self.set_output_port(value, ctx),
            Some(PendingParameter::EchoAs(source)) => self.push(value, source),
            Some(PendingParameter::ToAux) => {}
            None => self.keyboard_command(value),
        }
    }

    /// A byte the guest sends to the keyboard itself.
    fn keyboard_command(&mut self, value: u8) {
        if let Some(parameter) = self.keyboard_pending.take() {
            match parameter {
                KeyboardParameter::SetLeds => self.leds = value & 0x07,
                KeyboardParameter::SetTypematic => {}
                KeyboardParameter::ScanCodeSet => {
                    if value == 0 {
                        // "Which set?": acknowledge, then report it.
                        self.push(KEYBOARD_ACK, Source::Keyboard);
                        self.push(self.scan_code_set, Source::Keyboard);
                        return;
                    }
                    if (1..=3).contains(&value) {
                        self.scan_code_set = value;
                    }
                }
            }
            self.push(KEYBOARD_ACK, Source::Keyboard);
            return;
        }
        let replies: &[u8] = match value {
            0xED => {
                self.keyboard_pending = Some(KeyboardParameter::SetLeds);
                &[KEYBOARD_ACK]
            }
            0xEE => &[0xEE], // echo
            0xF0 => {
                self.keyboard_pending = Some(KeyboardParameter::ScanCodeSet);
                &[KEYBOARD_ACK]
            }
            0xF2 => &[KEYBOARD_ACK, 0xAB, 0x83], // identify: an MF2 keyboard
            0xF3 => {
                self.keyboard_pending = Some(KeyboardParameter::SetTypematic);
                &[KEYBOARD_ACK]
            }
            0xF4 => {
                self.keyboard_scanning = true;
                &[KEYBOARD_ACK]
            }
            0xF5 => {
                self.keyboard_scanning = false;
                &[KEYBOARD_ACK]
            }
            0xF6 => &[KEYBOARD_ACK],
            0xFF => {
                self.keyboard_scanning = true;
                self.leds = 0;
                &[KEYBOARD_ACK, KEYBOARD_SELF_TEST_PASSED]
            }
            _ => &[KEYBOARD_RESEND],
        };
        for &reply in replies {
            self.push(reply, Source::Keyboard);
        }
    }

    fn write_port_92(&mut self, value: u8, ctx: &mut DeviceCtx) {
        self.a20_enabled = value & 0x02 != 0;
        // Bit 0 resets the CPU on its rising edge.
        if value & 0x01 != 0 && self.port_92 & 0x01 == 0 {
            ctx.request(MachineEvent::ResetRequested);
        }
        self.port_92 = value & 0x03;
    }
}

impl BusDevice for I8042 {
    fn name(&self) -> &'static str {
        "i8042"
    }

    fn pio_read(&mut self, port: u16, _size: u8, ctx: &mut DeviceCtx) -> u32 {
        let value = match port {
            0x60 => {
                if let Some((byte, _)) = self.output.pop_front() {
                    self.last_output = byte;
                    // Drop the line first, so the next queued byte raises a fresh edge.
                    ctx.set_irq_level(self.lines[0], false);
                    ctx.set_irq_level(self.lines[1], false);
                }
                self.last_output
            }
            0x64 => self.status(),
            0x92 => (self.port_92 & 0x01) | ((self.a20_enabled as u8) << 1),
            _ => 0xFF,
        };
        self.update_irqs(ctx);
        value as u32
    }

    fn pio_write(&mut self, port: u16, _size: u8, value: u32, ctx: &mut DeviceCtx) {
        let value = value as u8;
        match port {
            0x60 => {
                self.last_write_was_command = false;
                self.write_data(value, ctx);
            }
            0x64 => {
                self.last_write_was_command = true;
                self.controller_command(value, ctx);
            }
            0x92 => self.write_port_92(value, ctx),
            _ => {}
        }
        self.update_irqs(ctx);
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::IrqLines;

    struct Env {
        irq: IrqLines,
        events: Vec<MachineEvent>,
    }

    impl Env {
        fn ctx(&mut self) -> DeviceCtx<'_> {
            DeviceCtx {
                now_ns: 0,
                source: crate::bus::DeviceId(0),
                dma: crate::bus::Dma::none(),
                irq: &mut self.irq,
                events: &mut self.events,
            }
        }
    }

    fn setup() -> (I8042, Env) {
        let env = Env {
            irq: IrqLines::default(),
            events: Vec::new(),
        };
        (I8042::new(), env)
    }

    fn inb(kbc: &mut I8042, env: &mut Env, port: u16) -> u8 {
        kbc.pio_read(port, 1, &mut env.ctx()) as u8
    }

    fn outb(kbc: &mut I8042, env: &mut Env, port: u16, value: u8) {
        kbc.pio_write(port, 1, value as u32, &mut env.ctx());
    }

    /// The polled read every driver does: wait for "output buffer full", then read 0x60.
    fn read_reply(kbc: &mut I8042, env: &mut Env) -> Option<u8> {
        (inb(kbc, env, 0x64) & STATUS_OUTPUT_FULL != 0).then(|| inb(kbc, env, 0x60))
    }

    #[test]
    fn status_after_reset_and_self_test() {
        let (mut kbc, mut env) = setup();
        assert_eq!(
            inb(&mut kbc, &mut env, 0x64),
            0x14,
            "system flag, not inhibited, empty"
        );
        outb(&mut kbc, &mut env, 0x64, 0xAA);
        assert_eq!(
            inb(&mut kbc, &mut env, 0x64) & 0x09,
            0x09,
            "full, last write was a command"
        );
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x55));
        assert_eq!(
            read_reply(&mut kbc, &mut env),
            None,
            "the buffer is empty again"
        );
        outb(&mut kbc, &mut env, 0x64, 0xAB);
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x00));
    }

    #[test]
    fn reading_and_writing_the_command_byte() {
        let (mut kbc, mut env) = setup();
        outb(&mut kbc, &mut env, 0x64, 0x20);
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x45));
        outb(&mut kbc, &mut env, 0x64, 0x60);
        outb(&mut kbc, &mut env, 0x60, 0x30); // no interrupts, both ports disabled, no SYS flag
        assert_eq!(kbc.command_byte(), 0x30);
        assert_eq!(inb(&mut kbc, &mut env, 0x64) & STATUS_SYSTEM_FLAG, 0);
        outb(&mut kbc, &mut env, 0x64, 0xAE);
        outb(&mut kbc, &mut env, 0x64, 0xA8);
        outb(&mut kbc, &mut env, 0x64, 0x20);
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x00));
        outb(&mut kbc, &mut env, 0x64, 0xAD);
        assert_eq!(kbc.command_byte(), CMD_KEYBOARD_DISABLED);
    }

    #[test]
    fn reset_through_command_0xfe_output_port_and_port_92() {
        let (mut kbc, mut env) = setup();
        outb(&mut kbc, &mut env, 0x64, 0xFF); // pulses nothing
        assert!(env.events.is_empty());
        outb(&mut kbc, &mut env, 0x64, 0xFE);
        assert_eq!(env.events, vec![MachineEvent::ResetRequested]);
        env.events.clear();
        outb(&mut kbc, &mut env, 0x64, 0xD1);
        outb(&mut kbc, &mut env, 0x60, 0x03); // reset line high: nothing happens
        assert!(env.events.is_empty());
        outb(&mut kbc, &mut env, 0x64, 0xD1);
        outb(&mut kbc, &mut env, 0x60, 0x02);
        assert_eq!(env.events, vec![MachineEvent::ResetRequested]);
        env.events.clear();
        outb(&mut kbc, &mut env, 0x92, 0x03);
        assert_eq!(env.events, vec![MachineEvent::ResetRequested]);
    }

    #[test]
    fn a20_gate_through_the_output_port_and_port_92() {
        let (mut kbc, mut env) = setup();
        assert!(kbc.a20_enabled());
        outb(&mut kbc, &mut env, 0x64, 0xD1);
        outb(&mut kbc, &mut env, 0x60, 0x01);
        assert!(!kbc.a20_enabled());
        outb(&mut kbc, &mut env, 0x64, 0xD0);
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x01));
        outb(&mut kbc, &mut env, 0x92, 0x02);
        assert!(kbc.a20_enabled());
        assert_eq!(inb(&mut kbc, &mut env, 0x92), 0x02);
        assert!(env.events.is_empty());
    }

    #[test]
    fn keyboard_replies_raise_irq1_one_byte_at_a_time() {
        let (mut kbc, mut env) = setup();
        outb(&mut kbc, &mut env, 0x60, 0xFF); // reset the keyboard
        assert_eq!(env.irq.take_edges(), 1 << 1);
        assert_eq!(inb(&mut kbc, &mut env, 0x60), KEYBOARD_ACK);
        assert_eq!(
            env.irq.take_edges(),
            1 << 1,
            "the next byte is a new interrupt"
        );
        assert_eq!(inb(&mut kbc, &mut env, 0x60), KEYBOARD_SELF_TEST_PASSED);
        assert_eq!(env.irq.levels() & (1 << 1), 0, "empty buffer, line low");
        assert_eq!(
            inb(&mut kbc, &mut env, 0x60),
            KEYBOARD_SELF_TEST_PASSED,
            "stale byte"
        );
        assert_eq!(env.irq.take_edges(), 0);
    }

    #[test]
    fn keyboard_commands_with_parameters() {
        let (mut kbc, mut env) = setup();
        let mut exchange = |bytes: &[u8]| {
            for &b in bytes {
                outb(&mut kbc, &mut env, 0x60, b);
            }
            std::iter::from_fn(|| read_reply(&mut kbc, &mut env)).collect::<Vec<u8>>()
        };
        assert_eq!(exchange(&[0xED, 0x05]), vec![0xFA, 0xFA]);
        assert_eq!(exchange(&[0xF0, 0x00]), vec![0xFA, 0xFA, 0x02]);
        assert_eq!(exchange(&[0xF2]), vec![0xFA, 0xAB, 0x83]);
        assert_eq!(exchange(&[0xEE]), vec![0xEE]);
        assert_eq!(exchange(&[0x12]), vec![0xFE]);
        assert_eq!(kbc.leds(), 0x05);
    }

    #[test]
    fn scancodes_arrive_unless_the_keyboard_is_disabled() {
        let (mut kbc, mut env) = setup();
        kbc.press_scancodes(&[0x1E, 0x9E], &mut env.ctx()); // 'a' down and up
        assert_eq!(env.irq.take_edges(), 1 << 1);
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x1E));
        assert_eq!(read_reply(&mut kbc, &mut env), Some(0x9E));
        outb(&mut kbc, &mut env, 0x64, 0xAD);
        kbc.press_scancodes(&[0x1E], &mut env.ctx());
        assert_eq!(read_reply(&mut kbc, &mut env), None);
        kbc.press_scancodes(&[0x1E; 1000], &mut env.ctx());
        outb(&mut kbc, &mut env, 0x64, 0xAE);
        kbc.press_scancodes(&[0x1E; 1000], &mut env.ctx());
        let queued = std::iter::from_fn(|| read_reply(&mut kbc, &mut env)).count();
        assert_eq!(queued, MAX_QUEUED_BYTES, "a flood is bounded");
    }

    #[test]
    fn aux_loopback_sets_the_aux_bit_and_irq12() {
        let (mut kbc, mut env) = setup();
        outb(&mut kbc, &mut env, 0x64, 0x60);
        outb(
            &mut kbc,
            &mut env,
            0x60,
            CMD_AUX_INTERRUPT | CMD_SYSTEM_FLAG,
        );
        let _ = env.irq.take_edges();
        outb(&mut kbc, &mut env, 0x64, 0xD3);
        outb(&mut kbc, &mut env, 0x60, 0x5A);
        assert_eq!(inb(&mut kbc, &mut env, 0x64) & 0x21, 0x21);
        assert_eq!(env.irq.take_edges(), 1 << 12);
        assert_eq!(inb(&mut kbc, &mut env, 0x60), 0x5A);
        outb(&mut kbc, &mut env, 0x64, 0xD4);
        outb(&mut kbc, &mut env, 0x60, 0xFF); // to the absent mouse: no reply
        assert_eq!(read_reply(&mut kbc, &mut env), None);
    }
}
