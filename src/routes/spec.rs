//! `--openapi SPEC`: routes pinned by the user's own OpenAPI document (3.0 or 3.1,
//! JSON or YAML; Swagger 2.0's `basePath` is honoured too). A request whose path and
//! method match a path of the spec gets that path as its route; anything else is a
//! shadow route, which the unusual-endpoint detector reports when it answers 2xx.

use std::io::Read;
use std::path::Path;

mod doc;
mod trie;

pub use doc::{Format, MAX_BYTES, MAX_DEPTH};

/// Paths read from one spec (a spec is the user's file; this only bounds a mistake).
const MAX_PATHS: usize = 20_000;
/// Segments of one spec path (the prefix tree is walked recursively; real APIs have
/// a dozen at most).
const MAX_SEGMENTS: usize = 64;

#[derive(Debug, Clone)]
struct Route {
    template: String,
    methods: Vec<&'static str>,
}

/// The routes of a spec.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    routes: Vec<Route>,
    trie: std::sync::Arc<trie::Trie>,
}

/// How a request fits the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'s> {
    /// The spec's route for it.
    Route(&'s str),
    /// The path is in the spec, the method is not.
    UndeclaredMethod(&'s str),
    /// Nothing in the spec: a shadow route.
    Outside,
}

impl Spec {
    /// Reads a spec file of at most [`MAX_BYTES`], as JSON or YAML by its extension
    /// (or its first byte); the error is one line naming what is wrong with it.
    pub fn load(path: &Path) -> Result<Spec, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let too_big = |n: u64| {
            format!(
                "{:.1} MB is more than a spec may be ({} MiB)",
                n as f64 / 1e6,
                MAX_BYTES >> 20
            )
        };
        if let Ok(m) = file.metadata()
            && m.is_file()
            && m.len() > MAX_BYTES
        {
            return Err(too_big(m.len()));
        }
        // Read through a bound too: a pipe or a device has no length to check.
        let mut bytes = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read: {e}"))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(too_big(bytes.len() as u64));
        }
        let text = String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
        Spec::parse_as(&text, Format::of(Some(path), &text))
    }

    /// Reads a spec, as JSON if it opens with `{`, else as YAML.
    pub fn parse(text: &str) -> Result<Spec, String> {
        Spec::parse_as(text, Format::of(None, text))
    }

    pub fn parse_as(text: &str, format: Format) -> Result<Spec, String> {
        let doc = doc::read(text, format)?;
        let version = doc
            .version
            .ok_or("no `openapi` (or `swagger`) version field: not an OpenAPI document")?;
        if !(version.starts_with("3.") || version.starts_with("2.")) {
            return Err(format!(
                "OpenAPI version {} is not supported (2.0, 3.0, 3.1)",
                version.chars().take(40).collect::<String>()
            ));
        }
        let base = base_path(doc.server_url.as_deref().or(doc.base_path.as_deref()));
        let paths = doc.paths.ok_or("no `paths` object")?;
        if paths.len() > MAX_PATHS {
            return Err(format!("{} paths (at most {MAX_PATHS})", paths.len()));
        }
        let mut spec = Spec::default();
        let mut trie = trie::Trie::default();
        for (p, methods) in paths {
            let shown = || p.chars().take(80).collect::<String>();
            if !p.starts_with('/') {
                return Err(format!("path `{}` does not start with /", shown()));
            }
            let full = format!("{}{}", base, p);
            let full = if full.len() > 1 {
                full.trim_end_matches('/').to_string()
            } else {
                full
            };
            let segs: Vec<trie::Seg> = full.split('/').skip(1).map(trie::Seg::parse).collect();
            if segs.len() > MAX_SEGMENTS {
                return Err(format!(
                    "path `{}` has more than {MAX_SEGMENTS} segments",
                    shown()
                ));
            }
            trie.insert(segs, spec.routes.len());
            spec.routes.push(Route {
                template: full,
                methods,
            });
        }
        spec.trie = std::sync::Arc::new(trie);
        Ok(spec)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The spec's route for `method` on `path` (no query). With several matches the
    /// one with the most literal segments wins (`/users/me` before `/users/{id}`),
    /// then the most partly literal (`/files/{name}.json` before `/files/{name}`),
    /// then one that declares the method. Costs the path's segments, not the spec's.
    pub fn route(&self, method: &str, path: &str) -> Match<'_> {
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let Some(rest) = trimmed.strip_prefix('/') else {
            return Match::Outside;
        };
        let declared = |r: usize| {
            self.routes[r]
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
        };
        match self.trie.best(rest, declared) {
            Some(r) if declared(r) => Match::Route(&self.routes[r].template),
            Some(r) => Match::UndeclaredMethod(&self.routes[r].template),
            None => Match::Outside,
        }
    }
}

/// The path part of the first server URL (3.x) or `basePath` (2.0), without a
/// trailing slash.
fn base_path(url: Option<&str>) -> String {
    let url = url.unwrap_or("");
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
        None => url,
    };
    if !path.starts_with('/') || path.contains('{') {
        return String::new();
    }
    path.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
openapi: 3.0.3
info: {title: books, version: "1"}
servers:
  - url: http://api.example.com/api
paths:
  /users/me:
    get: {responses: {"200": {description: ok}}}
  /users/{username}:
    get: {responses: {"200": {description: ok}}}
    delete: {responses: {"204": {description: ok}}}
  /books/{title}/reviews/{id}:
    put: {responses: {"200": {description: ok}}}
"#;

    #[test]
    fn requests_take_the_specs_routes_and_the_rest_is_shadow() {
        let s = Spec::parse(YAML).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.route("GET", "/api/users/alice"),
            Match::Route("/api/users/{username}")
        );
        assert_eq!(
            s.route("GET", "/api/users/me"),
            Match::Route("/api/users/me")
        );
        assert_eq!(
            s.route("PUT", "/api/books/dune/reviews/7/"),
            Match::Route("/api/books/{title}/reviews/{id}")
        );
        assert_eq!(
            s.route("POST", "/api/users/alice"),
            Match::UndeclaredMethod("/api/users/{username}")
        );
        assert_eq!(s.route("GET", "/api/admin/export"), Match::Outside);
        assert_eq!(s.route("GET", "/users/alice"), Match::Outside);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        assert!(Spec::parse("{}").unwrap_err().contains("openapi"));
        assert!(
            Spec::parse("openapi: 4.0.0\npaths: {}")
                .unwrap_err()
                .contains("4.0.0")
        );
        assert!(
            Spec::parse("openapi: 3.1.0\n")
                .unwrap_err()
                .contains("paths")
        );
        assert!(Spec::parse(": : :\n\t-").is_err());
        let swagger = r#"{"swagger":"2.0","basePath":"/v2","paths":{"/pet/{petId}":{"get":{}}}}"#;
        assert_eq!(
            Spec::parse(swagger).unwrap().route("GET", "/v2/pet/12"),
            Match::Route("/v2/pet/{petId}")
        );
    }
}
