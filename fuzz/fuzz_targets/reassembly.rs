//! One TCP direction fed arbitrary segments (sequence numbers, flags, lengths, ACKs):
//! never a panic, held bytes stay bounded, and delivered data never exceeds what was
//! sent.
#![no_main]
use apiwatch::flow::reassembly::{MAX_BUFFERED_BYTES, Stream, StreamEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = Stream::default();
    let mut delivered = 0u64;
    let mut sent = 0u64;
    let mut chunks = data.chunks(8);
    let payload = [b'x'; 2048];
    for op in chunks.by_ref() {
        if op.len() < 8 {
            break;
        }
        let seq = u32::from_le_bytes([op[0], op[1], op[2], op[3]]);
        let flags = op[4];
        let len = (u16::from_le_bytes([op[5], op[6]]) as usize) % payload.len();
        let mut on = |ev: StreamEvent<'_>| {
            if let StreamEvent::Data(d, _) = ev {
                delivered += d.len() as u64;
            }
        };
        if op[7] & 1 == 1 {
            s.acked(seq, &mut on);
        } else {
            sent += len as u64;
            s.segment(seq, flags, &payload[..len], 0, &mut on);
        }
        assert!(s.held_bytes() <= MAX_BUFFERED_BYTES + payload.len());
    }
    s.finish(&mut |ev: StreamEvent<'_>| {
        if let StreamEvent::Data(d, _) = ev {
            delivered += d.len() as u64;
        }
    });
    assert!(delivered <= sent);
});
