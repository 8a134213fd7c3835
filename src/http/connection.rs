//! Pairs requests and responses on one TCP connection, in order (RFC 9112 §9.3:
//! responses arrive in request order, which is what makes pipelining work).
//!
//! Each request opens a transaction; the next response head answers the oldest
//! transaction still waiting. A transaction is emitted as an [`Exchange`] once both of
//! its messages are complete, or when the connection ends. Interim 1xx responses
//! (except 101) do not answer a request. 101 Switching Protocols and a 2xx answer to
//! CONNECT end HTTP parsing on the connection.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use super::parser::{Finish, Framing, Head, MessageReader, ParseError, Role, StartLine, Step};
use super::{DEFAULT_BODY_PREFIX, Exchange};
use crate::time::Nanos;
use tls::TlsConn;

/// Response-body bytes kept (login failure markers such as `{"error":"invalid
/// credentials"}` sit at the start of the body).
pub const RESPONSE_PREFIX: usize = 256;
/// Transactions waiting on one connection (pipelined requests not yet answered).
/// Beyond this the oldest is emitted without its response and counted.
pub const MAX_PENDING_TRANSACTIONS: usize = 256;
/// Resynchronisation bytes scanned on a connection that never showed an HTTP message
/// before it is declared not HTTP (keeps TLS/SSH flows picked up midstream cheap).
const MAX_SCAN_WITHOUT_HTTP: u64 = 256 * 1024;

/// HTTP counters, summed into the pipeline's totals.
#[derive(Debug, Default, Clone)]
pub struct HttpStats {
    pub requests: u64,
    pub responses: u64,
    pub parse_errors: [u64; ParseError::ALL.len()],
    pub connections_not_http: u64,
    pub h2: super::h2::H2Stats,
}

impl HttpStats {
    fn error(&mut self, e: ParseError) {
        self.parse_errors[e.index()] += 1;
    }

    pub fn add(&mut self, o: &HttpStats) {
        self.requests += o.requests;
        self.responses += o.responses;
        for (a, b) in self.parse_errors.iter_mut().zip(o.parse_errors.iter()) {
            *a += b;
        }
        self.connections_not_http += o.connections_not_http;
        self.h2.add(&o.h2);
    }
}

#[derive(Debug)]
struct Transaction {
    depth: u32,
    ts: Nanos,
    request: Option<Box<Head>>,
    request_done: bool,
    body_len: u64,
    body_prefix: Vec<u8>,
    /// The request body's credentials, read as the body streams by.
    credentials: Option<crate::credentials::Scanner>,
    response_body_prefix: Vec<u8>,
    /// Sensitive values counted in the response body as it streams by.
    sensitive: crate::sensitive::Scanner,
    response: Option<Box<Head>>,
    /// The last interim 1xx response's code and reason phrase.
    interim: Option<Box<(u16, super::Text)>>,
    response_ts: Option<Nanos>,
    response_body_len: u64,
    response_done: bool,
    incomplete: bool,
    /// A gap swallowed this request's head: it happened, its content is unknown.
    request_lost: bool,
    /// The same for the response.
    response_lost: bool,
}

impl Transaction {
    fn new(depth: u32, ts: Nanos) -> Self {
        Transaction {
            depth,
            ts,
            request: None,
            request_done: false,
            body_len: 0,
            body_prefix: Vec::new(),
            credentials: None,
            response_body_prefix: Vec::new(),
            sensitive: Default::default(),
            response: None,
            interim: None,
            response_ts: None,
            response_body_len: 0,
            response_done: false,
            incomplete: false,
            request_lost: false,
            response_lost: false,
        }
    }

    fn method(&self) -> Option<&str> {
        match self.request.as_deref().map(|h| &h.start) {
            Some(StartLine::Request { method, .. }) => Some(method),
            _ => None,
        }
    }

    /// A request was seen (or lost in a gap) that a response can answer.
    fn awaits_response(&self) -> bool {
        (self.request.is_some() || self.request_lost)
            && self.response.is_none()
            && !self.response_lost
    }

    fn is_http09(&self) -> bool {
        matches!(self.request.as_deref().map(|h| &h.start),
            Some(StartLine::Request { version, .. }) if version == "0.9")
    }
}

/// Endpoints of a connection, client first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
}

/// HTTP state of one TCP connection.
#[derive(Debug)]
pub struct Connection {
    pub endpoints: Endpoints,
    requests: MessageReader,
    responses: MessageReader,
    txs: VecDeque<Transaction>,
    next_depth: u32,
    body_prefix_limit: usize,
    /// Response-body bytes scanned for sensitive values (`exposure.sensitive_prefix`).
    sensitive_prefix: usize,
    pub stats: HttpStats,
    gave_up: bool,
    /// Which sides started with bytes that are not HTTP (before any message).
    client_not_http: bool,
    server_not_http: bool,
    /// Capture time of the latest bytes from each side (dates a head cut by a gap).
    last_client_ts: Nanos,
    last_server_ts: Nanos,
    /// The connection turned out to be TLS: its handshake, read until it is
    /// established or the connection ends (`gave_up` is set, so the HTTP path never
    /// looks at this); with a key log, its decryption too (`tls.rs`).
    tls: Option<Box<TlsConn>>,
    /// The secrets TLS connections are decrypted with (`--tls-keylog`).
    keylog: Option<Arc<crate::tls::KeyLog>>,
    /// The connection turned out to be HTTP/2 (`gave_up` is set as for TLS).
    h2: Option<Box<super::h2::Connection>>,
    /// After the TLS record of a connection read without keys: what detection needs
    /// at its close (who, which server name, JA4) and what it carried since.
    tail: Option<Box<TlsTail>>,
}

/// The rest of a TLS connection after its record: the bytes nobody can read,
/// counted until the connection ends (then one internal record carries them).
#[derive(Debug)]
struct TlsTail {
    start: Nanos,
    client: Option<crate::tls::ClientHello>,
    closed: crate::tls::Closed,
}

impl Connection {
    pub fn new(endpoints: Endpoints, midstream: bool) -> Self {
        let mut c = Connection {
            endpoints,
            requests: MessageReader::new(Role::Request),
            responses: MessageReader::new(Role::Response),
            txs: VecDeque::new(),
            next_depth: 1,
            body_prefix_limit: DEFAULT_BODY_PREFIX,
            sensitive_prefix: crate::sensitive::DEFAULT_PREFIX,
            stats: HttpStats::default(),
            gave_up: false,
            client_not_http: false,
            server_not_http: false,
            last_client_ts: 0,
            last_server_ts: 0,
            tls: None,
            keylog: None,
            tail: None,
            h2: None,
        };
        if midstream {
            c.requests.start_midstream();
            c.responses.start_midstream();
        }
        c
    }

    /// Decrypts TLS connections with these secrets.
    pub fn set_keylog(&mut self, keylog: Arc<crate::tls::KeyLog>) {
        self.keylog = Some(keylog);
    }

    /// Sets how many request-body bytes are kept for detectors.
    pub fn set_body_prefix_limit(&mut self, n: usize) {
        self.body_prefix_limit = n;
    }

    /// Sets how many response-body bytes are scanned for sensitive values (0: none).
    pub fn set_sensitive_prefix(&mut self, n: usize) {
        self.sensitive_prefix = n;
    }

    /// Whether parsing stopped for good (not HTTP, or upgraded to something else).
    /// Bytes the two message readers hold for messages not yet complete.
    /// Asked per segment: HTTP/1's readers inline, TLS and HTTP/2 (only ever set
    /// once `gave_up` is) out of line.
    #[inline]
    pub fn buffered(&self) -> usize {
        let http1 = self.requests.buffered() + self.responses.buffered();
        if self.gave_up {
            http1 + self.other_buffered()
        } else {
            http1
        }
    }

    #[cold]
    #[inline(never)]
    fn other_buffered(&self) -> usize {
        self.tls.as_ref().map_or(0, |t| t.buffered()) + self.h2.as_ref().map_or(0, |h| h.buffered())
    }

    /// Memory pressure: both readers give back what they can (see
    /// [`MessageReader::shed`]).
    pub fn shed(&mut self) {
        self.requests.shed();
        self.responses.shed();
        if let Some(t) = self.tls.as_mut() {
            t.shed();
        }
    }

    pub fn is_done(&self) -> bool {
        (self.gave_up && self.tls.is_none() && self.h2.is_none())
            || (self.requests.is_ignoring() && self.responses.is_ignoring() && self.txs.is_empty())
    }

    /// Bytes sent by the client.
    pub fn client_data(&mut self, mut data: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        if self.gave_up {
            self.after_http1(true, data, ts, out);
            return;
        }
        self.last_client_ts = ts;
        // The TLS check costs nothing here: it runs only when the request reader
        // refuses the connection's first bytes.
        let first = data;
        loop {
            match self.requests.step(&mut data) {
                Step::NeedMore if data.is_empty() => break,
                Step::NeedMore => {}
                // HTTP/2's preface reads as a request head: checked per head, not
                // per segment, and only its method on every other request.
                Step::Head(head) if self.is_h2_preface(&head) => {
                    self.begin_h2_preface(data, ts, out);
                    return;
                }
                Step::Head(head) => self.request_head(head, ts, out),
                Step::Body(b) => {
                    let limit = self.body_prefix_limit;
                    if let Some(tx) = self.current_request() {
                        tx.body_len += b.len() as u64;
                        let ct = tx
                            .request
                            .as_ref()
                            .and_then(|h| h.headers.content_type.as_deref());
                        let scanner = tx
                            .credentials
                            .get_or_insert_with(|| crate::credentials::Scanner::new(ct));
                        scanner.feed(b);
                        // A GraphQL request is kept whole up to a bound: its
                        // operations are read from it (aliases past 2 KiB count).
                        let limit = if scanner.graphql() {
                            limit.max(crate::graphql::MAX_QUERY_BYTES)
                        } else {
                            limit
                        };
                        let room = limit.saturating_sub(tx.body_prefix.len());
                        tx.body_prefix.extend_from_slice(&b[..room.min(b.len())]);
                    }
                }
                Step::End => {
                    if let Some(tx) = self.current_request() {
                        tx.request_done = true;
                    }
                    self.emit_ready(out);
                }
                Step::Error(ParseError::NotHttp) if self.starts_tls(first) => {
                    self.begin_tls(first, ts, out);
                    return;
                }
                Step::Error(e) => self.parse_error(e, true),
            }
        }
    }

    /// Whether `first`, refused by the request reader, are the client's first bytes
    /// and begin a TLS handshake.
    #[cold]
    fn starts_tls(&self, first: &[u8]) -> bool {
        !self.requests.seen_message
            && self.requests.resync_skipped == 0
            && !self.client_not_http
            && self.txs.is_empty()
            && crate::tls::looks_like_handshake(first)
    }

    /// The connection is TLS: HTTP parsing stops, the handshake reader takes the
    /// client's bytes from the first.
    #[cold]
    #[inline(never)]
    fn begin_tls(&mut self, first: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        // `gave_up` alone keeps HTTP off the connection; the readers are not told to
        // ignore, so that `is_done` stays false while the handshake is read.
        self.gave_up = true;
        self.tls = Some(Box::new(TlsConn::new(
            self.endpoints,
            ts,
            self.keylog.as_ref(),
            self.body_prefix_limit,
            self.sensitive_prefix,
        )));
        self.tls_data(true, first, ts, out);
    }

    /// Bytes of a connection HTTP gave up on: TLS bytes when it is TLS.
    #[inline(never)]
    fn tls_data(&mut self, from_client: bool, data: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        if let Some(t) = self.tls.as_mut() {
            t.data(from_client, data, ts, out);
            if t.finished() {
                self.end_tls();
            }
        }
    }

    /// A connection picked up mid-stream turned out to be HTTP/2 frames (asked
    /// once per new flow, of its first segment): its HPACK tables are unknown, so it
    /// is counted and not read. Headers are never guessed.
    #[cold]
    pub fn h2_midstream(&mut self) {
        self.stats.h2.problem(super::h2::Problem::Midstream);
        self.stats.h2.undecodable += 1;
        self.gave_up = true;
        self.requests.ignore();
        self.responses.ignore();
    }

    /// Bytes of a connection HTTP/1 gave up on: HTTP/2 frames, or TLS.
    #[inline(never)]
    fn after_http1(&mut self, from_client: bool, data: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        match self.h2.as_mut() {
            Some(h) => h.data(from_client, data, ts, &mut self.stats.h2, out),
            None => self.tls_data(from_client, data, ts, out),
        }
    }

    /// Whether a request head is HTTP/2's connection preface (`PRI * HTTP/2.0`,
    /// RFC 9113 §3.4) opening the connection.
    #[inline]
    fn is_h2_preface(&self, head: &Head) -> bool {
        matches!(&head.start, StartLine::Request { method, uri, version }
            if method == "PRI" && uri == "*" && version == "2.0")
            && self.next_depth == 1
            && !self.client_not_http
    }

    /// The client spoke HTTP/2 with prior knowledge: `rest` follows the preface's
    /// first head.
    #[cold]
    #[inline(never)]
    fn begin_h2_preface(&mut self, rest: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        // As for TLS, `gave_up` alone keeps HTTP/1 off the connection.
        self.gave_up = true;
        let mut h = super::h2::Connection::prior_knowledge(
            self.endpoints,
            super::h2::frame::PREFACE_TAIL,
            (self.body_prefix_limit, self.sensitive_prefix),
            &mut self.stats.h2,
        );
        if self.server_not_http || self.responses.resync_skipped > 0 {
            h.server_settings_lost();
        }
        h.data(true, rest, ts, &mut self.stats.h2, out);
        self.h2 = Some(Box::new(h));
    }

    /// A 101 answered what may be an `Upgrade: h2c` request: if it was, the
    /// request becomes stream 1 and `rest` are the server's first frames.
    #[cold]
    #[inline(never)]
    fn begin_h2_upgrade(
        &mut self,
        head: Box<Head>,
        rest: &[u8],
        ts: Nanos,
        out: &mut Vec<Exchange>,
    ) {
        let upgrading = self
            .txs
            .iter()
            .position(|t| t.awaits_response())
            .filter(|i| {
                self.txs[*i]
                    .request
                    .as_ref()
                    .is_some_and(|r| r.headers.upgrade_h2c)
            });
        let Some(idx) = upgrading else {
            // Another protocol's upgrade: read as any 101.
            self.response_head(head, ts, out);
            self.server_data(rest, ts, out);
            return;
        };
        let Some(tx) = self.txs.remove(idx) else {
            return;
        };
        // Anything else still pending ends here, as at the connection's end.
        self.flush(out);
        self.gave_up = true;
        self.stats.responses += 1;
        let reason = match head.start {
            StartLine::Response { reason, .. } => reason,
            StartLine::Request { .. } => super::Text::default(),
        };
        let Some(request) = tx.request else {
            return;
        };
        let mut h = super::h2::Connection::upgraded(
            self.endpoints,
            *request,
            (tx.depth, tx.ts),
            (tx.body_len, tx.body_prefix, tx.credentials),
            (tx.response_ts.unwrap_or(ts), reason),
            (self.body_prefix_limit, self.sensitive_prefix),
            &mut self.stats.h2,
        );
        h.data(false, rest, ts, &mut self.stats.h2, out);
        self.h2 = Some(Box::new(h));
    }

    /// The TLS record is written and nothing is decrypted: an established
    /// connection is then followed as bytes only ([`Self::opaque`]).
    #[cold]
    fn end_tls(&mut self) {
        if let Some((start, client)) = self.tls.take().and_then(|t| t.into_tail()) {
            self.tail = Some(Box::new(TlsTail {
                start,
                client,
                closed: crate::tls::Closed::default(),
            }));
        }
    }

    fn push_tls(&self, session: crate::tls::Session, out: &mut Vec<Exchange>) {
        let e = &self.endpoints;
        out.push(Exchange {
            ts: session.start,
            client_ip: e.client_ip,
            client_port: e.client_port,
            server_ip: e.server_ip,
            server_port: e.server_port,
            tls: Some(Box::new(session)),
            ..Exchange::vacant()
        });
    }

    /// Bytes of a connection that is no longer parsed (the flow table calls this
    /// instead of reassembling): counted when they follow a TLS handshake.
    #[inline]
    pub fn opaque(&mut self, from_client: bool, len: usize, ts: Nanos) {
        if let Some(t) = self.tail.as_mut()
            && len > 0
        {
            let c = &mut t.closed;
            if from_client {
                c.client_bytes += len as u64;
                c.client_segments += 1;
            } else {
                c.server_bytes += len as u64;
                c.server_segments += 1;
            }
            c.end = ts;
        }
    }

    /// The internal record of a TLS connection's encrypted part, at its close.
    fn emit_tail(&mut self, out: &mut Vec<Exchange>) {
        let Some(t) = self.tail.take() else {
            return;
        };
        let closed = crate::tls::Closed {
            start: t.start,
            end: t.closed.end.max(t.start),
            ..t.closed
        };
        let session = crate::tls::Session {
            start: closed.end,
            client: t.client,
            outcome: crate::tls::Outcome::Established,
            closed: Some(closed),
            ..Default::default()
        };
        self.push_tls(session, out);
    }

    /// Bytes sent by the server.
    pub fn server_data(&mut self, mut data: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        if self.gave_up {
            self.after_http1(false, data, ts, out);
            return;
        }
        self.last_server_ts = ts;
        // An HTTP/0.9 request is answered by raw bytes until the close, no status line.
        if self.responses.at_boundary()
            && !data.starts_with(b"HTTP/")
            && let Some(tx) = self
                .txs
                .iter_mut()
                .find(|t| t.request.is_some() && t.response_ts.is_none())
            && tx.is_http09()
        {
            tx.response_ts = Some(ts);
            self.responses.set_framing(Framing::UntilClose);
        }
        loop {
            match self.responses.step(&mut data) {
                Step::NeedMore if data.is_empty() => break,
                Step::NeedMore => {}
                Step::Head(head) if is_h2c_switch(&head) => {
                    self.begin_h2_upgrade(head, data, ts, out);
                    return;
                }
                Step::Head(head) => self.response_head(head, ts, out),
                Step::Body(b) => {
                    if let Some(tx) = self.current_response() {
                        tx.response_body_len += b.len() as u64;
                        let room = RESPONSE_PREFIX.saturating_sub(tx.response_body_prefix.len());
                        if room > 0 {
                            tx.response_body_prefix
                                .extend_from_slice(&b[..room.min(b.len())]);
                        }
                        tx.sensitive.feed(b);
                    }
                }
                Step::End => {
                    if let Some(tx) = self.current_response() {
                        tx.response_done = true;
                    }
                    self.emit_ready(out);
                }
                Step::Error(e) => self.parse_error(e, false),
            }
        }
    }

    /// Bytes were lost in one direction.
    pub fn gap(&mut self, from_client: bool, len: u64) {
        if self.gave_up {
            if let Some(h) = self.h2.as_mut() {
                h.gap(from_client, &mut self.stats.h2);
            }
            self.tls_gap(from_client, len);
            return;
        }
        let reader = if from_client {
            &mut self.requests
        } else {
            &mut self.responses
        };
        let cut_head = reader.in_head();
        let Some(e) = reader.gap(len) else {
            return;
        };
        self.stats.error(e);
        if cut_head {
            // A message began and its head was lost: keep request/response pairing
            // in step by accounting for it, content unknown.
            if from_client {
                let mut tx = Transaction::new(self.next_depth, self.last_client_ts);
                self.next_depth = self.next_depth.saturating_add(1);
                tx.request_lost = true;
                tx.request_done = true;
                tx.incomplete = true;
                self.txs.push_back(tx);
            } else if let Some(tx) = self.txs.iter_mut().find(|t| t.awaits_response()) {
                tx.response_ts.get_or_insert(self.last_server_ts);
                tx.response_done = true;
                tx.incomplete = true;
                // Counts as answered: the next response head pairs with the next request.
                tx.response_lost = true;
            }
            return;
        }
        self.mark_current(from_client, true, true);
    }

    /// A gap on a TLS connection (its exchanges, if decrypted, are in the gap too).
    #[cold]
    fn tls_gap(&mut self, from_client: bool, len: u64) {
        if let Some(t) = self.tls.as_mut() {
            t.gap(from_client, len);
        }
    }

    /// The transaction being read in one direction: its message is over (`done`),
    /// possibly broken (`incomplete`).
    fn mark_current(&mut self, from_client: bool, done: bool, incomplete: bool) {
        let tx = if from_client {
            self.current_request()
        } else {
            self.current_response()
        };
        if let Some(tx) = tx {
            tx.incomplete |= incomplete;
            if done && from_client {
                tx.request_done = true;
            } else if done {
                tx.response_done = true;
            }
        }
    }

    /// One direction closed.
    pub fn end(&mut self, from_client: bool, ts: Nanos, out: &mut Vec<Exchange>) {
        if self.gave_up {
            if let Some(t) = self.tls.as_mut() {
                t.end(from_client, ts, out);
            }
            return;
        }
        let reader = if from_client {
            &mut self.requests
        } else {
            &mut self.responses
        };
        match reader.finish() {
            Finish::Idle => {}
            Finish::Complete => self.mark_current(from_client, true, false),
            Finish::Truncated => {
                self.stats.error(ParseError::Truncated);
                self.mark_current(from_client, false, true);
            }
            Finish::Head(head) => {
                if from_client {
                    self.request_head(head, ts, out);
                } else {
                    self.response_head(head, ts, out);
                }
            }
            Finish::Error(e) => self.stats.error(e),
        }
        self.emit_ready(out);
    }

    /// A direction [`Self::end`] closed goes on (its FIN was not real). Requests or
    /// responses read on from where the close found them; a close that cut a message
    /// leaves the direction closed.
    pub fn reopen(&mut self, from_client: bool) {
        if from_client {
            self.requests.reopen();
        } else {
            self.responses.reopen();
        }
    }

    /// A TLS connection that holds its records for secrets not logged yet (a
    /// followed key file) and may still get them by packet time `now`: one that
    /// ended is kept a moment before it is flushed.
    pub fn waits_for_keys(&self, now: Nanos) -> bool {
        self.tls.as_ref().is_some_and(|t| t.waits_for_keys(now))
    }

    /// The connection is over: everything still pending is emitted.
    pub fn flush(&mut self, out: &mut Vec<Exchange>) {
        if let Some(mut t) = self.tls.take() {
            t.flush(out);
        }
        self.emit_tail(out);
        if let Some(h) = self.h2.as_mut() {
            h.flush(out);
        }
        while let Some(tx) = self.txs.pop_front() {
            let incomplete = !(tx.request_done || tx.request.is_none()) || !tx.response_done;
            self.emit(tx, incomplete, out);
        }
    }

    fn current_request(&mut self) -> Option<&mut Transaction> {
        self.txs
            .iter_mut()
            .rev()
            .find(|t| t.request.is_some() && !t.request_done)
    }

    /// The transaction whose response is being read.
    fn current_response(&mut self) -> Option<&mut Transaction> {
        self.txs
            .iter_mut()
            .find(|t| t.response_ts.is_some() && !t.response_done)
    }

    fn request_head(&mut self, head: Box<Head>, ts: Nanos, out: &mut Vec<Exchange>) {
        // A head's bookkeeping is heavy work: the capture streams in meanwhile.
        crate::capture::readahead::during_work();
        self.stats.requests += 1;
        if let Some(w) = head.warning {
            self.stats.error(w);
        }
        let framing = request_framing(&head);
        let mut tx = Transaction::new(self.next_depth, ts);
        self.next_depth = self.next_depth.saturating_add(1);
        tx.request = Some(head);
        let bodiless = matches!(framing, Framing::None | Framing::Length(0));
        tx.request_done = bodiless;
        if self.txs.len() >= MAX_PENDING_TRANSACTIONS {
            self.stats.error(ParseError::TooManyPending);
            if let Some(old) = self.txs.pop_front() {
                self.emit(old, true, out);
            }
        }
        self.txs.push_back(tx);
        self.requests.set_framing(framing);
        if bodiless {
            // Consume the reader's End now: the request is already complete.
            let mut empty: &[u8] = &[];
            let _ = self.requests.step(&mut empty);
        }
        self.emit_ready(out);
    }

    fn response_head(&mut self, head: Box<Head>, ts: Nanos, out: &mut Vec<Exchange>) {
        // A head's bookkeeping is heavy work: the capture streams in meanwhile.
        crate::capture::readahead::during_work();
        let StartLine::Response { status, .. } = head.start else {
            return;
        };
        if let Some(w) = head.warning {
            self.stats.error(w);
        }
        let interim = (100..200).contains(&status) && status != 101;
        let idx = match self.txs.iter().position(|t| t.awaits_response()) {
            Some(i) => i,
            None => {
                self.stats.error(ParseError::UnmatchedResponse);
                let tx = Transaction::new(self.next_depth, ts);
                self.next_depth = self.next_depth.saturating_add(1);
                self.txs.push_back(tx);
                self.txs.len() - 1
            }
        };
        let framing = response_framing(self.txs[idx].method(), status, &head);
        {
            let tx = &mut self.txs[idx];
            if tx.response_ts.is_none() {
                tx.response_ts = Some(ts);
            }
        }
        if interim {
            // 100 Continue and friends: the real answer follows; skip this head
            // (its code and phrase are kept for the zeek form's info_code/info_msg).
            if let StartLine::Response { reason, .. } = head.start {
                self.txs[idx].interim = Some(Box::new((status, reason)));
            }
            self.responses.set_framing(Framing::None);
            let mut empty: &[u8] = &[];
            let _ = self.responses.step(&mut empty);
            // Keep response_ts (first byte of any response) but wait for the final one.
            return;
        }
        self.stats.responses += 1;
        if matches!(framing, Framing::Chunked | Framing::UntilClose)
            || matches!(framing, Framing::Length(n) if n > 0)
        {
            let h = &head.headers;
            self.txs[idx].sensitive = crate::sensitive::Scanner::new(
                self.sensitive_prefix,
                h.content_type.as_deref(),
                h.content_encoded,
            );
        }
        self.txs[idx].response = Some(head);
        self.responses.set_framing(framing);
        match framing {
            Framing::None | Framing::Length(0) => {
                self.txs[idx].response_done = true;
                let mut empty: &[u8] = &[];
                let _ = self.responses.step(&mut empty);
            }
            Framing::Tunnel => {
                self.txs[idx].response_done = true;
                self.requests.ignore();
            }
            _ => {}
        }
        self.emit_ready(out);
    }

    fn parse_error(&mut self, e: ParseError, from_client: bool) {
        self.stats.error(e);
        if e == ParseError::NotHttp && !self.requests.seen_message && !self.responses.seen_message {
            // One garbled side is not enough: a server still answers a malformed
            // request with a status line worth reporting. Both sides is not HTTP.
            if from_client {
                self.client_not_http = true;
            } else {
                self.server_not_http = true;
            }
            if self.client_not_http && self.server_not_http && self.txs.is_empty() {
                self.give_up();
                return;
            }
        }
        let reader = if from_client {
            &self.requests
        } else {
            &self.responses
        };
        if !reader.seen_message
            && self.requests.resync_skipped + self.responses.resync_skipped > MAX_SCAN_WITHOUT_HTTP
            && self.txs.is_empty()
        {
            self.give_up();
        }
    }

    fn give_up(&mut self) {
        self.stats.connections_not_http += 1;
        self.gave_up = true;
        self.requests.ignore();
        self.responses.ignore();
    }

    /// Emits finished transactions from the front, keeping connection order.
    fn emit_ready(&mut self, out: &mut Vec<Exchange>) {
        while let Some(front) = self.txs.front() {
            let req_ok = front.request.is_none() || front.request_done;
            if !(req_ok && front.response_done) {
                break;
            }
            if let Some(tx) = self.txs.pop_front() {
                let incomplete = tx.incomplete;
                self.emit(tx, incomplete, out);
            }
        }
    }

    fn emit(&self, tx: Transaction, incomplete: bool, out: &mut Vec<Exchange>) {
        let e = &self.endpoints;
        // Fields are moved out of the boxed heads one by one: a whole `Head` moved
        // onto the stack first is a copy per exchange.
        let (method, uri, version, request_headers) = match tx.request {
            Some(h) => {
                let Head { start, headers, .. } = *h;
                match start {
                    StartLine::Request {
                        method,
                        uri,
                        version,
                    } => (
                        Some(method),
                        (!uri.is_empty()).then_some(uri),
                        Some(version),
                        headers,
                    ),
                    StartLine::Response { .. } => (None, None, None, Default::default()),
                }
            }
            None => (None, None, None, Default::default()),
        };
        let (status, status_msg, response_version, response_headers) = match tx.response {
            Some(h) => {
                let Head { start, headers, .. } = *h;
                match start {
                    StartLine::Response {
                        status,
                        version,
                        reason,
                    } => (Some(status), Some(reason), Some(version), Some(headers)),
                    StartLine::Request { .. } => (None, None, None, None),
                }
            }
            None => (None, None, None, None),
        };
        // The request's version, else the response's.
        let version = version.or_else(|| response_version.clone());
        let answered = tx.response_ts.is_some();
        out.push(Exchange {
            ts: tx.ts,
            client_ip: e.client_ip,
            client_port: e.client_port,
            server_ip: e.server_ip,
            server_port: e.server_port,
            trans_depth: tx.depth,
            method,
            uri,
            version,
            request_headers,
            request_body_len: tx.body_len,
            request_body_prefix: tx.body_prefix,
            body_credentials: tx.credentials.map(|s| s.finish()),
            response_body_prefix: tx.response_body_prefix,
            status,
            status_msg,
            response_version,
            interim: tx.interim,
            response_headers,
            response_body_len: answered.then_some(tx.response_body_len),
            response_ts: tx.response_ts,
            incomplete,
            flow: Default::default(),
            tls: None,
            decrypted: false,
            h2: None,
            sensitive: tx.sensitive.finish(!incomplete),
            sealed: None,
        });
    }
}

/// A 101 that names `h2c` in its `Upgrade`.
#[inline]
fn is_h2c_switch(head: &Head) -> bool {
    head.headers.upgrade_h2c && matches!(head.start, StartLine::Response { status: 101, .. })
}

/// Request body framing (RFC 9112 §6.3 items 3-6; a request never reads to close).
fn request_framing(head: &Head) -> Framing {
    let h = &head.headers;
    if matches!(&head.start, StartLine::Request { version, .. } if version == "0.9") {
        return Framing::None;
    }
    if h.transfer_encoding {
        return if h.chunked {
            Framing::Chunked
        } else {
            Framing::None
        };
    }
    match h.content_length {
        Some(n) => Framing::Length(n),
        None => Framing::None,
    }
}

/// Response body framing (RFC 9112 §6.3 items 1-7).
fn response_framing(method: Option<&str>, status: u16, head: &Head) -> Framing {
    let h = &head.headers;
    let is = |m: &str| method.is_some_and(|x| x.eq_ignore_ascii_case(m));
    if status == 101 {
        return Framing::Tunnel;
    }
    if is("CONNECT") && (200..300).contains(&status) {
        return Framing::Tunnel;
    }
    if is("HEAD") || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::None;
    }
    if h.transfer_encoding && h.chunked {
        return Framing::Chunked;
    }
    if h.transfer_encoding {
        return Framing::UntilClose;
    }
    match h.content_length {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    }
}

mod tls;

#[cfg(test)]
mod tests;
