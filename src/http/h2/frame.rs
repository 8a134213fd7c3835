//! HTTP/2 frames of one direction (RFC 9113 §4.1, §6), read incrementally.
//!
//! The reader is pulled like the HTTP/1 one: [`FrameReader::next`] consumes from the
//! front of a slice and returns one [`Frame`]. DATA payloads are handed out as
//! borrowed slices (padding removed) and never buffered; the payload of any other
//! frame is collected whole, up to [`MAX_BUFFERED_FRAME`]; a larger one is skipped
//! and reported as [`Frame::Oversized`]. A malformed frame (a pad length past the
//! payload) stops the direction: frame boundaries can no longer be trusted.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// What follows `PRI * HTTP/2.0\r\n\r\n` once an HTTP/1 reader has read it as a head.
pub const PREFACE_TAIL: &[u8] = b"SM\r\n\r\n";

/// Largest non-DATA frame payload kept. SETTINGS_MAX_FRAME_SIZE defaults to 16 KiB
/// and servers rarely raise it for header blocks; 64 KiB matches the header block
/// cap, so no frame alone can hold more than a whole block may.
pub const MAX_BUFFERED_FRAME: usize = 64 * 1024;

/// Frame types (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// The 9-byte frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub length: u32,
    pub kind: u8,
    pub flags: u8,
    /// The stream identifier, reserved bit cleared.
    pub stream: u32,
}

impl FrameHeader {
    pub fn parse(b: &[u8; 9]) -> FrameHeader {
        FrameHeader {
            length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Whether `b` starts with a plausible server connection preface: a SETTINGS frame
/// on stream 0, not an ACK, its length a multiple of 6 (RFC 9113 §3.4, §6.5).
pub fn looks_like_server_preface(b: &[u8]) -> bool {
    let Some(h) = b.first_chunk::<9>().map(FrameHeader::parse) else {
        return false;
    };
    h.kind == kind::SETTINGS
        && h.stream == 0
        && h.flags & !flag::ACK == 0
        && !h.has(flag::ACK)
        && h.length % 6 == 0
        && h.length <= 16384
}

/// Whether a segment picked up mid-connection is whole HTTP/2 frames: every frame
/// header plausible (a length under 64 KiB, a known type, the reserved bit clear)
/// and the last frame ending where the segment ends. HTTP/1 text never starts with
/// a zero byte, so this is asked of a connection's first bytes only when they were
/// not a start.
pub fn looks_like_frames(b: &[u8]) -> bool {
    let mut pos = 0usize;
    let mut frames = 0;
    while let Some(h) = b.get(pos..).and_then(|r| r.first_chunk::<9>()) {
        if h[0] != 0 || h[3] > kind::CONTINUATION || h[5] & 0x80 != 0 {
            return false;
        }
        pos += 9 + FrameHeader::parse(h).length as usize;
        frames += 1;
    }
    frames > 0 && pos == b.len()
}

/// One step of a direction's frames.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA payload bytes of a stream, padding removed (one frame may come in
    /// several pieces).
    Data { stream: u32, chunk: &'a [u8] },
    /// A DATA frame is over.
    DataEnd { stream: u32, end_stream: bool },
    /// A HEADERS, CONTINUATION, PUSH_PROMISE, SETTINGS or RST_STREAM frame, its
    /// payload whole (padding and priority still in it; see
    /// [`strip_headers_payload`]). Other types are skipped unread.
    Control {
        header: FrameHeader,
        payload: Vec<u8>,
    },
    /// A non-DATA frame longer than [`MAX_BUFFERED_FRAME`], skipped.
    Oversized { header: FrameHeader },
    /// The client's bytes are not the connection preface.
    BadPreface,
    /// A frame that cannot be read (padding longer than its payload); the
    /// direction is no longer read.
    Malformed { header: FrameHeader },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting `expect[matched..]` before the first frame (the client preface).
    Preface {
        expect: &'static [u8],
        matched: usize,
    },
    /// Collecting the 9-byte frame header.
    Header,
    /// A DATA frame whose pad length byte comes next.
    DataPadLength { header: FrameHeader },
    /// Inside a DATA frame: `data` payload bytes, then `pad` padding bytes.
    Data {
        header: FrameHeader,
        data: u32,
        pad: u32,
    },
    /// Collecting a non-DATA payload into `buf`.
    Payload { header: FrameHeader, left: u32 },
    /// Skipping an oversized payload.
    Skip { left: u32 },
    /// Nothing more is read in this direction.
    Stopped,
}

/// The frames of one direction.
#[derive(Debug)]
pub struct FrameReader {
    state: State,
    head: [u8; 9],
    have: usize,
    buf: Vec<u8>,
}

impl FrameReader {
    /// A reader that first expects `preface` (empty: frames from the first byte).
    pub fn new(preface: &'static [u8]) -> Self {
        FrameReader {
            state: if preface.is_empty() {
                State::Header
            } else {
                State::Preface {
                    expect: preface,
                    matched: 0,
                }
            },
            head: [0; 9],
            have: 0,
            buf: Vec::new(),
        }
    }

    /// Nothing more is read (after a gap or a malformed frame).
    pub fn stop(&mut self) {
        self.state = State::Stopped;
        self.buf = Vec::new();
    }

    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// Whether the reader sits between frames (no frame half read).
    pub fn at_boundary(&self) -> bool {
        self.state == State::Header && self.have == 0
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// The next frame, or `None` once `data` is used up.
    pub fn next<'a>(&mut self, data: &mut &'a [u8]) -> Option<Frame<'a>> {
        loop {
            match self.state {
                State::Stopped => {
                    *data = &[];
                    return None;
                }
                State::Preface { expect, matched } => {
                    if data.is_empty() {
                        return None;
                    }
                    let want = &expect[matched..];
                    let n = want.len().min(data.len());
                    if data[..n] != want[..n] {
                        self.stop();
                        return Some(Frame::BadPreface);
                    }
                    *data = &data[n..];
                    self.state = if matched + n == expect.len() {
                        State::Header
                    } else {
                        State::Preface {
                            expect,
                            matched: matched + n,
                        }
                    };
                }
                State::Header => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = (9 - self.have).min(data.len());
                    self.head[self.have..self.have + n].copy_from_slice(&data[..n]);
                    self.have += n;
                    *data = &data[n..];
                    if self.have < 9 {
                        return None;
                    }
                    self.have = 0;
                    let header = FrameHeader::parse(&self.head);
                    if let Some(f) = self.begin(header) {
                        return Some(f);
                    }
                }
                State::DataPadLength { header } => {
                    let (&pad, rest) = data.split_first()?;
                    *data = rest;
                    let Some(len) = header.length.checked_sub(1 + u32::from(pad)) else {
                        self.stop();
                        return Some(Frame::Malformed { header });
                    };
                    self.state = State::Data {
                        header,
                        data: len,
                        pad: u32::from(pad),
                    };
                }
                State::Data {
                    header,
                    data: 0,
                    pad: 0,
                } => {
                    self.state = State::Header;
                    return Some(Frame::DataEnd {
                        stream: header.stream,
                        end_stream: header.has(flag::END_STREAM),
                    });
                }
                State::Data {
                    header,
                    data: 0,
                    pad,
                } => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = (pad as usize).min(data.len());
                    *data = &data[n..];
                    self.state = State::Data {
                        header,
                        data: 0,
                        pad: pad - n as u32,
                    };
                }
                State::Data {
                    header,
                    data: left,
                    pad,
                } => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = (left as usize).min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    *data = rest;
                    self.state = State::Data {
                        header,
                        data: left - n as u32,
                        pad,
                    };
                    return Some(Frame::Data {
                        stream: header.stream,
                        chunk,
                    });
                }
                State::Payload { header, left: 0 } => {
                    self.state = State::Header;
                    return Some(Frame::Control {
                        header,
                        payload: std::mem::take(&mut self.buf),
                    });
                }
                State::Payload { header, left } => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = (left as usize).min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    *data = &data[n..];
                    self.state = State::Payload {
                        header,
                        left: left - n as u32,
                    };
                }
                State::Skip { left: 0 } => self.state = State::Header,
                State::Skip { left } => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = (left as usize).min(data.len());
                    *data = &data[n..];
                    self.state = State::Skip {
                        left: left - n as u32,
                    };
                }
            }
        }
    }

    /// A frame header was read: what to do with its payload.
    fn begin(&mut self, header: FrameHeader) -> Option<Frame<'static>> {
        if header.kind == kind::DATA {
            self.state = if header.has(flag::PADDED) {
                if header.length == 0 {
                    self.stop();
                    return Some(Frame::Malformed { header });
                }
                State::DataPadLength { header }
            } else {
                State::Data {
                    header,
                    data: header.length,
                    pad: 0,
                }
            };
            return None;
        }
        // Frames that change no exchange are skipped unread (no allocation: gRPC
        // sends a WINDOW_UPDATE or PING for nearly every message).
        if !matches!(
            header.kind,
            kind::HEADERS
                | kind::CONTINUATION
                | kind::PUSH_PROMISE
                | kind::SETTINGS
                | kind::RST_STREAM
        ) {
            self.state = State::Skip {
                left: header.length,
            };
            return None;
        }
        if header.length as usize > MAX_BUFFERED_FRAME {
            self.state = State::Skip {
                left: header.length,
            };
            return Some(Frame::Oversized { header });
        }
        self.buf = Vec::with_capacity(header.length as usize);
        self.state = State::Payload {
            header,
            left: header.length,
        };
        None
    }
}

/// The header block fragment of a HEADERS or PUSH_PROMISE payload: padding and the
/// priority fields (HEADERS) or promised stream id (PUSH_PROMISE) removed. Returns
/// the fragment's start and end in `payload` and, for PUSH_PROMISE, the promised
/// stream; `None` if the payload is too short for what its flags say.
pub fn strip_headers_payload(header: &FrameHeader, payload: &[u8]) -> Option<(usize, usize, u32)> {
    let mut start = 0usize;
    let mut end = payload.len();
    if header.has(flag::PADDED) {
        let pad = usize::from(*payload.first()?);
        start = 1;
        end = end.checked_sub(pad)?;
    }
    let mut promised = 0;
    if header.kind == kind::HEADERS && header.has(flag::PRIORITY) {
        start += 5;
    } else if header.kind == kind::PUSH_PROMISE {
        let id = payload.get(start..start + 4)?;
        promised = u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff;
        start += 4;
    }
    (start <= end).then_some((start, end, promised))
}

/// SETTINGS parameters (RFC 9113 §6.5.1): `(identifier, value)` pairs.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|s| {
        (
            u16::from_be_bytes([s[0], s[1]]),
            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
        )
    })
}

/// SETTINGS_HEADER_TABLE_SIZE.
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
