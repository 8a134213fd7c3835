//! Sensitive values in response bodies: counted, never kept (issue #26, data
//! exposure). A [`Scanner`] reads a bounded prefix of each textual response body as
//! it streams by and counts four kinds of values:
//!
//! - `email`: `local@domain.tld`; the local part of `A-Z a-z 0-9 . _ % + -` (1-64
//!   bytes, no leading, trailing or doubled dot), the domain of labels of
//!   `A-Z a-z 0-9 -` (at most 63 bytes each, not starting or ending with `-`, 253
//!   in all) with at least one dot and a last label of two or more letters.
//!   `user@localhost` (no dot) and `user@10.0.0.1` (a numeric last label) are not
//!   counted; nor is a percent-encoded `user%40example.com`.
//! - `card`: 13-19 digits, plain or grouped by single spaces or single dashes (a
//!   first group of 4, middle groups of 4-6, a last group of 1-6: `4111 1111 1111
//!   1111`, `3782-822463-10005`), passing Luhn, with an issuer prefix and a length
//!   that issuer uses: Visa 4 (13, 16, 19), Mastercard 51-55 and 2221-2720 (16),
//!   Amex 34 and 37 (15), Discover 6011, 644-649 and 65 (16-19), JCB 3528-3589
//!   (16-19), Diners 300-305, 3095, 36, 38 and 39 (14-19). Millisecond timestamps
//!   (`17…`), order ids and phone numbers fail the prefix, the length or Luhn.
//! - `iban`: two uppercase letters, two check digits and 11-30 uppercase letters or
//!   digits, plain or in groups of four separated by single spaces; the country
//!   must be one with IBANs and the length its own (`DE` 22, `GB` 22, `FR` 27...),
//!   and the number must pass ISO 13616's mod-97 check.
//! - `national_id`: US Social Security numbers written `ddd-dd-dddd` that the SSA
//!   could issue (area not 000, 666 or 900-999; group not 00; serial not 0000).
//!   Other countries' national ids are not counted: their formats are either
//!   checksummed numbers indistinguishable from other ids or free-form.
//!
//! A value must be delimited: not preceded by a letter, digit, `.`, `-`, `_`, `@`,
//! `+`, `%` or a non-ASCII byte (so `v4111111111111111`, `+14155552671`, the tail
//! of a UUID or of `a.b-4111…` never start one), and not followed by a letter,
//! digit, non-ASCII byte, `@` or `_`, nor by `.` or `-` and then a letter or digit
//! (`4111111111111111.5`, `123-45-6789-x`). JSON strings and numbers, CSV, XML and
//! HTML all delimit values so.
//!
//! Values split across TCP segments, HTTP/1 chunks or HTTP/2 DATA frames count once:
//! the scanner is a streaming state machine that looks at each byte once and keeps
//! what a value in progress needs (digit counts, the Luhn and mod-97 remainders, the
//! shape of a local part) in a few fixed fields, never the bytes. Any chunking of a
//! body gives the counts of the whole (`fuzz/fuzz_targets/sensitive.rs`). Buffering
//! the prefix and scanning it at the end would cost up to the prefix (16 KiB) of
//! memory per response in flight and a copy of every scanned byte; the state machine
//! costs about 60 bytes per response in flight and allocates nothing.
//!
//! A body whose bytes turn out not to be text (a control byte other than tab, line
//! feed, form feed or carriage return) stops being scanned there: declared types
//! lie (`text/plain` over random bytes), and binary bytes cost nothing past that
//! point. What was counted before stays counted.

use serde::{Deserialize, Serialize};

/// Response-body bytes scanned per response by default (`exposure.sensitive_prefix`).
pub const DEFAULT_PREFIX: usize = 16 << 10;
/// The largest `exposure.sensitive_prefix`.
pub const MAX_PREFIX: usize = 1 << 20;

/// The kinds counted, in the order of [`Counts`]' fields (metric label values and
/// inventory keys).
pub const KINDS: [&str; 4] = ["email", "card", "iban", "national_id"];

/// Values found in one response body, by kind (in [`KINDS`] order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [u32; 4]);

impl Counts {
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|n| u64::from(*n)).sum()
    }
}

/// Values found in many responses (an endpoint's): written as `{"email": 3}` with
/// the kinds seen only, in the state file and as the inventory's
/// `x-apiwatch.sensitive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub email: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub card: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub iban: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub national_id: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Totals {
    pub fn is_empty(&self) -> bool {
        *self == Totals::default()
    }

    pub fn add(&mut self, c: &Counts) {
        let [e, k, i, n] = c.0;
        self.email = self.email.saturating_add(u64::from(e));
        self.card = self.card.saturating_add(u64::from(k));
        self.iban = self.iban.saturating_add(u64::from(i));
        self.national_id = self.national_id.saturating_add(u64::from(n));
    }

    pub fn merge(&mut self, o: &Totals) {
        self.email = self.email.saturating_add(o.email);
        self.card = self.card.saturating_add(o.card);
        self.iban = self.iban.saturating_add(o.iban);
        self.national_id = self.national_id.saturating_add(o.national_id);
    }
}

/// What became of a response body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// No body, or scanning is off (`exposure.sensitive_prefix = 0`): not counted.
    #[default]
    None,
    /// Scanned (its first `exposure.sensitive_prefix` bytes).
    Scanned,
    /// Compressed (`Content-Encoding` other than identity): not scanned.
    Compressed,
    /// A binary type (images, octet-stream, protobuf, gRPC...), or a body that showed
    /// a control byte: not scanned (past that byte).
    NotText,
}

impl Outcome {
    /// The counted outcomes, as `apiwatch_sensitive_scans_total{outcome}` labels them.
    pub const LABELS: [&'static str; 3] = ["scanned", "compressed", "not_text"];

    /// Index into [`Self::LABELS`]; `None` for [`Outcome::None`].
    pub fn index(self) -> Option<usize> {
        match self {
            Outcome::None => None,
            Outcome::Scanned => Some(0),
            Outcome::Compressed => Some(1),
            Outcome::NotText => Some(2),
        }
    }
}

/// What an exchange carries of its response body's scan (never written out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub outcome: Outcome,
    /// Boxed, and only when something was found: one pointer on every record.
    pub counts: Option<Box<Counts>>,
}

impl Found {
    pub fn counts(&self) -> Option<&Counts> {
        self.counts.as_deref()
    }
}

/// Whether a response body of this `Content-Type` is text worth scanning: JSON
/// (and `+json`), XML (and `+xml`), `text/*` (HTML, CSV, plain), form-encoded,
/// JavaScript, NDJSON and YAML. `None` (no type) is scanned: the body shows
/// whether it is text.
pub fn is_textual(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    // Bytes only (asked per response): the usual spellings first, then the media
    // type before any parameter.
    let b = ct.as_bytes();
    if b.starts_with(b"text/")
        || (b.starts_with(b"application/json") && matches!(b.get(16), None | Some(b';')))
    {
        return true;
    }
    let end = memchr::memchr(b';', b).unwrap_or(b.len());
    let media = b[..end].trim_ascii();
    let starts = |p: &[u8]| media.len() >= p.len() && media[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"text/") {
        return true;
    }
    if !starts(b"application/") {
        return false;
    }
    let sub = &media[b"application/".len()..];
    let ends = |suffix: &[u8]| {
        sub.len() >= suffix.len() && sub[sub.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    ends(b"json")
        || ends(b"xml")
        || [
            &b"x-www-form-urlencoded"[..],
            b"csv",
            b"javascript",
            b"x-javascript",
            b"x-ndjson",
            b"jsonl",
            b"yaml",
            b"x-yaml",
        ]
        .iter()
        .any(|t| sub.eq_ignore_ascii_case(t))
}

// Byte classes.
const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
/// `.`, `_`, `%`, `+`, `-`: the local part's symbols.
const SYM: u8 = 8;
const AT: u8 = 16;
/// Control bytes other than tab, LF, FF and CR: not text.
const BIN: u8 = 32;
/// Non-ASCII bytes (UTF-8 letters): part of a word.
const HIGH: u8 = 64;
const ALNUM: u8 = DIGIT | UPPER | LOWER;
/// A byte after which no value begins (and which no value may touch on its left).
const NONDELIM: u8 = ALNUM | SYM | AT | HIGH;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'.' | b'_' | b'%' | b'+' | b'-' => SYM,
            b'@' => AT,
            b'\t' | b'\n' | 0x0c | b'\r' => 0,
            0..=0x1f | 0x7f => BIN,
            0x80..=0xff => HIGH,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// The skip loop's table, indexed by (previous byte is a delimiter) × byte: bit 0,
/// this byte is a delimiter; bit 1, stop here (a digit or uppercase letter after a
/// delimiter may begin a value; `@` may end a local part; a control byte ends text).
const SKIP: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        let prev_delim = i >= 256;
        let c = CLASS[i & 255];
        let delim = (c & NONDELIM == 0) as u8;
        let stop = c & (AT | BIN) != 0 || (prev_delim && c & (DIGIT | UPPER) != 0);
        t[i] = delim | ((stop as u8) << 1);
        i += 1;
    }
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether a byte of `x` below 0x80 lies strictly between `m` and `n` (`n` at most
/// 0x80): one of the bit tricks of Anderson's "Bit Twiddling Hacks", exact per byte.
#[inline(always)]
const fn between(x: u64, m: u8, n: u8) -> u64 {
    let low = x & (LO * 127);
    (LO * (127 + n as u64) - low) & !x & (low + LO * (127 - m as u64)) & HI
}

/// Whether the eight bytes `w` hold a digit, an uppercase letter, `@`, or a
/// control byte (tab, LF, FF and CR too: they only cost the byte loop).
#[inline(always)]
fn may_matter(w: u64) -> bool {
    between(w, b'0' - 1, b'9' + 1)
        | between(w, b'@' - 1, b'Z' + 1)
        | between(w, 0x7e, 0x80)
        | (w.wrapping_sub(LO * 0x20) & !w & HI)
        != 0
}

#[inline]
fn class(b: u8) -> u8 {
    CLASS[b as usize]
}

#[inline]
fn is_delim(b: u8) -> bool {
    class(b) & NONDELIM == 0
}

/// Whether a value may end before `b` (with `b` not a `.`/`-` that is followed by
/// more of the word: those wait for the next byte).
#[inline]
fn ends_before(b: u8) -> bool {
    class(b) & (ALNUM | HIGH | AT) == 0 && b != b'_'
}

const EMAIL: usize = 0;
const CARD: usize = 1;
const IBAN: usize = 2;
const NATIONAL_ID: usize = 3;
/// No value (a [`Machine::Pending`] that counts nothing).
const NOTHING: u8 = 4;

/// The shape of a run of local-part bytes (its bytes are not kept).
#[derive(Debug, Clone, Copy, Default)]
struct Local {
    /// Bytes, up to 65 (more is too long anyway).
    len: u8,
    first_dot: bool,
    last_dot: bool,
    double_dot: bool,
    /// What precedes the run may precede a local part (not `@`, not a non-ASCII byte).
    left_ok: bool,
}

impl Local {
    fn of(run: &[u8], left_ok: bool) -> Local {
        Local {
            len: run.len().min(65) as u8,
            first_dot: run.first() == Some(&b'.'),
            last_dot: run.last() == Some(&b'.'),
            double_dot: run.windows(2).any(|w| w == b".."),
            left_ok,
        }
    }

    /// `self` followed by `next`.
    fn then(self, next: Local) -> Local {
        if self.len == 0 {
            return Local {
                left_ok: self.left_ok,
                ..next
            };
        }
        if next.len == 0 {
            return self;
        }
        Local {
            len: self.len.saturating_add(next.len).min(65),
            first_dot: self.first_dot,
            last_dot: next.last_dot,
            double_dot: self.double_dot || next.double_dot || (self.last_dot && next.first_dot),
            left_ok: self.left_ok,
        }
    }

    fn valid(&self) -> bool {
        (1..=64).contains(&self.len)
            && self.left_ok
            && !self.first_dot
            && !self.last_dot
            && !self.double_dot
    }
}

/// A run of digits, possibly in groups (card or SSN).
#[derive(Debug, Clone, Copy, Default)]
struct Num {
    digits: u8,
    /// The first four digits.
    prefix: u16,
    /// Luhn sums mod 10: `a` with the last digit undoubled, `b` doubled.
    a: u8,
    b: u8,
    /// Groups before the current one.
    groups: u8,
    /// Digits in the current group.
    cur: u8,
    /// The current group's value (its first four digits).
    cur_val: u16,
    /// The second group's value and the first two groups' lengths.
    g1_val: u16,
    g0: u8,
    g1: u8,
    /// The separator between groups (0 before there is one).
    sep: u8,
    /// Middle groups (after the first, before the current) had 4-6 digits.
    mid_ok: bool,
    /// The previous byte was a separator (the next digit opens a group).
    after_sep: bool,
    /// The current group alone, as a number of its own: prefix and Luhn sums.
    g_prefix: u16,
    g_a: u8,
    g_b: u8,
}

const fn double(d: u8) -> u8 {
    if d >= 5 { d * 2 - 9 } else { d * 2 }
}

impl Num {
    fn digit(&mut self, d: u8) {
        if self.after_sep {
            self.after_sep = false;
            match self.groups {
                0 => self.g0 = self.cur,
                1 => {
                    self.g1 = self.cur;
                    self.g1_val = self.cur_val;
                    self.mid_ok = (4..=6).contains(&self.cur);
                }
                _ => self.mid_ok &= (4..=6).contains(&self.cur),
            }
            self.groups = self.groups.saturating_add(1);
            self.cur = 0;
            self.cur_val = 0;
            self.g_prefix = 0;
            self.g_a = 0;
            self.g_b = 0;
        }
        self.digits = self.digits.saturating_add(1);
        if self.digits <= 4 {
            self.prefix = self.prefix * 10 + u16::from(d);
        }
        (self.a, self.b) = ((self.b + d) % 10, (self.a + double(d)) % 10);
        self.cur = self.cur.saturating_add(1);
        if self.cur <= 4 {
            self.cur_val = self.cur_val * 10 + u16::from(d);
            self.g_prefix = self.g_prefix * 10 + u16::from(d);
        }
        (self.g_a, self.g_b) = ((self.g_b + d) % 10, (self.g_a + double(d)) % 10);
        // A long group after a space is a number of its own (`1234 4111111111111111`):
        // the space delimits it.
        if self.cur == 7 && self.groups > 0 && self.sep == b' ' {
            *self = Num {
                digits: 7,
                prefix: self.g_prefix,
                a: self.g_a,
                b: self.g_b,
                cur: 7,
                ..Num::default()
            };
        }
    }

    /// Whether separator `s` after the current group may join another group.
    fn joins(&self, s: u8) -> bool {
        if self.groups == 0 {
            (s == b' ' && self.cur == 4) || (s == b'-' && (self.cur == 3 || self.cur == 4))
        } else {
            s == self.sep && self.cur <= 6
        }
    }

    /// What the run is, ended (delimited) here.
    fn kind(&self) -> u8 {
        if self.groups == 2 && self.sep == b'-' && self.g0 == 3 && self.g1 == 2 && self.cur == 4 {
            let area = self.prefix / 10;
            let ok =
                area != 0 && area != 666 && area < 900 && self.g1_val != 0 && self.cur_val != 0;
            return if ok { NATIONAL_ID as u8 } else { NOTHING };
        }
        let grouping = self.groups == 0
            || (self.g0 == 4 && (self.groups == 1 || self.mid_ok) && self.cur <= 6);
        if grouping && self.a == 0 && issuer_allows(self.prefix, self.digits) {
            CARD as u8
        } else {
            NOTHING
        }
    }
}

/// Whether a card number of `len` digits starting with `p` (its first four digits)
/// has an issuer that uses that length.
fn issuer_allows(p: u16, len: u8) -> bool {
    let (p1, p2, p3) = (p / 1000, p / 100, p / 10);
    match len {
        13 => p1 == 4,
        14 => (300..=305).contains(&p3) || p == 3095 || matches!(p2, 36 | 38 | 39),
        15 => matches!(p2, 34 | 37),
        16..=19 => {
            (p1 == 4 && matches!(len, 16 | 19))
                || (len == 16 && ((51..=55).contains(&p2) || (2221..=2720).contains(&p)))
                || p == 6011
                || (644..=649).contains(&p3)
                || p2 == 65
                || (3528..=3589).contains(&p)
                || (300..=305).contains(&p3)
                || p == 3095
                || matches!(p2, 36 | 38 | 39)
        }
        _ => false,
    }
}

/// An IBAN in progress.
#[derive(Debug, Clone, Copy, Default)]
struct Iban {
    /// Characters so far (spaces not counted).
    n: u8,
    country: [u8; 2],
    check: u8,
    /// The BBAN mod 97 (letters as two digits, A = 10).
    r: u8,
    /// Characters in the current group.
    cur: u8,
    grouped: bool,
    after_space: bool,
}

impl Iban {
    /// One letter or digit; false when the run cannot be an IBAN.
    fn char(&mut self, b: u8, c: u8) -> bool {
        match self.n {
            0 | 1 if c & UPPER != 0 => self.country[self.n as usize] = b,
            2 | 3 if c & DIGIT != 0 => self.check = self.check * 10 + (b - b'0'),
            4.. if c & DIGIT != 0 => {
                self.r = ((u16::from(self.r) * 10 + u16::from(b - b'0')) % 97) as u8
            }
            4.. if c & UPPER != 0 => {
                self.r = ((u16::from(self.r) * 100 + u16::from(b - b'A' + 10)) % 97) as u8
            }
            _ => return false,
        }
        self.n += 1;
        self.cur += 1;
        self.n <= 34 && !(self.grouped && self.cur > 4)
    }

    fn kind(&self) -> u8 {
        if self.n < 15
            || iban_length(self.country) != Some(self.n)
            || !(2..=98).contains(&self.check)
        {
            return NOTHING;
        }
        let mut r = u32::from(self.r);
        for c in self.country {
            r = (r * 100 + u32::from(c - b'A' + 10)) % 97;
        }
        r = (r * 100 + u32::from(self.check)) % 97;
        if r == 1 { IBAN as u8 } else { NOTHING }
    }
}

/// IBAN lengths by country (SWIFT's IBAN registry).
#[rustfmt::skip]
const IBAN_LENGTHS: [(&[u8; 2], u8); 89] = [
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20),
    (b"BE", 16), (b"BG", 22), (b"BH", 22), (b"BI", 27), (b"BR", 29), (b"BY", 28),
    (b"CH", 21), (b"CR", 22), (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DJ", 27),
    (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24), (b"FI", 18),
    (b"FK", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23),
    (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HN", 28), (b"HR", 21), (b"HU", 28),
    (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30),
    (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20),
    (b"LU", 20), (b"LV", 21), (b"LY", 25), (b"MC", 27), (b"MD", 24), (b"ME", 22),
    (b"MK", 19), (b"MN", 20), (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NI", 28),
    (b"NL", 18), (b"NO", 15), (b"OM", 23), (b"PK", 24), (b"PL", 28), (b"PS", 29),
    (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"RU", 33), (b"SA", 24),
    (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27),
    (b"SO", 23), (b"ST", 25), (b"SV", 28), (b"TL", 23), (b"TN", 24), (b"TR", 26),
    (b"UA", 29), (b"VA", 22), (b"VG", 24), (b"XK", 20), (b"YE", 30),
];

fn iban_length(country: [u8; 2]) -> Option<u8> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| **c == country)
        .map(|(_, n)| *n)
}

/// An e-mail address's domain in progress (after a valid local part and `@`).
#[derive(Debug, Clone, Copy, Default)]
struct Domain {
    len: u8,
    /// Bytes of the current label.
    label: u8,
    /// Labels ended by a dot.
    labels: u8,
    /// The current label is letters only; it ends with `-`.
    alpha: bool,
    hyphen: bool,
    /// The last label ended by a dot: letters only, and its length.
    prev_alpha: bool,
    prev_len: u8,
}

/// What the scanner is in the middle of.
#[derive(Debug, Clone, Copy, Default)]
enum Machine {
    #[default]
    Idle,
    Num(Num),
    Iban(Iban),
    Domain(Domain),
    /// A value (or [`NOTHING`]) ended by `.` or `-`: it counts unless the next byte
    /// is a letter or digit (`4111111111111111.5` is a decimal).
    Pending(u8),
}

/// The scan of one response body.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    counts: Counts,
    /// Bytes still to scan (0: off, stopped or done).
    left: u32,
    outcome: Outcome,
    /// More body came than the prefix: a value in progress at its end is cut.
    cut: bool,
    /// The previous byte may precede a value.
    prev_delim: bool,
    machine: Machine,
    /// The run of local-part bytes that ended the bytes so far.
    tail: Local,
}

impl Scanner {
    /// The scan of a response body: `prefix` bytes at most (0: off), of a
    /// `content_type` body, `encoded` when a content coding (gzip, br...) applies.
    pub fn new(prefix: usize, content_type: Option<&str>, encoded: bool) -> Scanner {
        let (outcome, left) = if prefix == 0 {
            (Outcome::None, 0)
        } else if encoded {
            (Outcome::Compressed, 0)
        } else if !is_textual(content_type) {
            (Outcome::NotText, 0)
        } else {
            (Outcome::Scanned, prefix.min(MAX_PREFIX) as u32)
        };
        Scanner {
            left,
            outcome,
            prev_delim: true,
            ..Default::default()
        }
    }

    /// The next bytes of the body.
    #[inline]
    pub fn feed(&mut self, data: &[u8]) {
        if self.left == 0 {
            if !data.is_empty() && self.outcome == Outcome::Scanned {
                self.cut = true;
            }
            return;
        }
        if data.len() > self.left as usize {
            self.cut = true;
        }
        let n = data.len().min(self.left as usize);
        if n > 0 {
            self.left -= n as u32;
            self.run(&data[..n]);
        }
    }

    /// The body ended (`complete`: all of it was seen, not cut by a gap or the
    /// connection's end): a value running to its last byte counts when the whole
    /// body was scanned.
    pub fn finish(mut self, complete: bool) -> Found {
        if complete && !self.cut {
            self.end_value(b'\n');
        }
        Found {
            outcome: self.outcome,
            counts: (!self.counts.is_empty()).then(|| Box::new(self.counts)),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn run(&mut self, data: &[u8]) {
        let start_delim = self.prev_delim;
        let n = data.len();
        let mut i = 0;
        while i < n {
            if let Machine::Idle = self.machine {
                // Skip to the next byte that may matter: eight bytes at a time while
                // they hold no digit, uppercase letter, `@` or control byte, then
                // byte by byte (a digit or letter matters after a delimiter only).
                let mut pd = usize::from(self.prev_delim);
                'skip: while i < n {
                    let from = i;
                    while let Some(w) = data.get(i..i + 8) {
                        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                        if may_matter(w) {
                            break;
                        }
                        i += 8;
                    }
                    if i > from {
                        pd = usize::from(is_delim(data[i - 1]));
                    }
                    let end = n.min(i + 8);
                    while i < end {
                        let t = SKIP[(pd << 8) | data[i] as usize];
                        if t & 2 != 0 {
                            break 'skip;
                        }
                        pd = usize::from(t & 1);
                        i += 1;
                    }
                }
                self.prev_delim = pd != 0;
                if i == n {
                    break;
                }
                // Most starts are short numbers (`"id":17`) and capitalised words:
                // ruled out here, within the bytes at hand, without the machines.
                // Exact: no value lies inside a run of digits, spaces and dashes
                // with fewer than nine digits, nor begins at an uppercase letter
                // not followed by an uppercase letter and two digits; every other
                // byte is still looked at by the loop above.
                let c = class(data[i]);
                if c & DIGIT != 0 && pd != 0 {
                    let (mut j, mut digits) = (i, 0);
                    while j < n && digits < 9 {
                        match data[j] {
                            b'0'..=b'9' => digits += 1,
                            b' ' | b'-' => {}
                            _ => break,
                        }
                        j += 1;
                    }
                    if digits < 9 && j < n {
                        self.prev_delim = is_delim(data[j - 1]);
                        i = j;
                        continue;
                    }
                } else if c & UPPER != 0 && pd != 0 && n - i >= 4 {
                    let iban_like = class(data[i + 1]) & UPPER != 0
                        && class(data[i + 2]) & DIGIT != 0
                        && class(data[i + 3]) & DIGIT != 0;
                    if !iban_like {
                        self.prev_delim = false;
                        i += 1;
                        continue;
                    }
                }
            }
            let b = data[i];
            if !self.step(b) {
                self.idle(b, data, i, start_delim);
                if self.left == 0 && self.outcome == Outcome::NotText {
                    return;
                }
            }
            self.prev_delim = is_delim(b);
            i += 1;
        }
        self.tail = self.tail_after(data, start_delim);
    }

    /// The run of local-part bytes ending `data` (continuing the previous tail when
    /// `data` is all such bytes).
    fn tail_after(&self, data: &[u8], start_delim: bool) -> Local {
        let n = data.len();
        let mut j = n;
        while j > 0 && n - j <= 64 && is_local(data[j - 1]) {
            j -= 1;
        }
        if j == n {
            return Local {
                left_ok: data.last().is_some_and(|b| is_delim(*b)),
                ..Local::default()
            };
        }
        if j == 0 {
            self.before(start_delim).then(Local::of(data, true))
        } else {
            Local::of(&data[j..], is_delim(data[j - 1]))
        }
    }

    /// What precedes the bytes being scanned, as the start of a local part.
    fn before(&self, start_delim: bool) -> Local {
        if self.tail.len > 0 {
            self.tail
        } else {
            Local {
                left_ok: start_delim,
                ..Local::default()
            }
        }
    }

    /// Feeds `b` to the value in progress; false when it was not taken (no value in
    /// progress, or `b` ended it): then `b` is looked at afresh.
    #[inline]
    fn step(&mut self, b: u8) -> bool {
        let c = class(b);
        match &mut self.machine {
            Machine::Idle => false,
            Machine::Num(num) => {
                if c & DIGIT != 0 {
                    num.digit(b - b'0');
                    return true;
                }
                if num.after_sep {
                    // `4111 1111 1111 1111 ` + not a digit: the separator ended it;
                    // `-` then a letter is a hyphenated word.
                    let ok = num.sep == b' ' || ends_before(b) && b != b'.' && b != b'-';
                    let k = num.kind();
                    self.machine = Machine::Idle;
                    if ok {
                        self.count(k);
                    }
                    return false;
                }
                if (b == b' ' || b == b'-') && num.joins(b) {
                    num.sep = b;
                    num.after_sep = true;
                    return true;
                }
                let k = num.kind();
                self.end_with(k, b)
            }
            Machine::Iban(iban) => {
                if iban.after_space {
                    if c & (UPPER | DIGIT) != 0 {
                        iban.after_space = false;
                        iban.cur = 0;
                    } else {
                        let k = iban.kind();
                        self.machine = Machine::Idle;
                        self.count(k);
                        return false;
                    }
                }
                if c & (UPPER | DIGIT) != 0 {
                    if !iban.char(b, c) {
                        self.machine = Machine::Idle;
                    }
                    return true;
                }
                if b == b' ' && iban.cur == 4 && (iban.n == 4 || iban.grouped) {
                    iban.grouped = true;
                    iban.after_space = true;
                    return true;
                }
                let k = iban.kind();
                self.end_with(k, b)
            }
            Machine::Domain(d) => {
                if c & ALNUM != 0 {
                    d.label += 1;
                    d.len = d.len.saturating_add(1);
                    d.alpha &= c & DIGIT == 0;
                    d.hyphen = false;
                    if d.label > 63 || d.len > 253 {
                        self.machine = Machine::Idle;
                    }
                    return true;
                }
                if b == b'-' || b == b'.' {
                    if d.label == 0 || d.hyphen {
                        self.machine = Machine::Idle;
                    } else if b == b'-' {
                        d.label += 1;
                        d.len = d.len.saturating_add(1);
                        d.alpha = false;
                        d.hyphen = true;
                    } else {
                        d.labels = d.labels.saturating_add(1);
                        (d.prev_alpha, d.prev_len) = (d.alpha, d.label);
                        d.label = 0;
                        d.len = d.len.saturating_add(1);
                        d.alpha = true;
                    }
                    return true;
                }
                // The domain ended (a trailing dot is punctuation: `a@b.com.`).
                let (labels, alpha, last) = if d.label > 0 {
                    (d.labels.saturating_add(1), d.alpha && !d.hyphen, d.label)
                } else {
                    (d.labels, d.prev_alpha, d.prev_len)
                };
                let ok =
                    labels >= 2 && alpha && last >= 2 && ends_before(b) && b != b'+' && b != b'%';
                self.machine = Machine::Idle;
                if ok {
                    self.count(EMAIL as u8);
                }
                false
            }
            Machine::Pending(k) => {
                let k = *k;
                self.machine = Machine::Idle;
                if c & (ALNUM | HIGH) == 0 {
                    self.count(k);
                }
                false
            }
        }
    }

    /// A value ended at `b` (not part of it).
    #[inline]
    fn end_with(&mut self, k: u8, b: u8) -> bool {
        if b == b'.' || b == b'-' {
            self.machine = Machine::Pending(k);
            return true;
        }
        self.machine = Machine::Idle;
        if ends_before(b) {
            self.count(k);
        }
        false
    }

    /// `b` with no value in progress: it may begin one, end a local part (`@`), or
    /// show that the body is not text.
    fn idle(&mut self, b: u8, data: &[u8], i: usize, start_delim: bool) {
        let c = class(b);
        if c & DIGIT != 0 && self.prev_delim {
            let mut num = Num::default();
            num.digit(b - b'0');
            self.machine = Machine::Num(num);
        } else if c & UPPER != 0 && self.prev_delim {
            let mut iban = Iban::default();
            iban.char(b, c);
            self.machine = Machine::Iban(iban);
        } else if c & AT != 0 {
            if self.local_before(data, i, start_delim).valid() {
                self.machine = Machine::Domain(Domain {
                    alpha: true,
                    ..Domain::default()
                });
            }
        } else if c & BIN != 0 {
            // Not text: counted so far, no further.
            self.outcome = Outcome::NotText;
            self.left = 0;
            self.cut = false;
        }
    }

    /// The local part before the `@` at `data[i]`.
    fn local_before(&self, data: &[u8], i: usize, start_delim: bool) -> Local {
        let mut j = i;
        while j > 0 && i - j <= 64 && is_local(data[j - 1]) {
            j -= 1;
        }
        if j == 0 {
            self.before(start_delim).then(Local::of(&data[..i], true))
        } else {
            Local::of(&data[j..i], is_delim(data[j - 1]))
        }
    }

    /// The value in progress ends with the body (or the virtual delimiter `b`).
    fn end_value(&mut self, b: u8) {
        if !matches!(self.machine, Machine::Idle) {
            self.step(b);
        }
        self.machine = Machine::Idle;
    }

    #[inline]
    fn count(&mut self, k: u8) {
        if let Some(n) = self.counts.0.get_mut(k as usize) {
            *n = n.saturating_add(1);
        }
    }
}

#[inline]
fn is_local(b: u8) -> bool {
    class(b) & (ALNUM | SYM) != 0
}

/// Counts the values in `body` as one whole, complete body (tests and tools).
pub fn count(body: &[u8]) -> Counts {
    let mut s = Scanner::new(MAX_PREFIX, None, false);
    s.feed(body);
    s.finish(true).counts.map_or_else(Counts::default, |c| *c)
}

#[cfg(test)]
mod tests;
