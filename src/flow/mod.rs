//! The flow table: TCP connections keyed symmetrically, each with two reassembled
//! streams feeding one HTTP [`Connection`].
//!
//! Who is the client: the sender of a SYN (or the receiver of a SYN-ACK); on a
//! midstream pickup, the side whose first payload looks like a request (or the other
//! side of one that looks like a response); failing that, the side not using a
//! well-known server port. Idle flows time out on packet time; at [`FlowConfig::max_flows`]
//! the least recently seen sixteenth is evicted, and both are counted.

pub mod reassembly;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::decode::{TcpSegment, tcp_flags};
use crate::http::connection::Endpoints;
use crate::http::{Connection, Exchange, FlowInfo, HttpStats};
use crate::time::Nanos;
use reassembly::{Events, Stream, StreamEvent, StreamStats};

/// What one tracked connection costs at peak, with a request pending, its reassembly
/// and HTTP state (measured: 1 M connections of one request each, see README
/// "Memory budget"). The memory budget divides the flow share by it.
pub const FLOW_BYTES: u64 = 4096;
/// What one half-open connection (handshake only) costs in its own table.
pub const HALF_OPEN_BYTES: u64 = 160;
/// Half-open connections are forgotten after this long without a packet.
const HALF_OPEN_TIMEOUT: Nanos = 60 * 1_000_000_000;

/// Flow table limits (config keys under `[flow]`), per table (each worker has one).
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Connections tracked at once by this table (from `memory.limit` unless set).
    pub max_flows: usize,
    /// Half-open connections (a SYN, no data yet) tracked at once, in a compact
    /// table of their own: a SYN flood evicts there and never touches the
    /// connections that carry requests.
    pub max_half_open: usize,
    /// Bytes of IP fragments held for reassembly.
    pub fragment_bytes: usize,
    /// Bytes this table's connections may hold for data not yet delivered
    /// (out-of-order segments, heads split across segments). Past it, the connection
    /// that adds more gives up its holes (gaps) and reads its head line by line.
    pub buffer_bytes: usize,
    /// Idle time after which a connection is forgotten (Zeek's tcp_inactivity_timeout
    /// is 5 minutes).
    pub idle_timeout: Nanos,
    /// Request-body bytes kept per request for detectors.
    pub body_prefix: usize,
    /// Response-body bytes scanned per response for sensitive values
    /// (`exposure.sensitive_prefix`; 0: none).
    pub sensitive_prefix: usize,
    /// TLS secrets (`--tls-keylog`): TLS connections are decrypted and read as HTTP.
    /// Shared by every worker's table, read only.
    pub keylog: Option<std::sync::Arc<crate::tls::KeyLog>>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 256 * 1024,
            max_half_open: 256 * 1024,
            fragment_bytes: 16 << 20,
            buffer_bytes: 64 << 20,
            idle_timeout: 300 * 1_000_000_000,
            body_prefix: crate::http::DEFAULT_BODY_PREFIX,
            sensitive_prefix: crate::sensitive::DEFAULT_PREFIX,
            keylog: None,
        }
    }
}

/// Flow-level counters.
#[derive(Debug, Default, Clone)]
pub struct FlowStats {
    /// TCP segments this table processed.
    pub segments: u64,
    pub created: u64,
    pub midstream_pickups: u64,
    pub closed: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub port_reuse: u64,
    pub ignored_segments: u64,
    /// Half-open connections evicted from a full half-open table.
    pub half_open_evicted: u64,
    /// Times a connection gave up its held data because the table's buffer budget
    /// was spent.
    pub buffers_shed: u64,
    /// Connections this table may hold (`flow.max_flows` for one worker); summed
    /// over workers it is the capacity the `tcp_sessions_limit` gauge shows.
    pub capacity: u64,
    /// Stream counters of flows already removed plus live gap counts.
    pub streams: StreamStats,
    pub http: HttpStats,
}

impl FlowStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &FlowStats) {
        self.segments += o.segments;
        self.created += o.created;
        self.midstream_pickups += o.midstream_pickups;
        self.closed += o.closed;
        self.timed_out += o.timed_out;
        self.evicted += o.evicted;
        self.port_reuse += o.port_reuse;
        self.ignored_segments += o.ignored_segments;
        self.half_open_evicted += o.half_open_evicted;
        self.buffers_shed += o.buffers_shed;
        self.capacity += o.capacity;
        self.streams.add(&o.streams);
        self.http.add(&o.http);
    }
}

/// Canonical (smaller endpoint first) connection key, packed as machine words: one
/// lookup a packet compares and hashes integers, not `IpAddr` enums (the derived
/// forms cost about 60 instructions a packet more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Endpoint `a`'s address: IPv4 in the low 32 bits of `a_lo`, IPv6 as two halves.
    a_hi: u64,
    a_lo: u64,
    b_hi: u64,
    b_lo: u64,
    /// `a`'s port in the high 16 bits, `b`'s in the low.
    ports: u32,
    /// Bit 0: `a` is IPv6; bit 1: `b` is.
    v6: u8,
}

fn ip_words(ip: IpAddr) -> (u64, u64, bool) {
    match ip {
        IpAddr::V4(v) => (0, u64::from(u32::from(v)), false),
        IpAddr::V6(v) => {
            let b = u128::from(v);
            ((b >> 64) as u64, b as u64, true)
        }
    }
}

fn words_ip(hi: u64, lo: u64, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
    } else {
        IpAddr::V4(Ipv4Addr::from(lo as u32))
    }
}

/// Hashed as two or three machine words, the same words as ever (connection ids
/// and the worker split depend on them).
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        if self.v6 == 0 {
            h.write_u64((self.a_lo << 32) | self.b_lo);
        } else {
            h.write_u128((u128::from(self.a_hi) << 64) | u128::from(self.a_lo));
            h.write_u128((u128::from(self.b_hi) << 64) | u128::from(self.b_lo));
        }
        h.write_u32(self.ports);
    }
}

/// Ordered as the endpoints are (`IpAddr` order, then port): the order output
/// follows when connections end together.
impl Ord for FlowKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.a(), self.b()).cmp(&(other.a(), other.b()))
    }
}

impl PartialOrd for FlowKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FlowKey {
    /// The key of two endpoints, `a` first as given.
    pub fn new(a: (IpAddr, u16), b: (IpAddr, u16)) -> FlowKey {
        let (a_hi, a_lo, a6) = ip_words(a.0);
        let (b_hi, b_lo, b6) = ip_words(b.0);
        FlowKey {
            a_hi,
            a_lo,
            b_hi,
            b_lo,
            ports: (u32::from(a.1) << 16) | u32::from(b.1),
            v6: u8::from(a6) | (u8::from(b6) << 1),
        }
    }

    /// Endpoint `a` (the smaller).
    pub fn a(&self) -> (IpAddr, u16) {
        (
            words_ip(self.a_hi, self.a_lo, self.v6 & 1 != 0),
            (self.ports >> 16) as u16,
        )
    }

    /// Endpoint `b`.
    pub fn b(&self) -> (IpAddr, u16) {
        (
            words_ip(self.b_hi, self.b_lo, self.v6 & 2 != 0),
            self.ports as u16,
        )
    }

    /// The key and whether the segment was sent by endpoint `a`.
    #[inline]
    pub fn of(seg: &TcpSegment<'_>) -> (FlowKey, bool) {
        // IPv4 (nearly every packet) ordered as integers: the same order as
        // `IpAddr`'s, without its generic comparison.
        if let (IpAddr::V4(x), IpAddr::V4(y)) = (seg.src, seg.dst) {
            let (x, y) = (u64::from(u32::from(x)), u64::from(u32::from(y)));
            let a_first = (x, seg.sport) <= (y, seg.dport);
            let (a, b, pa, pb) = if a_first {
                (x, y, seg.sport, seg.dport)
            } else {
                (y, x, seg.dport, seg.sport)
            };
            let key = FlowKey {
                a_hi: 0,
                a_lo: a,
                b_hi: 0,
                b_lo: b,
                ports: (u32::from(pa) << 16) | u32::from(pb),
                v6: 0,
            };
            return (key, a_first);
        }
        let s = (seg.src, seg.sport);
        let d = (seg.dst, seg.dport);
        if s <= d {
            (FlowKey::new(s, d), true)
        } else {
            (FlowKey::new(d, s), false)
        }
    }
}

struct Flow {
    /// Whether endpoint `a` is the client.
    client_is_a: bool,
    /// `streams[0]` carries bytes sent by `a`, `streams[1]` bytes sent by `b`.
    streams: [Stream; 2],
    http: Connection,
    last_seen: Nanos,
    /// Id, first packet and packet counts, as exchange records carry them.
    info: FlowInfo,
}

/// A connection id: the canonical key and first packet time, hashed with fixed keys
/// (the same capture gives the same ids), kept to 53 bits so JSON readers that hold
/// numbers as doubles read it exactly. Never 0.
fn flow_id(key: &FlowKey, start: Nanos) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h =
        siphasher::sip::SipHasher13::new_with_keys(0x6170_6977_6174_6368, 0x666c_6f77_5f69_6400);
    key.hash(&mut h);
    start.hash(&mut h);
    (h.finish() & ((1 << 53) - 1)).max(1)
}

/// Stamps the exchanges `flow` just finished (those from `from` on) with its info.
fn stamp(out: &mut [Exchange], from: usize, info: FlowInfo) {
    for e in out.iter_mut().skip(from) {
        if e.flow.id == 0 {
            e.flow = info;
        }
    }
}

/// An ACK that undoes the peer's FIN reopens its stream before the segment's own
/// data (a response) is read. Rare: kept out of the per-segment path.
#[cold]
#[inline(never)]
fn reopen_first(
    rx: &mut Stream,
    http: &mut Connection,
    gaps: &mut (u64, u64),
    from_client: bool,
    ack: u32,
    ts: Nanos,
    out: &mut Vec<Exchange>,
) {
    rx.acked(ack, &mut deliver(http, gaps, from_client, ts, out));
}

/// Hands a stream's events to the connection's HTTP state; gaps are counted in
/// `gaps` (number, bytes). Its handler is always inlined into the reassembly code
/// that calls it (measured: a call per in-order segment costs 12 M instructions on
/// the bench capture).
struct Deliver<'a> {
    http: &'a mut Connection,
    gaps: &'a mut (u64, u64),
    from_client: bool,
    ts: Nanos,
    out: &'a mut Vec<Exchange>,
}

impl Events for Deliver<'_> {
    #[inline(always)]
    fn event(&mut self, ev: StreamEvent<'_>) {
        let http = &mut *self.http;
        match ev {
            StreamEvent::Data(d, t) if self.from_client => http.client_data(d, t, self.out),
            StreamEvent::Data(d, t) => http.server_data(d, t, self.out),
            StreamEvent::Gap(n) => {
                self.gaps.0 += 1;
                self.gaps.1 += n;
                http.gap(self.from_client, n)
            }
            StreamEvent::End => http.end(self.from_client, self.ts, self.out),
            StreamEvent::Reopen => http.reopen(self.from_client),
        }
    }
}

/// The events of one direction of `http`'s connection.
#[inline(always)]
fn deliver<'a>(
    http: &'a mut Connection,
    gaps: &'a mut (u64, u64),
    from_client: bool,
    ts: Nanos,
    out: &'a mut Vec<Exchange>,
) -> Deliver<'a> {
    Deliver {
        http,
        gaps,
        from_client,
        ts,
        out,
    }
}

impl Flow {
    /// Bytes held for data not yet delivered (streams and HTTP readers).
    fn held(&self) -> usize {
        self.streams[0].held_bytes() + self.streams[1].held_bytes() + self.http.buffered()
    }
}

/// A connection seen only as handshake so far (SYN, SYN-ACK, bare ACKs): a few dozen
/// bytes until its first payload or FIN makes it a [`Flow`].
#[derive(Debug, Clone, Copy)]
struct HalfOpen {
    /// The SYN sequence numbers seen from `a` and from `b`.
    syn: [Option<u32>; 2],
    client_is_a: bool,
    last_seen: Nanos,
    first_seen: Nanos,
    /// Handshake packets from `a` and from `b`.
    pkts: [u32; 2],
}

/// Ports whose owner is presumed to be the server when no SYN or payload says.
const SERVER_PORTS: &[u16] = &[
    80, 8080, 8000, 8008, 8888, 3128, 443, 8443, 5000, 3000, 9000,
];

/// All tracked TCP connections.
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow, foldhash::fast::RandomState>,
    half_open: HashMap<FlowKey, HalfOpen, foldhash::fast::RandomState>,
    /// Bytes held by all connections' streams and readers (see `buffer_bytes`).
    buffered: usize,
    cfg: FlowConfig,
    clock: SweepClock,
    /// Connections that ended while waiting for their TLS secrets (a followed key
    /// file): flushed once the secrets come or the wait is over.
    parked: Vec<Parked>,
    /// The key log's generation when the parked connections were last looked at.
    parked_generation: u64,
    pub stats: FlowStats,
}

/// An ended connection waiting for its TLS secrets.
struct Parked {
    http: Connection,
    info: FlowInfo,
}

/// Ended connections kept at most while they wait for their TLS secrets (each
/// holds at most `KEY_WAIT_BYTES`, for at most `KEY_WAIT`); past it, one that ends
/// is read without them.
const MAX_PARKED: usize = 256;

/// When idle connections are looked for: once per second of capture time, on the
/// latest timestamp seen. A reader that shards packets over workers keeps its own copy
/// and tells every worker when a sweep is due, so sweeps happen at the same point of
/// the capture whatever the worker count.
#[derive(Debug, Default, Clone, Copy)]
pub struct SweepClock {
    now: Nanos,
    last_sweep: Nanos,
}

impl SweepClock {
    /// Moves the clock to `ts` (it never goes back); true when a sweep is due now.
    #[inline]
    pub fn advance(&mut self, ts: Nanos) -> bool {
        self.now = self.now.max(ts);
        if self.now >= self.last_sweep.saturating_add(1_000_000_000) {
            self.last_sweep = self.now;
            true
        } else {
            false
        }
    }

    pub fn now(&self) -> Nanos {
        self.now
    }
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            flows: HashMap::default(),
            half_open: HashMap::default(),
            buffered: 0,
            clock: SweepClock::default(),
            parked: Vec::new(),
            parked_generation: 0,
            stats: FlowStats {
                capacity: cfg.max_flows as u64,
                ..FlowStats::default()
            },
            cfg,
        }
    }

    /// Connections currently tracked.
    pub fn active(&self) -> usize {
        self.flows.len()
    }

    /// Capture time has reached `ts` (a packet of any kind, or the wall clock while
    /// the wire is quiet): connections idle past the timeout are finished.
    #[inline]
    pub fn tick(&mut self, ts: Nanos, out: &mut Vec<Exchange>) {
        let sweep = self.clock.advance(ts);
        if sweep {
            self.expire(out);
        }
        if !self.parked.is_empty() {
            // Looked at when secrets were added, and once a second for the wait.
            let generation = self.cfg.keylog.as_ref().map_or(0, |k| k.generation());
            if sweep || generation != self.parked_generation {
                self.parked_generation = generation;
                self.unpark(false, out);
            }
        }
    }

    /// Flushes the parked connections whose secrets came or whose wait is over
    /// (`all`: every one).
    #[cold]
    fn unpark(&mut self, all: bool, out: &mut Vec<Exchange>) {
        let now = self.clock.now();
        let mut i = 0;
        while i < self.parked.len() {
            if all || !self.parked[i].http.waits_for_keys(now) {
                let mut p = self.parked.swap_remove(i);
                let first_new = out.len();
                p.http.flush(out);
                stamp(out, first_new, p.info);
                self.stats.http.add(&p.http.stats);
            } else {
                i += 1;
            }
        }
    }

    /// Processes one TCP segment; finished exchanges are appended to `out`.
    pub fn segment(&mut self, seg: &TcpSegment<'_>, ts: Nanos, out: &mut Vec<Exchange>) {
        self.stats.segments += 1;
        let (key, from_a) = FlowKey::of(seg);
        let syn_only = seg.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        if syn_only {
            // A new SYN on a known key: the old connection is over (port reuse) unless
            // this is a retransmission of the SYN we already have.
            if let Some(f) = self.flows.get(&key) {
                let same_client = f.client_is_a == from_a;
                let idx = if from_a { 0 } else { 1 };
                let has_data = f.streams.iter().any(|s| s.started() && !s.midstream)
                    && f.streams[idx ^ 1].started();
                // A connection picked up midstream (no SYN seen either way) that this
                // SYN does not open: bytes that came after an earlier connection on
                // this key had ended (a TLS close_notify after the peer's FIN), now
                // followed by a new connection on the same ports.
                let stray = f.streams.iter().all(|s| s.midstream || !s.started())
                    && !f.streams[idx].follows_syn(seg.seq);
                if !same_client || has_data || stray {
                    self.stats.port_reuse += 1;
                    self.remove(&key, out);
                }
            }
        }
        // One lookup for a known connection (nearly every packet); a new one is
        // looked up again once opened.
        let flow = match self.flows.get_mut(&key) {
            Some(flow) => flow,
            None => {
                if !self.open(key, seg, from_a, ts, out) {
                    return;
                }
                match self.flows.get_mut(&key) {
                    Some(flow) => flow,
                    None => return,
                }
            }
        };
        flow.last_seen = ts;
        if from_a == flow.client_is_a {
            flow.info.pkts_toserver += 1;
        } else {
            flow.info.pkts_toclient += 1;
        }
        let held_before = flow.held();
        if flow.http.is_done() {
            // Not HTTP (or tunnelled): no need to reassemble, only to notice the end
            // (and to count what a TLS connection carries, retransmissions included).
            flow.http
                .opaque(from_a == flow.client_is_a, seg.payload.len(), ts);
            if seg.flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
                self.stats.closed += 1;
                self.remove(&key, out);
            }
            return;
        }
        let Flow {
            client_is_a,
            streams,
            http,
            info,
            ..
        } = flow;
        let first_new = out.len();
        let sender = if from_a { 0 } else { 1 };
        let c = from_a == *client_is_a;
        let mut gaps = (0u64, 0u64);
        let [s0, s1] = streams;
        let (tx, rx) = if sender == 0 { (s0, s1) } else { (s1, s0) };
        if seg.flags & tcp_flags::ACK != 0 && rx.holds_after_fin() {
            reopen_first(rx, http, &mut gaps, !c, seg.ack, ts, out);
        }
        tx.segment(
            seg.seq,
            seg.flags,
            seg.payload,
            ts,
            &mut deliver(http, &mut gaps, c, ts, out),
        );
        if seg.flags & tcp_flags::ACK != 0 {
            rx.acked(seg.ack, &mut deliver(http, &mut gaps, !c, ts, out));
        }
        if seg.flags & tcp_flags::RST != 0 {
            rx.finish(&mut deliver(http, &mut gaps, !c, ts, out));
        }
        let mut held = tx.held_bytes() + rx.held_bytes() + http.buffered();
        if held > held_before && self.buffered + held - held_before > self.cfg.buffer_bytes {
            // The budget is spent: this connection, which wants more, gives up its
            // holes (declared gaps, the data after them delivered) and reads any head
            // it is gathering line by line.
            tx.give_up_holes(&mut deliver(http, &mut gaps, c, ts, out));
            rx.give_up_holes(&mut deliver(http, &mut gaps, !c, ts, out));
            http.shed();
            held = tx.held_bytes() + rx.held_bytes() + http.buffered();
            self.stats.buffers_shed += 1;
        }
        self.stats.streams.gaps += gaps.0;
        self.stats.streams.gap_bytes += gaps.1;
        self.buffered = (self.buffered + held).saturating_sub(held_before);
        stamp(out, first_new, *info);
        if tx.ended() && rx.ended() {
            self.stats.closed += 1;
            self.remove(&key, out);
        }
    }

    /// A segment of a connection not in the table: a handshake goes to the half-open
    /// table, data opens the connection (promoted from half-open, or picked up
    /// midstream). Whether a connection was opened.
    fn open(
        &mut self,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        from_a: bool,
        ts: Nanos,
        out: &mut Vec<Exchange>,
    ) -> bool {
        let handshake =
            seg.payload.is_empty() && seg.flags & (tcp_flags::FIN | tcp_flags::RST) == 0;
        if handshake {
            self.handshake(key, seg, from_a, ts);
            return false;
        }
        let half = self.half_open.remove(&key);
        if seg.payload.is_empty() && (half.is_none() || seg.flags & tcp_flags::RST != 0) {
            // A pure FIN/RST for a connection with nothing to reassemble.
            if half.is_some() {
                self.stats.closed += 1;
            } else {
                self.stats.ignored_segments += 1;
            }
            return false;
        }
        if self.flows.len() >= self.cfg.max_flows {
            self.evict_oldest(out);
        }
        let flow = match half {
            Some(h) => self.promote(&key, h, ts),
            None => self.new_flow(&key, seg, from_a, ts),
        };
        self.flows.insert(key, flow);
        true
    }

    /// A handshake segment (SYN, SYN-ACK or bare ACK) of a connection not yet
    /// carrying data: kept in the half-open table.
    fn handshake(&mut self, key: FlowKey, seg: &TcpSegment<'_>, from_a: bool, ts: Nanos) {
        let syn = seg.flags & tcp_flags::SYN != 0;
        if let Some(h) = self.half_open.get_mut(&key) {
            h.last_seen = ts;
            h.pkts[usize::from(!from_a)] = h.pkts[usize::from(!from_a)].saturating_add(1);
            if syn {
                h.syn[usize::from(!from_a)] = Some(seg.seq);
            }
            return;
        }
        if !syn {
            // A bare ACK of a connection we do not know: nothing to learn.
            self.stats.ignored_segments += 1;
            return;
        }
        if self.half_open.len() >= self.cfg.max_half_open {
            let n = crate::lru::batch(self.cfg.max_half_open);
            for k in crate::lru::oldest(&self.half_open, n, |h| h.last_seen) {
                self.half_open.remove(&k);
                self.stats.half_open_evicted += 1;
            }
        }
        self.stats.created += 1;
        // A SYN comes from the client, a SYN-ACK from the server.
        let sender_is_client = seg.flags & tcp_flags::ACK == 0;
        let mut h = HalfOpen {
            syn: [None, None],
            client_is_a: sender_is_client == from_a,
            last_seen: ts,
            first_seen: ts,
            pkts: [0, 0],
        };
        h.pkts[usize::from(!from_a)] = 1;
        h.syn[usize::from(!from_a)] = Some(seg.seq);
        self.half_open.insert(key, h);
    }

    /// The first data (or FIN) of a half-open connection: a full flow whose streams
    /// start from the SYNs that were seen.
    fn promote(&mut self, key: &FlowKey, h: HalfOpen, ts: Nanos) -> Flow {
        let mut flow = self.make_flow(key, h.client_is_a, false, h.first_seen);
        let (from_client, from_server) = if h.client_is_a {
            (h.pkts[0], h.pkts[1])
        } else {
            (h.pkts[1], h.pkts[0])
        };
        flow.info.pkts_toserver = u64::from(from_client);
        flow.info.pkts_toclient = u64::from(from_server);
        flow.last_seen = ts;
        for (stream, syn) in flow.streams.iter_mut().zip(h.syn) {
            if let Some(seq) = syn {
                stream.segment(
                    seq,
                    tcp_flags::SYN,
                    &[],
                    h.last_seen,
                    &mut |_: StreamEvent<'_>| {},
                );
            }
        }
        flow
    }

    fn new_flow(&mut self, key: &FlowKey, seg: &TcpSegment<'_>, from_a: bool, ts: Nanos) -> Flow {
        self.stats.created += 1;
        let syn = seg.flags & tcp_flags::SYN != 0;
        let ack = seg.flags & tcp_flags::ACK != 0;
        // Payload evidence beats flags: a request on a SYN-ACK still comes from a client.
        // A ClientHello comes from the client; a connection picked up at it (the
        // capture began after the SYN) is read from its start, so the TLS handshake
        // is recognised.
        let hello = crate::tls::starts_client_hello(seg.payload);
        let sender_is_client = if hello || looks_like_request(seg.payload) {
            true
        } else if seg.payload.starts_with(b"HTTP/") {
            false
        } else if syn {
            !ack
        } else if SERVER_PORTS.contains(&seg.dport) && !SERVER_PORTS.contains(&seg.sport) {
            true
        } else if SERVER_PORTS.contains(&seg.sport) && !SERVER_PORTS.contains(&seg.dport) {
            false
        } else {
            seg.sport >= seg.dport
        };
        let midstream = !syn;
        if midstream {
            self.stats.midstream_pickups += 1;
        }
        let client_is_a = sender_is_client == from_a;
        let mut flow = self.make_flow(key, client_is_a, midstream && !hello, ts);
        // HTTP/2 picked up mid-connection cannot be decoded (its HPACK tables were
        // built before the capture): counted, not guessed at.
        if midstream && !hello && crate::http::h2::frame::looks_like_frames(seg.payload) {
            flow.http.h2_midstream();
        }
        flow
    }

    fn make_flow(&self, key: &FlowKey, client_is_a: bool, midstream: bool, ts: Nanos) -> Flow {
        let (client, server) = if client_is_a {
            (key.a(), key.b())
        } else {
            (key.b(), key.a())
        };
        let mut http = Connection::new(
            Endpoints {
                client_ip: client.0,
                client_port: client.1,
                server_ip: server.0,
                server_port: server.1,
            },
            midstream,
        );
        http.set_body_prefix_limit(self.cfg.body_prefix);
        http.set_sensitive_prefix(self.cfg.sensitive_prefix);
        if let Some(k) = &self.cfg.keylog {
            http.set_keylog(std::sync::Arc::clone(k));
        }
        Flow {
            client_is_a,
            streams: [Stream::default(), Stream::default()],
            http,
            last_seen: ts,
            info: FlowInfo {
                id: flow_id(key, ts),
                start: ts,
                ..FlowInfo::default()
            },
        }
    }

    fn remove(&mut self, key: &FlowKey, out: &mut Vec<Exchange>) {
        if let Some(mut f) = self.flows.remove(key) {
            let first_new = out.len();
            self.buffered = self.buffered.saturating_sub(f.held());
            let client_idx = if f.client_is_a { 0 } else { 1 };
            for (i, s) in f.streams.iter_mut().enumerate() {
                let from_client = i == client_idx;
                let http = &mut f.http;
                // The connection's own last packet, not the table's clock, so the
                // result does not depend on which other flows share this table.
                let now = f.last_seen;
                let mut gaps = (0u64, 0u64);
                s.finish(&mut deliver(http, &mut gaps, from_client, now, out));
                let st = &mut self.stats.streams;
                st.gaps += gaps.0;
                st.gap_bytes += gaps.1;
                st.retransmitted_bytes += s.stats.retransmitted_bytes;
                st.out_of_order_segments += s.stats.out_of_order_segments;
                st.buffer_overflows += s.stats.buffer_overflows;
                st.fins_disregarded += s.stats.fins_disregarded;
            }
            if f.http.waits_for_keys(f.last_seen) && self.parked.len() < MAX_PARKED {
                // What the connection delivered is held; its secrets may come.
                stamp(out, first_new, f.info);
                self.parked.push(Parked {
                    http: f.http,
                    info: f.info,
                });
                return;
            }
            f.http.flush(out);
            stamp(out, first_new, f.info);
            self.stats.http.add(&f.http.stats);
        }
    }

    /// Forgets connections idle for longer than the timeout.
    /// Also moves every open connection's counters into the table's, so parse errors
    /// and retransmissions on connections that stay open for hours reach the metrics
    /// within a second, not when the connection ends.
    fn expire(&mut self, out: &mut Vec<Exchange>) {
        let cutoff = self.clock.now().saturating_sub(self.cfg.idle_timeout);
        let half_cutoff = self
            .clock
            .now()
            .saturating_sub(self.cfg.idle_timeout.min(HALF_OPEN_TIMEOUT));
        let before = self.half_open.len();
        self.half_open.retain(|_, h| h.last_seen >= half_cutoff);
        self.stats.timed_out += (before - self.half_open.len()) as u64;
        let (http, st) = (&mut self.stats.http, &mut self.stats.streams);
        let mut idle: Vec<FlowKey> = Vec::new();
        for (k, f) in self.flows.iter_mut() {
            http.add(&std::mem::take(&mut f.http.stats));
            for s in &mut f.streams {
                let x = std::mem::take(&mut s.stats);
                st.retransmitted_bytes += x.retransmitted_bytes;
                st.out_of_order_segments += x.out_of_order_segments;
                st.buffer_overflows += x.buffer_overflows;
                st.fins_disregarded += x.fins_disregarded;
            }
            if f.last_seen < cutoff {
                idle.push(*k);
            }
        }
        // Key order, not hash order: the same capture gives the same output.
        idle.sort_unstable();
        self.stats.timed_out += idle.len() as u64;
        for k in idle {
            self.remove(&k, out);
        }
    }

    /// Evicts the least recently seen sixteenth of the table (amortised O(1) per flow).
    fn evict_oldest(&mut self, out: &mut Vec<Exchange>) {
        let n = crate::lru::batch(self.cfg.max_flows);
        for k in crate::lru::oldest(&self.flows, n, |f| f.last_seen) {
            self.stats.evicted += 1;
            self.remove(&k, out);
        }
    }

    /// End of input: every connection is finished and its exchanges emitted.
    pub fn flush_all(&mut self, out: &mut Vec<Exchange>) {
        self.half_open.clear();
        let mut keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        // Deterministic output order regardless of hash state.
        keys.sort_unstable();
        for k in keys {
            self.remove(&k, out);
        }
        self.unpark(true, out);
    }
}

/// Whether a payload starts like an HTTP request line (`TOKEN SP`).
fn looks_like_request(p: &[u8]) -> bool {
    let n = p.iter().take(25).position(|b| *b == b' ');
    matches!(n, Some(i) if i > 0 && p[..i].iter().all(|b| b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests;
