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
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// Secrets by client random, bounded: what [`KeyLog`] guards.
#[derive(Debug, Default)]
struct Store {
    map: HashMap<[u8; 32], Secrets>,
    /// Client randoms in the order first seen (the eviction order).
    order: VecDeque<[u8; 32]>,
    cap: usize,
    stats: KeyLogStats,
}

/// Secrets by client random, bounded, shared by every worker. Lines may be added
/// while connections are read ([`KeyLog::follow`]: a key file that grows in live
/// capture); [`KeyLog::generation`] says when something was added.
#[derive(Debug, Default)]
pub struct KeyLog {
    store: RwLock<Store>,
    /// Lines read so far (a batch of lines counts once).
    generation: AtomicU64,
    /// A follower adds lines as they are written: a connection whose secrets are
    /// not there yet waits a little for them ([`KEY_WAIT`]).
    following: AtomicBool,
}

/// How long (packet time) a connection whose secrets are not logged yet holds its
/// records, when the key file is followed: a client writes its secrets as the
/// handshake ends, a server or a shipper may take a moment longer.
pub const KEY_WAIT: u64 = 3_000_000_000;

/// The most bytes a connection holds while it waits for its secrets (beyond it, it
/// is read without them).
pub const KEY_WAIT_BYTES: usize = 256 * 1024;

impl KeyLog {
    /// An empty store holding at most [`MAX_ENTRIES`] connections.
    pub fn new() -> KeyLog {
        KeyLog::with_capacity(MAX_ENTRIES)
    }

    /// An empty store holding at most `cap` connections.
    pub fn with_capacity(cap: usize) -> KeyLog {
        KeyLog {
            store: RwLock::new(Store {
                cap: cap.max(1),
                ..Store::default()
            }),
            ..KeyLog::default()
        }
    }

    fn read_store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_store(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a key log file's permissions: refused when every user may write it; a
    /// file every user may read is used, with a warning (it holds the keys to the
    /// traffic).
    fn check(path: &Path, f: &std::fs::File) -> Result<(), KeyLogError> {
        use std::os::unix::fs::MetadataExt;
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
        Ok(())
    }

    /// Reads a key log file (see [`KeyLog::check`] for its permissions).
    pub fn load(path: &Path) -> Result<KeyLog, KeyLogError> {
        let mut f = std::fs::File::open(path)?;
        Self::check(path, &f)?;
        let log = KeyLog::new();
        log.read_to_end(&mut f)?;
        log.warn_stats(path, KeyLogStats::default());
        Ok(log)
    }

    /// Reads what `f` holds up to its end; every byte read is wiped after.
    fn read_to_end(&self, f: &mut impl std::io::Read) -> std::io::Result<u64> {
        let mut text = Vec::new();
        let read = f.read_to_end(&mut text);
        if read.is_ok() {
            self.read(&text);
        }
        wipe(&mut text);
        read.map(|n| n as u64)
    }

    /// Warns once about what reading since `before` skipped or evicted.
    fn warn_stats(&self, path: &Path, before: KeyLogStats) {
        let now = self.stats();
        if now.malformed > 0 && before.malformed == 0 {
            tracing::warn!(
                "Key log {}: {} lines are not `LABEL <client random> <secret>` and were skipped (later ones are counted, not logged)",
                path.display(),
                now.malformed
            );
        }
        if now.evicted > 0 && before.evicted == 0 {
            tracing::warn!(
                "Key log {}: more than {} connections; the secrets of the oldest are dropped",
                path.display(),
                self.read_store().cap,
            );
        }
    }

    /// Reads key log lines (the file's contents).
    pub fn read(&self, text: &[u8]) {
        let mut store = self.write_store();
        for line in text.split(|&b| b == b'\n') {
            store.line(line);
        }
        drop(store);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The secrets logged for a connection's client random (a copy, wiped when
    /// dropped).
    pub fn get(&self, client_random: &[u8; 32]) -> Option<Secrets> {
        self.read_store().map.get(client_random).cloned()
    }

    /// Whether every secret a connection needs is logged: the master secret (TLS
    /// 1.2), or the four traffic secrets (TLS 1.3).
    pub fn has_all(&self, client_random: &[u8; 32], tls13: bool) -> bool {
        self.read_store().map.get(client_random).is_some_and(|s| {
            if tls13 {
                s.client_handshake.is_some()
                    && s.server_handshake.is_some()
                    && s.client_traffic.is_some()
                    && s.server_traffic.is_some()
            } else {
                s.master.is_some()
            }
        })
    }

    /// Changes whenever lines are read.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Says that lines will be added while connections are read ([`KeyLog::follow`]
    /// does): a connection whose secrets are missing waits for them.
    pub fn expect_more(&self) {
        self.following.store(true, Ordering::Relaxed);
    }

    /// Whether a follower adds secrets while connections are read.
    pub fn following(&self) -> bool {
        self.following.load(Ordering::Relaxed)
    }

    /// What reading lines found so far.
    pub fn stats(&self) -> KeyLogStats {
        self.read_store().stats
    }

    /// Connections with secrets.
    pub fn len(&self) -> usize {
        self.read_store().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How often a followed key file is looked at for new lines.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Complete lines of a growing key file: the last, unfinished line waits for the
/// rest (a writer may be in the middle of it).
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Reads what ends with a newline into `log`; keeps the rest.
    fn feed(&mut self, log: &KeyLog, bytes: &[u8]) {
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(bytes);
            if self.partial.len() > MAX_LINE {
                // Not a key log line: dropped, counted as malformed by what follows.
                wipe(&mut self.partial);
                self.partial.clear();
            }
            return;
        };
        if self.partial.is_empty() {
            log.read(&bytes[..end]);
        } else {
            self.partial.extend_from_slice(&bytes[..end]);
            log.read(&self.partial);
            wipe(&mut self.partial);
            self.partial.clear();
        }
        self.partial.extend_from_slice(&bytes[end + 1..]);
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        wipe(&mut self.partial);
    }
}

/// A key log line is at most a label, 64 hex digits and 96 (a 48-byte secret).
const MAX_LINE: usize = 256;

impl KeyLog {
    /// Opens a key file to follow while capturing live: what it holds is read now,
    /// and a thread reads the lines written to it later (every 50 ms for a file,
    /// as they come for a FIFO), so that a server or client writing its secrets as
    /// it runs feeds the sensor. A file that is truncated is read again from its
    /// start; one that is replaced (rotated) is reopened. Connections whose secrets
    /// are not there yet wait for them ([`KEY_WAIT`]).
    pub fn follow(path: &Path) -> Result<std::sync::Arc<KeyLog>, KeyLogError> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let fifo = std::fs::metadata(path)?.file_type().is_fifo();
        // A FIFO opened for reading and writing does not wait for a writer and never
        // reads an end when its writers close it.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(fifo)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        Self::check(path, &f)?;
        let log = std::sync::Arc::new(KeyLog::new());
        log.expect_more();
        let mut lines = Lines::default();
        if !fifo {
            let mut text = Vec::new();
            let read = std::io::Read::read_to_end(&mut f, &mut text);
            lines.feed(&log, &text);
            wipe(&mut text);
            read?;
            log.warn_stats(path, KeyLogStats::default());
        }
        let shared = std::sync::Arc::clone(&log);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("apiwatch-keylog".into())
            .spawn(move || {
                if fifo {
                    follow_fifo(&shared, &path, f, lines)
                } else {
                    follow_file(&shared, &path, f, lines)
                }
            })?;
        Ok(log)
    }
}

fn follow_fifo(log: &KeyLog, path: &Path, mut f: std::fs::File, mut lines: Lines) {
    let mut buf = [0u8; 4096];
    loop {
        let before = log.stats();
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) => std::thread::sleep(FOLLOW_EVERY),
            Ok(n) => lines.feed(log, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(
                    "Key log {}: cannot read: {e}; no more secrets are read from it",
                    path.display()
                );
                break;
            }
        }
        wipe(&mut buf);
        log.warn_stats(path, before);
    }
}

fn follow_file(log: &KeyLog, path: &Path, mut f: std::fs::File, mut lines: Lines) {
    use std::io::{Read, Seek};
    use std::os::unix::fs::MetadataExt;
    let mut at = f.stream_position().unwrap_or(0);
    let mut warned = false;
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let before = log.stats();
        // Replaced (rotated): the new file from its start, once what the old one
        // still had is read.
        let ours = f.metadata().map(|m| (m.dev(), m.ino())).ok();
        let named = std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
        let mut next = None;
        if named.is_some() && named != ours {
            match std::fs::File::open(path) {
                Ok(n) => match KeyLog::check(path, &n) {
                    Ok(()) => next = Some(n),
                    Err(e) if !warned => {
                        warned = true;
                        tracing::warn!("Key log {} was replaced: {e}", path.display());
                    }
                    Err(_) => {}
                },
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(
                        "Key log {} was replaced and cannot be opened: {e}",
                        path.display()
                    );
                }
                Err(_) => {}
            }
        }
        // Truncated: read again from the start.
        if f.metadata().is_ok_and(|m| m.len() < at) {
            lines = Lines::default();
            at = f.seek(std::io::SeekFrom::Start(0)).unwrap_or(0);
        }
        let mut text = Vec::new();
        if let Ok(n) = f.read_to_end(&mut text) {
            at += n as u64;
            lines.feed(log, &text);
        }
        wipe(&mut text);
        if let Some(n) = next {
            f = n;
            at = 0;
            lines = Lines::default();
            warned = false;
        }
        log.warn_stats(path, before);
    }
}

impl Store {
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
        let log = KeyLog::new();
        log.read(text.as_bytes());
        assert_eq!(
            log.stats(),
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
        let log = KeyLog::with_capacity(2);
        for i in 1..=3u8 {
            let cr = format!("{i:02x}").repeat(32);
            log.read(format!("CLIENT_RANDOM {cr} {}\n", "00".repeat(48)).as_bytes());
        }
        assert_eq!(log.len(), 2);
        assert_eq!(log.stats().evicted, 1);
        assert!(log.get(&[1; 32]).is_none());
        assert!(log.get(&[3; 32]).is_some());
    }

    fn line(label: &str, cr: u8, len: usize) -> String {
        format!(
            "{label} {} {}\n",
            format!("{cr:02x}").repeat(32),
            "5a".repeat(len)
        )
    }

    #[test]
    fn a_growing_file_is_read_line_by_line_even_when_a_line_comes_in_two_writes() {
        let log = KeyLog::new();
        let mut lines = Lines::default();
        let text = line("CLIENT_RANDOM", 1, 48) + &line("CLIENT_RANDOM", 2, 48);
        let (a, b) = text.as_bytes().split_at(text.len() - 30);
        lines.feed(&log, a);
        assert!(log.get(&[1; 32]).is_some());
        assert!(log.get(&[2; 32]).is_none(), "half a line waits");
        let g = log.generation();
        lines.feed(&log, b);
        assert!(log.get(&[2; 32]).is_some());
        assert!(log.generation() > g);
        assert_eq!(log.stats().malformed, 0);
        // A "line" that never ends is dropped, not kept.
        lines.feed(&log, &[b'x'; 1000]);
        assert!(lines.partial.is_empty());
    }

    #[test]
    fn the_four_tls13_secrets_or_the_master_secret_make_a_connection_ready() {
        let log = KeyLog::new();
        log.read(line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 3, 32).as_bytes());
        log.read(line("SERVER_HANDSHAKE_TRAFFIC_SECRET", 3, 32).as_bytes());
        log.read(line("CLIENT_TRAFFIC_SECRET_0", 3, 32).as_bytes());
        assert!(!log.has_all(&[3; 32], true));
        log.read(line("SERVER_TRAFFIC_SECRET_0", 3, 32).as_bytes());
        assert!(log.has_all(&[3; 32], true));
        assert!(!log.has_all(&[3; 32], false), "no master secret");
        log.read(line("CLIENT_RANDOM", 4, 48).as_bytes());
        assert!(log.has_all(&[4; 32], false));
    }

    /// Polls for what a follower thread should have read.
    fn eventually(what: &str, ready: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !ready() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "apiwatch-keylog-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_followed_file_is_read_as_it_grows_is_truncated_and_is_replaced() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("file");
        let path = dir.join("keys");
        let mut f = std::fs::File::create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        f.write_all(line("CLIENT_RANDOM", 1, 48).as_bytes())
            .unwrap();
        let log = KeyLog::follow(&path).unwrap();
        assert!(log.following());
        assert!(log.get(&[1; 32]).is_some(), "what is there is read at once");
        f.write_all(line("CLIENT_RANDOM", 2, 48).as_bytes())
            .unwrap();
        eventually("an appended line", || log.get(&[2; 32]).is_some());
        // Truncated (a writer that starts over): read again from the start.
        f.set_len(0).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(line("CLIENT_RANDOM", 3, 48).as_bytes())
            .unwrap();
        eventually("a line after truncation", || log.get(&[3; 32]).is_some());
        // Replaced (rotated): the new file is followed.
        let next = dir.join("keys.new");
        std::fs::write(&next, line("CLIENT_RANDOM", 4, 48)).unwrap();
        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&next, &path).unwrap();
        eventually("a line in the new file", || log.get(&[4; 32]).is_some());
        let mut g = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        g.write_all(line("CLIENT_RANDOM", 5, 48).as_bytes())
            .unwrap();
        eventually("a line appended to the new file", || {
            log.get(&[5; 32]).is_some()
        });
        assert_eq!(log.stats().malformed, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_followed_fifo_is_read_as_lines_come_across_writers() {
        use std::io::Write;
        let dir = temp("fifo");
        let path = dir.join("keys");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let log = KeyLog::follow(&path).unwrap();
        for cr in 1..=2u8 {
            // Each writer opens, writes and closes (as a server restarting would).
            let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            w.write_all(line("CLIENT_RANDOM", cr, 48).as_bytes())
                .unwrap();
            drop(w);
            eventually("a line through the FIFO", || log.get(&[cr; 32]).is_some());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_world_writable_file_is_refused_when_followed_too() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("mode");
        let path = dir.join("keys");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            KeyLog::follow(&path),
            Err(KeyLogError::WorldWritable(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
