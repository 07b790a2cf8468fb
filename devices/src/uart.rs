//! The 16550A serial port at 0x3F8 (COM1, IRQ 4), built on rust-vmm's `vm-superio` register model.
//! Teaches: how a guest driver talks to a UART (divisor latch, line status polling, FIFO, interrupt enable) and how a VMM glues a reusable device model to its own bus.
//!
//! `vm_superio::Serial` implements the registers; this file connects it to the machine:
//! - its `Trigger` (how the model says "interrupt!") only sets a flag; after each access we turn
//!   that flag into a pulse on IRQ 4, so the PIC sees it like any other device's interrupt;
//! - its output goes to a byte buffer the host drains with [`Uart::take_output`], or straight to
//!   a host writer (a terminal) set with [`Uart::set_output_sink`]; a paravirtual console
//!   writes into the same stream through [`Uart::console_writer`], so the host reads one
//!   console with both devices' bytes in the order the guest sent them;
//! - input typed by the user waits in our own queue and is fed into the 64-byte receive FIFO
//!   whenever the guest has emptied it, so long pastes are not cut off at the FIFO size.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{self, Write};
use std::rc::Rc;

use vm_superio::serial::{NoEvents, SerialState};
use vm_superio::{Serial, Trigger};

use crate::bus::{BusDevice, DeviceCtx, IrqLine};
use crate::snapshot::{DeviceSnapshot, SnapshotError};

/// COM1's interrupt line on a PC.
pub const UART_IRQ: u8 = 4;

/// Guest output kept when nobody drains it: beyond this the oldest half is dropped, so a chatty
/// guest left alone cannot eat the host's memory.
pub const MAX_BUFFERED_OUTPUT: usize = 16 << 20;

/// Input waiting for the FIFO is capped too: pasting more than this drops the excess.
pub const MAX_PENDING_INPUT: usize = 1 << 20;

/// The UART model's interrupt "wire": it records that the model asked for an interrupt.
#[derive(Debug, Default)]
struct InterruptFlag(Cell<bool>);

impl Trigger for InterruptFlag {
    type E = Infallible;

    fn trigger(&self) -> Result<(), Infallible> {
        self.0.set(true);
        Ok(())
    }
}

/// Where the bytes the guest transmits go.
enum Output {
    Buffer(Vec<u8>),
    Sink(Box<dyn Write>),
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Output::Buffer(buffer) => {
                if buffer.len() + bytes.len() > MAX_BUFFERED_OUTPUT {
                    let oldest = buffer.len().min(MAX_BUFFERED_OUTPUT / 2);
                    buffer.drain(..oldest);
                }
                let room = MAX_BUFFERED_OUTPUT - buffer.len();
                let start = bytes.len().saturating_sub(room);
                buffer.extend_from_slice(&bytes[start..]);
                Ok(bytes.len())
            }
            Output::Sink(sink) => sink.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Buffer(_) => Ok(()),
            Output::Sink(sink) => sink.flush(),
        }
    }
}

/// A handle on the one output stream: the register model writes through one, a second console
/// through others ([`Uart::console_writer`]). Devices complete their work inside the access
/// that started it, so the bytes of both arrive here in the guest's order.
#[derive(Clone)]
struct SharedOutput(Rc<RefCell<Output>>);

impl Write for SharedOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// A 16550A UART on the PC bus.
pub struct Uart {
    serial: Serial<InterruptFlag, NoEvents, SharedOutput>,
    /// The stream `serial` writes to (another handle on it).
    output: SharedOutput,
    /// Bytes received from the host that did not fit into the receive FIFO yet.
    pending_input: VecDeque<u8>,
    /// The receive FIFO's size (what `fifo_capacity` reports when it is empty).
    fifo_size: usize,
    /// The line the board wired the interrupt output to (COM1: ISA IRQ 4).
    irq: IrqLine,
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart {
    /// A UART in its reset state whose output is buffered for [`Uart::take_output`].
    pub fn new() -> Self {
        let output = SharedOutput(Rc::new(RefCell::new(Output::Buffer(Vec::new()))));
        let serial = Serial::new(InterruptFlag::default(), output.clone());
        let fifo_size = serial.fifo_capacity();
        Uart {
            serial,
            output,
            pending_input: VecDeque::new(),
            fifo_size,
            irq: IrqLine::isa(UART_IRQ),
        }
    }

    /// The same UART wired to another line (COM2 on IRQ 3, say).
    pub fn with_irq(mut self, irq: IrqLine) -> Self {
        self.irq = irq;
        self
    }

    /// Bytes the guest transmitted since the last call (empty while a sink is set).
    pub fn take_output(&mut self) -> Vec<u8> {
        match &mut *self.output.0.borrow_mut() {
            Output::Buffer(buffer) => std::mem::take(buffer),
            Output::Sink(_) => Vec::new(),
        }
    }

    /// Bytes that reach COM1's output without passing the transmit register: a paravirtual
    /// console write (one hypercall for a whole string instead of a trap per byte) lands in
    /// the same place as the UART's own output, so a reader sees one console.
    pub fn write_console(&mut self, bytes: &[u8]) {
        let out = &mut self.output;
        // A host writer that fails loses output; it must never stop or crash the guest.
        let _ = out.write_all(bytes).and_then(|_| out.flush());
    }

    /// A writer into this UART's output stream, for a second console (virtio-console): what
    /// it writes is drained by [`Uart::take_output`] or reaches the sink, in order with the
    /// UART's own bytes. It follows the stream when a sink is set later.
    pub fn console_writer(&self) -> Box<dyn Write> {
        Box::new(self.output.clone())
    }

    /// Sends everything the guest transmits from now on straight to `sink`, flushing after
    /// each byte (a terminal shows output live). Output buffered so far is written first.
    pub fn set_output_sink(&mut self, mut sink: Box<dyn Write>) {
        let buffered = self.take_output();
        // A host writer that fails loses output; it must never stop or crash the guest.
        let _ = sink.write_all(&buffered).and_then(|_| sink.flush());
        *self.output.0.borrow_mut() = Output::Sink(sink);
    }

    /// Bytes from the host (a keyboard, a test) for the guest to receive. They enter the receive
    /// FIFO as space allows, raising the received-data interrupt if the guest enabled it.
    pub fn receive(&mut self, bytes: &[u8], ctx: &mut DeviceCtx) {
        let room = MAX_PENDING_INPUT - self.pending_input.len();
        self.pending_input.extend(&bytes[..bytes.len().min(room)]);
        self.fill_fifo();
        self.forward_interrupt(ctx);
    }

    /// Moves queued input into the FIFO as far as it fits.
    fn fill_fifo(&mut self) {
        while !self.pending_input.is_empty() && self.serial.fifo_capacity() > 0 {
            let (front, _) = self.pending_input.as_slices();
            let chunk = &front[..front.len().min(self.serial.fifo_capacity())];
            match self.serial.enqueue_raw_bytes(chunk) {
                // Zero means the UART is in loopback mode: the line is disconnected from us.
                Ok(0) | Err(_) => break,
                Ok(accepted) => {
                    self.pending_input.drain(..accepted);
                }
            }
        }
    }

    /// Turns a request of the register model into a pulse on IRQ 4.
    fn forward_interrupt(&mut self, ctx: &mut DeviceCtx) {
        if self.serial.interrupt_evt().0.replace(false) {
            ctx.pulse(self.irq);
        }
    }
}

/// The UART's state as plain data, for machine snapshots.
///
/// `vm_superio::Serial` cannot simply be cloned: it owns host objects (the interrupt trigger
/// and the output writer). It does offer a state API — `Serial::state()` returns the registers
/// and the receive FIFO as a `SerialState`, `Serial::from_state()` builds a model from one —
/// so that is what we save, plus what lives outside the model: the interrupt request not yet
/// forwarded to IRQ 4, input waiting for FIFO room, and output not yet drained by the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UartState {
    #[serde(with = "SerialStateDef")]
    pub serial: SerialState,
    pub interrupt_requested: bool,
    pub pending_input: Vec<u8>,
    /// Undrained output (`None` while output goes to a host sink, which stays in place).
    pub buffered_output: Option<Vec<u8>>,
}

/// The layout of [`UartState`] (with vm-superio's `SerialState` as mirrored below): 1.
pub const UART_SNAPSHOT_VERSION: u16 = 1;

/// vm-superio's `SerialState` has no serde support: this mirror of its fields (checked by the
/// compiler against the real struct) lets serde write and read it.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "SerialState")]
struct SerialStateDef {
    baud_divisor_low: u8,
    baud_divisor_high: u8,
    interrupt_enable: u8,
    interrupt_identification: u8,
    line_control: u8,
    line_status: u8,
    modem_control: u8,
    modem_status: u8,
    scratch: u8,
    in_buffer: Vec<u8>,
}

impl Uart {
    /// The state as plain data (see [`UartState`]).
    pub fn state(&self) -> UartState {
        UartState {
            serial: self.serial.state(),
            interrupt_requested: self.serial.interrupt_evt().0.get(),
            pending_input: self.pending_input.iter().copied().collect(),
            buffered_output: match &*self.output.0.borrow() {
                Output::Buffer(b) => Some(b.clone()),
                Output::Sink(_) => None,
            },
        }
    }

    /// Rebuilds the register model from `state`, keeping the current output writer (a host
    /// sink stays connected; a buffer gets the saved undrained bytes).
    pub fn set_state(&mut self, state: &UartState) -> Result<(), SnapshotError> {
        let bad = |detail: String| SnapshotError::BadState {
            device: "uart",
            detail,
        };
        if state.serial.in_buffer.len() > self.fifo_size {
            // Checked first, so a state we refuse changes nothing.
            return Err(bad(format!(
                "{} bytes in a {}-byte receive FIFO",
                state.serial.in_buffer.len(),
                self.fifo_size
            )));
        }
        let serial = Serial::from_state(
            &state.serial,
            InterruptFlag::default(),
            NoEvents,
            self.output.clone(),
        )
        .map_err(|e| bad(format!("{e:?}")))?;
        if let (Output::Buffer(b), Some(saved)) =
            (&mut *self.output.0.borrow_mut(), &state.buffered_output)
        {
            b.clone_from(saved);
        }
        // from_state may raise the flag for a pending THR/RDA interrupt; what counts is whether
        // it was raised and not yet forwarded when the snapshot was taken.
        serial.interrupt_evt().0.set(state.interrupt_requested);
        self.serial = serial;
        self.pending_input = state.pending_input.iter().copied().collect();
        Ok(())
    }
}

impl BusDevice for Uart {
    fn name(&self) -> &'static str {
        "uart"
    }

    fn snapshot(&self) -> Option<DeviceSnapshot> {
        Some(DeviceSnapshot::of(
            "uart",
            UART_SNAPSHOT_VERSION,
            &self.state(),
        ))
    }

    fn restore(&mut self, snap: &DeviceSnapshot) -> Result<(), SnapshotError> {
        self.set_state(&snap.get::<UartState>("uart", UART_SNAPSHOT_VERSION)?)
    }

    fn pio_read(&mut self, port: u16, _size: u8, ctx: &mut DeviceCtx) -> u32 {
        let value = self.serial.read((port & 7) as u8);
        // Refill only once the guest has drained the FIFO: one received-data interrupt per
        // FIFO load, as a driver reading until "data ready" clears expects.
        if self.serial.fifo_capacity() == self.fifo_size {
            self.fill_fifo();
        }
        self.forward_interrupt(ctx);
        value as u32
    }

    fn pio_write(&mut self, port: u16, _size: u8, value: u32, ctx: &mut DeviceCtx) {
        // The only error is a failing host sink: the guest carries on, the byte is lost.
        let _ = self.serial.write((port & 7) as u8, value as u8);
        self.forward_interrupt(ctx);
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Bus;
    use std::cell::RefCell;
    use std::rc::Rc;

    const COM1: u16 = 0x3F8;
    const THR: u16 = COM1;
    const IER: u16 = COM1 + 1;
    const IIR_FCR: u16 = COM1 + 2;
    const LCR: u16 = COM1 + 3;
    const MCR: u16 = COM1 + 4;
    const LSR: u16 = COM1 + 5;

    /// A bus with only the UART, and a PIC initialized the way protected-mode kernels do.
    fn bus_with_uart() -> Bus {
        let mut bus = Bus::new();
        bus.add_pio_device(Box::new(Uart::new()), &[(0x3F8, 0x3FF)])
            .unwrap();
        for (port, value) in [
            (0x20, 0x11),
            (0xA0, 0x11),
            (0x21, 0x20),
            (0xA1, 0x28),
            (0x21, 0x04),
            (0xA1, 0x02),
            (0x21, 0x01),
            (0xA1, 0x01),
            (0x21, !(1u8 << UART_IRQ)),
            (0xA1, 0xFF),
        ] {
            bus.io_out(port, 1, value as u32);
        }
        bus
    }

    /// What every serial console driver does first: 115200 baud, 8N1, FIFO on, DTR/RTS/OUT2.
    fn init_driver(bus: &mut Bus) {
        bus.io_out(IER, 1, 0x00);
        bus.io_out(LCR, 1, 0x80); // DLAB: ports 0 and 1 become the divisor latch
        bus.io_out(COM1, 1, 0x01); // divisor 1 = 115200 baud
        bus.io_out(COM1 + 1, 1, 0x00);
        bus.io_out(LCR, 1, 0x03); // 8 data bits, no parity, 1 stop bit, DLAB off
        bus.io_out(IIR_FCR, 1, 0xC7); // enable and clear FIFOs, 14-byte trigger
        bus.io_out(MCR, 1, 0x0B);
    }

    fn send(bus: &mut Bus, text: &[u8]) {
        for &byte in text {
            let mut polls = 0;
            while bus.io_in(LSR, 1) & 0x20 == 0 {
                polls += 1;
                assert!(polls < 1000, "THR never became empty");
            }
            bus.io_out(THR, 1, byte as u32);
        }
    }

    #[test]
    fn a_polling_driver_prints_text() {
        let mut bus = bus_with_uart();
        init_driver(&mut bus);
        bus.io_out(LCR, 1, 0x83);
        assert_eq!(bus.io_in(COM1, 1), 0x01, "divisor latch reads back");
        bus.io_out(LCR, 1, 0x03);
        send(&mut bus, b"hello, world\n");
        assert_eq!(bus.take_serial_output(), b"hello, world\n");
        assert!(bus.take_serial_output().is_empty(), "taken once");
        assert!(!bus.interrupt_pending(), "no interrupt was enabled");
    }

    #[test]
    fn thr_empty_interrupt_reaches_the_pic() {
        let mut bus = bus_with_uart();
        init_driver(&mut bus);
        bus.io_out(IER, 1, 0x02); // transmitter-empty interrupt
        assert!(bus.interrupt_pending());
        assert_eq!(bus.acknowledge_interrupt(), 0x20 + UART_IRQ);
        assert_eq!(
            bus.io_in(IIR_FCR, 1),
            0xC2,
            "FIFOs on, THR empty is the cause"
        );
        assert_eq!(bus.io_in(IIR_FCR, 1), 0xC1, "reading IIR acknowledged it");
        bus.io_out(0x20, 1, 0x20); // EOI
        assert!(!bus.interrupt_pending());
        send(&mut bus, b"x");
        assert!(bus.interrupt_pending(), "sending a byte empties THR again");
    }

    #[test]
    fn received_bytes_are_read_with_lsr_data_ready() {
        let mut bus = bus_with_uart();
        init_driver(&mut bus);
        bus.io_out(IER, 1, 0x01); // received-data interrupt
        assert_eq!(bus.io_in(LSR, 1) & 0x01, 0);
        bus.send_serial_input(b"ok");
        assert!(bus.interrupt_pending());
        assert_eq!(bus.acknowledge_interrupt(), 0x24);
        assert_eq!(bus.io_in(IIR_FCR, 1), 0xC4, "received data available");
        let mut received = Vec::new();
        while bus.io_in(LSR, 1) & 0x01 != 0 {
            received.push(bus.io_in(COM1, 1) as u8);
        }
        assert_eq!(received, b"ok");
    }

    #[test]
    fn input_longer_than_the_fifo_arrives_complete_and_in_order() {
        let mut bus = bus_with_uart();
        init_driver(&mut bus);
        bus.io_out(IER, 1, 0x01);
        let input: Vec<u8> = (0..200u8).collect();
        bus.send_serial_input(&input);
        let mut received = Vec::new();
        let mut interrupts = 0;
        while bus.interrupt_pending() {
            let _ = bus.acknowledge_interrupt();
            interrupts += 1;
            while bus.io_in(LSR, 1) & 0x01 != 0 {
                received.push(bus.io_in(COM1, 1) as u8);
            }
            bus.io_out(0x20, 1, 0x20);
        }
        assert_eq!(received, input);
        // The FIFO is refilled the moment the guest empties it, so one handler run may read
        // several loads; never more than one interrupt per 64-byte load.
        assert!((1..=4).contains(&interrupts), "{interrupts} interrupts");
        assert_eq!(bus.io_in(LSR, 1) & 0x01, 0);
    }

    /// A host writer the test can look into after handing it to the UART.
    #[derive(Clone, Default)]
    struct SharedSink(Rc<RefCell<Vec<u8>>>);

    impl Write for SharedSink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_goes_straight_to_a_sink_when_set() {
        let mut bus = bus_with_uart();
        send(&mut bus, b"early ");
        let sink = SharedSink::default();
        bus.set_serial_sink(Box::new(sink.clone()));
        assert_eq!(
            sink.0.borrow().as_slice(),
            b"early ",
            "buffered bytes come first"
        );
        send(&mut bus, b"live");
        assert_eq!(sink.0.borrow().as_slice(), b"early live");
        assert!(bus.take_serial_output().is_empty());
    }

    #[test]
    fn a_second_console_writes_into_the_same_stream_in_order() {
        let mut bus = bus_with_uart();
        let mut pv = bus.console_writer().expect("the bus has a UART");
        send(&mut bus, b"uart ");
        pv.write_all(b"virtio ").unwrap();
        send(&mut bus, b"uart\n");
        assert_eq!(bus.take_serial_output(), b"uart virtio uart\n");
        let sink = SharedSink::default();
        bus.set_serial_sink(Box::new(sink.clone()));
        pv.write_all(b"follows the sink").unwrap();
        assert_eq!(sink.0.borrow().as_slice(), b"follows the sink");
    }

    #[test]
    fn a_failing_sink_does_not_stop_the_guest() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("terminal gone"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::other("terminal gone"))
            }
        }
        let mut bus = bus_with_uart();
        bus.set_serial_sink(Box::new(Broken));
        bus.io_out(IER, 1, 0x02);
        let _ = bus.acknowledge_interrupt();
        assert_eq!(bus.io_in(IIR_FCR, 1), 0xC2);
        bus.io_out(0x20, 1, 0x20);
        send(&mut bus, b"lost");
        assert!(bus.interrupt_pending(), "THR-empty still fires");
    }

    #[test]
    fn unread_output_is_bounded() {
        let mut output = Output::Buffer(Vec::new());
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..40 {
            output.write_all(&chunk).unwrap();
        }
        output.write_all(b"the end").unwrap();
        let Output::Buffer(buffer) = output else {
            unreachable!()
        };
        assert!(buffer.len() <= MAX_BUFFERED_OUTPUT);
        assert!(buffer.ends_with(b"the end"), "the newest output is kept");
    }
}
