//! Posture findings: where the APIs on the wire fall short, not who attacks them.
//! Each is an alert with `scope: "api"` that names a server (and a route where one
//! applies), no client; reported once per (server, route, kind, what) per UTC day,
//! with redacted evidence. Kinds:
//!
//! - `cleartext_credentials`: Basic or bearer authorization, an API-key header, a
//!   cookie, or a password in the body, sent over cleartext HTTP (decrypted TLS is
//!   not cleartext). `posture.cleartext_ok` networks (a hop behind the TLS
//!   terminator) are exempt, as client or server.
//! - `credentials_in_url`: a query parameter named as a secret (`api_key`, `token`,
//!   `password`, `access_token`...) with a value of 4 characters or more, on any
//!   exchange.
//! - `jwt_weakness`: a bearer JWT with `alg: none` (or an empty signature) answered
//!   2xx (`alg_none_accepted`), HMAC-signed with a published default key
//!   (`default_key_accepted`), or whose `exp` is past at packet time answered 2xx
//!   (`expired_accepted`). Only the header's `alg` and the claim's age are kept.
//! - `weak_tls`: a server negotiating SSL 3, TLS 1.0 or 1.1, or a suite that is
//!   weak (NULL, RC4, DES/3DES, export, MD5, anonymous), without forward secrecy
//!   (RSA key exchange), or CBC with SHA-1.
//! - `certificate_expiry`: a leaf certificate past its `notAfter` at packet time
//!   (`expired`) or within `posture.cert_warn` of it (`expiring`); self-signed and
//!   a server name outside its names are evidence.
//!
//! Bounded: at most [`Config::max_findings`] keys are remembered per day (past it
//! nothing new is reported that day, counted in `suppressed`).

use std::collections::HashMap;
use std::hash::BuildHasher;

use serde_json::json;

use crate::detect::{Alert, Finding, Kind, Novelty};
use crate::http::Exchange;
use crate::identity::Cidr;
use crate::time::Nanos;

const DAY: Nanos = 86_400 * 1_000_000_000;

/// HMAC keys published as defaults or examples, that servers ship with and
/// forget to change: jwt.io's examples, framework and tutorial placeholders. A
/// token that verifies with one can be forged by anyone.
const DEFAULT_JWT_KEYS: &[&str] = &[
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    "secret",
    "secretkey",
    "secret-key",
    "secret_key",
    "mysecret",
    "my-secret",
    "supersecret",
    "jwt_secret",
    "jwt-secret",
    "jwtsecret",
    "changeme",
    "change-me",
    "changeit",
    "password",
    "key",
    "default",
    "test",
    "shhhhh",
    "keyboard cat",
];

/// JWTs remembered as tried against the default keys.
const JWT_TRIED: usize = 65_536;

/// The shortest query value taken for a credential.
const MIN_SECRET_VALUE: usize = 4;

/// Settings (config `[posture]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Networks whose cleartext hops are by design (behind a TLS terminator).
    pub cleartext_ok: Vec<Cidr>,
    /// A certificate expiring within this is `expiring`.
    pub cert_warn: Nanos,
    /// Findings remembered per day.
    pub max_findings: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cleartext_ok: Vec::new(),
            cert_warn: 14 * DAY,
            max_findings: 65_536,
        }
    }
}

/// The posture findings' state: what was reported today.
#[derive(Debug, Default)]
pub struct Posture {
    day: Nanos,
    /// Finding key → the kind's index in [`KINDS`].
    reported: HashMap<u64, u8, crate::lru::Prehashed>,
    /// Findings not reported because the day's table was full.
    pub suppressed: u64,
    /// Keyed hashes of the HMAC-signed JWTs already tried against the published
    /// default keys (each token once; cleared when full).
    jwt_tried: HashMap<u64, (), crate::lru::Prehashed>,
    /// Findings reported today, by kind ([`KINDS`] order).
    pub today: [u64; KINDS.len()],
    /// Exchanges (or TLS connections) that showed a finding's weakness, reported
    /// or already known, by kind.
    pub seen: [u64; KINDS.len()],
}

/// The posture kinds, in the order the metrics list them.
pub const KINDS: [Kind; 5] = [
    Kind::CleartextCredentials,
    Kind::CredentialsInUrl,
    Kind::WeakTls,
    Kind::CertificateExpiry,
    Kind::JwtWeakness,
];

/// What identifies a finding: (server, route, kind, what).
struct Key<'a> {
    ex: &'a Exchange,
    server: Option<&'a str>,
    endpoint: Option<&'a str>,
    kind: Kind,
    what: &'a str,
}

/// A finding's content, built only when its key is new today.
struct Content {
    summary: String,
    evidence: serde_json::Value,
    severity: u8,
}

/// Whether an exchange can give a finding at all: it carries a credential or has a
/// query string. Asked per exchange before anything else (most give none).
#[inline]
pub fn may_find(ex: &Exchange, has_query: bool) -> bool {
    has_query || carries_credentials(ex)
}

/// Whether the request carries a credential: told by four fields.
#[inline]
fn carries_credentials(ex: &Exchange) -> bool {
    let h = &ex.request_headers;
    h.authorization.is_some()
        || h.api_key.is_some()
        || h.cookie.is_some()
        || ex.body_credentials.as_ref().is_some_and(|c| c.password)
}

impl Posture {
    /// One HTTP exchange (cleartext or decrypted), with its endpoint and query
    /// string when routed.
    pub fn exchange(
        &mut self,
        cfg: &Config,
        ex: &Exchange,
        routed: Option<(&str, &str)>,
        out: &mut Vec<Alert>,
    ) {
        let endpoint = routed.map(|(e, _)| e);
        let query = routed.map_or("", |(_, q)| q);
        let h = &ex.request_headers;
        let host = h.host.as_deref();
        // A finding of this exchange: its server and route, a kind and what.
        let key = |kind, what| Key {
            ex,
            server: host,
            endpoint,
            kind,
            what,
        };
        // Cleartext credentials: what the request itself carries, in its headers,
        // its body or its query string.
        let query_secret = secret_in_query(query).map(str::to_ascii_lowercase);
        let in_clear = (query_secret.is_some() || carries_credentials(ex)) && !ex.decrypted;
        if in_clear && !exempt(cfg, ex) {
            let body_password = ex.body_credentials.as_ref().is_some_and(|c| c.password);
            let in_headers = carries_credentials(ex)
                .then(|| credential_kinds(ex, body_password))
                .into_iter()
                .flatten()
                .map(|what| (what, false));
            let in_query = query_secret
                .as_deref()
                .map(|name| (query_credential_kind(name), true));
            for (what, in_query) in in_headers.chain(in_query) {
                self.report(
                    cfg,
                    key(Kind::CleartextCredentials, what),
                    || Content {
                        summary: format!(
                            "{what} credentials sent over cleartext HTTP to {}{}",
                            endpoint.unwrap_or("this server"),
                            if in_query {
                                " (in the query string)"
                            } else {
                                ""
                            }
                        ),
                        evidence: if in_query {
                            json!({"credential": what, "transport": "http", "in": "query"})
                        } else {
                            json!({"credential": what, "transport": "http"})
                        },
                        severity: 2,
                    },
                    out,
                );
            }
        }
        if let Some(name) = query_secret.as_deref() {
            self.report(
                cfg,
                key(Kind::CredentialsInUrl, name),
                || Content {
                    summary: format!(
                        "a secret in the query string (parameter {name}) of {}",
                        endpoint.unwrap_or("a request")
                    ),
                    evidence: json!({"parameter": name, "decrypted": ex.decrypted}),
                    severity: 2,
                },
                out,
            );
        }
        if matches!(ex.status, Some(200..=299))
            && let Some(token) = bearer(ex)
            && let Some((reason, alg, age)) = self.jwt_weakness(token, ex.ts)
        {
            self.report(
                cfg,
                key(Kind::JwtWeakness, reason),
                || Content {
                    summary: format!(
                        "{} accepted a JWT {}",
                        endpoint.unwrap_or("the server"),
                        match reason {
                            "alg_none_accepted" => "without a signature (alg none)",
                            "default_key_accepted" => "signed with a published default key",
                            _ => "past its expiry",
                        }
                    ),
                    evidence: json!({"reason": reason, "alg": alg, "expired_for_s": age}),
                    severity: 1,
                },
                out,
            );
        }
    }

    /// One TLS connection's record (its handshake as seen).
    pub fn tls(
        &mut self,
        cfg: &Config,
        ex: &Exchange,
        s: &crate::tls::Session,
        out: &mut Vec<Alert>,
    ) {
        let Some(server_hello) = s.server.as_ref() else {
            return;
        };
        let sni = s.client.as_ref().and_then(|c| c.sni.clone());
        let version = server_hello.version;
        let weak_version = version < 0x0303;
        let class = crate::tls::suite_class(Some(server_hello.cipher));
        let cbc_sha1 = tls_parser::TlsCipherSuite::from_id(server_hello.cipher).is_some_and(|c| {
            c.enc_mode == tls_parser::TlsCipherEncMode::Cbc
                && c.mac == tls_parser::TlsCipherMac::HmacSha1
        });
        let weak_suite = matches!(class, "weak" | "static_key_exchange") || cbc_sha1;
        if weak_version || weak_suite {
            let what = if weak_version {
                "version"
            } else {
                "cipher_suite"
            };
            self.report(
                cfg,
                Key {
                    ex,
                    server: sni.as_deref(),
                    endpoint: None,
                    kind: Kind::WeakTls,
                    what,
                },
                || Content {
                    summary: format!(
                        "{} negotiates {} with {}",
                        sni.as_deref().unwrap_or("a TLS server"),
                        crate::tls::version_name(version),
                        crate::tls::cipher_name(server_hello.cipher)
                    ),
                    evidence: json!({
                        "version": crate::tls::version_name(version),
                        "cipher_suite": crate::tls::cipher_name(server_hello.cipher),
                        "suite_class": class,
                        "cbc_sha1": cbc_sha1,
                    }),
                    severity: 2,
                },
                out,
            );
        }
        if let Some(leaf) = s.certificates.first() {
            let now = (ex.ts / 1_000_000_000) as i64;
            let left = leaf.not_after.saturating_sub(now);
            let warn = (cfg.cert_warn / 1_000_000_000) as i64;
            let what = if left < 0 {
                "expired"
            } else if left < warn {
                "expiring"
            } else {
                return;
            };
            let self_signed = leaf.subject == leaf.issuer;
            let name_mismatch = sni.as_deref().is_some_and(|n| !names_match(&leaf.sans, n));
            self.report(
                cfg,
                Key {
                    ex,
                    server: sni.as_deref(),
                    endpoint: None,
                    kind: Kind::CertificateExpiry,
                    what,
                },
                || Content {
                    summary: format!(
                        "{}'s certificate {} ({} days {})",
                        sni.as_deref().unwrap_or("a TLS server"),
                        if what == "expired" {
                            "has expired"
                        } else {
                            "expires soon"
                        },
                        left.unsigned_abs() / 86_400,
                        if what == "expired" { "ago" } else { "left" },
                    ),
                    evidence: json!({
                        "status": what,
                        "not_after": crate::time::iso_seconds(leaf.not_after),
                        "days": left / 86_400,
                        "subject": leaf.subject,
                        "issuer": leaf.issuer,
                        "self_signed": self_signed,
                        "name_mismatch": name_mismatch,
                    }),
                    severity: if what == "expired" { 1 } else { 3 },
                },
                out,
            );
        }
    }

    /// Reports a finding unless its key was reported today; its content is built
    /// only then.
    /// A JWT's weakness when accepted: `alg_none_accepted`, `default_key_accepted`
    /// (HMAC-signed with a key from [`DEFAULT_JWT_KEYS`], tried once per token) or
    /// `expired_accepted`; the header's `alg` and, when expired, for how long
    /// (seconds).
    fn jwt_weakness(
        &mut self,
        token: &str,
        ts: Nanos,
    ) -> Option<(&'static str, String, Option<i64>)> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next());
        if header.len() > 4096 || payload.len() > 16384 {
            return None;
        }
        let header_json: serde_json::Value =
            serde_json::from_slice(&crate::credentials::base64_decode(header)?).ok()?;
        let alg = header_json
            .get("alg")?
            .as_str()?
            .chars()
            .take(16)
            .collect::<String>();
        if alg.eq_ignore_ascii_case("none") || signature.is_none_or(str::is_empty) {
            return Some(("alg_none_accepted", alg, None));
        }
        if let Some(signature) = signature
            && let Some(hmac) = match alg.as_str() {
                "HS256" => Some(ring::hmac::HMAC_SHA256),
                "HS384" => Some(ring::hmac::HMAC_SHA384),
                "HS512" => Some(ring::hmac::HMAC_SHA512),
                _ => None,
            }
        {
            let h = foldhash::fast::FixedState::with_seed(0x006a_7774).hash_one(token);
            if !self.jwt_tried.contains_key(&h) {
                if self.jwt_tried.len() >= JWT_TRIED {
                    self.jwt_tried.clear();
                }
                self.jwt_tried.insert(h, ());
                let signed = &token[..header.len() + 1 + payload.len()];
                if let Some(sig) = crate::credentials::base64_decode(signature)
                    && DEFAULT_JWT_KEYS.iter().any(|k| {
                        let key = ring::hmac::Key::new(hmac, k.as_bytes());
                        ring::hmac::verify(&key, signed.as_bytes(), &sig).is_ok()
                    })
                {
                    return Some(("default_key_accepted", alg, None));
                }
            }
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&crate::credentials::base64_decode(payload)?).ok()?;
        let exp = claims.get("exp")?.as_i64()?;
        let now = (ts / 1_000_000_000) as i64;
        (exp < now).then(|| ("expired_accepted", alg, Some(now - exp)))
    }

    fn report(
        &mut self,
        cfg: &Config,
        k: Key<'_>,
        content: impl FnOnce() -> Content,
        out: &mut Vec<Alert>,
    ) {
        let ex = k.ex;
        let day = ex.ts / DAY;
        if day != self.day {
            self.day = day;
            self.reported.clear();
            self.today = [0; KINDS.len()];
        }
        let kind = KINDS.iter().position(|x| *x == k.kind).unwrap_or(0);
        self.seen[kind] += 1;
        let key = foldhash::fast::FixedState::with_seed(0x706f_7374_7572_6521).hash_one((
            ex.server_ip,
            ex.server_port,
            k.server,
            k.endpoint,
            k.kind,
            k.what,
        ));
        if self.reported.contains_key(&key) {
            return;
        }
        if self.reported.len() >= cfg.max_findings {
            self.suppressed += 1;
            return;
        }
        self.reported.insert(key, kind as u8);
        self.today[kind] += 1;
        let c = content();
        out.push(Alert {
            ts: ex.ts,
            finding: Finding {
                kind: k.kind,
                endpoint: k.endpoint.map(str::to_string),
                summary: c.summary,
                evidence: c.evidence,
                severity: c.severity,
                clients: None,
                novelty: Novelty::Always,
            },
            client_ip: None,
            client_key: None,
            client_port: ex.client_port,
            conn_ip: ex.client_ip,
            trans_depth: ex.trans_depth,
            flow: ex.flow,
            server_ip: ex.server_ip,
            server_port: ex.server_port,
            host: k.server.map(str::to_string),
            uri: None,
            method: None,
            status: None,
            tls: matches!(k.kind, Kind::WeakTls | Kind::CertificateExpiry),
            samples: Vec::new(),
            report: 1,
            episode_start: ex.ts,
        });
    }
}

/// Whether either end of the exchange is in a network where cleartext is by design.
fn exempt(cfg: &Config, ex: &Exchange) -> bool {
    !cfg.cleartext_ok.is_empty()
        && cfg
            .cleartext_ok
            .iter()
            .any(|n| n.contains(ex.server_ip) || n.contains(ex.client_ip))
}

/// The kinds of credentials a request carries: `basic`, `bearer`, `authorization`
/// (another scheme), `api_key`, `cookie`, `password` (in the body).
fn credential_kinds(ex: &Exchange, body_password: bool) -> impl Iterator<Item = &'static str> {
    let h = &ex.request_headers;
    let auth = h.authorization.as_deref().map(|a| {
        let scheme = a.trim_start().split(' ').next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("basic") {
            "basic"
        } else if scheme.eq_ignore_ascii_case("bearer") {
            "bearer"
        } else {
            "authorization"
        }
    });
    [
        auth,
        h.api_key.as_ref().map(|_| "api_key"),
        h.cookie.as_ref().map(|_| "cookie"),
        body_password.then_some("password"),
    ]
    .into_iter()
    .flatten()
}

/// The kind of credential a secret query parameter holds, by its (lower-case)
/// name: `password`, `api_key` or `token` (what header credentials are called).
fn query_credential_kind(name: &str) -> &'static str {
    if name.contains("pass") || name.contains("pwd") {
        "password"
    } else if name.contains("key") {
        "api_key"
    } else {
        "token"
    }
}

/// The first parameter of a query string named as a secret that has a value (a byte
/// walk: no searcher set-up per request).
fn secret_in_query(q: &str) -> Option<&str> {
    if q.is_empty() {
        return None;
    }
    let mut start = 0;
    for part in q.as_bytes().split(|&b| b == b'&') {
        let at = start;
        start += part.len() + 1;
        let Some(eq) = part.iter().position(|&b| b == b'=') else {
            continue;
        };
        // A credential is at least 4 characters (page numbers and sizes are not
        // asked about, which keeps the name check off most parameters).
        if part.len() - eq - 1 < MIN_SECRET_VALUE {
            continue;
        }
        // `&` and `=` are ASCII: the cuts are on character boundaries.
        let name = &q[at..at + eq];
        if crate::redact::is_secret_name(name) {
            return Some(name);
        }
    }
    None
}

fn bearer(ex: &Exchange) -> Option<&str> {
    let a = ex.request_headers.authorization.as_deref()?.trim();
    let (scheme, token) = a.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| t.starts_with("eyJ"))
}

/// Whether a server name is among a certificate's names (`*.example.test` covers
/// one label).
fn names_match(sans: &[String], name: &str) -> bool {
    sans.iter().any(|s| {
        s.eq_ignore_ascii_case(name)
            || s.strip_prefix("*.").is_some_and(|rest| {
                name.split_once('.')
                    .is_some_and(|(_, tail)| tail.eq_ignore_ascii_case(rest))
            })
    })
}

#[cfg(test)]
mod tests;
