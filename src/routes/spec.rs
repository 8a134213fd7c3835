//! `--openapi SPEC`: routes pinned by the user's own OpenAPI document (3.0 or 3.1,
//! JSON or YAML; Swagger 2.0's `basePath` is honoured too). A request whose path and
//! method match a path of the spec gets that path as its route; anything else is a
//! shadow route, which the unusual-endpoint detector reports when it answers 2xx.

use std::path::Path;

use serde_json::Value;

/// Paths read from one spec (a spec is the user's file; this only bounds a mistake).
const MAX_PATHS: usize = 20_000;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Debug, Clone)]
struct SpecPath {
    /// Segments after the leading `/`; `None` is a parameter.
    segments: Vec<Option<String>>,
    template: String,
    methods: Vec<String>,
}

/// The routes of a spec.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    paths: Vec<SpecPath>,
}

/// How a request fits the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The spec's route for it.
    Route(String),
    /// The path is in the spec, the method is not.
    UndeclaredMethod(String),
    /// Nothing in the spec: a shadow route.
    Outside,
}

impl Spec {
    /// Reads a spec file; the error names what is wrong with it.
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
        Spec::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Spec, String> {
        let doc: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                serde_norway::from_str(text).map_err(|e| format!("neither JSON nor YAML: {e}"))?
            }
        };
        let version = doc
            .get("openapi")
            .or_else(|| doc.get("swagger"))
            .and_then(Value::as_str)
            .ok_or("no `openapi` (or `swagger`) version field: not an OpenAPI document")?;
        if !(version.starts_with("3.") || version.starts_with("2.")) {
            return Err(format!(
                "OpenAPI version {version} is not supported (2.0, 3.0, 3.1)"
            ));
        }
        let base = base_path(&doc);
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no `paths` object")?;
        if paths.len() > MAX_PATHS {
            return Err(format!("{} paths (at most {MAX_PATHS})", paths.len()));
        }
        let mut out = Vec::new();
        for (p, item) in paths {
            if !p.starts_with('/') {
                return Err(format!("path `{p}` does not start with /"));
            }
            let full = format!("{}{}", base, p);
            let full = if full.len() > 1 {
                full.trim_end_matches('/').to_string()
            } else {
                full
            };
            let segments = full
                .split('/')
                .skip(1)
                .map(|s| {
                    (!(s.starts_with('{') && s.ends_with('}') && s.len() > 2))
                        .then(|| s.to_string())
                })
                .collect();
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect();
            out.push(SpecPath {
                segments,
                template: full,
                methods,
            });
        }
        Ok(Spec { paths: out })
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The spec's route for `method` on `path` (no query). With several matches the
    /// one with the most literal segments wins (`/users/me` before `/users/{id}`).
    pub fn route(&self, method: &str, path: &str) -> Match {
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
        let mut best: Option<(usize, &SpecPath)> = None;
        for p in &self.paths {
            if p.segments.len() != segs.len() {
                continue;
            }
            let mut literal = 0;
            let fits = p.segments.iter().zip(&segs).all(|(s, v)| match s {
                Some(lit) => {
                    literal += 1;
                    lit == v
                }
                None => !v.is_empty(),
            });
            if !fits {
                continue;
            }
            let declared = p.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
            let score = 2 * literal + usize::from(declared);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, p));
            }
        }
        match best {
            Some((_, p)) if p.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) => {
                Match::Route(p.template.clone())
            }
            Some((_, p)) => Match::UndeclaredMethod(p.template.clone()),
            None => Match::Outside,
        }
    }
}

/// The path part of the first server URL (3.x) or `basePath` (2.0), without a
/// trailing slash.
fn base_path(doc: &Value) -> String {
    let url = doc
        .get("servers")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("url"))
        .and_then(Value::as_str)
        .or_else(|| doc.get("basePath").and_then(Value::as_str))
        .unwrap_or("");
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
            Match::Route("/api/users/{username}".into())
        );
        assert_eq!(
            s.route("GET", "/api/users/me"),
            Match::Route("/api/users/me".into())
        );
        assert_eq!(
            s.route("PUT", "/api/books/dune/reviews/7/"),
            Match::Route("/api/books/{title}/reviews/{id}".into())
        );
        assert_eq!(
            s.route("POST", "/api/users/alice"),
            Match::UndeclaredMethod("/api/users/{username}".into())
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
            Match::Route("/v2/pet/{petId}".into())
        );
    }
}
