//! `--web.config.file`: TLS, client certificates, response headers, basic
//! authentication and a rate limit for the metrics endpoint, in the Prometheus
//! exporter-toolkit format, every key of its schema:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # or `cert:` with the PEM inline
//!   key_file: server.key           # or `key:`
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.pem         # or `client_ca:`
//!   client_allowed_sans: [scraper.example.net]
//!   min_version: TLS12             # TLS10..TLS13
//!   max_version: TLS13
//!   cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
//!   curve_preferences: [X25519, CurveP256]
//!   prefer_server_cipher_suites: true
//! http_server_config:
//!   http2: true
//!   headers: {X-Frame-Options: deny}
//! rate_limit: {interval: 1s, burst: 10}
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hash
//! ```
//!
//! The file is read strictly (an unknown or repeated key is an error naming it) and
//! checked in exporter-toolkit's order, so a file it rejects is rejected here with
//! the same reason. Relative paths are relative to the file. [`WebSource`] re-reads
//! the file, and the certificate, key and CA files it names, whenever one of them
//! changes, so certificates rotate without a restart.
//!
//! Where rustls cannot do what Go's TLS stack does, the file still loads and the
//! difference is a warning: CBC cipher suites and the P-521 curve are not offered
//! (rustls has neither), and TLS 1.0/1.1 are never spoken.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::Deserialize;

/// What the metrics server enforces.
#[derive(Clone, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name and bcrypt hash, sorted by name.
    pub users: Vec<(String, String)>,
    /// Extra response headers (only the security headers exporter-toolkit allows).
    pub headers: Vec<(String, String)>,
    /// Requests allowed: one per `interval`, bursts of `burst`.
    pub rate_limit: Option<(Duration, u32)>,
    /// Differences from Go's TLS stack, to log once.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field(
                "users",
                &self.users.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field("headers", &self.headers)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct File {
    tls_server_config: TlsFile,
    http_server_config: HttpFile,
    rate_limit: RateFile,
    #[serde(deserialize_with = "unique_keys")]
    basic_auth_users: BTreeMap<String, String>,
}

/// A map whose keys appear once, as Go's strict YAML reading demands.
fn unique_keys<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of names to strings")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<String, String>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!(
                        "key {k:?} already set in map"
                    )));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TlsFile {
    cert: String,
    key: String,
    client_ca: String,
    cert_file: String,
    key_file: String,
    client_auth_type: String,
    client_ca_file: String,
    cipher_suites: Vec<String>,
    curve_preferences: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpFile {
    http2: bool,
    #[serde(deserialize_with = "unique_keys")]
    headers: BTreeMap<String, String>,
}

impl Default for HttpFile {
    fn default() -> Self {
        HttpFile {
            http2: true,
            headers: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RateFile {
    burst: u32,
    interval: GoDuration,
}

/// A Go `time.Duration` as YAML gives it: an integer of nanoseconds or "1m30s".
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum GoDuration {
    #[default]
    Zero,
    Nanos(u64),
    Text(String),
}

impl GoDuration {
    fn get(&self) -> Result<Duration, String> {
        match self {
            GoDuration::Zero => Ok(Duration::ZERO),
            GoDuration::Nanos(n) => Ok(Duration::from_nanos(*n)),
            GoDuration::Text(t) => parse_go_duration(t),
        }
    }
}

/// Go's `time.ParseDuration`: decimal numbers with units ns, us, µs, ms, s, m, h.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration \"{text}\"");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Response headers exporter-toolkit lets a file set, with their allowed values
/// (none listed: any value).
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Go's secure TLS 1.2 suites by name; `None` where rustls has no such suite (CBC).
fn tls12_suite(name: &str) -> Option<Option<rustls::SupportedCipherSuite>> {
    use ring::cipher_suite as cs;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => Some(cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => Some(cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => Some(cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => Some(cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            Some(cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            Some(cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
        // TLS 1.3 suites: Go accepts the names and ignores them (TLS 1.3 suites are
        // not configurable there); so does this.
        | "TLS_AES_128_GCM_SHA256"
        | "TLS_AES_256_GCM_SHA384"
        | "TLS_CHACHA20_POLY1305_SHA256" => None,
        _ => return None,
    })
}

fn tls_version(name: &str) -> Result<u16, String> {
    match name {
        "TLS10" => Ok(0x0301),
        "TLS11" => Ok(0x0302),
        "TLS12" => Ok(0x0303),
        "TLS13" => Ok(0x0304),
        _ => Err(format!("unknown TLS version: {name}")),
    }
}

/// Where the client-certificate policy comes from.
#[derive(Clone, Copy, PartialEq, Debug)]
enum ClientAuth {
    None,
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

impl WebConfig {
    /// Reads and checks the file; errors name the file and the reason.
    pub fn load(path: &str) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: cannot read web configuration: {e}"))?;
        let dir = Path::new(path).parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir).map_err(|e| format!("{path}: {e}"))
    }

    fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
        let file: File = if is_empty_document(text) {
            File::default()
        } else {
            serde_norway::from_str(text).map_err(|e| format!("yaml: {e}"))?
        };
        let mut warnings = Vec::new();
        for (k, v) in &file.http_server_config.headers {
            let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(h, _)| h == k) else {
                return Err(format!("HTTP header {k:?} can not be configured"));
            };
            if !allowed.is_empty() && !allowed.contains(&v.as_str()) {
                return Err(format!(
                    "invalid value for {k}. Expected one of: {allowed:?}, but got: {v:?}"
                ));
            }
        }
        let t = &file.tls_server_config;
        // Names are checked as the YAML is decoded, as Go does, whether TLS is on or not.
        let mut suites = Vec::new();
        for name in &t.cipher_suites {
            match tls12_suite(name) {
                Some(Some(s)) => suites.push(s),
                Some(None) if name.contains("_CBC_") => warnings.push(format!(
                    "tls_server_config.cipher_suites: {name} is not offered (rustls has no CBC suites)"
                )),
                Some(None) => {}
                None => return Err(format!("unknown cipher: {name}")),
            }
        }
        let mut groups = Vec::new();
        for name in &t.curve_preferences {
            match name.as_str() {
                "X25519" => groups.push(ring::kx_group::X25519),
                "CurveP256" => groups.push(ring::kx_group::SECP256R1),
                "CurveP384" => groups.push(ring::kx_group::SECP384R1),
                "CurveP521" => warnings.push(
                    "tls_server_config.curve_preferences: CurveP521 is not offered (rustls has no P-521)"
                        .to_string(),
                ),
                _ => return Err(format!("unknown curve: {name}")),
            }
        }
        let min = tls_version(t.min_version.as_deref().unwrap_or("TLS12"))?;
        let max = tls_version(t.max_version.as_deref().unwrap_or("TLS13"))?;
        for (user, hash) in &file.basic_auth_users {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("basic_auth_users.{user}: not a bcrypt hash ({e})"))?;
        }
        let rate_limit = match file.rate_limit.interval.get()? {
            d if d.is_zero() => None,
            d => Some((d, file.rate_limit.burst)),
        };
        let tls = if tls_enabled(t) {
            Some(Arc::new(server_config(
                t,
                dir,
                Tuning {
                    suites,
                    groups,
                    min,
                    max,
                    http2: file.http_server_config.http2,
                },
                &mut warnings,
            )?))
        } else {
            None
        };
        Ok(WebConfig {
            tls,
            users: file.basic_auth_users.into_iter().collect(),
            headers: file.http_server_config.headers.into_iter().collect(),
            rate_limit,
            warnings,
        })
    }

    /// The files this configuration reads (itself aside): watched for changes.
    fn referenced_files(text: &str, dir: &Path) -> Vec<PathBuf> {
        let Ok(file) = serde_norway::from_str::<File>(text) else {
            return Vec::new();
        };
        let t = file.tls_server_config;
        [t.cert_file, t.key_file, t.client_ca_file]
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| dir.join(p))
            .collect()
    }
}

/// An empty file, or one of comments and document markers only.
fn is_empty_document(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

fn tls_enabled(t: &TlsFile) -> bool {
    [
        &t.cert_file,
        &t.cert,
        &t.key_file,
        &t.key,
        &t.client_ca_file,
        &t.client_ca,
        &t.client_auth_type,
    ]
    .iter()
    .any(|s| !s.is_empty())
}

struct Tuning {
    suites: Vec<rustls::SupportedCipherSuite>,
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
    min: u16,
    max: u16,
    http2: bool,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("failed to read {what} ({}): {e}", path.display()))
}

fn server_config(
    t: &TlsFile,
    dir: &Path,
    tune: Tuning,
    warnings: &mut Vec<String>,
) -> Result<rustls::ServerConfig, String> {
    if t.cert_file.is_empty() && t.cert.is_empty() {
        return Err("missing one of cert or cert_file".into());
    }
    if t.key_file.is_empty() && t.key.is_empty() {
        return Err("missing one of key or key_file".into());
    }
    let cert_pem = if t.cert_file.is_empty() {
        t.cert.as_bytes().to_vec()
    } else {
        read(&dir.join(&t.cert_file), "cert_file")?
    };
    let key_pem = if t.key_file.is_empty() {
        t.key.as_bytes().to_vec()
    } else {
        read(&dir.join(&t.key_file), "key_file")?
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("failed to load X509KeyPair: {e}"))?;
    if certs.is_empty() {
        return Err("failed to load X509KeyPair: no certificate in the PEM data".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("failed to load X509KeyPair: {e}"))?;
    let ca_pem = if !t.client_ca_file.is_empty() {
        Some(read(&dir.join(&t.client_ca_file), "client_ca_file")?)
    } else if !t.client_ca.is_empty() {
        Some(t.client_ca.as_bytes().to_vec())
    } else {
        None
    };
    let auth = match t.client_auth_type.as_str() {
        "" | "NoClientCert" => ClientAuth::None,
        "RequestClientCert" => ClientAuth::Request,
        "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAny,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        other => return Err(format!("invalid ClientAuth: {other}")),
    };
    if ca_pem.is_some() && auth == ClientAuth::None {
        return Err("client CA's have been configured without a Client Auth Policy".into());
    }
    // Go's HTTP/2 server refuses a TLS 1.2 suite list without the suite HTTP/2 requires.
    if tune.http2
        && !t.cipher_suites.is_empty()
        && tune.min < 0x0304
        && !t.cipher_suites.iter().any(|s| {
            s == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
                || s == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        })
    {
        return Err("http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)".into());
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if tune.min <= 0x0304 && tune.max >= 0x0304 {
        versions.push(&rustls::version::TLS13);
    }
    if tune.min <= 0x0303 && tune.max >= 0x0303 {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        return Err("no supported versions satisfy MinVersion and MaxVersion (this build speaks TLS 1.2 and 1.3)".into());
    }
    if tune.min < 0x0303 {
        warnings.push("tls_server_config.min_version: TLS 1.0 and 1.1 are never spoken; the minimum is TLS 1.2".into());
    }
    let mut provider = ring::default_provider();
    if !tune.suites.is_empty() {
        provider
            .cipher_suites
            .retain(|s| s.version() == &rustls::version::TLS13);
        provider.cipher_suites.extend(tune.suites);
    } else if !t.cipher_suites.is_empty() && tune.max < 0x0304 {
        return Err("tls_server_config.cipher_suites: none of the listed suites is available for TLS 1.2 in this build".into());
    }
    if !tune.groups.is_empty() {
        provider.kx_groups = tune.groups;
    }
    let provider = Arc::new(provider);
    let inner = client_verifier(auth, ca_pem.as_deref(), &provider)?;
    let verifier: Arc<dyn ClientCertVerifier> = Arc::new(ClientPolicy {
        inner,
        // Go trusts a client certificate that is itself in the CA pool (a self-signed
        // one, even marked as a CA), which WebPKI refuses as an end entity.
        pinned: ca_pem
            .as_deref()
            .map(|p| CertificateDer::pem_slice_iter(p).flatten().collect())
            .unwrap_or_default(),
        allowed_sans: t.client_allowed_sans.clone(),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("failed to load X509KeyPair: {e}"))?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    cfg.alpn_protocols = if tune.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

/// The system's CA bundle, which Go verifies client certificates against when no
/// client CA is configured.
const SYSTEM_CAS: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

fn client_verifier(
    auth: ClientAuth,
    ca_pem: Option<&[u8]>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    match auth {
        ClientAuth::None => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::Request | ClientAuth::RequireAny => Ok(Arc::new(AnyClientCert {
            mandatory: auth == ClientAuth::RequireAny,
            provider: provider.clone(),
        })),
        ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify => {
            let mut roots = RootCertStore::empty();
            let pem = match ca_pem {
                Some(p) => p.to_vec(),
                None => SYSTEM_CAS
                    .iter()
                    .find_map(|p| std::fs::read(p).ok())
                    .unwrap_or_default(),
            };
            for c in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(
                    "client_auth_type verifies client certificates, but no client CA certificate was found (set client_ca_file)"
                        .into(),
                );
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if auth == ClientAuth::VerifyIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build().map_err(|e| format!("client CA: {e}"))
        }
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: a certificate is asked for (and
/// required), its handshake signature checked, its chain not.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The configured verification, plus what Go adds: a certificate that is itself in
/// the CA pool is trusted while it is valid, and with `client_allowed_sans` the
/// certificate must name one of them (DNS name, e-mail, IP address or URI).
#[derive(Debug)]
struct ClientPolicy {
    inner: Arc<dyn ClientCertVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    allowed_sans: Option<Vec<String>>,
}

/// Whether `der` is inside its validity period at `now`.
fn currently_valid(der: &[u8], now: UnixTime) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
        let t = now.as_secs() as i64;
        c.validity().not_before.timestamp() <= t && t <= c.validity().not_after.timestamp()
    })
}

/// Subject alternative names as Go prints them.
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some(s.to_string())
            }
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl ClientCertVerifier for ClientPolicy {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(ok) => ok,
            Err(_)
                if self.pinned.iter().any(|p| p == end_entity)
                    && currently_valid(end_entity, now) =>
            {
                ClientCertVerified::assertion()
            }
            Err(e) => return Err(e),
        };
        let Some(allowed) = &self.allowed_sans else {
            return Ok(ok);
        };
        if subject_alt_names(end_entity)
            .iter()
            .any(|s| allowed.contains(s))
        {
            Ok(ok)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The web configuration as it is now: the file (and the certificate, key and CA
/// files it names) is checked for changes at most once a second, and re-read when
/// one changed. A file that no longer loads fails closed (no TLS handshake, 500 to
/// requests) until it is fixed, as exporter-toolkit does; the reason is logged once
/// per change.
pub struct WebSource {
    path: Option<PathBuf>,
    state: Mutex<SourceState>,
}

struct SourceState {
    checked: Option<std::time::Instant>,
    stamp: Vec<Stamp>,
    current: Result<Arc<WebConfig>, String>,
}

type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

impl WebSource {
    /// No file: plain HTTP, no authentication.
    pub fn none() -> Self {
        WebSource {
            path: None,
            state: Mutex::new(SourceState {
                checked: None,
                stamp: Vec::new(),
                current: Ok(Arc::new(WebConfig::default())),
            }),
        }
    }

    /// Loads `path` now (an error here is a usage error for the caller).
    pub fn load(path: &str) -> Result<(Self, Arc<WebConfig>), String> {
        let cfg = Arc::new(WebConfig::load(path)?);
        let p = PathBuf::from(path);
        let src = WebSource {
            state: Mutex::new(SourceState {
                checked: Some(std::time::Instant::now()),
                stamp: Self::stamps(&p),
                current: Ok(cfg.clone()),
            }),
            path: Some(p),
        };
        Ok((src, cfg))
    }

    fn stamps(path: &Path) -> Vec<Stamp> {
        let mut v = vec![stamp(path)];
        if let Ok(text) = std::fs::read_to_string(path) {
            let dir = path.parent().unwrap_or(Path::new("."));
            v.extend(
                WebConfig::referenced_files(&text, dir)
                    .iter()
                    .map(|p| stamp(p)),
            );
        }
        v
    }

    /// The configuration to apply to the next connection or request.
    pub fn current(&self) -> Result<Arc<WebConfig>, String> {
        let Some(path) = &self.path else {
            return self
                .state
                .lock()
                .map_err(|_| "web configuration lock poisoned".to_string())?
                .current
                .clone();
        };
        let mut st = self
            .state
            .lock()
            .map_err(|_| "web configuration lock poisoned".to_string())?;
        let now = std::time::Instant::now();
        if st
            .checked
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return st.current.clone();
        }
        st.checked = Some(now);
        let stamps = Self::stamps(path);
        if stamps != st.stamp {
            st.stamp = stamps;
            st.current = WebConfig::load(&path.to_string_lossy()).map(Arc::new);
            match &st.current {
                Ok(c) => {
                    tracing::info!(file = %path.display(), "web configuration reloaded");
                    for w in &c.warnings {
                        tracing::warn!("{w}");
                    }
                }
                Err(e) => {
                    tracing::error!("{e}; the metrics endpoint refuses requests until it loads")
                }
            }
        }
        st.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        format!(
            "{}/tests/fixtures/web-config.yml",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn the_fixture_loads_with_tls_and_a_user() {
        let c = WebConfig::load(&fixture()).unwrap();
        assert!(c.tls.is_some());
        assert_eq!(c.users.len(), 1);
    }

    #[test]
    fn go_durations_parse_as_go_does() {
        for (t, ms) in [
            ("1s", 1000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5h", 5_400_000),
            ("0", 0),
        ] {
            assert_eq!(
                parse_go_duration(t).unwrap(),
                Duration::from_millis(ms),
                "{t}"
            );
        }
        for t in ["", "1", "1d", "s", "1.2.3s"] {
            assert!(parse_go_duration(t).is_err(), "{t}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        let dir = std::env::temp_dir().join(format!("apiwatch-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.to_string_lossy().into_owned()
        };
        let e =
            WebConfig::load(&write("a.yml", "http_server_config:\n  http3: true\n")).unwrap_err();
        assert!(e.contains("http3") && e.contains("a.yml"), "{e}");
        let e =
            WebConfig::load(&write("b.yml", "basic_auth_users:\n  bob: plaintext\n")).unwrap_err();
        assert!(e.contains("basic_auth_users.bob"), "{e}");
        let e = WebConfig::load(&write(
            "c.yml",
            "tls_server_config:\n  cert_file: /nope.crt\n  key_file: /nope.key\n",
        ))
        .unwrap_err();
        assert!(e.contains("/nope.crt"), "{e}");
        let e = WebConfig::load(&write(
            "d.yml",
            "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n",
        ))
        .unwrap_err();
        assert!(e.contains("missing one of cert or cert_file"), "{e}");
        let e =
            WebConfig::load(&write("f.yml", "basic_auth_users:\n  a: x\n  a: y\n")).unwrap_err();
        assert!(e.contains("yaml"), "{e}");
        assert!(
            WebConfig::load("/no/such/web.yml")
                .unwrap_err()
                .contains("/no/such/web.yml")
        );
        // No users and no TLS: a plain endpoint; a leading document marker is fine.
        let c = WebConfig::load(&write("e.yml", "---\n# nothing\n")).unwrap();
        assert!(c.tls.is_none() && c.users.is_empty());
    }
}
