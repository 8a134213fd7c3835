use super::*;

fn pcap_le(nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(if nanos {
        &[0x4d, 0x3c, 0xb2, 0xa1]
    } else {
        &[0xd4, 0xc3, 0xb2, 0xa1]
    });
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (s, f, d) in records {
        v.extend_from_slice(&s.to_le_bytes());
        v.extend_from_slice(&f.to_le_bytes());
        v.extend_from_slice(&(d.len() as u32).to_le_bytes());
        v.extend_from_slice(&(d.len() as u32).to_le_bytes());
        v.extend_from_slice(d);
    }
    v
}

fn read_all(bytes: Vec<u8>) -> (Vec<(Nanos, Vec<u8>)>, Option<CaptureError>) {
    let mut src = match FileSource::from_reader("mem", Box::new(io::Cursor::new(bytes))) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    loop {
        match src.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.data.to_vec())),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The mapped reader drives the read-ahead on its thread: reading moves the
/// hints on, and dropping the source ends them.
#[test]
fn a_mapped_source_drives_the_read_ahead_until_dropped() {
    let path = std::env::temp_dir().join(format!("apiwatch-ra-{}.pcap", std::process::id()));
    let body = vec![0u8; 1500];
    let records: Vec<(u32, u32, &[u8])> = (0..20).map(|i| (i, 0, &body[..])).collect();
    std::fs::write(&path, pcap_le(false, &records)).unwrap();
    let mut src = FileSource::open(path.to_str().unwrap()).unwrap();
    assert_eq!(super::super::readahead::frontier(), 0);
    assert!(src.next_packet().unwrap().is_some());
    let first = super::super::readahead::frontier();
    assert!(
        first >= 24 + 16 + 1500,
        "the hints run ahead of the reader: {first}"
    );
    super::super::readahead::during_work();
    assert!(
        super::super::readahead::frontier() > first,
        "work moves them on"
    );
    while src.next_packet().unwrap().is_some() {}
    drop(src);
    assert_eq!(
        super::super::readahead::frontier(),
        0,
        "a dropped source ends them"
    );
    let _ = std::fs::remove_file(&path);
}

/// The same bytes read from a mapped file (the one-step path for whole pcap
/// records) and streamed (the general path) give the same packets and the same
/// ending.
#[test]
fn mapped_and_streamed_reads_agree() {
    let dir = std::env::temp_dir().join(format!("apiwatch-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut truncated = pcap_le(false, &[(1, 0, b"first"), (2, 0, b"second")]);
    truncated.truncate(truncated.len() - 3);
    let mut absurd = pcap_le(false, &[(3, 0, b"ok")]);
    absurd.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
    let mut big = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
    big.extend_from_slice(&[0; 8]);
    big.extend_from_slice(&65535u32.to_be_bytes());
    big.extend_from_slice(&1u32.to_be_bytes());
    for w in [7u32, 1, 2, 2] {
        big.extend_from_slice(&w.to_be_bytes());
    }
    big.extend_from_slice(b"hi");
    let cases = [
        pcap_le(false, &[(10, 5, b"abc"), (11, 6, b""), (12, 7, b"defg")]),
        pcap_le(true, &[(10, 5, b"x")]),
        truncated,
        absurd,
        big,
    ];
    for (i, bytes) in cases.into_iter().enumerate() {
        let path = dir.join(format!("{i}.pcap"));
        std::fs::write(&path, &bytes).unwrap();
        let mut src = FileSource::open(path.to_str().unwrap()).unwrap();
        assert!(src.mapping().is_some(), "case {i} is not mapped");
        let mut mapped = Vec::new();
        let ending = loop {
            match src.next_packet() {
                Ok(Some(p)) => mapped.push((p.ts, p.linktype, p.data.to_vec())),
                Ok(None) => break None,
                Err(e) => break Some(std::mem::discriminant(&e)),
            }
        };
        let mut streamed = Vec::new();
        let mut src = FileSource::from_reader("mem", Box::new(io::Cursor::new(bytes))).unwrap();
        let streamed_ending = loop {
            match src.next_packet() {
                Ok(Some(p)) => streamed.push((p.ts, p.linktype, p.data.to_vec())),
                Ok(None) => break None,
                Err(e) => break Some(std::mem::discriminant(&e)),
            }
        };
        assert!(!mapped.is_empty(), "case {i}");
        assert_eq!(mapped, streamed, "case {i}");
        assert_eq!(ending, streamed_ending, "case {i}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcap_micro_and_nano_timestamps() {
    let (pk, err) = read_all(pcap_le(false, &[(10, 5, b"abc")]));
    assert!(err.is_none());
    assert_eq!(pk, vec![(10_000_005_000, b"abc".to_vec())]);
    let (pk, _) = read_all(pcap_le(true, &[(10, 5, b"x")]));
    assert_eq!(pk[0].0, 10_000_000_005);
}

#[test]
fn big_endian_pcap() {
    let mut v = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_be_bytes());
    v.extend_from_slice(&101u32.to_be_bytes());
    v.extend_from_slice(&7u32.to_be_bytes());
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(&2u32.to_be_bytes());
    v.extend_from_slice(&2u32.to_be_bytes());
    v.extend_from_slice(b"hi");
    let mut src = FileSource::from_reader("mem", Box::new(io::Cursor::new(v))).unwrap();
    let p = src.next_packet().unwrap().unwrap();
    assert_eq!((p.ts, p.linktype, p.data), (7_000_001_000, 101, &b"hi"[..]));
}

#[test]
fn truncated_file_yields_packets_before_the_cut() {
    let mut bytes = pcap_le(false, &[(1, 0, b"first"), (2, 0, b"second")]);
    bytes.truncate(bytes.len() - 3);
    let (pk, err) = read_all(bytes);
    assert_eq!(pk.len(), 1);
    assert!(matches!(err, Some(CaptureError::Truncated { .. })));
}

/// A gzip stream cut anywhere ends like a cut pcap: the packets decompressed
/// before the cut, then a note that it was cut.
#[test]
fn a_cut_gzip_stream_yields_packets_before_the_cut() {
    use std::io::Write;
    let records: Vec<(u32, u32, &[u8])> = (0..200).map(|i| (i, 0, &[7u8; 300][..])).collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&pcap_le(false, &records)).unwrap();
    let gz = enc.finish().unwrap();
    for keep in [gz.len() / 2, gz.len() - 6] {
        let (pk, err) = read_all(gz[..keep].to_vec());
        assert!(!pk.is_empty() && pk.len() <= 200, "{keep}: {}", pk.len());
        let err = err.unwrap_or_else(|| panic!("{keep}: no error"));
        assert!(err.is_early_end(), "{keep}: {err}");
        assert!(
            err.to_string().contains("gzip stream is cut short"),
            "{err}"
        );
    }
}

#[test]
fn a_header_without_packets_says_so_in_words() {
    let (pk, err) = read_all(pcap_le(false, &[]));
    assert!(pk.is_empty());
    assert_eq!(
        err.unwrap().to_string(),
        "mem: only the 24-byte pcap file header, no packets"
    );
    let Err(e) = FileSource::from_reader(
        "x.pcap",
        Box::new(io::Cursor::new(vec![0xd4, 0xc3, 0xb2, 0xa1])),
    ) else {
        panic!("a lone magic opened");
    };
    assert_eq!(
        e.to_string(),
        "x.pcap: only 4 bytes of the 24-byte pcap file header, no packets (the file was cut short)"
    );
}

#[test]
fn garbage_is_not_a_capture() {
    let (_, err) = read_all(b"hello world".to_vec());
    assert!(matches!(err, Some(CaptureError::NotACapture { .. })));
    let (_, err) = read_all(Vec::new());
    assert!(matches!(err, Some(CaptureError::Empty { .. })));
}

#[test]
fn absurd_record_length_is_corrupt() {
    let mut bytes = pcap_le(false, &[]);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
    let (_, err) = read_all(bytes);
    assert!(matches!(err, Some(CaptureError::Corrupt { .. })));
}

fn block(t: u32, body: &[u8]) -> Vec<u8> {
    let total = 12 + body.len().div_ceil(4) * 4;
    let mut v = Vec::new();
    v.extend_from_slice(&t.to_le_bytes());
    v.extend_from_slice(&(total as u32).to_le_bytes());
    v.extend_from_slice(body);
    v.resize(total - 4, 0);
    v.extend_from_slice(&(total as u32).to_le_bytes());
    v
}

#[test]
fn pcapng_two_interfaces_with_resolutions() {
    let mut f = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    f.extend(block(0x0A0D_0D0A, &shb));
    // Interface 0: Ethernet, default microseconds.
    let mut idb0 = vec![1, 0, 0, 0];
    idb0.extend_from_slice(&0u32.to_le_bytes());
    f.extend(block(1, &idb0));
    // Interface 1: raw IP, nanoseconds (if_tsresol = 9).
    let mut idb1 = vec![101, 0, 0, 0];
    idb1.extend_from_slice(&0u32.to_le_bytes());
    idb1.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    f.extend(block(1, &idb1));
    for (iface, ts, data) in [
        (0u32, 3_000_000u64, &b"eth"[..]),
        (1, 5_000_000_007, &b"rawip"[..]),
    ] {
        let mut epb = Vec::new();
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        f.extend(block(6, &epb));
    }
    let mut src = FileSource::from_reader("mem", Box::new(io::Cursor::new(f))).unwrap();
    let p = src.next_packet().unwrap().unwrap();
    assert_eq!((p.ts, p.linktype, p.data), (3_000_000_000, 1, &b"eth"[..]));
    let p = src.next_packet().unwrap().unwrap();
    assert_eq!(
        (p.ts, p.linktype, p.data),
        (5_000_000_007, 101, &b"rawip"[..])
    );
    assert!(src.next_packet().unwrap().is_none());
}

#[test]
fn gzip_is_transparent() {
    use std::io::Write;
    let plain = pcap_le(false, &[(1, 0, b"zipped")]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&plain).unwrap();
    let (pk, err) = read_all(enc.finish().unwrap());
    assert!(err.is_none());
    assert_eq!(pk[0].1, b"zipped");
}
