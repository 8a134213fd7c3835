//! JA4, the TLS client fingerprint of FoxIO's specification
//! (`technical_details/JA4.md` in FoxIO-LLC/ja4, BSD 3-Clause):
//! `t13d1516h2_8daaf6152771_e5627efa2ab1` is the transport (`t`: TLS over TCP, the
//! only one here), the highest version offered, `d`/`i` for SNI present or not, the
//! counts of cipher suites and extensions (two digits, at most 99), the first and
//! last characters of the first ALPN value; then the truncated SHA-256 of the sorted
//! cipher suites, and of the sorted extensions (SNI and ALPN left out) followed by
//! the signature algorithms in the order sent. GREASE values never count.

use std::fmt::Write;

use super::ClientHello;

/// What an empty list hashes to (the specification's choice, not SHA-256 of "").
const EMPTY: &str = "000000000000";

/// The JA4 of a ClientHello (whose lists already have GREASE removed).
pub fn ja4(c: &ClientHello) -> String {
    let mut out = String::with_capacity(36);
    out.push('t');
    out.push_str(version(c.max_version()));
    out.push(if c.extensions.contains(&0) { 'd' } else { 'i' });
    let _ = write!(
        out,
        "{:02}{:02}",
        c.ciphers.len().min(99),
        c.extensions.len().min(99)
    );
    out.push_str(&alpn(&c.alpn_first));
    out.push('_');
    let mut ciphers = c.ciphers.clone();
    ciphers.sort_unstable();
    out.push_str(&hash(&hex_list(&ciphers)));
    out.push('_');
    let mut exts: Vec<u16> = c
        .extensions
        .iter()
        .copied()
        .filter(|e| *e != 0 && *e != 0x10)
        .collect();
    exts.sort_unstable();
    let mut text = hex_list(&exts);
    if !exts.is_empty() && !c.signature_algorithms.is_empty() {
        text.push('_');
        text.push_str(&hex_list(&c.signature_algorithms));
    }
    out.push_str(&hash(&text));
    out
}

/// The two characters of a version (`13`, `12`... `s3`; `00` unknown).
fn version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The first and last characters of the first ALPN value; when either byte is not
/// ASCII alphanumeric, the first and last characters of the value in hex; `00`
/// without one.
fn alpn(first: &[u8]) -> String {
    let (Some(&a), Some(&z)) = (first.first(), first.last()) else {
        return "00".into();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        return [char::from(a), char::from(z)].iter().collect();
    }
    let hex = |b: u8| char::from(crate::export::json::HEX[usize::from(b)]);
    [hex(a >> 4), hex(z & 15)].iter().collect()
}

/// `002f,0035,...`: four lower-case hex digits each, comma separated.
fn hex_list(v: &[u16]) -> String {
    let mut s = String::with_capacity(v.len() * 5);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x:04x}");
    }
    s
}

/// The first 12 hex digits of the SHA-256 of `text`; [`EMPTY`] for no text.
fn hash(text: &str) -> String {
    if text.is_empty() {
        return EMPTY.into();
    }
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut s = String::with_capacity(12);
    for b in &d.as_ref()[..6] {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the specification (`JA4.md`, "Example").
    fn spec_example() -> ClientHello {
        ClientHello {
            legacy_version: 0x0303,
            versions: vec![0x0304, 0x0303],
            ciphers: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
                0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            alpn_first: b"h2".to_vec(),
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..ClientHello::default()
        }
    }

    #[test]
    fn the_specifications_example() {
        assert_eq!(ja4(&spec_example()), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    }

    #[test]
    fn without_signature_algorithms_the_extension_list_is_hashed_alone() {
        let mut c = spec_example();
        c.signature_algorithms.clear();
        assert!(ja4(&c).ends_with("_6d807ffa2a79"), "{}", ja4(&c));
    }

    #[test]
    fn empty_lists_hash_to_zeros_and_no_sni_is_i() {
        let c = ClientHello {
            legacy_version: 0x0301,
            ..ClientHello::default()
        };
        assert_eq!(ja4(&c), "t10i000000_000000000000_000000000000");
    }

    #[test]
    fn alpn_characters_follow_the_specifications_table() {
        for (value, want) in [
            (&b"h2"[..], "h2"),
            (b"http/1.1", "h1"),
            (b"h", "hh"),
            (b"", "00"),
            (&[0xab], "ab"),
            (&[0x20], "20"),
            (&[0xab, 0xcd], "ad"),
            (&[0x20, 0x61], "21"),
            (&[0x30, 0xab], "3b"),
            (&[0x61, 0x20], "60"),
            (&[0x30, 0x31, 0xab, 0xcd], "3d"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
        ] {
            assert_eq!(alpn(value), want, "{value:?}");
        }
    }

    #[test]
    fn counts_stop_at_99() {
        let c = ClientHello {
            legacy_version: 0x0303,
            ciphers: (1..=150).collect(),
            ..ClientHello::default()
        };
        assert!(ja4(&c).starts_with("t12i9900"), "{}", ja4(&c));
    }
}
