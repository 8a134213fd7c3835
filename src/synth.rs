//! Builders for synthetic frames and pcap files: precise edge cases for tests,
//! fuzz seeds and benchmarks. Real captures made by real tools live in `captures/`;
//! these complement them where a test needs one exact byte layout.

use std::net::IpAddr;

use crate::decode::tcp_flags;

/// One TCP segment to build.
#[derive(Debug, Clone)]
pub struct Seg {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

impl Seg {
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        Seg {
            src,
            dst,
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: tcp_flags::ACK,
            payload: Vec::new(),
        }
    }
}

/// TCP header (20 bytes, no options) plus payload.
pub fn tcp_bytes(s: &Seg) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + s.payload.len());
    t.extend_from_slice(&s.sport.to_be_bytes());
    t.extend_from_slice(&s.dport.to_be_bytes());
    t.extend_from_slice(&s.seq.to_be_bytes());
    t.extend_from_slice(&s.ack.to_be_bytes());
    t.push(5 << 4);
    t.push(s.flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(&s.payload);
    t
}

/// IPv4 or IPv6 packet (by the address family) carrying `proto` and `body`.
pub fn ip_bytes(src: IpAddr, dst: IpAddr, proto: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(40 + body.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            v.extend_from_slice(&[0x45, 0]);
            v.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
            v.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            v.extend_from_slice(&[0x60, 0, 0, 0]);
            v.extend_from_slice(&(body.len() as u16).to_be_bytes());
            v.extend_from_slice(&[proto, 64]);
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed address families in a synthetic packet"),
    }
    v.extend_from_slice(body);
    v
}

/// Ethernet frame around an IP packet, with optional VLAN tags.
pub fn ethernet(ip: &[u8], vlans: &[u16]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for v in vlans {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    let et: u16 = if ip.first().map(|b| b >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    };
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Ethernet/IP/TCP frame for a segment.
pub fn frame(s: &Seg) -> Vec<u8> {
    ethernet(&ip_bytes(s.src, s.dst, 6, &tcp_bytes(s)), &[])
}

/// A pcap file (microsecond, little-endian) being built in memory.
pub struct PcapWriter {
    pub bytes: Vec<u8>,
}

impl PcapWriter {
    pub fn new(linktype: u32) -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&262_144u32.to_le_bytes());
        bytes.extend_from_slice(&linktype.to_le_bytes());
        PcapWriter { bytes }
    }

    /// Appends a record at `ts` nanoseconds.
    pub fn packet(&mut self, ts: u64, data: &[u8]) {
        let secs = (ts / 1_000_000_000) as u32;
        let micros = ((ts % 1_000_000_000) / 1000) as u32;
        self.bytes.extend_from_slice(&secs.to_le_bytes());
        self.bytes.extend_from_slice(&micros.to_le_bytes());
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(data);
    }
}

/// A pcapng file with one interface (microsecond timestamps): Section Header,
/// Interface Description and Enhanced Packet Blocks, little-endian. Unlike classic
/// pcap it can carry any 64-bit timestamp, hostile ones included.
pub struct PcapNgWriter {
    pub bytes: Vec<u8>,
}

impl PcapNgWriter {
    pub fn new(linktype: u16) -> Self {
        let mut w = PcapNgWriter { bytes: Vec::new() };
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        w.block(0x0a0d_0d0a, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&[0, 0]);
        idb.extend_from_slice(&262_144u32.to_le_bytes());
        w.block(1, &idb);
        w
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        self.bytes.extend_from_slice(&kind.to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(body);
        self.bytes.extend(std::iter::repeat_n(0, pad));
        self.bytes.extend_from_slice(&len.to_le_bytes());
    }

    /// Appends an Enhanced Packet Block with the raw timestamp `ts_us` (microseconds).
    pub fn packet_raw(&mut self, ts_us: u64, data: &[u8]) {
        let mut epb = Vec::with_capacity(20 + data.len());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        self.block(6, &epb);
    }
}

/// A scripted TCP conversation: tracks both sides' sequence numbers so a test can
/// write "client sends X, server sends Y" and get correct segments.
pub struct Conversation {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub client_seq: u32,
    pub server_seq: u32,
    pub segs: Vec<Seg>,
}

impl Conversation {
    pub fn new(
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        client_isn: u32,
        server_isn: u32,
    ) -> Self {
        Conversation {
            client,
            server,
            client_seq: client_isn,
            server_seq: server_isn,
            segs: Vec::new(),
        }
    }

    fn seg(&self, from_client: bool, flags: u8, payload: &[u8]) -> Seg {
        let (a, b, seq, ack) = if from_client {
            (self.client, self.server, self.client_seq, self.server_seq)
        } else {
            (self.server, self.client, self.server_seq, self.client_seq)
        };
        Seg {
            src: a.0,
            sport: a.1,
            dst: b.0,
            dport: b.1,
            seq,
            ack,
            flags,
            payload: payload.to_vec(),
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> &mut Self {
        self.segs.push(self.seg(true, tcp_flags::SYN, b""));
        self.client_seq = self.client_seq.wrapping_add(1);
        let mut sa = self.seg(false, tcp_flags::SYN | tcp_flags::ACK, b"");
        sa.ack = self.client_seq;
        self.segs.push(sa);
        self.server_seq = self.server_seq.wrapping_add(1);
        self.segs.push(self.seg(true, tcp_flags::ACK, b""));
        self
    }

    /// Data from one side, split into segments of at most `mss` bytes.
    pub fn send(&mut self, from_client: bool, data: &[u8], mss: usize) -> &mut Self {
        for chunk in data.chunks(mss.max(1)) {
            let s = self.seg(from_client, tcp_flags::ACK | 0x08, chunk);
            self.segs.push(s);
            let n = chunk.len() as u32;
            if from_client {
                self.client_seq = self.client_seq.wrapping_add(n);
            } else {
                self.server_seq = self.server_seq.wrapping_add(n);
            }
        }
        self
    }

    /// FIN from both sides.
    pub fn close(&mut self) -> &mut Self {
        self.segs
            .push(self.seg(true, tcp_flags::FIN | tcp_flags::ACK, b""));
        self.client_seq = self.client_seq.wrapping_add(1);
        self.segs
            .push(self.seg(false, tcp_flags::FIN | tcp_flags::ACK, b""));
        self.server_seq = self.server_seq.wrapping_add(1);
        self.segs.push(self.seg(true, tcp_flags::ACK, b""));
        self
    }

    /// The conversation as a pcap (Ethernet), one segment every `step_ns`.
    pub fn pcap(&self, start_ns: u64, step_ns: u64) -> Vec<u8> {
        segs_to_pcap(&self.segs, start_ns, step_ns)
    }
}

/// Writes segments as Ethernet frames into a pcap.
pub fn segs_to_pcap(segs: &[Seg], start_ns: u64, step_ns: u64) -> Vec<u8> {
    let mut w = PcapWriter::new(crate::decode::linktype::ETHERNET);
    for (i, s) in segs.iter().enumerate() {
        w.packet(start_ns + i as u64 * step_ns, &frame(s));
    }
    w.bytes
}
