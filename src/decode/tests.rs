use super::*;
use crate::synth::{Seg, ethernet, ip_bytes, tcp_bytes};

fn v4(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, a))
}

fn seg() -> Seg {
    let mut s = Seg::new(v4(1), 40000, v4(2), 80);
    s.seq = 1000;
    s.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    s
}

fn expect_tcp<'a>(d: Result<Decoded<'a>, DecodeError>) -> TcpSegment<'a> {
    match d {
        Ok(Decoded::Tcp(t)) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[test]
fn ethernet_ipv4_tcp() {
    let s = seg();
    let f = ethernet(&ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s)), &[]);
    let t = expect_tcp(Decoder::new().decode(linktype::ETHERNET, &f, 0));
    assert_eq!(
        (t.src, t.sport, t.dst, t.dport, t.seq),
        (v4(1), 40000, v4(2), 80, 1000)
    );
    assert_eq!(t.payload, s.payload.as_slice());
}

#[test]
fn ethernet_padding_is_trimmed_by_ip_total_length() {
    let mut s = seg();
    s.payload.clear();
    let mut f = ethernet(&ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s)), &[]);
    f.extend_from_slice(&[0; 6]);
    let t = expect_tcp(Decoder::new().decode(linktype::ETHERNET, &f, 0));
    assert!(t.payload.is_empty());
}

#[test]
fn qinq_vlan_tags() {
    let s = seg();
    let f = ethernet(&ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s)), &[100, 200]);
    let t = expect_tcp(Decoder::new().decode(linktype::ETHERNET, &f, 0));
    assert_eq!(t.payload, s.payload.as_slice());
}

#[test]
fn ipv6_with_extension_headers() {
    let src: IpAddr = "2001:db8::1".parse().unwrap();
    let dst: IpAddr = "2001:db8::2".parse().unwrap();
    let mut s = seg();
    s.src = src;
    s.dst = dst;
    // Hop-by-hop (8 bytes) then destination options (8 bytes) then TCP.
    let mut body = vec![60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
    body.extend(tcp_bytes(&s));
    let f = ethernet(&ip_bytes(src, dst, 0, &body), &[]);
    let t = expect_tcp(Decoder::new().decode(linktype::ETHERNET, &f, 0));
    assert_eq!((t.src, t.dst), (src, dst));
    assert_eq!(t.payload, s.payload.as_slice());
}

#[test]
fn linux_cooked_v1_and_v2() {
    let s = seg();
    let ip = ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    expect_tcp(Decoder::new().decode(linktype::LINUX_SLL, &sll, 0));
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    expect_tcp(Decoder::new().decode(linktype::LINUX_SLL2, &sll2, 0));
}

#[test]
fn bsd_loopback_both_byte_orders_and_raw_ip() {
    let s = seg();
    let ip = ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s));
    for fam in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let mut f = fam.to_vec();
        f.extend_from_slice(&ip);
        expect_tcp(Decoder::new().decode(linktype::NULL, &f, 0));
    }
    expect_tcp(Decoder::new().decode(linktype::RAW, &ip, 0));
}

#[test]
fn vxlan_decapsulates_inner_ethernet() {
    let s = seg();
    let inner = ethernet(&ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s)), &[]);
    let mut udp = vec![0xc0, 0x00];
    udp.extend_from_slice(&VXLAN_PORT.to_be_bytes());
    udp.extend_from_slice(&((16 + inner.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0, 0x08, 0, 0, 0, 0, 0x2a, 0, 0]);
    udp.extend_from_slice(&inner);
    let outer = ethernet(&ip_bytes(v4(9), v4(10), 17, &udp), &[]);
    let t = expect_tcp(Decoder::new().decode(linktype::ETHERNET, &outer, 0));
    assert_eq!((t.src, t.dst), (v4(1), v4(2)));
}

#[test]
fn ipv4_fragments_reassemble_into_tcp() {
    let s = seg();
    let tcp = tcp_bytes(&s);
    let mut d = Decoder::new();
    let frag = |off: usize, more: bool, body: &[u8]| {
        let mut ip = ip_bytes(s.src, s.dst, 6, body);
        let v = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        ip[6..8].copy_from_slice(&v.to_be_bytes());
        ip[4..6].copy_from_slice(&77u16.to_be_bytes());
        ethernet(&ip, &[])
    };
    let second = frag(16, false, &tcp[16..]);
    assert!(matches!(
        d.decode(linktype::ETHERNET, &second, 0),
        Ok(Decoded::FragmentHeld)
    ));
    let first = frag(0, true, &tcp[..16]);
    let Ok(Decoded::Reassembled(dg)) = d.decode(linktype::ETHERNET, &first, 0) else {
        panic!("expected a reassembled datagram");
    };
    let t = expect_tcp(d.decode_datagram(&dg, 0));
    assert_eq!(t.payload, s.payload.as_slice());
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    let s = seg();
    let good = ethernet(&ip_bytes(s.src, s.dst, 6, &tcp_bytes(&s)), &[]);
    let mut d = Decoder::new();
    // Every truncation of a good frame decodes to something without panicking.
    for n in 0..good.len() {
        let _ = d.decode(linktype::ETHERNET, &good[..n], 0);
    }
    assert_eq!(
        d.decode(linktype::ETHERNET, &good[..20], 0).unwrap_err(),
        DecodeError::Ipv4Truncated
    );
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x41;
    assert_eq!(
        d.decode(linktype::ETHERNET, &bad_ihl, 0).unwrap_err(),
        DecodeError::Ipv4BadLength
    );
    assert_eq!(
        d.decode(9999, &good, 0).unwrap_err(),
        DecodeError::UnsupportedLinktype
    );
}
