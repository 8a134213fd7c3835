use super::*;
use crate::http::Exchange;
use crate::tls::{Certificate, ClientHello, ServerHello, Session};

const T: Nanos = 1_795_428_000_000_000_000; // 2026-11-23

fn exchange(auth: Option<&str>, uri: &str, status: u16) -> Exchange {
    let mut e = Exchange {
        ts: T,
        server_ip: IpAddr::from([10, 0, 0, 2]),
        server_port: 80,
        client_ip: IpAddr::from([10, 0, 0, 9]),
        method: Some("GET".into()),
        uri: Some(uri.into()),
        status: Some(status),
        ..Exchange::vacant()
    };
    e.request_headers.host = Some("api.example".into());
    e.request_headers.authorization = auth.map(Into::into);
    e
}

fn run(p: &mut Posture, cfg: &Config, e: &Exchange) -> Vec<Alert> {
    let mut out = Vec::new();
    let uri = e.uri.as_deref().unwrap_or("");
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    p.exchange(cfg, e, Some(("GET /api/items", query)), &mut out);
    out
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

use std::net::IpAddr;

#[test]
fn cleartext_credentials_once_per_route_kind_and_day() {
    let cfg = Config::default();
    let mut p = Posture::default();
    let e = exchange(Some("Basic YWxpY2U6c2VjcmV0"), "/api/items", 200);
    let a = run(&mut p, &cfg, &e);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].finding.kind, Kind::CleartextCredentials);
    assert_eq!(a[0].finding.evidence["credential"], "basic");
    assert!(a[0].client_ip.is_none() && a[0].client_key.is_none());
    assert_eq!(a[0].host.as_deref(), Some("api.example"));
    // The same again: nothing; a bearer token on the same route: a new kind.
    assert!(run(&mut p, &cfg, &e).is_empty());
    let b = run(
        &mut p,
        &cfg,
        &exchange(Some("Bearer abc"), "/api/items", 200),
    );
    assert_eq!(b[0].finding.evidence["credential"], "bearer");
    // The next day: reported again.
    let mut later = e.clone();
    later.ts = T + DAY;
    assert_eq!(run(&mut p, &cfg, &later).len(), 1);
    // Nothing secret is kept.
    assert!(!format!("{a:?}{b:?}").contains("YWxpY2U6c2VjcmV0"));
}

#[test]
fn decrypted_exchanges_and_exempt_networks_are_not_cleartext() {
    let mut p = Posture::default();
    let mut e = exchange(Some("Basic YWxpY2U6c2VjcmV0"), "/api/items", 200);
    e.decrypted = true;
    assert!(run(&mut p, &Config::default(), &e).is_empty());
    let cfg = Config {
        cleartext_ok: vec!["10.0.0.0/24".parse().unwrap()],
        ..Config::default()
    };
    e.decrypted = false;
    assert!(run(&mut p, &cfg, &e).is_empty());
}

#[test]
fn secrets_in_the_query_string() {
    let mut p = Posture::default();
    let a = run(
        &mut p,
        &Config::default(),
        &exchange(None, "/api/items?page=2&api_key=abc123", 200),
    );
    // Over cleartext HTTP the key also crossed the wire in clear.
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].finding.kind, Kind::CleartextCredentials);
    assert_eq!(a[0].finding.evidence["credential"], "api_key");
    assert_eq!(a[0].finding.evidence["in"], "query");
    assert_eq!(a[1].finding.kind, Kind::CredentialsInUrl);
    assert_eq!(a[1].finding.evidence["parameter"], "api_key");
    assert!(!format!("{a:?}").contains("abc123"));
    // Decrypted: in the URL, not in clear.
    let mut d = exchange(None, "/api/items?access_token=abcdef", 200);
    d.decrypted = true;
    let a = run(&mut p, &Config::default(), &d);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].finding.kind, Kind::CredentialsInUrl);
    assert!(
        run(
            &mut p,
            &Config::default(),
            &exchange(None, "/api/items?page=2&token=", 200)
        )
        .is_empty()
    );
}

#[test]
fn jwts_accepted_without_a_signature_or_past_expiry() {
    let cfg = Config::default();
    let mut p = Posture::default();
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(r#"{"sub":"1"}"#)
    );
    let a = run(
        &mut p,
        &cfg,
        &exchange(Some(&format!("Bearer {none}")), "/api/me", 200),
    );
    let jwt: Vec<&Alert> = a
        .iter()
        .filter(|a| a.finding.kind == Kind::JwtWeakness)
        .collect();
    assert_eq!(jwt.len(), 1);
    assert_eq!(jwt[0].finding.evidence["reason"], "alg_none_accepted");
    let exp = (T / 1_000_000_000) as i64 - 3600;
    let old = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"HS256"}"#),
        b64(&format!(r#"{{"exp":{exp}}}"#))
    );
    let a = run(
        &mut p,
        &cfg,
        &exchange(Some(&format!("Bearer {old}")), "/api/me", 200),
    );
    let jwt: Vec<&Alert> = a
        .iter()
        .filter(|a| a.finding.kind == Kind::JwtWeakness)
        .collect();
    assert_eq!(jwt[0].finding.evidence["reason"], "expired_accepted");
    assert_eq!(jwt[0].finding.evidence["expired_for_s"], 3600);
    // Refused: no finding.
    let mut q = Posture::default();
    let a = run(
        &mut q,
        &cfg,
        &exchange(Some(&format!("Bearer {old}")), "/api/me", 401),
    );
    assert!(a.iter().all(|a| a.finding.kind != Kind::JwtWeakness));
}

fn session(version: u16, cipher: u16, not_after: i64, sans: &[&str]) -> Session {
    Session {
        start: T,
        client: Some(ClientHello {
            sni: Some("api.example.test".into()),
            ..Default::default()
        }),
        server: Some(ServerHello {
            version,
            cipher,
            ..Default::default()
        }),
        certificates: vec![Certificate {
            subject: "CN=api.example.test".into(),
            issuer: "CN=api.example.test".into(),
            serial: String::new(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            not_before: 0,
            not_after,
            key_type: "rsa".into(),
            key_bits: 2048,
            signature_algorithm: String::new(),
            sha1: String::new(),
            sha256: String::new(),
        }],
        ..Default::default()
    }
}

#[test]
fn weak_versions_and_suites_and_certificates_near_or_past_expiry() {
    let cfg = Config::default();
    let mut p = Posture::default();
    let e = exchange(None, "/", 200);
    let now = (T / 1_000_000_000) as i64;
    let mut out = Vec::new();
    // TLS 1.0 with ECDHE-RSA-AES128-SHA, a certificate 3 days from expiry.
    p.tls(
        &cfg,
        &e,
        &session(0x0301, 0xc013, now + 3 * 86_400, &["api.example.test"]),
        &mut out,
    );
    let kinds: Vec<Kind> = out.iter().map(|a| a.finding.kind).collect();
    assert_eq!(kinds, vec![Kind::WeakTls, Kind::CertificateExpiry]);
    assert_eq!(out[1].finding.evidence["status"], "expiring");
    assert_eq!(out[1].finding.evidence["self_signed"], true);
    assert_eq!(out[1].finding.evidence["name_mismatch"], false);
    // TLS 1.3 with AES-128-GCM, an expired certificate for another name.
    let mut out = Vec::new();
    let mut q = Posture::default();
    q.tls(
        &cfg,
        &e,
        &session(0x0304, 0x1301, now - 86_400, &["*.other.test"]),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].finding.kind, Kind::CertificateExpiry);
    assert_eq!(out[0].finding.evidence["status"], "expired");
    assert_eq!(out[0].finding.evidence["name_mismatch"], true);
    // A good one: nothing.
    let mut out = Vec::new();
    Posture::default().tls(
        &cfg,
        &e,
        &session(0x0304, 0x1301, now + 400 * 86_400, &["api.example.test"]),
        &mut out,
    );
    assert!(out.is_empty());
}

/// jwt.io's example token, signed HS256 with its example key
/// `your-256-bit-secret`: anyone can sign such tokens.
#[test]
fn a_jwt_signed_with_a_published_default_key_is_a_weakness() {
    const JWT_IO: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
        SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let cfg = Config::default();
    let mut p = Posture::default();
    let a = run(
        &mut p,
        &cfg,
        &exchange(Some(&format!("Bearer {JWT_IO}")), "/api/me", 200),
    );
    let jwt: Vec<&Alert> = a
        .iter()
        .filter(|a| a.finding.kind == Kind::JwtWeakness)
        .collect();
    assert_eq!(jwt.len(), 1);
    assert_eq!(jwt[0].finding.evidence["reason"], "default_key_accepted");
    assert_eq!(jwt[0].finding.evidence["alg"], "HS256");
    assert!(
        !format!("{a:?}").contains("SflKxw"),
        "the token never leaves"
    );
    // The same token with another signature: not a default key (and not expired).
    let other = format!("{}Ab", &JWT_IO[..JWT_IO.len() - 2]);
    let mut q = Posture::default();
    let a = run(
        &mut q,
        &cfg,
        &exchange(Some(&format!("Bearer {other}")), "/api/me", 200),
    );
    assert!(a.iter().all(|a| a.finding.kind != Kind::JwtWeakness));
}
