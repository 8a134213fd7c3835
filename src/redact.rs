//! What must never leave the sensor, decided by rule rather than by a list of known
//! parameter names: a value is a secret when its name means a credential in any
//! spelling or encoding (`api_key`, `apiKey`, `X-Api-Key`, `api%5Fkey`, `session_id`,
//! `sig`, an OAuth `code`...), or when it looks like one wherever it stands (a JWT,
//! a long random mixed-case token, an AWS access key id). Request targets are
//! redacted in every position a secret can take: userinfo of an absolute-form
//! target, matrix parameters (`;jsessionid=`), path segments, query values and the
//! fragment.

use std::borrow::Cow;

use crate::routes::percent_decoded;

mod body;
pub use body::{redact_body, redact_graphql};

/// Words that make a parameter name a credential when they are a whole word of it
/// (`session_id`, `apiKey`, `X-Auth`, `otp`).
const SECRET_WORDS: &[&str] = &[
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "passcode",
    "pin",
    "auth",
    "authorization",
    "sig",
    "signature",
    "session",
    "sessionid",
    "sid",
    "code",
    "jwt",
    "assertion",
    "credential",
    "credentials",
    "otp",
    "ticket",
    "bearer",
    "cookie",
    "hmac",
    "saml",
    "samlresponse",
];

/// Fragments that make a name a credential wherever they sit in it, words joined
/// (`accesstoken`, `xapikey`, `phpsessid`, `jsessionid`, `xamzsignature`).
const SECRET_PARTS: &[&str] = &[
    "token",
    "secret",
    "passw",
    "apikey",
    "sessid",
    "sessionid",
    "signature",
    "credential",
    "assertion",
    "jwt",
    "bearer",
    "privatekey",
    "accesskey",
];

/// Replacement text for a secret.
pub const REDACTED: &str = "REDACTED";

/// Whether a parameter (or field) name means a credential, in any spelling:
/// percent-decoded, split into words at separators and at `camelCase` humps.
pub fn is_secret_name(name: &str) -> bool {
    let name = percent_decoded(name);
    // Lower-cased letters and digits, words joined; names past the stack buffer (no
    // real parameter name) fall back to the heap.
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let joined: &mut [u8] = if name.len() <= stack.len() {
        &mut stack
    } else {
        heap.resize(name.len(), 0);
        &mut heap
    };
    let (mut n, mut word_start) = (0, 0);
    let mut prev_lower = false;
    let mut hit = false;
    for &c in name.iter() {
        if !c.is_ascii_alphanumeric() {
            hit |= is_secret_word(&joined[word_start..n]);
            word_start = n;
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            hit |= is_secret_word(&joined[word_start..n]);
            word_start = n;
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        joined[n] = c.to_ascii_lowercase();
        n += 1;
    }
    hit |= is_secret_word(&joined[word_start..n]);
    let joined = &joined[..n];
    hit || joined.ends_with(b"key") || crate::routes::contains_any(joined, SECRET_PARTS)
}

/// Whether one lower-cased word of a name is a [`SECRET_WORDS`] word.
fn is_secret_word(word: &[u8]) -> bool {
    !word.is_empty() && SECRET_WORDS.iter().any(|w| w.as_bytes() == word)
}

/// Whether a value looks like a credential wherever it appears: a JWT, a long random
/// token mixing upper case, lower case and digits, or an AWS access key id. Plain
/// identifiers (numbers, hex, UUIDs, words) do not.
pub fn looks_like_secret(value: &str) -> bool {
    let v = percent_decoded(value);
    let b = &v[..];
    let b64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=' | b'+' | b'/');
    // JWT / JWS / JWE: base64url JSON header `{"...` then two or more dot-parts.
    if b.len() >= 20
        && b.starts_with(b"eyJ")
        && b.iter().filter(|c| **c == b'.').count() >= 2
        && b.iter().all(|c| b64(c) || *c == b'.')
    {
        return true;
    }
    // AWS access key ids.
    if b.len() == 20
        && (b.starts_with(b"AKIA") || b.starts_with(b"ASIA"))
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return true;
    }
    b.len() >= 24
        && b.iter().all(b64)
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
}

/// A path segment without its matrix parameters (`cart;jsessionid=X` → `cart`).
pub fn without_matrix(seg: &str) -> &str {
    crate::routes::before(seg, b';')
}

/// `name=value` pairs (query or matrix): values of secret names and secret-looking
/// values replaced by what `seal` makes of them. Returns whether anything changed.
fn redact_pairs(out: &mut String, pairs: &str, sep: char, seal: Seal<'_>) -> bool {
    let mut changed = false;
    for (i, kv) in pairs.split(sep).enumerate() {
        if i > 0 {
            out.push(sep);
        }
        if !secret_pair(kv) {
            out.push_str(kv);
            continue;
        }
        let value = match kv.split_once('=') {
            Some((k, v)) => {
                out.push_str(k);
                out.push('=');
                v
            }
            None => kv,
        };
        out.push_str(&seal(value.as_bytes()));
        changed = true;
    }
    changed
}

/// What a secret is replaced with: [`REDACTED`] in logs, a keyed hash on the wire.
pub type Seal<'a> = &'a mut dyn FnMut(&[u8]) -> String;

/// Whether a `name=value` pair (or a bare value) is redacted: a value under a
/// secret name, or a value that looks like a secret.
fn secret_pair(kv: &str) -> bool {
    match kv.split_once('=') {
        Some((k, v)) => !v.is_empty() && (is_secret_name(k) || looks_like_secret(v)),
        None => looks_like_secret(kv),
    }
}

/// Whether the target needs no redaction on sight: no query, matrix parameter,
/// fragment or userinfo, and no path segment long enough to be a credential that
/// looks like one (the common case, answered without allocating; segments are
/// looked at only in targets of 20 bytes or more).
fn quick_clean(uri: &str) -> bool {
    let b = uri.as_bytes();
    // Folded without stopping early, so the compiler compares many bytes at once.
    let special = b.iter().fold(false, |acc, &c| {
        acc | matches!(c, b'?' | b';' | b'#' | b'@')
    });
    if special {
        return false;
    }
    if b.len() < 20 {
        return true;
    }
    let mut seg_start = 0;
    for i in memchr::memchr_iter(b'/', b).chain(std::iter::once(b.len())) {
        if i - seg_start >= 20 && looks_like_secret(&uri[seg_start..i]) {
            return false;
        }
        seg_start = i + 1;
    }
    true
}

/// A request target with every secret replaced by `REDACTED`: userinfo of an
/// absolute-form target, secret-looking path segments, matrix parameters and query
/// values of secret names or secret-looking values, and the fragment.
pub fn redact_uri(uri: &str) -> Cow<'_, str> {
    if quick_clean(uri) {
        return Cow::Borrowed(uri);
    }
    // A clean path and a query of harmless pairs (`?page=2`), the next most common
    // case: checked without building the redacted copy.
    if !uri.contains('#')
        && let Some((path, query)) = uri.split_once('?')
        && quick_clean(path)
        && !query.split('&').any(secret_pair)
    {
        return Cow::Borrowed(uri);
    }
    redact_built(uri, &mut |_| REDACTED.to_string())
}

/// [`redact_uri`] with each secret replaced by what `seal` makes of it (the wire's
/// keyed hash keeps distinct secrets distinct, so ids and routes judge alike).
pub fn redact_uri_with<'u>(uri: &'u str, seal: Seal<'_>) -> Cow<'u, str> {
    if quick_clean(uri) {
        return Cow::Borrowed(uri);
    }
    redact_built(uri, seal)
}

/// [`redact_uri`] without its fast paths: the target rebuilt piece by piece.
fn redact_built<'u>(uri: &'u str, seal: Seal<'_>) -> Cow<'u, str> {
    let mut out = String::with_capacity(uri.len() + 16);
    let mut changed = false;
    let (before_frag, fragment) = match uri.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (uri, None),
    };
    let (path, query) = match before_frag.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_frag, None),
    };
    // Absolute form: `scheme://userinfo@host/...`.
    let mut path = path;
    if let Some(i) = path.find("://") {
        let auth_start = i + 3;
        let auth_end = path[auth_start..]
            .find('/')
            .map_or(path.len(), |j| auth_start + j);
        out.push_str(&path[..auth_start]);
        let authority = &path[auth_start..auth_end];
        match authority.rsplit_once('@') {
            Some((user, host)) => {
                out.push_str(&seal(user.as_bytes()));
                out.push('@');
                out.push_str(host);
                changed = true;
            }
            None => out.push_str(authority),
        }
        path = &path[auth_end..];
    }
    for (i, seg) in crate::routes::segments(path).enumerate() {
        if i > 0 {
            out.push('/');
        }
        let (name, matrix) = match seg.split_once(';') {
            Some((n, m)) => (n, Some(m)),
            None => (seg, None),
        };
        if looks_like_secret(name) {
            out.push_str(&seal(name.as_bytes()));
            changed = true;
        } else {
            out.push_str(name);
        }
        if let Some(m) = matrix {
            out.push(';');
            changed |= redact_pairs(&mut out, m, ';', seal);
        }
    }
    if let Some(q) = query {
        out.push('?');
        changed |= redact_pairs(&mut out, q, '&', seal);
    }
    if let Some(f) = fragment {
        out.push('#');
        if !f.is_empty() {
            out.push_str(&seal(f.as_bytes()));
            changed = true;
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_mean_credentials_in_any_spelling() {
        for n in [
            "password",
            "Passwd",
            "pwd",
            "key",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "api%5Fkey",
            "api%5fKEY",
            "access_token",
            "accessToken",
            "refresh-token",
            "session_id",
            "SessionId",
            "PHPSESSID",
            "jsessionid",
            "sid",
            "sig",
            "X-Amz-Signature",
            "code",
            "client_secret",
            "jwt",
            "assertion",
            "SAMLResponse",
            "otp",
            "auth",
            "x-auth-token",
            "licenseKey",
            "private_key",
            "credentials",
            "pass",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "page",
            "limit",
            "q",
            "sort",
            "user",
            "id",
            "keyword",
            "passage",
            "session_count_x",
            "format",
        ] {
            if n == "session_count_x" {
                // A word of it is `session`: redacted, harmlessly.
                assert!(is_secret_name(n));
                continue;
            }
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn the_fast_paths_answer_as_the_full_rebuild() {
        let fixed = [
            "/a?x=1#f",
            "/a;b?x=1",
            "http://u:p@h/x?y=1",
            "/a?token=abc",
            "/a?=x",
            "/a?x",
            "/a??b=c",
            "/a?&&",
            "/a?page=2&limit=10",
            "/a?q=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "/s/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl?x=1",
            "/k/AKIAIOSFODNN7EXAMPLE?x=1",
            "/a?sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        ];
        for uri in fixed {
            assert_eq!(
                redact_uri(uri),
                redact_built(uri, &mut |_| REDACTED.into()),
                "{uri}"
            );
        }
        // Generated targets over the bytes that matter to the rules.
        let alphabet = b"a=?&#;/@:%5TkeyJ._-AK";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut s = String::from("/");
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                s.push(alphabet[(y >> 33) as usize % alphabet.len()] as char);
            }
            assert_eq!(
                redact_uri(&s),
                redact_built(&s, &mut |_| REDACTED.into()),
                "{s}"
            );
        }
    }

    #[test]
    fn values_that_look_like_credentials() {
        for v in [
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "AKIAIOSFODNN7EXAMPLE",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "ghp_R8a9b0C1d2E3f4G5h6I7j8K9l0M1n2O3",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRg==",
        ] {
            assert!(looks_like_secret(v), "{v}");
        }
        for v in [
            "12345",
            "550e8400-e29b-41d4-a716-446655440000",
            "5f2b9c1e8a7d6f4e3c2b1a0f",
            "lessons-from-a-year-of-deploys",
            "alice",
            "2024-annual-report",
        ] {
            assert!(!looks_like_secret(v), "{v}");
        }
    }

    #[test]
    fn every_position_of_a_target_is_redacted() {
        let cases = [
            (
                "/a?x=1&password=hunter2&Token=abc",
                "/a?x=1&password=REDACTED&Token=REDACTED",
            ),
            (
                "/a?api%5Fkey=k1&sig=s1&code=c1",
                "/a?api%5Fkey=REDACTED&sig=REDACTED&code=REDACTED",
            ),
            (
                "http://bob:pw1@api.example/x?y=1",
                "http://REDACTED@api.example/x?y=1",
            ),
            (
                "/shop/cart;jsessionid=abc123;lang=en/view",
                "/shop/cart;jsessionid=REDACTED;lang=en/view",
            ),
            ("/cb#access_token=t1&state=2", "/cb#REDACTED"),
            (
                "/verify/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl/done",
                "/verify/REDACTED/done",
            ),
            (
                "/q?next=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                "/q?next=REDACTED",
            ),
            ("/users/42?verbose=1", "/users/42?verbose=1"),
            (
                "/files/550e8400-e29b-41d4-a716-446655440000",
                "/files/550e8400-e29b-41d4-a716-446655440000",
            ),
        ];
        for (uri, want) in cases {
            assert_eq!(redact_uri(uri), want, "{uri}");
        }
        assert!(matches!(redact_uri("/plain/path"), Cow::Borrowed(_)));
    }
}
