//! What a response looks like, as far as telling routes apart needs: the shape of a
//! JSON body (its keys one and two levels down), and the string values it hands out
//! (an object's name in a listing is the same name a later path carries).

use std::hash::BuildHasher;

use crate::http::Exchange;
use crate::jsonscan::{self, Item};

/// Keys read per response (the prefix holds a few dozen at most).
const MAX_KEYS: usize = 48;

/// The shape of a successful GET's JSON body: a hash of its sorted keys at depths 1
/// and 2, tagged by the top value's type. `None` when there is no JSON object or
/// array of objects to read (HTML, empty, compressed), or fewer than two keys.
pub fn json_shape(ex: &Exchange, hasher: &impl BuildHasher) -> Option<u64> {
    if !is_json(ex) {
        return None;
    }
    let body = &ex.response_body_prefix;
    let mut keys: Vec<(usize, &[u8])> = Vec::new();
    let mut top = None;
    jsonscan::scan(body, |depth, key, item| {
        if depth == 0 {
            top = Some(matches!(item, Item::Object));
        }
        if let Some(k) = key
            && (1..=2).contains(&depth)
        {
            keys.push((depth, k));
        }
        // Depth 1 of an array is its elements: their keys are at depth 2.
        keys.len() < MAX_KEYS
    });
    let top = top?;
    if keys.len() < 2 {
        return None;
    }
    keys.sort_unstable();
    keys.dedup();
    let mut h = hasher.hash_one(u8::from(top));
    for (d, k) in keys {
        h = h.rotate_left(7) ^ hasher.hash_one((d, k));
    }
    Some(h)
}

/// Calls `f` with every string value (not key) of a JSON response that could name an
/// object: 2 to 80 bytes, not a URL or a sentence.
pub fn json_strings(ex: &Exchange, mut f: impl FnMut(&[u8])) {
    if !is_json(ex) {
        return;
    }
    jsonscan::scan(&ex.response_body_prefix, |_, _, item| {
        if let Item::Str(s) = item
            && (2..=80).contains(&s.len())
            && !s.contains(&b' ')
            && !s.starts_with(b"http")
            && !s.starts_with(b"/")
        {
            f(s);
        }
        true
    });
}

/// Whether the answer is JSON (by its content type, else by its first byte).
pub fn is_json(ex: &Exchange) -> bool {
    let ct = ex
        .response_headers
        .as_ref()
        .and_then(|h| h.content_type.as_deref());
    match ct {
        // The common spelling first; else `json` anywhere, in any case, looked for
        // only where a `j` stands.
        Some(ct) => {
            ct.starts_with("application/json")
                || memchr::memchr2_iter(b'j', b'J', ct.as_bytes()).any(|i| {
                    ct.as_bytes()[i..]
                        .get(..4)
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"json"))
                })
        }
        None => jsonscan::looks_like_json(&ex.response_body_prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::exchange;

    fn with_body(body: &str) -> Exchange {
        let mut ex = exchange(1, 1, "GET", "/x", Some(200));
        ex.response_body_prefix = body.as_bytes().to_vec();
        ex
    }

    #[test]
    fn json_is_known_by_its_content_type_in_any_spelling() {
        for (ct, want) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/vnd.api+JSON", true),
            ("application/problem+Json", true),
            ("text/x-json", true),
            ("text/html", false),
            ("application/jso", false),
            ("j", false),
            ("", false),
        ] {
            let mut ex = with_body("{}");
            ex.response_headers = Some(crate::http::Headers {
                content_type: Some(ct.into()),
                ..Default::default()
            });
            assert_eq!(is_json(&ex), want, "{ct}");
        }
        // Without a content type, by the first byte.
        assert!(is_json(&with_body("{\"a\":1}")));
    }

    #[test]
    fn siblings_with_the_same_keys_have_the_same_shape() {
        let h = foldhash::fast::FixedState::with_seed(1);
        let a = json_shape(
            &with_body(r#"{"book":{"title":"Dune","author":"x"},"ok":1}"#),
            &h,
        );
        let b = json_shape(
            &with_body(r#"{"ok":0,"book":{"author":"y","title":"Emma"}}"#),
            &h,
        );
        let c = json_shape(&with_body(r#"{"token":"abc","expires":3}"#), &h);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(json_shape(&with_body("<html>"), &h), None);
        // A listing: the keys of its elements.
        let l1 = json_shape(
            &with_body(r#"[{"id":1,"name":"a"},{"id":2,"name":"b"}]"#),
            &h,
        );
        let l2 = json_shape(&with_body(r#"[{"id":1,"total":3}]"#), &h);
        assert!(l1.is_some() && l1 != l2);
    }

    #[test]
    fn names_handed_out_in_a_listing() {
        let mut got = Vec::new();
        json_strings(
            &with_body(
                r#"[{"username":"alice","bio":"I write", "url":"http://x"},{"username":"bob"}]"#,
            ),
            |s| got.push(String::from_utf8_lossy(s).into_owned()),
        );
        assert_eq!(got, ["alice", "bob"]);
    }
}
