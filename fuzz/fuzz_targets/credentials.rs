//! The streaming credentials scanner: any body, cut into any chunks, never panics,
//! gives what the whole body gives, and keeps at most `MAX_VALUE` bytes of a name.
#![no_main]
use apiwatch::credentials::{MAX_VALUE, Scanner, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Some((&cut, body)) = rest.split_first() else {
        return;
    };
    let ct = match kind % 4 {
        0 => None,
        1 => Some("application/json"),
        2 => Some("application/x-www-form-urlencoded"),
        _ => Some("multipart/form-data; boundary=XyZ"),
    };
    let whole = scan(body, ct);
    if let Some(u) = &whole.user {
        assert!(u.len() <= MAX_VALUE);
    }
    // Chunks of a size the input chooses.
    let step = usize::from(cut).max(1);
    let mut s = Scanner::new(ct);
    for chunk in body.chunks(step) {
        s.feed(chunk);
    }
    assert_eq!(s.finish(), whole);
});
