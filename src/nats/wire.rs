//! The published record: what detection reads of an exchange, secrets redacted at
//! the sensor, in a versioned compact binary form (postcard).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::http::{Exchange, FlowInfo, Headers, Text};
use crate::time::Nanos;
/// The first byte of every published exchange: the record layout below. A
/// detector refuses (counts and skips) any other.
pub const WIRE_VERSION: u8 = 2;
/// The first byte of a sensor's clock record ([`encode_clock`]): no exchange, only
/// how far its packet time has gone, so detectors merging several sensors need
/// not wait on a quiet one.
pub const CLOCK_VERSION: u8 = 0x82;

/// Where a record comes from and where it sorts: its partition, the sensor that
/// published it (a random id per sensor process) and that sensor's packet clock
/// when it did (the largest exchange time it had published: never goes back, so
/// detectors merge several sensors on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    pub partition: u32,
    pub sensor: u64,
    pub emitted: Nanos,
}

/// A record read back.
#[derive(Debug)]
pub enum Decoded {
    Exchange(Meta, Box<Exchange>),
    Clock(Meta),
}

/// A clock record: `meta.emitted` is how far the sensor's packet time has gone.
pub fn encode_clock(meta: Meta, out: &mut Vec<u8>) {
    out.clear();
    out.push(CLOCK_VERSION);
    let taken = std::mem::take(out);
    *out = postcard::to_extend(&meta, taken).unwrap_or_else(|_| vec![CLOCK_VERSION]);
}

/// An exchange as published: what detection reads of it, in the order of
/// [`Exchange`]'s fields. Left out: `Referer`/`Origin`/proxy headers (`Headers::extra`),
/// the interim response, reason phrase and response version (exchange log only).
/// Borrowed when written, owned when read ([`Owned`]): the two must list the same
/// fields in the same order (a unit test checks the round trip).
#[derive(Serialize)]
struct Wire<'a> {
    meta: Meta,
    ts: Nanos,
    client_ip: IpAddr,
    client_port: u16,
    server_ip: IpAddr,
    server_port: u16,
    trans_depth: u32,
    method: &'a Option<Text>,
    uri: &'a Option<Text>,
    version: &'a Option<Text>,
    request_headers: &'a Headers,
    request_body_len: u64,
    #[serde(with = "serde_bytes_ref")]
    request_body_prefix: &'a [u8],
    body_credentials: &'a Option<crate::credentials::Credentials>,
    #[serde(with = "serde_bytes_ref")]
    response_body_prefix: &'a [u8],
    status: Option<u16>,
    response_headers: &'a Option<Headers>,
    response_body_len: Option<u64>,
    response_ts: Option<Nanos>,
    incomplete: bool,
    flow: FlowInfo,
    decrypted: bool,
    h2: Option<&'a crate::http::h2::StreamInfo>,
    /// The sensitive values the sensor counted in the response (counts only).
    sensitive: Option<[u32; 4]>,
    /// A TLS connection's record: its handshake (hellos, certificates, outcome), or
    /// with `closed` its end. Nothing in it is secret (no key material is kept).
    tls: Option<&'a crate::tls::Session>,
    /// The principals of the request, worked out before its secrets were sealed.
    sealed: crate::identity::Sealed,
}

#[derive(Deserialize)]
struct Owned {
    meta: Meta,
    ts: Nanos,
    client_ip: IpAddr,
    client_port: u16,
    server_ip: IpAddr,
    server_port: u16,
    trans_depth: u32,
    method: Option<Text>,
    uri: Option<Text>,
    version: Option<Text>,
    request_headers: Headers,
    request_body_len: u64,
    request_body_prefix: Vec<u8>,
    body_credentials: Option<crate::credentials::Credentials>,
    response_body_prefix: Vec<u8>,
    status: Option<u16>,
    response_headers: Option<Headers>,
    response_body_len: Option<u64>,
    response_ts: Option<Nanos>,
    incomplete: bool,
    flow: FlowInfo,
    decrypted: bool,
    h2: Option<crate::http::h2::StreamInfo>,
    sensitive: Option<[u32; 4]>,
    tls: Option<crate::tls::Session>,
    sealed: crate::identity::Sealed,
}

/// Byte slices as postcard byte strings (length and bytes), read back as `Vec<u8>`.
mod serde_bytes_ref {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

/// Why a published record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("empty record")]
    Empty,
    #[error("record format version {0} (this build reads {WIRE_VERSION})")]
    Version(u8),
    #[error("corrupt record: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// A keyed hash of a secret, as 32 hex digits: what the record carries instead of
/// it. The same secret gives the same text on every sensor that shares the key (the
/// identity salt), so detectors key, count and compare principals as one process
/// does, without the secret.
fn sealed(key: [u64; 2], secret: &[u8]) -> String {
    use std::hash::Hasher;
    let mut out = String::with_capacity(32);
    for k in [key[0], key[1]] {
        let mut h = siphasher::sip::SipHasher24::new_with_keys(k, !k ^ 0x6e61_7473);
        h.write(secret);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// An `Authorization` value without its secret: a Basic user name stays (login
/// detection counts users) with the password dropped; a JWT keeps its header and
/// claims (posture reads `alg` and `exp`; without a signature it cannot be
/// replayed) with the signature sealed; any other credential is sealed whole.
fn redact_authorization(a: &str, key: [u64; 2]) -> String {
    let t = a.trim();
    let Some((scheme, cred)) = t.split_once(' ') else {
        return sealed(key, t.as_bytes());
    };
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let user = crate::credentials::basic_username(t).unwrap_or_default();
        let mut plain = user;
        plain.push(b':');
        return format!("{scheme} {}", crate::export::eve::base64(&plain));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let mut parts = cred.splitn(3, '.');
        if let (Some(h), Some(p), Some(sig)) = (parts.next(), parts.next(), parts.next())
            && h.starts_with("eyJ")
        {
            let sig = if sig.is_empty() {
                String::new()
            } else {
                sealed(key, sig.as_bytes())
            };
            return format!("{scheme} {h}.{p}.{sig}");
        }
    }
    format!("{scheme} {}", sealed(key, cred.as_bytes()))
}

/// `Location` with its secrets sealed (a redirect can carry an OAuth code or a
/// token in its query or fragment).
fn redact_location(h: &Option<Headers>, key: [u64; 2]) -> Option<Headers> {
    let h = h.as_ref()?;
    let loc = h.location.as_deref()?;
    match crate::redact::redact_uri_with(loc, &mut |s| sealed(key, s)) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(l) => {
            let mut r = h.clone();
            r.location = Some(l.into());
            Some(r)
        }
    }
}

/// The bytes published for one exchange: [`WIRE_VERSION`], then the postcard
/// record. Secrets are redacted first (`key`: the identity salt, shared by the
/// sensors): `Authorization` and API keys as [`redact_authorization`] and
/// [`sealed`] make them; the target and `Location` as the exchange log redacts
/// them, each secret sealed instead of `REDACTED` (distinct secrets stay distinct);
/// a body that carries a password left out (what detection needs of it, the user
/// name and that a password was there, travels in `body_credentials`, the user name
/// sealed); other request and response body prefixes with their secrets sealed
/// ([`crate::redact::redact_body`]: JSON values under secret keys, credential-shaped
/// words anywhere), their structure and words kept for detection; of `Cookie`
/// only its presence. `principals`: the request's principals as identity worked them
/// out from the secrets ([`crate::identity::Sealed::of`]), so that detectors key
/// and name clients as one process does.
pub fn encode(
    ex: &Exchange,
    meta: Meta,
    principals: crate::identity::Sealed,
    key: [u64; 2],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.push(WIRE_VERSION);
    let h = &ex.request_headers;
    let redacted;
    let request_headers = if h.authorization.is_some() || h.api_key.is_some() || h.cookie.is_some()
    {
        let mut r = h.clone();
        r.authorization = h
            .authorization
            .as_deref()
            .map(|a| redact_authorization(a, key).into());
        r.api_key = h
            .api_key
            .as_deref()
            .map(|k| sealed(key, k.trim().as_bytes()).into());
        // Only that there was one: identity's cookie keys travel in `sealed`.
        r.cookie = h.cookie.as_ref().map(|_| String::new());
        redacted = r;
        &redacted
    } else {
        h
    };
    let mut seal = |s: &[u8]| sealed(key, s);
    let uri = ex
        .uri
        .as_deref()
        .map(|u| crate::redact::redact_uri_with(u, &mut seal))
        .and_then(|u| match u {
            std::borrow::Cow::Owned(u) => Some(Some(Text::from(u))),
            std::borrow::Cow::Borrowed(_) => None,
        });
    let uri = uri.as_ref().unwrap_or(&ex.uri);
    let response_headers = redact_location(&ex.response_headers, key);
    let response_headers = if response_headers.is_some() {
        &response_headers
    } else {
        &ex.response_headers
    };
    let password = ex.body_credentials.as_ref().is_some_and(|c| c.password);
    let body_credentials = ex
        .body_credentials
        .as_ref()
        .map(|c| crate::credentials::Credentials {
            user: c
                .user
                .as_deref()
                .map(|u| sealed(key, u).into_bytes().into_boxed_slice()),
            ..c.clone()
        });
    // A body that carried a password: a GraphQL one travels with every value in it
    // sealed (its operations and login attempts are read from it), any other is
    // left out whole. Other bodies travel with their secrets sealed.
    let graphql = ex.body_credentials.as_ref().is_some_and(|c| c.graphql);
    let request_body = match (password, graphql) {
        (true, true) => crate::redact::redact_graphql(&ex.request_body_prefix, &mut seal),
        (true, false) => None,
        (false, _) => crate::redact::redact_body(&ex.request_body_prefix, &mut seal),
    };
    let request_body_prefix: &[u8] = match (&request_body, password) {
        (Some(b), _) => b,
        (None, true) => &[],
        (None, false) => &ex.request_body_prefix,
    };
    let response_body = crate::redact::redact_body(&ex.response_body_prefix, &mut seal);
    let response_body_prefix: &[u8] = response_body.as_deref().unwrap_or(&ex.response_body_prefix);
    let w = Wire {
        meta,
        ts: ex.ts,
        client_ip: ex.client_ip,
        client_port: ex.client_port,
        server_ip: ex.server_ip,
        server_port: ex.server_port,
        trans_depth: ex.trans_depth,
        method: &ex.method,
        uri,
        version: &ex.version,
        request_headers,
        request_body_len: ex.request_body_len,
        request_body_prefix,
        body_credentials: &body_credentials,
        response_body_prefix,
        status: ex.status,
        response_headers,
        response_body_len: ex.response_body_len,
        response_ts: ex.response_ts,
        incomplete: ex.incomplete,
        flow: ex.flow,
        decrypted: ex.decrypted,
        h2: ex.h2.as_deref(),
        sensitive: ex.sensitive.counts().map(|c| c.0),
        tls: ex.tls.as_deref(),
        sealed: principals,
    };
    // Writing into a Vec cannot fail.
    let taken = std::mem::take(out);
    *out = postcard::to_extend(&w, taken).unwrap_or_else(|_| vec![WIRE_VERSION]);
}

/// Reads a published record back: an exchange with its [`Meta`], or a clock.
pub fn decode(bytes: &[u8]) -> Result<Decoded, WireError> {
    let (&v, rest) = bytes.split_first().ok_or(WireError::Empty)?;
    if v == CLOCK_VERSION {
        return Ok(Decoded::Clock(postcard::from_bytes(rest)?));
    }
    if v != WIRE_VERSION {
        return Err(WireError::Version(v));
    }
    let o: Owned = postcard::from_bytes(rest)?;
    let mut ex = Exchange::vacant();
    ex.ts = o.ts;
    ex.client_ip = o.client_ip;
    ex.client_port = o.client_port;
    ex.server_ip = o.server_ip;
    ex.server_port = o.server_port;
    ex.trans_depth = o.trans_depth;
    ex.method = o.method;
    ex.uri = o.uri;
    ex.version = o.version;
    ex.request_headers = o.request_headers;
    ex.request_body_len = o.request_body_len;
    ex.request_body_prefix = o.request_body_prefix;
    ex.body_credentials = o.body_credentials;
    ex.response_body_prefix = o.response_body_prefix;
    ex.status = o.status;
    ex.response_headers = o.response_headers;
    ex.response_body_len = o.response_body_len;
    ex.response_ts = o.response_ts;
    ex.incomplete = o.incomplete;
    ex.flow = o.flow;
    ex.decrypted = o.decrypted;
    ex.h2 = o.h2.map(Box::new);
    ex.tls = o.tls.map(Box::new);
    // Always set: identity must never read a principal from the sealed values.
    ex.sealed = Some(Box::new(o.sealed));
    if let Some(c) = o.sensitive {
        ex.sensitive = crate::sensitive::Found {
            outcome: crate::sensitive::Outcome::Scanned,
            counts: Some(Box::new(crate::sensitive::Counts(c))),
        };
    }
    Ok(Decoded::Exchange(o.meta, Box::new(ex)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(partition: u32) -> Meta {
        Meta {
            partition,
            sensor: 9,
            emitted: 1_000,
        }
    }

    /// The exchange of a record.
    fn read(bytes: &[u8]) -> (Meta, Exchange) {
        match decode(bytes).unwrap() {
            Decoded::Exchange(m, ex) => (m, *ex),
            Decoded::Clock(_) => panic!("a clock record"),
        }
    }

    #[test]
    fn an_exchange_survives_the_wire() {
        let mut ex = crate::http::testing::exchange(7, 3, "GET", "/api/items?page=2", Some(200));
        ex.response_headers = Some(Headers {
            content_type: Some("application/json".into()),
            ..Default::default()
        });
        ex.response_body_prefix = br#"{"items":[]}"#.to_vec();
        ex.response_body_len = Some(12);
        ex.flow.id = 42;
        ex.sensitive = crate::sensitive::Found {
            outcome: crate::sensitive::Outcome::Scanned,
            counts: Some(Box::new(crate::sensitive::Counts([2, 1, 0, 0]))),
        };
        let mut buf = Vec::new();
        encode(&ex, meta(5), Default::default(), [1, 2], &mut buf);
        assert_eq!(buf[0], WIRE_VERSION);
        let (m, back) = read(&buf);
        assert_eq!(m, meta(5));
        let mut want = ex.clone();
        want.sealed = Some(Box::default());
        assert_eq!(back, want, "an exchange without secrets travels whole");
        assert!(matches!(decode(&[9]), Err(WireError::Version(9))));
        assert!(decode(&[WIRE_VERSION, 0xff]).is_err());
        encode_clock(meta(0), &mut buf);
        assert!(matches!(decode(&buf), Ok(Decoded::Clock(m)) if m == meta(0)));
    }

    /// No secret is published: what detection needs travels instead (the Basic
    /// user name, a JWT's header and claims, keyed hashes that compare equal
    /// across sensors sharing the salt).
    #[test]
    fn secrets_do_not_travel_what_detection_needs_does() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJlLXNlY3JldA";
        let mut ex = crate::http::testing::exchange(
            7,
            3,
            "POST",
            "/api/login?api_key=k3y-s3cret&x=1",
            Some(401),
        );
        ex.request_headers.authorization = Some("Basic Y2Fyb2w6aHVudGVyMg==".into());
        ex.request_headers.api_key = Some("AKIA-secret-key".into());
        ex.request_headers.cookie = Some("sid=cookie-secret".into());
        ex.response_headers = Some(Headers {
            location: Some("/cb?code=oauth-code-secret&state=1".into()),
            ..Default::default()
        });
        ex.response_body_prefix =
            br#"{"access_token":"handed-out-secret","user":{"id":7}}"#.to_vec();
        ex.request_body_prefix = b"user=carol&password=hunter2".to_vec();
        ex.body_credentials = Some(crate::credentials::Credentials {
            user: Some(b"carol".to_vec().into()),
            password: true,
            graphql: false,
        });
        let mut buf = Vec::new();
        encode(&ex, meta(5), Default::default(), [1, 2], &mut buf);
        let text = String::from_utf8_lossy(&buf).to_string();
        for secret in [
            "hunter2",
            "k3y-s3cret",
            "AKIA-secret-key",
            "cookie-secret",
            "Y2Fyb2w6aHVudGVyMg",
            "oauth-code-secret",
            "handed-out-secret",
        ] {
            assert!(!text.contains(secret), "{secret} published");
        }
        let (_, back) = read(&buf);
        let auth = back.request_headers.authorization.as_deref().unwrap();
        assert_eq!(
            crate::credentials::basic_username(auth).as_deref(),
            Some(&b"carol"[..])
        );
        let uri = back.uri.as_deref().unwrap();
        assert!(
            uri.starts_with("/api/login?api_key=") && uri.ends_with("&x=1"),
            "{uri}"
        );
        assert!(back.request_body_prefix.is_empty());
        // The answer keeps its shape: a token is still handed out under its key.
        let body = String::from_utf8(back.response_body_prefix.clone()).unwrap();
        assert!(
            body.starts_with(r#"{"access_token":""#) && body.ends_with(r#"","user":{"id":7}}"#),
            "{body}"
        );
        let c = back.body_credentials.as_ref().unwrap();
        assert!(c.password && c.user.as_deref() != Some(&b"carol"[..]));
        assert_eq!(back.request_headers.cookie.as_deref(), Some(""));
        // The same API key on another sensor with the same salt: the same text.
        let mut again = Vec::new();
        encode(&ex, meta(5), Default::default(), [1, 2], &mut again);
        assert_eq!(
            read(&again).1.request_headers.api_key,
            back.request_headers.api_key
        );
        // A JWT keeps its header and claims, its signature sealed.
        ex.request_headers.authorization = Some(format!("Bearer {jwt}").into());
        encode(&ex, meta(5), Default::default(), [1, 2], &mut buf);
        let (_, back) = read(&buf);
        let auth = back.request_headers.authorization.unwrap();
        assert!(
            auth.starts_with("Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9."),
            "{auth}"
        );
        assert!(!auth.contains("c2lnbmF0dXJl"));
        assert_eq!(back.request_headers.cookie.as_deref(), Some(""));
        // Whatever clients are keyed by, the detector keys and names them as the
        // sensor did, and sees the same principal.
        for mode in ["ip", "api_key", "bearer", "basic", "cookie:sid"] {
            let cfg = crate::identity::IdentityConfig {
                mode: mode.parse().unwrap(),
                salt: [1, 2],
                ..Default::default()
            };
            for auth in [format!("Bearer {jwt}"), "Basic Y2Fyb2w6aHVudGVyMg==".into()] {
                ex.request_headers.authorization = Some(auth.into());
                let ip = ex.client_ip;
                let id = crate::identity::client_id(&ex, ip, &cfg);
                let principals = crate::identity::Sealed::of(&ex, id, &cfg);
                encode(&ex, meta(5), principals, [1, 2], &mut buf);
                let (_, back) = read(&buf);
                assert_eq!(crate::identity::client_id(&back, ip, &cfg), id, "{mode}");
                assert_eq!(
                    crate::identity::principal(&back, [1, 2]),
                    crate::identity::principal(&ex, [1, 2])
                );
            }
        }
    }
}
