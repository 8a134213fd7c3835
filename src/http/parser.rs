//! Incremental HTTP/1.x message reader for one direction of a connection
//! (RFC 9112 message syntax and framing; HTTP/0.9 simple requests; RFC 9110 §15 status
//! codes). No I/O, no clock: bytes go in, [`Step`]s come out.
//!
//! The reader is pulled: [`MessageReader::step`] consumes from the front of a slice
//! and returns one step. After a [`Step::Head`] the caller (who knows the request a
//! response answers) chooses the body framing with [`MessageReader::set_framing`].
//! Body bytes are handed out as borrowed slices and never buffered; only a header
//! block split across segments is copied, up to [`MAX_HEAD_BYTES`].
//!
//! After a gap or a midstream start the reader resynchronises: it scans line
//! starts for something that looks like a request or status line before trusting the
//! stream again, as Suricata's app-layer parsers do.

use std::borrow::Cow;

use super::Text;
use memchr::memchr;

mod head;
mod scan;

pub use head::parse_head;

/// Header fields that do not come from an HTTP/1 head (an HTTP/2 header list): the
/// same facts kept as [`parse_head`] keeps, by the same code.
#[derive(Debug, Default)]
pub struct FieldSink(FieldState);

impl FieldSink {
    /// One field, name and value as decoded.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        self.0.named(name, value);
    }

    pub fn finish(self) -> Headers {
        let start = StartLine::Response {
            version: Text::const_new("2"),
            status: 0,
            reason: Text::const_new(""),
        };
        self.0.finish(start).headers
    }
}
use head::*;
use scan::*;

/// Largest header block accepted (nginx and Apache default to 8 KiB lines; 64 KiB is
/// generous for the whole block). Beyond it the message is reported as an error.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Header fields kept per message; further fields are counted and ignored.
pub const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;
/// Longest method token (the longest registered method, `BASELINE-CONTROL`, has 16).
const MAX_METHOD_LEN: usize = 24;
/// Longest reason phrase kept (RFC 9110's longest, `Network Authentication
/// Required`, has 31 bytes; servers' own phrases run to a sentence). The phrase is
/// the server's to choose, so an attacker's: the rest of the line is dropped.
pub const MAX_REASON: usize = 128;

/// Methods accepted without a version (HTTP/0.9) and at resynchronisation points.
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"PATCH",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"QUERY",
];

/// Which side's messages this reader parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Request,
    Response,
}

/// Why a message could not be parsed. Each is a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The stream does not start like HTTP at all.
    NotHttp,
    /// A start line that is not a request or status line.
    BadStartLine,
    /// The header block exceeds [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] fields.
    TooManyHeaders,
    /// A header line without a colon.
    BadHeaderLine,
    /// Content-Length that is not a number, or conflicting values.
    BadContentLength,
    /// Both Transfer-Encoding and Content-Length (a smuggling vector, RFC 9112 §6.3).
    TeAndCl,
    /// A chunk size that is not hex or overflows.
    BadChunkSize,
    /// Chunk data not followed by CRLF.
    BadChunkTerminator,
    /// The stream ended inside a message.
    Truncated,
    /// Data was lost (TCP gap) inside a message.
    Gap,
    /// Requests beyond the pending limit on one connection.
    TooManyPending,
    /// A response with no request to answer it.
    UnmatchedResponse,
}

impl ParseError {
    pub const ALL: [ParseError; 13] = [
        ParseError::NotHttp,
        ParseError::BadStartLine,
        ParseError::HeadTooLarge,
        ParseError::TooManyHeaders,
        ParseError::BadHeaderLine,
        ParseError::BadContentLength,
        ParseError::TeAndCl,
        ParseError::BadChunkSize,
        ParseError::BadChunkTerminator,
        ParseError::Truncated,
        ParseError::Gap,
        ParseError::TooManyPending,
        ParseError::UnmatchedResponse,
    ];

    /// Metric label value.
    pub fn label(self) -> &'static str {
        match self {
            ParseError::NotHttp => "not_http",
            ParseError::BadStartLine => "bad_start_line",
            ParseError::HeadTooLarge => "head_too_large",
            ParseError::TooManyHeaders => "too_many_headers",
            ParseError::BadHeaderLine => "bad_header_line",
            ParseError::BadContentLength => "bad_content_length",
            ParseError::TeAndCl => "te_and_cl",
            ParseError::BadChunkSize => "bad_chunk_size",
            ParseError::BadChunkTerminator => "bad_chunk_terminator",
            ParseError::Truncated => "truncated",
            ParseError::Gap => "gap",
            ParseError::TooManyPending => "too_many_pending",
            ParseError::UnmatchedResponse => "unmatched_response",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: Text,
        /// Raw request target; empty when the line had none.
        uri: Text,
        /// "1.1", "1.0", or "0.9" for a simple request without a version.
        version: Text,
    },
    Response {
        version: Text,
        status: u16,
        /// The reason phrase as the server sent it (after the code and its
        /// whitespace, without trailing whitespace), at most [`MAX_REASON`] bytes;
        /// empty when there was none.
        reason: Text,
    },
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    None,
    Length(u64),
    Chunked,
    /// Body until the connection closes.
    UntilClose,
    /// The connection stops being HTTP (101 Upgrade, CONNECT tunnel).
    Tunnel,
}

/// Header facts the pipeline needs, extracted once while parsing. Serde: the
/// exchanges a sensor publishes (`crate::nats`), without [`Headers::extra`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Headers {
    pub host: Option<Text>,
    pub user_agent: Option<Text>,
    pub content_type: Option<Text>,
    /// Content-Length when present and valid.
    pub content_length: Option<u64>,
    pub content_length_invalid: bool,
    /// The final transfer coding is chunked.
    pub chunked: bool,
    /// A content coding (`Content-Encoding`) or a transfer coding other than
    /// chunked applies: the body is compressed (not scanned for sensitive values).
    pub content_encoded: bool,
    pub transfer_encoding: bool,
    pub connection_close: bool,
    pub upgrade: bool,
    /// `Upgrade` names `h2c` (cleartext HTTP/2, RFC 7540 §3.2).
    pub upgrade_h2c: bool,
    pub expect_continue: bool,
    pub x_forwarded_for: Option<String>,
    pub forwarded: Option<String>,
    /// Raw Authorization value; never written out (identity hashes it).
    pub authorization: Option<Text>,
    /// Raw `X-API-Key` / `Api-Key` value; never written out (identity hashes it).
    pub api_key: Option<Text>,
    /// Raw `Cookie` value (bounded); never written out (identity hashes one cookie).
    pub cookie: Option<String>,
    pub has_cookie: bool,
    pub has_set_cookie: bool,
    /// A `Set-Cookie` other than a CSRF token's: a session being issued.
    pub sets_session_cookie: bool,
    pub location: Option<Text>,
    /// `Referer`, `Origin` and proxy headers: columns of Zeek's http.log that
    /// nothing else reads. Boxed, allocated only for a head that has one: `Headers`
    /// travels with every exchange, so each byte here is copied per exchange.
    #[serde(skip)]
    pub extra: Option<Box<ExtraFields>>,
    /// More than [`MAX_HEADERS`] fields (the known ones past it still applied).
    pub overflow: bool,
    /// The head was longer than [`MAX_HEAD_BYTES`]: read line by line, lines longer
    /// than [`MAX_KEPT_LINE`] skipped (see [`MessageReader`]).
    pub oversized: bool,
}

/// The fields of [`Headers::extra`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraFields {
    /// `Referer` as sent (a target that may carry secrets: written redacted).
    pub referrer: Option<Text>,
    pub origin: Option<Text>,
    /// Headers that say a proxy handled the request other than `X-Forwarded-For`
    /// and `Forwarded` (kept in [`Headers`]), in arrival order, at most
    /// [`MAX_PROXIED`]: the rest of Zeek's `HTTP::proxy_headers`.
    pub proxied: Vec<(ProxyHeader, Text)>,
}

/// Proxy headers kept per message (Zeek's list has seven names; a message repeating
/// them past this is padding).
pub const MAX_PROXIED: usize = 8;

/// A header among Zeek's `HTTP::proxy_headers` that [`Headers`] does not keep
/// elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    Via,
    ClientIp,
    XForwardedFrom,
    ProxyConnection,
    XroxyConnection,
}

impl ProxyHeader {
    /// The name as Zeek writes it in `proxied` (upper case).
    pub fn zeek_name(self) -> &'static str {
        match self {
            ProxyHeader::Via => "VIA",
            ProxyHeader::ClientIp => "CLIENT-IP",
            ProxyHeader::XForwardedFrom => "X-FORWARDED-FROM",
            ProxyHeader::ProxyConnection => "PROXY-CONNECTION",
            ProxyHeader::XroxyConnection => "XROXY-CONNECTION",
        }
    }
}

/// A parsed start line and header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start: StartLine,
    pub headers: Headers,
    /// Any problem found while parsing that did not stop it (counted by the caller).
    pub warning: Option<ParseError>,
}

/// One step of progress.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// All input consumed; feed more.
    NeedMore,
    /// A message head; call [`MessageReader::set_framing`] next.
    Head(Box<Head>),
    /// Body bytes (chunk framing removed).
    Body(&'a [u8]),
    /// The current message is complete.
    End,
    /// Something was wrong; the reader has already moved to a safe state.
    Error(ParseError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a start line (at a message boundary).
    AwaitingHead,
    /// Scanning for a plausible message start after a gap, error or midstream pickup.
    Resync {
        at_line_start: bool,
    },
    /// Head parsed; waiting for the caller to choose the framing.
    AwaitingFraming,
    ReadingBody {
        remaining: u64,
    },
    ReadingChunkSize,
    ReadingChunk {
        remaining: u64,
    },
    AwaitingChunkEnd {
        seen_cr: bool,
    },
    ReadingTrailers,
    ReadingUntilClose,
    /// The message is complete; the next step says so.
    Complete,
    /// Not HTTP any more (tunnel, upgrade, or gave up): bytes are ignored.
    Ignoring,
    /// A head past [`MAX_HEAD_BYTES`], read line by line (`MessageReader::over`).
    OversizedHead,
}

/// Longest line of an oversized head that is still read; longer ones (padding) are
/// skipped to their end, keeping nothing.
pub const MAX_KEPT_LINE: usize = 8 * 1024;

/// A head past [`MAX_HEAD_BYTES`]: servers accept such heads (Go's default limit is
/// 1 MB), so dropping them would let padding hide any request. The start line and
/// every field line up to [`MAX_KEPT_LINE`] are read as they stream by (known fields
/// applied at once, nothing else kept); longer lines are skipped. Memory stays at a
/// few KiB however long the head.
#[derive(Debug, Default)]
struct Oversized {
    /// The start line (its first [`MAX_KEPT_LINE`] bytes if it is the long one).
    start: Vec<u8>,
    /// The start line is being skipped: its last bytes, where the version is.
    start_tail: Option<Vec<u8>>,
    fields: FieldState,
    /// The current line, while short enough to keep.
    line: Vec<u8>,
    /// Inside a line too long to keep: skip to its end.
    skipping: bool,
    /// The last complete field line with its colon, until the next line shows it is
    /// not folded.
    pending: Option<(usize, Vec<u8>)>,
    /// The last field line was skipped: its folded continuations go too.
    dropped_last: bool,
}

/// Parses the messages of one direction.
#[derive(Debug)]
pub struct MessageReader {
    role: Role,
    state: State,
    /// Partial header block, chunk-size line or trailer section.
    buf: Vec<u8>,
    /// Whether any message was ever recognised in this direction.
    pub seen_message: bool,
    /// Bytes skipped while resynchronising.
    pub resync_skipped: u64,
    /// The oversized head being read, in [`State::OversizedHead`].
    over: Option<Box<Oversized>>,
    /// Where [`Self::reopen`] resumes after a close that fell between messages.
    reopen_at: Option<State>,
}

impl MessageReader {
    pub fn new(role: Role) -> Self {
        MessageReader {
            role,
            state: State::AwaitingHead,
            buf: Vec::new(),
            seen_message: false,
            resync_skipped: 0,
            over: None,
            reopen_at: None,
        }
    }

    /// The close [`Self::finish`] saw was not real (the peer took data sent after
    /// it): reading resumes where it was, if the close fell between messages.
    /// Whether it did.
    pub fn reopen(&mut self) -> bool {
        match self.reopen_at.take() {
            Some(st) if matches!(self.state, State::Ignoring) => {
                self.state = st;
                true
            }
            _ => false,
        }
    }

    /// Starts in resynchronising mode (midstream pickup: we may be inside a body).
    pub fn start_midstream(&mut self) {
        // The first byte may well start a message (a new request on a kept-alive
        // connection), so it counts as a line start.
        self.state = State::Resync {
            at_line_start: true,
        };
    }

    /// Stops parsing this direction for good.
    pub fn ignore(&mut self) {
        self.state = State::Ignoring;
        self.buf = Vec::new();
    }

    pub fn is_ignoring(&self) -> bool {
        self.state == State::Ignoring
    }

    /// Whether the reader is between messages (nothing partial held).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::AwaitingHead) && self.buf.is_empty()
    }

    /// Whether a message is in progress (head seen, body not finished).
    pub fn in_message(&self) -> bool {
        !matches!(
            self.state,
            State::AwaitingHead | State::Resync { .. } | State::Ignoring | State::Complete
        )
    }

    /// Chooses how the body after the last head is delimited.
    pub fn set_framing(&mut self, framing: Framing) {
        self.state = match framing {
            Framing::None | Framing::Length(0) => State::Complete,
            Framing::Length(n) => State::ReadingBody { remaining: n },
            Framing::Chunked => State::ReadingChunkSize,
            Framing::UntilClose => State::ReadingUntilClose,
            Framing::Tunnel => {
                self.buf = Vec::new();
                State::Ignoring
            }
        };
    }

    /// Whether part of a message head has been read (and a gap now would cut it).
    pub fn in_head(&self) -> bool {
        (self.state == State::AwaitingHead && !self.buf.is_empty())
            || self.state == State::OversizedHead
    }

    /// `len` bytes of this direction were lost. Returns the error to count, if the
    /// gap broke a message.
    pub fn gap(&mut self, len: u64) -> Option<ParseError> {
        match self.state {
            State::ReadingBody { remaining } if len < remaining => {
                self.state = State::ReadingBody {
                    remaining: remaining - len,
                };
                None
            }
            State::ReadingBody { remaining } if len == remaining => {
                self.state = State::Complete;
                None
            }
            State::ReadingChunk { remaining } if len < remaining => {
                self.state = State::ReadingChunk {
                    remaining: remaining - len,
                };
                None
            }
            State::ReadingUntilClose | State::Ignoring => None,
            State::AwaitingHead if self.buf.is_empty() => {
                self.state = State::Resync {
                    at_line_start: true,
                };
                None
            }
            State::Resync { .. } => {
                self.state = State::Resync {
                    at_line_start: true,
                };
                None
            }
            _ => {
                self.buf.clear();
                self.state = State::Resync {
                    at_line_start: true,
                };
                Some(ParseError::Gap)
            }
        }
    }

    /// The stream ended. Returns what the end means for a message in progress.
    pub fn finish(&mut self) -> Finish {
        let st = self.state;
        self.state = State::Ignoring;
        self.reopen_at = match st {
            State::AwaitingHead if self.buf.is_empty() => Some(State::AwaitingHead),
            State::Complete => Some(State::AwaitingHead),
            State::Resync { .. } => Some(st),
            _ => None,
        };
        match st {
            State::ReadingUntilClose | State::Complete => Finish::Complete,
            State::AwaitingHead if !self.buf.is_empty() => {
                // A head cut short by the close (e.g. no final blank line): use it if
                // its start line is sound.
                let buf = std::mem::take(&mut self.buf);
                match parse_head(self.role, &buf) {
                    Ok(head) => Finish::Head(Box::new(head)),
                    Err(e) => Finish::Error(e),
                }
            }
            State::OversizedHead => match self.over.take() {
                // Cut short by the close: reported with what was read.
                Some(mut o) => match self.oversized_head(&mut o) {
                    Ok(head) => Finish::Head(Box::new(head)),
                    Err(e) => Finish::Error(e),
                },
                None => Finish::Idle,
            },
            State::AwaitingHead | State::Resync { .. } | State::Ignoring => Finish::Idle,
            _ => Finish::Truncated,
        }
    }

    /// Consumes bytes from the front of `data` and reports one step.
    pub fn step<'a>(&mut self, data: &mut &'a [u8]) -> Step<'a> {
        match self.state {
            State::Complete => {
                self.state = State::AwaitingHead;
                Step::End
            }
            State::AwaitingFraming => {
                // The caller did not choose: treat as bodiless.
                self.state = State::AwaitingHead;
                Step::End
            }
            _ if data.is_empty() => Step::NeedMore,
            State::Ignoring => {
                *data = &[];
                Step::NeedMore
            }
            State::AwaitingHead => self.read_head(data),
            State::OversizedHead => self.read_oversized(data),
            State::Resync { at_line_start } => self.resync(data, at_line_start),
            State::ReadingBody { remaining } => {
                let n = (remaining.min(data.len() as u64)) as usize;
                let (body, rest) = data.split_at(n);
                *data = rest;
                self.state = if remaining == n as u64 {
                    State::Complete
                } else {
                    State::ReadingBody {
                        remaining: remaining - n as u64,
                    }
                };
                Step::Body(body)
            }
            State::ReadingUntilClose => {
                let body = *data;
                *data = &[];
                Step::Body(body)
            }
            State::ReadingChunkSize => self.read_chunk_size(data),
            State::ReadingChunk { remaining } => {
                let n = (remaining.min(data.len() as u64)) as usize;
                let (body, rest) = data.split_at(n);
                *data = rest;
                self.state = if remaining == n as u64 {
                    State::AwaitingChunkEnd { seen_cr: false }
                } else {
                    State::ReadingChunk {
                        remaining: remaining - n as u64,
                    }
                };
                Step::Body(body)
            }
            State::AwaitingChunkEnd { seen_cr } => match data[0] {
                b'\r' if !seen_cr => {
                    *data = &data[1..];
                    self.state = State::AwaitingChunkEnd { seen_cr: true };
                    Step::NeedMore
                }
                b'\n' => {
                    *data = &data[1..];
                    self.state = State::ReadingChunkSize;
                    Step::NeedMore
                }
                _ => {
                    // Lenient like most servers: carry on with the next chunk size.
                    self.state = State::ReadingChunkSize;
                    Step::Error(ParseError::BadChunkTerminator)
                }
            },
            State::ReadingTrailers => self.read_trailers(data),
        }
    }

    fn read_head<'a>(&mut self, data: &mut &'a [u8]) -> Step<'a> {
        if self.buf.is_empty() {
            // Empty lines before a message are allowed (RFC 9112 §2.2).
            let skip = data
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            *data = &data[skip..];
            if data.is_empty() {
                return Step::NeedMore;
            }
            if !plausible_start(self.role, data) {
                return self.reject_start(data, ParseError::NotHttp);
            }
            let mut nl = Newlines::default();
            let end = head_end_noting(self.role, data, &mut nl);
            if let Some(end) = end.filter(|e| *e <= MAX_HEAD_BYTES) {
                let (head, rest) = data.split_at(end);
                *data = rest;
                return self.finish_head(parse_head_split(self.role, head, &nl));
            }
            // Past the limit, whether the head ends in this segment or not, it is read
            // the same way as when it arrives in pieces.
            if data.len() >= MAX_HEAD_BYTES {
                self.begin_oversized(&data[..MAX_HEAD_BYTES]);
                *data = &data[MAX_HEAD_BYTES..];
                return self.read_oversized(data);
            }
            self.buf.extend_from_slice(data);
            *data = &[];
            return Step::NeedMore;
        }
        let old = self.buf.len();
        let take = data.len().min(MAX_HEAD_BYTES - old);
        self.buf.extend_from_slice(&data[..take]);
        if !plausible_start(self.role, &self.buf) {
            self.buf.clear();
            *data = &[];
            self.state = State::Resync {
                at_line_start: false,
            };
            return Step::Error(ParseError::NotHttp);
        }
        let mut nl = Newlines::default();
        match head_end_noting(self.role, &self.buf, &mut nl) {
            Some(end) => {
                let used = end - old;
                *data = &data[used..];
                let buf = std::mem::take(&mut self.buf);
                let parsed = parse_head_split(self.role, &buf[..end], &nl);
                self.buf = buf;
                self.buf.clear();
                self.finish_head(parsed)
            }
            None if self.buf.len() >= MAX_HEAD_BYTES => {
                *data = &data[take..];
                let buf = std::mem::take(&mut self.buf);
                self.begin_oversized(&buf);
                self.buf = buf;
                self.buf.clear();
                self.read_oversized(data)
            }
            None => {
                *data = &[];
                Step::NeedMore
            }
        }
    }

    /// Bytes held for a message not yet complete (a head split across segments).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
            + self
                .over
                .as_ref()
                .map_or(0, |o| o.line.capacity() + o.start.capacity())
    }

    /// Memory pressure: a head being gathered is read line by line from here on, as
    /// an oversized one is (a few KiB, flagged `head_too_large`), and spare buffer
    /// capacity is returned.
    pub fn shed(&mut self) {
        if self.state == State::AwaitingHead && !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.begin_oversized(&buf);
        } else if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// Switches to reading an oversized head; `first` is its first
    /// [`MAX_HEAD_BYTES`], with no end of head in them.
    fn begin_oversized(&mut self, first: &[u8]) {
        let mut o = self.over.take().unwrap_or_default();
        *o = Oversized::default();
        self.state = State::OversizedHead;
        match memchr(b'\n', first) {
            None => {
                // The start line itself is the long one.
                o.start
                    .extend_from_slice(&first[..first.len().min(MAX_KEPT_LINE)]);
                o.start_tail = Some(first[first.len().saturating_sub(16)..].to_vec());
                o.skipping = true;
                self.over = Some(o);
            }
            Some(i) => {
                o.start.extend_from_slice(&first[..i]);
                self.over = Some(o);
                let mut rest = &first[i + 1..];
                // The lines that follow go through the same path as later ones (the
                // head cannot end inside `first`).
                let step = self.read_oversized(&mut rest);
                debug_assert!(matches!(step, Step::NeedMore), "{step:?}");
            }
        }
    }

    /// Reads an oversized head line by line until its blank line.
    fn read_oversized<'a>(&mut self, data: &mut &'a [u8]) -> Step<'a> {
        let Some(mut o) = self.over.take() else {
            self.state = State::AwaitingHead;
            return Step::NeedMore;
        };
        loop {
            if o.skipping {
                let Some(i) = memchr(b'\n', data) else {
                    if let Some(tail) = o.start_tail.as_mut() {
                        keep_tail(tail, data);
                    }
                    *data = &[];
                    break;
                };
                if let Some(mut tail) = o.start_tail.take() {
                    keep_tail(&mut tail, &data[..i]);
                    // `METHOD target... HTTP/1.1`: the target is cut, the version kept.
                    let tail = tail.strip_suffix(b"\r").unwrap_or(&tail);
                    let version = tail
                        .iter()
                        .rposition(|b| *b == b' ')
                        .map(|sp| &tail[sp..])
                        .filter(|v| v.len() > 5 && v[1..].starts_with(b"HTTP/"));
                    match version {
                        Some(v) => o.start.extend_from_slice(v),
                        // HTTP/0.9: the request line was the whole head.
                        None => {
                            *data = &data[i + 1..];
                            return self.end_oversized(o);
                        }
                    }
                } else {
                    o.dropped_last = true;
                }
                *data = &data[i + 1..];
                o.skipping = false;
                continue;
            }
            let room = MAX_KEPT_LINE - o.line.len();
            let Some(i) = memchr(b'\n', &data[..data.len().min(room)]) else {
                if data.len() >= room {
                    // Too long to keep: padding, skipped whole.
                    o.line.clear();
                    o.skipping = true;
                    *data = &data[room..];
                    continue;
                }
                o.line.extend_from_slice(data);
                *data = &[];
                break;
            };
            o.line.extend_from_slice(&data[..i]);
            *data = &data[i + 1..];
            let mut line = std::mem::take(&mut o.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                return self.end_oversized(o);
            }
            if line[0] == b' ' || line[0] == b'\t' {
                if let Some((_, v)) = o.pending.as_mut().filter(|_| !o.dropped_last)
                    && v.len() + line.len() < MAX_KEPT_LINE
                {
                    v.push(b' ');
                    v.extend_from_slice(trim(&line));
                }
            } else {
                if let Some((colon, v)) = o.pending.take() {
                    o.fields.field(colon, &v);
                }
                o.dropped_last = false;
                match memchr(b':', &line) {
                    Some(colon) => o.pending = Some((colon, line)),
                    None => o.fields.warning = Some(ParseError::BadHeaderLine),
                }
            }
        }
        self.over = Some(o);
        Step::NeedMore
    }

    /// The blank line after an oversized head: the message, flagged.
    fn end_oversized<'a>(&mut self, mut o: Box<Oversized>) -> Step<'a> {
        let parsed = self.oversized_head(&mut o);
        self.over = Some(o);
        self.finish_head(parsed)
    }

    fn oversized_head(&self, o: &mut Oversized) -> Result<Head, ParseError> {
        if let Some((colon, v)) = o.pending.take() {
            o.fields.field(colon, &v);
        }
        let start = parse_start_line(self.role, &o.start)?;
        let mut head = std::mem::take(&mut o.fields).finish(start);
        head.headers.oversized = true;
        head.warning = Some(ParseError::HeadTooLarge);
        Ok(head)
    }

    /// Skips the offending line and resynchronises.
    fn reject_start<'a>(&mut self, data: &mut &'a [u8], err: ParseError) -> Step<'a> {
        match memchr(b'\n', data) {
            Some(i) => {
                *data = &data[i + 1..];
                self.state = State::Resync {
                    at_line_start: true,
                };
            }
            None => {
                *data = &[];
                self.state = State::Resync {
                    at_line_start: false,
                };
            }
        }
        Step::Error(err)
    }

    fn finish_head<'a>(&mut self, parsed: Result<Head, ParseError>) -> Step<'a> {
        match parsed {
            Ok(head) => {
                self.seen_message = true;
                self.state = State::AwaitingFraming;
                Step::Head(Box::new(head))
            }
            Err(e) => {
                self.state = State::Resync {
                    at_line_start: true,
                };
                Step::Error(e)
            }
        }
    }

    fn resync<'a>(&mut self, data: &mut &'a [u8], at_line_start: bool) -> Step<'a> {
        // A message glued to the end of a body the sensor lost track of (binary or
        // JSON bodies rarely end in a newline) is found by content; a line start that
        // begins like a message is found by the line scan. The earlier one wins.
        let embedded = embedded_start(self.role, data);
        let limit = embedded.unwrap_or(data.len());
        let mut pos = 0;
        let mut line_start = at_line_start;
        while pos < limit {
            if line_start && plausible_resync_point(self.role, &data[pos..]) {
                return self.resync_at(data, pos);
            }
            match memchr(b'\n', &data[pos..limit]) {
                Some(i) => {
                    pos += i + 1;
                    line_start = true;
                }
                None => {
                    pos = limit;
                    line_start = false;
                }
            }
        }
        if let Some(at) = embedded {
            return self.resync_at(data, at);
        }
        self.resync_skipped += data.len() as u64;
        *data = &[];
        self.state = State::Resync {
            at_line_start: line_start,
        };
        Step::NeedMore
    }

    fn resync_at<'a>(&mut self, data: &mut &'a [u8], pos: usize) -> Step<'a> {
        self.resync_skipped += pos as u64;
        *data = &data[pos..];
        self.state = State::AwaitingHead;
        Step::NeedMore
    }

    /// Reads one line into `buf` (across calls). Returns the line without CRLF.
    fn take_line(&mut self, data: &mut &[u8]) -> Option<Result<Vec<u8>, ()>> {
        match memchr(b'\n', data) {
            Some(i) => {
                self.buf.extend_from_slice(&data[..i]);
                *data = &data[i + 1..];
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(Ok(line))
            }
            None => {
                self.buf.extend_from_slice(data);
                *data = &[];
                if self.buf.len() > MAX_LINE {
                    self.buf.clear();
                    return Some(Err(()));
                }
                None
            }
        }
    }

    fn read_chunk_size<'a>(&mut self, data: &mut &'a [u8]) -> Step<'a> {
        let line = match self.take_line(data) {
            None => return Step::NeedMore,
            Some(Err(())) => {
                self.state = State::Resync {
                    at_line_start: false,
                };
                return Step::Error(ParseError::BadChunkSize);
            }
            Some(Ok(l)) => l,
        };
        match parse_chunk_size(&line) {
            Some(0) => {
                self.state = State::ReadingTrailers;
                Step::NeedMore
            }
            Some(n) => {
                self.state = State::ReadingChunk { remaining: n };
                Step::NeedMore
            }
            // A blank line where a size belongs (extra CRLF after data): tolerate.
            None if line.iter().all(|b| b.is_ascii_whitespace()) => Step::NeedMore,
            None => {
                // The message ends here as far as we can tell; resync on what follows.
                self.state = State::Resync {
                    at_line_start: true,
                };
                Step::Error(ParseError::BadChunkSize)
            }
        }
    }

    fn read_trailers<'a>(&mut self, data: &mut &'a [u8]) -> Step<'a> {
        loop {
            match self.take_line(data) {
                None => return Step::NeedMore,
                Some(Err(())) => {
                    self.state = State::Resync {
                        at_line_start: false,
                    };
                    return Step::Error(ParseError::HeadTooLarge);
                }
                Some(Ok(line)) if line.is_empty() => {
                    self.state = State::AwaitingHead;
                    return Step::End;
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// What ending the stream meant for the message in progress.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    /// Nothing was in progress.
    Idle,
    /// The close completed a message (close-delimited body).
    Complete,
    /// A message was cut short.
    Truncated,
    /// A head without its final blank line, usable.
    Head(Box<Head>),
    /// Leftover bytes that were not a message.
    Error(ParseError),
}

#[cfg(test)]
mod tests;
