//! Link, network and transport decoding into a borrowed view of a TCP segment.
//!
//! Untrusted bytes enter only through [`Decoder::decode`]; every read is a checked
//! slice access through [`Cursor`], so no input can make this module panic.
//! Supported: Ethernet (with 802.1Q / 802.1ad / QinQ tags), Linux cooked capture v1 and
//! v2, BSD loopback (NULL and LOOP), raw IP; IPv4 (RFC 791) and IPv6 (RFC 8200) with
//! extension headers, IP fragment reassembly ([`fragments`]); VXLAN (RFC 7348) on UDP
//! 4789 and IP-in-IP; TCP (RFC 9293). Checksums are not verified: NIC offload makes
//! bad checksums normal on a sensor.

pub mod fragments;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::time::Nanos;
use fragments::{FragmentKey, Fragments};

/// LINKTYPE_* values (tcpdump.org link-layer header types).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// VXLAN's IANA port.
pub const VXLAN_PORT: u16 = 4789;
/// Encapsulations (VXLAN, IP-in-IP) followed before giving up: real mirrors use one.
const MAX_ENCAP_DEPTH: u8 = 4;
/// VLAN tags followed on one frame (QinQ uses two).
const MAX_VLAN_TAGS: usize = 4;
/// IPv6 extension headers followed before giving up.
const MAX_IPV6_EXT_HEADERS: usize = 8;

/// TCP flag bits.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// Why a packet could not be decoded. Each maps to a bounded (layer, reason) label pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The link type is not one apiwatch decodes.
    UnsupportedLinktype,
    /// The frame is shorter than its link-layer header.
    LinkTruncated,
    /// Too many VLAN tags or nested encapsulations.
    TooDeep,
    /// The IPv4 header is shorter than 20 bytes or than its IHL says.
    Ipv4Truncated,
    /// The IPv4 header length or total length is impossible.
    Ipv4BadLength,
    /// The version nibble is neither 4 nor 6.
    IpBadVersion,
    /// The IPv6 header or an extension header is cut short.
    Ipv6Truncated,
    /// The TCP header is shorter than 20 bytes or than its data offset.
    TcpTruncated,
    /// The TCP data offset is below 5 words.
    TcpBadOffset,
    /// The UDP header is cut short.
    UdpTruncated,
    /// A fragment could not be kept (overlap beyond the datagram limit, table full...).
    FragmentDropped,
}

impl DecodeError {
    /// All variants, for metric registration.
    pub const ALL: [DecodeError; 11] = [
        DecodeError::UnsupportedLinktype,
        DecodeError::LinkTruncated,
        DecodeError::TooDeep,
        DecodeError::Ipv4Truncated,
        DecodeError::Ipv4BadLength,
        DecodeError::IpBadVersion,
        DecodeError::Ipv6Truncated,
        DecodeError::TcpTruncated,
        DecodeError::TcpBadOffset,
        DecodeError::UdpTruncated,
        DecodeError::FragmentDropped,
    ];

    /// Metric label values `(layer, reason)`.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            DecodeError::UnsupportedLinktype => ("link", "unsupported_linktype"),
            DecodeError::LinkTruncated => ("link", "truncated"),
            DecodeError::TooDeep => ("link", "too_deep"),
            DecodeError::Ipv4Truncated => ("ipv4", "truncated"),
            DecodeError::Ipv4BadLength => ("ipv4", "bad_length"),
            DecodeError::IpBadVersion => ("ip", "bad_version"),
            DecodeError::Ipv6Truncated => ("ipv6", "truncated"),
            DecodeError::TcpTruncated => ("tcp", "truncated"),
            DecodeError::TcpBadOffset => ("tcp", "bad_offset"),
            DecodeError::UdpTruncated => ("udp", "truncated"),
            DecodeError::FragmentDropped => ("ip", "fragment_dropped"),
        }
    }

    /// Index into per-reason counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A decoded TCP segment, borrowing its payload from the capture buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}

/// The outcome of decoding one frame.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// The last fragment of an IP datagram arrived: decode the reassembled datagram
    /// with [`Decoder::decode_datagram`].
    Reassembled(Datagram),
    /// A fragment was stored; nothing to do yet.
    FragmentHeld,
    /// Valid, but not TCP (UDP, ICMP, ARP...).
    NotTcp,
}

/// A reassembled IP datagram: addresses, protocol and the transport bytes.
#[derive(Debug)]
pub struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub payload: Vec<u8>,
    depth: u8,
}

/// Checked big-endian reads over untrusted bytes.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.0.get(at..at + 2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b = self.0.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn from(&self, at: usize) -> Option<&'a [u8]> {
        self.0.get(at..)
    }
}

/// Stateful decoder: owns the IP fragment table.
#[derive(Default)]
pub struct Decoder {
    pub fragments: Fragments,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one captured frame of the given link type.
    pub fn decode<'a>(
        &mut self,
        linktype: u32,
        data: &'a [u8],
        ts: Nanos,
    ) -> Result<Decoded<'a>, DecodeError> {
        let c = Cursor(data);
        match linktype {
            linktype::ETHERNET => self.ethernet(data, ts, 0),
            linktype::RAW
            | linktype::RAW_OPENBSD
            | linktype::RAW_BSDOS
            | linktype::IPV4
            | linktype::IPV6 => self.ip(data, ts, 0),
            linktype::NULL | linktype::LOOP => {
                let fam = c.u32(0).ok_or(DecodeError::LinkTruncated)?;
                // NULL is in the capturing host's byte order, LOOP in network order.
                let fam = if fam > 0xffff { fam.swap_bytes() } else { fam };
                let rest = c.from(4).ok_or(DecodeError::LinkTruncated)?;
                match fam {
                    2 | 24 | 28 | 30 => self.ip(rest, ts, 0),
                    _ => Ok(Decoded::NotTcp),
                }
            }
            linktype::LINUX_SLL => {
                let proto = c.u16(14).ok_or(DecodeError::LinkTruncated)?;
                self.ethertype(proto, c.from(16).ok_or(DecodeError::LinkTruncated)?, ts, 0)
            }
            linktype::LINUX_SLL2 => {
                let proto = c.u16(0).ok_or(DecodeError::LinkTruncated)?;
                self.ethertype(proto, c.from(20).ok_or(DecodeError::LinkTruncated)?, ts, 0)
            }
            _ => Err(DecodeError::UnsupportedLinktype),
        }
    }

    // The layers of the common path (Ethernet, IPv4, TCP) are inlined into `decode`:
    // each returning its `Decoded` by value through the next cost a copy per packet.
    #[inline(always)]
    fn ethernet<'a>(
        &mut self,
        data: &'a [u8],
        ts: Nanos,
        depth: u8,
    ) -> Result<Decoded<'a>, DecodeError> {
        let c = Cursor(data);
        let ethertype = c.u16(12).ok_or(DecodeError::LinkTruncated)?;
        self.ethertype(
            ethertype,
            c.from(14).ok_or(DecodeError::LinkTruncated)?,
            ts,
            depth,
        )
    }

    #[inline(always)]
    fn ethertype<'a>(
        &mut self,
        mut ethertype: u16,
        mut data: &'a [u8],
        ts: Nanos,
        depth: u8,
    ) -> Result<Decoded<'a>, DecodeError> {
        for _ in 0..=MAX_VLAN_TAGS {
            match ethertype {
                0x0800 | 0x86dd => return self.ip(data, ts, depth),
                0x8100 | 0x88a8 | 0x9100 => {
                    let c = Cursor(data);
                    ethertype = c.u16(2).ok_or(DecodeError::LinkTruncated)?;
                    data = c.from(4).ok_or(DecodeError::LinkTruncated)?;
                }
                _ => return Ok(Decoded::NotTcp),
            }
        }
        Err(DecodeError::TooDeep)
    }

    #[inline(always)]
    fn ip<'a>(&mut self, data: &'a [u8], ts: Nanos, depth: u8) -> Result<Decoded<'a>, DecodeError> {
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(data, ts, depth),
            Some(6) => self.ipv6(data, ts, depth),
            Some(_) => Err(DecodeError::IpBadVersion),
            None => Err(DecodeError::Ipv4Truncated),
        }
    }

    #[inline(always)]
    fn ipv4<'a>(
        &mut self,
        data: &'a [u8],
        ts: Nanos,
        depth: u8,
    ) -> Result<Decoded<'a>, DecodeError> {
        let c = Cursor(data);
        let ihl = (c.u8(0).ok_or(DecodeError::Ipv4Truncated)? & 0x0f) as usize * 4;
        if ihl < 20 {
            return Err(DecodeError::Ipv4BadLength);
        }
        if data.len() < ihl {
            return Err(DecodeError::Ipv4Truncated);
        }
        let total = c.u16(2).ok_or(DecodeError::Ipv4Truncated)? as usize;
        // Total length 0 happens with TSO on the capturing host: use what was captured.
        let end = if total == 0 {
            data.len()
        } else {
            total.min(data.len())
        };
        if end < ihl {
            return Err(DecodeError::Ipv4BadLength);
        }
        let id = c.u16(4).ok_or(DecodeError::Ipv4Truncated)?;
        let frag = c.u16(6).ok_or(DecodeError::Ipv4Truncated)?;
        let proto = c.u8(9).ok_or(DecodeError::Ipv4Truncated)?;
        let src = IpAddr::V4(Ipv4Addr::from(c.u32(12).ok_or(DecodeError::Ipv4Truncated)?));
        let dst = IpAddr::V4(Ipv4Addr::from(c.u32(16).ok_or(DecodeError::Ipv4Truncated)?));
        let payload = data.get(ihl..end).ok_or(DecodeError::Ipv4Truncated)?;
        let more = frag & 0x2000 != 0;
        let offset = (frag & 0x1fff) as usize * 8;
        if more || offset != 0 {
            let key = FragmentKey {
                src,
                dst,
                id: id as u32,
                proto,
            };
            return self.fragment(key, offset, more, payload, ts, depth);
        }
        self.transport(src, dst, proto, payload, ts, depth)
    }

    fn ipv6<'a>(
        &mut self,
        data: &'a [u8],
        ts: Nanos,
        depth: u8,
    ) -> Result<Decoded<'a>, DecodeError> {
        let c = Cursor(data);
        let plen = c.u16(4).ok_or(DecodeError::Ipv6Truncated)? as usize;
        let mut next = c.u8(6).ok_or(DecodeError::Ipv6Truncated)?;
        let src: [u8; 16] = data
            .get(8..24)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Ipv6Truncated)?;
        let dst: [u8; 16] = data
            .get(24..40)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Ipv6Truncated)?;
        let (src, dst) = (
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
        );
        let body = c.from(40).ok_or(DecodeError::Ipv6Truncated)?;
        // Payload length 0 means a jumbogram (or TSO): use what was captured.
        let mut rest = if plen == 0 {
            body
        } else {
            &body[..plen.min(body.len())]
        };
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            let e = Cursor(rest);
            match next {
                // Hop-by-hop, routing, destination options, mobility: (len + 1) * 8 bytes.
                0 | 43 | 60 | 135 => {
                    let len = (e.u8(1).ok_or(DecodeError::Ipv6Truncated)? as usize + 1) * 8;
                    next = e.u8(0).ok_or(DecodeError::Ipv6Truncated)?;
                    rest = rest.get(len..).ok_or(DecodeError::Ipv6Truncated)?;
                }
                // Authentication header: (len + 2) * 4 bytes.
                51 => {
                    let len = (e.u8(1).ok_or(DecodeError::Ipv6Truncated)? as usize + 2) * 4;
                    next = e.u8(0).ok_or(DecodeError::Ipv6Truncated)?;
                    rest = rest.get(len..).ok_or(DecodeError::Ipv6Truncated)?;
                }
                44 => {
                    let nh = e.u8(0).ok_or(DecodeError::Ipv6Truncated)?;
                    let off_flags = e.u16(2).ok_or(DecodeError::Ipv6Truncated)?;
                    let id = e.u32(4).ok_or(DecodeError::Ipv6Truncated)?;
                    let frag_payload = rest.get(8..).ok_or(DecodeError::Ipv6Truncated)?;
                    let offset = (off_flags & 0xfff8) as usize;
                    let more = off_flags & 1 != 0;
                    if offset == 0 && !more {
                        // Atomic fragment (RFC 6946): the datagram is whole.
                        next = nh;
                        rest = frag_payload;
                        continue;
                    }
                    let key = FragmentKey {
                        src,
                        dst,
                        id,
                        proto: nh,
                    };
                    return self.fragment(key, offset, more, frag_payload, ts, depth);
                }
                _ => return self.transport(src, dst, next, rest, ts, depth),
            }
        }
        Err(DecodeError::TooDeep)
    }

    fn fragment<'a>(
        &mut self,
        key: FragmentKey,
        offset: usize,
        more: bool,
        payload: &[u8],
        ts: Nanos,
        depth: u8,
    ) -> Result<Decoded<'a>, DecodeError> {
        match self.fragments.insert(key, offset, more, payload, ts) {
            Ok(Some(bytes)) => Ok(Decoded::Reassembled(Datagram {
                src: key.src,
                dst: key.dst,
                proto: key.proto,
                payload: bytes,
                depth,
            })),
            Ok(None) => Ok(Decoded::FragmentHeld),
            Err(()) => Err(DecodeError::FragmentDropped),
        }
    }

    /// Decodes the transport layer of a reassembled datagram.
    pub fn decode_datagram<'a>(
        &mut self,
        d: &'a Datagram,
        ts: Nanos,
    ) -> Result<Decoded<'a>, DecodeError> {
        self.transport(d.src, d.dst, d.proto, &d.payload, ts, d.depth)
    }

    #[inline(always)]
    fn transport<'a>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        data: &'a [u8],
        ts: Nanos,
        depth: u8,
    ) -> Result<Decoded<'a>, DecodeError> {
        match proto {
            6 => tcp(src, dst, data).map(Decoded::Tcp),
            17 => {
                let c = Cursor(data);
                let dport = c.u16(2).ok_or(DecodeError::UdpTruncated)?;
                if dport == VXLAN_PORT {
                    if depth >= MAX_ENCAP_DEPTH {
                        return Err(DecodeError::TooDeep);
                    }
                    // 8-byte UDP header, 8-byte VXLAN header with the I flag set.
                    let vx = Cursor(c.from(8).ok_or(DecodeError::UdpTruncated)?);
                    if vx.u8(0).is_some_and(|f| f & 0x08 != 0) {
                        let inner = vx.from(8).ok_or(DecodeError::UdpTruncated)?;
                        return self.ethernet(inner, ts, depth + 1);
                    }
                }
                Ok(Decoded::NotTcp)
            }
            // IPv4-in-IP and IPv6-in-IP tunnels.
            4 | 41 => {
                if depth >= MAX_ENCAP_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                self.ip(data, ts, depth + 1)
            }
            _ => Ok(Decoded::NotTcp),
        }
    }
}

/// Decodes a TCP header; the payload is whatever follows the data offset.
#[inline(always)]
pub fn tcp(src: IpAddr, dst: IpAddr, data: &[u8]) -> Result<TcpSegment<'_>, DecodeError> {
    let c = Cursor(data);
    let sport = c.u16(0).ok_or(DecodeError::TcpTruncated)?;
    let dport = c.u16(2).ok_or(DecodeError::TcpTruncated)?;
    let seq = c.u32(4).ok_or(DecodeError::TcpTruncated)?;
    let ack = c.u32(8).ok_or(DecodeError::TcpTruncated)?;
    let off = (c.u8(12).ok_or(DecodeError::TcpTruncated)? >> 4) as usize * 4;
    let flags = c.u8(13).ok_or(DecodeError::TcpTruncated)?;
    if off < 20 {
        return Err(DecodeError::TcpBadOffset);
    }
    let payload = c.from(off).ok_or(DecodeError::TcpTruncated)?;
    if data.len() < 20 {
        return Err(DecodeError::TcpTruncated);
    }
    Ok(TcpSegment {
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        payload,
    })
}

#[cfg(test)]
pub(crate) mod tests;
