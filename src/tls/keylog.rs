//! TLS session secrets from a key log file (`--tls-keylog`), the NSS key log format
//! that curl, Firefox, Chrome, OpenSSL's `-keylogfile` and Python's `ssl` write when
//! `SSLKEYLOGFILE` is set (<https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/>,
//! also draft-ietf-tls-keylogfile): one secret a line, `LABEL <client random hex>
//! <secret hex>`, `#` comments.
//!
//! Read: `CLIENT_RANDOM` (a TLS 1.2 master secret, 48 bytes) and the four TLS 1.3
//! traffic secrets (`CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`,
//! `CLIENT_/SERVER_TRAFFIC_SECRET_0`, 32 or 48 bytes). Other labels (exporter and
//! early secrets, `RSA` pre-master lines) are counted and ignored; lines that do not
//! have the shape are counted as malformed.
//!
//! Secrets are keyed by the ClientHello's random. The store is bounded
//! ([`MAX_ENTRIES`] client randoms, the oldest evicted and counted). Secrets are
//! never logged: their `Debug` prints their length only, and their bytes are
//! overwritten when dropped.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// Client randoms (connections) whose secrets are kept. A TLS 1.3 connection's four
/// secrets cost about 300 bytes here, so the cap holds a key file of about 1 GB
/// in about 300 MB; past it the oldest connection's secrets are dropped.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The longest secret of any suite read (SHA-384's 48 bytes; a TLS 1.2 master
/// secret is 48 bytes too).
const MAX_SECRET: usize = 48;

/// Why a key log cannot be used (the command line says it in one line, exit 2).
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    /// The file cannot be opened or read.
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    /// Anyone on the machine may write it: secrets could be planted.
    #[error("is writable by every user (mode {0:o}): refused; chmod o-w it")]
    WorldWritable(u32),
}

/// One secret's bytes; overwritten when dropped, never printed.
#[derive(Clone)]
pub struct Secret {
    len: u8,
    bytes: [u8; MAX_SECRET],
}

impl Secret {
    /// A secret of 1 to 48 bytes (`None` otherwise).
    pub fn new(b: &[u8]) -> Option<Secret> {
        if b.is_empty() || b.len() > MAX_SECRET {
            return None;
        }
        let mut bytes = [0; MAX_SECRET];
        bytes[..b.len()].copy_from_slice(b);
        Some(Secret {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.len)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
    }
}

/// Overwrites bytes in a way the optimiser does not remove.
pub fn wipe(b: &mut [u8]) {
    for x in b.iter_mut() {
        // SAFETY: `x` is a valid, aligned, exclusive reference.
        unsafe { std::ptr::write_volatile(x, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// What the key log holds for one connection (its client random).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// TLS 1.2 (and earlier) master secret: `CLIENT_RANDOM`.
    pub master: Option<Secret>,
    pub client_handshake: Option<Secret>,
    pub server_handshake: Option<Secret>,
    pub client_traffic: Option<Secret>,
    pub server_traffic: Option<Secret>,
}

/// What reading key log lines found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Secrets stored (a repeated line counts again).
    pub secrets: u64,
    /// Lines with another label (exporter, early-data, `RSA` lines).
    pub ignored: u64,
    /// Lines that are not `LABEL <64 hex digits> <hex secret>`.
    pub malformed: u64,
    /// Connections dropped at [`MAX_ENTRIES`].
    pub evicted: u64,
}

/// Secrets by client random, bounded.
#[derive(Debug, Default)]
pub struct KeyLog {
    map: HashMap<[u8; 32], Secrets>,
    /// Client randoms in the order first seen (the eviction order).
    order: VecDeque<[u8; 32]>,
    cap: usize,
    pub stats: KeyLogStats,
}

impl KeyLog {
    /// An empty store holding at most [`MAX_ENTRIES`] connections.
    pub fn new() -> KeyLog {
        KeyLog::with_capacity(MAX_ENTRIES)
    }

    /// An empty store holding at most `cap` connections.
    pub fn with_capacity(cap: usize) -> KeyLog {
        KeyLog {
            cap: cap.max(1),
            ..KeyLog::default()
        }
    }

    /// Reads a key log file: refused when every user may write it; a file every user
    /// may read is used, with a warning (it holds the keys to the traffic).
    pub fn load(path: &Path) -> Result<KeyLog, KeyLogError> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let mut f = std::fs::File::open(path)?;
        let mode = f.metadata()?.mode();
        if mode & 0o002 != 0 {
            return Err(KeyLogError::WorldWritable(mode & 0o7777));
        }
        if mode & 0o004 != 0 {
            tracing::warn!(
                "Key log {} is readable by every user (mode {:o}): it decrypts the traffic it covers",
                path.display(),
                mode & 0o7777
            );
        }
        let mut text = Vec::new();
        let read = f.read_to_end(&mut text);
        let mut log = KeyLog::new();
        if read.is_ok() {
            log.read(&text);
        }
        wipe(&mut text);
        read?;
        if log.stats.malformed > 0 {
            tracing::warn!(
                "Key log {}: {} lines are not `LABEL <client random> <secret>` and were skipped",
                path.display(),
                log.stats.malformed
            );
        }
        if log.stats.evicted > 0 {
            tracing::warn!(
                "Key log {}: more than {} connections; the secrets of the {} oldest were dropped",
                path.display(),
                log.cap,
                log.stats.evicted
            );
        }
        Ok(log)
    }

    /// Reads key log lines (the file's contents).
    pub fn read(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            self.line(line);
        }
    }

    /// One line.
    fn line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            return;
        }
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            self.stats.malformed += 1;
            return;
        };
        let mut cr = [0u8; 32];
        let mut buf = [0u8; MAX_SECRET];
        let secret_len = secret.len() / 2;
        if !unhex(random, &mut cr) && label != b"RSA" {
            self.stats.malformed += 1;
            return;
        }
        let ok = secret.len() % 2 == 0
            && secret_len <= MAX_SECRET
            && unhex(secret, &mut buf[..secret_len]);
        let secret = ok.then(|| Secret::new(&buf[..secret_len])).flatten();
        wipe(&mut buf);
        let slot: fn(&mut Secrets) -> &mut Option<Secret> = match label {
            b"CLIENT_RANDOM" => |s| &mut s.master,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.client_handshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.server_handshake,
            b"CLIENT_TRAFFIC_SECRET_0" => |s| &mut s.client_traffic,
            b"SERVER_TRAFFIC_SECRET_0" => |s| &mut s.server_traffic,
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        let Some(secret) = secret else {
            self.stats.malformed += 1;
            return;
        };
        let is_master = label == b"CLIENT_RANDOM";
        if (is_master && secret.len != 48) || (!is_master && !matches!(secret.len, 32 | 48)) {
            self.stats.malformed += 1;
            return;
        }
        *slot(self.entry(cr)) = Some(secret);
        self.stats.secrets += 1;
    }

    /// The secrets of a client random, made when new (evicting the oldest at the cap).
    fn entry(&mut self, cr: [u8; 32]) -> &mut Secrets {
        if !self.map.contains_key(&cr) {
            if self.map.len() >= self.cap
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
                self.stats.evicted += 1;
            }
            self.order.push_back(cr);
        }
        self.map.entry(cr).or_default()
    }

    /// The secrets logged for a connection's client random.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.map.get(client_random)
    }

    /// Connections with secrets.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Hex digits into exactly `out.len()` bytes.
fn unhex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != out.len() * 2 {
        return false;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const CR: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    #[test]
    fn lines_of_every_kind_are_read_counted_or_skipped() {
        let master = "ab".repeat(48);
        let s32 = "cd".repeat(32);
        let text = format!(
            "# a comment\n\
             CLIENT_RANDOM {CR} {master}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {s32}\r\n\
             SERVER_TRAFFIC_SECRET_0 {CR} {s32}\n\
             EXPORTER_SECRET {CR} {s32}\n\
             RSA 0011223344556677 {master}\n\
             CLIENT_RANDOM {CR}\n\
             CLIENT_RANDOM zz{} {master}\n\
             CLIENT_RANDOM {CR} {s32}\n\
             \n",
            &CR[2..]
        );
        let mut log = KeyLog::new();
        log.read(text.as_bytes());
        assert_eq!(
            log.stats,
            KeyLogStats {
                secrets: 3,
                ignored: 2,
                malformed: 3,
                evicted: 0
            }
        );
        let s = log.get(&[1; 32]).expect("secrets");
        assert_eq!(s.master.as_ref().unwrap().bytes(), &[0xab; 48]);
        assert_eq!(s.client_handshake.as_ref().unwrap().bytes(), &[0xcd; 32]);
        assert!(s.server_handshake.is_none());
        assert!(s.server_traffic.is_some());
        assert!(log.get(&[2; 32]).is_none());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new(&[0x42; 48]).unwrap();
        let shown = format!(
            "{:?}",
            Secrets {
                master: Some(s),
                ..Default::default()
            }
        );
        assert!(!shown.contains("42") && !shown.contains("66"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn the_store_is_bounded_and_evicts_the_oldest() {
        let mut log = KeyLog::with_capacity(2);
        for i in 1..=3u8 {
            let cr = format!("{i:02x}").repeat(32);
            log.read(format!("CLIENT_RANDOM {cr} {}\n", "00".repeat(48)).as_bytes());
        }
        assert_eq!(log.len(), 2);
        assert_eq!(log.stats.evicted, 1);
        assert!(log.get(&[1; 32]).is_none());
        assert!(log.get(&[3; 32]).is_some());
    }
}
