//! STUB — being written by the devices helper.
use std::any::Any;
use crate::bus::BusDevice;
pub struct Pit;
impl Pit { pub fn new() -> Self { Pit } }
impl BusDevice for Pit { fn name(&self) -> &'static str { "pit" } fn as_any_mut(&mut self) -> &mut dyn Any { self } }
