//! STUB — being written by the devices helper.
use std::any::Any;
use crate::bus::{BusDevice, DeviceCtx, MachineEvent};
#[derive(Default)] pub struct PostCodes { pub codes: Vec<u8> }
#[derive(Default)] pub struct DebugCon { pub output: Vec<u8> }
pub struct DebugExit;
impl BusDevice for PostCodes { fn name(&self) -> &'static str { "post" } fn as_any_mut(&mut self) -> &mut dyn Any { self }
  fn pio_write(&mut self, _p: u16, _s: u8, v: u32, _c: &mut DeviceCtx) { self.codes.push(v as u8) } }
impl BusDevice for DebugCon { fn name(&self) -> &'static str { "debugcon" } fn as_any_mut(&mut self) -> &mut dyn Any { self }
  fn pio_write(&mut self, _p: u16, _s: u8, v: u32, _c: &mut DeviceCtx) { self.output.push(v as u8) } }
impl BusDevice for DebugExit { fn name(&self) -> &'static str { "debug-exit" } fn as_any_mut(&mut self) -> &mut dyn Any { self }
  fn pio_write(&mut self, _p: u16, _s: u8, v: u32, c: &mut DeviceCtx) { c.request(MachineEvent::DebugExit { value: v }) } }
