//! STUB — being written by the devices helper.
pub struct PicPair {}
impl Default for PicPair { fn default() -> Self { Self::new() } }
impl PicPair {
    pub fn new() -> Self { PicPair {} }
    pub fn pio_read(&mut self, _port: u16) -> u32 { 0 }
    pub fn pio_write(&mut self, _port: u16, _value: u8) {}
    pub fn raise_irq(&mut self, _irq: u8) {}
    pub fn set_levels(&mut self, _levels: u16) {}
    pub fn has_interrupt(&self) -> bool { false }
    pub fn acknowledge(&mut self) -> u8 { 0x0F }
}
