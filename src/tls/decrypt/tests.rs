use std::sync::Arc;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use super::*;
use crate::tls::keylog::KeyLog;

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// RFC 8448 §3 (Simple 1-RTT Handshake), TLS_AES_128_GCM_SHA256.
pub(crate) const C_HS: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
pub(crate) const S_HS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
pub(crate) const C_AP: &str = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
pub(crate) const S_AP: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";

#[test]
fn tls13_keys_and_ivs_are_rfc_8448s() {
    for (secret, key, iv) in [
        (
            S_HS,
            "3fce516009c21727d0f2e4e86ee403bc",
            "5d313eb2671276ee13000b30",
        ),
        (
            C_HS,
            "dbfaa693d1762c5b666af5d950258d01",
            "5bd3c71b836e0b76bb73265f",
        ),
        (
            S_AP,
            "9f02283b6c9c07efc26bb9f2ac92e356",
            "cf782b88dd83549aadf1e984",
        ),
        (
            C_AP,
            "17422dda596ed5d9acd890e3c63f5051",
            "5b78923dee08579033e523d9",
        ),
    ] {
        let mut k = [0u8; 16];
        let mut i = [0u8; 12];
        expand_label(Hash::Sha256, &unhex(secret), b"key", b"", &mut k).unwrap();
        expand_label(Hash::Sha256, &unhex(secret), b"iv", b"", &mut i).unwrap();
        assert_eq!(k.to_vec(), unhex(key));
        assert_eq!(i.to_vec(), unhex(iv));
    }
}

/// The TLS 1.2 PRF test vector of the IETF TLS list (msg03416, P_SHA256).
#[test]
fn tls12_prf_matches_the_published_vector() {
    let mut out = [0u8; 100];
    prf(
        Hash::Sha256,
        &unhex("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        &[&unhex("a0ba9f936cda311827a6f796ffd5198c")],
        &mut out,
    );
    assert_eq!(
        out.to_vec(),
        unhex(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e\
             14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a7\
             2e5a5110fff70187347b66"
        )
    );
}

const CR: [u8; 32] = [7; 32];
const SR: [u8; 32] = [9; 32];

/// The key log lines of the RFC 8448 connection's four traffic secrets.
pub(crate) fn keylog13_text() -> Vec<u8> {
    let cr = "07".repeat(32);
    format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {cr} {C_HS}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {cr} {S_HS}\n\
         CLIENT_TRAFFIC_SECRET_0 {cr} {C_AP}\nSERVER_TRAFFIC_SECRET_0 {cr} {S_AP}\n"
    )
    .into_bytes()
}

pub(crate) fn keylog13() -> Arc<KeyLog> {
    let log = KeyLog::new();
    log.read(&keylog13_text());
    Arc::new(log)
}

fn hellos(version: u16, cipher: u16) -> Hellos {
    Hellos {
        client_random: CR,
        server_random: SR,
        version,
        cipher,
        encrypt_then_mac: false,
    }
}

/// A TLS 1.3 record: `content` of `kind` sealed with a traffic secret's key at `seq`.
pub(crate) fn seal13(secret: &[u8], seq: u64, kind: u8, content: &[u8]) -> Vec<u8> {
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    expand_label(Hash::Sha256, secret, b"key", b"", &mut key).unwrap();
    expand_label(Hash::Sha256, secret, b"iv", b"", &mut iv).unwrap();
    for (n, s) in iv[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let mut inner = content.to_vec();
    inner.push(kind);
    inner.extend_from_slice(&[0, 0, 0]); // padding
    let len = (inner.len() + 16) as u16;
    let header = [23, 3, 3, (len >> 8) as u8, len as u8];
    let k = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &key).unwrap());
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(iv),
        Aad::from(header),
        &mut inner,
    )
    .unwrap();
    let mut rec = header.to_vec();
    rec.extend_from_slice(&inner);
    rec
}

pub(crate) fn finished() -> Vec<u8> {
    let mut m = vec![20, 0, 0, 32];
    m.extend_from_slice(&[0xaa; 32]);
    m
}

/// A server flight: the hello in clear, an encrypted Finished (handshake keys),
/// then two application data records (application keys), fed in `chunk`-byte pieces.
fn server_flight() -> Vec<u8> {
    let mut s = vec![22, 3, 3, 0, 4, 2, 0, 0, 0]; // a (truncated) ServerHello record
    s.extend(seal13(&unhex(S_HS), 0, 22, &finished()));
    s.extend(seal13(&unhex(S_AP), 0, 23, b"HTTP/1.1 200 OK\r\n"));
    s.extend(seal13(&unhex(S_AP), 1, 23, b"content-length: 0\r\n\r\n"));
    s
}

fn run(d: &mut Decryptor, from_client: bool, bytes: &[u8], chunk: usize, h: &Hellos) -> Vec<u8> {
    let mut plain = Vec::new();
    for piece in bytes.chunks(chunk) {
        d.data(from_client, piece, Some(h), &mut |p| {
            plain.extend_from_slice(p)
        });
    }
    plain
}

#[test]
fn tls13_records_open_across_any_segmentation_and_switch_keys_at_finished() {
    let h = hellos(0x0304, 0x1301);
    for chunk in [1, 3, 7, 100, 10_000] {
        let mut d = Decryptor::new(keylog13());
        let plain = run(&mut d, false, &server_flight(), chunk, &h);
        assert_eq!(plain, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(d.outcome(), Some(Outcome::Decrypted));
        assert_eq!(d.records, 3);
        // The client: a compatibility ChangeCipherSpec, Finished, a request.
        let mut c = vec![20, 3, 3, 0, 1, 1];
        c.extend(seal13(&unhex(C_HS), 0, 22, &finished()));
        c.extend(seal13(&unhex(C_AP), 0, 23, b"GET / HTTP/1.1\r\n\r\n"));
        assert_eq!(run(&mut d, true, &c, chunk, &h), b"GET / HTTP/1.1\r\n\r\n");
    }
}

#[test]
fn a_key_update_moves_to_the_next_secret() {
    let h = hellos(0x0304, 0x1301);
    let mut d = Decryptor::new(keylog13());
    run(&mut d, false, &server_flight(), 10_000, &h);
    let mut s = seal13(&unhex(S_AP), 2, 22, &[24, 0, 0, 1, 0]);
    let next = next_secret(Hash::Sha256, &Secret::new(&unhex(S_AP)).unwrap()).unwrap();
    s.extend(seal13(next.bytes(), 0, 23, b"after"));
    assert_eq!(run(&mut d, false, &s, 10_000, &h), b"after");
    assert_eq!(d.outcome(), Some(Outcome::Decrypted));
}

#[test]
fn failures_end_decryption_with_their_reason() {
    // A flipped bit in the first encrypted record: it does not authenticate.
    let mut flight = server_flight();
    flight[9 + 5 + 3] ^= 1;
    let mut d = Decryptor::new(keylog13());
    run(&mut d, false, &flight, 10_000, &hellos(0x0304, 0x1301));
    assert_eq!(d.outcome(), Some(Outcome::BadRecord));
    assert!(d.failed() && d.buffered() == 0);
    // No secrets for this client random.
    let mut d = Decryptor::new(Arc::new(KeyLog::new()));
    run(
        &mut d,
        false,
        &server_flight(),
        10_000,
        &hellos(0x0304, 0x1301),
    );
    assert_eq!(d.outcome(), Some(Outcome::NoKey));
    // TLS_AES_128_CCM_SHA256 is not decrypted here.
    let mut d = Decryptor::new(keylog13());
    run(
        &mut d,
        false,
        &server_flight(),
        10_000,
        &hellos(0x0304, 0x1304),
    );
    assert_eq!(d.outcome(), Some(Outcome::UnsupportedSuite));
    // Encrypted records without the hellos.
    let mut d = Decryptor::new(keylog13());
    d.data(false, &server_flight(), None, &mut |_| {});
    assert_eq!(d.outcome(), Some(Outcome::Midstream));
}

#[test]
fn tls12_gcm_and_chacha_records_open_after_change_cipher_spec() {
    let master = [0x5a; 48];
    let log = KeyLog::new();
    log.read(format!("CLIENT_RANDOM {} {}\n", "07".repeat(32), "5a".repeat(48)).as_bytes());
    let log = Arc::new(log);
    for (cipher, alg, kl, ivl) in [
        (0xc02f, &aead::AES_128_GCM, 16, 4),
        (0xc030, &aead::AES_256_GCM, 32, 4),
        (0xcca8, &aead::CHACHA20_POLY1305, 32, 12),
    ] {
        let s = suite(0x0303, cipher).unwrap();
        let mut block = vec![0u8; 2 * (kl + ivl)];
        prf(s.hash, &master, b"key expansion", &[&SR, &CR], &mut block);
        let (key, iv) = (&block[kl..2 * kl], &block[2 * kl + ivl..]);
        let k = LessSafeKey::new(UnboundKey::new(alg, key).unwrap());
        let seal = |seq: u64, kind: u8, content: &[u8]| {
            let mut nonce = [0u8; 12];
            let explicit = ivl == 4;
            if explicit {
                nonce[..4].copy_from_slice(iv);
                nonce[4..].copy_from_slice(&(seq + 1000).to_be_bytes());
            } else {
                nonce.copy_from_slice(iv);
                for (n, b) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                    *n ^= b;
                }
            }
            let mut aad = seq.to_be_bytes().to_vec();
            aad.extend_from_slice(&[kind, 3, 3]);
            aad.extend_from_slice(&(content.len() as u16).to_be_bytes());
            let mut body = content.to_vec();
            k.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .unwrap();
            if explicit {
                let mut b = nonce[4..].to_vec();
                b.extend(body);
                body = b;
            }
            let mut rec = vec![kind, 3, 3];
            rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
            rec.extend(body);
            rec
        };
        let mut flight = vec![22, 3, 3, 0, 1, 14, 20, 3, 3, 0, 1, 1];
        flight.extend(seal(0, 22, &finished()));
        flight.extend(seal(1, 23, b"HTTP/1.1 204 No Content\r\n\r\n"));
        let mut d = Decryptor::new(Arc::clone(&log));
        let plain = run(&mut d, false, &flight, 5, &hellos(0x0303, cipher));
        assert_eq!(plain, b"HTTP/1.1 204 No Content\r\n\r\n", "{cipher:04x}");
        assert_eq!(d.outcome(), Some(Outcome::Decrypted));
    }
    // TLS 1.1 (its PRF is MD5/SHA-1) is not decrypted.
    let mut d = Decryptor::new(log);
    run(
        &mut d,
        true,
        &[20, 3, 2, 0, 1, 1],
        10,
        &hellos(0x0302, 0xc013),
    );
    assert_eq!(d.outcome(), Some(Outcome::UnsupportedSuite));
}

#[test]
fn arbitrary_records_with_a_key_never_panic() {
    let h = hellos(0x0304, 0x1301);
    let mut seed = 0x1234_5678_u64;
    for _ in 0..2000 {
        let mut d = Decryptor::new(keylog13());
        let mut bytes = server_flight();
        for _ in 0..4 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (seed >> 33) as usize % bytes.len();
            bytes[at] = (seed >> 20) as u8;
        }
        run(&mut d, false, &bytes, (seed as usize % 50) + 1, &h);
        run(&mut d, true, &bytes, 9, &h);
    }
}

#[test]
fn a_change_cipher_spec_before_the_server_hello_is_tls13_compatibility_not_a_failure() {
    // After a HelloRetryRequest the client may send its compatibility record before
    // the real ServerHello is seen (RFC 8446 §D.4).
    let mut d = Decryptor::new(keylog13());
    d.data(true, &[20, 3, 3, 0, 1, 1], None, &mut |_| {});
    assert_eq!(d.outcome(), None);
    let h = hellos(0x0304, 0x1301);
    let mut c = seal13(&unhex(C_HS), 0, 22, &finished());
    c.extend(seal13(&unhex(C_AP), 0, 23, b"GET / HTTP/1.1\r\n\r\n"));
    assert_eq!(run(&mut d, true, &c, 10_000, &h), b"GET / HTTP/1.1\r\n\r\n");
}

/// Decryption throughput of the record layer alone (AES-128-GCM, 16 KiB records):
/// `cargo test --lib decrypt_throughput -- --ignored --nocapture` (ring is built
/// optimised in the dev profile too).
#[test]
#[ignore]
fn decrypt_throughput() {
    let h = hellos(0x0304, 0x1301);
    let mut d = Decryptor::new(keylog13());
    run(&mut d, false, &server_flight(), 10_000, &h);
    let content = vec![b'x'; 16 * 1024 - 1];
    let records: Vec<u8> = (2..1026)
        .flat_map(|seq| seal13(&unhex(S_AP), seq, 23, &content))
        .collect();
    let start = std::time::Instant::now();
    let mut bytes = 0usize;
    // Segments of a 1500-byte MTU.
    for piece in records.chunks(1448) {
        d.data(false, piece, Some(&h), &mut |p| bytes += p.len());
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(d.outcome(), Some(Outcome::Decrypted));
    eprintln!(
        "{:.0} MB/s ({bytes} bytes in {secs:.4}s)",
        bytes as f64 / secs / 1e6
    );
}

/// TLS 1.2 AES-CBC records: MAC-then-encrypt (RFC 5246) and encrypt-then-MAC
/// (RFC 7366), SHA-1 and SHA-384 MACs, built with RustCrypto's CBC encryptor.
#[test]
fn tls12_cbc_records_open_both_mac_orders() {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
    use ring::hmac;
    let master = [0x5a; 48];
    let log = KeyLog::new();
    log.read(format!("CLIENT_RANDOM {} {}\n", "07".repeat(32), "5a".repeat(48)).as_bytes());
    let log = Arc::new(log);
    for (cipher, kl, ml, mac_alg) in [
        (0xc013, 16, 20, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        (0xc028, 32, 48, hmac::HMAC_SHA384),
    ] {
        for etm in [false, true] {
            let s = suite(0x0303, cipher).unwrap();
            let mut block = vec![0u8; 2 * (ml + kl)];
            prf(s.hash, &master, b"key expansion", &[&SR, &CR], &mut block);
            // The server's keys.
            let mac_key = hmac::Key::new(mac_alg, &block[ml..2 * ml]);
            let key = block[2 * ml + kl..2 * ml + 2 * kl].to_vec();
            let seal = |seq: u64, kind: u8, content: &[u8]| {
                let mac = |data: &[u8]| {
                    let mut c = hmac::Context::with_key(&mac_key);
                    c.update(&seq.to_be_bytes());
                    c.update(&[kind, 3, 3]);
                    c.update(&(data.len() as u16).to_be_bytes());
                    c.update(data);
                    c.sign().as_ref().to_vec()
                };
                let mut plain = content.to_vec();
                if !etm {
                    plain.extend(mac(content));
                }
                let pad = 15 - plain.len() % 16;
                plain.extend(std::iter::repeat_n(pad as u8, pad + 1));
                let iv = [seq as u8; 16];
                let len = plain.len();
                let sealed = match key.len() {
                    16 => ::cbc::Encryptor::<aes::Aes128>::new_from_slices(&key, &iv)
                        .unwrap()
                        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
                        .unwrap()
                        .to_vec(),
                    _ => ::cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &iv)
                        .unwrap()
                        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
                        .unwrap()
                        .to_vec(),
                };
                let mut body = iv.to_vec();
                body.extend(sealed);
                if etm {
                    body.extend(mac(&body));
                }
                let mut rec = vec![kind, 3, 3];
                rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
                rec.extend(body);
                rec
            };
            let mut flight = vec![20, 3, 3, 0, 1, 1];
            flight.extend(seal(0, 22, &finished()));
            flight.extend(seal(1, 23, b"HTTP/1.1 204 No Content\r\n\r\n"));
            let mut h = hellos(0x0303, cipher);
            h.encrypt_then_mac = etm;
            let mut d = Decryptor::new(Arc::clone(&log));
            let plain = run(&mut d, false, &flight, 7, &h);
            assert_eq!(
                plain, b"HTTP/1.1 204 No Content\r\n\r\n",
                "{cipher:04x} {etm}"
            );
            assert_eq!(d.outcome(), Some(Outcome::Decrypted));
            // The other MAC order does not authenticate.
            h.encrypt_then_mac = !etm;
            let mut d = Decryptor::new(Arc::clone(&log));
            run(&mut d, false, &flight, 7, &h);
            assert_eq!(d.outcome(), Some(Outcome::BadRecord), "{cipher:04x} {etm}");
        }
    }
}
