//! STUB — being written by the devices helper.
use std::any::Any;
use crate::bus::BusDevice;
pub struct Cmos;
impl Cmos { pub fn new(_ram: u64) -> Self { Cmos } }
impl BusDevice for Cmos { fn name(&self) -> &'static str { "cmos" } fn as_any_mut(&mut self) -> &mut dyn Any { self } }
