//! Path normalisation as servers route: any target never panics; an origin-form
//! path stays one, with no empty, `.` or `..` segment left (but a trailing slash),
//! and no matrix parameter.
#![no_main]
use apiwatch::routes::normalized;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let n = normalized(&text);
    if !text.starts_with('/') {
        assert_eq!(n, text);
        return;
    }
    assert!(n.starts_with('/'), "{text:?} -> {n:?}");
    let inner = n[1..].strip_suffix('/').unwrap_or(&n[1..]);
    if inner.is_empty() {
        return;
    }
    for seg in inner.split('/') {
        assert!(!seg.is_empty() && seg != "." && seg != "..", "{text:?} -> {n:?}");
    }
    if n.as_ref() != text.as_ref() {
        assert!(!n.contains(';'), "{text:?} -> {n:?}");
    }
});
