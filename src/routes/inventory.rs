//! The API inventory: every endpoint (method plus route) the population used, with
//! when it was first and last seen, how often, what it answered, the content types
//! both ways and how many clients and principals touched it (counts only). Detection
//! asks it who else uses an endpoint and whether one is new since learning; the
//! `--endpoints` output writes it as an OpenAPI 3.1 document.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::lru::Prehashed;
use crate::time::Nanos;

/// Distinct clients (and principals) remembered per endpoint: past the cap the
/// endpoint is common anyway.
pub const CLIENT_CAP: usize = 256;
/// Distinct status codes and content types kept per endpoint.
pub const STATUS_CAP: usize = 32;
pub const TYPE_CAP: usize = 8;
/// Longest endpoint label (method plus route) read back from a state file: longer is
/// a corrupt file (a request head is bounded far below it), read as [`TOO_LONG`].
pub const MAX_LABEL: usize = 64 << 10;
/// Longest content type read back (longer ones are dropped: types are short words).
pub const MAX_TYPE: usize = 256;
/// Servers (address and port) remembered per endpoint, with their request counts:
/// the same route on more servers than this is a load-balanced pool, not one more API.
pub const SERVER_CAP: usize = 8;
/// Server documents written for `--endpoints DIR`: the servers with the most
/// requests (a scan of a whole network must not write a file per address).
pub const MAX_SERVER_DOCUMENTS: usize = 256;
/// What a label over [`MAX_LABEL`] reads as: the entry is dropped on restore.
pub const TOO_LONG: &str = "\u{0}too long";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub first_seen: Nanos,
    pub last_seen: Nanos,
    /// Distinct clients (hashes), capped (read back one past the cap at most, so a
    /// corrupt file says so without costing its length in memory).
    #[serde(serialize_with = "sorted", deserialize_with = "capped_set")]
    pub clients: HashSet<u64, Prehashed>,
    pub shadow_reported: bool,
    /// The endpoint has answered 2xx at least once.
    #[serde(default)]
    pub ok_seen: bool,
    /// Method plus route, as labelled when first seen.
    #[serde(default, deserialize_with = "label")]
    pub endpoint: String,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub statuses: BTreeMap<u16, u64>,
    #[serde(default, deserialize_with = "types")]
    pub request_types: BTreeSet<String>,
    #[serde(default, deserialize_with = "types")]
    pub response_types: BTreeSet<String>,
    /// Distinct authenticated principals (keyed hashes of their credentials), capped.
    #[serde(default, serialize_with = "sorted", deserialize_with = "capped_set")]
    pub principals: HashSet<u64, Prehashed>,
    /// The servers that answered it and how many requests each (capped at
    /// [`SERVER_CAP`]; empty in a state file written before servers were kept).
    #[serde(default, deserialize_with = "capped_servers")]
    pub servers: Vec<ServerUse>,
    /// Sensitive values its responses showed, by kind (counts only; written only
    /// when some were).
    #[serde(default, skip_serializing_if = "crate::sensitive::Totals::is_empty")]
    pub sensitive: crate::sensitive::Totals,
}

/// A server (the address and port requests went to) and its requests for one
/// endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerUse {
    pub addr: IpAddr,
    pub port: u16,
    pub requests: u64,
}

/// The base URL of a server as OpenAPI's `servers` names it.
pub fn server_url((addr, port): (IpAddr, u16)) -> String {
    match crate::identity::normalise(addr) {
        IpAddr::V4(a) => format!("http://{a}:{port}"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}"),
    }
}

/// A file name for a server's document: `10.0.0.2_8080.openapi.json`
/// (`fd00--1_8080` for IPv6: no colons in file names).
pub fn server_file_name((addr, port): (IpAddr, u16)) -> String {
    let a = crate::identity::normalise(addr)
        .to_string()
        .replace(':', "-");
    format!("{a}_{port}.openapi.json")
}

/// Reads the servers of an endpoint, keeping [`SERVER_CAP`] at most.
fn capped_servers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ServerUse>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<ServerUse>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of servers")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(s) = seq.next_element::<ServerUse>()? {
                if v.len() < SERVER_CAP {
                    v.push(s);
                }
            }
            Ok(v)
        }
    }
    d.deserialize_seq(V)
}

/// Reads a label, as [`TOO_LONG`] beyond [`MAX_LABEL`] bytes (without a copy).
fn label<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(if v.len() > MAX_LABEL {
                TOO_LONG.to_string()
            } else {
                v.to_string()
            })
        }
    }
    d.deserialize_str(V)
}

/// Reads a set of hashes, keeping [`CLIENT_CAP`] + 1 at most (the rest are read and
/// dropped): one past the cap says the file held more.
fn capped_set<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HashSet<u64, Prehashed>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = HashSet<u64, Prehashed>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of hashes")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut set = HashSet::default();
            while let Some(h) = seq.next_element::<u64>()? {
                if set.len() <= CLIENT_CAP {
                    set.insert(h);
                }
            }
            Ok(set)
        }
    }
    d.deserialize_seq(V)
}

/// Reads content types, keeping [`TYPE_CAP`] + 1 at most and none over [`MAX_TYPE`]
/// bytes (a dropped one reads as [`TOO_LONG`], once).
fn types<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = BTreeSet<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of content types")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut set = BTreeSet::new();
            while let Some(t) = seq.next_element_seed(Bounded)? {
                if set.len() <= TYPE_CAP {
                    set.insert(t.unwrap_or_else(|| TOO_LONG.to_string()));
                }
            }
            Ok(set)
        }
    }
    /// One string, `None` beyond [`MAX_TYPE`] bytes.
    struct Bounded;
    impl<'de> serde::de::DeserializeSeed<'de> for Bounded {
        type Value = Option<String>;
        fn deserialize<D: serde::Deserializer<'de>>(
            self,
            d: D,
        ) -> Result<Option<String>, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl serde::de::Visitor<'_> for Bounded {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a content type")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<String>, E> {
            Ok((v.len() <= MAX_TYPE).then(|| v.to_string()))
        }
    }
    d.deserialize_seq(V)
}

/// A set written in sorted order, so snapshots of equal state are equal bytes.
fn sorted<S: serde::Serializer>(set: &HashSet<u64, Prehashed>, s: S) -> Result<S::Ok, S::Error> {
    let mut v: Vec<u64> = set.iter().copied().collect();
    v.sort_unstable();
    Serialize::serialize(&v, s)
}

/// One request as the inventory records it.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    pub ts: Nanos,
    pub endpoint: &'a str,
    pub endpoint_hash: u64,
    pub client_hash: u64,
    /// Hash of the request's credentials, when it carried any.
    pub principal: Option<u64>,
    pub status: Option<u16>,
    pub request_type: Option<&'a str>,
    pub response_type: Option<&'a str>,
    /// The server: the address and port the request went to.
    pub server: (IpAddr, u16),
    /// The answer was the redirect a framework gives any path (`/x` → `/x/`): it says
    /// nothing about the route existing.
    pub slash_redirect: bool,
    /// Sensitive values counted in the response, when there were any.
    pub sensitive: Option<&'a crate::sensitive::Counts>,
}

/// What the whole population uses.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub endpoints: HashMap<u64, EndpointInfo, Prehashed>,
    /// Endpoints that first answered 2xx in the second half of the learning period.
    /// A service still revealing endpoints then will reveal more later: shadow
    /// endpoint alerts are only raised for an inventory that had settled.
    pub late_discoveries: u32,
    pub evicted: u64,
    /// When each route (path template, any method) and each area (first two
    /// segments) was first seen: a new method on a known route, or a new route in a
    /// known area, is not a shadow API.
    pub routes: HashMap<u64, Nanos, Prehashed>,
}

/// What recording a request found.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    /// Other clients known to use the endpoint (capped).
    pub others: usize,
    /// This is the endpoint's first 2xx answer.
    pub first_ok: bool,
    /// When the route, or the area it belongs to (its first two segments), was first
    /// seen (any method).
    pub route_first_seen: Nanos,
}

impl Inventory {
    /// Records one request; `max` bounds the table (least recently seen evicted).
    pub fn record(&mut self, u: Use<'_>, max: usize) -> (&mut EndpointInfo, Recorded) {
        if self.endpoints.len() >= max && !self.endpoints.contains_key(&u.endpoint_hash) {
            let n = crate::lru::batch(max);
            for k in crate::lru::oldest(&self.endpoints, n, |e| e.last_seen) {
                self.endpoints.remove(&k);
                self.evicted += 1;
            }
        }
        let entry = self.endpoints.entry(u.endpoint_hash);
        let new = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
        let info = entry.or_insert_with(|| EndpointInfo {
            first_seen: u.ts,
            last_seen: u.ts,
            clients: HashSet::default(),
            shadow_reported: false,
            ok_seen: false,
            endpoint: u.endpoint.to_string(),
            requests: 0,
            statuses: BTreeMap::new(),
            request_types: BTreeSet::new(),
            response_types: BTreeSet::new(),
            principals: HashSet::default(),
            servers: Vec::new(),
            sensitive: Default::default(),
        });
        if let Some(c) = u.sensitive {
            info.sensitive.add(c);
        }
        info.last_seen = crate::time::not_after(info.last_seen, u.ts).max(u.ts);
        info.first_seen = info.first_seen.min(u.ts);
        info.requests = info.requests.saturating_add(1);
        let others = info.clients.len() - usize::from(info.clients.contains(&u.client_hash));
        if info.clients.len() < CLIENT_CAP {
            info.clients.insert(u.client_hash);
        }
        if let Some(p) = u.principal
            && info.principals.len() < CLIENT_CAP
        {
            info.principals.insert(p);
        }
        if let Some(s) = u.status
            && !u.slash_redirect
            && (info.statuses.len() < STATUS_CAP || info.statuses.contains_key(&s))
        {
            let n = info.statuses.entry(s).or_default();
            *n = n.saturating_add(1);
        }
        let servers = &mut info.servers;
        match servers.iter().position(|s| (s.addr, s.port) == u.server) {
            Some(i) => servers[i].requests = servers[i].requests.saturating_add(1),
            None if servers.len() < SERVER_CAP => servers.push(ServerUse {
                addr: u.server.0,
                port: u.server.1,
                requests: 1,
            }),
            None => {}
        }
        add_type(&mut info.request_types, u.request_type);
        if matches!(u.status, Some(200..=299)) {
            add_type(&mut info.response_types, u.response_type);
        }
        let first_ok = matches!(u.status, Some(200..=299)) && !info.ok_seen;
        info.ok_seen |= first_ok;
        // Routes and areas only matter when an endpoint first appears (its route is
        // recorded then) or first answers 2xx: not on every request.
        let route_first_seen = if new || first_ok {
            route_first_seen(&mut self.routes, u.endpoint, u.ts, max)
        } else {
            0
        };
        let rec = Recorded {
            others,
            first_ok,
            route_first_seen,
        };
        (info, rec)
    }

    /// The inventory as an OpenAPI 3.1 document. `route` maps each recorded endpoint
    /// to its route as known now (endpoints recorded before their route was learned
    /// merge into it).
    ///
    /// `server`: only the endpoints that server answered, with its own request counts
    /// (the other numbers are the endpoint's across servers); `None`: every endpoint,
    /// the document naming every server (the most used first, at most
    /// [`MAX_SERVER_DOCUMENTS`]) and each path the servers that answered it.
    pub fn to_openapi(
        &self,
        route: impl Fn(&str) -> String,
        generated: Nanos,
        server: Option<(IpAddr, u16)>,
    ) -> Document {
        // path → method → merged info
        let mut paths: BTreeMap<String, BTreeMap<String, Merged>> = BTreeMap::new();
        for info in self.endpoints.values() {
            let requests = match server {
                Some(want) => match info.servers.iter().find(|s| (s.addr, s.port) == want) {
                    Some(s) => Some(s.requests),
                    None => continue,
                },
                None => None,
            };
            let Some((method, path)) = info.endpoint.split_once(' ') else {
                continue;
            };
            // A GraphQL endpoint (`POST /graphql mutation login`) is an operation of
            // its path's method, listed under `x-graphql-operations`.
            let (path, operation) = match path.split_once(' ') {
                Some((p, op)) => (p, Some(op)),
                None => (path, None),
            };
            if !path.starts_with('/') || !method.bytes().all(|c| c.is_ascii_uppercase()) {
                continue;
            }
            // Scanners' misses are not routes of the API (nor the redirects a
            // framework answers any path with, which are not recorded).
            let answered = |lo: u16, hi: u16| info.statuses.keys().any(|s| (lo..=hi).contains(s));
            if !(answered(200, 299)
                || answered(401, 401)
                || answered(403, 403)
                || answered(300, 399))
            {
                continue;
            }
            let path = route(path);
            let m = paths
                .entry(path)
                .or_default()
                .entry(method.to_ascii_lowercase())
                .or_default();
            m.add(info, requests);
            if let Some(op) = operation {
                let n = m.graphql.entry(op.to_string()).or_default();
                *n += requests.unwrap_or(info.requests);
            }
        }
        let servers = match server {
            Some(s) => vec![s],
            None => self.servers(),
        };
        Document {
            paths,
            generated,
            servers,
            per_path_servers: server.is_none(),
        }
    }

    /// Every server seen, the most requested first (at most
    /// [`MAX_SERVER_DOCUMENTS`]).
    pub fn servers(&self) -> Vec<(IpAddr, u16)> {
        let mut total: HashMap<(IpAddr, u16), u64> = HashMap::new();
        for info in self.endpoints.values() {
            for s in &info.servers {
                *total.entry((s.addr, s.port)).or_default() += s.requests;
            }
        }
        let mut v: Vec<((IpAddr, u16), u64)> = total.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(MAX_SERVER_DOCUMENTS);
        v.into_iter().map(|(s, _)| s).collect()
    }
}

/// The inventory as an OpenAPI 3.1 document, serialized one path at a time: the
/// document of tens of thousands of routes is never built whole in memory (as a
/// `serde_json::Value` it costs about ten times its text).
pub struct Document {
    paths: BTreeMap<String, BTreeMap<String, Merged>>,
    generated: Nanos,
    /// The document's `servers`.
    servers: Vec<(IpAddr, u16)>,
    /// Each path item names its servers (a document of several servers).
    per_path_servers: bool,
}

impl Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut doc = s.serialize_map(None)?;
        doc.serialize_entry("openapi", "3.1.0")?;
        doc.serialize_entry(
            "info",
            &json!({
                "title": "API inventory learned by apiwatch",
                "version": crate::time::iso_utc_z(self.generated),
                "description": "Routes, methods, status codes and content types observed on the wire. x-apiwatch holds first and last seen (packet time), request counts, how many distinct clients and principals used each operation and, under sensitive, how many e-mail addresses, card numbers, IBANs and national ids its responses showed (counts only).",
            }),
        )?;
        if !self.servers.is_empty() {
            let servers: Vec<Value> = self
                .servers
                .iter()
                .map(|s| json!({ "url": server_url(*s) }))
                .collect();
            doc.serialize_entry("servers", &servers)?;
        }
        let per_path = self.per_path_servers && self.servers.len() > 1;
        doc.serialize_entry("paths", &Paths(&self.paths, per_path))?;
        doc.end()
    }
}

/// The paths; with `.1`, each path item names the servers that answered it.
struct Paths<'a>(&'a BTreeMap<String, BTreeMap<String, Merged>>, bool);

impl Serialize for Paths<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Two paths can name their parameters alike (`/a/{id}` from two routes):
        // one entry each, as a JSON object keeps them.
        let mut items: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut order: Vec<(String, &str, &BTreeMap<String, Merged>)> = Vec::new();
        for (path, methods) in self.0 {
            let (openapi_path, params) = path_parameters(path);
            if !params.is_empty() {
                items
                    .entry(openapi_path.clone())
                    .or_default()
                    .insert("parameters".into(), Value::Array(params));
            }
            order.push((openapi_path, path, methods));
        }
        order.sort_by(|a, b| a.0.cmp(&b.0));
        let mut map = s.serialize_map(None)?;
        let mut i = 0;
        while i < order.len() {
            let key = order[i].0.clone();
            let mut item = items.remove(&key).unwrap_or_default();
            let mut servers = BTreeSet::new();
            while i < order.len() && order[i].0 == key {
                let (_, path, methods) = &order[i];
                for (method, m) in *methods {
                    item.insert(method.clone(), m.operation(method, path));
                    servers.extend(m.servers.iter().copied());
                }
                i += 1;
            }
            if self.1 && !servers.is_empty() {
                let urls: Vec<Value> = servers
                    .into_iter()
                    .map(|s| json!({ "url": server_url(s) }))
                    .collect();
                item.insert("servers".into(), Value::Array(urls));
            }
            map.serialize_entry(&key, &item)?;
        }
        map.end()
    }
}

/// When the endpoint's route, or its area (first two segments, `/api/v2`), was first
/// seen, any method; records both (bounded by `max`).
fn route_first_seen(
    routes: &mut HashMap<u64, Nanos, Prehashed>,
    endpoint: &str,
    ts: Nanos,
    max: usize,
) -> Nanos {
    use std::hash::BuildHasher;
    let path = endpoint.split_once(' ').map_or(endpoint, |(_, p)| p);
    let path = path.trim_end_matches('/');
    let area = match path.match_indices('/').nth(2) {
        Some((i, _)) => &path[..i],
        None => path,
    };
    let h = Prehashed::default();
    let mut first = ts;
    for p in [path, area] {
        let k = h.hash_one(p.as_bytes());
        let seen = match routes.get(&k) {
            Some(t) => *t,
            None if routes.len() < max && !p.is_empty() => {
                routes.insert(k, ts);
                ts
            }
            None => ts,
        };
        first = first.min(seen);
    }
    first
}

fn add_type(set: &mut BTreeSet<String>, t: Option<&str>) {
    let Some(t) = t else { return };
    let media = super::before(t, b';').trim();
    // Already known: no allocation on the per-request path (the exact spelling is
    // the common case, and found without case folding).
    if set.contains(media)
        || set.iter().any(|k| k.eq_ignore_ascii_case(media))
        || set.len() >= TYPE_CAP
    {
        return;
    }
    let ok = !media.is_empty()
        && media.len() <= 80
        && media.contains('/')
        && media.bytes().all(|c| c.is_ascii_graphic());
    if ok {
        set.insert(media.to_ascii_lowercase());
    }
}

#[derive(Default)]
struct Merged {
    first: Option<Nanos>,
    last: Nanos,
    requests: u64,
    clients: HashSet<u64, Prehashed>,
    principals: HashSet<u64, Prehashed>,
    statuses: BTreeMap<u16, u64>,
    request_types: BTreeSet<String>,
    response_types: BTreeSet<String>,
    servers: BTreeSet<(IpAddr, u16)>,
    /// GraphQL operations on this method and path, with their requests.
    graphql: BTreeMap<String, u64>,
    sensitive: crate::sensitive::Totals,
}

impl Merged {
    /// Adds an endpoint; `requests`: its requests to one server, when the document
    /// is that server's.
    fn add(&mut self, i: &EndpointInfo, requests: Option<u64>) {
        self.first = Some(self.first.map_or(i.first_seen, |f| f.min(i.first_seen)));
        self.last = self.last.max(i.last_seen);
        self.requests += requests.unwrap_or(i.requests);
        self.servers
            .extend(i.servers.iter().map(|s| (s.addr, s.port)));
        self.clients.extend(&i.clients);
        self.principals.extend(&i.principals);
        for (s, n) in &i.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        self.request_types.extend(i.request_types.iter().cloned());
        self.response_types.extend(i.response_types.iter().cloned());
        self.sensitive.merge(&i.sensitive);
    }

    fn operation(&self, method: &str, path: &str) -> Value {
        let mut responses = Map::new();
        for (status, n) in &self.statuses {
            let mut r = Map::new();
            r.insert("description".into(), format!("observed {n} times").into());
            if (200..=299).contains(status) && !self.response_types.is_empty() {
                let content: Map<String, Value> = self
                    .response_types
                    .iter()
                    .map(|t| (t.clone(), json!({})))
                    .collect();
                r.insert("content".into(), Value::Object(content));
            }
            responses.insert(status.to_string(), Value::Object(r));
        }
        if responses.is_empty() {
            responses.insert(
                "default".into(),
                json!({"description": "no response observed"}),
            );
        }
        let mut op = Map::new();
        op.insert("operationId".into(), operation_id(method, path).into());
        if !self.request_types.is_empty() {
            let content: Map<String, Value> = self
                .request_types
                .iter()
                .map(|t| (t.clone(), json!({})))
                .collect();
            op.insert("requestBody".into(), json!({ "content": content }));
        }
        op.insert("responses".into(), Value::Object(responses));
        if !self.graphql.is_empty() {
            op.insert(
                "x-graphql-operations".into(),
                self.graphql
                    .iter()
                    .map(|(name, n)| json!({"operation": name, "requests": n}))
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        let mut x = json!({
            "first_seen": crate::time::iso_utc_z(self.first.unwrap_or(0)),
            "last_seen": crate::time::iso_utc_z(self.last),
            "requests": self.requests,
            "clients": self.clients.len(),
            "principals": self.principals.len(),
        });
        if !self.sensitive.is_empty() {
            x["sensitive"] = json!(self.sensitive);
        }
        op.insert("x-apiwatch".into(), x);
        Value::Object(op)
    }
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.ends_with('_') {
            id.push('_');
        }
    }
    id.trim_end_matches('_').to_string()
}

/// The path with unique parameter names (`/a/{id}/b/{id}` → `{id}`, `{id2}`) and its
/// parameter objects.
fn path_parameters(path: &str) -> (String, Vec<Value>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut params = Vec::new();
    let mut out = String::with_capacity(path.len());
    for (i, seg) in crate::routes::segments(path).enumerate() {
        if i > 0 {
            out.push('/');
        }
        let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push_str(seg);
            continue;
        };
        let n = seen.entry(name.to_string()).or_default();
        *n += 1;
        let unique = if *n == 1 {
            name.to_string()
        } else {
            format!("{name}{n}")
        };
        let schema = match name {
            "id" => json!({"type": "integer"}),
            "uuid" => json!({"type": "string", "format": "uuid"}),
            "email" => json!({"type": "string", "format": "email"}),
            _ => json!({"type": "string"}),
        };
        params.push(json!({"name": unique, "in": "path", "required": true, "schema": schema}));
        out.push('{');
        out.push_str(&unique);
        out.push('}');
    }
    (out, params)
}

/// What `--endpoints` writes: one document (a file), or one per server (a
/// directory: `ADDR_PORT.openapi.json` each).
pub enum Documents {
    One(Document),
    PerServer(Vec<((IpAddr, u16), Document)>),
}

impl Documents {
    /// Writes the document(s) to `path` (a file, or the directory for one per
    /// server), each atomically.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        match self {
            Documents::One(doc) => write_atomic(path, doc),
            Documents::PerServer(docs) => {
                for (server, doc) in docs {
                    write_atomic(&path.join(server_file_name(*server)), doc)?;
                }
                Ok(())
            }
        }
    }
}

/// Writes `doc` to `path` atomically (a temporary file beside it, then a rename), so
/// a reader never sees half a document.
pub fn write_atomic(path: &std::path::Path, doc: &impl Serialize) -> std::io::Result<()> {
    crate::durable::write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, doc)?;
        w.write_all(b"\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn use_at<'a>(ts: Nanos, endpoint: &'a str, client: u64, status: u16) -> Use<'a> {
        Use {
            ts,
            endpoint,
            endpoint_hash: endpoint.len() as u64 * 1000
                + endpoint.bytes().map(u64::from).sum::<u64>(),
            client_hash: client,
            principal: Some(client * 7),
            status: Some(status),
            request_type: None,
            response_type: Some("application/json; charset=utf-8"),
            slash_redirect: false,
            server: ([10, 0, 0, 2].into(), 8080),
            sensitive: None,
        }
    }

    #[test]
    fn openapi_merges_early_literals_and_names_parameters_uniquely() {
        let mut inv = Inventory::default();
        inv.record(use_at(1, "GET /books/v1/dune", 1, 200), 100);
        inv.record(use_at(2, "GET /books/v1/{name}", 2, 200), 100);
        inv.record(use_at(3, "GET /books/v1/{name}", 3, 404), 100);
        inv.record(use_at(4, "GET /a/{id}/b/{id}", 3, 200), 100);
        inv.record(use_at(5, "GET /wp-admin.php", 9, 404), 100);
        let doc = serde_json::to_value(inv.to_openapi(
            |p| {
                if p.starts_with("/books/v1/") {
                    "/books/v1/{name}".into()
                } else {
                    p.into()
                }
            },
            0,
            None,
        ))
        .unwrap();
        let op = &doc["paths"]["/books/v1/{name}"]["get"];
        assert_eq!(op["x-apiwatch"]["requests"], 3);
        assert_eq!(op["x-apiwatch"]["clients"], 3);
        assert!(op["responses"]["200"]["content"]["application/json"].is_object());
        assert!(op["responses"]["404"].is_object());
        assert!(doc["paths"]["/a/{id}/b/{id2}"]["parameters"][1]["name"] == "id2");
        assert!(
            doc["paths"]["/wp-admin.php"].is_null(),
            "scanner misses are not routes"
        );
    }

    #[test]
    fn sensitive_values_are_summed_per_operation_and_survive_a_round_trip() {
        let mut inv = Inventory::default();
        let found = crate::sensitive::Counts([1, 2, 0, 0]);
        for ts in 0..3 {
            let mut u = use_at(ts, "GET /customers/{id}", ts, 200);
            u.sensitive = Some(&found);
            inv.record(u, 100);
        }
        inv.record(use_at(4, "GET /customers/{id}", 1, 200), 100);
        inv.record(use_at(5, "GET /health", 1, 200), 100);
        let doc = serde_json::to_value(inv.to_openapi(|p| p.into(), 0, None)).unwrap();
        let x = &doc["paths"]["/customers/{id}"]["get"]["x-apiwatch"];
        assert_eq!(x["sensitive"], serde_json::json!({"email": 3, "card": 6}));
        assert!(doc["paths"]["/health"]["get"]["x-apiwatch"]["sensitive"].is_null());
        // Kept in the state file as the other counters are.
        let info = inv
            .endpoints
            .values()
            .find(|i| i.endpoint == "GET /customers/{id}");
        let text = serde_json::to_string(info.unwrap()).unwrap();
        let back: EndpointInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(back.sensitive.card, 6);
        let health = inv.endpoints.values().find(|i| i.endpoint == "GET /health");
        assert!(
            !serde_json::to_string(health.unwrap())
                .unwrap()
                .contains("sensitive")
        );
    }

    #[test]
    fn the_inventory_is_bounded() {
        let mut inv = Inventory::default();
        let names: Vec<String> = (0..500).map(|i| format!("GET /p{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            let mut u = use_at(i as u64, n, 1, 404);
            u.endpoint_hash = i as u64;
            inv.record(u, 64);
        }
        assert!(inv.endpoints.len() <= 64);
        assert_eq!(inv.evicted, 500 - inv.endpoints.len() as u64);
    }
}
