//! Any bytes as a capture file (pcap, pcapng, gzip): never a panic, and the reader
//! always stops (every packet lies inside the input, each call makes progress).
//! The same bytes written to a file are also read through the mapped path (one-step
//! pcap records with prefetch hints), which must give the same packets.
#![no_main]
use apiwatch::capture::{FileSource, PacketSource};
use libfuzzer_sys::fuzz_target;

/// Every packet (time, link type, bytes), and whether reading ended in an error.
fn read_all(mut src: FileSource, data: &[u8]) -> (Vec<(u64, u32, Vec<u8>)>, bool) {
    let mut out = Vec::new();
    loop {
        match src.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= apiwatch::capture::file::MAX_RECORD);
                out.push((p.ts, p.linktype, p.data.to_vec()));
                // Without gzip every packet needs at least a 16-byte record header.
                if !data.starts_with(&[0x1f, 0x8b]) {
                    assert!(
                        out.len() <= data.len() / 12 + 1,
                        "more packets than the input can hold"
                    );
                }
            }
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = FileSource::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec())))
    else {
        return;
    };
    let streamed = read_all(src, data);
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let path = std::env::temp_dir().join(format!("apiwatch-fuzz-{}.pcap", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let mapped = path
        .to_str()
        .map(|p| FileSource::open(p).map(|s| read_all(s, data)));
    let _ = std::fs::remove_file(&path);
    let Some(mapped) = mapped else {
        return; // a temporary directory whose name is not UTF-8: nothing to compare
    };
    let mapped = mapped.expect("the streamed reader accepted these bytes");
    assert_eq!(mapped, streamed, "mapped and streamed reads differ");
});
