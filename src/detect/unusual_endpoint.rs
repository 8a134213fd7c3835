//! `unusual_endpoint`: something an analyst acts on, not novelty. After the learning
//! period, a client established during it (its own profile of routes) that
//! - calls a privileged or sensitive route (admin, debug, docs, export... in the
//!   route's words) it never used and few other clients use (`sensitive_route`);
//! - asks a listing for far more than it ever asked for (`bulk_query`: a page size
//!   parameter at least [`BULK_FACTOR`] times its own largest and at least
//!   [`BULK_FLOOR`]);
//! - changes or deletes an object it never created, read or was handed
//!   (`foreign_object_write`: PUT/PATCH/DELETE on a route with an object parameter,
//!   a route it never used before);
//!
//! and any client that gets a 2xx from a shadow route (`shadow_route`): one first
//! seen after learning in an inventory that had settled (once per endpoint), or one
//! outside the user's OpenAPI spec: the spec is knowledge, so that one needs no
//! learning and is reported from the first packet, once per client and endpoint. A new object on a known route is never unusual: routes are
//! learned (`crate::routes`), so `/books/v1/{name}` is one endpoint for every book.

use std::collections::HashSet;

use serde_json::json;

use super::{Finding, Kind, Novelty, Obs};
use crate::routes::inventory::{Inventory, Recorded, Use};
use crate::time::Nanos;

/// Thresholds (config `[detect.unusual_endpoint]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests a client must have made during learning to have a profile.
    pub min_profile_requests: u64,
    /// A sensitive route used by at most this share of the other known clients (and
    /// at least by one other) is "few clients use it": an admin console that two
    /// operators use is not every client's business.
    pub rare_share: f64,
    /// Clients known before the share is judged (below it, "few" is one other).
    pub min_population: usize,
    /// Path words that make an endpoint sensitive.
    pub sensitive_words: Vec<String>,
    /// Endpoints in the inventory (oldest forgotten beyond it, counted).
    pub max_endpoints: usize,
    /// Endpoints in one client's profile.
    pub max_profile: usize,
    /// Shadow endpoints are reported only if at most this many endpoints were first
    /// seen answering 2xx in the second half of the learning period.
    pub max_late_discoveries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_profile_requests: 20,
            rare_share: 0.1,
            min_population: 5,
            sensitive_words: [
                "admin",
                "debug",
                "internal",
                "export",
                "bulk",
                "dump",
                "backup",
                "config",
                "actuator",
                "console",
                "metrics",
                "env",
                "private",
                "manage",
                "sudo",
                "impersonate",
                "docs",
                "swagger",
                "openapi",
                "redoc",
                "graphiql",
                "phpinfo",
                "superuser",
                "secrets",
                "credentials",
            ]
            .map(String::from)
            .to_vec(),
            max_endpoints: 50_000,
            max_profile: 1024,
            max_late_discoveries: 0,
        }
    }
}

/// A page size at least this many times the client's own largest...
pub const BULK_FACTOR: u64 = 10;
/// ...and at least this many items is a bulk query (APIs default to 10-100 a page).
pub const BULK_FLOOR: u64 = 500;
/// Query parameters that set a page size (API vocabulary, not one app's).
const PAGE_SIZE_PARAMS: &[&str] = &[
    "limit",
    "per_page",
    "perpage",
    "page_size",
    "pagesize",
    "size",
    "count",
    "max",
    "top",
    "first",
    "take",
    "rows",
    "num",
    "results",
    "length",
];
/// Routes under a sensitive word that every user of it passes through.
const ENTRY_WORDS: &[&str] = &[
    "login", "logout", "signin", "signout", "sign-in", "sign-out", "auth", "session",
];
/// Objects remembered per client (cleared when full: what is recent matters).
const TOUCHED_CAP: usize = 4096;
/// Sensitive areas remembered per client (a client works in a handful).
const AREAS_CAP: usize = 256;
/// Routes named in a client's evidence as its usual ones.
const USUAL_CAP: usize = 8;
/// Shadow endpoints (outside the spec) reported per client. One answering past it is
/// not reported again: a client finding hundreds is scanning, which
/// `endpoint_scan` says.
pub const SHADOW_CAP: usize = 256;

/// One client's own routes and objects.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub(crate) endpoints: HashSet<u64, super::Prehashed>,
    pub requests: u64,
    pub first_seen: Nanos,
    /// Its most used routes (the first [`USUAL_CAP`] it used, with counts), by
    /// endpoint hash.
    usual: Vec<(u64, String, u32)>,
    /// Keyed hashes of object values it used in paths or was handed on creation.
    touched: HashSet<u64, super::Prehashed>,
    /// The largest page size it asked for.
    max_page: u64,
    /// Sensitive areas it works in (`/admin/pages`: the sensitive word and the
    /// segment after it), hashed: an editor whose work is in the admin UI is not
    /// unusual on another page of the same area.
    areas: HashSet<u64, super::Prehashed>,
    /// Endpoints outside the spec it was reported for (hashes, up to [`SHADOW_CAP`]).
    pub(crate) shadows: HashSet<u64, super::Prehashed>,
}

impl Profile {
    /// Heap bytes held: its sets and its usual routes.
    pub fn heap_bytes(&self) -> usize {
        (self.endpoints.capacity()
            + self.touched.capacity()
            + self.areas.capacity()
            + self.shadows.capacity())
            * 9
            + self.usual.capacity() * std::mem::size_of::<(u64, String, u32)>()
            + self
                .usual
                .iter()
                .map(|(_, e, _)| e.capacity())
                .sum::<usize>()
    }

    /// Remembers an object value (keyed hash) as this client's.
    pub fn touch(&mut self, h: u64) {
        if self.touched.len() >= TOUCHED_CAP {
            self.touched.clear();
        }
        self.touched.insert(h);
    }
}

fn is_static_asset(template: &str) -> bool {
    let lower = template.to_ascii_lowercase();
    [
        ".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".woff", ".woff2", ".map",
        ".html",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

/// Whether a route's words make it sensitive (placeholders are not words).
pub fn sensitive_by_name(cfg: &Config, template: &str) -> bool {
    sensitive_by_words(cfg, template, |_| true)
}

/// Whether a word of the route is one of the configured sensitive words that `is`
/// accepts.
fn sensitive_by_words(cfg: &Config, template: &str, is: impl Fn(&str) -> bool) -> bool {
    let lower = template.to_ascii_lowercase();
    lower
        .split(['/', '.', '-', '_'])
        .filter(|seg| !seg.starts_with('{'))
        .any(|seg| {
            cfg.sensitive_words.iter().any(|w| {
                (seg == w || (w.len() >= 5 && seg.starts_with(w.as_str()))) && is(w.as_str())
            })
        })
}

/// The sensitive area of a route: up to the segment after its first sensitive word
/// (`/admin/pages/{id}/delete/` is in `/admin/pages`); `None` when not sensitive.
pub fn sensitive_area<'t>(cfg: &Config, template: &'t str) -> Option<&'t str> {
    let mut ends = template
        .match_indices('/')
        .map(|(i, _)| i)
        .chain([template.len()]);
    ends.next();
    let mut found = false;
    let mut prev = 0;
    for end in ends {
        if found {
            // Everyone passes through the door: `/admin/login/` is not the admin.
            let next = template[prev..end]
                .trim_start_matches('/')
                .to_ascii_lowercase();
            if ENTRY_WORDS.contains(&next.as_str()) {
                return None;
            }
            return Some(&template[..end]);
        }
        if sensitive_by_name(cfg, &template[prev..end]) {
            found = true;
        }
        prev = end;
    }
    found.then_some(template)
}

/// Sensitive words that name documentation: sensitive when it is the machine
/// description of an API (an OpenAPI or Swagger document, `/v3/api-docs`), not when
/// it is a page for people to read.
const DOC_WORDS: &[&str] = &["docs", "swagger", "openapi", "redoc", "graphiql"];

/// A page for people: the answer is HTML and the route is not sensitive beyond
/// documentation words (`/docs/intro`, `/about`). The machine description of an API
/// (JSON, YAML) stays sensitive, and an HTML admin console too. Such a page is no
/// sensitive route and no shadow API route.
pub fn human_page(cfg: &Config, template: &str, response_type: Option<&str>) -> bool {
    let html = response_type.is_some_and(|t| {
        let t = t.trim_start().as_bytes();
        t.len() >= 9 && t[..9].eq_ignore_ascii_case(b"text/html")
    });
    html && !sensitive_by_words(cfg, template, |w| !DOC_WORDS.contains(&w))
}

/// A GraphQL operation that asks for the schema (its endpoint ends in `__schema`,
/// see [`crate::graphql::Request::label`]): the machine description of the API,
/// sensitive as an OpenAPI document is.
fn introspection(endpoint: &str) -> Option<&str> {
    endpoint.ends_with(" __schema").then_some(endpoint)
}

/// Sensitive by name, or a state change on an object.
pub fn sensitive(cfg: &Config, method: &str, template: &str) -> bool {
    sensitive_by_name(cfg, template) || mutates_object(method, template)
}

fn mutates_object(method: &str, template: &str) -> bool {
    matches!(method, "DELETE" | "PUT" | "PATCH") && template.contains('{')
}

/// The largest page size the query asks for.
fn page_size(uri: &str) -> Option<u64> {
    // Most targets have no query: found by memchr, not a `char` searcher.
    let query = &uri[memchr::memchr(b'?', uri.as_bytes())? + 1..];
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim_start_matches(['_', '$']);
            let k = k
                .strip_prefix("page[")
                .and_then(|k| k.strip_suffix(']'))
                .unwrap_or(k);
            // No allocation per parameter: most queries carry no page size at all.
            PAGE_SIZE_PARAMS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(k))
                .then(|| v.parse::<u64>().ok())
                .flatten()
        })
        .max()
}

/// What the inventory says about one request: the global half of the detector,
/// worked out before the request reaches its client's shard.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Other clients known to use the endpoint (capped at the per-endpoint cap).
    pub others: usize,
    /// A shadow endpoint answered for the first time (reported once per endpoint).
    /// Boxed: rare, and `Seen` travels with every exchange.
    pub shadow: Option<Box<Finding>>,
    /// The endpoint has answered 2xx to someone: a route that exists.
    pub known: bool,
    /// The endpoint is outside the spec and answered 2xx: reported once per client.
    pub outside_spec: Option<OutsideSpec>,
}

/// What the inventory knows of an endpoint outside the spec that answered 2xx.
#[derive(Debug, Clone, Copy)]
pub struct OutsideSpec {
    pub first_seen: Nanos,
    pub clients_using: usize,
}

/// Records the request in the inventory. `outside_spec`: the user's spec does not
/// have the route (`None`: no spec given).
pub fn inventory(
    cfg: &Config,
    inv: &mut Inventory,
    obs: &Obs<'_>,
    u: Use<'_>,
    outside_spec: Option<bool>,
    (late_start, learning_end): (Nanos, Nanos),
) -> Seen {
    let learning = obs.ts < learning_end;
    let late = inv.late_discoveries;
    let (info, rec) = inv.record(u, cfg.max_endpoints);
    let Recorded {
        others, first_ok, ..
    } = rec;
    let mut late_found = false;
    if first_ok && learning && obs.ts >= late_start {
        late_found = true;
    }
    let mut seen = Seen {
        others,
        known: info.ok_seen,
        ..Seen::default()
    };
    match outside_spec {
        // The spec is the user's word: any 2xx outside it, learning or not, for each
        // client (the client's shard knows whether it was told already).
        Some(outside) => {
            if outside && matches!(obs.status, Some(200..=299)) && !is_static_asset(&obs.template) {
                seen.outside_spec = Some(OutsideSpec {
                    first_seen: info.first_seen,
                    clients_using: info.clients.len(),
                });
            }
        }
        None => {
            let shadow = !learning
                && first_ok
                && rec.route_first_seen >= learning_end
                && late <= cfg.max_late_discoveries
                && !is_static_asset(&obs.template)
                && !human_page(cfg, &obs.template, u.response_type)
                && !info.shadow_reported;
            if shadow {
                info.shadow_reported = true;
                seen.shadow = Some(Box::new(shadow_finding(
                    obs,
                    None,
                    info.first_seen,
                    info.clients.len(),
                    learning_end,
                )));
            }
        }
    }
    if late_found {
        inv.late_discoveries = inv.late_discoveries.saturating_add(1);
    }
    seen
}

fn shadow_finding(
    obs: &Obs<'_>,
    outside_spec: Option<bool>,
    first_seen: Nanos,
    clients_using: usize,
    learning_end: Nanos,
) -> Finding {
    let why = if outside_spec.is_some() {
        "is not in the OpenAPI spec"
    } else {
        "was never seen during learning"
    };
    Finding {
        kind: Kind::UnusualEndpoint,
        endpoint: Some(obs.endpoint.to_string()),
        summary: format!(
            "{} answered {} but {why} (shadow route)",
            obs.endpoint,
            obs.status.unwrap_or(0)
        ),
        evidence: json!({
            "rule": "shadow_route",
            "shadow": true,
            "outside_spec": outside_spec.unwrap_or(false),
            "during_learning": obs.ts < learning_end,
            "first_seen_after_learning_s": first_seen.saturating_sub(learning_end) / 1_000_000_000,
            "clients_using": clients_using,
        }),
        severity: 3,
        clients: None,
        // The spec's word: told to each client once per route (its profile
        // keeps which), whatever episode is going on. A learned shadow route is
        // new evidence once per route.
        novelty: if outside_spec == Some(true) {
            Novelty::Always
        } else {
            evidence_kind("shadow_route", &obs.endpoint)
        },
    }
}

/// The key of a finding's kind of evidence within its episode: its rule and what it
/// is about (for a sensitive route its area, `/admin/users`; for a shadow route the
/// route). Weak evidence first (a documentation page) must not use up the episode's
/// report, so that the admin probe minutes later goes unreported.
fn evidence_kind(rule: &str, what: &str) -> Novelty {
    use std::hash::BuildHasher;
    Novelty::Kind(super::Prehashed::default().hash_one((rule, what)) | 1)
}

/// A sensitive route's area: its first three segments (`/admin/users`,
/// `/api/admin/keys`), cheaper than finding its sensitive word again.
fn area_of(template: &str) -> &str {
    template
        .match_indices('/')
        .nth(3)
        .map_or(template, |(i, _)| &template[..i])
}

/// What the client's shard knows about the request beyond the exchange.
pub struct ClientSide<'a> {
    pub endpoint_hash: u64,
    pub seen: Seen,
    pub clients_known: usize,
    pub learning_end: Nanos,
    /// Keyed hashes of the object values in the request's path.
    pub objects: &'a [u64],
    /// Another client used one of them in a path before (the object is someone's).
    pub others_objects: bool,
}

/// Records the request in the client's profile; after `learning_end`, returns a
/// finding when it is unusual.
pub fn profile(
    cfg: &Config,
    prof: &mut Profile,
    obs: &Obs<'_>,
    side: ClientSide<'_>,
) -> Option<Finding> {
    if prof.first_seen == 0 {
        prof.first_seen = obs.ts;
    }
    prof.first_seen = super::state::not_after(prof.first_seen, obs.ts);
    prof.requests = prof.requests.saturating_add(1);
    let new_endpoint =
        prof.endpoints.len() < cfg.max_profile && prof.endpoints.insert(side.endpoint_hash);
    if let Some((_, _, n)) = prof
        .usual
        .iter_mut()
        .find(|(h, _, _)| *h == side.endpoint_hash)
    {
        *n = n.saturating_add(1);
    } else if prof.usual.len() < USUAL_CAP {
        prof.usual
            .push((side.endpoint_hash, obs.endpoint.to_string(), 1));
    }
    let page = page_size(obs.ex.uri.as_deref().unwrap_or(""));
    // A client's areas come from its endpoints, each looked at once.
    let response_type = obs
        .ex
        .response_headers
        .as_ref()
        .and_then(|h| h.content_type.as_deref());
    let area = if new_endpoint {
        introspection(&obs.endpoint)
            .or_else(|| {
                sensitive_area(cfg, &obs.template)
                    .filter(|_| !human_page(cfg, &obs.template, response_type))
            })
            .map(|a| {
                use std::hash::BuildHasher;
                super::Prehashed::default().hash_one(a)
            })
    } else {
        None
    };
    let new_area = area.is_some_and(|a| !prof.areas.contains(&a));
    if let Some(a) = area
        && prof.areas.len() < AREAS_CAP
    {
        prof.areas.insert(a);
    }
    let own_max = prof.max_page;
    prof.max_page = prof.max_page.max(page.unwrap_or(0));
    // Whether the object was the client's before this request.
    let foreign = side.others_objects
        && !side.objects.is_empty()
        && side.objects.iter().all(|o| !prof.touched.contains(o));
    let learning = obs.ts < side.learning_end;
    if !learning || matches!(obs.status, Some(200..=299)) {
        for o in side.objects {
            prof.touch(*o);
        }
    }
    if let Some(o) = side.seen.outside_spec
        && prof.shadows.len() < SHADOW_CAP
        && prof.shadows.insert(side.endpoint_hash)
    {
        let first_seen = o.first_seen;
        return Some(shadow_finding(
            obs,
            Some(true),
            first_seen,
            o.clients_using,
            side.learning_end,
        ));
    }
    if learning {
        return None;
    }
    if side.seen.shadow.is_some() {
        return side.seen.shadow.map(|f| *f);
    }
    let established =
        prof.first_seen < side.learning_end && prof.requests >= cfg.min_profile_requests;
    if !established || matches!(obs.status, Some(404)) {
        return None;
    }
    let others = side.seen.others;
    let few = others as f64 <= (cfg.rare_share * side.clients_known as f64).max(1.0)
        || side.clients_known < cfg.min_population;
    let rule = if new_endpoint && few && new_area {
        "sensitive_route"
    } else if page.is_some_and(|p| p >= BULK_FLOOR && p >= BULK_FACTOR * own_max.max(1)) {
        "bulk_query"
    } else if new_endpoint && foreign && mutates_object(obs.method, &obs.template) {
        "foreign_object_write"
    } else {
        return None;
    };
    let mut usual = prof.usual.clone();
    usual.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    let usual: Vec<&str> = usual.iter().take(5).map(|(_, e, _)| e.as_str()).collect();
    let what = match rule {
        "sensitive_route" => format!("a sensitive route ({} other clients use it)", others),
        "bulk_query" => format!(
            "a page size of {} (its largest before: {own_max})",
            page.unwrap_or(0)
        ),
        _ => "to change an object it never created or read".to_string(),
    };
    Some(Finding {
        kind: Kind::UnusualEndpoint,
        endpoint: Some(obs.endpoint.to_string()),
        summary: format!(
            "established client used {} for the first time: {what}",
            obs.endpoint
        ),
        evidence: json!({
            "rule": rule,
            "shadow": false,
            "sensitive": sensitive_by_name(cfg, &obs.template) || introspection(&obs.endpoint).is_some(),
            "other_clients_using": others,
            "clients_known": side.clients_known,
            "page_size": page,
            "own_largest_page_size": own_max,
            "profile_endpoints": prof.endpoints.len(),
            "profile_requests": prof.requests,
            "usual_routes": usual,
        }),
        severity: 2,
        clients: None,
        novelty: evidence_kind(
            rule,
            if rule == "sensitive_route" {
                area_of(&obs.template)
            } else {
                ""
            },
        ),
    })
}

#[cfg(test)]
mod tests;
