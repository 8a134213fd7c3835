//! Any frame under any link type the decoder knows (the first byte picks it), with
//! fragments kept across frames: never a panic, and a TCP payload always lies inside
//! the frame or a reassembled datagram.
#![no_main]
use std::sync::Mutex;

use apiwatch::decode::{Decoded, Decoder, linktype};
use libfuzzer_sys::fuzz_target;

const LINKTYPES: [u32; 10] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_OPENBSD,
    linktype::RAW_BSDOS,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
];

static DECODER: Mutex<Option<Decoder>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[pick as usize % LINKTYPES.len()];
    let mut guard = DECODER.lock().unwrap();
    let decoder = guard.get_or_insert_with(Decoder::new);
    // Packet time moves on so fragment timeouts are exercised too.
    let ts = u64::from(pick) * 1_000_000_000;
    match decoder.decode(lt, frame, ts) {
        Ok(Decoded::Tcp(seg)) => assert!(seg.payload.len() <= frame.len()),
        Ok(Decoded::Reassembled(dg)) => {
            let _ = decoder.decode_datagram(&dg, ts);
        }
        _ => {}
    }
});
