//! Any bytes as a capture file (pcap, pcapng, gzip): never a panic, and the reader
//! always stops (every packet lies inside the input, each call makes progress).
#![no_main]
use apiwatch::capture::{FileSource, PacketSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = FileSource::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut n = 0usize;
    while let Ok(Some(p)) = src.next_packet() {
        assert!(p.data.len() <= apiwatch::capture::file::MAX_RECORD);
        n += 1;
        // Without gzip every packet needs at least a 16-byte record header.
        if !data.starts_with(&[0x1f, 0x8b]) {
            assert!(n <= data.len() / 12 + 1, "more packets than the input can hold");
        }
    }
});
