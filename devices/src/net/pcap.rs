//! Packet capture in the classic libpcap file format, the one tcpdump and Wireshark read.
//! Teaches: a capture file is a 24-byte global header, then per frame a 16-byte record header
//! (timestamp, captured length, original length) followed by the frame's bytes.
//!
//! The format, all fields little-endian here (a reader tells the byte order from the magic):
//!
//! ```text
//! global header  magic 0xa1b2c3d4 (µs timestamps) | version 2.4 | thiszone 0 | sigfigs 0
//!                | snaplen 65535 | linktype 1 (Ethernet: frames start at the destination MAC)
//! each frame     ts_sec | ts_usec | incl_len (bytes in the file) | orig_len (bytes on the wire)
//!                then incl_len bytes of the frame
//! ```
//!
//! This module writes to any [`std::io::Write`]; it opens no file itself, so `devices` stays
//! portable (the host opens the file and hands it over). A write error never panics: it is
//! returned, counted, and ends the capture (a half-written record would misalign every record
//! after it, so nothing more is written).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Written first; a reader seeing `d4 c3 b2 a1` knows the file is little-endian.
pub const MAGIC: u32 = 0xa1b2_c3d4;
pub const VERSION_MAJOR: u16 = 2;
pub const VERSION_MINOR: u16 = 4;
/// The longest frame kept whole; longer ones are cut to this and keep their true `orig_len`.
pub const SNAPLEN: u32 = 65535;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const GLOBAL_HEADER_LEN: usize = 24;
pub const RECORD_HEADER_LEN: usize = 16;

/// Where a switch port (or anything else) sends each frame it sees, with the time it saw it.
pub trait CaptureSink {
    /// Records `frame`, seen at `ts_ns` (nanoseconds of the switch's clock). Never fails
    /// loudly: a sink that cannot record counts the loss itself.
    fn capture(&mut self, ts_ns: u64, frame: &[u8]);

    /// Pushes buffered records out (to the file); the default has nothing buffered.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One sink shared by several ports (one file for the whole switch): each port holds a clone.
impl<T: CaptureSink + ?Sized> CaptureSink for Arc<Mutex<T>> {
    fn capture(&mut self, ts_ns: u64, frame: &[u8]) {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .capture(ts_ns, frame)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// A pcap file being written to `W`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    frames: u64,
    errors: u64,
    /// Set by the first failed write; from then on frames are counted as errors, not written.
    broken: bool,
}

// ANCHOR: record_header
/// The 16-byte record header for a frame of `orig_len` bytes seen at `ts_ns`.
fn record_header(ts_ns: u64, orig_len: usize) -> [u8; RECORD_HEADER_LEN] {
    // The format has 32-bit seconds: a clock past 2106 (or a huge virtual one) wraps.
    let ts_sec = (ts_ns / 1_000_000_000) as u32;
    let ts_usec = ((ts_ns % 1_000_000_000) / 1_000) as u32;
    let orig_len = u32::try_from(orig_len).unwrap_or(u32::MAX);
    let incl_len = orig_len.min(SNAPLEN);
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&ts_sec.to_le_bytes());
    h[4..8].copy_from_slice(&ts_usec.to_le_bytes());
    h[8..12].copy_from_slice(&incl_len.to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.to_le_bytes());
    h
}
// ANCHOR_END: record_header

/// The 24-byte global header.
pub fn global_header() -> [u8; GLOBAL_HEADER_LEN] {
    let mut h = [0u8; GLOBAL_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    h[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
    // 8..12 thiszone (GMT offset) and 12..16 sigfigs (timestamp accuracy) stay 0, as usual.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    h
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&global_header())?;
        Ok(Self {
            out,
            frames: 0,
            errors: 0,
            broken: false,
        })
    }

    /// Appends one frame seen at `ts_ns`. Frames over [`SNAPLEN`] are cut (the record keeps
    /// the original length). After an error the capture is over: this returns an error and
    /// counts it without writing.
    pub fn write_frame(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        if self.broken {
            self.errors += 1;
            return Err(io::Error::other(
                "pcap capture stopped after an earlier write error",
            ));
        }
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let result = self
            .out
            .write_all(&record_header(ts_ns, frame.len()))
            .and_then(|()| self.out.write_all(kept));
        match result {
            Ok(()) => {
                self.frames += 1;
                Ok(())
            }
            Err(e) => {
                self.errors += 1;
                self.broken = true;
                Err(e)
            }
        }
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames lost to write errors (the failed one and every one after it).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> CaptureSink for PcapWriter<W> {
    fn capture(&mut self, ts_ns: u64, frame: &[u8]) {
        // Counted in `errors`; a capture problem must not stop the switch.
        let _ = self.write_frame(ts_ns, frame);
    }

    fn flush(&mut self) -> io::Result<()> {
        PcapWriter::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_and_records_are_laid_out_as_libpcap_reads_them() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(3_000_123_456, &[0xAA; 60]).unwrap();
        w.write_frame(0, &[0xBB; 14]).unwrap();
        assert_eq!(w.frames(), 2);
        let b = w.into_inner();
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        assert_eq!(le32(&b, 16), 65535);
        assert_eq!(le32(&b, 20), 1);
        let r = GLOBAL_HEADER_LEN;
        assert_eq!((le32(&b, r), le32(&b, r + 4)), (3, 123));
        assert_eq!((le32(&b, r + 8), le32(&b, r + 12)), (60, 60));
        assert_eq!(&b[r + 16..r + 76], &[0xAA; 60]);
        let r2 = r + RECORD_HEADER_LEN + 60;
        assert_eq!(le32(&b, r2 + 8), 14);
        assert_eq!(b.len(), r2 + RECORD_HEADER_LEN + 14);
    }

    #[test]
    fn frames_past_the_snaplen_are_cut_but_keep_their_length() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(0, &vec![1u8; SNAPLEN as usize + 10]).unwrap();
        let b = w.into_inner();
        let r = GLOBAL_HEADER_LEN;
        assert_eq!(le32(&b, r + 8), SNAPLEN);
        assert_eq!(le32(&b, r + 12), SNAPLEN + 10);
        assert_eq!(b.len(), r + RECORD_HEADER_LEN + SNAPLEN as usize);
    }

    /// Accepts `room` bytes, then fails every write; counts the calls.
    struct Full {
        room: usize,
        calls: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_returned_counted_and_ends_the_capture() {
        assert!(PcapWriter::new(Full { room: 10, calls: 0 }).is_err());
        // Room for the header, one 60-byte frame and 5 bytes of the next record.
        let room = GLOBAL_HEADER_LEN + RECORD_HEADER_LEN + 60 + 5;
        let mut w = PcapWriter::new(Full { room, calls: 0 }).unwrap();
        w.write_frame(0, &[0; 60]).unwrap();
        assert!(w.write_frame(1, &[0; 60]).is_err());
        let calls = w.get_ref().calls;
        // The stream is misaligned now: later frames are counted, never written.
        w.capture(2, &[0; 1]);
        assert!(w.write_frame(3, &[0; 1]).is_err());
        assert_eq!((w.frames(), w.errors()), (1, 3));
        assert_eq!(w.get_ref().calls, calls);
    }

    #[test]
    fn a_shared_writer_takes_frames_from_several_handles() {
        let shared = Arc::new(Mutex::new(PcapWriter::new(Vec::new()).unwrap()));
        let mut a: Box<dyn CaptureSink> = Box::new(shared.clone());
        let mut b: Box<dyn CaptureSink> = Box::new(shared.clone());
        a.capture(1, &[0; 20]);
        b.capture(2, &[0; 30]);
        a.flush().unwrap();
        assert_eq!(shared.lock().unwrap().frames(), 2);
    }
}
