//! TLS 1.2 AES-CBC records (RFC 5246 §6.2.3.2: an explicit IV, then CBC of content,
//! MAC and padding; RFC 7366 encrypt-then-MAC when the ServerHello negotiated it, as
//! OpenSSL does by default): RustCrypto's `aes` and `cbc` (ring has no CBC), ring's
//! HMAC for the MAC. The MAC is compared plainly: a passive reader answers nobody, so
//! there is no padding oracle to close.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
use ring::hmac;

use crate::tls::keylog::wipe;

const BLOCK: usize = 16;

/// A CBC suite's MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mac {
    Sha1,
    Sha256,
    Sha384,
}

impl Mac {
    /// Its output and key length.
    pub fn output_len(self) -> usize {
        match self {
            Mac::Sha1 => 20,
            Mac::Sha256 => 32,
            Mac::Sha384 => 48,
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Mac::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Mac::Sha256 => hmac::HMAC_SHA256,
            Mac::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

/// An AES key (wiped when dropped).
enum Key {
    Aes128([u8; 16]),
    Aes256([u8; 32]),
}

impl Drop for Key {
    fn drop(&mut self) {
        match self {
            Key::Aes128(k) => wipe(k),
            Key::Aes256(k) => wipe(k),
        }
    }
}

/// One direction's CBC record protection.
pub struct Cbc {
    key: Key,
    mac: hmac::Key,
    mac_len: usize,
    seq: u64,
    encrypt_then_mac: bool,
}

impl Cbc {
    /// From the key block's write key and MAC key (`None`: not an AES key length).
    pub fn new(key: &[u8], mac: Mac, mac_key: &[u8], encrypt_then_mac: bool) -> Option<Cbc> {
        let key = match key.len() {
            16 => Key::Aes128(key.try_into().ok()?),
            32 => Key::Aes256(key.try_into().ok()?),
            _ => return None,
        };
        Some(Cbc {
            key,
            mac: hmac::Key::new(mac.algorithm(), mac_key),
            mac_len: mac.output_len(),
            seq: 0,
            encrypt_then_mac,
        })
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Option<()> {
        match &self.key {
            Key::Aes128(k) => cbc::Decryptor::<aes::Aes128>::new_from_slices(k, iv)
                .ok()?
                .decrypt_padded_mut::<NoPadding>(data)
                .ok()?,
            Key::Aes256(k) => cbc::Decryptor::<aes::Aes256>::new_from_slices(k, iv)
                .ok()?
                .decrypt_padded_mut::<NoPadding>(data)
                .ok()?,
        };
        Some(())
    }

    /// HMAC(seq_num + type + version + length + data) (RFC 5246 §6.2.3.1).
    fn mac(&self, header: &[u8; 5], data: &[u8]) -> hmac::Tag {
        let mut c = hmac::Context::with_key(&self.mac);
        c.update(&self.seq.to_be_bytes());
        c.update(&header[..3]);
        c.update(&(data.len() as u16).to_be_bytes());
        c.update(data);
        c.sign()
    }

    /// Deciphers `ct` in place with the IV before it and strips the padding: the
    /// length of what is left. `None`: not whole blocks or a malformed padding.
    fn decipher(&self, iv: &[u8], ct: &mut [u8]) -> Option<usize> {
        if ct.is_empty() || !ct.len().is_multiple_of(BLOCK) {
            return None;
        }
        self.decrypt(iv, ct)?;
        let pad = usize::from(*ct.last()?);
        let n = ct.len().checked_sub(pad + 1)?;
        ct[n..ct.len() - 1]
            .iter()
            .all(|&b| usize::from(b) == pad)
            .then_some(n)
    }

    /// Opens one record in place: its content. `None`: it does not authenticate.
    pub fn open<'a>(&mut self, header: [u8; 5], body: &'a mut [u8]) -> Option<&'a mut [u8]> {
        let ml = self.mac_len;
        let content = if self.encrypt_then_mac {
            let split = body.len().checked_sub(ml)?;
            let (sealed, tag) = body.split_at_mut(split);
            if self.mac(&header, sealed).as_ref() != &tag[..] {
                return None;
            }
            let (iv, ct) = sealed.split_at_mut_checked(BLOCK)?;
            let n = self.decipher(iv, ct)?;
            &mut ct[..n]
        } else {
            let (iv, ct) = body.split_at_mut_checked(BLOCK)?;
            let n = self.decipher(iv, ct)?.checked_sub(ml)?;
            let (content, rest) = ct.split_at_mut(n);
            if self.mac(&header, content).as_ref() != &rest[..ml] {
                return None;
            }
            content
        };
        self.seq = self.seq.wrapping_add(1);
        Some(content)
    }
}
