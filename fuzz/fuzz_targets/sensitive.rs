//! The sensitive-value scanner: any bytes, cut into any chunks (sizes the input
//! chooses, empty ones included), never panic and count what the whole body counts,
//! with or without a prefix bound that cuts the body.
#![no_main]
use apiwatch::sensitive::{Found, Scanner};
use libfuzzer_sys::fuzz_target;

fn scan(pieces: &[&[u8]], prefix: usize, complete: bool) -> Found {
    let mut s = Scanner::new(prefix, Some("application/json"), false);
    for p in pieces {
        s.feed(p);
    }
    s.finish(complete)
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    // The first bytes choose chunk sizes (0-15 each, cycled); the rest is the body.
    let n = usize::from(head % 8);
    let (sizes, body) = rest.split_at(n.min(rest.len()));
    let prefix = if head & 0x80 != 0 {
        body.len() / 2 + 1
    } else {
        apiwatch::sensitive::DEFAULT_PREFIX
    };
    let complete = head & 0x40 == 0;
    let whole = scan(&[body], prefix, complete);
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < body.len() {
        let size = sizes
            .get(k % sizes.len().max(1))
            .map_or(1, |s| usize::from(s % 16));
        if size == 0 {
            // An empty chunk, then one byte: every chunking moves on.
            pieces.push(&body[at..at]);
        }
        let end = (at + size.max(1)).min(body.len());
        pieces.push(&body[at..end]);
        at = end;
        k += 1;
    }
    assert_eq!(scan(&pieces, prefix, complete), whole);
    // Byte by byte.
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(scan(&bytes, prefix, complete), whole);
});
