//! The TLS record layer with a fixed key log, fed arbitrary bytes in arbitrary
//! pieces, with gaps, and TLS 1.3 records the target seals itself with the logged
//! secrets (so that the fuzzer reaches past authentication: arbitrary inner
//! plaintexts, content types, padding, handshake messages, KeyUpdate, Finished):
//! never a panic, memory bounded whatever is announced, and the decrypted stream
//! read as HTTP.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use apiwatch::http::Connection;
use apiwatch::http::connection::Endpoints;
use apiwatch::tls::KeyLog;
use apiwatch::tls::decrypt::{
    Decryptor, Hash, Hellos, MAX_HANDSHAKE_PLAINTEXT, MAX_RECORD_BODY, expand_label,
};
use libfuzzer_sys::fuzz_target;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

const CLIENT_RANDOM: [u8; 32] = [7; 32];
/// Handshake and application traffic secrets: client's, server's.
const HS: [[u8; 32]; 2] = [[0x11; 32], [0x22; 32]];
const AP: [[u8; 32]; 2] = [[0x33; 32], [0x44; 32]];

fn keylog() -> Arc<KeyLog> {
    static LOG: OnceLock<Arc<KeyLog>> = OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let cr = hex(&CLIENT_RANDOM);
        let log = KeyLog::new();
        log.read(
            format!(
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET {cr} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {cr} {}\n\
                 CLIENT_TRAFFIC_SECRET_0 {cr} {}\nSERVER_TRAFFIC_SECRET_0 {cr} {}\n\
                 CLIENT_RANDOM {cr} {}\n",
                hex(&HS[0]),
                hex(&HS[1]),
                hex(&AP[0]),
                hex(&AP[1]),
                hex(&[0x55; 48]),
            )
            .as_bytes(),
        );
        Arc::new(log)
    }))
}

/// What a TLS 1.3 peer would send: records sealed with the key its state says.
struct Sealer {
    secret: Vec<u8>,
    seq: u64,
    application: bool,
    cipher: u16,
    side: usize,
}

impl Sealer {
    fn keys(&self) -> (LessSafeKey, [u8; 12]) {
        let (alg, klen) = match self.cipher {
            0x1303 => (&aead::CHACHA20_POLY1305, 32),
            _ => (&aead::AES_128_GCM, 16),
        };
        let mut key = [0u8; 32];
        let mut iv = [0u8; 12];
        expand_label(Hash::Sha256, &self.secret, b"key", b"", &mut key[..klen]).unwrap();
        expand_label(Hash::Sha256, &self.secret, b"iv", b"", &mut iv).unwrap();
        (LessSafeKey::new(UnboundKey::new(alg, &key[..klen]).unwrap()), iv)
    }

    fn seal(&mut self, kind: u8, content: &[u8], padding: usize) -> Vec<u8> {
        let (key, mut nonce) = self.keys();
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        let mut inner = content.to_vec();
        inner.push(kind);
        inner.resize(inner.len() + padding, 0);
        let len = (inner.len() + 16) as u16;
        let header = [23, 3, 3, (len >> 8) as u8, len as u8];
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(header), &mut inner)
            .unwrap();
        let mut rec = header.to_vec();
        rec.extend(inner);
        // The peer moves on to its next keys after Finished, and at KeyUpdate.
        match (kind, content.first(), self.application) {
            (22, Some(20), false) => {
                self.secret = AP[self.side].to_vec();
                self.seq = 0;
                self.application = true;
            }
            (22, Some(24), true) => {
                let mut next = [0u8; 32];
                expand_label(Hash::Sha256, &self.secret, b"traffic upd", b"", &mut next).unwrap();
                self.secret = next.to_vec();
                self.seq = 0;
            }
            _ => {}
        }
        rec
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let mut rest: &[u8] = rest;
    let (version, cipher, encrypt_then_mac) = match mode % 6 {
        0 => (0x0304, 0x1301, false),
        1 => (0x0304, 0x1303, false),
        2 => (0x0303, 0xc02f, false),
        3 => (0x0303, 0xc013, false), // CBC, MAC-then-encrypt
        4 => (0x0303, 0xc028, true),  // CBC, encrypt-then-MAC
        _ => (0x0304, 0x1302, false), // 48-byte secrets wanted, 32 logged: no_key
    };
    let hellos = Hellos {
        client_random: CLIENT_RANDOM,
        server_random: [9; 32],
        version,
        cipher,
        encrypt_then_mac,
    };
    let endpoints = Endpoints {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 443,
    };
    let mut http = Connection::new(endpoints, false);
    let mut out = Vec::new();
    let mut d = Decryptor::new(keylog());
    let mut sealers = [0, 1].map(|side| Sealer {
        secret: HS[side].to_vec(),
        seq: 0,
        application: false,
        cipher,
        side,
    });
    // Each piece: a control byte (side, kind), a two-byte length, then that many bytes.
    while let [ctl, hi, lo, tail @ ..] = rest {
        let n = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (piece, next) = tail.split_at(n);
        rest = next;
        let client = ctl & 1 == 0;
        let mut feed = |d: &mut Decryptor, bytes: &[u8]| {
            d.data(client, bytes, Some(&hellos), &mut |plain| {
                if client {
                    http.client_data(plain, 1, &mut out);
                } else {
                    http.server_data(plain, 1, &mut out);
                }
            });
        };
        match (ctl >> 1) % 8 {
            0 => d.gap(client),
            1..=3 => {
                // A record sealed properly: the piece's first byte is its inner type.
                let (kind, content) = piece.split_first().unwrap_or((&23, &[]));
                let content = &content[..content.len().min(1 << 14)];
                let rec = sealers[usize::from(!client)].seal(*kind, content, usize::from(ctl >> 4));
                let cut = usize::from(*lo) % (rec.len() + 1);
                feed(&mut d, &rec[..cut]);
                feed(&mut d, &rec[cut..]);
            }
            _ => feed(&mut d, piece),
        }
        out.clear();
        let bound = 2 * (5 + MAX_RECORD_BODY) + 2 * 2 * MAX_HANDSHAKE_PLAINTEXT;
        assert!(d.buffered() <= bound, "bounded: {}", d.buffered());
    }
    http.flush(&mut out);
});
