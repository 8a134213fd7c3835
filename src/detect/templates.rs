//! Path templates: `/users/1234/orders/9f1c...` becomes `/users/{id}/orders/{hex}` so
//! that endpoints are counted by route, not by object.
//!
//! This is the stateless part of templating (segment shapes that are identifiers on
//! any API: integers, UUIDs, long hex, opaque tokens, emails). Learning templates from
//! per-position value cardinality builds on it.

/// Shortest opaque token (base64/base64url-like, mixed letters and digits) treated as
/// an identifier: shorter mixed segments are often real route names (`v1`, `oauth2`).
const MIN_TOKEN_LEN: usize = 16;
/// Hex strings at least this long are identifiers (object ids are 24, hashes 32+).
const MIN_HEX_LEN: usize = 16;

/// The class of an identifier-like segment, or `None` for a literal route segment.
pub fn segment_class(seg: &str) -> Option<&'static str> {
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some("{id}");
    }
    if is_uuid(b) {
        return Some("{uuid}");
    }
    if b.len() >= MIN_HEX_LEN && b.iter().all(u8::is_ascii_hexdigit) {
        return Some("{hex}");
    }
    if seg.contains('@') && seg.contains('.') {
        return Some("{email}");
    }
    let tokenish = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=' | b'.' | b'~' | b'%'));
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if tokenish && b.len() >= MIN_TOKEN_LEN && digits > 0 && digits < b.len() {
        return Some("{token}");
    }
    None
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The template of a request target: query and fragment dropped, identifier-like
/// segments replaced by their class.
pub fn template(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    // Absolute-form targets (proxies): keep only the path.
    let path = match path.find("://") {
        Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
        None => path,
    };
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment_class(seg).unwrap_or(seg));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_segments_become_classes() {
        let cases = [
            ("/users/1234", "/users/{id}"),
            (
                "/orders/3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f/items",
                "/orders/{uuid}/items",
            ),
            ("/blobs/5f2b8c1e1d2a4c3b9e8f0a1b", "/blobs/{hex}"),
            ("/users/alice@example.com", "/users/{email}"),
            ("/reset/eyJhbGciOiJIUzI1NiJ9abc123", "/reset/{token}"),
            ("/api/v1/login?user=x", "/api/v1/login"),
            ("/oauth2/token", "/oauth2/token"),
            ("http://example.com/a/7", "/a/{id}"),
            ("*", "*"),
            ("", "/"),
        ];
        for (uri, want) in cases {
            assert_eq!(template(uri), want, "{uri}");
        }
    }
}
