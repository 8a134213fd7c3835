//! What a server certificate says, read with `x509-parser` (RFC 5280): subject,
//! issuer, SANs, validity, key and signature algorithm, and its fingerprints. A
//! certificate that does not parse is left out of the chain.

use std::fmt::Write;

use x509_parser::prelude::*;

/// Certificates of a chain read (servers send 2 to 4; the rest is ignored).
pub const MAX_CERTS: usize = 8;
/// SAN entries kept per certificate (a CDN certificate can list hundreds).
pub const MAX_SANS: usize = 64;
/// Bytes kept of a name (subject, issuer, SAN); longer ones are cut.
const MAX_NAME: usize = 512;

/// One certificate of the server's chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Certificate {
    /// RFC 4514-like `C=US, O=..., CN=...` as Suricata writes `subject`.
    pub subject: String,
    pub issuer: String,
    /// Serial in upper-case hex pairs separated by colons (Suricata's `serial`).
    pub serial: String,
    /// DNS names and addresses of the subjectAltName extension.
    pub sans: Vec<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// `rsa`, `ecdsa`, `ed25519`, `dsa`... (Zeek's `key_alg` names `rsaEncryption`).
    pub key_type: std::borrow::Cow<'static, str>,
    pub key_bits: u32,
    /// The signature algorithm's name (`sha256WithRSAEncryption`) or OID.
    pub signature_algorithm: String,
    /// SHA-1 of the DER, lower-case hex pairs with colons (Suricata's `fingerprint`).
    pub sha1: String,
    /// SHA-256 of the DER, lower-case hex (Zeek's `cert_chain_fps`).
    pub sha256: String,
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn hex_pairs(bytes: &[u8], upper: bool, sep: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if sep && i > 0 {
            s.push(':');
        }
        let _ = if upper {
            write!(s, "{b:02X}")
        } else {
            write!(s, "{b:02x}")
        };
    }
    s
}

/// Reads one DER certificate; `None` when it does not parse.
pub fn parse(der: &[u8]) -> Option<Certificate> {
    let (_, x) = X509Certificate::from_der(der).ok()?;
    let spki = x.public_key();
    let (key_type, key_bits) = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => ("rsa", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(k)) => ("ecdsa", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::DSA(k)) => ("dsa", k.len() * 8),
        _ => {
            let oid = &spki.algorithm.algorithm;
            if *oid == x509_parser::oid_registry::OID_SIG_ED25519 {
                ("ed25519", 256)
            } else if *oid == x509_parser::oid_registry::OID_SIG_ED448 {
                ("ed448", 456)
            } else {
                ("unknown", 0)
            }
        }
    };
    let sig_oid = &x.signature_algorithm.algorithm;
    let signature_algorithm =
        match x509_parser::objects::oid2sn(sig_oid, x509_parser::objects::oid_registry()) {
            Ok(name) => name.to_string(),
            Err(_) => sig_oid.to_id_string(),
        };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = x.subject_alternative_name() {
        for name in ext.value.general_names.iter().take(MAX_SANS) {
            match name {
                GeneralName::DNSName(d) => sans.push(cut((*d).to_string())),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => sans.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => sans.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let sha256 = ring::digest::digest(&ring::digest::SHA256, der);
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(der);
    Some(Certificate {
        subject: cut(x.subject().to_string()),
        issuer: cut(x.issuer().to_string()),
        serial: hex_pairs(x.raw_serial(), true, true),
        sans,
        not_before: x.validity().not_before.timestamp(),
        not_after: x.validity().not_after.timestamp(),
        key_type: key_type.into(),
        key_bits: u32::try_from(key_bits).unwrap_or(u32::MAX),
        signature_algorithm,
        sha1: hex_pairs(&sha1.digest().bytes(), false, true),
        sha256: hex_pairs(sha256.as_ref(), false, false),
    })
}
