//! Routes: which requests are the same API operation. `/books/v1/dune` and
//! `/books/v1/emma` are `GET /books/v1/{name}`; `/users/7/orders/9f1c...` is
//! `/users/{id}/orders/{hex}`. Detectors count by route, the metrics label by it, and
//! the inventory ([`inventory`], written as OpenAPI) lists them.
//!
//! Two layers. Segment shapes that are identifiers on any API (integers, UUIDs, long
//! hex, opaque tokens, e-mails, and long or numbered slugs such as
//! `lessons-from-a-year-of-deploys` or `draft-notes-2`) are classes at once. Other
//! segments are learned per position (the templated prefix before them) by the
//! [`Templater`] from every signal the wire gives: how many sibling values answered
//! there and how often each recurs, whether siblings answer with the same JSON shape,
//! whether each sibling is one client's own object, whether values look like names
//! rather than route words, and whether a value reappears elsewhere (a login name, a
//! string a server handed out in a JSON response). Route words that every API uses
//! (`login`, `me`, `search`, `admin`...) stay literal at a parameter position, and so
//! do siblings whose answers have their own JSON shape; once a position is a
//! parameter it stays one, so learned routes never split again.

pub mod inventory;
pub mod shape;
pub mod spec;

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::http::Exchange;

/// Shortest opaque token (base64/base64url-like, mixed letters and digits) treated as
/// an identifier: shorter mixed segments are often real route names (`v1`, `oauth2`).
const MIN_TOKEN_LEN: usize = 16;
/// Hex strings at least this long are identifiers (object ids are 24, hashes 32+).
const MIN_HEX_LEN: usize = 16;
/// A slug of at least this many words (and [`MIN_LONG_SLUG`] bytes) is a title, not a
/// route name: route names are one to three words (`access-token`, `sign-in`).
const SLUG_WORDS: usize = 4;
const MIN_LONG_SLUG: usize = 16;
/// The placeholder for learned parameters and slugs.
pub const NAME: &str = "{name}";

/// The class of an identifier-like segment, or `None` for a literal route segment.
pub fn segment_class(seg: &str) -> Option<&'static str> {
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    // A plain lower-case word (`api`, `users`), the most common segment, is no class:
    // no digit (id, token), no `-` (uuid), no `@` (email), and hex only when long.
    if b.iter().all(u8::is_ascii_lowercase)
        && (b.len() < MIN_HEX_LEN || !b.iter().all(u8::is_ascii_hexdigit))
    {
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
    if seg.contains('@') && seg.contains('.') && !seg.contains(':') {
        return Some("{email}");
    }
    let tokenish = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=' | b'.' | b'~'));
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let separated = b.iter().any(|c| matches!(c, b'-' | b'_'));
    if tokenish && b.len() >= MIN_TOKEN_LEN && digits > 0 && digits < b.len() && !separated {
        return Some("{token}");
    }
    None
}

/// A segment that is a name or slug on its own, wherever it stands: a long slug
/// (`lessons-from-a-year-of-zero-downtime-deploys`), a numbered one (`draft-notes-2`,
/// `2024-annual-report`), a sigil-led or qualified id (`@alice:chat.example`,
/// `!room:server`), or its percent-encoded form.
pub fn is_strong_name(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.len() < 3 {
        return false;
    }
    if matches!(b[0], b'!' | b'$') || b.contains(&b':') || b.contains(&b'@') {
        return true;
    }
    // Percent-encoded names (`%40alice%3Aserver`); a lone `%20` or `%7e` is a
    // wordlist's probe, not a name.
    if b.contains(&b'%') {
        let has = |pat: &[u8]| b.windows(3).any(|w| w.eq_ignore_ascii_case(pat));
        return (has(b"%40") || has(b"%3a"))
            && b.iter().filter(|c| c.is_ascii_alphabetic()).count() >= 3;
    }
    // Words joined by `-`/`_`, counted without allocating (this runs per segment).
    let (mut words, mut numeric, mut alpha) = (0usize, false, false);
    for w in b
        .split(|c| matches!(c, b'-' | b'_'))
        .filter(|w| !w.is_empty())
    {
        words += 1;
        numeric |= w.iter().all(u8::is_ascii_digit);
        alpha |= w.len() >= 3 && w.iter().all(u8::is_ascii_alphabetic);
    }
    (words >= SLUG_WORDS && b.len() >= MIN_LONG_SLUG) || (words >= 2 && numeric && alpha)
}

/// A segment that looks more like a name than a route word, as evidence among
/// siblings (not enough alone): letters mixed with digits, several words joined,
/// capitals inside, dots (`alice.smith`).
fn looks_like_name(seg: &str) -> bool {
    let b = seg.as_bytes();
    if is_strong_name(seg) {
        return true;
    }
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let joins = b.iter().filter(|c| matches!(c, b'-' | b'_')).count();
    let inner_caps = b.iter().skip(1).any(u8::is_ascii_uppercase);
    (letters > 0 && digits > 0 && b.len() >= 5)
        || joins >= 2
        || (inner_caps && b.len() >= 6)
        || (b.contains(&b'.') && !is_file_name(seg))
}

fn is_file_name(seg: &str) -> bool {
    seg.rsplit_once('.').is_some_and(|(_, ext)| {
        (2..=5).contains(&ext.len()) && ext.bytes().all(|c| c.is_ascii_lowercase())
    }) && !seg.contains('@')
}

/// Route words every API uses: they stay literal even where siblings are
/// parameters (`/users/login` beside `/users/{name}`). API vocabulary, not one app's.
const ROUTE_WORDS: &[&str] = &[
    "login",
    "logout",
    "signin",
    "signup",
    "signout",
    "register",
    "auth",
    "oauth",
    "token",
    "tokens",
    "session",
    "sessions",
    "me",
    "self",
    "current",
    "search",
    "new",
    "edit",
    "create",
    "update",
    "delete",
    "batch",
    "bulk",
    "export",
    "import",
    "count",
    "feed",
    "admin",
    "settings",
    "config",
    "password",
    "reset",
    "verify",
    "callback",
    "health",
    "status",
    "metrics",
    "debug",
    "docs",
    "swagger",
    "openapi",
    "graphql",
    "upload",
    "download",
    "all",
    "list",
    "latest",
    "recent",
    "favorite",
    "favorites",
    "follow",
    "like",
];

fn is_route_word(seg: &str) -> bool {
    let w = seg.trim_start_matches('_');
    ROUTE_WORDS.iter().any(|r| r.eq_ignore_ascii_case(w))
        || (w.len() >= 2
            && (w.starts_with('v') || w.starts_with('V'))
            && w[1..].bytes().all(|c| c.is_ascii_digit()))
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The segments of a path, as `path.split('/')` gives them (empty ones included),
/// found by a byte scan: `str::split` with a `char` pattern costs several times more
/// on segments this short, and routes split every request's path more than once.
pub fn segments(path: &str) -> Segments<'_> {
    Segments { rest: Some(path) }
}

/// See [`segments`].
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'/') {
            Some(i) => {
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

/// `s` up to the first `delim` (an ASCII byte), as `s.split(delim).next()` gives it,
/// by a byte scan: on strings as short as segments, header values and targets, a
/// plain loop costs less than setting up `memchr` or a `char` searcher.
pub fn before(s: &str, delim: u8) -> &str {
    match s.bytes().position(|b| b == delim) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// Whether any of `words` occurs in `s`: one pass over `s`, a word compared only
/// where its first byte stands (each `str::contains` sets up a substring searcher
/// that costs more than the search on strings this short).
pub fn contains_any(s: &[u8], words: &[&str]) -> bool {
    (0..s.len()).any(|i| {
        let rest = &s[i..];
        words
            .iter()
            .any(|w| w.as_bytes().first() == Some(&rest[0]) && rest.starts_with(w.as_bytes()))
    })
}

/// A request target without its query and fragment (see [`before`]).
pub fn without_query(uri: &str) -> &str {
    match uri.bytes().position(|b| b == b'?' || b == b'#') {
        Some(i) => &uri[..i],
        None => uri,
    }
}

/// The path of a request target: query and fragment dropped, absolute form (proxies)
/// reduced to its path.
pub fn path_of(uri: &str) -> &str {
    without_authority(without_query(uri))
}

/// [`path_of`] for a target already cut at its query: an absolute form reduced to its
/// path.
pub fn without_authority(path: &str) -> &str {
    if path.starts_with('/') {
        // Origin form, the common case: no scheme to skip.
        return path;
    }
    match path.find("://") {
        Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
        None => path,
    }
}

/// A request path as servers route it (RFC 3986 §6.2.2, and what Go, Flask, Spring
/// and Tomcat do before matching a route): percent-escapes of unreserved characters
/// decoded (`/api/%6cogin` is `/api/login`), matrix parameters dropped
/// (`/api;v=1/login`, Tomcat's `..;/`), empty segments from doubled slashes dropped,
/// and dot segments resolved (`/api/x/../login`), never above the root. Other escapes
/// stay as they are (`%2F` is data, not a separator). Borrowed when nothing changes,
/// which a byte scan tells.
pub fn normalized(path: &str) -> std::borrow::Cow<'_, str> {
    let b = path.as_bytes();
    // Nearly every path is plain: one tight pass tells (paths are short, a
    // searcher's set-up would cost more than the bytes).
    let plain = b.first() != Some(&b'/') || {
        let mut prev = 0u8;
        !b.iter().any(|&c| {
            let odd = c == b'%' || c == b';' || (prev == b'/' && (c == b'/' || c == b'.'));
            prev = c;
            odd
        })
    };
    if plain {
        return std::borrow::Cow::Borrowed(path);
    }
    let trailing = path.len() > 1 && path.ends_with('/');
    let mut segs: Vec<String> = Vec::new();
    for seg in segments(&path[1..]) {
        let seg = unreserved_decoded(crate::redact::without_matrix(seg));
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            _ => segs.push(seg),
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &segs {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    std::borrow::Cow::Owned(out)
}

/// `seg` with the escapes of unreserved characters (letters, digits, `-._~`) decoded.
fn unreserved_decoded(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            let c = (hi * 16 + lo) as u8;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
                i += 3;
                continue;
            }
        }
        // Whole characters up to the next escape.
        let next = b[i + 1..]
            .iter()
            .position(|c| *c == b'%')
            .map_or(b.len(), |j| i + 1 + j);
        out.push_str(&seg[i..next]);
        i = next;
    }
    out
}

/// Longest route kept whole: every table that stores routes (the inventory, client
/// profiles, samples, metric labels, the state file) stores at most this much of one.
pub const MAX_ROUTE_LEN: usize = 512;
/// What a longer route keeps of its start, before the `{long}` marker.
const LONG_ROUTE_KEEP: usize = 256;

/// `template` cut to its first [`LONG_ROUTE_KEEP`] bytes (at a character boundary)
/// and marked `{long}` when it is longer than [`MAX_ROUTE_LEN`]: a flood of distinct
/// 16 KB paths costs the tables a few hundred bytes a route, not 16 KB.
pub fn capped(template: crate::http::Text) -> crate::http::Text {
    if template.len() <= MAX_ROUTE_LEN {
        return template;
    }
    let mut end = LONG_ROUTE_KEEP;
    while !template.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = String::with_capacity(end + 6);
    s.push_str(&template[..end]);
    s.push_str("{long}");
    s.into()
}

/// The stateless template of a request target: identifier-like segments replaced by
/// their class, long or numbered slugs by `{name}`.
pub fn template(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    for (i, seg) in segments(path_of(uri)).enumerate() {
        if i > 0 {
            out.push('/');
        }
        // Matrix parameters (`;jsessionid=...`) are never part of a route.
        let seg = crate::redact::without_matrix(seg);
        match segment_class(seg) {
            Some(class) => out.push_str(class),
            None if i >= 2 && is_strong_name(seg) => out.push_str(NAME),
            None => out.push_str(seg),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Learning settings (config `[detect.templates]`).
#[derive(Debug, Clone)]
pub struct LearnConfig {
    /// Distinct values at one position that make it a parameter on count alone, when
    /// at least [`LearnConfig::min_rare_share`] of them were seen at most twice
    /// (identifiers are a long tail; real routes are hit again and again).
    pub param_limit: usize,
    pub min_rare_share: f64,
    /// Positions tracked (least recently used forgotten beyond it, counted).
    pub max_positions: usize,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            param_limit: 16,
            min_rare_share: 0.6,
            max_positions: 20_000,
        }
    }
}

/// Sibling values kept per position while it is undecided: past this many distinct
/// values no API's route table is that wide, so the position is a parameter.
const VALUE_CAP: usize = 64;
/// Successful GETs of a value read for its JSON shape before giving up (HTML, or
/// compressed answers, have none).
const SHAPE_TRIES: u32 = 4;
/// Visits that make a value one client's own object rather than a probe.
const OWN_VISITS: u32 = 3;
/// Literal exceptions kept at a parameter position.
const LITERAL_CAP: usize = 32;
/// Clients remembered per position (enough to tell "one client's objects" apart).
const CLIENT_CAP: usize = 8;
/// Values known from elsewhere (login names, JSON strings handed out); the set is
/// cleared when full, so it holds what was recent.
const KNOWN_CAP: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Value {
    count: u32,
    first_client: u64,
    several_clients: bool,
    /// The JSON shape of its successful GET answers (0: none seen).
    shape: u64,
    name_like: bool,
    /// A name on its own ([`is_strong_name`]).
    strong: bool,
    route_word: bool,
}

#[derive(Debug, Default, Clone)]
struct Position {
    values: HashMap<u64, Value, crate::lru::Prehashed>,
    clients: Vec<u64>,
    hits: u64,
    param: bool,
    /// Values that stay literal at a parameter position.
    literals: Vec<u64>,
    last_used: u64,
}

impl Position {
    /// Whether the siblings seen so far are values of one parameter.
    fn decide(&self, cfg: &LearnConfig) -> bool {
        let candidates: Vec<&Value> = self.values.values().filter(|v| !v.route_word).collect();
        let n = candidates.len();
        if n < 2 {
            return false;
        }
        if self.values.len() >= VALUE_CAP {
            return true;
        }
        let names = candidates.iter().filter(|v| v.name_like).count();
        if names >= 2 && 2 * names >= n {
            return true;
        }
        // Siblings answering with the same JSON shape are one route's objects.
        let mut shapes: HashMap<u64, usize> = HashMap::new();
        for v in candidates.iter().filter(|v| v.shape != 0) {
            *shapes.entry(v.shape).or_default() += 1;
        }
        let same = shapes.values().copied().max().unwrap_or(0);
        if same >= 4 && 4 * same >= 3 * n {
            return true;
        }
        // Siblings that mostly answer with shapes of their own are different
        // resources, however the counts look.
        let shaped: usize = shapes.values().sum();
        if 2 * shaped >= n && 2 * same < shaped {
            return false;
        }
        // Each value one client's own, visited again and again: per-user objects
        // (a one-off visit by one client is anybody's probe, not an object of its).
        let own = candidates
            .iter()
            .filter(|v| !v.several_clients && v.count >= OWN_VISITS)
            .count();
        if n >= 6 && self.clients.len() >= 3 && 4 * own >= 3 * n {
            return true;
        }
        let rare = candidates.iter().filter(|v| v.count <= 2).count();
        n >= cfg.param_limit && rare as f64 >= cfg.min_rare_share * n as f64
    }

    /// Becomes a parameter; siblings with a JSON shape of their own and route words
    /// stay literal.
    fn become_param(&mut self) {
        let mut shapes: HashMap<u64, usize> = HashMap::new();
        for v in self
            .values
            .values()
            .filter(|v| v.shape != 0 && !v.route_word)
        {
            *shapes.entry(v.shape).or_default() += 1;
        }
        let dominant = shapes
            .iter()
            .max_by_key(|(s, n)| (**n, **s))
            .map(|(s, _)| *s);
        let mut literals: Vec<u64> = self
            .values
            .iter()
            .filter(|(_, v)| {
                v.route_word
                    || (!v.name_like
                        && v.shape != 0
                        && dominant.is_some_and(|d| d != v.shape)
                        && v.several_clients)
            })
            .map(|(k, _)| *k)
            .collect();
        literals.sort_unstable();
        literals.truncate(LITERAL_CAP);
        self.literals = literals;
        self.param = true;
        self.values = Default::default();
        self.clients = Vec::new();
    }
}

/// Online path templating with learned parameters.
#[derive(Debug, Clone, Default)]
pub struct Templater {
    cfg: LearnConfig,
    positions: HashMap<u64, Position, crate::lru::Prehashed>,
    /// Hashes of values seen elsewhere (login names, strings in JSON answers).
    known: std::collections::HashSet<u64, crate::lru::Prehashed>,
    hasher: foldhash::fast::FixedState,
    tick: u64,
    pub evicted: u64,
    /// The template being built, kept between calls (a `String` grows by plain
    /// pushes; the `Text` is made once at the end).
    scratch: String,
}

impl Templater {
    pub fn new(cfg: LearnConfig) -> Self {
        Templater {
            cfg,
            ..Default::default()
        }
    }

    /// Remembers a value seen outside paths (a login name, a JSON string), so the same
    /// value in a path counts as data.
    pub fn note_value(&mut self, v: &[u8]) {
        if self.known.len() >= KNOWN_CAP {
            self.known.clear();
        }
        self.known.insert(self.hasher.hash_one(v));
    }

    /// The template of an exchange's path, learning from it. Only answers 2xx/304
    /// teach (a scanner's 404s are not routes); the first segment is never a learned
    /// parameter. `client` tells one client's objects from shared routes.
    pub fn template(&mut self, ex: &Exchange, client: u64) -> crate::http::Text {
        let uri = ex.uri.as_deref().unwrap_or("/");
        self.template_cut(ex, without_query(uri), client)
    }

    /// [`Self::template`] with the target already cut at its query (`target`): the
    /// caller that has cut it does not cut it again.
    pub fn template_cut(&mut self, ex: &Exchange, target: &str, client: u64) -> crate::http::Text {
        // Redirects do not teach: frameworks answer any path with one (`/x` → `/x/`).
        let learn = matches!(ex.judged_status(), Some(200..=299 | 304));
        let get = ex.method.as_deref() == Some("GET");
        // Names are handed out by listings: a GET of an object (its last segment an
        // id) is not read for them.
        let path = without_authority(target);
        let listing = || {
            path.trim_end_matches('/')
                .rsplit('/')
                .next()
                .is_some_and(|last| segment_class(last).is_none())
        };
        if learn && get && shape::is_json(ex) && listing() {
            let known = &mut self.known;
            let h = &self.hasher;
            let mut n = 0;
            shape::json_strings(ex, |s| {
                if n < 16 {
                    if known.len() >= KNOWN_CAP {
                        known.clear();
                    }
                    known.insert(h.hash_one(s));
                    n += 1;
                }
            });
        }
        let mut shape = None;
        self.tick += 1;
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        for (i, seg) in segments(path).enumerate() {
            if i > 0 {
                out.push('/');
            }
            let seg = crate::redact::without_matrix(seg);
            if let Some(class) = segment_class(seg) {
                out.push_str(class);
                continue;
            }
            if seg.is_empty() || i <= 1 {
                out.push_str(seg);
                continue;
            }
            let key = self.hasher.hash_one(out.as_bytes());
            if self.positions.len() >= self.cfg.max_positions && !self.positions.contains_key(&key)
            {
                self.evict();
            }
            let vh = self.hasher.hash_one(seg.as_bytes());
            let pos = self.positions.entry(key).or_default();
            pos.last_used = self.tick;
            // Segment tests only where they can matter (this runs per segment).
            let seen = pos.values.get(&vh).copied();
            let route_word = match seen {
                Some(v) if !pos.param => v.route_word,
                _ => is_route_word(seg),
            };
            let strong = match seen {
                _ if pos.param => false,
                Some(v) => v.strong,
                None => is_strong_name(seg),
            };
            if !pos.param && learn {
                // A value may become known later (its name handed out after its first
                // visits): asked often while young, then now and then.
                let ask = seen
                    .is_none_or(|v| !v.name_like && (v.count < 16 || v.count.is_power_of_two()));
                let known = ask
                    && (self.known.contains(&vh)
                        || self.known.contains(&decoded_hash(seg, &self.hasher)));
                pos.hits += 1;
                let mut changed = false;
                if !pos.clients.contains(&client) && pos.clients.len() < CLIENT_CAP {
                    pos.clients.push(client);
                    changed = true;
                }
                if pos.values.len() < VALUE_CAP || pos.values.contains_key(&vh) {
                    let v = pos.values.entry(vh).or_insert_with(|| {
                        changed = true;
                        Value {
                            count: 0,
                            first_client: client,
                            several_clients: false,
                            shape: 0,
                            name_like: strong || looks_like_name(seg),
                            strong,
                            route_word,
                        }
                    });
                    v.count += 1;
                    // Only what can change a decision asks for one.
                    changed |= v.count == OWN_VISITS || v.count == 3;
                    if !v.several_clients && v.first_client != client {
                        v.several_clients = true;
                        changed = true;
                    }
                    if known && !v.name_like {
                        v.name_like = true;
                        changed = true;
                    }
                    if v.shape == 0 && get && v.count <= SHAPE_TRIES {
                        let sh = *shape.get_or_insert_with(|| {
                            shape::json_shape(ex, &self.hasher).unwrap_or(0)
                        });
                        if sh != 0 {
                            v.shape = sh;
                            changed = true;
                        }
                    }
                }
                if changed && pos.decide(&self.cfg) {
                    pos.become_param();
                }
            }
            let param = if pos.param {
                // A route word that answers is a route beside the names (kept, so its
                // failures stay on it too); one that only refuses is a probe.
                if route_word
                    && learn
                    && !pos.literals.contains(&vh)
                    && pos.literals.len() < LITERAL_CAP
                {
                    pos.literals.push(vh);
                }
                !pos.literals.contains(&vh)
            } else {
                strong && !route_word
            };
            out.push_str(if param { NAME } else { seg });
        }
        if out.is_empty() {
            out.push('/');
        }
        // Inline up to 24 bytes (most templates): no allocation per exchange.
        let template = crate::http::Text::from(out.as_str());
        self.scratch = out;
        template
    }

    /// The template a path would get now, without learning from it (used to merge
    /// routes learned late with their early literal forms).
    pub fn lookup(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        for (i, seg) in segments(template).enumerate() {
            if i > 0 {
                out.push('/');
            }
            if i <= 1 || seg.is_empty() || seg.starts_with('{') {
                out.push_str(seg);
                continue;
            }
            let key = self.hasher.hash_one(out.as_bytes());
            let vh = self.hasher.hash_one(seg.as_bytes());
            let param = self
                .positions
                .get(&key)
                .is_some_and(|p| p.param && !p.literals.contains(&vh));
            out.push_str(if param { NAME } else { seg });
        }
        out
    }

    fn evict(&mut self) {
        let n = crate::lru::batch(self.cfg.max_positions);
        for k in crate::lru::oldest(&self.positions, n, |p| p.last_used) {
            self.positions.remove(&k);
            self.evicted += 1;
        }
    }
}

/// The hash of a percent-decoded segment (`%40alice%3Aserver` is `@alice:server`).
fn decoded_hash(seg: &str, h: &impl BuildHasher) -> u64 {
    h.hash_one(&percent_decoded(seg)[..])
}

/// A path segment with its percent-escapes decoded (invalid escapes kept as they are).
pub fn percent_decoded(seg: &str) -> std::borrow::Cow<'_, [u8]> {
    if !seg.contains('%') {
        return std::borrow::Cow::Borrowed(seg.as_bytes());
    }
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests;
