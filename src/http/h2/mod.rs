//! HTTP/2 read passively (RFC 9113 frames and streams, RFC 7541 HPACK): one
//! [`Exchange`] per stream, filled the way the HTTP/1 reader fills it, so detection,
//! redaction and credentials work unchanged. gRPC calls ([`grpc`]) are streams with
//! a gRPC content-type; their status and message counts ride on the exchange.
//!
//! A connection becomes HTTP/2 in one of three ways, all decided off the HTTP/1
//! path (see `http::connection`): the client's first head is the preface's
//! `PRI * HTTP/2.0` (prior knowledge); the server's first bytes are a SETTINGS frame
//! (its preface, sent before the client's was seen); or a `101 Switching Protocols`
//! answers an `Upgrade: h2c` request, which then is stream 1's request.
//!
//! HPACK state is per direction and must see every header block in order: a block
//! that cannot be decoded (a decoding error, a block over [`MAX_HEADER_BLOCK`], a
//! gap inside a direction's frames) leaves the dynamic table unknown, so header
//! decoding in that direction stops for the rest of the connection (counted as
//! [`Problem`]s; streams still end and are emitted, without the headers lost). A
//! capture that starts mid-connection has lost the table the same way and is not
//! decoded: headers are never guessed.
//!
//! Bounds: [`MAX_OPEN_STREAMS`] streams tracked (the oldest is emitted incomplete
//! beyond), header blocks up to [`MAX_HEADER_BLOCK`] over at most
//! [`MAX_CONTINUATIONS`] frames, decoded lists up to [`MAX_HEADER_LIST`], dynamic
//! tables up to what SETTINGS allow and never above [`MAX_HPACK_TABLE`]. A stream is
//! forgotten when it is emitted, so a long connection holds only its open streams.

pub mod frame;
pub mod grpc;

use std::borrow::Cow;
use std::collections::BTreeMap;

use loona_hpack::Decoder;

use super::connection::{Endpoints, RESPONSE_PREFIX};
use super::parser::{FieldSink, Head, StartLine};
use super::{Exchange, Headers, Text};
use crate::time::Nanos;
use frame::{Frame, FrameHeader, FrameReader, flag, kind};
use grpc::{Grpc, MessageCounter};

/// Streams tracked at once per connection. Servers advertise 100-256
/// (SETTINGS_MAX_CONCURRENT_STREAMS: nginx 128, Go 250); beyond this the oldest
/// open stream is emitted incomplete and counted.
pub const MAX_OPEN_STREAMS: usize = 256;
/// Largest header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs), as the
/// HTTP/1 reader's [`super::parser::MAX_HEAD_BYTES`].
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// CONTINUATION frames per block: a 64 KiB block needs four at the default frame
/// size; a flood of tiny or empty ones (CVE-2024-27316 and kin) stops here.
pub const MAX_CONTINUATIONS: usize = 1024;
/// Decoded bytes of one header list (names and values) read; past it, fields are
/// still decoded (HPACK needs that) but no longer applied, and the list is flagged
/// like an HTTP/1 head with too many fields.
pub const MAX_HEADER_LIST: usize = 256 * 1024;
/// Largest HPACK dynamic table accepted, whatever SETTINGS_HEADER_TABLE_SIZE says:
/// servers default to 4 KiB (nginx, Go, grpc) and none asks for more than 64 KiB.
pub const MAX_HPACK_TABLE: usize = 64 * 1024;
/// The table size each side starts with (RFC 9113 §6.5.2).
const DEFAULT_HPACK_TABLE: usize = 4096;

/// How a connection became HTTP/2 (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The client sent the preface first (`--http2-prior-knowledge`, gRPC).
    PriorKnowledge,
    /// `Upgrade: h2c` answered with 101.
    Upgrade,
}

impl Start {
    pub const ALL: [Start; 2] = [Start::PriorKnowledge, Start::Upgrade];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Start::PriorKnowledge => "prior_knowledge",
            Start::Upgrade => "upgrade",
        }
    }
}

/// Something an HTTP/2 connection did that costs information. Each is a bounded
/// metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A header block HPACK could not decode.
    HpackError,
    /// A header block over [`MAX_HEADER_BLOCK`] bytes or [`MAX_CONTINUATIONS`]
    /// frames (dropped, so the direction's table is lost).
    HeaderBlockTooLarge,
    /// A decoded header list over [`MAX_HEADER_LIST`] (the rest not applied).
    HeaderListTooLarge,
    /// A stream opened past [`MAX_OPEN_STREAMS`]: the oldest was emitted incomplete.
    TooManyStreams,
    /// A frame that breaks the framing (bad padding, a block interrupted).
    MalformedFrame,
    /// Bytes lost inside a direction's frames.
    Gap,
    /// The client's bytes after `PRI * HTTP/2.0` are not the preface.
    BadPreface,
    /// A connection picked up mid-stream whose first segment is HTTP/2 frames: its
    /// HPACK tables are unknown, so it is not decoded.
    Midstream,
}

impl Problem {
    pub const ALL: [Problem; 8] = [
        Problem::HpackError,
        Problem::HeaderBlockTooLarge,
        Problem::HeaderListTooLarge,
        Problem::TooManyStreams,
        Problem::MalformedFrame,
        Problem::Gap,
        Problem::BadPreface,
        Problem::Midstream,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Problem::HpackError => "hpack_error",
            Problem::HeaderBlockTooLarge => "header_block_too_large",
            Problem::HeaderListTooLarge => "header_list_too_large",
            Problem::TooManyStreams => "too_many_streams",
            Problem::MalformedFrame => "malformed_frame",
            Problem::Gap => "gap",
            Problem::BadPreface => "bad_preface",
            Problem::Midstream => "midstream",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// HTTP/2 counters, part of [`super::HttpStats`].
#[derive(Debug, Default, Clone)]
pub struct H2Stats {
    /// Connections read as HTTP/2, by [`Start`].
    pub connections: [u64; Start::ALL.len()],
    /// Streams opened (requests and server pushes).
    pub streams: u64,
    /// Streams ended by RST_STREAM.
    pub resets: u64,
    pub problems: [u64; Problem::ALL.len()],
    /// Connections whose header decoding was lost in at least one direction.
    pub undecodable: u64,
}

impl H2Stats {
    pub fn add(&mut self, o: &H2Stats) {
        for (a, b) in self.connections.iter_mut().zip(o.connections) {
            *a += b;
        }
        self.streams += o.streams;
        self.resets += o.resets;
        for (a, b) in self.problems.iter_mut().zip(o.problems) {
            *a += b;
        }
        self.undecodable += o.undecodable;
    }

    pub fn problem(&mut self, p: Problem) {
        self.problems[p.index()] += 1;
    }
}

/// What an HTTP/2 exchange carries besides the HTTP/1 fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamInfo {
    pub stream_id: u32,
    /// A server push: the request is the PUSH_PROMISE's.
    pub pushed: bool,
    /// Ended by RST_STREAM.
    pub reset: bool,
    /// Set when the request's content-type is `application/grpc*`.
    pub grpc: Option<Grpc>,
}

/// One direction's HPACK decoder and what bounds it.
struct Hpack {
    decoder: Decoder<'static>,
    /// The largest table the peer's SETTINGS allowed, at most [`MAX_HPACK_TABLE`].
    allowed: usize,
    /// A block was lost: the table is unknown from here on.
    lost: bool,
}

impl std::fmt::Debug for Hpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hpack")
            .field("allowed", &self.allowed)
            .field("lost", &self.lost)
            .finish()
    }
}

impl Hpack {
    fn new(allowed: usize) -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(allowed);
        Hpack {
            decoder,
            allowed,
            lost: false,
        }
    }

    /// The peer announced SETTINGS_HEADER_TABLE_SIZE. The largest announcement
    /// stands (a passive reader may see a smaller one before the encoder has
    /// acknowledged it), capped.
    fn allow(&mut self, size: u32) {
        let size = (size as usize).min(MAX_HPACK_TABLE);
        if size > self.allowed {
            self.allowed = size;
            self.decoder.set_max_allowed_table_size(size);
        }
    }
}

/// The header fields of one block that the exchange keeps.
#[derive(Default)]
struct Fields {
    method: Option<Text>,
    path: Option<Text>,
    authority: Option<Text>,
    status: Option<u16>,
    grpc_status: Option<u32>,
    grpc_message: Option<Text>,
    sink: FieldSink,
    /// Decoded bytes so far.
    size: usize,
    overflow: bool,
}

impl Fields {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        // RFC 7541 §4.1's entry size: the list's size as SETTINGS_MAX_HEADER_LIST_SIZE
        // counts it.
        self.size += name.len() + value.len() + 32;
        if self.size > MAX_HEADER_LIST {
            self.overflow = true;
            return;
        }
        let text = |v: &[u8]| Text::from(String::from_utf8_lossy(v));
        match name {
            b":method" => self.method = Some(text(value)),
            b":path" => self.path = Some(text(value)),
            b":authority" => self.authority = Some(text(value)),
            b":status" => {
                self.status = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| (100..1000).contains(s))
            }
            b":scheme" | b":protocol" => {}
            b"grpc-status" => {
                self.grpc_status = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok())
            }
            b"grpc-message" => {
                self.grpc_message = Some(text(&value[..value.len().min(grpc::MAX_GRPC_MESSAGE)]))
            }
            _ => self.sink.field(name, value),
        }
    }

    fn headers(self) -> (Headers, RequestLine) {
        let mut h = self.sink.finish();
        h.overflow |= self.overflow;
        // `:authority` is the Host of HTTP/2 (RFC 9113 §8.3.1); a Host field stands
        // in without it.
        if self.authority.is_some() {
            h.host = self.authority.clone();
        }
        let uri = match (self.path, self.method.as_deref()) {
            (Some(p), _) => Some(p),
            (None, Some(m)) if m.eq_ignore_ascii_case("CONNECT") => self.authority,
            _ => None,
        };
        (
            h,
            RequestLine {
                method: self.method,
                uri,
            },
        )
    }
}

struct RequestLine {
    method: Option<Text>,
    uri: Option<Text>,
}

/// A header block being collected across CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream: u32,
    /// END_STREAM of the HEADERS frame that began it.
    end_stream: bool,
    /// The stream a PUSH_PROMISE promises (0 for HEADERS).
    promised: u32,
    bytes: Vec<u8>,
    frames: usize,
}

/// One stream: a request, its response, and where each stands.
#[derive(Debug)]
struct Stream {
    /// Opening order on the connection (the exchange's `trans_depth`).
    seq: u32,
    ts: Nanos,
    method: Option<Text>,
    uri: Option<Text>,
    request_headers: Headers,
    request_done: bool,
    body_len: u64,
    body_prefix: Vec<u8>,
    credentials: Option<crate::credentials::Scanner>,
    response_ts: Option<Nanos>,
    status: Option<u16>,
    interim: Option<Box<(u16, Text)>>,
    response_headers: Option<Headers>,
    response_body_len: u64,
    response_body_prefix: Vec<u8>,
    /// Sensitive values counted in the response body as its DATA frames come.
    sensitive: crate::sensitive::Scanner,
    response_done: bool,
    incomplete: bool,
    info: StreamInfo,
    /// Message counters of a gRPC call (client, server).
    messages: Option<Box<(MessageCounter, MessageCounter)>>,
}

impl Stream {
    fn new(id: u32, seq: u32, ts: Nanos) -> Self {
        Stream {
            seq,
            ts,
            method: None,
            uri: None,
            request_headers: Headers::default(),
            request_done: false,
            body_len: 0,
            body_prefix: Vec::new(),
            credentials: None,
            response_ts: None,
            status: None,
            interim: None,
            response_headers: None,
            response_body_len: 0,
            response_body_prefix: Vec::new(),
            sensitive: Default::default(),
            response_done: false,
            incomplete: false,
            info: StreamInfo {
                stream_id: id,
                ..Default::default()
            },
            messages: None,
        }
    }

    fn set_request(&mut self, f: Fields) {
        let (headers, line) = f.headers();
        if headers.content_type.as_deref().is_some_and(grpc::is_grpc) {
            self.info.grpc = Some(Grpc::default());
            self.messages = Some(Box::default());
        }
        self.method = line.method;
        self.uri = line.uri;
        self.request_headers = headers;
    }
}

/// HTTP/2 state of one TCP connection.
#[derive(Debug)]
pub struct Connection {
    endpoints: Endpoints,
    client: FrameReader,
    server: FrameReader,
    /// Decodes the client's header blocks (bounded by the server's SETTINGS).
    client_hpack: Hpack,
    /// Decodes the server's header blocks and push promises (bounded by the
    /// client's SETTINGS).
    server_hpack: Hpack,
    client_block: Option<Block>,
    server_block: Option<Block>,
    streams: BTreeMap<u32, Stream>,
    next_seq: u32,
    /// Highest client stream opened: a HEADERS at or below it is a late frame of a
    /// stream already emitted, never a new one.
    max_client_stream: u32,
    body_prefix_limit: usize,
    /// Response-body bytes scanned for sensitive values.
    sensitive_prefix: usize,
    /// Counted once per connection.
    undecodable: bool,
}

impl Connection {
    /// A connection whose client preface (from `PRI * HTTP/2.0`) was read by the
    /// HTTP/1 reader up to `client_expects`, the rest of the preface.
    pub fn prior_knowledge(
        endpoints: Endpoints,
        client_expects: &'static [u8],
        limits: (usize, usize),
        stats: &mut H2Stats,
    ) -> Self {
        stats.connections[Start::PriorKnowledge.index()] += 1;
        Connection::new(endpoints, client_expects, limits, DEFAULT_HPACK_TABLE)
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c`, 101): the upgrade
    /// request (`head`, its position on the connection and time, its body already
    /// read) is stream 1's; the server's bytes are frames from the first, the
    /// client's begin with the preface.
    #[allow(clippy::too_many_arguments)]
    pub fn upgraded(
        endpoints: Endpoints,
        head: Head,
        (depth, ts): (u32, Nanos),
        body: (u64, Vec<u8>, Option<crate::credentials::Scanner>),
        switched: (Nanos, Text),
        limits: (usize, usize),
        stats: &mut H2Stats,
    ) -> Self {
        stats.connections[Start::Upgrade.index()] += 1;
        stats.streams += 1;
        // The client's SETTINGS travelled in its HTTP2-Settings field, which is not
        // kept: the server's table may be as large as the cap allows.
        let mut c = Connection::new(endpoints, frame::PREFACE, limits, MAX_HPACK_TABLE);
        // Numbered on from the HTTP/1 requests before it.
        let mut s = Stream::new(1, depth, ts);
        c.next_seq = depth.saturating_add(1);
        c.max_client_stream = 1;
        if let StartLine::Request { method, uri, .. } = head.start {
            s.method = Some(method);
            s.uri = (!uri.is_empty()).then_some(uri);
        }
        s.request_headers = head.headers;
        s.request_done = true;
        (s.body_len, s.body_prefix, s.credentials) = body;
        s.response_ts = Some(switched.0);
        s.interim = Some(Box::new((101, switched.1)));
        c.streams.insert(1, s);
        c
    }

    fn new(
        endpoints: Endpoints,
        client_expects: &'static [u8],
        (body_prefix_limit, sensitive_prefix): (usize, usize),
        server_table: usize,
    ) -> Self {
        Connection {
            endpoints,
            client: FrameReader::new(client_expects),
            server: FrameReader::new(&[]),
            client_hpack: Hpack::new(DEFAULT_HPACK_TABLE),
            server_hpack: Hpack::new(server_table),
            client_block: None,
            server_block: None,
            streams: BTreeMap::new(),
            next_seq: 1,
            max_client_stream: 0,
            body_prefix_limit,
            sensitive_prefix,
            undecodable: false,
        }
    }

    /// The server's first bytes (its SETTINGS) were refused by the HTTP/1 reader
    /// before the client's preface came: the table size they announced is unknown,
    /// so the client's table may be as large as the cap allows.
    pub fn server_settings_lost(&mut self) {
        self.client_hpack.allow(MAX_HPACK_TABLE as u32);
    }

    /// Bytes held for frames and header blocks not yet complete.
    pub fn buffered(&self) -> usize {
        self.client.buffered()
            + self.server.buffered()
            + self.client_block.as_ref().map_or(0, |b| b.bytes.capacity())
            + self.server_block.as_ref().map_or(0, |b| b.bytes.capacity())
    }

    /// Bytes from one side.
    pub fn data(
        &mut self,
        from_client: bool,
        mut data: &[u8],
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) {
        loop {
            let reader = if from_client {
                &mut self.client
            } else {
                &mut self.server
            };
            let Some(f) = reader.next(&mut data) else {
                return;
            };
            match f {
                Frame::Data { stream, chunk } => self.body(from_client, stream, chunk),
                Frame::DataEnd { stream, end_stream } => {
                    if end_stream {
                        self.end_stream(from_client, stream, out);
                    }
                }
                Frame::Control { header, payload } => {
                    self.control(from_client, header, &payload, ts, stats, out)
                }
                Frame::Oversized { header } => {
                    if matches!(
                        header.kind,
                        kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION
                    ) {
                        stats.problem(Problem::HeaderBlockTooLarge);
                        self.lose_headers(from_client, stats);
                    }
                }
                Frame::BadPreface => {
                    stats.problem(Problem::BadPreface);
                    self.lose_direction(from_client, stats);
                }
                Frame::Malformed { .. } => {
                    stats.problem(Problem::MalformedFrame);
                    self.lose_direction(from_client, stats);
                }
            }
        }
    }

    /// Bytes were lost in one direction: its frame boundaries, and so its HPACK
    /// table, are gone.
    pub fn gap(&mut self, from_client: bool, stats: &mut H2Stats) {
        let reader = if from_client {
            &self.client
        } else {
            &self.server
        };
        if reader.is_stopped() {
            return;
        }
        stats.problem(Problem::Gap);
        self.lose_direction(from_client, stats);
    }

    /// The connection is over: every stream still open is emitted, incomplete.
    pub fn flush(&mut self, out: &mut Vec<Exchange>) {
        let mut open: Vec<(u32, Stream)> = std::mem::take(&mut self.streams).into_iter().collect();
        open.sort_by_key(|(_, s)| s.seq);
        for (_, mut s) in open {
            s.incomplete = true;
            self.emit(s, out);
        }
    }

    /// A direction cannot be read any more.
    fn lose_direction(&mut self, from_client: bool, stats: &mut H2Stats) {
        if from_client {
            self.client.stop();
        } else {
            self.server.stop();
        }
        for s in self.streams.values_mut() {
            s.incomplete = true;
        }
        self.lose_headers(from_client, stats);
    }

    /// A direction's header blocks can no longer be decoded.
    fn lose_headers(&mut self, from_client: bool, stats: &mut H2Stats) {
        let (hpack, block) = if from_client {
            (&mut self.client_hpack, &mut self.client_block)
        } else {
            (&mut self.server_hpack, &mut self.server_block)
        };
        hpack.lost = true;
        *block = None;
        if !self.undecodable {
            self.undecodable = true;
            stats.undecodable += 1;
        }
    }

    fn control(
        &mut self,
        from_client: bool,
        header: FrameHeader,
        payload: &[u8],
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) {
        let slot = if from_client {
            &mut self.client_block
        } else {
            &mut self.server_block
        };
        // A header block must be continued by CONTINUATION frames of its stream
        // and nothing else (RFC 9113 §6.10).
        if let Some(mut b) = slot.take() {
            if header.kind != kind::CONTINUATION || header.stream != b.stream {
                stats.problem(Problem::MalformedFrame);
                self.lose_headers(from_client, stats);
                return;
            }
            b.frames += 1;
            if b.bytes.len() + payload.len() > MAX_HEADER_BLOCK || b.frames > MAX_CONTINUATIONS {
                // Its stream still opens (or ends), marked: the headers are lost.
                stats.problem(Problem::HeaderBlockTooLarge);
                self.lose_headers(from_client, stats);
                b.bytes = Vec::new();
                self.apply_block(from_client, b, None, ts, stats, out);
                return;
            }
            // Grown by doubling, but never past the cap (plain `extend` would
            // double a 40 KiB block to 80).
            let need = b.bytes.len() + payload.len();
            if need > b.bytes.capacity() {
                let target = (b.bytes.capacity() * 2).clamp(need, MAX_HEADER_BLOCK);
                b.bytes.reserve_exact(target - b.bytes.len());
            }
            b.bytes.extend_from_slice(payload);
            if header.has(flag::END_HEADERS) {
                self.header_block(from_client, b, ts, stats, out);
            } else {
                *slot = Some(b);
            }
            return;
        }
        match header.kind {
            kind::HEADERS | kind::PUSH_PROMISE => {
                let Some((start, end, promised)) = frame::strip_headers_payload(&header, payload)
                else {
                    stats.problem(Problem::MalformedFrame);
                    self.lose_headers(from_client, stats);
                    return;
                };
                let b = Block {
                    stream: header.stream,
                    end_stream: header.kind == kind::HEADERS && header.has(flag::END_STREAM),
                    promised,
                    bytes: payload[start..end].to_vec(),
                    frames: 1,
                };
                if header.has(flag::END_HEADERS) {
                    self.header_block(from_client, b, ts, stats, out);
                } else if from_client {
                    self.client_block = Some(b);
                } else {
                    self.server_block = Some(b);
                }
            }
            // A CONTINUATION without a block to continue: nothing to add it to.
            kind::CONTINUATION => {}
            kind::RST_STREAM => {
                if let Some(mut s) = self.streams.remove(&header.stream) {
                    stats.resets += 1;
                    s.incomplete = true;
                    s.info.reset = true;
                    self.emit(s, out);
                }
            }
            kind::SETTINGS if header.stream == 0 && !header.has(flag::ACK) => {
                for (id, value) in frame::settings(payload) {
                    if id == frame::SETTINGS_HEADER_TABLE_SIZE {
                        // The client's setting bounds the server's encoder.
                        if from_client {
                            self.server_hpack.allow(value);
                        } else {
                            self.client_hpack.allow(value);
                        }
                    }
                }
            }
            // GOAWAY, PING, PRIORITY, WINDOW_UPDATE and unknown types change no
            // exchange: streams past a GOAWAY's last id are simply never answered
            // and end with the connection.
            _ => {}
        }
    }

    /// A complete header block: decoded (always, to keep the table in step), then
    /// applied to its stream.
    fn header_block(
        &mut self,
        from_client: bool,
        b: Block,
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) {
        let hpack = if from_client {
            &mut self.client_hpack
        } else {
            &mut self.server_hpack
        };
        let fields = if hpack.lost {
            None
        } else {
            let mut f = Fields::default();
            match hpack
                .decoder
                .decode_with_cb(&b.bytes, |n: Cow<[u8]>, v: Cow<[u8]>| f.field(&n, &v))
            {
                Ok(()) => {
                    if f.overflow {
                        stats.problem(Problem::HeaderListTooLarge);
                    }
                    Some(f)
                }
                Err(_) => {
                    stats.problem(Problem::HpackError);
                    self.lose_headers(from_client, stats);
                    None
                }
            }
        };
        self.apply_block(from_client, b, fields, ts, stats, out);
    }

    /// A header block's fields (`None`: not decoded) go to their stream.
    fn apply_block(
        &mut self,
        from_client: bool,
        b: Block,
        fields: Option<Fields>,
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) {
        if from_client {
            self.client_headers(b, fields, ts, stats, out);
        } else if b.promised != 0 {
            self.push_promise(b, fields, ts, stats, out);
        } else {
            self.server_headers(b, fields, ts, out);
        }
    }

    fn client_headers(
        &mut self,
        b: Block,
        fields: Option<Fields>,
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) {
        // Client streams are odd (RFC 9113 §5.1.1).
        if b.stream.is_multiple_of(2) {
            return;
        }
        if !self.streams.contains_key(&b.stream) {
            if b.stream <= self.max_client_stream {
                return;
            }
            self.max_client_stream = b.stream;
            let s = self.open(b.stream, ts, stats, out);
            match fields {
                Some(f) => s.set_request(f),
                None => s.incomplete = true,
            }
        }
        // A second block on the stream is its trailers: nothing in them is kept.
        if b.end_stream {
            self.end_stream(true, b.stream, out);
        }
    }

    fn server_headers(
        &mut self,
        b: Block,
        fields: Option<Fields>,
        ts: Nanos,
        out: &mut Vec<Exchange>,
    ) {
        let Some(s) = self.streams.get_mut(&b.stream) else {
            return;
        };
        s.response_ts.get_or_insert(ts);
        match fields {
            None => s.incomplete = true,
            Some(f) => {
                if let Some(g) = s.info.grpc.as_mut() {
                    if f.grpc_status.is_some() {
                        g.status = f.grpc_status;
                    }
                    if f.grpc_message.is_some() {
                        g.message = f.grpc_message.clone();
                    }
                }
                match f.status {
                    // Interim answers (RFC 9113 §8.1): the final one follows.
                    Some(st @ 100..=199) if s.response_headers.is_none() => {
                        s.interim = Some(Box::new((st, Text::const_new(""))));
                    }
                    Some(st) if s.response_headers.is_none() => {
                        s.status = Some(st);
                        let h = f.headers().0;
                        if !b.end_stream {
                            s.sensitive = crate::sensitive::Scanner::new(
                                self.sensitive_prefix,
                                h.content_type.as_deref(),
                                h.content_encoded,
                            );
                        }
                        s.response_headers = Some(h);
                    }
                    // Trailers (gRPC's status among them, read above).
                    _ => {}
                }
            }
        }
        if b.end_stream {
            self.end_stream(false, b.stream, out);
        }
    }

    /// A server push: the promised stream's request, decoded from the server's
    /// table; the push has no request body.
    fn push_promise(
        &mut self,
        b: Block,
        fields: Option<Fields>,
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) {
        // Pushed streams are even and new.
        if !b.promised.is_multiple_of(2) || self.streams.contains_key(&b.promised) {
            return;
        }
        let s = self.open(b.promised, ts, stats, out);
        s.info.pushed = true;
        s.request_done = true;
        match fields {
            Some(f) => s.set_request(f),
            None => s.incomplete = true,
        }
    }

    /// Opens a stream, making room by emitting the oldest when at the limit.
    fn open(
        &mut self,
        id: u32,
        ts: Nanos,
        stats: &mut H2Stats,
        out: &mut Vec<Exchange>,
    ) -> &mut Stream {
        if self.streams.len() >= MAX_OPEN_STREAMS {
            stats.problem(Problem::TooManyStreams);
            let oldest = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.seq)
                .map(|(id, _)| *id);
            if let Some(mut s) = oldest.and_then(|id| self.streams.remove(&id)) {
                s.incomplete = true;
                self.emit(s, out);
            }
        }
        stats.streams += 1;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        self.streams.entry(id).or_insert(Stream::new(id, seq, ts))
    }

    /// DATA payload bytes.
    fn body(&mut self, from_client: bool, stream: u32, chunk: &[u8]) {
        let limit = self.body_prefix_limit;
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if from_client {
            s.body_len += chunk.len() as u64;
            let room = limit.saturating_sub(s.body_prefix.len());
            s.body_prefix
                .extend_from_slice(&chunk[..room.min(chunk.len())]);
            let ct = s.request_headers.content_type.as_deref();
            s.credentials
                .get_or_insert_with(|| crate::credentials::Scanner::new(ct))
                .feed(chunk);
            if let Some(m) = s.messages.as_mut() {
                m.0.feed(chunk);
            }
        } else {
            s.response_body_len += chunk.len() as u64;
            let room = RESPONSE_PREFIX.saturating_sub(s.response_body_prefix.len());
            s.response_body_prefix
                .extend_from_slice(&chunk[..room.min(chunk.len())]);
            s.sensitive.feed(chunk);
            if let Some(m) = s.messages.as_mut() {
                m.1.feed(chunk);
            }
        }
    }

    /// END_STREAM from one side; a stream both sides ended is emitted.
    fn end_stream(&mut self, from_client: bool, stream: u32, out: &mut Vec<Exchange>) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if from_client {
            s.request_done = true;
        } else {
            s.response_done = true;
        }
        if s.request_done
            && s.response_done
            && let Some(s) = self.streams.remove(&stream)
        {
            self.emit(s, out);
        }
    }

    fn emit(&self, s: Stream, out: &mut Vec<Exchange>) {
        let e = &self.endpoints;
        let mut info = s.info;
        if let (Some(g), Some(m)) = (info.grpc.as_mut(), s.messages) {
            g.request_messages = m.0.messages;
            g.response_messages = m.1.messages;
        }
        let answered = s.response_ts.is_some();
        let version = Text::const_new("2");
        out.push(Exchange {
            ts: s.ts,
            client_ip: e.client_ip,
            client_port: e.client_port,
            server_ip: e.server_ip,
            server_port: e.server_port,
            trans_depth: s.seq,
            method: s.method,
            uri: s.uri,
            version: Some(version.clone()),
            request_headers: s.request_headers,
            request_body_len: s.body_len,
            request_body_prefix: s.body_prefix,
            body_credentials: s.credentials.map(|c| c.finish()),
            response_body_prefix: s.response_body_prefix,
            status: s.status,
            status_msg: None,
            response_version: s.status.map(|_| version),
            interim: s.interim,
            response_headers: s.response_headers,
            response_body_len: answered.then_some(s.response_body_len),
            response_ts: s.response_ts,
            incomplete: s.incomplete,
            flow: Default::default(),
            tls: None,
            decrypted: false,
            h2: Some(Box::new(info)),
            sensitive: s.sensitive.finish(!s.incomplete && s.response_done),
            sealed: None,
        });
    }
}

#[cfg(test)]
mod tests;
