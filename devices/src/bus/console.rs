//! The host's side of the console devices: serial output and input, the debug console, POST codes.
//! Teaches: where a VMM's terminal meets the guest's UART.

use super::{with_device, Bus, DeviceId};

impl Bus {
    /// Bytes the guest sent to the UART since the last call.
    pub fn take_serial_output(&mut self) -> Vec<u8> {
        self.device_mut::<crate::uart::Uart>()
            .map(|u| u.take_output())
            .unwrap_or_default()
    }

    /// Adds bytes to the console output as if the UART had sent them (a paravirtual console).
    pub fn write_console(&mut self, bytes: &[u8]) {
        if let Some(uart) = self.device_mut::<crate::uart::Uart>() {
            uart.write_console(bytes);
        }
    }

    /// Sends the UART's output straight to a host writer (a terminal) from now on, instead of
    /// buffering it for [`Bus::take_serial_output`].
    pub fn set_serial_sink(&mut self, sink: Box<dyn std::io::Write>) {
        if let Some(uart) = self.device_mut::<crate::uart::Uart>() {
            uart.set_output_sink(sink);
        }
    }

    /// A writer into the UART's output stream, for a second console device (virtio-console):
    /// its bytes reach [`Bus::take_serial_output`] or the serial sink in order with the UART's,
    /// so the host sees one console whichever device the guest prints through.
    pub fn console_writer(&mut self) -> Option<Box<dyn std::io::Write>> {
        self.device_mut::<crate::uart::Uart>()
            .map(|u| u.console_writer())
    }

    /// Queues bytes typed by the user into the UART's receive FIFO.
    pub fn send_serial_input(&mut self, bytes: &[u8]) {
        let Some(index) = self
            .slots
            .iter_mut()
            .position(|s| s.device.as_any_mut().is::<crate::uart::Uart>())
        else {
            return;
        };
        with_device!(self, DeviceId(index), &mut [], |d, ctx| {
            if let Some(uart) = d.as_any_mut().downcast_mut::<crate::uart::Uart>() {
                uart.receive(bytes, &mut ctx);
            }
        });
        self.sync_irqs();
    }

    /// Bytes written to the debug console (port 0xE9) since the last call.
    pub fn take_console_output(&mut self) -> Vec<u8> {
        self.device_mut::<crate::debug::DebugCon>()
            .map(|d| std::mem::take(&mut d.output))
            .unwrap_or_default()
    }

    /// Every value written to POST port 0x80, in order.
    pub fn post_codes(&mut self) -> Vec<u8> {
        self.device_mut::<crate::debug::PostCodes>()
            .map(|p| p.codes.clone())
            .unwrap_or_default()
    }
}
