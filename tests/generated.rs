//! Generated captures for the edge cases real tools rarely produce on demand: every
//! encapsulation the decoder knows, reordered / duplicated / overlapping / missing
//! segments, midstream pickup, sequence wrap-around, and a property test that any
//! segmentation, reordering and duplication of the same byte streams gives the same
//! exchanges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use apiwatch::capture::Packet;
use apiwatch::decode::linktype;
use apiwatch::flow::FlowConfig;
use apiwatch::http::Exchange;
use apiwatch::pipeline::Pipeline;
use apiwatch::synth::{
    Conversation, PcapNgWriter, PcapWriter, Seg, ethernet, frame, ip_bytes, tcp_bytes,
};
use proptest::prelude::*;

const REQ1: &[u8] = b"GET /api/items/17 HTTP/1.1\r\nHost: api\r\n\r\n";
const RESP1: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"id\":17,\"ok\":true}\n";
const REQ2: &[u8] = b"POST /login HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 33\r\n\r\n{\"user\":\"bob\",\"password\":\"nope\"}";
const RESP2: &[u8] =
    b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndeny.\r\n0\r\n\r\n";
const EXPECTED: [&str; 2] = ["1 GET /api/items/17 200 20", "2 POST /login 401 5"];

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

/// Handshake, two exchanges on one keep-alive connection, close.
fn conversation(client: IpAddr, server: IpAddr, isn: u32, mss: usize) -> Conversation {
    let mut c = Conversation::new((client, 51000), (server, 8080), isn, isn ^ 0x5a5a_5a5a);
    c.handshake()
        .send(true, REQ1, mss)
        .send(false, RESP1, mss)
        .send(true, REQ2, mss)
        .send(false, RESP2, mss)
        .close();
    c
}

fn brief(e: &Exchange) -> String {
    format!(
        "{} {} {} {} {}",
        e.trans_depth,
        e.method.as_deref().unwrap_or("-"),
        e.uri.as_deref().unwrap_or("-"),
        e.status.map_or("-".into(), |s| s.to_string()),
        e.response_body_len.map_or("-".into(), |s| s.to_string())
    )
}

/// Runs frames through one pipeline, as a replay does.
fn run_frames(frames: &[(u32, Vec<u8>)]) -> Vec<Exchange> {
    let mut p = Pipeline::new(FlowConfig::default());
    let mut out = Vec::new();
    for (i, (lt, data)) in frames.iter().enumerate() {
        let pkt = Packet {
            ts: 1_700_000_000_000_000_000 + i as u64 * 1000,
            linktype: *lt,
            data,
            orig_len: data.len() as u32,
        };
        p.packet(&pkt, &mut out);
    }
    p.finish(&mut out);
    out
}

fn run_segs(segs: &[Seg]) -> Vec<String> {
    let frames: Vec<(u32, Vec<u8>)> = segs
        .iter()
        .map(|s| (linktype::ETHERNET, frame(s)))
        .collect();
    run_frames(&frames).iter().map(brief).collect()
}

fn ip_packet(s: &Seg) -> Vec<u8> {
    ip_bytes(s.src, s.dst, 6, &tcp_bytes(s))
}

fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&(if ip[0] >> 4 == 6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = (if ip[0] >> 4 == 6 { 0x86ddu16 } else { 0x0800 })
        .to_be_bytes()
        .to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

fn bsd_null(ip: &[u8]) -> Vec<u8> {
    let mut f = 2u32.to_le_bytes().to_vec();
    f.extend_from_slice(ip);
    f
}

fn vxlan(inner: &[u8], vni: u32) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let mut udp = 49152u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&4789u16.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    ethernet(&ip_bytes(v4(250), v4(251), 17, &udp), &[])
}

/// Splits an IPv4 packet into fragments of at most `size` payload bytes (a multiple
/// of 8), last fragment first to exercise out-of-order reassembly.
fn fragments(ip: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    let (head, body) = ip.split_at(20);
    let mut out = Vec::new();
    for (i, chunk) in body.chunks(size).enumerate() {
        let off = i * size;
        let more = off + chunk.len() < body.len();
        let mut h = head.to_vec();
        h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&id.to_be_bytes());
        let field = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&field.to_be_bytes());
        h.extend_from_slice(chunk);
        out.push(h);
    }
    out.reverse();
    out
}

#[test]
fn every_encapsulation_yields_the_same_exchanges() {
    let v4c = conversation(v4(1), v4(2), 1000, 1460);
    let v6c = conversation(v6(1), v6(2), 1000, 1460);
    type Wrap = fn(&Seg) -> Vec<(u32, Vec<u8>)>;
    let cases: [(&str, &Conversation, Wrap); 10] = [
        ("ethernet", &v4c, |s| vec![(linktype::ETHERNET, frame(s))]),
        ("802.1Q", &v4c, |s| {
            vec![(linktype::ETHERNET, ethernet(&ip_packet(s), &[100]))]
        }),
        ("QinQ", &v4c, |s| {
            vec![(linktype::ETHERNET, ethernet(&ip_packet(s), &[100, 200]))]
        }),
        ("SLL", &v4c, |s| {
            vec![(linktype::LINUX_SLL, sll(&ip_packet(s)))]
        }),
        ("SLL2", &v6c, |s| {
            vec![(linktype::LINUX_SLL2, sll2(&ip_packet(s)))]
        }),
        ("raw IP", &v4c, |s| vec![(linktype::RAW, ip_packet(s))]),
        ("BSD loopback", &v4c, |s| {
            vec![(linktype::NULL, bsd_null(&ip_packet(s)))]
        }),
        ("IPv6", &v6c, |s| vec![(linktype::ETHERNET, frame(s))]),
        ("VXLAN", &v4c, |s| {
            vec![(linktype::ETHERNET, vxlan(&frame(s), 42))]
        }),
        ("IPv4 fragments", &v4c, |s| {
            fragments(&ip_packet(s), 16, s.seq as u16)
                .into_iter()
                .map(|f| (linktype::ETHERNET, ethernet(&f, &[])))
                .collect()
        }),
    ];
    for (name, conv, wrap) in cases {
        let frames: Vec<(u32, Vec<u8>)> = conv.segs.iter().flat_map(wrap).collect();
        let got: Vec<String> = run_frames(&frames).iter().map(brief).collect();
        assert_eq!(got, EXPECTED, "{name}");
    }
}

#[test]
fn ipv6_addresses_and_ports_are_reported() {
    let c = conversation(v6(0x10), v6(0x20), 7, 1460);
    let frames: Vec<(u32, Vec<u8>)> = c
        .segs
        .iter()
        .map(|s| (linktype::ETHERNET, frame(s)))
        .collect();
    let out = run_frames(&frames);
    assert_eq!(out[0].client_ip, v6(0x10));
    assert_eq!(out[0].server_ip, v6(0x20));
    assert_eq!((out[0].client_port, out[0].server_port), (51000, 8080));
}

#[test]
fn reordered_segments_within_each_message() {
    let c = conversation(v4(1), v4(2), 1000, 7);
    let mut segs = c.segs.clone();
    // Reverse every run of consecutive data segments from the same sender.
    let mut i = 0;
    while i < segs.len() {
        let mut j = i;
        while j < segs.len() && !segs[j].payload.is_empty() && segs[j].src == segs[i].src {
            j += 1;
        }
        segs[i..j.max(i)].reverse();
        i = j.max(i + 1);
    }
    assert_eq!(run_segs(&segs), EXPECTED);
}

#[test]
fn duplicated_segments() {
    let c = conversation(v4(1), v4(2), 1000, 11);
    let segs: Vec<Seg> = c.segs.iter().flat_map(|s| [s.clone(), s.clone()]).collect();
    assert_eq!(run_segs(&segs), EXPECTED);
}

#[test]
fn overlapping_retransmissions_keep_the_first_copy() {
    let c = conversation(v4(1), v4(2), 1000, 10);
    let mut segs = Vec::new();
    for (k, s) in c.segs.iter().enumerate() {
        segs.push(s.clone());
        if !s.payload.is_empty() && k % 2 == 0 {
            // A retransmission that re-sends the last half and runs 4 bytes into the
            // next segment's range with different bytes: the first copy must win.
            let mut r = s.clone();
            let half = s.payload.len() / 2;
            r.seq = s.seq.wrapping_add(half as u32);
            r.payload = s.payload[half..].to_vec();
            segs.push(r);
        }
    }
    assert_eq!(run_segs(&segs), EXPECTED);
}

#[test]
fn missing_segment_is_a_gap_and_the_next_exchange_survives() {
    let c = conversation(v4(1), v4(2), 1000, 8);
    // Drop one segment from the middle of the first response body; the client's next
    // request acknowledges it, so the sensor knows it was lost.
    let body = RESP1.len() - 20..RESP1.len();
    let server_data0 = (1000u32 ^ 0x5a5a_5a5a).wrapping_add(1);
    let victim = c
        .segs
        .iter()
        .position(|s| {
            let rel = s.seq.wrapping_sub(server_data0) as usize;
            s.src == v4(2)
                && s.payload.len() == 8
                && body.contains(&rel)
                && body.contains(&(rel + 7))
        })
        .unwrap();
    let mut segs = c.segs.clone();
    segs.remove(victim);
    let out = run_segs(&segs);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0], "1 GET /api/items/17 200 12",
        "20 body bytes minus the 8 lost"
    );
    assert_eq!(out[1], EXPECTED[1]);
}

#[test]
fn midstream_pickup_inside_a_response_body() {
    let c = conversation(v4(1), v4(2), 1000, 30);
    // The sensor starts watching after the first request and part of its response.
    let first_resp = c
        .segs
        .iter()
        .position(|s| s.src == v4(2) && !s.payload.is_empty())
        .unwrap();
    let segs = c.segs[first_resp + 2..].to_vec();
    let out = run_segs(&segs);
    // Depth counts from the pickup: what came before is unknown.
    assert_eq!(out, ["1 POST /login 401 5"]);
}

#[test]
fn sequence_numbers_wrap_around() {
    for isn in [u32::MAX - 5, u32::MAX - 60, u32::MAX] {
        let c = conversation(v4(1), v4(2), isn, 13);
        assert_eq!(run_segs(&c.segs), EXPECTED, "isn {isn}");
    }
}

#[test]
fn the_binary_reads_a_generated_capture_from_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let c = conversation(v4(1), v4(2), 1000, 1460);
    let mut w = PcapWriter::new(linktype::ETHERNET);
    for (i, s) in c.segs.iter().enumerate() {
        w.packet(1_700_000_000_000_000_000 + i as u64 * 1_000_000, &frame(s));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-r", "-", "--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&w.bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["status"], 401);
    assert_eq!(lines[1]["endpoint"], "POST /login");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("nope")),
        "request body leaked"
    );
}

/// Cuts `data` into segments at the given cut points (sorted, deduplicated).
fn cut(data: &[u8], mut cuts: Vec<usize>) -> Vec<(usize, Vec<u8>)> {
    cuts.retain(|c| *c > 0 && *c < data.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([data.len()]) {
        out.push((start, data[start..c].to_vec()));
        start = c;
    }
    out
}

/// One message's segments, shuffled by `order` keys and with the listed ones repeated.
fn message_segments(
    from: (IpAddr, u16),
    to: (IpAddr, u16),
    seq0: u32,
    ack: u32,
    data: &[u8],
    cuts: Vec<usize>,
    (order, dups): (&[u32], &[bool]),
) -> Vec<Seg> {
    let mut pieces: Vec<(u32, Seg)> = Vec::new();
    for (i, (off, payload)) in cut(data, cuts).into_iter().enumerate() {
        let mut s = Seg::new(from.0, from.1, to.0, to.1);
        s.seq = seq0.wrapping_add(off as u32);
        s.ack = ack;
        s.flags = 0x18;
        s.payload = payload;
        let key = order.get(i).copied().unwrap_or(i as u32);
        if dups.get(i).copied().unwrap_or(false) {
            pieces.push((key.wrapping_add(7), s.clone()));
        }
        pieces.push((key, s));
    }
    pieces.sort_by_key(|(k, _)| *k);
    pieces.into_iter().map(|(_, s)| s).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any segmentation, reordering and duplication of the same two byte streams
    /// yields identical exchanges (requests and responses pipelined or not).
    #[test]
    fn segmentation_reordering_and_duplication_do_not_change_exchanges(
        cuts in proptest::collection::vec(proptest::collection::vec(0usize..200, 0..12), 4),
        orders in proptest::collection::vec(proptest::collection::vec(0u32..16, 13), 4),
        dups in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 13), 4),
        pipelined in any::<bool>(),
        isn in any::<u32>(),
    ) {
        let client = (v4(1), 40000u16);
        let server = (v4(2), 80u16);
        let (cisn, sisn) = (isn, isn.rotate_left(16));
        let mut c = Conversation::new(client, server, cisn, sisn);
        c.handshake();
        let mut segs = c.segs.clone();
        let c1 = cisn.wrapping_add(1);
        let s1 = sisn.wrapping_add(1);
        let msgs: [(bool, &[u8]); 4] = [(true, REQ1), (false, RESP1), (true, REQ2), (false, RESP2)];
        let offsets = [0usize, 0, REQ1.len(), RESP1.len()];
        let mut per_msg = Vec::new();
        for (k, (from_client, data)) in msgs.iter().enumerate() {
            let (from, to, seq0, ack) = if *from_client {
                (client, server, c1.wrapping_add(offsets[k] as u32), s1)
            } else {
                (server, client, s1.wrapping_add(offsets[k] as u32), c1)
            };
            per_msg.push(message_segments(from, to, seq0, ack, data, cuts[k].clone(), (&orders[k], &dups[k])));
        }
        if pipelined {
            for k in [0, 2, 1, 3] { segs.extend(per_msg[k].iter().cloned()); }
        } else {
            for m in &per_msg { segs.extend(m.iter().cloned()); }
        }
        prop_assert_eq!(run_segs(&segs), EXPECTED.to_vec());
    }
}

/// Runs the binary on `pcap` with `args`, killing it after `limit`: a hang fails the
/// test instead of stalling the suite.
fn run_bounded(pcap: &[u8], args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-r", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = pcap.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("apiwatch still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = feeder.join();
    child.wait_with_output().unwrap()
}

/// Failed logins at ordinary times, then at timestamps near `u64::MAX` (a pcapng EPB
/// of all ones), then back in the past. Before packet time was clamped at ingest and
/// windows advanced by division, the burst and login windows wrapped: a release
/// build spun forever, a debug build panicked on overflow.
#[test]
fn extreme_timestamps_neither_hang_nor_panic() {
    let mut w = PcapNgWriter::new(1);
    let phases: [u64; 4] = [
        1_700_000_000_000_000,
        u64::MAX / 1000,
        u64::MAX,
        1_600_000_000_000_000,
    ];
    let mut expected = 0;
    for (p, base) in phases.iter().enumerate() {
        for k in 0..15u16 {
            let mut c = Conversation::new(
                (v4(10 + p as u8), 40000 + k),
                (v4(2), 8080),
                1000 + u32::from(k),
                7000,
            );
            c.handshake()
                .send(true, REQ2, 1460)
                .send(false, RESP2, 1460)
                .close();
            for (i, s) in c.segs.iter().enumerate() {
                let ts = base.saturating_sub(1_000_000 - u64::from(k) * 1000 - i as u64);
                w.packet_raw(ts, &frame(s));
            }
            expected += 1;
        }
    }
    let out = run_bounded(
        &w.bytes,
        &["--exchanges", "-", "--alerts", "/dev/null", "-q"],
        std::time::Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(lines, expected, "{stderr}");
}
