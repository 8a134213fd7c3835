//! Reading a header block: the start line, the field lines (obsolete folding,
//! limits) and the facts the pipeline keeps from them (Host, framing, credentials,
//! forwarding chains, the fields Zeek logs).

use super::*;

/// The version if the request line ends in ` HTTP/x.y`.
pub(super) fn request_version(line: &[u8]) -> Option<(usize, &[u8])> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // The common spelling, ` HTTP/` and three bytes without whitespace, answered
    // without the general scan (the same answer: the last space is the one before
    // `HTTP/`).
    if let Some(at) = line.len().checked_sub(9) {
        let version = &line[at + 6..];
        if &line[at..at + 6] == b" HTTP/" && !version.iter().any(u8::is_ascii_whitespace) {
            return Some((at, version));
        }
    }
    let line = trim_end(line);
    let sp = line.iter().rposition(|b| *b == b' ')?;
    let word = &line[sp + 1..];
    (word.len() >= 6 && word[..5].eq_ignore_ascii_case(b"HTTP/")).then(|| (sp, &word[5..]))
}

pub(super) fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..n]
}

pub(super) fn trim(s: &[u8]) -> &[u8] {
    // Field names and values rarely carry more than the one space after the colon.
    let s = match s {
        [b' ', rest @ ..] => rest,
        _ => s,
    };
    match (s.first(), s.last()) {
        (Some(a), Some(z)) if !a.is_ascii_whitespace() && !z.is_ascii_whitespace() => {
            return s;
        }
        _ => {}
    }
    let s = trim_end(s);
    let n = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[n..]
}

pub(super) fn text(b: &[u8]) -> Text {
    // Nearly always ASCII: checked a word at a time (`from_utf8`'s general decoder
    // costs several times more on values this short), copied inline when short.
    if b.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Text::new(unsafe { std::str::from_utf8_unchecked(b) });
    }
    // Valid UTF-8 is copied in one go; only invalid bytes take the lossy path.
    match std::str::from_utf8(b) {
        Ok(s) => Text::new(s),
        Err(_) => Text::from(String::from_utf8_lossy(b)),
    }
}

/// [`text`] for a start line's method or version: the common ones are constants
/// (no scan, no copy).
pub(super) fn token(b: &[u8]) -> Text {
    match b {
        b"1.1" => Text::const_new("1.1"),
        b"1.0" => Text::const_new("1.0"),
        b"GET" => Text::const_new("GET"),
        b"POST" => Text::const_new("POST"),
        b"PUT" => Text::const_new("PUT"),
        b"DELETE" => Text::const_new("DELETE"),
        b"PATCH" => Text::const_new("PATCH"),
        b"HEAD" => Text::const_new("HEAD"),
        _ => text(b),
    }
}

/// The reason phrase after a status code: leading spaces and tabs skipped, the
/// rest kept as sent, as Zeek reads it (trailing whitespace, trimmed with the line's,
/// excepted); cut at [`MAX_REASON`] bytes (a UTF-8 character cut there becomes
/// U+FFFD).
pub(super) fn reason(after_code: &[u8]) -> Text {
    let start = after_code
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(after_code.len());
    match &after_code[start..] {
        b"OK" => Text::const_new("OK"),
        b"" => Text::const_new(""),
        r => text(&r[..r.len().min(MAX_REASON)]),
    }
}

pub(super) fn parse_start_line(role: Role, line: &[u8]) -> Result<StartLine, ParseError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match role {
        Role::Request => {
            let sp = line
                .iter()
                .position(|b| *b == b' ')
                .ok_or(ParseError::BadStartLine)?;
            let method = &line[..sp];
            if method.is_empty()
                || method.len() > MAX_METHOD_LEN
                || !method
                    .iter()
                    .all(|b| b.is_ascii_alphabetic() || *b == b'-' || *b == b'_')
            {
                return Err(ParseError::BadStartLine);
            }
            let rest = &line[sp..];
            match request_version(line).filter(|(vsp, _)| *vsp >= sp) {
                Some((vsp, version)) => Ok(StartLine::Request {
                    method: token(method),
                    // Everything between the method and the version, as Zeek logs it
                    // (a target with a space in it is an attack worth seeing whole).
                    uri: text(trim(&line[sp..vsp.max(sp)])),
                    version: token(version),
                }),
                None => {
                    // HTTP/0.9 (or a request line without its version, which servers
                    // treat the same way): a method token and an origin-form target.
                    let uri = trim(rest);
                    if !uri.starts_with(b"/") || uri.contains(&b' ') {
                        return Err(ParseError::BadStartLine);
                    }
                    Ok(StartLine::Request {
                        method: text(method),
                        uri: text(uri),
                        version: Text::const_new("0.9"),
                    })
                }
            }
        }
        Role::Response => {
            if line.len() < 6 || !line[..5].eq_ignore_ascii_case(b"HTTP/") {
                return Err(ParseError::BadStartLine);
            }
            let vend = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
            let version = token(&line[5..vend]);
            let rest = trim(&line[vend..]);
            let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let digits = &rest[..n];
            // Three digits, the first 1-9 (RFC 9110 §15: codes below 100 do not exist).
            if digits.len() != 3 || digits[0] == b'0' {
                return Err(ParseError::BadStartLine);
            }
            let status = digits.iter().fold(0u16, |a, d| a * 10 + (d - b'0') as u16);
            Ok(StartLine::Response {
                version,
                status,
                reason: reason(&rest[n..]),
            })
        }
    }
}

/// Keeps the last 16 bytes of a skipped start line (`tail` then `more`).
pub(super) fn keep_tail(tail: &mut Vec<u8>, more: &[u8]) {
    tail.extend_from_slice(&more[more.len().saturating_sub(16)..]);
    let cut = tail.len().saturating_sub(16);
    tail.drain(..cut);
}

/// Header fields as they are read: the known ones applied, the rest counted.
#[derive(Debug, Default)]
pub(super) struct FieldState {
    pub(super) h: Headers,
    pub(super) warning: Option<ParseError>,
    pub(super) count: usize,
    pub(super) cl_values: ContentLengths,
}

/// The Content-Length values of a head: the first, and whether another differed
/// (no allocation per head).
#[derive(Debug, Default)]
pub(super) struct ContentLengths {
    pub(super) first: Option<u64>,
    pub(super) differ: bool,
}

impl ContentLengths {
    pub(super) fn push(&mut self, n: u64) {
        match self.first {
            None => self.first = Some(n),
            Some(f) => self.differ |= f != n,
        }
    }
}

impl FieldState {
    /// One field line, folded continuations joined; it has a colon. Fields past
    /// [`MAX_HEADERS`] are flagged, but known ones still apply: padding with many
    /// fields must not hide a `Content-Length` or an `Authorization` behind it.
    pub(super) fn field(&mut self, colon: usize, line: &[u8]) {
        self.count += 1;
        if self.count > MAX_HEADERS {
            self.h.overflow = true;
            self.warning = Some(ParseError::TooManyHeaders);
        }
        apply_field(
            &mut self.h,
            &mut self.cl_values,
            trim(&line[..colon]),
            trim(&line[colon + 1..]),
        );
    }

    /// One field already split into name and value (an HTTP/2 header list).
    pub(super) fn named(&mut self, name: &[u8], value: &[u8]) {
        self.count += 1;
        if self.count > MAX_HEADERS {
            self.h.overflow = true;
            self.warning = Some(ParseError::TooManyHeaders);
        }
        apply_field(&mut self.h, &mut self.cl_values, name, value);
    }

    pub(super) fn finish(mut self, start: StartLine) -> Head {
        match self.cl_values {
            ContentLengths { first: None, .. } => {}
            ContentLengths {
                first: Some(n),
                differ: false,
            } => self.h.content_length = Some(n),
            _ => {
                self.h.content_length_invalid = true;
                self.warning = Some(ParseError::BadContentLength);
            }
        }
        if self.h.content_length_invalid {
            self.warning = Some(ParseError::BadContentLength);
        }
        if self.h.transfer_encoding
            && (self.h.content_length.is_some() || self.h.content_length_invalid)
        {
            self.warning = Some(ParseError::TeAndCl);
        }
        Head {
            start,
            headers: self.h,
            warning: self.warning,
        }
    }
}

/// Lines of a block split at `\n`, as `split` would give them: at the newlines
/// already noted, then found with memchr.
pub(super) struct Lines<'a> {
    pub(super) rest: Option<&'a [u8]>,
    /// Offsets into `block` of noted newlines not yet used.
    pub(super) noted: &'a [u32],
    /// Offset of `rest` in the block.
    pub(super) at: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if let Some((&n, more)) = self.noted.split_first() {
            self.noted = more;
            let i = (n as usize).wrapping_sub(self.at);
            if i < rest.len() && rest[i] == b'\n' {
                self.at += i + 1;
                self.rest = Some(&rest[i + 1..]);
                return Some(&rest[..i]);
            }
            // Not this block's newline (cannot happen): search instead.
            self.noted = &[];
        }
        match memchr(b'\n', rest) {
            Some(i) => {
                self.at += i + 1;
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Parses a complete head (start line and header fields, terminator included).
pub fn parse_head(role: Role, block: &[u8]) -> Result<Head, ParseError> {
    parse_head_split(role, block, &Newlines::default())
}

/// [`parse_head`] with the newlines [`head_end_noting`] found in `block`.
pub(super) fn parse_head_split(
    role: Role,
    block: &[u8],
    nl: &Newlines,
) -> Result<Head, ParseError> {
    let mut lines = Lines {
        rest: Some(block),
        noted: &nl.at[..nl.n],
        at: 0,
    };
    let first = lines.next().ok_or(ParseError::BadStartLine)?;
    let start = parse_start_line(role, first)?;
    let mut fs = FieldState::default();
    // A field is applied once the next line shows it is not continued by obsolete
    // line folding (RFC 9112 §5.2); only a folded line is copied.
    let mut pending: Option<(usize, Cow<'_, [u8]>)> = None;
    for raw in lines {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = pending.as_mut() {
                let v = v.to_mut();
                v.push(b' ');
                v.extend_from_slice(trim(line));
            }
            continue;
        }
        if let Some((colon, line)) = pending.take() {
            fs.field(colon, &line);
        }
        match memchr(b':', line) {
            Some(colon) => pending = Some((colon, Cow::Borrowed(line))),
            None => fs.warning = Some(ParseError::BadHeaderLine),
        }
    }
    if let Some((colon, line)) = pending.take() {
        fs.field(colon, &line);
    }
    Ok(fs.finish(start))
}

/// Records one header field in `h` if it is one the pipeline uses.
/// Whether a coding list names a coding other than `identity` and `except`
/// (`gzip`, `br`...: the body is not readable as sent).
fn has_coding(value: &[u8], except: &[u8]) -> bool {
    value.split(|b| *b == b',').map(trim).any(|c| {
        !c.is_empty() && !c.eq_ignore_ascii_case(b"identity") && !c.eq_ignore_ascii_case(except)
    })
}

pub(super) fn apply_field(
    h: &mut Headers,
    cl_values: &mut ContentLengths,
    name: &[u8],
    value: &[u8],
) {
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    match name.len() {
        4 if is(b"host") => h.host = Some(text(value)),
        10 if is(b"user-agent") => h.user_agent = Some(text(value)),
        12 if is(b"content-type") => h.content_type = Some(text(value)),
        // The common case: one value.
        14 if is(b"content-length") && !value.contains(&b',') => {
            match parse_content_length(value) {
                Some(n) => cl_values.push(n),
                None => h.content_length_invalid = true,
            }
        }
        // RFC 9110 §8.6: a list of identical values (`20, 20`, what a proxy that
        // merged two fields sends) is that one value; differing ones are invalid.
        14 if is(b"content-length") => {
            // Empty list members are nothing (RFC 9110 §5.6.1); a field with no
            // value at all is invalid.
            let mut any = false;
            for v in value.split(|b| *b == b',').filter(|v| !trim(v).is_empty()) {
                any = true;
                match parse_content_length(v) {
                    Some(n) => cl_values.push(n),
                    None => h.content_length_invalid = true,
                }
            }
            h.content_length_invalid |= !any;
        }
        17 if is(b"transfer-encoding") => {
            h.transfer_encoding = true;
            h.content_encoded |= has_coding(value, b"chunked");
            // Chunked only counts as the final coding.
            let last = value.rsplit(|b| *b == b',').next().map(trim).unwrap_or(&[]);
            h.chunked = last.eq_ignore_ascii_case(b"chunked");
        }
        10 if is(b"connection") => {
            h.connection_close |= contains_ignore_case(value, b"close");
            h.upgrade |= contains_ignore_case(value, b"upgrade");
        }
        6 if is(b"expect") => h.expect_continue = value.eq_ignore_ascii_case(b"100-continue"),
        // Repeated fields are one comma-separated list (RFC 9110 §5.3).
        15 if is(b"x-forwarded-for") => append_list(&mut h.x_forwarded_for, value),
        9 if is(b"forwarded") => append_list(&mut h.forwarded, value),
        13 if is(b"authorization") => h.authorization = Some(text(value)),
        6 if is(b"cookie") => {
            h.has_cookie = true;
            append_list(&mut h.cookie, value);
        }
        9 if is(b"x-api-key") => h.api_key = Some(text(value)),
        7 if is(b"api-key") => h.api_key = Some(text(value)),
        // After the common seven-letter names: only h2c upgrades need it.
        7 if is(b"upgrade") => {
            h.upgrade_h2c = value
                .split(|b| *b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(b"h2c"))
        }
        10 if is(b"set-cookie") => {
            h.has_set_cookie = true;
            // A CSRF cookie is re-sent with every form, failed logins included.
            let name = value.split(|c| *c == b'=').next().unwrap_or(b"");
            let lower = name.to_ascii_lowercase();
            let csrf = memchr::memmem::find(&lower, b"csrf").is_some()
                || memchr::memmem::find(&lower, b"xsrf").is_some();
            h.sets_session_cookie |= !csrf;
        }
        8 if is(b"location") => h.location = Some(text(value)),
        7 if is(b"referer") => h.extra.get_or_insert_default().referrer = Some(text(value)),
        6 if is(b"origin") => h.extra.get_or_insert_default().origin = Some(text(value)),
        3 if is(b"via") => proxy(h, ProxyHeader::Via, value),
        9 if is(b"client-ip") => proxy(h, ProxyHeader::ClientIp, value),
        16 if is(b"content-encoding") => h.content_encoded |= has_coding(value, b""),
        16 if is(b"x-forwarded-from") => proxy(h, ProxyHeader::XForwardedFrom, value),
        16 if is(b"proxy-connection") => proxy(h, ProxyHeader::ProxyConnection, value),
        16 if is(b"xroxy-connection") => proxy(h, ProxyHeader::XroxyConnection, value),
        _ => {}
    }
}

/// Keeps one proxy header, up to [`MAX_PROXIED`] of them.
pub(super) fn proxy(h: &mut Headers, name: ProxyHeader, value: &[u8]) {
    let proxied = &mut h.extra.get_or_insert_default().proxied;
    if proxied.len() < MAX_PROXIED {
        proxied.push((name, text(value)));
    }
}

/// Longest forwarding chain kept (`X-Forwarded-For`, `Forwarded`).
pub(super) const MAX_CHAIN: usize = 4096;

/// Joins repeated list fields. Forwarding chains are read from the right (the
/// nearest proxy appends last), so past [`MAX_CHAIN`] the leftmost hops go: an
/// attacker's long chain cannot push out the hop a trusted proxy added.
pub(super) fn append_list(field: &mut Option<String>, value: &[u8]) {
    let v = field.get_or_insert_with(String::new);
    if !v.is_empty() {
        v.push_str(", ");
    }
    v.push_str(&String::from_utf8_lossy(value));
    if v.len() > MAX_CHAIN {
        let cut = v.len() - MAX_CHAIN;
        // A comma is ASCII, so the cut lands on a character boundary.
        let start = memchr::memchr(b',', &v.as_bytes()[cut..]).map_or(v.len(), |i| cut + i + 1);
        v.drain(..start);
    }
}

pub(super) fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Content-Length: ASCII digits only (leading zeros allowed), at most `i64::MAX`.
#[inline]
pub(super) fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Servers hold the length in a signed 64-bit off_t: anything larger is invalid
    // for them, so it is for us (and the bytes after the head are the next message).
    v.iter()
        .try_fold(0u64, |a, d| {
            a.checked_mul(10)?.checked_add((d - b'0') as u64)
        })
        .filter(|n| i64::try_from(*n).is_ok())
}

/// Chunk size: hex digits up to an optional `;extension`; `None` if invalid or
/// larger than 2^62 (no real chunk is; larger values are overflow attacks).
pub(super) fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|b| *b == b';').unwrap_or(line.len());
    let digits = trim(&line[..end]);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let n = digits.iter().try_fold(0u64, |a, d| {
        let v = (*d as char).to_digit(16)? as u64;
        a.checked_mul(16)?.checked_add(v)
    })?;
    (n < 1 << 62).then_some(n)
}
