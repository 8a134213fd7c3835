//! Secrets in body prefixes, for what leaves the sensor with `--publish`: the
//! structure stays (detection reads JSON keys, error words, listed ids), each
//! secret value is replaced by what a caller-given `seal` makes of it (a keyed hash
//! on the wire: the same secret gives the same text, so ids and tokens still
//! compare equal, and none can be read back or replayed).
//!
//! A value is a secret by the same rule as in request targets ([`is_secret_name`],
//! [`looks_like_secret`]): under a secret-named key (and everything nested under
//! it), or shaped like a credential wherever it stands. Three readings, chosen by
//! what the bytes look like: JSON (tolerant, cut anywhere), form pairs
//! (`a=b&c=d`), or text, where each word that looks like a credential is sealed
//! (a CSRF token in an HTML form, a bearer token in a message).

use super::{is_secret_name, looks_like_secret};

/// Containers nested deeper than this are copied as they are from there on
/// (a prefix is a few KiB at most; [`crate::jsonscan`] stops at the same depth).
const MAX_DEPTH: usize = 32;

/// `body` with its secrets sealed, or `None` when it holds none (the common case,
/// answered without copying).
pub fn redact_body(body: &[u8], seal: &mut dyn FnMut(&[u8]) -> String) -> Option<Vec<u8>> {
    if body.is_empty() {
        return None;
    }
    if crate::jsonscan::looks_like_json(body) {
        return json(body, seal);
    }
    let first_line = body.split(|c| *c == b'\n').next().unwrap_or(body);
    if body.contains(&b'=') && !first_line.iter().any(|c| matches!(c, b' ' | b'<' | b'\t')) {
        return pairs(body, seal);
    }
    let mut out = Vec::new();
    words(body, &mut out, seal).then_some(out)
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Bytes a credential-shaped word is made of (base64, base64url, JWT dots, hex...).
fn word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'~' | b'+' | b'/' | b'=')
}

/// Appends `text` to `out` with every credential-shaped word sealed; whether any was.
fn words(text: &[u8], out: &mut Vec<u8>, seal: &mut dyn FnMut(&[u8]) -> String) -> bool {
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i < text.len() {
        if !word_byte(text[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && word_byte(text[i]) {
            i += 1;
        }
        // Shorter words are never credentials by shape (looks_like_secret wants 20+).
        if i - start >= 20 && looks_like_secret(&lossy(&text[start..i])) {
            if !changed {
                out.reserve(text.len() + 16);
            }
            out.extend_from_slice(&text[copied..start]);
            out.extend_from_slice(seal(&text[start..i]).as_bytes());
            copied = i;
            changed = true;
        }
    }
    if changed {
        out.extend_from_slice(&text[copied..]);
    }
    changed
}

/// `name=value` pairs joined by `&`, as query strings are redacted
/// ([`super::redact_pairs`]): values of secret names and secret-shaped values sealed.
fn pairs(body: &[u8], seal: &mut dyn FnMut(&[u8]) -> String) -> Option<Vec<u8>> {
    let mut out = String::with_capacity(body.len() + 16);
    super::redact_pairs(&mut out, &lossy(body), '&', seal).then(|| out.into_bytes())
}

/// The JSON reading: keys kept, values under secret keys (at any depth below them)
/// sealed whole, other string values sealed word by word where a word looks like
/// a credential. Numbers and literals under a secret key become sealed strings.
fn json(b: &[u8], seal: &mut dyn FnMut(&[u8]) -> String) -> Option<Vec<u8>> {
    // Per open container: is it an object, and does it sit under a secret key.
    let mut stack = [(false, false); MAX_DEPTH];
    let mut depth = 0usize;
    // The key just read names a secret.
    let mut secret_key = false;
    let mut out: Vec<u8> = Vec::new();
    let mut copied = 0usize;
    let mut changed = false;
    let mut i = 0usize;
    let in_secret = |depth: usize, stack: &[(bool, bool)]| depth > 0 && stack[depth - 1].1;
    while let Some(&c) = b.get(i) {
        match c {
            b'{' | b'[' => {
                if depth == MAX_DEPTH {
                    break;
                }
                let secret = secret_key || in_secret(depth, &stack);
                stack[depth] = (c == b'{', secret);
                depth += 1;
                secret_key = false;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                secret_key = false;
                i += 1;
            }
            b'"' => {
                let end = crate::jsonscan::string_end(b, i + 1);
                let stop = end.unwrap_or(b.len());
                let s = &b[i + 1..stop];
                let mut j = stop + 1;
                while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
                    j += 1;
                }
                let in_object = depth > 0 && stack[depth - 1].0;
                if end.is_some() && in_object && !secret_key && b.get(j) == Some(&b':') {
                    secret_key = is_secret_name(&lossy(s));
                    i = j + 1;
                    continue;
                }
                let whole = secret_key || in_secret(depth, &stack) || looks_like_secret(&lossy(s));
                secret_key = false;
                if whole && !s.is_empty() {
                    out.extend_from_slice(&b[copied..=i]);
                    out.extend_from_slice(seal(s).as_bytes());
                    copied = stop;
                    changed = true;
                } else if s.len() >= 20 {
                    let mut sealed = Vec::new();
                    if words(s, &mut sealed, seal) {
                        out.extend_from_slice(&b[copied..=i]);
                        out.extend_from_slice(&sealed);
                        copied = stop;
                        changed = true;
                    }
                }
                i = stop + 1;
            }
            c if c.is_ascii_whitespace() || c == b',' || c == b':' => i += 1,
            _ => {
                // A number or a literal.
                let start = i;
                while b.get(i).is_some_and(|c| {
                    !matches!(c, b',' | b'}' | b']' | b'{' | b'[' | b'"' | b':')
                        && !c.is_ascii_whitespace()
                }) {
                    i += 1;
                }
                let literal = matches!(&b[start..i], b"true" | b"false" | b"null");
                if (secret_key || in_secret(depth, &stack)) && !literal {
                    out.extend_from_slice(&b[copied..start]);
                    out.push(b'"');
                    out.extend_from_slice(seal(&b[start..i]).as_bytes());
                    out.push(b'"');
                    copied = i;
                    changed = true;
                }
                secret_key = false;
            }
        }
    }
    if !changed {
        return None;
    }
    out.extend_from_slice(&b[copied.min(b.len())..]);
    Some(out)
}

/// A GraphQL request body that carries a password (a login mutation): every string
/// literal of its `query` documents and every string of its other members
/// (`variables`...) sealed, numbers under secret names too; names, operations,
/// fields and argument names stay, so detection reads the same operations and
/// login attempts (distinct user names stay distinct). `None` when the body is not
/// whole JSON (cut by the prefix): then it is not published at all.
pub fn redact_graphql(body: &[u8], seal: &mut dyn FnMut(&[u8]) -> String) -> Option<Vec<u8>> {
    use serde_json::Value;
    fn walk(v: &mut Value, key: Option<&str>, seal: &mut dyn FnMut(&[u8]) -> String) {
        match v {
            Value::String(s) if key == Some("query") => *s = graphql_literals(s, seal),
            // The operation's name is a name, not a value.
            Value::String(_) if key == Some("operationName") => {}
            Value::String(s) => *s = seal(s.as_bytes()),
            Value::Number(n) if key.is_some_and(is_secret_name) => {
                *v = Value::String(seal(n.to_string().as_bytes()))
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, key, seal)),
            Value::Object(m) => m.iter_mut().for_each(|(k, i)| walk(i, Some(k), seal)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    walk(&mut v, None, seal);
    serde_json::to_vec(&v).ok()
}

/// A GraphQL document with the contents of its string literals (`"..."` and
/// `"""..."""`) sealed; comments dropped (they could quote anything).
fn graphql_literals(doc: &str, seal: &mut dyn FnMut(&[u8]) -> String) -> String {
    let b = doc.as_bytes();
    let mut out = String::with_capacity(doc.len() + 32);
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                out.push_str(&doc[copied..i]);
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
                copied = i;
            }
            b'"' => {
                let block = b[i..].starts_with(b"\"\"\"");
                let open = if block { 3 } else { 1 };
                let start = i + open;
                let mut j = start;
                let end = loop {
                    if j >= b.len() {
                        break b.len();
                    }
                    if b[j] == b'\\' {
                        j += 2;
                    } else if block && b[j..].starts_with(b"\"\"\"") || !block && b[j] == b'"' {
                        break j;
                    } else {
                        j += 1;
                    }
                };
                let end = end.min(b.len());
                out.push_str(&doc[copied..start.min(b.len())]);
                if end > start {
                    out.push_str(&seal(&b[start..end]));
                }
                i = (end + open).min(b.len());
                out.push_str(&doc[end..i]);
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&doc[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str) -> Option<String> {
        let mut seal = |s: &[u8]| format!("H{}", s.len());
        redact_body(body.as_bytes(), &mut seal).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn json_secrets_are_sealed_structure_stays() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA";
        let body = format!(
            r#"{{"accessToken":"{jwt}","user":{{"id":42,"name":"ann"}},"refresh_token":"r-1","note":"Bearer {jwt} ok","pin":1234,"credentials":{{"user":"bob","list":["a","b"]}},"ok":true}}"#
        );
        let got = run(&body).unwrap();
        assert_eq!(
            got,
            r#"{"accessToken":"H59","user":{"id":42,"name":"ann"},"refresh_token":"H3","note":"Bearer H59 ok","pin":"H4","credentials":{"user":"H3","list":["H1","H1"]},"ok":true}"#
        );
        // Tokens handed out are still seen as tokens, error words still read.
        assert!(crate::jsonscan::looks_like_json(got.as_bytes()));
        assert_eq!(run(r#"{"error":"invalid password","items":[1,2,3]}"#), None);
        assert_eq!(run(r#"[{"id":"5f8d0d55b54764421b7156c3"}]"#), None);
    }

    #[test]
    fn cut_and_hostile_json_is_handled() {
        // Cut inside a secret value: what there is of it is sealed.
        assert_eq!(
            run(r#"{"a":1,"token":"abcdef"#).as_deref(),
            Some(r#"{"a":1,"token":"H6"#)
        );
        // Cut right after the key.
        assert_eq!(run(r#"{"token":"#), None);
        // Escapes inside strings, a key-looking value, unbalanced brackets, depth.
        assert_eq!(
            run(r#"{"password":"a\"b","x":"y"}]]]}"#).as_deref(),
            Some(r#"{"password":"H4","x":"y"}]]]}"#)
        );
        let deep = "[".repeat(100) + r#"{"token":"x"}"#;
        assert_eq!(run(&deep), None);
        for junk in [
            "{",
            "[\"",
            "{\"a\":",
            "{\"\\",
            "{::::}",
            "\"\"\"",
            "{\"token\"}",
        ] {
            let _ = run(junk);
        }
    }

    #[test]
    fn forms_and_text() {
        assert_eq!(
            run("grant_type=refresh_token&refresh_token=abc&client_id=web").as_deref(),
            Some("grant_type=refresh_token&refresh_token=H3&client_id=web")
        );
        assert_eq!(run("page=2&size=10"), None);
        let html = r#"<input type="hidden" name="csrf" value="Xk9QpL2mZr7TnB4vWc8YdE1s">"#;
        assert_eq!(
            run(html).as_deref(),
            Some(r#"<input type="hidden" name="csrf" value="H24">"#)
        );
        assert_eq!(run("<p>Invalid username or password</p>"), None);
    }

    #[test]
    fn graphql_logins_keep_their_operations_not_their_values() {
        let mut seal = |s: &[u8]| format!("H{}", s.len());
        let body = br#"[{"query":"mutation L($p: String!) { a: login(username: \"ann\", password: $p) { token } # pw: hunter2\n b: login(username: \"bob\", password: \"\"\"x\\\"\"\"y\"\"\") { token } }","variables":{"p":"hunter2","pin":1234,"n":5},"operationName":"L"}]"#;
        let out = redact_graphql(body, &mut seal).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        for secret in ["hunter2", "ann", "bob", "x\\"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let req = crate::graphql::from_body(&out).unwrap();
        let orig = crate::graphql::from_body(body).unwrap();
        assert_eq!(req.operations.len(), orig.operations.len());
        assert!(
            text.contains(r#"login(username: \"H3\", password: $p)"#),
            "{text}"
        );
        assert!(text.contains(r#""operationName":"L""#) && text.contains(r#""n":5"#));
        assert_eq!(
            redact_graphql(br#"{"query":"mutation { login(pass"#, &mut seal),
            None
        );
        for junk in ["\"", "\"\"\"", "\"\\", "#", "\"\"\"a\\"] {
            let _ = graphql_literals(junk, &mut seal);
        }
    }
}
