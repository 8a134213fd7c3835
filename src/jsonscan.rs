//! A tolerant scanner for JSON in bounded body prefixes (RFC 8259 tokens, no
//! allocation): it reports every value with its depth and the key it belongs to,
//! and stops quietly where the prefix is cut or the bytes stop being JSON. Route
//! inference reads response shapes with it, login detection the credential fields
//! of nested bodies, unusual-endpoint the ids a server hands out on creation.

/// One value met by [`scan`]. Strings are the raw bytes between the quotes
/// (escapes left as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Str(&'a [u8]),
    Num(&'a [u8]),
    Object,
    Array,
    /// `true`, `false`, `null` or anything else that is not a string or number.
    Other,
}

/// Containers nested deeper than this end the scan (a prefix is a few KiB at most).
const MAX_DEPTH: usize = 32;

/// Walks `b`, calling `f(depth, key, item)` for every value (depth 0 is the top
/// value; `key` is set inside objects). `f` returns false to stop.
pub fn scan<'a>(b: &'a [u8], mut f: impl FnMut(usize, Option<&'a [u8]>, Item<'a>) -> bool) {
    let mut stack = [0u8; MAX_DEPTH];
    let mut depth = 0usize;
    let mut key: Option<&'a [u8]> = None;
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
            b'{' | b'[' => {
                let item = if c == b'{' { Item::Object } else { Item::Array };
                if !f(depth, key.take(), item) || depth == MAX_DEPTH {
                    return;
                }
                stack[depth] = c;
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                if depth == 0 {
                    return;
                }
                depth -= 1;
                key = None;
                i += 1;
            }
            b'"' => {
                let Some(end) = string_end(b, i + 1) else {
                    return;
                };
                let s = &b[i + 1..end];
                i = end + 1;
                let in_object = depth > 0 && stack[depth - 1] == b'{';
                let mut j = i;
                while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
                    j += 1;
                }
                if in_object && key.is_none() && b.get(j) == Some(&b':') {
                    key = Some(s);
                    i = j + 1;
                } else if !f(depth, key.take(), Item::Str(s)) {
                    return;
                }
            }
            _ => {
                let start = i;
                // At least the byte that brought us here, whatever it is.
                i += 1;
                while b.get(i).is_some_and(|c| {
                    !matches!(c, b',' | b'}' | b']' | b'{' | b'[' | b'"')
                        && !c.is_ascii_whitespace()
                }) {
                    i += 1;
                }
                let tok = &b[start..i];
                let item = match tok.first() {
                    Some(c) if c.is_ascii_digit() || *c == b'-' => Item::Num(tok),
                    _ => Item::Other,
                };
                if !f(depth, key.take(), item) {
                    return;
                }
            }
        }
    }
}

/// Index of the quote closing a string whose contents start at `from` (`None`: the
/// bytes end inside it).
pub(crate) fn string_end(b: &[u8], mut from: usize) -> Option<usize> {
    // Keys and most values are short: a byte loop finds their end before memchr's
    // set-up would have.
    for (i, &c) in b.get(from..)?.iter().take(24).enumerate() {
        match c {
            b'"' => return Some(from + i),
            b'\\' => {
                from += i + 2;
                return string_end_long(b, from);
            }
            _ => {}
        }
    }
    string_end_long(b, from)
}

/// [`string_end`] past its first bytes.
fn string_end_long(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let j = from + memchr::memchr2(b'"', b'\\', b.get(from..)?)?;
        if b[j] == b'"' {
            return Some(j);
        }
        from = j + 2;
    }
}

/// Whether `b` looks like the start of a JSON object or array.
pub fn looks_like_json(b: &[u8]) -> bool {
    b.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| matches!(c, b'{' | b'['))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(b: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        scan(b, |d, k, it| {
            let k = k.map(|k| String::from_utf8_lossy(k).into_owned());
            let it = match it {
                Item::Str(s) => format!("s:{}", String::from_utf8_lossy(s)),
                Item::Num(s) => format!("n:{}", String::from_utf8_lossy(s)),
                other => format!("{other:?}"),
            };
            v.push(format!("{d}:{}={it}", k.unwrap_or_default()));
            true
        });
        v
    }

    #[test]
    fn nested_values_come_with_their_keys_and_depths() {
        assert_eq!(
            items(br#"{"user":{"email":"a@b.c","password":"x\"y"},"n":[1,-2.5,true]}"#),
            [
                "0:=Object",
                "1:user=Object",
                "2:email=s:a@b.c",
                r#"2:password=s:x\"y"#,
                "1:n=Array",
                "2:=n:1",
                "2:=n:-2.5",
                "2:=Other"
            ]
        );
    }

    #[test]
    fn a_key_named_like_a_value_is_not_confused() {
        assert_eq!(
            items(br#"{"a":"username","username":"v1"}"#),
            ["0:=Object", "1:a=s:username", "1:username=s:v1"]
        );
    }

    #[test]
    fn strings_end_at_the_first_unescaped_quote_short_or_long() {
        let long = "x".repeat(40);
        for (body, want) in [
            (r#"["ab"]"#.to_string(), "ab".to_string()),
            (format!(r#"["{long}"]"#), long.clone()),
            (
                format!(r#"["{long}\"{long}"]"#),
                format!(r#"{long}\"{long}"#),
            ),
            (r#"["a\\"]"#.to_string(), r#"a\\"#.to_string()),
            (
                format!(r#"["{}\"q"]"#, "y".repeat(23)),
                format!(r#"{}\"q"#, "y".repeat(23)),
            ),
            (
                format!(r#"["{}\\"]"#, "z".repeat(22)),
                format!(r#"{}\\"#, "z".repeat(22)),
            ),
        ] {
            assert_eq!(items(body.as_bytes())[1], format!("1:=s:{want}"), "{body}");
        }
    }

    #[test]
    fn cut_and_garbage_input_ends_quietly() {
        assert_eq!(items(br#"{"a":"unterminated"#), ["0:=Object"]);
        items(b"}}}]]]:::,,,\"\\");
        items(&[b'['; 100]);
        items(b"\xff\xfe{\"\xff\":\"\xfe\"}");
        // Regression: a form feed (ASCII whitespace JSON does not allow) once made
        // the scanner spin without moving.
        items(b"{\"a\":\x0c1,\x0b\"b\":\x0c}");
    }
}
