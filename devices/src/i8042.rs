//! STUB — being written by the devices helper.
use std::any::Any;
use crate::bus::BusDevice;
pub struct I8042;
impl I8042 { pub fn new() -> Self { I8042 } }
impl BusDevice for I8042 { fn name(&self) -> &'static str { "i8042" } fn as_any_mut(&mut self) -> &mut dyn Any { self } }
