//! The TLS record layer read with the session's secrets (a key log, [`super::keylog`]):
//! records in, both directions, plaintext application data out.
//!
//! Each direction's records (RFC 8446 §5.1, RFC 5246 §6.2) are gathered across TCP
//! segments into one buffer of at most a record ([`MAX_RECORD_BODY`] + 5 bytes) and
//! opened in place with `ring`'s AEADs; nothing else is held but TLS 1.3's
//! encrypted handshake messages (at most [`MAX_HANDSHAKE_PLAINTEXT`]).
//!
//! - TLS 1.2 (RFC 5246 §6.3, RFC 5288, RFC 7905): a direction is encrypted from its
//!   ChangeCipherSpec on (the first record is its Finished, sequence number 0) with
//!   keys from the key block, `PRF(master_secret, "key expansion", server_random +
//!   client_random)`. AES-GCM's nonce is the 4-byte salt and the record's 8-byte
//!   explicit nonce, ChaCha20-Poly1305's the IV XOR the sequence number; the
//!   additional data is sequence number, type, version and plaintext length.
//! - TLS 1.3 (RFC 8446 §5.2-5.3, §7.1-7.3): after the ServerHello, each direction
//!   uses its handshake traffic secret until its Finished, then its application
//!   traffic secret, replaced by `HKDF-Expand-Label(secret, "traffic upd")` at each
//!   KeyUpdate; the additional data is the record header and the inner plaintext's
//!   last non-zero byte its real type. The server's Certificate is read on the way.
//!
//! Suites: AES-128/256-GCM and ChaCha20-Poly1305 (every TLS 1.3 suite but the CCM
//! ones, and the TLS 1.2 AEAD suites people negotiate), and TLS 1.2 AES-CBC with
//! HMAC-SHA1/256/384 ([`cbc`], MAC-then-encrypt or encrypt-then-MAC); anything else
//! ends as [`Outcome::UnsupportedSuite`]. The first failure (no key, an unsupported suite, a
//! record that does not authenticate, encrypted records without the hellos) ends
//! decryption of the connection and is its [`Outcome`].

use std::sync::Arc;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{hkdf, hmac};

use super::cert::{self, Certificate};
use super::keylog::{KeyLog, Secret, Secrets, wipe};

mod cbc;
use cbc::Cbc;
pub use cbc::Mac;

/// The largest record body (RFC 5246 §6.2.3: 2^14 + 2048 for a TLS 1.2 ciphertext;
/// TLS 1.3's is smaller); a larger length is not TLS.
pub const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
/// TLS 1.3 handshake bytes held while a message spans records (a certificate chain
/// is a few KiB, rarely 20); past it the handshake cannot be followed.
pub const MAX_HANDSHAKE_PLAINTEXT: usize = 64 * 1024;
const HEADER: usize = 5;
const TAG: usize = 16;

const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// How decrypting a connection went (the TLS record's `decryption`; metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Records were opened with the logged secrets.
    Decrypted,
    /// The key log has no (or not the needed) secret for the client random.
    NoKey,
    /// A version or cipher suite not decrypted (CCM, 3DES, TLS ≤ 1.1...).
    UnsupportedSuite,
    /// A record did not authenticate with the secrets, or is not a TLS record.
    BadRecord,
    /// Encrypted records came without the hellos before them (a gap, or a
    /// connection seen from its middle).
    Midstream,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Decrypted,
        Outcome::NoKey,
        Outcome::UnsupportedSuite,
        Outcome::BadRecord,
        Outcome::Midstream,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Decrypted => "decrypted",
            Outcome::NoKey => "no_key",
            Outcome::UnsupportedSuite => "unsupported_suite",
            Outcome::BadRecord => "bad_record",
            Outcome::Midstream => "midstream",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The hash of a suite (its PRF / HKDF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    /// Output bytes (and the size of a traffic secret).
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Hash::Sha256 => hkdf::HKDF_SHA256,
            Hash::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

/// The record cipher of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
    /// TLS 1.2 AES-CBC with an HMAC ([`cbc`]).
    Aes128Cbc(Mac),
    Aes256Cbc(Mac),
}

impl Cipher {
    fn algorithm(self) -> Option<&'static aead::Algorithm> {
        match self {
            Cipher::Aes128Gcm => Some(&aead::AES_128_GCM),
            Cipher::Aes256Gcm => Some(&aead::AES_256_GCM),
            Cipher::Chacha20Poly1305 => Some(&aead::CHACHA20_POLY1305),
            Cipher::Aes128Cbc(_) | Cipher::Aes256Cbc(_) => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aes128Cbc(_) => 16,
            _ => 32,
        }
    }

    /// TLS 1.2's fixed IV from the key block: GCM's 4-byte salt (RFC 5288 §3),
    /// ChaCha20's whole 12-byte IV (RFC 7905 §2); CBC's IV leads each record.
    fn tls12_iv_len(self) -> usize {
        match self {
            Cipher::Chacha20Poly1305 => 12,
            Cipher::Aes128Cbc(_) | Cipher::Aes256Cbc(_) => 0,
            _ => 4,
        }
    }

    /// The key block's MAC key length (AEAD suites have none).
    fn mac(self) -> Option<Mac> {
        match self {
            Cipher::Aes128Cbc(m) | Cipher::Aes256Cbc(m) => Some(m),
            _ => None,
        }
    }
}

/// A negotiated suite this module decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub tls13: bool,
    pub cipher: Cipher,
    pub hash: Hash,
}

/// The suite of a negotiated version and cipher suite id, if it is decrypted here.
pub fn suite(version: u16, id: u16) -> Option<Suite> {
    use Cipher::*;
    let (tls13, cipher, hash) = match (version, id) {
        (0x0304, 0x1301) => (true, Aes128Gcm, Hash::Sha256),
        (0x0304, 0x1302) => (true, Aes256Gcm, Hash::Sha384),
        (0x0304, 0x1303) => (true, Chacha20Poly1305, Hash::Sha256),
        // RSA, DHE_RSA, ECDHE_ECDSA, ECDHE_RSA with AES-GCM (RFC 5288, RFC 5289).
        (0x0303, 0x009c | 0x009e | 0xc02b | 0xc02f) => (false, Aes128Gcm, Hash::Sha256),
        (0x0303, 0x009d | 0x009f | 0xc02c | 0xc030) => (false, Aes256Gcm, Hash::Sha384),
        // ECDHE_RSA, ECDHE_ECDSA, DHE_RSA with ChaCha20-Poly1305 (RFC 7905).
        (0x0303, 0xcca8..=0xccaa) => (false, Chacha20Poly1305, Hash::Sha256),
        // AES-CBC with RSA, DHE_RSA, ECDHE_ECDSA, ECDHE_RSA key exchange (RFC 5246,
        // RFC 5289); the PRF is SHA-256 but for the SHA-384 MACs.
        (0x0303, 0x002f | 0x0033 | 0xc009 | 0xc013) => (false, Aes128Cbc(Mac::Sha1), Hash::Sha256),
        (0x0303, 0x0035 | 0x0039 | 0xc00a | 0xc014) => (false, Aes256Cbc(Mac::Sha1), Hash::Sha256),
        (0x0303, 0x003c | 0x0067 | 0xc023 | 0xc027) => {
            (false, Aes128Cbc(Mac::Sha256), Hash::Sha256)
        }
        (0x0303, 0x003d | 0x006b) => (false, Aes256Cbc(Mac::Sha256), Hash::Sha256),
        (0x0303, 0xc024 | 0xc028) => (false, Aes256Cbc(Mac::Sha384), Hash::Sha384),
        _ => return None,
    };
    Some(Suite {
        tls13,
        cipher,
        hash,
    })
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand-Label(secret, label, context, out.len())` (RFC 8446 §7.1).
pub fn expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let context_len = [u8::try_from(context.len()).ok()?];
    let info: [&[u8]; 6] = [&len, &label_len, b"tls13 ", label, &context_len, context];
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// The TLS 1.2 PRF, `P_hash(secret, label + seed)` (RFC 5246 §5), into `out`.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hash.hmac(), secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    seed.iter().for_each(|s| ctx.update(s));
    let mut a = ctx.sign(); // A(1)
    let mut at = 0;
    while at < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        seed.iter().for_each(|s| ctx.update(s));
        let block = ctx.sign();
        let n = (out.len() - at).min(block.as_ref().len());
        out[at..at + n].copy_from_slice(&block.as_ref()[..n]);
        at += n;
        a = hmac::sign(&key, a.as_ref());
    }
}

/// The next application traffic secret (RFC 8446 §7.2, KeyUpdate).
pub fn next_secret(hash: Hash, secret: &Secret) -> Option<Secret> {
    let mut b = [0u8; 48];
    let out = &mut b[..hash.output_len()];
    let next = expand_label(hash, secret.bytes(), b"traffic upd", b"", out)
        .and_then(|()| Secret::new(out));
    wipe(&mut b);
    next
}

/// One direction's record protection in one epoch.
pub enum Protection {
    Aead(Box<Aead>),
    Cbc(Box<Cbc>),
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protection::Aead(a) => a.fmt(f),
            Protection::Cbc(_) => f.write_str("Protection::Cbc(..)"),
        }
    }
}

/// An AEAD's key, IV and sequence number.
pub struct Aead {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    tls13: bool,
    /// TLS 1.2 AES-GCM: the nonce's last 8 bytes lead each record.
    explicit_nonce: bool,
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aead")
            .field("seq", &self.seq)
            .field("tls13", &self.tls13)
            .finish_non_exhaustive()
    }
}

impl Drop for Aead {
    fn drop(&mut self) {
        wipe(&mut self.iv);
    }
}

impl Protection {
    fn aead(cipher: Cipher, key: &[u8], iv: [u8; 12], tls13: bool) -> Option<Protection> {
        let key = UnboundKey::new(cipher.algorithm()?, key).ok()?;
        Some(Protection::Aead(Box::new(Aead {
            key: LessSafeKey::new(key),
            iv,
            seq: 0,
            tls13,
            explicit_nonce: !tls13 && cipher != Cipher::Chacha20Poly1305,
        })))
    }

    /// Opens one record (`header` and its body, decrypted in place): the plaintext,
    /// TLS 1.3's with its content type and padding still on. `None`: it does not
    /// authenticate.
    pub fn open<'a>(&mut self, header: [u8; 5], body: &'a mut [u8]) -> Option<&'a mut [u8]> {
        match self {
            Protection::Aead(a) => a.open(header, body),
            Protection::Cbc(c) => c.open(header, body),
        }
    }

    /// A TLS 1.3 direction's protection from its traffic secret (RFC 8446 §7.3).
    pub fn tls13(suite: Suite, secret: &[u8]) -> Option<Protection> {
        let mut key = [0u8; 32];
        let klen = suite.cipher.key_len();
        let mut iv = [0u8; 12];
        let p = expand_label(suite.hash, secret, b"key", b"", &mut key[..klen])
            .and_then(|()| expand_label(suite.hash, secret, b"iv", b"", &mut iv))
            .and_then(|()| Protection::aead(suite.cipher, &key[..klen], iv, true));
        wipe(&mut key);
        wipe(&mut iv);
        p
    }

    /// A TLS 1.2 direction's protection from the master secret (RFC 5246 §6.3).
    pub fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        from_client: bool,
        encrypt_then_mac: bool,
    ) -> Option<Protection> {
        let (kl, ivl) = (suite.cipher.key_len(), suite.cipher.tls12_iv_len());
        let ml = suite.cipher.mac().map_or(0, Mac::output_len);
        let mut block = [0u8; 2 * 48 + 2 * 32 + 2 * 12];
        let block = &mut block[..2 * (ml + kl + ivl)];
        prf(
            suite.hash,
            master,
            b"key expansion",
            &[server_random, client_random],
            block,
        );
        // client_write_MAC_key, server_write_MAC_key, client_write_key,
        // server_write_key, client_write_IV, server_write_IV (AEAD suites have no MAC
        // keys, CBC no IVs).
        let side = usize::from(!from_client);
        let mac_key = &block[side * ml..(side + 1) * ml];
        let keys = &block[2 * ml..];
        let key = &keys[side * kl..(side + 1) * kl];
        let iv = &keys[2 * kl + side * ivl..2 * kl + (side + 1) * ivl];
        let mut iv12 = [0u8; 12];
        iv12[..ivl].copy_from_slice(iv);
        let p = match suite.cipher.mac() {
            Some(mac) => {
                Cbc::new(key, mac, mac_key, encrypt_then_mac).map(|c| Protection::Cbc(Box::new(c)))
            }
            None => Protection::aead(suite.cipher, key, iv12, false),
        };
        wipe(&mut iv12);
        wipe(block);
        p
    }
}

impl Aead {
    fn open<'a>(&mut self, header: [u8; 5], body: &'a mut [u8]) -> Option<&'a mut [u8]> {
        let mut nonce = self.iv;
        let sealed = if self.explicit_nonce {
            let (explicit, rest) = body.split_at_mut_checked(8)?;
            nonce[4..].copy_from_slice(explicit);
            rest
        } else {
            for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                *n ^= s;
            }
            body
        };
        let plain_len = sealed.len().checked_sub(TAG)?;
        let mut aad = [0u8; 13];
        let aad: &[u8] = if self.tls13 {
            &header
        } else {
            aad[..8].copy_from_slice(&self.seq.to_be_bytes());
            aad[8..11].copy_from_slice(&header[..3]);
            aad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
            &aad
        };
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
            .ok()?;
        self.seq = self.seq.wrapping_add(1);
        Some(plain)
    }
}

/// What the handshake reader learned from the hellos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hellos {
    pub client_random: [u8; 32],
    pub server_random: [u8; 32],
    /// The negotiated version.
    pub version: u16,
    pub cipher: u16,
    /// The ServerHello accepted encrypt_then_mac (RFC 7366: CBC suites only).
    pub encrypt_then_mac: bool,
}

/// Which keys protect a direction's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Epoch {
    /// Records are in clear (the hellos).
    #[default]
    Clear,
    /// TLS 1.3, until this direction's Finished.
    Handshake,
    /// Application traffic keys (TLS 1.2: everything after ChangeCipherSpec).
    Application,
}

/// One direction.
#[derive(Debug, Default)]
struct Direction {
    /// The record being gathered, header first.
    record: Vec<u8>,
    epoch: Epoch,
    protection: Option<Protection>,
    /// TLS 1.3's current traffic secret (KeyUpdate derives the next from it).
    secret: Option<Secret>,
    /// TLS 1.3 decrypted handshake bytes of messages not yet whole.
    handshake: Vec<u8>,
    /// Nothing more is read from this direction.
    stopped: bool,
}

impl Direction {
    fn stop(&mut self) {
        self.stopped = true;
        self.record = Vec::new();
        self.handshake = Vec::new();
        self.protection = None;
        self.secret = None;
    }
}

/// Decryption of one TLS connection.
#[derive(Debug)]
pub struct Decryptor {
    keylog: Arc<KeyLog>,
    /// Client's, server's.
    dirs: [Direction; 2],
    /// Set at the first encrypted record: the suite and the client random.
    suite: Option<(Suite, [u8; 32])>,
    outcome: Option<Outcome>,
    /// The server's certificate chain read from the TLS 1.3 handshake.
    pub certificates: Vec<Certificate>,
    /// Records opened.
    pub records: u64,
    /// Application data delivered.
    pub plaintext_bytes: u64,
}

impl Decryptor {
    pub fn new(keylog: Arc<KeyLog>) -> Decryptor {
        Decryptor {
            keylog,
            dirs: [Direction::default(), Direction::default()],
            suite: None,
            outcome: None,
            certificates: Vec::new(),
            records: 0,
            plaintext_bytes: 0,
        }
    }

    /// The secrets it decrypts with.
    pub fn keylog(&self) -> &Arc<KeyLog> {
        &self.keylog
    }

    /// How it went, once known (`None` until the first encrypted record).
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Decryption ended for good (a failure).
    pub fn failed(&self) -> bool {
        self.outcome.is_some_and(|o| o != Outcome::Decrypted)
    }

    /// Bytes held.
    pub fn buffered(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| d.record.capacity() + d.handshake.capacity())
            .sum()
    }

    fn fail(&mut self, o: Outcome) {
        self.outcome.get_or_insert(o);
        for d in &mut self.dirs {
            d.stop();
        }
    }

    /// Bytes were lost in one direction: its records cannot be framed any more.
    /// Before anything was decrypted that is the connection's outcome.
    pub fn gap(&mut self, from_client: bool) {
        if self.outcome.is_none() {
            self.fail(Outcome::Midstream);
        } else {
            self.dirs[usize::from(!from_client)].stop();
        }
    }

    /// Bytes from one side in stream order; `hellos` is what the handshake reader
    /// made of them so far (it reads them first). Application data goes to `sink`.
    pub fn data(
        &mut self,
        from_client: bool,
        mut data: &[u8],
        hellos: Option<&Hellos>,
        sink: &mut dyn FnMut(&[u8]),
    ) {
        let idx = usize::from(!from_client);
        while !data.is_empty() && !self.dirs[idx].stopped {
            let dir = &mut self.dirs[idx];
            let want = match dir.record.get(..HEADER) {
                Some(h) => HEADER + usize::from(u16::from_be_bytes([h[3], h[4]])),
                None => HEADER,
            };
            let take = (want - dir.record.len()).min(data.len());
            dir.record.extend_from_slice(&data[..take]);
            data = &data[take..];
            if dir.record.len() == HEADER {
                let [kind, major, _, hi, lo] = [
                    dir.record[0],
                    dir.record[1],
                    dir.record[2],
                    dir.record[3],
                    dir.record[4],
                ];
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&kind)
                    || major != 3
                    || len > MAX_RECORD_BODY
                {
                    self.fail(Outcome::BadRecord);
                    return;
                }
                if len > 0 {
                    // Exactly one record's room: a direction never holds more.
                    dir.record.reserve_exact(len);
                    continue;
                }
            }
            let dir = &mut self.dirs[idx];
            if dir.record.len() < HEADER
                || dir.record.len()
                    < HEADER + usize::from(u16::from_be_bytes([dir.record[3], dir.record[4]]))
            {
                continue;
            }
            let mut record = std::mem::take(&mut dir.record);
            self.record(idx, &mut record, hellos, sink);
            record.clear();
            let dir = &mut self.dirs[idx];
            if !dir.stopped {
                dir.record = record;
            }
        }
    }

    /// One whole record.
    fn record(
        &mut self,
        idx: usize,
        record: &mut [u8],
        hellos: Option<&Hellos>,
        sink: &mut dyn FnMut(&[u8]),
    ) {
        let Some((header, body)) = record.split_first_chunk_mut::<HEADER>() else {
            return;
        };
        let header = *header;
        let kind = header[0];
        let tls13 = self.suite.map_or_else(
            || hellos.is_some_and(|h| h.version == 0x0304),
            |(s, _)| s.tls13,
        );
        match (self.dirs[idx].epoch, kind) {
            (Epoch::Clear, CHANGE_CIPHER_SPEC) if !tls13 => {
                // Without the hellos this is TLS 1.3's compatibility record after a
                // HelloRetryRequest (RFC 8446 §D.4), or the hellos were lost: then the
                // next encrypted record says so.
                if hellos.is_some() {
                    self.start(idx, hellos, Epoch::Application);
                }
                return;
            }
            // TLS 1.3: encrypted from the ServerHello on.
            (Epoch::Clear, APPLICATION_DATA) if tls13 => {
                let started = self.start(idx, hellos, Epoch::Handshake);
                if !started {
                    return;
                }
            }
            (Epoch::Clear, APPLICATION_DATA) => {
                // Encrypted data whose ChangeCipherSpec (or hellos) went unseen.
                self.fail(Outcome::Midstream);
                return;
            }
            (Epoch::Clear, _) => return,
            // TLS 1.3's compatibility ChangeCipherSpec and alerts in clear.
            (_, k) if tls13 && k != APPLICATION_DATA => return,
            (_, CHANGE_CIPHER_SPEC) => {
                // TLS 1.2 renegotiation: new keys this module does not follow.
                self.dirs[idx].stop();
                return;
            }
            _ => {}
        }
        let Some(p) = self.dirs[idx].protection.as_mut() else {
            self.fail(Outcome::Midstream);
            return;
        };
        let Some(plain) = p.open(header, body) else {
            self.fail(Outcome::BadRecord);
            return;
        };
        self.records += 1;
        self.outcome.get_or_insert(Outcome::Decrypted);
        let (kind, content) = if tls13 {
            // The inner plaintext: content, its type, zero padding (RFC 8446 §5.2).
            match plain.iter().rposition(|&b| b != 0) {
                Some(at) => (plain[at], &plain[..at]),
                None => {
                    self.fail(Outcome::BadRecord);
                    return;
                }
            }
        } else {
            (kind, &plain[..])
        };
        match kind {
            APPLICATION_DATA => {
                self.plaintext_bytes += content.len() as u64;
                sink(content);
            }
            HANDSHAKE if tls13 => self.handshake13(idx, content),
            _ => {}
        }
    }

    /// A direction's first encrypted epoch: its keys from the key log. `false`:
    /// decryption ended (the outcome says why).
    fn start(&mut self, idx: usize, hellos: Option<&Hellos>, epoch: Epoch) -> bool {
        let Some(h) = hellos else {
            self.fail(Outcome::Midstream);
            return false;
        };
        let Some(suite) = suite(h.version, h.cipher) else {
            self.fail(Outcome::UnsupportedSuite);
            return false;
        };
        self.suite = Some((suite, h.client_random));
        let Some(secrets) = self.keylog.get(&h.client_random) else {
            self.fail(Outcome::NoKey);
            return false;
        };
        let from_client = idx == 0;
        let protection = if suite.tls13 {
            return self.install13(idx, suite, &secrets, epoch);
        } else {
            let Some(master) = &secrets.master else {
                self.fail(Outcome::NoKey);
                return false;
            };
            Protection::tls12(
                suite,
                master.bytes(),
                &h.client_random,
                &h.server_random,
                from_client,
                h.encrypt_then_mac,
            )
        };
        let Some(p) = protection else {
            self.fail(Outcome::NoKey);
            return false;
        };
        let dir = &mut self.dirs[idx];
        dir.epoch = epoch;
        dir.protection = Some(p);
        true
    }

    /// A TLS 1.3 direction's keys for an epoch, from its logged secret.
    fn install13(&mut self, idx: usize, suite: Suite, secrets: &Secrets, epoch: Epoch) -> bool {
        let secret = match (epoch, idx == 0) {
            (Epoch::Handshake, true) => &secrets.client_handshake,
            (Epoch::Handshake, false) => &secrets.server_handshake,
            (_, true) => &secrets.client_traffic,
            (_, false) => &secrets.server_traffic,
        };
        let Some(secret) = secret
            .as_ref()
            .filter(|s| s.bytes().len() == suite.hash.output_len())
        else {
            self.fail(Outcome::NoKey);
            return false;
        };
        let Some(p) = Protection::tls13(suite, secret.bytes()) else {
            self.fail(Outcome::NoKey);
            return false;
        };
        let dir = &mut self.dirs[idx];
        dir.epoch = epoch;
        dir.protection = Some(p);
        dir.secret = Some(secret.clone());
        true
    }

    /// Decrypted TLS 1.3 handshake bytes: Finished moves the direction to its
    /// application keys, KeyUpdate to the next ones; the server's Certificate is read.
    fn handshake13(&mut self, idx: usize, content: &[u8]) {
        let dir = &mut self.dirs[idx];
        if dir.handshake.len() + content.len() > MAX_HANDSHAKE_PLAINTEXT {
            // A message this large cannot be followed; its Finished would be missed.
            dir.stop();
            return;
        }
        dir.handshake.extend_from_slice(content);
        let pending = std::mem::take(&mut dir.handshake);
        let mut at = 0;
        let (mut finished, mut key_update) = (false, false);
        while let Some(head) = pending.get(at..at + 4) {
            let len =
                (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
            let Some(body) = pending.get(at + 4..at + 4 + len) else {
                break;
            };
            match head[0] {
                11 if idx == 1 && self.certificates.is_empty() => {
                    self.certificates = certificates13(body);
                }
                20 => finished = true,
                24 => key_update = true,
                _ => {}
            }
            at += 4 + len;
        }
        let dir = &mut self.dirs[idx];
        dir.handshake = pending;
        dir.handshake.drain(..at);
        let Some((suite, client_random)) = self.suite else {
            return;
        };
        if finished && dir.epoch == Epoch::Handshake {
            match self.keylog.get(&client_random) {
                Some(s) => {
                    self.install13(idx, suite, &s, Epoch::Application);
                }
                None => self.fail(Outcome::NoKey),
            }
        } else if key_update && dir.epoch == Epoch::Application {
            let next = dir.secret.as_ref().and_then(|s| next_secret(suite.hash, s));
            match next
                .as_ref()
                .and_then(|s| Protection::tls13(suite, s.bytes()))
            {
                Some(p) => {
                    dir.protection = Some(p);
                    dir.secret = next;
                }
                None => dir.stop(),
            }
        }
    }
}

/// A TLS 1.3 Certificate message's chain (RFC 8446 §4.4.2: a request context, then
/// entries of a certificate and its extensions), leaf first, at most
/// [`cert::MAX_CERTS`].
fn certificates13(body: &[u8]) -> Vec<Certificate> {
    let u24 = |b: &[u8]| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
    let mut certs = Vec::new();
    let Some(&ctx) = body.first() else {
        return certs;
    };
    let at = 1 + usize::from(ctx);
    let Some(list) = body
        .get(at..at + 3)
        .map(u24)
        .and_then(|n| body.get(at + 3..at + 3 + n))
    else {
        return certs;
    };
    let mut at = 0;
    while certs.len() < cert::MAX_CERTS {
        let Some(len) = list.get(at..at + 3).map(u24) else {
            break;
        };
        let Some(der) = list.get(at + 3..at + 3 + len) else {
            break;
        };
        at += 3 + len;
        let Some(ext) = list.get(at..at + 2) else {
            break;
        };
        at += 2 + usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        if let Some(c) = cert::parse(der) {
            certs.push(c);
        }
    }
    certs
}

#[cfg(test)]
pub(crate) mod tests;
