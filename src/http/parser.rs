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

/// Header facts the pipeline needs, extracted once while parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub host: Option<Text>,
    pub user_agent: Option<Text>,
    pub content_type: Option<Text>,
    /// Content-Length when present and valid.
    pub content_length: Option<u64>,
    pub content_length_invalid: bool,
    /// The final transfer coding is chunked.
    pub chunked: bool,
    pub transfer_encoding: bool,
    pub connection_close: bool,
    pub upgrade: bool,
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

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `data` can be the beginning of a message of this role (checked on the
/// bytes present, so a short prefix is plausible if it could still become one).
fn plausible_start(role: Role, data: &[u8]) -> bool {
    match role {
        Role::Response => {
            let n = data.len().min(5);
            data[..n].eq_ignore_ascii_case(&b"HTTP/"[..n])
        }
        Role::Request => {
            let n = data.len().min(MAX_METHOD_LEN + 1);
            match data[..n].iter().position(|b| *b == b' ') {
                Some(0) => false,
                Some(i) => data[..i]
                    .iter()
                    .all(|b| b.is_ascii_alphabetic() || *b == b'-' || *b == b'_'),
                None => n <= MAX_METHOD_LEN && data[..n].iter().all(|b| is_tchar(*b)),
            }
        }
    }
}

/// A stricter test used when resynchronising inside arbitrary bytes.
fn plausible_resync_point(role: Role, data: &[u8]) -> bool {
    match role {
        Role::Response => {
            let n = data.len().min(7);
            n >= 1 && data[..n] == b"HTTP/1."[..n]
        }
        Role::Request => KNOWN_METHODS.iter().any(|m| {
            let full = m.len() + 1;
            let n = data.len().min(full);
            n >= 1
                && data[..n.min(m.len())] == m[..n.min(m.len())]
                && (n < full || data[m.len()] == b' ')
        }),
    }
}

/// Where a message starts inside `data` other than at a line start, judged by the
/// start line's shape: `HTTP/1.x NNN` for responses, `KNOWN-METHOD target HTTP/1.`
/// for requests. A status line cut by the end of `data` counts once `HTT` is present.
fn embedded_start(role: Role, data: &[u8]) -> Option<usize> {
    match role {
        Role::Response => {
            for p in memchr::memmem::find_iter(data, b"HTTP/1.") {
                let rest = &data[p + 7..];
                let ok = match rest {
                    [] | [b'0' | b'1'] => true,
                    [b'0' | b'1', b' ', digits @ ..] => {
                        digits.iter().take(3).all(u8::is_ascii_digit)
                    }
                    _ => false,
                };
                if ok {
                    return Some(p);
                }
            }
            (3..7)
                .rev()
                .find(|n| data.len() >= *n && data.ends_with(&b"HTTP/1."[..*n]))
                .map(|n| data.len() - n)
        }
        Role::Request => memchr::memmem::find_iter(data, b" HTTP/1.").find_map(|q| {
            // The target has no spaces: the space before it ends the method.
            let from = q.saturating_sub(8192);
            let s = from + memchr::memrchr(b' ', &data[from..q])?;
            if s + 1 == q {
                return None;
            }
            let before = &data[..s];
            KNOWN_METHODS
                .iter()
                .filter(|m| before.ends_with(m))
                .map(|m| s - m.len())
                .min()
        }),
    }
}

/// Where the first lines of a head end, as [`head_end_noting`] found them: parsing
/// the head then splits it without searching again.
#[derive(Debug)]
struct Newlines {
    at: [u32; 40],
    n: usize,
}

impl Default for Newlines {
    fn default() -> Self {
        Newlines { at: [0; 40], n: 0 }
    }
}

impl Newlines {
    fn note(&mut self, at: usize) {
        if self.n < self.at.len() {
            self.at[self.n] = at as u32;
            self.n += 1;
        }
    }
}

/// Offset just past the header block, if it is complete in `data`, noting where
/// lines end on the way.
fn head_end_noting(role: Role, data: &[u8], nl: &mut Newlines) -> Option<usize> {
    nl.n = 0;
    let first_nl = memchr(b'\n', data)?;
    nl.note(first_nl);
    if role == Role::Request && request_version(&data[..first_nl]).is_none() {
        // HTTP/0.9 simple request: the request line is the whole head.
        return Some(first_nl + 1);
    }
    let mut at = first_nl + 1;
    loop {
        match data.get(at) {
            None => return None,
            Some(b'\n') => {
                nl.note(at);
                return Some(at + 1);
            }
            Some(b'\r') => match data.get(at + 1) {
                None => return None,
                Some(b'\n') => {
                    nl.note(at + 1);
                    return Some(at + 2);
                }
                Some(_) => {}
            },
            Some(_) => {}
        }
        at += memchr(b'\n', &data[at..])? + 1;
        nl.note(at - 1);
    }
}

/// The version if the request line ends in ` HTTP/x.y`.
fn request_version(line: &[u8]) -> Option<(usize, &[u8])> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // The common spelling, ` HTTP/` and three bytes without whitespace, answered
    // without the general scan (the same answer: the last space is the one before
    // `HTTP/`).
    if let Some(at) = line.len().checked_sub(9) {
        let version = &line[at + 6..];
        if &line[at..at + 6] == b" HTTP/" && !version.iter().any(u8::is_ascii_whitespace) {
            return Some((at, version));
        }
    }
    let line = trim_end(line);
    let sp = line.iter().rposition(|b| *b == b' ')?;
    let word = &line[sp + 1..];
    (word.len() >= 6 && word[..5].eq_ignore_ascii_case(b"HTTP/")).then(|| (sp, &word[5..]))
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..n]
}

fn trim(s: &[u8]) -> &[u8] {
    // Field names and values rarely carry more than the one space after the colon.
    let s = match s {
        [b' ', rest @ ..] => rest,
        _ => s,
    };
    match (s.first(), s.last()) {
        (Some(a), Some(z)) if !a.is_ascii_whitespace() && !z.is_ascii_whitespace() => {
            return s;
        }
        _ => {}
    }
    let s = trim_end(s);
    let n = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[n..]
}

fn text(b: &[u8]) -> Text {
    // Nearly always ASCII: checked a word at a time (`from_utf8`'s general decoder
    // costs several times more on values this short), copied inline when short.
    if b.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Text::new(unsafe { std::str::from_utf8_unchecked(b) });
    }
    // Valid UTF-8 is copied in one go; only invalid bytes take the lossy path.
    match std::str::from_utf8(b) {
        Ok(s) => Text::new(s),
        Err(_) => Text::from(String::from_utf8_lossy(b)),
    }
}

/// [`text`] for a start line's method or version: the common ones are constants
/// (no scan, no copy).
fn token(b: &[u8]) -> Text {
    match b {
        b"1.1" => Text::const_new("1.1"),
        b"1.0" => Text::const_new("1.0"),
        b"GET" => Text::const_new("GET"),
        b"POST" => Text::const_new("POST"),
        b"PUT" => Text::const_new("PUT"),
        b"DELETE" => Text::const_new("DELETE"),
        b"PATCH" => Text::const_new("PATCH"),
        b"HEAD" => Text::const_new("HEAD"),
        _ => text(b),
    }
}

/// The reason phrase after a status code: leading spaces and tabs skipped, the
/// rest kept as sent, as Zeek reads it (trailing whitespace, trimmed with the line's,
/// excepted); cut at [`MAX_REASON`] bytes (a UTF-8 character cut there becomes
/// U+FFFD).
fn reason(after_code: &[u8]) -> Text {
    let start = after_code
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(after_code.len());
    match &after_code[start..] {
        b"OK" => Text::const_new("OK"),
        b"" => Text::const_new(""),
        r => text(&r[..r.len().min(MAX_REASON)]),
    }
}

fn parse_start_line(role: Role, line: &[u8]) -> Result<StartLine, ParseError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match role {
        Role::Request => {
            let sp = line
                .iter()
                .position(|b| *b == b' ')
                .ok_or(ParseError::BadStartLine)?;
            let method = &line[..sp];
            if method.is_empty()
                || method.len() > MAX_METHOD_LEN
                || !method
                    .iter()
                    .all(|b| b.is_ascii_alphabetic() || *b == b'-' || *b == b'_')
            {
                return Err(ParseError::BadStartLine);
            }
            let rest = &line[sp..];
            match request_version(line).filter(|(vsp, _)| *vsp >= sp) {
                Some((vsp, version)) => Ok(StartLine::Request {
                    method: token(method),
                    // Everything between the method and the version, as Zeek logs it
                    // (a target with a space in it is an attack worth seeing whole).
                    uri: text(trim(&line[sp..vsp.max(sp)])),
                    version: token(version),
                }),
                None => {
                    // HTTP/0.9 (or a request line without its version, which servers
                    // treat the same way): a method token and an origin-form target.
                    let uri = trim(rest);
                    if !uri.starts_with(b"/") || uri.contains(&b' ') {
                        return Err(ParseError::BadStartLine);
                    }
                    Ok(StartLine::Request {
                        method: text(method),
                        uri: text(uri),
                        version: Text::const_new("0.9"),
                    })
                }
            }
        }
        Role::Response => {
            if line.len() < 6 || !line[..5].eq_ignore_ascii_case(b"HTTP/") {
                return Err(ParseError::BadStartLine);
            }
            let vend = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
            let version = token(&line[5..vend]);
            let rest = trim(&line[vend..]);
            let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let digits = &rest[..n];
            // Three digits, the first 1-9 (RFC 9110 §15: codes below 100 do not exist).
            if digits.len() != 3 || digits[0] == b'0' {
                return Err(ParseError::BadStartLine);
            }
            let status = digits.iter().fold(0u16, |a, d| a * 10 + (d - b'0') as u16);
            Ok(StartLine::Response {
                version,
                status,
                reason: reason(&rest[n..]),
            })
        }
    }
}

/// Keeps the last 16 bytes of a skipped start line (`tail` then `more`).
fn keep_tail(tail: &mut Vec<u8>, more: &[u8]) {
    tail.extend_from_slice(&more[more.len().saturating_sub(16)..]);
    let cut = tail.len().saturating_sub(16);
    tail.drain(..cut);
}

/// Header fields as they are read: the known ones applied, the rest counted.
#[derive(Debug, Default)]
struct FieldState {
    h: Headers,
    warning: Option<ParseError>,
    count: usize,
    cl_values: ContentLengths,
}

/// The Content-Length values of a head: the first, and whether another differed
/// (no allocation per head).
#[derive(Debug, Default)]
struct ContentLengths {
    first: Option<u64>,
    differ: bool,
}

impl ContentLengths {
    fn push(&mut self, n: u64) {
        match self.first {
            None => self.first = Some(n),
            Some(f) => self.differ |= f != n,
        }
    }
}

impl FieldState {
    /// One field line, folded continuations joined; it has a colon. Fields past
    /// [`MAX_HEADERS`] are flagged, but known ones still apply: padding with many
    /// fields must not hide a `Content-Length` or an `Authorization` behind it.
    fn field(&mut self, colon: usize, line: &[u8]) {
        self.count += 1;
        if self.count > MAX_HEADERS {
            self.h.overflow = true;
            self.warning = Some(ParseError::TooManyHeaders);
        }
        apply_field(
            &mut self.h,
            &mut self.cl_values,
            trim(&line[..colon]),
            trim(&line[colon + 1..]),
        );
    }

    fn finish(mut self, start: StartLine) -> Head {
        match self.cl_values {
            ContentLengths { first: None, .. } => {}
            ContentLengths {
                first: Some(n),
                differ: false,
            } => self.h.content_length = Some(n),
            _ => {
                self.h.content_length_invalid = true;
                self.warning = Some(ParseError::BadContentLength);
            }
        }
        if self.h.content_length_invalid {
            self.warning = Some(ParseError::BadContentLength);
        }
        if self.h.transfer_encoding
            && (self.h.content_length.is_some() || self.h.content_length_invalid)
        {
            self.warning = Some(ParseError::TeAndCl);
        }
        Head {
            start,
            headers: self.h,
            warning: self.warning,
        }
    }
}

/// Lines of a block split at `\n`, as `split` would give them: at the newlines
/// already noted, then found with memchr.
struct Lines<'a> {
    rest: Option<&'a [u8]>,
    /// Offsets into `block` of noted newlines not yet used.
    noted: &'a [u32],
    /// Offset of `rest` in the block.
    at: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if let Some((&n, more)) = self.noted.split_first() {
            self.noted = more;
            let i = (n as usize).wrapping_sub(self.at);
            if i < rest.len() && rest[i] == b'\n' {
                self.at += i + 1;
                self.rest = Some(&rest[i + 1..]);
                return Some(&rest[..i]);
            }
            // Not this block's newline (cannot happen): search instead.
            self.noted = &[];
        }
        match memchr(b'\n', rest) {
            Some(i) => {
                self.at += i + 1;
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Parses a complete head (start line and header fields, terminator included).
pub fn parse_head(role: Role, block: &[u8]) -> Result<Head, ParseError> {
    parse_head_split(role, block, &Newlines::default())
}

/// [`parse_head`] with the newlines [`head_end_noting`] found in `block`.
fn parse_head_split(role: Role, block: &[u8], nl: &Newlines) -> Result<Head, ParseError> {
    let mut lines = Lines {
        rest: Some(block),
        noted: &nl.at[..nl.n],
        at: 0,
    };
    let first = lines.next().ok_or(ParseError::BadStartLine)?;
    let start = parse_start_line(role, first)?;
    let mut fs = FieldState::default();
    // A field is applied once the next line shows it is not continued by obsolete
    // line folding (RFC 9112 §5.2); only a folded line is copied.
    let mut pending: Option<(usize, Cow<'_, [u8]>)> = None;
    for raw in lines {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = pending.as_mut() {
                let v = v.to_mut();
                v.push(b' ');
                v.extend_from_slice(trim(line));
            }
            continue;
        }
        if let Some((colon, line)) = pending.take() {
            fs.field(colon, &line);
        }
        match memchr(b':', line) {
            Some(colon) => pending = Some((colon, Cow::Borrowed(line))),
            None => fs.warning = Some(ParseError::BadHeaderLine),
        }
    }
    if let Some((colon, line)) = pending.take() {
        fs.field(colon, &line);
    }
    Ok(fs.finish(start))
}

/// Records one header field in `h` if it is one the pipeline uses.
fn apply_field(h: &mut Headers, cl_values: &mut ContentLengths, name: &[u8], value: &[u8]) {
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    match name.len() {
        4 if is(b"host") => h.host = Some(text(value)),
        10 if is(b"user-agent") => h.user_agent = Some(text(value)),
        12 if is(b"content-type") => h.content_type = Some(text(value)),
        // The common case: one value.
        14 if is(b"content-length") && !value.contains(&b',') => {
            match parse_content_length(value) {
                Some(n) => cl_values.push(n),
                None => h.content_length_invalid = true,
            }
        }
        // RFC 9110 §8.6: a list of identical values (`20, 20`, what a proxy that
        // merged two fields sends) is that one value; differing ones are invalid.
        14 if is(b"content-length") => {
            // Empty list members are nothing (RFC 9110 §5.6.1); a field with no
            // value at all is invalid.
            let mut any = false;
            for v in value.split(|b| *b == b',').filter(|v| !trim(v).is_empty()) {
                any = true;
                match parse_content_length(v) {
                    Some(n) => cl_values.push(n),
                    None => h.content_length_invalid = true,
                }
            }
            h.content_length_invalid |= !any;
        }
        17 if is(b"transfer-encoding") => {
            h.transfer_encoding = true;
            // Chunked only counts as the final coding.
            let last = value.rsplit(|b| *b == b',').next().map(trim).unwrap_or(&[]);
            h.chunked = last.eq_ignore_ascii_case(b"chunked");
        }
        10 if is(b"connection") => {
            h.connection_close |= contains_ignore_case(value, b"close");
            h.upgrade |= contains_ignore_case(value, b"upgrade");
        }
        6 if is(b"expect") => h.expect_continue = value.eq_ignore_ascii_case(b"100-continue"),
        // Repeated fields are one comma-separated list (RFC 9110 §5.3).
        15 if is(b"x-forwarded-for") => append_list(&mut h.x_forwarded_for, value),
        9 if is(b"forwarded") => append_list(&mut h.forwarded, value),
        13 if is(b"authorization") => h.authorization = Some(text(value)),
        6 if is(b"cookie") => {
            h.has_cookie = true;
            append_list(&mut h.cookie, value);
        }
        9 if is(b"x-api-key") => h.api_key = Some(text(value)),
        7 if is(b"api-key") => h.api_key = Some(text(value)),
        10 if is(b"set-cookie") => {
            h.has_set_cookie = true;
            // A CSRF cookie is re-sent with every form, failed logins included.
            let name = value.split(|c| *c == b'=').next().unwrap_or(b"");
            let lower = name.to_ascii_lowercase();
            let csrf = memchr::memmem::find(&lower, b"csrf").is_some()
                || memchr::memmem::find(&lower, b"xsrf").is_some();
            h.sets_session_cookie |= !csrf;
        }
        8 if is(b"location") => h.location = Some(text(value)),
        7 if is(b"referer") => h.extra.get_or_insert_default().referrer = Some(text(value)),
        6 if is(b"origin") => h.extra.get_or_insert_default().origin = Some(text(value)),
        3 if is(b"via") => proxy(h, ProxyHeader::Via, value),
        9 if is(b"client-ip") => proxy(h, ProxyHeader::ClientIp, value),
        16 if is(b"x-forwarded-from") => proxy(h, ProxyHeader::XForwardedFrom, value),
        16 if is(b"proxy-connection") => proxy(h, ProxyHeader::ProxyConnection, value),
        16 if is(b"xroxy-connection") => proxy(h, ProxyHeader::XroxyConnection, value),
        _ => {}
    }
}

/// Keeps one proxy header, up to [`MAX_PROXIED`] of them.
fn proxy(h: &mut Headers, name: ProxyHeader, value: &[u8]) {
    let proxied = &mut h.extra.get_or_insert_default().proxied;
    if proxied.len() < MAX_PROXIED {
        proxied.push((name, text(value)));
    }
}

/// Longest forwarding chain kept (`X-Forwarded-For`, `Forwarded`).
const MAX_CHAIN: usize = 4096;

/// Joins repeated list fields. Forwarding chains are read from the right (the
/// nearest proxy appends last), so past [`MAX_CHAIN`] the leftmost hops go: an
/// attacker's long chain cannot push out the hop a trusted proxy added.
fn append_list(field: &mut Option<String>, value: &[u8]) {
    let v = field.get_or_insert_with(String::new);
    if !v.is_empty() {
        v.push_str(", ");
    }
    v.push_str(&String::from_utf8_lossy(value));
    if v.len() > MAX_CHAIN {
        let cut = v.len() - MAX_CHAIN;
        // A comma is ASCII, so the cut lands on a character boundary.
        let start = memchr::memchr(b',', &v.as_bytes()[cut..]).map_or(v.len(), |i| cut + i + 1);
        v.drain(..start);
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Content-Length: ASCII digits only (leading zeros allowed), at most `i64::MAX`.
#[inline]
fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Servers hold the length in a signed 64-bit off_t: anything larger is invalid
    // for them, so it is for us (and the bytes after the head are the next message).
    v.iter()
        .try_fold(0u64, |a, d| {
            a.checked_mul(10)?.checked_add((d - b'0') as u64)
        })
        .filter(|n| i64::try_from(*n).is_ok())
}

/// Chunk size: hex digits up to an optional `;extension`; `None` if invalid or
/// larger than 2^62 (no real chunk is; larger values are overflow attacks).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|b| *b == b';').unwrap_or(line.len());
    let digits = trim(&line[..end]);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let n = digits.iter().try_fold(0u64, |a, d| {
        let v = (*d as char).to_digit(16)? as u64;
        a.checked_mul(16)?.checked_add(v)
    })?;
    (n < 1 << 62).then_some(n)
}

#[cfg(test)]
mod tests;
