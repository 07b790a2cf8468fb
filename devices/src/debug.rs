//! Debugging ports: POST codes (0x80), the Bochs/QEMU debug console (0xE9), isa-debug-exit (0xF4).
//! Teaches: the simplest possible devices — one port, one job — and how test kernels report progress and results without any driver.
//!
//! - Port 0x80: firmware writes a progress byte here at each boot step (a "POST code"); on real
//!   boards a two-digit display shows it. Linux also writes here just to waste a little time.
//! - Port 0xE9: every byte written appears on the host console, no UART setup needed.
//! - Port 0xF4: writing a value ends the machine, as QEMU's `isa-debug-exit` does, with process
//!   exit status `(value << 1) | 1`, so a test kernel can report pass or fail to a script.

use std::any::Any;

use crate::bus::{BusDevice, DeviceCtx, MachineEvent};

/// POST codes kept when nobody reads them; beyond this the oldest half is dropped (Linux uses
/// port 0x80 as an I/O delay and can write it millions of times).
pub const MAX_POST_CODES: usize = 1 << 16;

/// Debug-console bytes kept when nobody drains them; beyond this the oldest half is dropped.
pub const MAX_CONSOLE_BYTES: usize = 16 << 20;

/// Appends `byte` to `log`, dropping the oldest half when `log` reaches `limit`.
fn append_bounded(log: &mut Vec<u8>, byte: u8, limit: usize) {
    if log.len() >= limit {
        log.drain(..limit / 2);
    }
    log.push(byte);
}

/// POST code port 0x80.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default)]
pub struct PostCodes {
    /// Every code written, oldest first (the most recent [`MAX_POST_CODES`] at most).
    pub codes: Vec<u8>,
    last: Option<u8>,
}

impl PostCodes {
    /// The code on the display: the last one written.
    pub fn last(&self) -> Option<u8> {
        self.last
    }
}

impl BusDevice for PostCodes {
    fn name(&self) -> &'static str {
        "post"
    }

    fn pio_read(&mut self, _port: u16, _size: u8, _ctx: &mut DeviceCtx) -> u32 {
        // Before the first write the port floats, like an empty bus.
        self.last.unwrap_or(0xFF) as u32
    }

    fn pio_write(&mut self, _port: u16, _size: u8, value: u32, _ctx: &mut DeviceCtx) {
        let code = value as u8;
        self.last = Some(code);
        append_bounded(&mut self.codes, code, MAX_POST_CODES);
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The debug console on port 0xE9.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default)]
pub struct DebugCon {
    /// Bytes written and not yet taken (the most recent [`MAX_CONSOLE_BYTES`] at most).
    pub output: Vec<u8>,
}

impl BusDevice for DebugCon {
    fn name(&self) -> &'static str {
        "debugcon"
    }

    /// Reading returns 0xE9, as in Bochs and QEMU: guests probe for the console this way.
    fn pio_read(&mut self, _port: u16, _size: u8, _ctx: &mut DeviceCtx) -> u32 {
        0xE9
    }

    fn pio_write(&mut self, _port: u16, _size: u8, value: u32, _ctx: &mut DeviceCtx) {
        append_bounded(&mut self.output, value as u8, MAX_CONSOLE_BYTES);
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// QEMU's `isa-debug-exit` on port 0xF4: any write asks the machine to stop.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default)]
pub struct DebugExit;

impl BusDevice for DebugExit {
    fn name(&self) -> &'static str {
        "debug-exit"
    }

    /// Byte, word and dword writes are all accepted; the value is what was written, so an exit
    /// status is `(value << 1) | 1` ([`MachineEvent::exit_status`]).
    fn pio_write(&mut self, _port: u16, _size: u8, value: u32, ctx: &mut DeviceCtx) {
        ctx.request(MachineEvent::DebugExit { value });
    }

    crate::snapshot::plain_data_snapshot!();

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bus, PcPlatformConfig};

    fn pc() -> Bus {
        Bus::new_pc(PcPlatformConfig::default())
    }

    #[test]
    fn post_codes_are_recorded_in_order_and_read_back() {
        let mut bus = pc();
        assert_eq!(bus.io_in(0x80, 1), 0xFF);
        for code in [0x01, 0x10, 0x2A] {
            bus.io_out(0x80, 1, code);
        }
        assert_eq!(bus.post_codes(), vec![0x01, 0x10, 0x2A]);
        assert_eq!(bus.io_in(0x80, 1), 0x2A);
        assert_eq!(bus.device_mut::<PostCodes>().unwrap().last(), Some(0x2A));
    }

    #[test]
    fn post_code_log_stays_bounded_and_keeps_the_newest() {
        let mut post = PostCodes::default();
        let mut events = Vec::new();
        let mut irq = crate::bus::IrqLines::default();
        let mut ctx = DeviceCtx {
            now_ns: 0,
            source: crate::bus::DeviceId(0),
            dma: crate::bus::Dma::none(),
            irq: &mut irq,
            events: &mut events,
        };
        for i in 0..(3 * MAX_POST_CODES) {
            post.pio_write(0x80, 1, i as u32, &mut ctx);
        }
        assert!(post.codes.len() <= MAX_POST_CODES);
        assert_eq!(*post.codes.last().unwrap(), (3 * MAX_POST_CODES - 1) as u8);
    }

    #[test]
    fn debug_console_collects_bytes_and_identifies_itself() {
        let mut bus = pc();
        assert_eq!(bus.io_in(0xE9, 1), 0xE9);
        for &b in b"ok\n" {
            bus.io_out(0xE9, 1, b as u32);
        }
        assert_eq!(bus.take_console_output(), b"ok\n");
        assert!(bus.take_console_output().is_empty());
    }

    #[test]
    fn debug_exit_requests_an_exit_with_qemu_status() {
        let mut bus = pc();
        assert!(!bus.has_events());
        bus.io_out(0xF4, 1, 0x00);
        bus.io_out(0xF4, 2, 0x0010);
        bus.io_out(0xF4, 4, 0x1234_5678);
        let events = bus.take_events();
        assert_eq!(
            events,
            vec![
                MachineEvent::DebugExit { value: 0 },
                MachineEvent::DebugExit { value: 0x10 },
                MachineEvent::DebugExit { value: 0x1234_5678 },
            ]
        );
        let statuses: Vec<_> = events.iter().map(|e| e.exit_status()).collect();
        // (0 << 1) | 1 = 1, (0x10 << 1) | 1 = 0x21; a process status keeps only 8 bits.
        assert_eq!(statuses, vec![Some(1), Some(0x21), Some(0xF1)]);
    }
}
