//! Path templates: `/users/1234/orders/9f1c...` becomes `/users/{id}/orders/{hex}` so
//! that endpoints are counted by route, not by object.
//!
//! Two layers: segment shapes that are identifiers on any API (integers, UUIDs, long
//! hex, opaque tokens, emails), and a [`Templater`] that learns, per position under
//! each templated prefix, when a segment is a parameter (`/users/alice` and
//! `/users/bob` are `/users/{param}`) from how many distinct values appear there.

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

/// Learning settings (config `[detect.templates]`).
#[derive(Debug, Clone)]
pub struct LearnConfig {
    /// Distinct literal values at one position before it may become `{param}`...
    pub param_limit: usize,
    /// ...and only if at least this share of them were seen at most twice: identifiers
    /// are a long tail, while real routes under one prefix are each hit again and
    /// again (the guard against merging `/api/users` and `/api/orders`).
    pub min_rare_share: f64,
    /// Positions tracked (least recently used forgotten beyond it, counted).
    pub max_positions: usize,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            param_limit: 50,
            min_rare_share: 0.8,
            max_positions: 20_000,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Position {
    /// Hash of each literal value seen here and how often (bounded).
    values: std::collections::HashMap<u64, u32, super::Prehashed>,
    param: bool,
    last_used: u64,
}

/// Online path templating with learned parameters.
#[derive(Debug, Clone, Default)]
pub struct Templater {
    cfg: LearnConfig,
    positions: std::collections::HashMap<u64, Position, super::Prehashed>,
    hasher: foldhash::fast::FixedState,
    tick: u64,
    pub evicted: u64,
}

impl Templater {
    pub fn new(cfg: LearnConfig) -> Self {
        Templater {
            cfg,
            ..Default::default()
        }
    }

    /// The template of `uri`. Only requests the server answered with success teach
    /// it (a wordlist scanner's 404s are not routes, and must not turn `/api` into
    /// `{param}`); the first path segment is never learned as a parameter.
    pub fn template(&mut self, uri: &str, status: Option<u16>) -> String {
        let learn = matches!(status, Some(200..=399));
        use std::hash::BuildHasher;
        let path = uri.split(['?', '#']).next().unwrap_or("");
        let path = match path.find("://") {
            Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
            None => path,
        };
        self.tick += 1;
        let mut out = String::with_capacity(path.len());
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            if let Some(class) = segment_class(seg) {
                out.push_str(class);
                continue;
            }
            if seg.is_empty() || i <= 1 {
                out.push_str(seg);
                continue;
            }
            let key = self.hasher.hash_one(out.as_bytes());
            if !self.positions.contains_key(&key) && self.positions.len() >= self.cfg.max_positions
            {
                self.evict();
            }
            let pos = self.positions.entry(key).or_default();
            pos.last_used = self.tick;
            if !pos.param && learn {
                let cap = self.cfg.param_limit * 4;
                let v = self.hasher.hash_one(seg.as_bytes());
                if pos.values.len() < cap || pos.values.contains_key(&v) {
                    *pos.values.entry(v).or_default() += 1;
                }
                let n = pos.values.len();
                if n > self.cfg.param_limit {
                    let rare = pos.values.values().filter(|c| **c <= 2).count();
                    if rare as f64 >= self.cfg.min_rare_share * n as f64 {
                        pos.param = true;
                        pos.values = Default::default();
                    }
                }
            }
            out.push_str(if pos.param { "{param}" } else { seg });
        }
        if out.is_empty() {
            out.push('/');
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

    impl Templater {
        fn template_ok(&mut self, uri: &str) -> String {
            self.template(uri, Some(200))
        }
    }

    #[test]
    fn scanners_404s_teach_nothing_and_the_first_segment_stays() {
        let mut t = Templater::new(LearnConfig::default());
        for i in 0..500 {
            t.template(&format!("/word{i}"), Some(200));
            t.template(&format!("/api/word{i}"), Some(404));
        }
        assert_eq!(t.template_ok("/api/items"), "/api/items");
        assert_eq!(t.template_ok("/word7"), "/word7");
    }

    #[test]
    fn learned_params_for_long_tail_values() {
        let mut t = Templater::new(LearnConfig::default());
        let mut last = String::new();
        for i in 0..80 {
            last = t.template_ok(&format!(
                "/api/users/user-{}/profile",
                ["ann", "bo", "cy", "di"][i % 4].repeat(1 + i / 4)
            ));
        }
        assert_eq!(last, "/api/users/{param}/profile");
        // Once learned, any value maps there, and other routes are untouched.
        assert_eq!(
            t.template("/api/users/zed/profile", Some(404)),
            "/api/users/{param}/profile"
        );
        assert_eq!(t.template_ok("/api/orders/7"), "/api/orders/{id}");
    }

    #[test]
    fn many_busy_static_routes_are_not_merged() {
        let mut t = Templater::new(LearnConfig::default());
        let routes: Vec<String> = (0..45)
            .map(|i| format!("resource{}", (b'a' + i as u8 % 26) as char).repeat(1 + i / 26))
            .collect();
        for round in 0..10 {
            for r in &routes {
                let got = t.template_ok(&format!("/api/v1/{r}"));
                if round == 9 {
                    assert_eq!(got, format!("/api/v1/{r}"));
                }
            }
        }
    }

    #[test]
    fn positions_are_bounded() {
        let mut t = Templater::new(LearnConfig {
            max_positions: 16,
            ..LearnConfig::default()
        });
        for i in 0..1000 {
            t.template_ok(&format!("/a/p{i}/x/y"));
        }
        assert!(t.positions.len() <= 16);
        assert!(t.evicted > 0);
    }
}
