//! GraphQL requests read as their operations: what each asks (type, name or root
//! fields), its aliases, depth, introspection, and the login attempts packed into
//! it (aliases or batch elements that call a field with a password argument), so
//! that the one `POST /graphql` an API exposes is seen per operation.
//!
//! A request is `POST` JSON (`{"query", "operationName", "variables",
//! "extensions"}`, or an array of those: a batch) or `GET` with a `query`
//! parameter. Queries are parsed with `apollo-parser` (Apollo's error-tolerant
//! parser: a cut or broken query still yields what it has), within bounds: at most
//! [`MAX_QUERY_BYTES`] of a query, [`MAX_TOKENS`] tokens, nesting to
//! [`MAX_RECURSION`], [`MAX_OPERATIONS`] operations per request. Persisted queries
//! (`extensions.persistedQuery.sha256Hash` without a query) are named by the first
//! 12 hex digits of their hash. Argument values are never kept, except the account
//! names of login attempts (hashed by the caller, never written).

use apollo_parser::cst;

/// Bytes of one query parsed.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Tokens per query (a 64 KiB query of one-letter aliases is about 20,000).
pub const MAX_TOKENS: usize = 50_000;
/// Nesting the parser follows.
pub const MAX_RECURSION: usize = 64;
/// Operations per request (batch elements and operations per document).
pub const MAX_OPERATIONS: usize = 64;
/// Login attempts kept per request (their usernames).
pub const MAX_ATTEMPTS: usize = 1024;
/// Bytes of an operation's label (type and name) in its endpoint.
pub const MAX_LABEL: usize = 64;
/// Root field names kept per operation (the label names at most 3).
const MAX_FIELDS: usize = 8;

/// One operation of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Operation {
    /// `query`, `mutation` or `subscription` (a bare `{ ... }` is a query).
    pub kind: &'static str,
    pub name: Option<String>,
    /// Distinct root field names, in order (at most [`MAX_FIELDS`]).
    pub fields: Vec<String>,
    /// Root selections (an aliased field counts once per alias).
    pub selections: usize,
    /// Aliased selections anywhere in the operation.
    pub aliases: usize,
    /// Deepest selection nesting.
    pub depth: usize,
    /// Asks for the schema (`__schema` or `__type` at the root).
    pub introspection: bool,
}

/// What a GraphQL request asks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub operations: Vec<Operation>,
    /// Elements of a batch (0: not a batch).
    pub batch: usize,
    /// A persisted query's hash prefix, when the request names one without a query.
    pub persisted: Option<String>,
    /// Login attempts: root fields called with a password-like argument, each with
    /// the account name it tried when one is visible (literal or variable).
    pub attempts: Vec<Option<Vec<u8>>>,
}

impl Request {
    /// The operation an endpoint is named after: the one `operationName` chose (the
    /// first otherwise), labelled `mutation login`, `query Me`, `query {me,orders}`,
    /// `persisted 3f2a...`; a batch is named after its first element.
    pub fn label(&self) -> Option<String> {
        if let Some(op) = self.operations.first() {
            let mut s = String::from(op.kind);
            s.push(' ');
            // Whatever the operation is called, asking for the schema is one thing.
            if self.introspection() {
                s.push_str("__schema");
                return Some(s);
            }
            match &op.name {
                Some(n) => s.push_str(n),
                None => {
                    s.push('{');
                    let shown = op.fields.len().min(3);
                    s.push_str(&op.fields[..shown].join(","));
                    if op.fields.len() > shown {
                        s.push_str(",...");
                    }
                    s.push('}');
                }
            }
            let mut cut = s.len().min(MAX_LABEL);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            return Some(s);
        }
        self.persisted.as_ref().map(|h| format!("persisted {h}"))
    }

    pub fn introspection(&self) -> bool {
        self.operations.iter().any(|o| o.introspection)
    }

    pub fn aliases(&self) -> usize {
        self.operations.iter().map(|o| o.aliases).sum()
    }

    pub fn depth(&self) -> usize {
        self.operations.iter().map(|o| o.depth).max().unwrap_or(0)
    }
}

/// A `POST` body: one operation object or a batch array. `None` when it is no
/// GraphQL request (no `query` nor persisted-query hash).
pub fn from_body(body: &[u8]) -> Option<Request> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut req = Request::default();
    match &v {
        serde_json::Value::Array(items) => {
            req.batch = items.len();
            for item in items.iter().take(MAX_OPERATIONS) {
                element(item, &mut req);
            }
        }
        serde_json::Value::Object(_) => element(&v, &mut req),
        _ => return None,
    }
    (!req.operations.is_empty() || req.persisted.is_some()).then_some(req)
}

/// A `GET` target's `query` parameter (and `operationName`, `variables`).
pub fn from_target(target: &str) -> Option<Request> {
    let (_, q) = target.split_once('?')?;
    let mut query = None;
    let mut name = None;
    let mut variables = None;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = || {
            String::from_utf8_lossy(&crate::routes::percent_decoded(&v.replace('+', " ")))
                .into_owned()
        };
        match k {
            "query" => query = Some(v()),
            "operationName" => name = Some(v()),
            "variables" => variables = serde_json::from_str(&v()).ok(),
            _ => {}
        }
    }
    let mut req = Request::default();
    document(&query?, name.as_deref(), variables.as_ref(), &mut req);
    (!req.operations.is_empty()).then_some(req)
}

fn element(item: &serde_json::Value, req: &mut Request) {
    let name = item.get("operationName").and_then(|n| n.as_str());
    match item.get("query").and_then(|q| q.as_str()) {
        Some(q) => document(q, name, item.get("variables"), req),
        None => {
            if req.persisted.is_none() {
                req.persisted = item
                    .pointer("/extensions/persistedQuery/sha256Hash")
                    .and_then(|h| h.as_str())
                    .map(|h| h.chars().take(12).collect());
            }
        }
    }
}

/// Parses one query document into `req`: its operations (the chosen one first).
fn document(
    q: &str,
    chosen: Option<&str>,
    variables: Option<&serde_json::Value>,
    req: &mut Request,
) {
    let mut end = q.len().min(MAX_QUERY_BYTES);
    while !q.is_char_boundary(end) {
        end -= 1;
    }
    let tree = apollo_parser::Parser::new(&q[..end])
        .recursion_limit(MAX_RECURSION)
        .token_limit(MAX_TOKENS)
        .parse();
    let mut ops = Vec::new();
    for def in tree.document().definitions() {
        let cst::Definition::OperationDefinition(op) = def else {
            continue;
        };
        if req.operations.len() + ops.len() >= MAX_OPERATIONS {
            break;
        }
        let kind = match op.operation_type() {
            Some(t) if t.mutation_token().is_some() => "mutation",
            Some(t) if t.subscription_token().is_some() => "subscription",
            _ => "query",
        };
        let mut o = Operation {
            kind,
            name: op.name().map(|n| n.text().to_string()),
            ..Operation::default()
        };
        if let Some(set) = op.selection_set() {
            for sel in set.selections() {
                o.selections += 1;
                let cst::Selection::Field(f) = sel else {
                    continue;
                };
                let Some(field) = f.name().map(|n| n.text().to_string()) else {
                    continue;
                };
                if field == "__schema" || field == "__type" {
                    o.introspection = true;
                }
                attempt(&f, variables, req);
                if !o.fields.contains(&field) && o.fields.len() < MAX_FIELDS {
                    o.fields.push(field);
                }
            }
            let (depth, aliases) = shape(&set, 1);
            o.depth = depth;
            o.aliases = aliases;
        }
        ops.push(o);
    }
    // The operation `operationName` chose comes first.
    if let Some(i) = chosen.and_then(|c| ops.iter().position(|o| o.name.as_deref() == Some(c))) {
        let op = ops.remove(i);
        ops.insert(0, op);
    }
    req.operations.extend(ops);
}

/// Depth and aliases of a selection set, iteratively bounded by the parser's
/// recursion limit.
fn shape(set: &cst::SelectionSet, depth: usize) -> (usize, usize) {
    let mut deepest = depth;
    let mut aliases = 0;
    for sel in set.selections() {
        let inner = match &sel {
            cst::Selection::Field(f) => {
                aliases += usize::from(f.alias().is_some());
                f.selection_set()
            }
            cst::Selection::InlineFragment(i) => i.selection_set(),
            cst::Selection::FragmentSpread(_) => None,
        };
        if let Some(inner) = inner
            && depth < MAX_RECURSION
        {
            let (d, a) = shape(&inner, depth + 1);
            deepest = deepest.max(d);
            aliases += a;
        }
    }
    (deepest, aliases)
}

/// A root field called with a password-like argument is one login attempt; its
/// account name comes from a user-like argument (a literal, or a variable's value).
fn attempt(f: &cst::Field, variables: Option<&serde_json::Value>, req: &mut Request) {
    let Some(args) = f.arguments() else {
        return;
    };
    let mut password = false;
    let mut best: Option<(usize, Vec<u8>)> = None;
    for arg in args.arguments() {
        let Some(name) = arg.name().map(|n| n.text().to_string()) else {
            continue;
        };
        if crate::credentials::is_password_key(name.as_bytes()) {
            password = true;
            continue;
        }
        let Some(rank) = crate::credentials::user_rank(name.as_bytes()) else {
            continue;
        };
        let value = match arg.value() {
            Some(cst::Value::StringValue(s)) => Some(String::from(&s)),
            Some(cst::Value::Variable(v)) => v.name().and_then(|n| {
                variables?
                    .get(n.text().as_str())?
                    .as_str()
                    .map(str::to_string)
            }),
            _ => None,
        };
        if let Some(v) = value.filter(|v| !v.is_empty())
            && best.as_ref().is_none_or(|(r, _)| rank < *r)
        {
            let mut v = v.into_bytes();
            v.truncate(crate::credentials::MAX_VALUE);
            best = Some((rank, v));
        }
    }
    if password && req.attempts.len() < MAX_ATTEMPTS {
        req.attempts.push(best.map(|(_, v)| v));
    }
}

#[cfg(test)]
mod tests;
