//! `multipart/form-data` credentials: any body, cut into any chunks, gives what the
//! whole body gives; a password part placed after any fuzzed parts is always found.
#![no_main]
use apiwatch::credentials::{Scanner, scan};
use libfuzzer_sys::fuzz_target;

const CT: &str = "multipart/form-data; boundary=XyZ";

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let whole = scan(body, Some(CT));
    let mut s = Scanner::new(Some(CT));
    for chunk in body.chunks(usize::from(cut).max(1)) {
        s.feed(chunk);
    }
    assert_eq!(s.finish(), whole);
    // The fuzzed bytes as one part's value (a value cannot hold the delimiter),
    // then a password part: the password is seen whatever came before.
    if !body.windows(5).any(|w| w == b"--XyZ") {
        let mut b = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n".to_vec();
        b.extend_from_slice(body);
        b.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n--XyZ--\r\n");
        assert!(scan(&b, Some(CT)).password, "{:?}", String::from_utf8_lossy(body));
    }
});
