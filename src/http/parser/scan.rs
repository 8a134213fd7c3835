//! Where messages start: the tokens a request line may begin with, a plausible
//! start or resynchronisation point after a gap, and where a header block ends.

use super::*;

pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `data` can be the beginning of a message of this role (checked on the
/// bytes present, so a short prefix is plausible if it could still become one).
pub(super) fn plausible_start(role: Role, data: &[u8]) -> bool {
    match role {
        Role::Response => {
            let n = data.len().min(5);
            data[..n].eq_ignore_ascii_case(&b"HTTP/"[..n])
        }
        Role::Request => {
            let n = data.len().min(MAX_METHOD_LEN + 1);
            match data[..n].iter().position(|b| *b == b' ') {
                Some(0) => false,
                Some(i) => data[..i]
                    .iter()
                    .all(|b| b.is_ascii_alphabetic() || *b == b'-' || *b == b'_'),
                None => n <= MAX_METHOD_LEN && data[..n].iter().all(|b| is_tchar(*b)),
            }
        }
    }
}

/// A stricter test used when resynchronising inside arbitrary bytes.
pub(super) fn plausible_resync_point(role: Role, data: &[u8]) -> bool {
    match role {
        Role::Response => {
            let n = data.len().min(7);
            n >= 1 && data[..n] == b"HTTP/1."[..n]
        }
        Role::Request => KNOWN_METHODS.iter().any(|m| {
            let full = m.len() + 1;
            let n = data.len().min(full);
            n >= 1
                && data[..n.min(m.len())] == m[..n.min(m.len())]
                && (n < full || data[m.len()] == b' ')
        }),
    }
}

/// Where a message starts inside `data` other than at a line start, judged by the
/// start line's shape: `HTTP/1.x NNN` for responses, `KNOWN-METHOD target HTTP/1.`
/// for requests. A status line cut by the end of `data` counts once `HTT` is present.
pub(super) fn embedded_start(role: Role, data: &[u8]) -> Option<usize> {
    match role {
        Role::Response => {
            for p in memchr::memmem::find_iter(data, b"HTTP/1.") {
                let rest = &data[p + 7..];
                let ok = match rest {
                    [] | [b'0' | b'1'] => true,
                    [b'0' | b'1', b' ', digits @ ..] => {
                        digits.iter().take(3).all(u8::is_ascii_digit)
                    }
                    _ => false,
                };
                if ok {
                    return Some(p);
                }
            }
            (3..7)
                .rev()
                .find(|n| data.len() >= *n && data.ends_with(&b"HTTP/1."[..*n]))
                .map(|n| data.len() - n)
        }
        Role::Request => memchr::memmem::find_iter(data, b" HTTP/1.").find_map(|q| {
            // The target has no spaces: the space before it ends the method.
            let from = q.saturating_sub(8192);
            let s = from + memchr::memrchr(b' ', &data[from..q])?;
            if s + 1 == q {
                return None;
            }
            let before = &data[..s];
            KNOWN_METHODS
                .iter()
                .filter(|m| before.ends_with(m))
                .map(|m| s - m.len())
                .min()
        }),
    }
}

/// Where the first lines of a head end, as [`head_end_noting`] found them: parsing
/// the head then splits it without searching again.
#[derive(Debug)]
pub(super) struct Newlines {
    pub(super) at: [u32; 40],
    pub(super) n: usize,
}

impl Default for Newlines {
    fn default() -> Self {
        Newlines { at: [0; 40], n: 0 }
    }
}

impl Newlines {
    pub(super) fn note(&mut self, at: usize) {
        if self.n < self.at.len() {
            self.at[self.n] = at as u32;
            self.n += 1;
        }
    }
}

/// Offset just past the header block, if it is complete in `data`, noting where
/// lines end on the way.
pub(super) fn head_end_noting(role: Role, data: &[u8], nl: &mut Newlines) -> Option<usize> {
    nl.n = 0;
    let first_nl = memchr(b'\n', data)?;
    nl.note(first_nl);
    if role == Role::Request && request_version(&data[..first_nl]).is_none() {
        // HTTP/0.9 simple request: the request line is the whole head.
        return Some(first_nl + 1);
    }
    let mut at = first_nl + 1;
    loop {
        match data.get(at) {
            None => return None,
            Some(b'\n') => {
                nl.note(at);
                return Some(at + 1);
            }
            Some(b'\r') => match data.get(at + 1) {
                None => return None,
                Some(b'\n') => {
                    nl.note(at + 1);
                    return Some(at + 2);
                }
                Some(_) => {}
            },
            Some(_) => {}
        }
        at += memchr(b'\n', &data[at..])? + 1;
        nl.note(at - 1);
    }
}
