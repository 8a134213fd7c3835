//! Credentials in a request body, read as the server reads them: the whole body,
//! streamed chunk by chunk through a scanner of constant size (a field of any size
//! before the credentials cannot push them out of view), JSON at any nesting depth
//! with its string escapes decoded (`"p\u0061ssword"` is `password`), urlencoded forms
//! with their keys and values percent-decoded (`pass%77ord=`), and
//! `multipart/form-data` parts by their `name`.
//!
//! What comes out is only what login detection needs: the account name (the most
//! specific user field, at most [`MAX_VALUE`] bytes; it is hashed at once and never
//! written) and whether a password field was there.

/// Body fields that name the account, most specific first.
pub const USER_FIELDS: &[&str] = &[
    "username",
    "email",
    "user",
    "login",
    "user_name",
    "username_or_email",
    "userName",
    "account",
    "identifier",
    "name",
];

/// Bytes of a value kept (an account name is never longer in practice).
pub const MAX_VALUE: usize = 256;
/// Bytes of a key kept: longer keys are no credential field name.
const MAX_KEY: usize = 64;
/// Bytes of a GraphQL `query` string kept to read inline login arguments from.
const MAX_QUERY: usize = 4096;
/// Bytes of a multipart part's head kept (its `Content-Disposition`).
const MAX_PART_HEAD: usize = 1024;
/// Body bytes scanned: the default request limits of common servers (Go's form
/// parser reads 10 MB) and beyond what any login form sends.
pub const MAX_SCANNED: u64 = 10 << 20;

/// What a request body says about credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// The account name (the most specific user field).
    pub user: Option<Box<[u8]>>,
    pub password: bool,
    /// A JSON body with a `query` or a persisted-query hash: a GraphQL request.
    pub graphql: bool,
}

/// Whether a field name means a password.
pub fn is_password_key(k: &[u8]) -> bool {
    ["password", "passwd", "pass", "pwd", "secret"]
        .iter()
        .any(|w| k.eq_ignore_ascii_case(w.as_bytes()))
        || k.windows(8).any(|w| w.eq_ignore_ascii_case(b"password"))
}

/// The rank of a field that names the account (lower is more specific).
pub fn user_rank(k: &[u8]) -> Option<usize> {
    USER_FIELDS
        .iter()
        .position(|f| k.eq_ignore_ascii_case(f.as_bytes()))
}

/// A GraphQL query's inline login arguments: `login(email: "a@b", password: ...)`.
pub fn graphql_inline(q: &[u8]) -> (Option<&[u8]>, bool) {
    let lower = q.to_ascii_lowercase();
    let password = memchr::memmem::find(&lower, b"password").is_some();
    for f in USER_FIELDS.iter().take(4) {
        let Some(i) = memchr::memmem::find(&lower, format!("{f}:").as_bytes()) else {
            continue;
        };
        let rest = &q[i + f.len() + 1..];
        let rest = rest.trim_ascii_start();
        let rest = rest
            .strip_prefix(b"\\\"")
            .or_else(|| rest.strip_prefix(b"\""));
        if let Some(rest) = rest
            && let Some(end) = memchr::memchr2(b'\\', b'"', rest)
        {
            return (Some(&rest[..end]), password);
        }
    }
    (None, password)
}

/// Reads a whole body at once (see [`Scanner`]).
pub fn scan(body: &[u8], content_type: Option<&str>) -> Credentials {
    let mut s = Scanner::new(content_type);
    s.feed(body);
    s.finish()
}

/// The best user value so far and whether a password was seen.
#[derive(Debug, Default)]
struct Found {
    best: Option<(usize, Vec<u8>)>,
    password: bool,
    graphql: bool,
}

impl Found {
    /// One `key = value` pair (the value possibly cut at [`MAX_VALUE`]).
    fn pair(&mut self, key: &[u8], value: &[u8]) {
        if is_password_key(key) {
            self.password = true;
        } else if let Some(rank) = user_rank(key) {
            self.user(rank, value);
        }
    }

    fn user(&mut self, rank: usize, value: &[u8]) {
        if !value.is_empty() && self.best.as_ref().is_none_or(|(b, _)| rank < *b) {
            self.best = Some((rank, value.to_vec()));
        }
    }
}

/// A streaming credentials scanner for one request body. Memory is constant
/// (a key, a value, a part head); time is linear in the body.
#[derive(Debug)]
pub struct Scanner {
    format: Format,
    found: Found,
    scanned: u64,
}

#[derive(Debug)]
enum Format {
    /// Not decided: the first byte that is not white space decides (JSON when it
    /// opens an object or array, a form otherwise).
    Sniff,
    Json(Box<Json>),
    Form(Box<Form>),
    Multipart(Box<Multipart>),
}

impl Scanner {
    /// `content_type`: the request's Content-Type, if any. JSON and forms are also
    /// recognised by their first byte when it is missing or says something else
    /// (clients often send JSON as `text/plain`); multipart needs its boundary.
    pub fn new(content_type: Option<&str>) -> Scanner {
        let format = match content_type.and_then(multipart_boundary) {
            Some(b) => Format::Multipart(Box::new(Multipart::new(&b))),
            None => Format::Sniff,
        };
        Scanner {
            format,
            found: Found::default(),
            scanned: 0,
        }
    }

    /// The next bytes of the body.
    pub fn feed(&mut self, mut b: &[u8]) {
        let room = MAX_SCANNED.saturating_sub(self.scanned);
        if (b.len() as u64) > room {
            b = &b[..room as usize];
        }
        self.scanned += b.len() as u64;
        if let Format::Sniff = self.format {
            let Some(first) = b.iter().position(|c| !c.is_ascii_whitespace()) else {
                return;
            };
            b = &b[first..];
            self.format = if matches!(b[0], b'{' | b'[') {
                Format::Json(Box::default())
            } else {
                Format::Form(Box::new(Form {
                    key: Vec::with_capacity(MAX_KEY),
                    value: Vec::with_capacity(MAX_KEY),
                    ..Form::default()
                }))
            };
        }
        match &mut self.format {
            Format::Sniff => {}
            Format::Json(j) => j.feed(b, &mut self.found),
            Format::Form(f) => f.feed(b, &mut self.found),
            Format::Multipart(m) => m.feed(b, &mut self.found),
        }
    }

    /// Whether the body reads as a GraphQL request so far (a `query` key met).
    pub fn graphql(&self) -> bool {
        matches!(&self.format, Format::Json(j) if j.graphql)
    }

    /// Everything the body said.
    pub fn finish(mut self) -> Credentials {
        match &mut self.format {
            Format::Form(f) => f.end_pair(&mut self.found),
            Format::Multipart(m) => m.end(&mut self.found),
            Format::Json(j) => self.found.graphql |= j.graphql,
            Format::Sniff => {}
        }
        Credentials {
            user: self.found.best.map(|(_, v)| v.into_boxed_slice()),
            password: self.found.password,
            graphql: self.found.graphql,
        }
    }
}

/// The `boundary` parameter of a `multipart/form-data` media type.
fn multipart_boundary(ct: &str) -> Option<String> {
    // Nearly every body is JSON or a form: decided on the first bytes.
    let head = ct.trim_start().as_bytes();
    if head.len() < 10 || !head[..10].eq_ignore_ascii_case(b"multipart/") {
        return None;
    }
    let (kind, params) = ct.split_once(';').unwrap_or((ct, ""));
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        // RFC 2046: 1 to 70 characters.
        (!v.is_empty() && v.len() <= 70).then(|| v.to_string())
    })
}

/// Pushes `c` onto `buf` while it has room below `cap`.
fn push_capped(buf: &mut Vec<u8>, cap: usize, c: &[u8]) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&c[..room.min(c.len())]);
}

/// Bytes kept inline, at most `N` (pushes beyond are dropped): a key or an account
/// name costs no allocation.
#[derive(Debug, Clone, Copy)]
struct Inline<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> Default for Inline<N> {
    fn default() -> Self {
        Inline {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> Inline<N> {
    fn push_capped(&mut self, cap: usize, c: &[u8]) {
        let n = cap.min(N).saturating_sub(self.len).min(c.len());
        self.bytes[self.len..self.len + n].copy_from_slice(&c[..n]);
        self.len += n;
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// What the string being read is for, decided when it opens: only keys, account
/// names and GraphQL queries are kept; every other value (a password among them)
/// is passed over without a copy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// No key before it: a key, if `:` follows.
    #[default]
    Key,
    /// The value of a user field of this rank.
    User(usize),
    /// The value of a `query` field.
    Query,
    Skip,
}

/// JSON tokens, streamed: only keys and string values matter, so nesting is not
/// tracked at all (any depth is read; a string followed by `:` is a key).
#[derive(Debug, Default)]
struct Json {
    state: JsonState,
    /// The string being read (decoded, capped) unless it is a query...
    cur: Inline<MAX_VALUE>,
    /// ...which is read here.
    query: Vec<u8>,
    want: Want,
    /// The key the next value belongs to, and its user-field rank.
    key: Inline<MAX_KEY>,
    key_rank: Option<usize>,
    has_key: bool,
    /// A `query` value or a persisted query's hash was met: GraphQL.
    graphql: bool,
    /// Hex digits of a `\u` escape, and how many were read.
    hex: u32,
    hex_n: u8,
    /// A high surrogate waiting for its low half.
    high: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum JsonState {
    #[default]
    Between,
    Str,
    Escape,
    Unicode,
    /// A string ended: a `:` makes it a key.
    AfterStr,
    /// A number or literal.
    Bare,
}

impl Json {
    /// A string opens: what it is for.
    fn open(&mut self) {
        self.cur.clear();
        self.high = None;
        self.want = if !self.has_key {
            Want::Key
        } else if self.key.as_slice() == b"query" {
            self.query.clear();
            self.graphql = true;
            Want::Query
        } else if self.key.as_slice() == b"sha256Hash" {
            self.graphql = true;
            Want::Skip
        } else {
            self.key_rank.map_or(Want::Skip, Want::User)
        };
    }

    /// Decoded string bytes.
    #[inline]
    fn push(&mut self, c: &[u8]) {
        match self.want {
            Want::Key => self.cur.push_capped(MAX_KEY, c),
            Want::User(_) => self.cur.push_capped(MAX_VALUE, c),
            Want::Query => push_capped(&mut self.query, MAX_QUERY, c),
            Want::Skip => {}
        }
    }

    fn feed(&mut self, b: &[u8], found: &mut Found) {
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match self.state {
                JsonState::Between => match c {
                    b'"' => {
                        self.open();
                        self.state = JsonState::Str;
                    }
                    b'{' | b'[' | b',' | b'}' | b']' | b':' => self.has_key = false,
                    c if c.is_ascii_whitespace() => {}
                    _ => {
                        self.has_key = false;
                        self.state = JsonState::Bare;
                    }
                },
                JsonState::Str => {
                    // Plain bytes up to the next quote or backslash in one step.
                    let rest = &b[i..];
                    let n = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                    self.push(&rest[..n]);
                    i += n;
                    match b.get(i) {
                        Some(b'"') => self.state = JsonState::AfterStr,
                        Some(_) => self.state = JsonState::Escape,
                        None => {}
                    }
                }
                JsonState::Escape => {
                    let decoded = match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'b' => 8,
                        b'f' => 12,
                        b'u' => {
                            self.hex = 0;
                            self.hex_n = 0;
                            self.state = JsonState::Unicode;
                            i += 1;
                            continue;
                        }
                        other => other,
                    };
                    self.push(&[decoded]);
                    self.state = JsonState::Str;
                }
                JsonState::Unicode => {
                    match (c as char).to_digit(16) {
                        Some(d) => {
                            self.hex = self.hex * 16 + d;
                            self.hex_n += 1;
                        }
                        None => {
                            // Not an escape after all: read on as string bytes.
                            self.state = JsonState::Str;
                            continue;
                        }
                    }
                    if self.hex_n == 4 {
                        self.code_unit(self.hex);
                        self.state = JsonState::Str;
                    }
                }
                JsonState::AfterStr => match c {
                    c if c.is_ascii_whitespace() => {}
                    b':' => {
                        self.key.clear();
                        self.key.push_capped(MAX_KEY, self.cur.as_slice());
                        self.has_key = true;
                        self.key_rank = None;
                        if is_password_key(self.key.as_slice()) {
                            found.password = true;
                        } else {
                            self.key_rank = user_rank(self.key.as_slice());
                        }
                        self.state = JsonState::Between;
                    }
                    _ => {
                        if self.has_key {
                            self.value(found);
                        }
                        self.has_key = false;
                        self.state = JsonState::Between;
                        continue;
                    }
                },
                JsonState::Bare => {
                    if matches!(c, b',' | b'}' | b']' | b'{' | b'[' | b'"' | b':')
                        || c.is_ascii_whitespace()
                    {
                        self.state = JsonState::Between;
                        continue;
                    }
                }
            }
            i += 1;
        }
    }

    /// A UTF-16 code unit from a `\u` escape, pairs joined, lone halves replaced.
    fn code_unit(&mut self, u: u32) {
        let ch = match (self.high.take(), u) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(u);
                return;
            }
            (Some(h), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (u - 0xDC00)).unwrap_or('\u{FFFD}')
            }
            (_, u) => char::from_u32(u).unwrap_or('\u{FFFD}'),
        };
        let mut buf = [0u8; 4];
        self.push(ch.encode_utf8(&mut buf).as_bytes());
    }

    /// The string just read is the value of `key`.
    fn value(&mut self, found: &mut Found) {
        match self.want {
            Want::Query => {
                let (u, p) = graphql_inline(&self.query);
                found.password |= p;
                if let Some(u) = u
                    && found.best.is_none()
                {
                    let u: Vec<u8> = u[..u.len().min(MAX_VALUE)].to_vec();
                    found.user(USER_FIELDS.len(), &u);
                }
            }
            Want::User(rank) => found.user(rank, self.cur.as_slice()),
            Want::Key | Want::Skip => {}
        }
    }
}

/// Percent-decoding, streamed: `%XX` and `+` (a space in forms).
#[derive(Debug, Default)]
struct Percent {
    /// Hex digits after a `%`, and how many were read (0: none pending).
    n: u8,
    acc: u8,
}

impl Percent {
    /// Decodes one byte into `out` (capped at `cap`).
    fn push(&mut self, c: u8, out: &mut Vec<u8>, cap: usize) {
        if self.n > 0 {
            match (c as char).to_digit(16) {
                Some(d) => {
                    self.acc = self.acc * 16 + d as u8;
                    self.n += 1;
                    if self.n == 3 {
                        push_capped(out, cap, &[self.acc]);
                        self.n = 0;
                    }
                    return;
                }
                None => {
                    // An invalid escape stays as it was.
                    let kept: &[u8] = if self.n == 2 {
                        &[b'%', hex_digit(self.acc)]
                    } else {
                        b"%"
                    };
                    push_capped(out, cap, kept);
                    self.n = 0;
                }
            }
        }
        match c {
            b'%' => {
                self.n = 1;
                self.acc = 0;
            }
            b'+' => push_capped(out, cap, b" "),
            c => push_capped(out, cap, &[c]),
        }
    }

    /// The end of a key or value: a cut escape stays as it was.
    fn flush(&mut self, out: &mut Vec<u8>, cap: usize) {
        if self.n == 2 {
            push_capped(out, cap, &[b'%', hex_digit(self.acc)]);
        } else if self.n == 1 {
            push_capped(out, cap, b"%");
        }
        self.n = 0;
    }
}

fn hex_digit(v: u8) -> u8 {
    b"0123456789ABCDEF"[(v & 15) as usize]
}

/// An urlencoded form, streamed.
#[derive(Debug, Default)]
struct Form {
    key: Vec<u8>,
    value: Vec<u8>,
    in_value: bool,
    /// The value being read belongs to no user field: skipped to the next `&`.
    skip: bool,
    pct: Percent,
}

impl Form {
    fn feed(&mut self, b: &[u8], found: &mut Found) {
        let mut i = 0;
        while i < b.len() {
            if self.skip {
                // A field's content (a 3 KB note, a page body): to the next pair
                // in one step.
                match memchr::memchr(b'&', &b[i..]) {
                    Some(j) => i += j,
                    None => return,
                }
            }
            let c = b[i];
            match c {
                b'&' => self.end_pair(found),
                b'=' if !self.in_value => {
                    self.pct.flush(&mut self.key, MAX_KEY);
                    self.in_value = true;
                    self.skip = user_rank(self.key.trim_ascii()).is_none();
                }
                _ if self.in_value => self.pct.push(c, &mut self.value, MAX_VALUE),
                _ => self.pct.push(c, &mut self.key, MAX_KEY),
            }
            i += 1;
        }
    }

    fn end_pair(&mut self, found: &mut Found) {
        if self.in_value {
            self.pct.flush(&mut self.value, MAX_VALUE);
        } else {
            self.pct.flush(&mut self.key, MAX_KEY);
        }
        let key = self.key.trim_ascii();
        if !key.is_empty() {
            found.pair(key, &self.value);
        }
        self.key.clear();
        self.value.clear();
        self.in_value = false;
        self.skip = false;
    }
}

/// `multipart/form-data` (RFC 7578), streamed: parts are found by the delimiter
/// `\r\n--boundary`, each part's `name` read from its head, its value kept capped.
#[derive(Debug)]
struct Multipart {
    /// `\r\n--` and the boundary.
    delim: Vec<u8>,
    /// Delimiter bytes matched so far.
    matched: usize,
    state: PartState,
    head: Vec<u8>,
    name: Vec<u8>,
    value: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartState {
    /// Before the first delimiter, or after the closing one.
    Outside,
    /// The rest of the delimiter line (`--` closes the body).
    DelimLine {
        dashes: u8,
    },
    Head,
    Value,
    Closed,
}

impl Multipart {
    fn new(boundary: &str) -> Multipart {
        let mut delim = b"\r\n--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        Multipart {
            delim,
            // The body may open with the delimiter without its line break.
            matched: 2,
            state: PartState::Outside,
            head: Vec::new(),
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    fn feed(&mut self, b: &[u8], found: &mut Found) {
        for &c in b {
            match self.state {
                PartState::Closed => return,
                PartState::DelimLine { dashes } => {
                    if c == b'-' {
                        if dashes == 1 {
                            self.state = PartState::Closed;
                            return;
                        }
                        self.state = PartState::DelimLine { dashes: 1 };
                    } else if c == b'\n' {
                        self.head.clear();
                        self.state = PartState::Head;
                    }
                }
                PartState::Head => {
                    push_capped(&mut self.head, MAX_PART_HEAD, &[c]);
                    let end = self.head.ends_with(b"\r\n\r\n")
                        || self.head.ends_with(b"\n\n")
                        || self.head == b"\r\n"
                        || self.head == b"\n";
                    if end {
                        self.name = part_name(&self.head).unwrap_or_default();
                        if is_password_key(&self.name) {
                            found.password = true;
                        }
                        self.value.clear();
                        self.state = PartState::Value;
                        self.matched = 0;
                    } else if self.head.len() == MAX_PART_HEAD {
                        // A head this long is no form field: skip to the next part.
                        self.name.clear();
                        self.value.clear();
                        self.state = PartState::Value;
                        self.matched = 0;
                    }
                }
                PartState::Outside | PartState::Value => self.delim_byte(c, found),
            }
        }
    }

    /// One byte of a part's value (or the preamble), matched against the delimiter.
    fn delim_byte(&mut self, c: u8, found: &mut Found) {
        if c == self.delim[self.matched] {
            self.matched += 1;
            if self.matched == self.delim.len() {
                self.end_part(found);
                self.matched = 0;
                self.state = PartState::DelimLine { dashes: 0 };
            }
            return;
        }
        if self.state == PartState::Value {
            // The bytes that looked like a delimiter were value after all. The
            // delimiter's only repeated byte is the `\r` that starts it.
            let partial = self.delim[..self.matched].to_vec();
            push_capped(&mut self.value, MAX_VALUE, &partial);
        }
        self.matched = 0;
        if c == self.delim[0] {
            self.matched = 1;
        } else if self.state == PartState::Value {
            push_capped(&mut self.value, MAX_VALUE, &[c]);
        }
    }

    fn end_part(&mut self, found: &mut Found) {
        if self.state == PartState::Value && !self.name.is_empty() {
            let name = std::mem::take(&mut self.name);
            found.pair(&name, &self.value);
        }
        self.value.clear();
    }

    /// A body cut short: the part being read counts with what was read.
    fn end(&mut self, found: &mut Found) {
        if self.state == PartState::Value {
            self.end_part(found);
        }
    }
}

/// The `name` parameter of a part's `Content-Disposition: form-data; name="..."`.
fn part_name(head: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(head);
    let line = text
        .lines()
        .find(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        })?
        .split_once(':')?
        .1;
    line.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("name")
            .then(|| v.trim().trim_matches('"').as_bytes().to_vec())
    })
}

/// `user` from `Authorization: Basic base64(user:password)`.
pub fn basic_username(auth: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim())?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[..colon].to_vec())
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(c: &Credentials) -> Option<&str> {
        c.user.as_deref().map(|u| std::str::from_utf8(u).unwrap())
    }

    /// Every split of `body` into two chunks and into single bytes gives what the
    /// whole body gives.
    fn streamed(body: &[u8], ct: Option<&str>) -> Credentials {
        let whole = scan(body, ct);
        for cut in 0..=body.len() {
            let mut s = Scanner::new(ct);
            s.feed(&body[..cut]);
            s.feed(&body[cut..]);
            assert_eq!(s.finish(), whole, "cut at {cut}");
        }
        let mut s = Scanner::new(ct);
        for b in body {
            s.feed(std::slice::from_ref(b));
        }
        assert_eq!(s.finish(), whole, "byte by byte");
        whole
    }

    #[test]
    fn json_at_any_depth_and_behind_any_padding() {
        let c = streamed(br#"{"user":{"email":"a@b.c","password":"x"}}"#, None);
        assert_eq!((user(&c), c.password), (Some("a@b.c"), true));
        // A 3,000-byte field first, then the credentials.
        let pad = "x".repeat(3000);
        let body = format!(r#"{{"note":"{pad}","username":"ann","password":"p"}}"#);
        let c = scan(body.as_bytes(), Some("application/json"));
        assert_eq!((user(&c), c.password), (Some("ann"), true));
        // A decoy nested 40 deep before them.
        let body = format!(
            r#"{{"d":{}1{},"username":"bob","password":"p"}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        let c = streamed(body.as_bytes(), None);
        assert_eq!((user(&c), c.password), (Some("bob"), true));
    }

    #[test]
    fn json_escapes_are_decoded_before_matching() {
        let c = streamed(
            br#"{"us\u0065rname":"c\u00e9line","p\u0061ssword":"x","n":"a\"b\\"}"#,
            None,
        );
        assert_eq!((user(&c), c.password), (Some("céline"), true));
        let c = streamed(br#"{"email":"\ud83d\ude00@x","pwd":1}"#, None);
        assert_eq!((user(&c), c.password), (Some("😀@x"), true));
        // A lone surrogate and a broken escape cost nothing.
        let c = streamed(br#"{"email":"\ud800x\uZZ","secret":null}"#, None);
        assert!(c.password);
        assert!(user(&c).is_some());
    }

    #[test]
    fn most_specific_user_field_wins_and_graphql_inline_arguments_count() {
        let c = streamed(br#"{"name":"n","username":"u","email":"e"}"#, None);
        assert_eq!(user(&c), Some("u"));
        let c = streamed(
            br#"{"query":"mutation { login(email: \"eve@x\", password: \"p\") { token } }"}"#,
            None,
        );
        assert_eq!((user(&c), c.password), (Some("eve@x"), true));
        // A key named like a value is not confused with it.
        let c = streamed(br#"{"a":"username","username":"v1"}"#, None);
        assert_eq!((user(&c), c.password), (Some("v1"), false));
    }

    #[test]
    fn forms_are_percent_decoded_and_padding_does_not_hide_them() {
        let c = streamed(b"user=bob%40x.com&pass%77ord=secret", None);
        assert_eq!((user(&c), c.password), (Some("bob@x.com"), true));
        let pad = "y".repeat(3000);
        let body = format!("csrf={pad}&username=ann+b&password=x");
        let c = scan(body.as_bytes(), Some("application/x-www-form-urlencoded"));
        assert_eq!((user(&c), c.password), (Some("ann b"), true));
        let c = streamed(b"login=%zz%4&pwd", None);
        assert_eq!((user(&c), c.password), (Some("%zz%4"), true));
    }

    #[test]
    fn multipart_parts_by_name() {
        let ct = "multipart/form-data; boundary=\"----b0und\"";
        let pad = "z\r\n-".repeat(1000);
        let body = format!(
            "------b0und\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{pad}\r\n\
             ------b0und\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\ncarol\r\n\
             ------b0und\r\ncontent-disposition: form-data; name=password\r\n\r\nhunter2\r\n\
             ------b0und--\r\n"
        );
        let c = scan(body.as_bytes(), Some(ct));
        assert_eq!((user(&c), c.password), (Some("carol"), true));
        let small = "--B\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nd@x\r\n--B\r\n\
                     Content-Disposition: form-data; name=\"pwd\"\r\n\r\n\r\r\n--B--";
        let c = streamed(small.as_bytes(), Some("multipart/form-data; boundary=B"));
        assert_eq!((user(&c), c.password), (Some("d@x"), true));
    }

    #[test]
    fn garbage_and_huge_bodies_end_quietly() {
        for body in [
            &b"}}}]]]:::,,,\"\\"[..],
            b"\xff\xfe{\"\xff\":\"\xfe\"}",
            b"{\"a\":\x0c1,\x0b\"b\":\x0c}",
            b"&&&===%%%",
        ] {
            streamed(body, None);
            streamed(body, Some("multipart/form-data; boundary=x"));
        }
        let mut s = Scanner::new(None);
        s.feed(b"{\"a\":\"");
        let chunk = vec![b'q'; 1 << 20];
        for _ in 0..12 {
            s.feed(&chunk);
        }
        s.feed(br#"","password":"x"}"#);
        // Past the scan limit nothing more is read.
        assert!(!s.finish().password);
    }
}
