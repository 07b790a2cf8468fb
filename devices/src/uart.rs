//! STUB — being written by the devices helper.
use std::any::Any;
use crate::bus::{BusDevice, DeviceCtx};
#[derive(Default)]
pub struct Uart { out: Vec<u8> }
impl Uart { pub fn new() -> Self { Uart::default() }
  pub fn take_output(&mut self) -> Vec<u8> { std::mem::take(&mut self.out) }
  pub fn receive(&mut self, _b: &[u8], _ctx: &mut DeviceCtx) {} }
impl BusDevice for Uart { fn name(&self) -> &'static str { "uart" }
  fn pio_write(&mut self, port: u16, _s: u8, v: u32, _c: &mut DeviceCtx) { if port == 0x3F8 { self.out.push(v as u8) } }
  fn pio_read(&mut self, port: u16, _s: u8, _c: &mut DeviceCtx) -> u32 { if port == 0x3FD { 0x60 } else { 0 } }
  fn as_any_mut(&mut self) -> &mut dyn Any { self } }
