//! A small JSON writer for the records written per exchange: into one reusable
//! buffer, integers and timestamps formatted without allocation, strings escaped
//! only where a byte needs it. serde_json stays for the rare records (alerts,
//! inventory); this is the hot path's (issue #13: 13 k instructions per exchange
//! went to serde's detour and `format!`).

use std::net::IpAddr;

use crate::time::Nanos;

/// Lower-case hex digits (escapes here, principal keys in `identity`).
pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether no byte of `b` needs escaping (control bytes, `"`, `\\`, DEL), checked
/// eight bytes at a time.
fn clean(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Bytes of `w` equal to `c` (or, with `lt`, below it) get their high bit set;
    // valid for bytes below 0x80 only, so bytes with the high bit set (UTF-8) are
    // masked out with `!w`.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let hits = (w.wrapping_sub(ONES * 0x20)
            | zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | zero(w ^ (ONES * 0x7f)))
            & !w
            & HIGH;
        if hits != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
}

/// Appends `s` as a JSON string (quotes included).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    if clean(bytes) {
        // Nothing to escape (the common case).
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `s` as a JSON string, or `null`.
pub fn opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.push_str("null"),
    }
}

/// Appends an unsigned integer.
pub fn uint(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends an unsigned integer, or `null`.
pub fn opt_uint(out: &mut String, n: Option<u64>) {
    match n {
        Some(n) => uint(out, n),
        None => out.push_str("null"),
    }
}

/// `n` as exactly `width` digits (zero-padded; `n` is below 10^width).
fn digits(out: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 9];
    let mut n = n;
    for i in (0..width.min(9)).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(ascii(&buf[..width.min(9)]));
}

/// Digits, dots and hex letters a writer put in a stack buffer, as text without
/// the general UTF-8 validation (`from_utf8` costs more than writing the digits);
/// anything not ASCII gives an empty string.
pub(crate) fn ascii(b: &[u8]) -> &str {
    debug_assert!(b.is_ascii());
    if !b.is_ascii() {
        return "";
    }
    // SAFETY: ASCII is UTF-8 (checked just above).
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// Appends an address as its text form (IPv4 written directly; IPv6 by `Display`,
/// which also gives the canonical compressed form).
pub fn ip(out: &mut String, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => {
            // Each octet's digits and a dot come from a table, four bytes copied at a
            // time into a stack buffer that is appended once (a digit loop with its
            // branches took about 25 ns an address; `Display` several times more).
            let mut buf = [0u8; 16];
            let mut n = 0;
            for o in v4.octets() {
                let (text, len) = OCTETS[usize::from(o)];
                buf[n..n + 4].copy_from_slice(&text);
                n += usize::from(len);
            }
            // The last octet's dot is not part of the address.
            out.push_str(ascii(&buf[..n - 1]));
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Every octet's decimal digits followed by a dot, padded to four bytes, and how
/// many of them are the digits and the dot.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let o = i as u8;
        let (text, len) = if o >= 100 {
            (
                [b'0' + o / 100, b'0' + (o / 10) % 10, b'0' + o % 10, b'.'],
                4,
            )
        } else if o >= 10 {
            ([b'0' + o / 10, b'0' + o % 10, b'.', 0], 3)
        } else {
            ([b'0' + o, b'.', 0, 0], 2)
        };
        t[i] = (text, len);
        i += 1;
    }
    t
};

/// A duration in nanoseconds as milliseconds rounded to the microsecond, written
/// as serde_json writes that `f64` (`0.422`, `1.0`, `12.5`).
pub fn millis(out: &mut String, ns: u64) {
    let us = ns / 1000 + u64::from(ns % 1000 >= 500);
    uint(out, us / 1000);
    out.push('.');
    let frac = us % 1000;
    if frac == 0 {
        out.push('0');
        return;
    }
    let (mut f, mut w) = (frac, 3);
    while f % 10 == 0 {
        f /= 10;
        w -= 1;
    }
    digits(out, f, w);
}

thread_local! {
    /// The last minute formatted (`2026-11-23T10:06:`) and its number: records
    /// come in time order, so the calendar is worked out once a minute.
    static MINUTE: std::cell::RefCell<(u64, String)> =
        const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// `2026-11-23T10:06:12.300000` then `suffix` (`Z` or `+0000`), UTC, microseconds.
pub fn timestamp(out: &mut String, ts: Nanos, suffix: &str) {
    let secs = ts / 1_000_000_000;
    let micros = (ts % 1_000_000_000) / 1000;
    let minute = secs / 60;
    MINUTE.with_borrow_mut(|(cached, text)| {
        if *cached != minute {
            let (y, m, d) = crate::time::civil_from_days((secs / 86_400) as i64);
            let sod = secs % 86_400;
            text.clear();
            digits(text, y.clamp(0, 9999) as u64, 4);
            text.push('-');
            digits(text, u64::from(m), 2);
            text.push('-');
            digits(text, u64::from(d), 2);
            text.push('T');
            digits(text, sod / 3600, 2);
            text.push(':');
            digits(text, (sod / 60) % 60, 2);
            text.push(':');
            *cached = minute;
        }
        out.push_str(text);
    });
    digits(out, secs % 60, 2);
    out.push('.');
    digits(out, micros, 6);
    out.push_str(suffix);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_a_json_reader() {
        for s in [
            "plain",
            "",
            "quote\" back\\slash",
            "ctl\u{1}\u{1f}\u{7f}\n\r\t",
            "ünïcode ✓ 𝄞",
            "</script>",
        ] {
            let mut out = String::new();
            string(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s, "{out}");
        }
    }

    #[test]
    fn the_word_at_a_time_check_agrees_with_the_byte_check() {
        let naive = |b: &[u8]| {
            b.iter()
                .all(|&b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
        };
        // Every byte value at every position of 8- to 17-byte strings of clean and
        // non-ASCII neighbours.
        for len in 8..18 {
            for pos in 0..len {
                for fill in [b'a', 0xc3, 0x80, 0xff, b'~'] {
                    for v in 0..=255u8 {
                        let mut b = vec![fill; len];
                        b[pos] = v;
                        assert_eq!(clean(&b), naive(&b), "{b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn numbers_and_times_match_what_serde_and_the_old_formatter_wrote() {
        for n in [0u64, 7, 10, 99, 100, 65_535, u64::MAX] {
            let mut out = String::new();
            uint(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for ns in [
            0u64,
            499,
            500,
            422_000,
            1_000_000,
            12_500_000,
            1_666_400,
            1_666_600,
            3_000_000_000,
            123_456_789_012,
        ] {
            let mut out = String::new();
            millis(&mut out, ns);
            let want = serde_json::to_string(&((ns as f64 / 1000.0).round() / 1000.0)).unwrap();
            assert_eq!(out, want, "{ns}");
        }
        for ts in [
            0u64,
            1_795_428_372_300_000_000,
            1_795_428_372_345_678_912,
            crate::time::MAX_TIME,
        ] {
            let mut out = String::new();
            timestamp(&mut out, ts, "Z");
            assert_eq!(out, crate::time::iso_utc_z(ts));
        }
        for a in [
            "10.77.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let addr: IpAddr = a.parse().unwrap();
            let mut out = String::new();
            ip(&mut out, addr);
            assert_eq!(out, addr.to_string());
        }
        // Every octet value in every position, next to octets of other widths.
        for o in 0..=255u8 {
            for addr in [
                [o, 7, 42, 200],
                [9, o, 100, 0],
                [255, 10, o, 1],
                [0, 99, 5, o],
            ] {
                let addr = IpAddr::from(addr);
                let mut out = String::new();
                ip(&mut out, addr);
                assert_eq!(out, addr.to_string());
            }
        }
    }
}
