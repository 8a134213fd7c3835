//! Beyond one machine (issue #27): a sensor publishes its exchanges to a NATS
//! JetStream stream (`--publish`), detector processes consume it and run stage 2
//! for their share of the clients (`apiwatch detect --from ... --shard K/N`).
//!
//! Design (see docs/distributed.md):
//! - Subjects: `<prefix>.exchanges.<partition>`, the partition a stable hash
//!   (SipHash-2-4, fixed keys) of the client key the sensor's identity settings give,
//!   so one client always lands in one partition; `<prefix>.epochs.<shard>` carries
//!   the detectors' per-epoch population contributions.
//! - Every detector reads the whole exchange stream in order and runs the engine's
//!   global half ([`Engine::route`]) for every exchange, and the per-client half
//!   ([`Engine::judge`]) only for the partitions of its shard. Global alerts
//!   (distributed stuffing, token misuse, posture) are written by shard 1 only.
//! - The population baseline hears from every client: at each epoch (one second of
//!   packet time) each detector publishes what its clients contributed and waits for
//!   the others' before applying them in exchange order, as one process would.

mod detect;
mod merge;
mod publish;
mod wire;

pub use detect::{DetectError, DetectOptions, DetectReport, detect};
pub use publish::{PublishCounters, Publisher};
pub use wire::{
    CLOCK_VERSION, Decoded, Meta, WIRE_VERSION, WireError, decode, encode, encode_clock,
};

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;

/// Defaults of the stream's name and subjects (`--nats-stream`, `--nats-subject`).
pub const DEFAULT_STREAM: &str = "APIWATCH";
pub const DEFAULT_PREFIX: &str = "apiwatch";
/// Partitions a sensor spreads clients over (`--partitions`): many more than
/// detectors, so detectors can be added without moving a client between partitions.
pub const DEFAULT_PARTITIONS: u32 = 64;
/// Exchanges the publisher holds until JetStream stored them: handed over by the
/// packet thread, in flight, or waiting for the server to come back (`-i`: beyond
/// this the newest are dropped and counted; `-r`: the reader waits).
pub const DEFAULT_BUFFER: usize = 65_536;

/// Where the stream lives and how to reach it (shared by sensors and detectors).
/// `Debug` shows the URL masked and no secret.
#[derive(Clone)]
pub struct NatsOptions {
    /// `nats://HOST:PORT` or `tls://HOST:PORT` (several, comma-separated, for a
    /// cluster), as given: it may carry a user and password or a token, so messages
    /// show [`NatsOptions::shown_url`] instead.
    pub url: String,
    pub stream: String,
    pub prefix: String,
    /// `--nats-creds FILE`: a NATS credentials file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// `--nats-nkey FILE`: a file holding the user's NKey seed (`SU...`).
    pub nkey: Option<PathBuf>,
    /// `tls://` and `--nats-tls-*`.
    pub tls: TlsOptions,
    /// What [`NatsOptions::check`] read from the files above, and its warnings.
    checked: Option<Checked>,
}

/// TLS to the NATS server.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `--nats-tls-ca FILE`: PEM certificates trusted to sign the server's
    /// certificate, instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// `--nats-tls-cert FILE` with `--nats-tls-key FILE`: the client certificate
    /// (chain, PEM) and its private key (PEM), for servers that verify clients.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// Secrets read from the option files (never printed: `Debug` shows none of them)
/// and what is worth a warning once logging is up.
#[derive(Clone, Default)]
struct Checked {
    /// The credentials file's text (`--nats-creds`).
    creds: Option<String>,
    /// The user NKey seed (`--nats-nkey`) and its public key.
    seed: Option<(String, String)>,
    /// From the URL's user information: (user, password) or a token.
    user_password: Option<(String, String)>,
    token: Option<String>,
    /// The URL without its user information: what the client is given.
    url: String,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("creds", &self.creds.as_ref().map(|_| "<secret>"))
            .field("nkey", &self.seed.as_ref().map(|(_, public)| public))
            .field("user", &self.user_password.as_ref().map(|(u, _)| u))
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("url", &self.url)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field("url", &self.shown_url())
            .field("stream", &self.stream)
            .field("prefix", &self.prefix)
            .field("creds", &self.creds)
            .field("nkey", &self.nkey)
            .field("tls", &self.tls)
            .field("checked", &self.checked)
            .finish()
    }
}

impl NatsOptions {
    pub fn new(url: String) -> Self {
        NatsOptions {
            url,
            stream: DEFAULT_STREAM.into(),
            prefix: DEFAULT_PREFIX.into(),
            creds: None,
            nkey: None,
            tls: TlsOptions::default(),
            checked: None,
        }
    }

    /// The URL as messages show it: user information (a password, a token) masked.
    pub fn shown_url(&self) -> String {
        self.url
            .split(',')
            .map(|u| match split_userinfo(u) {
                (scheme, Some(_), host) => format!("{scheme}***@{host}"),
                _ => u.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether the connection must be TLS: a `tls://` URL or any `--nats-tls-*`.
    pub fn tls_required(&self) -> bool {
        self.tls.any()
            || self
                .url
                .split(',')
                .any(|u| u.trim().to_ascii_lowercase().starts_with("tls://"))
    }

    /// Reads and checks every file the options name (certificates, keys, seeds,
    /// credentials) and the URL's user information, so that a mistake is one line
    /// and exit 2 when the command line is read, not a failure at the first
    /// connection. Secrets are kept for [`connect`]; warnings are logged there
    /// (logging is not set up yet while the command line is read). No message
    /// carries a secret.
    pub fn check(&mut self) -> Result<(), String> {
        let mut c = Checked::default();
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err("--nats-tls-cert and --nats-tls-key go together: a client certificate needs its private key".into());
        }
        if self.creds.is_some() && self.nkey.is_some() {
            return Err("--nats-creds and --nats-nkey exclude each other: a credentials file already holds the user's NKey seed".into());
        }
        // The URL's user information: the client library ignores it, so it is
        // taken out here and given as a user and password or a token.
        let mut userinfo: Option<&str> = None;
        let mut hosts = Vec::new();
        for u in self.url.split(',') {
            let (scheme, info, host) = split_userinfo(u);
            if let Some(info) = info {
                if userinfo.is_some_and(|i| i != info) {
                    return Err(format!(
                        "{}: the servers of one URL list carry different user information",
                        self.shown_url()
                    ));
                }
                userinfo = Some(info);
            }
            hosts.push(format!("{scheme}{host}"));
        }
        c.url = hosts.join(",");
        if let Some(info) = userinfo {
            if self.creds.is_some() || self.nkey.is_some() {
                return Err(format!(
                    "{}: a user or token in the URL and --nats-creds/--nats-nkey exclude each other: give one way to authenticate",
                    self.shown_url()
                ));
            }
            match info.split_once(':') {
                Some((user, pass)) => {
                    c.user_password = Some((percent_decode(user), percent_decode(pass)))
                }
                None => c.token = Some(percent_decode(info)),
            }
            c.warnings.push(format!(
                "{}: the URL carries a password or token, which other users of this machine can read in the process list: prefer --nats-nkey or --nats-creds",
                self.shown_url()
            ));
        }
        if let Some(path) = &self.tls.ca {
            let pem = read_file("--nats-tls-ca", path)?;
            let certs = pem_certificates("--nats-tls-ca", path, &pem)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!(
                        "--nats-tls-ca {}: a certificate in it cannot be a trust anchor: {e}",
                        path.display()
                    )
                })?;
            }
        }
        if let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) {
            let certs = pem_certificates(
                "--nats-tls-cert",
                cert,
                &read_file("--nats-tls-cert", cert)?,
            )?;
            let pem = read_secret("--nats-tls-key", key, &mut c.warnings)?;
            use rustls::pki_types::pem::PemObject;
            let der =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
                    format!(
                        "--nats-tls-key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it",
                        key.display()
                    )
                })?;
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_client_auth_cert(certs, der)
            .map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                        "the private key is not the certificate's".to_string()
                    }
                    e => e.to_string(),
                };
                format!(
                    "--nats-tls-cert {} with --nats-tls-key {}: {why}",
                    cert.display(),
                    key.display()
                )
            })?;
        }
        if let Some(path) = &self.nkey {
            let text = read_secret("--nats-nkey", path, &mut c.warnings)?;
            c.seed = Some(user_seed(path, &text)?);
        }
        if let Some(path) = &self.creds {
            let text = read_secret("--nats-creds", path, &mut c.warnings)?;
            async_nats::ConnectOptions::new()
                .credentials(&text)
                .map_err(|e| format!("--nats-creds {}: {e}", path.display()))?;
            c.creds = Some(text);
        }
        self.checked = Some(c);
        Ok(())
    }
}

/// `scheme://`, the user information if any, and the rest of one server's URL.
fn split_userinfo(u: &str) -> (&str, Option<&str>, &str) {
    let (scheme, rest) = match u.find("://") {
        Some(i) => u.split_at(i + 3),
        None => ("", u),
    };
    match rest.rfind('@') {
        Some(i) => (scheme, Some(&rest[..i]), &rest[i + 1..]),
        None => (scheme, None, rest),
    }
}

/// `%XX` escapes of URL user information decoded (others left as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// A file holding a secret (a private key, a seed): refused when every user of the
/// machine may read it (as OpenSSH refuses such a key), a warning when its group
/// may (the `root:apiwatch 0640` layout of a service is common and fine, a shared
/// group is not).
fn read_secret(flag: &str, path: &Path, warnings: &mut Vec<String>) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            return Err(format!(
                "{flag} {}: holds a secret but every user may read it (mode {mode:04o}): chmod 600 (or 640 with a group of its own)",
                path.display()
            ));
        }
        if mode & 0o040 != 0 {
            warnings.push(format!(
                "{flag} {}: holds a secret and its group may read it (mode {mode:04o}): keep that group to apiwatch's own user",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (&meta, &warnings);
    let bytes = read_file(flag, path)?;
    String::from_utf8(bytes).map_err(|_| format!("{flag} {}: not a text file", path.display()))
}

/// The certificates of a PEM file (at least one).
fn pem_certificates(
    flag: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{flag} {}: not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// The user seed of an `--nats-nkey` file (its one line starting with `SU`, as
/// `nk -gen user` writes it or between the `-----BEGIN USER NKEY SEED-----` lines),
/// with its public key. The seed itself is never in a message.
fn user_seed(path: &Path, text: &str) -> Result<(String, String), String> {
    let mut seeds = text.lines().map(str::trim).filter(|l| l.starts_with("SU"));
    let (Some(seed), None) = (seeds.next(), seeds.next()) else {
        return Err(format!(
            "--nats-nkey {}: no user NKey seed in it (one line starting with SU, as 'nk -gen user' writes it)",
            path.display()
        ));
    };
    let pair = nkeys::KeyPair::from_seed(seed).map_err(|e| {
        format!(
            "--nats-nkey {}: not a valid NKey seed ({})",
            path.display(),
            e.kind()
        )
    })?;
    Ok((seed.to_string(), pair.public_key()))
}

/// `--publish`: the sensor's side.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub nats: NatsOptions,
    pub partitions: u32,
    /// Exchanges held until stored, while the server is slow or away.
    pub buffer: usize,
    /// Wait for room instead of dropping (replays: nothing is lost to a slow server).
    pub block: bool,
}

/// The partition of a client key: stable across processes, builds and restarts
/// (SipHash-2-4 with fixed keys over the key as alerts write it).
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let mut h = siphasher::sip::SipHasher24::new_with_keys(0x6170_6977_6174_6368, 0x6e61_7473);
    h.write(key.as_bytes());
    (h.finish() % u64::from(partitions.max(1))) as u32
}

/// Which shard of `n` owns `partition` (shards numbered from 1).
pub fn shard_of(partition: u32, n: u32) -> u32 {
    partition % n.max(1) + 1
}

/// A `--shard K/N` value.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--shard: '{s}' is not K/N with 1 <= K <= N <= 1024 (e.g. 1/2)");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n || n > 1024 {
        return Err(bad());
    }
    Ok((k, n))
}

pub(crate) async fn connect(o: &NatsOptions) -> Result<async_nats::Client, String> {
    connect_with(o, async_nats::ConnectOptions::new()).await
}

/// [`connect`] from options the caller set up (the sensor's publisher sets how the
/// client behaves when the connection is lost).
pub(crate) async fn connect_with(
    o: &NatsOptions,
    opts: async_nats::ConnectOptions,
) -> Result<async_nats::Client, String> {
    let c = match &o.checked {
        Some(c) => c.clone(),
        None => {
            let mut o = o.clone();
            o.check()?;
            o.checked.unwrap_or_default()
        }
    };
    for w in &c.warnings {
        tracing::warn!("{w}");
    }
    let mut opts = opts
        .name("apiwatch")
        .connection_timeout(Duration::from_secs(5));
    if let Some(text) = &c.creds {
        opts = opts
            .credentials(text)
            .map_err(|e| format!("--nats-creds: {e}"))?;
    }
    if let Some((seed, public)) = &c.seed {
        tracing::info!("NATS: authenticating as the NKey user {public}");
        opts = opts.nkey(seed.clone());
    }
    if let Some((user, password)) = &c.user_password {
        opts = opts.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &c.token {
        opts = opts.token(token.clone());
    }
    if o.tls_required() {
        opts = opts.require_tls(true);
    }
    if let Some(ca) = &o.tls.ca {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&o.tls.cert, &o.tls.key) {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    // The client logs the refusal it also returns (an authorization violation is
    // both): the returned error is reported, as one line, and the client's own
    // events stay out while it connects. What it logs afterwards (the tasks it
    // spawns: reconnects, slow consumers) goes to the log as before.
    use tracing::instrument::WithSubscriber;
    opts.connect(c.url.as_str())
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await
        .map_err(|e| {
            format!(
                "{}: cannot connect to NATS: {}",
                o.shown_url(),
                explain(&e, o.tls_required())
            )
        })
}

/// A connection error with the likely cause where the client's words do not say it.
fn explain(e: &async_nats::ConnectError, tls: bool) -> String {
    use async_nats::ConnectErrorKind as K;
    let text = e.to_string();
    let hint = match e.kind() {
        K::AuthorizationViolation => {
            " (the server refused these credentials: check --nats-nkey, --nats-creds or the URL's user)"
        }
        // rustls's words, which the client reports as I/O errors.
        _ if text.contains("invalid peer certificate") => {
            " (the server's certificate does not verify: check --nats-tls-ca against the CA that signed it, and the URL's host against its names)"
        }
        _ if text.contains("received fatal alert") => {
            " (the server ended the TLS handshake: a server that verifies clients needs --nats-tls-cert and --nats-tls-key, signed by a CA it trusts)"
        }
        _ if text.contains("InvalidContentType") || text.contains("corrupt message") => {
            " (is the server speaking TLS?)"
        }
        _ if tls
            && ["reset by peer", "unexpected end of file", "Broken pipe"]
                .iter()
                .any(|w| text.contains(w)) =>
        {
            " (the server closed the TLS connection: a server that verifies clients needs --nats-tls-cert and --nats-tls-key, signed by a CA it trusts)"
        }
        K::Tls => " (check --nats-tls-ca, --nats-tls-cert and --nats-tls-key)",
        _ => "",
    };
    format!("{text}{hint}")
}

/// The stream, created when missing: limits retention (what the server's limits
/// allow is kept; size it with `nats stream edit`, see docs/distributed.md).
pub(crate) async fn stream(
    js: &jetstream::Context,
    o: &NatsOptions,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: o.stream.clone(),
        subjects: vec![
            format!("{}.exchanges.>", o.prefix),
            format!("{}.epochs.>", o.prefix),
        ],
        ..Default::default()
    })
    .await
    .map_err(|e| {
        format!(
            "{}: cannot create or open stream {}: {e}",
            o.shown_url(),
            o.stream
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_shards_cover_them() {
        assert_eq!(
            partition_of("ip:10.0.0.1", 64),
            partition_of("ip:10.0.0.1", 64)
        );
        let p: std::collections::BTreeSet<u32> = (0..=255)
            .map(|i| partition_of(&format!("ip:10.0.0.{i}"), 8))
            .collect();
        assert_eq!(p.len(), 8);
        for part in 0..64 {
            let owners: Vec<u32> = (1..=3).filter(|k| shard_of(part, 3) == *k).collect();
            assert_eq!(owners.len(), 1);
        }
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("0/2").is_err() && parse_shard("3/2").is_err());
    }

    #[test]
    fn url_secrets_are_masked_and_taken_out_of_the_url() {
        let mut o = NatsOptions::new("nats://bob:s%40cret@a:4222,tls://bob:s%40cret@b:4222".into());
        assert_eq!(o.shown_url(), "nats://***@a:4222,tls://***@b:4222");
        assert!(o.tls_required());
        o.check().unwrap();
        let c = o.checked.as_ref().unwrap();
        assert_eq!(c.url, "nats://a:4222,tls://b:4222");
        assert_eq!(c.user_password, Some(("bob".into(), "s@cret".into())));
        assert!(!format!("{o:?}").contains("cret"));
        let mut o = NatsOptions::new("tok%25en@host:4222".into());
        o.check().unwrap();
        assert_eq!(o.checked.as_ref().unwrap().token.as_deref(), Some("tok%en"));
        assert_eq!(o.checked.as_ref().unwrap().url, "host:4222");
        assert!(!o.tls_required());
        let mut o = NatsOptions::new("nats://a@h:1,nats://b@h:2".into());
        assert!(o.check().is_err());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn user_seeds_are_found_checked_and_never_shown() {
        let pair = nkeys::KeyPair::new_user();
        let seed = pair.seed().unwrap();
        let p = Path::new("f");
        let decorated =
            format!("-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n");
        assert_eq!(user_seed(p, &decorated).unwrap().1, pair.public_key());
        assert_eq!(user_seed(p, &format!("  {seed}  ")).unwrap().0, seed);
        // One character of the key changed (never to itself: a seed ending in `A`
        // made this test pass by chance one run in 32): its checksum no longer holds.
        let mid = seed.len() / 2;
        let other = if &seed[mid..=mid] == "A" { "B" } else { "A" };
        let broken = format!("{}{other}{}", &seed[..mid], &seed[mid + 1..]);
        let e = user_seed(p, &broken).unwrap_err();
        assert!(!e.contains(&broken[..10]), "{e}");
        assert!(user_seed(p, &format!("{seed}\n{seed}")).is_err());
        let account = nkeys::KeyPair::new_account().seed().unwrap();
        assert!(user_seed(p, &account).is_err());
        let o = NatsOptions {
            checked: Some(Checked {
                seed: Some((seed.clone(), pair.public_key())),
                creds: Some("creds text".into()),
                ..Default::default()
            }),
            ..NatsOptions::new("nats://h:1".into())
        };
        let shown = format!("{o:?}");
        assert!(
            !shown.contains(&seed) && !shown.contains("creds text"),
            "{shown}"
        );
    }
}
