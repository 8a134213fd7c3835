//! JA3 and JA3S, Salesforce's TLS client and server fingerprints (salesforce/ja3,
//! BSD 3-Clause), as Suricata writes them in its `tls` EVE object and Zeek's `ja3`
//! package in ssl.log.
//!
//! JA3 is `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`
//! of a ClientHello: its legacy version field and each list in the order sent, in
//! decimal, list items joined by `-`, GREASE values (RFC 8701) left out; JA3S is
//! `SSLVersion,Cipher,Extensions` of a ServerHello (its legacy version field: 771 for
//! TLS 1.3 too). An empty list is an empty field (`769,47-53,,,`). The fingerprint is
//! the MD5 of the string, in lower-case hex.
//!
//! Both are computed once per connection, when its hello is parsed.

use md5::{Digest, Md5};

/// A JA3 or JA3S: the string and its MD5.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Ja3 {
    pub string: String,
    /// MD5 of `string`, lower-case hex (ASCII).
    hash: [u8; 32],
}

impl Ja3 {
    fn of(string: String) -> Ja3 {
        let digest = Md5::digest(string.as_bytes());
        let mut hash = [0u8; 32];
        for (i, b) in digest.iter().enumerate() {
            hash[2 * i] = crate::export::json::HEX[usize::from(b >> 4)];
            hash[2 * i + 1] = crate::export::json::HEX[usize::from(b & 15)];
        }
        Ja3 { string, hash }
    }

    /// The MD5 of the string, 32 lower-case hex digits.
    pub fn hash(&self) -> &str {
        std::str::from_utf8(&self.hash).unwrap_or_default()
    }
}

/// Appends `,` then the values joined by `-` (GREASE values are already out).
fn field<T: Copy + Into<u16>>(out: &mut String, values: &[T]) {
    out.push(',');
    let mut buf = itoa::Buffer::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(buf.format((*v).into()));
    }
}

/// The JA3 of a ClientHello: its legacy version, cipher suites, extensions, groups
/// and point formats (lists as sent, GREASE left out).
pub fn ja3(
    version: u16,
    ciphers: &[u16],
    extensions: &[u16],
    groups: &[u16],
    point_formats: &[u8],
) -> Ja3 {
    // At most 6 characters a value (5 digits and a separator).
    let n = ciphers.len() + extensions.len() + groups.len() + point_formats.len();
    let mut s = String::with_capacity(8 + 6 * n);
    s.push_str(itoa::Buffer::new().format(version));
    field(&mut s, ciphers);
    field(&mut s, extensions);
    field(&mut s, groups);
    field(&mut s, point_formats);
    Ja3::of(s)
}

/// The JA3S of a ServerHello: its legacy version, the cipher suite chosen and its
/// extensions (as sent, GREASE left out).
pub fn ja3s(version: u16, cipher: u16, extensions: &[u16]) -> Ja3 {
    let mut s = String::with_capacity(16 + 6 * extensions.len());
    s.push_str(itoa::Buffer::new().format(version));
    field(&mut s, &[cipher]);
    field(&mut s, extensions);
    Ja3::of(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of salesforce/ja3's README.
    #[test]
    fn the_readme_example_hashes_to_its_published_fingerprint() {
        let j = ja3(
            769,
            &[47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
            &[0, 10, 11],
            &[23, 24, 25],
            &[0],
        );
        assert_eq!(
            j.string,
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        );
        assert_eq!(j.hash(), "ada70206e40642a3e4461f35503241d5");
    }

    #[test]
    fn empty_lists_are_empty_fields_and_the_hash_is_md5_of_the_string() {
        let j = ja3(769, &[47, 53], &[], &[], &[]);
        assert_eq!(j.string, "769,47-53,,,");
        // MD5 of the empty string and of "abc" (RFC 1321, A.5).
        assert_eq!(
            Ja3::of(String::new()).hash(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            Ja3::of("abc".into()).hash(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        let s = ja3s(771, 0xc02f, &[]);
        assert_eq!(s.string, "771,49199,");
    }
}
