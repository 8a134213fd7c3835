//! Streaming reader for pcap and pcapng files (optionally gzip-compressed, or stdin).
//!
//! Formats: classic pcap (tcpdump.org "pcap savefile" format, both byte orders,
//! microsecond and nanosecond magics) and pcapng (draft-ietf-opsawg-pcapng: SHB, IDB,
//! EPB, SPB, the obsolete PB; other blocks are skipped; several sections and
//! interfaces with their own link types and `if_tsresol`/`if_tsoffset`).
//!
//! A regular file is memory-mapped and packets are borrowed straight from the page
//! cache (no copy at all; the file must not be truncated while it is read). Stdin and
//! gzip streams go through one refillable buffer instead: no per-packet allocation,
//! and memory bounded by the largest record ([`MAX_RECORD`]) rather than the file size. A file cut short in its last record
//! yields every packet before the cut and then [`CaptureError::Truncated`].

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{Nanos, Packet, PacketSource};

/// Largest record we accept (pcap record or pcapng block). Real snap lengths are at
/// most 256 KiB (tcpdump's MAXIMUM_SNAPLEN); anything far beyond is corruption.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// Read chunk: large enough that the read syscall cost vanishes next to parsing.
const READ_CHUNK: usize = 1024 * 1024;

/// Problems reading a capture file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened (missing, permission denied...).
    #[error("{path}: cannot open: {source}")]
    Open { path: String, source: io::Error },
    /// The file is empty.
    #[error("{path}: empty file, not a pcap or pcapng capture")]
    Empty { path: String },
    /// The first bytes are not a pcap, pcapng or gzip magic number.
    #[error("{path}: not a pcap or pcapng capture (first bytes {magic})")]
    NotACapture { path: String, magic: String },
    /// The file ends in the middle of a record: everything before it was read.
    #[error(
        "{path}: the capture is cut short inside the packet record at byte {offset}; every packet before it was processed"
    )]
    Truncated { path: String, offset: u64 },
    /// The file ends inside its own file header: there is no packet to read.
    #[error(
        "{path}: only {have} bytes of the {need}-byte {format} file header, no packets (the file was cut short)"
    )]
    HeaderCut {
        path: String,
        have: u64,
        need: u64,
        format: &'static str,
    },
    /// A gzip stream that stops before its end (an interrupted download or copy):
    /// every packet before the cut was read.
    #[error(
        "{path}: the gzip stream is cut short ({offset} bytes of capture decompressed); every packet before the cut was processed"
    )]
    GzipCut { path: String, offset: u64 },
    /// A capture with its file header and nothing after it.
    #[error("{path}: only the {header}, no packets")]
    NoPackets { path: String, header: &'static str },
    /// A record header makes no sense (length out of range, bad block trailer...).
    #[error("{path}: corrupt capture at byte {offset}: {what}")]
    Corrupt {
        path: String,
        offset: u64,
        what: String,
    },
    /// Another process shrank the file while it was read (copytruncate rotation, a
    /// restarting writer): everything before the cut was read.
    #[error(
        "{path}: the file shrank while it was read (cut near byte {offset}); everything before was processed"
    )]
    Shrank { path: String, offset: u64 },
    /// A read failed (I/O error, a corrupt gzip stream...).
    #[error("{path}: read error: {source}")]
    Io { path: String, source: io::Error },
}

impl CaptureError {
    /// True for damage that ends a file early while everything before it was read
    /// (a warning, exit 0), as opposed to a file that cannot be read as a capture.
    pub fn is_early_end(&self) -> bool {
        matches!(
            self,
            CaptureError::Truncated { .. }
                | CaptureError::GzipCut { .. }
                | CaptureError::Shrank { .. }
                | CaptureError::NoPackets { .. }
        )
    }
}

impl CaptureError {
    /// True for errors caused by what the user asked for (exit code 2), as opposed
    /// to what the file contains (exit code 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, CaptureError::Open { .. })
    }
}

#[derive(Debug, Clone)]
struct Interface {
    linktype: u32,
    /// Timestamp units per second (if_tsresol), 10^6 by default.
    units_per_sec: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_secs: i64,
    snaplen: u32,
}

#[derive(Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Where the next packet's bytes are inside the buffer (computed without borrowing
/// the buffer, so the read loop can skip non-packet blocks).
struct Located {
    ts: Nanos,
    linktype: u32,
    start: usize,
    len: usize,
    orig_len: u32,
}

/// Problems met while reading a list of capture files in order: a file that cannot
/// be read is noted and skipped, a truncated tail is a warning.
#[derive(Debug, Default)]
pub struct InputLog {
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl InputLog {
    /// Opens `path`. `Err` when the path cannot be used at all (a usage error that
    /// stops the run), `Ok(None)` when this input is skipped (noted).
    pub fn open(&mut self, path: &str) -> Result<Option<FileSource>, CaptureError> {
        match FileSource::open(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_usage() => Err(e),
            Err(e) => {
                self.errors.push(e.to_string());
                Ok(None)
            }
        }
    }

    /// The next packet of `src`; `None` at its end, or where it is cut or corrupt
    /// (noted).
    #[inline]
    pub fn next<'a>(&mut self, path: &str, src: &'a mut FileSource) -> Option<Packet<'a>> {
        match src.next_packet() {
            Ok(p) => p,
            Err(e) if e.is_early_end() => {
                tracing::warn!(file = %path, "{e}");
                self.warnings.push(e.to_string());
                None
            }
            Err(e) => {
                self.errors.push(e.to_string());
                None
            }
        }
    }
}

/// A capture file being read from start to end.
pub struct FileSource {
    path: String,
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// The whole file, when it could be mapped (then `buf` is unused).
    map: Option<std::sync::Arc<super::mapped::MappedFile>>,
    /// Mapped bytes before this offset were released from memory (see `release_behind`).
    released: usize,
    /// Mapped bytes from here on are still needed by other threads (see `release_below`).
    release_limit: usize,
    pos: usize,
    end: usize,
    /// File offset of `buf[0]` (of the decompressed stream for .gz).
    base_offset: u64,
    eof: bool,
    /// The input is a gzip stream (cut short: `gzip_cut`).
    gzip: bool,
    gzip_cut: bool,
    /// A pcapng packet block was read (a capture without any is noted).
    pcapng_packets: bool,
    /// Bytes taken from the file or stream underneath (before decompression), for
    /// progress; a mapped file's position is `pos`.
    raw_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    format: Format,
    done: bool,
}

impl FileSource {
    /// Opens `path` (`-` is stdin), detecting gzip, pcap and pcapng by content.
    pub fn open(path: &str) -> Result<Self, CaptureError> {
        let raw: Box<dyn Read + Send> = if path == "-" {
            Box::new(io::stdin())
        } else {
            let f = File::open(Path::new(path)).map_err(|source| CaptureError::Open {
                path: path.to_string(),
                source,
            })?;
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(CaptureError::Open {
                    path: path.to_string(),
                    source: io::Error::other("is a directory"),
                });
            }
            if let Some(src) = Self::mapped(path, &f)? {
                return Ok(src);
            }
            Box::new(f)
        };
        Self::from_reader(path, raw)
    }

    /// Maps a regular, uncompressed capture file. `None` when the file should be
    /// streamed instead (gzip, empty, not a regular file, or mapping failed).
    fn mapped(path: &str, f: &File) -> Result<Option<Self>, CaptureError> {
        let regular = f
            .metadata()
            .map(|m| m.is_file() && m.len() >= 4)
            .unwrap_or(false);
        if !regular {
            return Ok(None);
        }
        // A file truncated by another process while mapped is handled (see
        // `capture::mapped`): the reader ends it with a warning.
        let Some(map) = super::mapped::MappedFile::map(f) else {
            return Ok(None);
        };
        if map.starts_with(&[0x1f, 0x8b]) {
            return Ok(None);
        }
        #[cfg(unix)]
        let _ = map.mmap().advise(memmap2::Advice::Sequential);
        super::readahead::start(&map);
        let end = map.len();
        let mut src = FileSource {
            path: path.to_string(),
            reader: Box::new(io::empty()),
            buf: Vec::new(),
            map: Some(std::sync::Arc::new(map)),
            released: 0,
            release_limit: usize::MAX,
            pos: 0,
            end,
            base_offset: 0,
            eof: true,
            gzip: false,
            gzip_cut: false,
            pcapng_packets: false,
            raw_read: Default::default(),
            format: Format::Pcap {
                big_endian: false,
                nanos: false,
                linktype: 0,
            },
            done: false,
        };
        src.read_file_header()?;
        Ok(Some(src))
    }

    /// The mapped file, when packets are borrowed from a mapping: a reader that hands
    /// packets to other threads can pass offsets into it instead of copying bytes.
    /// Pages released behind the reader fault back in from the file if read again.
    pub fn mapping(&self) -> Option<std::sync::Arc<super::mapped::MappedFile>> {
        self.map.clone()
    }

    /// Offset of the next record in the mapped file.
    pub fn mapped_position(&self) -> usize {
        self.pos
    }

    /// Other threads still read the mapping from `offset` on: pages are released only
    /// below it (and below what this reader has read).
    pub fn release_below(&mut self, offset: usize) {
        self.release_limit = offset;
    }

    /// Drops the mapped pages already read from this process's resident set, so a
    /// multi-gigabyte replay stays small (the kernel's page cache keeps them).
    fn release_behind(&mut self) {
        // 4 MiB: what a replay holds of the file stays a small part of a 128 MB budget.
        const STEP: usize = 4 * 1024 * 1024;
        let Some(map) = &self.map else {
            return;
        };
        let upto = self.pos.min(self.release_limit) & !(STEP - 1);
        if upto < self.released + STEP {
            return;
        }
        // SAFETY: the range lies inside the map and starts page-aligned (a multiple of
        // STEP). No packet borrowed through this reader is alive (`next_packet` takes
        // &mut self); other threads holding the map (`mapping`) may still read the
        // range, which is sound for a read-only file mapping: DONTNEED only drops the
        // pages, and touching them again re-reads the same bytes from the file.
        let _ = unsafe {
            map.mmap().unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                self.released,
                upto - self.released,
            )
        };
        self.released = upto;
    }

    /// The bytes `pos..end` index into.
    fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => &m[..],
            None => &self.buf,
        }
    }

    /// Reads a capture from any byte stream (gzip detected by its magic).
    pub fn from_reader(path: &str, raw: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let raw_read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let raw = Box::new(Counted {
            inner: raw,
            read: raw_read.clone(),
        });
        let mut src = FileSource {
            path: path.to_string(),
            reader: raw,
            buf: vec![0; READ_CHUNK],
            map: None,
            released: 0,
            release_limit: usize::MAX,
            pos: 0,
            end: 0,
            base_offset: 0,
            eof: false,
            gzip: false,
            gzip_cut: false,
            pcapng_packets: false,
            raw_read,
            format: Format::Pcap {
                big_endian: false,
                nanos: false,
                linktype: 0,
            },
            done: false,
        };
        src.fill(4)?;
        if src.end == 0 {
            return Err(CaptureError::Empty {
                path: std::mem::take(&mut src.path),
            });
        }
        if src.buf[..src.end].starts_with(&[0x1f, 0x8b]) {
            // Re-wrap: the bytes already read go first, then the rest of the stream.
            let head = src.buf[..src.end].to_vec();
            let rest = std::mem::replace(&mut src.reader, Box::new(io::empty()));
            let chained = io::Cursor::new(head).chain(rest);
            src.reader = Box::new(flate2::read::MultiGzDecoder::new(chained));
            src.gzip = true;
            src.pos = 0;
            src.end = 0;
            src.eof = false;
            src.fill(4)?;
            if src.end == 0 {
                return Err(CaptureError::Empty {
                    path: std::mem::take(&mut src.path),
                });
            }
        }
        src.read_file_header()?;
        Ok(src)
    }

    /// How far into the file the reader is, in bytes of the file as stored
    /// (compressed bytes for gzip): what progress and its ETA are measured in.
    pub fn position(&self) -> u64 {
        match &self.map {
            Some(_) => self.pos as u64,
            None => self.raw_read.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// How to tell from a packet of this source how far into the file the reader
    /// is, without borrowing the source (progress, at most a few times a second).
    pub fn position_source(&self) -> Position {
        match &self.map {
            Some(m) => Position::Mapped(m.as_ptr() as usize),
            None => Position::Counted(self.raw_read.clone()),
        }
    }

    /// The path this source reads, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn offset(&self) -> u64 {
        self.base_offset + self.pos as u64
    }

    fn corrupt(&self, what: impl Into<String>) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.offset(),
            what: what.into(),
        }
    }

    /// Makes at least `n` bytes available at `pos`. Returns false at end of input
    /// with fewer bytes left.
    fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        if self.end - self.pos >= n || self.map.is_some() {
            return Ok(self.end - self.pos >= n);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base_offset += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A gzip stream cut short ends like a cut pcap: what was decompressed
                // before is read, the end is noted (`end_of_input`).
                Err(e) if self.gzip && e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    self.gzip_cut = true;
                }
                Err(source) => {
                    return Err(CaptureError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(self.end - self.pos >= n)
    }

    fn u16_at(&self, off: usize, big: bool) -> u16 {
        let b = [
            self.bytes()[self.pos + off],
            self.bytes()[self.pos + off + 1],
        ];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, off: usize, big: bool) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes()[self.pos + off..self.pos + off + 4]);
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let magic = {
            let avail = (self.end - self.pos).min(4);
            self.bytes()[self.pos..self.pos + avail].to_vec()
        };
        match magic.as_slice() {
            [0xd4, 0xc3, 0xb2, 0xa1] => self.read_pcap_header(false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => self.read_pcap_header(true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => self.read_pcap_header(false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => self.read_pcap_header(true, true),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                self.format = Format::PcapNg {
                    big_endian: false,
                    interfaces: Vec::new(),
                };
                Ok(())
            }
            _ => Err(CaptureError::NotACapture {
                path: self.path.clone(),
                magic: magic.iter().map(|b| format!("{b:02x}")).collect(),
            }),
        }
    }

    fn read_pcap_header(&mut self, big: bool, nanos: bool) -> Result<(), CaptureError> {
        if !self.fill(24)? {
            return Err(CaptureError::HeaderCut {
                path: self.path.clone(),
                have: (self.end - self.pos) as u64,
                need: 24,
                format: "pcap",
            });
        }
        // The low 28 bits are the link type; the high bits may carry FCS information.
        let linktype = self.u32_at(20, big) & 0x0fff_ffff;
        self.pos += 24;
        self.format = Format::Pcap {
            big_endian: big,
            nanos,
            linktype,
        };
        Ok(())
    }

    fn next_pcap(
        &mut self,
        big: bool,
        nanos: bool,
        linktype: u32,
    ) -> Result<Option<Located>, CaptureError> {
        if !self.fill(16)? {
            return self.end_of_input();
        }
        let r = PcapRecord::read(&self.bytes()[self.pos..self.pos + 16], big, nanos);
        if r.caplen > MAX_RECORD {
            let caplen = r.caplen;
            return Err(self.corrupt(format!("record length {caplen} is beyond any snap length")));
        }
        if !self.fill(16 + r.caplen)? {
            return self.end_of_input();
        }
        Ok(Some(self.take_record(r, linktype)))
    }

    /// Moves past a record whose header and data are present.
    fn take_record(&mut self, r: PcapRecord, linktype: u32) -> Located {
        let start = self.pos + 16;
        self.pos = start + r.caplen;
        Located {
            ts: r.ts,
            linktype,
            start,
            len: r.caplen,
            orig_len: r.orig_len,
        }
    }

    /// The packet a located record is.
    fn packet(&self, l: Located) -> Packet<'_> {
        Packet {
            ts: l.ts.min(super::MAX_TIME),
            linktype: l.linktype,
            data: &self.bytes()[l.start..l.start + l.len],
            orig_len: l.orig_len,
        }
    }

    /// At end of input: clean if nothing is left, cut short otherwise; a capture
    /// that ends cleanly without a single packet is noted too.
    fn end_of_input(&mut self) -> Result<Option<Located>, CaptureError> {
        let path = || self.path.clone();
        if self.gzip_cut {
            return Err(CaptureError::GzipCut {
                path: path(),
                offset: self.offset(),
            });
        }
        if self.end != self.pos {
            return Err(CaptureError::Truncated {
                path: path(),
                offset: self.offset(),
            });
        }
        let header = match self.format {
            Format::Pcap { .. } if self.offset() == 24 => Some("24-byte pcap file header"),
            Format::PcapNg { .. } if !self.pcapng_packets => Some("pcapng section header"),
            _ => None,
        };
        match header {
            Some(header) => Err(CaptureError::NoPackets {
                path: path(),
                header,
            }),
            None => Ok(None),
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<Located>, CaptureError> {
        loop {
            if !self.fill(12)? {
                return self.end_of_input();
            }
            let Format::PcapNg { big_endian, .. } = self.format else {
                return Ok(None);
            };
            let mut big = big_endian;
            let raw_type = self.u32_at(0, false);
            if raw_type == 0x0A0D_0D0A {
                // Section header: its byte-order magic decides the section's endianness.
                big = match self.u32_at(8, false) {
                    0x1A2B_3C4D => false,
                    0x4D3C_2B1A => true,
                    other => {
                        return Err(
                            self.corrupt(format!("bad pcapng byte-order magic {other:08x}"))
                        );
                    }
                };
            }
            let block_type = self.u32_at(0, big);
            let total = self.u32_at(4, big) as usize;
            if total < 12 || !total.is_multiple_of(4) || total > MAX_RECORD {
                return Err(self.corrupt(format!("pcapng block length {total} is invalid")));
            }
            if !self.fill(total)? {
                return self.end_of_input();
            }
            if self.u32_at(total - 4, big) as usize != total {
                return Err(self.corrupt("pcapng block trailer does not repeat its length"));
            }
            let body = self.pos + 8;
            let body_len = total - 12;
            let block_start = self.pos;
            self.pos += total;
            match block_type {
                0x0A0D_0D0A => {
                    if let Format::PcapNg {
                        big_endian,
                        interfaces,
                    } = &mut self.format
                    {
                        *big_endian = big;
                        interfaces.clear();
                    }
                }
                1 => {
                    if body_len < 8 {
                        return Err(self.corrupt("pcapng interface block too short"));
                    }
                    let save = self.pos;
                    self.pos = block_start;
                    let linktype = self.u16_at(8, big) as u32;
                    let snaplen = self.u32_at(12, big);
                    let (units_per_sec, offset_secs) = self.idb_options(16, total - 4, big);
                    self.pos = save;
                    if let Format::PcapNg { interfaces, .. } = &mut self.format {
                        if interfaces.len() >= 65536 {
                            return Err(self.corrupt("more than 65536 interfaces"));
                        }
                        interfaces.push(Interface {
                            linktype,
                            units_per_sec,
                            offset_secs,
                            snaplen,
                        });
                    }
                }
                6 | 2 => {
                    // Enhanced packet block (6) and the obsolete packet block (2).
                    if body_len < 20 {
                        return Err(self.corrupt("pcapng packet block too short"));
                    }
                    let save = self.pos;
                    self.pos = block_start;
                    let iface = if block_type == 6 {
                        self.u32_at(8, big) as usize
                    } else {
                        self.u16_at(8, big) as usize
                    };
                    let ts_raw =
                        ((self.u32_at(12, big) as u64) << 32) | self.u32_at(16, big) as u64;
                    let caplen = self.u32_at(20, big) as usize;
                    let orig_len = self.u32_at(24, big);
                    self.pos = save;
                    if caplen > body_len - 20 {
                        return Err(self.corrupt("pcapng packet longer than its block"));
                    }
                    self.pcapng_packets = true;
                    let Some(ifc) = self.interface(iface) else {
                        return Err(
                            self.corrupt(format!("packet names undeclared interface {iface}"))
                        );
                    };
                    return Ok(Some(Located {
                        ts: ifc.to_nanos(ts_raw),
                        linktype: ifc.linktype,
                        start: body + 20,
                        len: caplen,
                        orig_len,
                    }));
                }
                3 => {
                    // Simple packet block: interface 0, no timestamp of its own.
                    if body_len < 4 {
                        return Err(self.corrupt("pcapng simple packet block too short"));
                    }
                    let save = self.pos;
                    self.pos = block_start;
                    let orig_len = self.u32_at(8, big);
                    self.pos = save;
                    self.pcapng_packets = true;
                    let Some(ifc) = self.interface(0) else {
                        return Err(self.corrupt("simple packet before any interface block"));
                    };
                    let mut len = (orig_len as usize).min(body_len - 4);
                    if ifc.snaplen > 0 {
                        len = len.min(ifc.snaplen as usize);
                    }
                    return Ok(Some(Located {
                        ts: 0,
                        linktype: ifc.linktype,
                        start: body + 4,
                        len,
                        orig_len,
                    }));
                }
                _ => {}
            }
        }
    }

    fn interface(&self, idx: usize) -> Option<&Interface> {
        match &self.format {
            Format::PcapNg { interfaces, .. } => interfaces.get(idx),
            Format::Pcap { .. } => None,
        }
    }

    /// Reads `if_tsresol` (9) and `if_tsoffset` (14) from an IDB's options, which
    /// lie between `from` and `to` (offsets from the block start at `self.pos`).
    fn idb_options(&self, from: usize, to: usize, big: bool) -> (u64, i64) {
        let mut units = 1_000_000u64;
        let mut offset_secs = 0i64;
        let mut at = from;
        while at + 4 <= to {
            let code = self.u16_at(at, big);
            let len = self.u16_at(at + 2, big) as usize;
            let val = at + 4;
            if code == 0 || val + len > to {
                break;
            }
            if code == 9 && len >= 1 {
                let v = self.bytes()[self.pos + val];
                let exp = (v & 0x7f) as u32;
                units = if v & 0x80 != 0 {
                    1u64.checked_shl(exp).unwrap_or(1_000_000)
                } else {
                    10u64.checked_pow(exp).unwrap_or(1_000_000)
                };
            } else if code == 14 && len >= 8 {
                let hi = self.u32_at(val, big) as u64;
                let lo = self.u32_at(val + 4, big) as u64;
                offset_secs = ((hi << 32) | lo) as i64;
            }
            at = val + len.div_ceil(4) * 4;
        }
        (units.max(1), offset_secs)
    }
}

impl Interface {
    fn to_nanos(&self, raw: u64) -> Nanos {
        let units = self.units_per_sec as u128;
        let ns = (raw as u128 * 1_000_000_000) / units;
        let ns = ns.min(u64::MAX as u128) as u64;
        let off = self.offset_secs.saturating_mul(1_000_000_000);
        ns.saturating_add_signed(off)
    }
}

impl FileSource {
    /// The common case in one step: a whole classic-pcap record in a mapped file
    /// that has not shrunk. Anything else (end of file, a cut or corrupt record,
    /// pcapng, streamed input) is left to the general path, which reports it.
    fn next_mapped_pcap(&mut self) -> Option<Located> {
        let Format::Pcap {
            big_endian,
            nanos,
            linktype,
        } = self.format
        else {
            return None;
        };
        let map = self.map.as_deref()?;
        let rest = map.get(self.pos..)?;
        let r = PcapRecord::read(rest.get(..16)?, big_endian, nanos);
        if r.caplen > MAX_RECORD || rest.len() < 16 + r.caplen || map.shrank() {
            return None;
        }
        super::readahead::after_record(map, self.pos + 16 + r.caplen);
        Some(self.take_record(r, linktype))
    }
}

/// How far into its file a packet of a [`FileSource`] is (its end, in bytes of the
/// file as stored; for a streamed source, what was taken from the stream so far).
#[derive(Debug, Clone)]
pub enum Position {
    /// The mapping's first byte's address: a packet's bytes lie inside it.
    Mapped(usize),
    Counted(std::sync::Arc<std::sync::atomic::AtomicU64>),
}

impl Position {
    /// The position at the end of packet `p` (read from this source).
    pub fn after(&self, p: &Packet<'_>) -> u64 {
        match self {
            Position::Mapped(base) => {
                (p.data.as_ptr() as usize).wrapping_sub(*base) as u64 + p.data.len() as u64
            }
            Position::Counted(n) => n.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// A reader that counts the bytes it hands out (once per read call, not per packet).
struct Counted {
    inner: Box<dyn Read + Send>,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A classic pcap record header.
struct PcapRecord {
    ts: Nanos,
    caplen: usize,
    orig_len: u32,
}

impl PcapRecord {
    /// Reads the 16 header bytes `h` in the file's byte order and resolution.
    fn read(h: &[u8], big: bool, nanos: bool) -> PcapRecord {
        let field = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (secs, frac) = (u64::from(field(0)), u64::from(field(4)));
        PcapRecord {
            ts: secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
            caplen: field(8) as usize,
            orig_len: field(12),
        }
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        if let Some(m) = &self.map {
            super::readahead::stop(m);
        }
    }
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        self.release_behind();
        if let Some(l) = self.next_mapped_pcap() {
            return Ok(Some(self.packet(l)));
        }
        let before = self.pos;
        let mut located = match self.format {
            Format::Pcap {
                big_endian,
                nanos,
                linktype,
            } => self.next_pcap(big_endian, nanos, linktype),
            Format::PcapNg { .. } => self.next_pcapng(),
        };
        // Pages past a truncation read as zeros: whatever was parsed from them (or
        // failed to parse) is not the file's content.
        if self.map.as_ref().is_some_and(|m| m.shrank()) {
            located = Err(CaptureError::Shrank {
                path: self.path.clone(),
                offset: before as u64,
            });
        }
        match located {
            Ok(Some(l)) => Ok(Some(self.packet(l))),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }
}

pub mod secrets;

#[cfg(test)]
mod tests;
