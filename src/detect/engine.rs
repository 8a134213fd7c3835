//! The engine's global half: for each exchange in order, its route (spec or
//! learned template, normalised as servers route it), its client, the endpoint
//! inventory, global login failures and object ownership; then the per-client half
//! ([`super::shard`]) inline or on shard threads, and the epochs that merge what
//! clients contribute to the population baseline and hold them to the budget.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use super::shard::{Episode, Shard, make_alert, next_report};
use super::{
    Alert, DetectConfig, DetectStats, Kind, Obs, Prehashed, SEC, burst, login, object_enumeration,
    shards, state, unusual_endpoint,
};
use crate::http::{Exchange, Text};
use crate::identity::{self, ClientId};
use crate::time::Nanos;

/// Exchanges between two checks of the clients' memory within one epoch.
const BUDGET_CHECK: u64 = 1 << 16;

/// Packet time between two merges of what the client shards contributed to the
/// population baseline. Every engine, sharded or not, merges on the same epochs, so
/// the alerts do not depend on the number of shards.
const EPOCH: Nanos = SEC;

/// Object values remembered with their first user (cleared when full: about 32
/// bytes each in the table): a sixty-fourth of `memory.limit`, within the share of
/// the route tables, and never more than this.
pub const OBJECT_USERS_CAP: usize = 1 << 19;

/// The GraphQL operations of a request: a JSON body the credentials scanner saw a
/// `query` (or a persisted query's hash) in, or a `GET` with a `query` parameter.
fn graphql_of(
    ex: &Exchange,
    method: &str,
    uri: &str,
    query: &str,
) -> Option<crate::graphql::Request> {
    match method {
        "POST" if ex.body_credentials.as_ref().is_some_and(|c| c.graphql) => {
            crate::graphql::from_body(&ex.request_body_prefix)
        }
        // `query` is the request's query string (empty without one).
        "GET" if has_query_param(query) => crate::graphql::from_target(uri),
        _ => None,
    }
}

/// Whether a query string has a `query` parameter (a byte walk: no searcher set-up
/// per request).
fn has_query_param(query: &str) -> bool {
    !query.is_empty() && query.split('&').any(|p| p.starts_with("query="))
}

/// What the global stage worked out for one exchange: its labels, and everything
/// its client's shard needs besides the client's own state.
#[derive(Debug)]
pub struct Routed {
    /// The exchange's number in the engine's order.
    pub(super) seq: u64,
    pub(super) id: ClientId,
    pub(super) ip: IpAddr,
    pub(super) template: Text,
    pub(super) endpoint: Text,
    pub(super) client_hash: u64,
    pub(super) endpoint_hash: u64,
    pub(super) path_hash: u64,
    /// The request path's length (a prefix of the target)...
    pub(super) path_len: usize,
    /// Where the query string starts in the URI (0: no query).
    pub(super) query_at: u32,
    /// ...or the path as servers route it, when that differs from the target's.
    pub(super) normalized: Option<Box<str>>,
    pub(super) learning_end: Nanos,
    pub(super) attempt: Option<login::Attempt>,
    /// More attempts packed into the same request (GraphQL aliases or a batch):
    /// their usernames' keyed hashes. Boxed: rare.
    pub(super) extra_attempts: Option<Box<[u64]>>,
    pub(super) seen: unusual_endpoint::Seen,
    pub(super) clients_known: usize,
    /// Keyed hashes of the object values in the path.
    pub(super) objects: Ids,
    /// One of them was used in a path by another client before: someone else's.
    pub(super) others_objects: bool,
    /// The distributed-stuffing alert this exchange raised: written after the
    /// client's own alerts for it.
    pub(super) global: Option<Box<[Alert]>>,
}

/// Keyed hashes of a path's object values: up to four (nearly every path) held
/// inline, no allocation per exchange; more spill to the heap.
#[derive(Debug, Clone, Default)]
pub(super) struct Ids {
    pub(super) n: usize,
    pub(super) inline: [u64; 4],
    /// Every value, once there are more than `inline` holds.
    pub(super) spill: Vec<u64>,
}

impl Ids {
    pub(super) fn push(&mut self, v: u64) {
        if self.spill.is_empty() && self.n < self.inline.len() {
            self.inline[self.n] = v;
            self.n += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.inline);
        }
        self.spill.push(v);
    }

    pub(super) fn as_slice(&self) -> &[u64] {
        if self.spill.is_empty() {
            &self.inline[..self.n]
        } else {
            &self.spill
        }
    }
}

impl Routed {
    /// The exchange's endpoint: method plus learned template.
    /// Whether the exchange's target has a query string.
    #[inline]
    pub fn has_query(&self) -> bool {
        self.query_at > 0
    }

    /// The exchange's query string (empty without one).
    pub fn query<'e>(&self, ex: &'e Exchange) -> &'e str {
        ex.uri
            .as_deref()
            .and_then(|u| u.get(self.query_at as usize..))
            .filter(|_| self.query_at > 0)
            .unwrap_or("")
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn client(&self) -> ClientId {
        self.id
    }

    /// A keyed hash of the client.
    pub fn client_hash(&self) -> u64 {
        self.client_hash
    }

    /// Takes the global-half alerts this exchange raised (distributed stuffing,
    /// token misuse), so [`Engine::judge`] leaves them out: a detector process that
    /// does not write global alerts (`apiwatch detect --shard K/N`, K > 1).
    pub fn take_global(&mut self) -> Option<Box<[Alert]>> {
        self.global.take()
    }
}

/// Where the per-client half runs: on the caller's thread, or on shard threads.
pub(super) enum Stage {
    Inline(Box<Shard>),
    Sharded(shards::Pool),
}

/// The detection engine. Its global half (templates, identity, the client table's
/// membership, the endpoint inventory, global login failures) runs on the caller's
/// thread in exchange order; the per-client half runs inline or on client-sharded
/// threads ([`Engine::sharded`]), with the same alerts in the same order either way.
pub struct Engine {
    pub(super) cfg: DetectConfig,
    /// Every tracked client and when it was last seen: the table's bound and its
    /// evictions are decided here, so shards keep exactly the clients one table would.
    pub(super) members: HashMap<ClientId, Nanos, foldhash::fast::RandomState>,
    /// Hashes that identify clients and endpoints: fixed, so a saved state means the
    /// same thing after a restart.
    pub(super) stable: foldhash::fast::FixedState,
    /// Keyed per run: usernames and object ids (never persisted, never written).
    pub(super) hasher: foldhash::fast::RandomState,
    pub(super) first_ts: Option<Nanos>,
    /// Latest packet time seen.
    pub(super) now: Nanos,
    /// The epoch (packet time / [`EPOCH`]) of `now`.
    pub(super) epoch: Nanos,
    pub(super) templater: crate::routes::Templater,
    /// The population baseline as of the last epoch.
    pub(super) population: burst::Population,
    /// Contributions gathered from shards and not yet applied (waiting for an epoch).
    pub(super) contributions: Vec<(u64, super::burst::Contribution)>,
    pub(super) inventory: crate::routes::inventory::Inventory,
    /// How success looks on each login route.
    pub(super) login_routes: login::Routes,
    /// Object value (keyed hash) → the first client that used it in a path.
    pub(super) object_users: HashMap<u64, u64, Prehashed>,
    pub(super) global_login: login::Global,
    pub(super) global_episode: Option<Episode>,
    /// Client hash → client, kept only for clients with failed logins: it names the
    /// top contributors of a distributed-stuffing alert.
    pub(super) failed_login_clients: HashMap<u64, ClientId, Prehashed>,
    /// Clients on TLS connections nobody can read.
    pub(super) encrypted: super::encrypted::Encrypted,
    /// Posture findings reported today.
    pub(super) posture: crate::posture::Posture,
    /// Principals' addresses and addresses' principals (`token_misuse`).
    pub(super) tokens: super::tokens::Tokens,
    pub(super) stage: Stage,
    pub stats: DetectStats,
    /// With detectors in several processes (`apiwatch detect --shard K/N`): swaps
    /// this process's population contributions of the epoch that ended for every
    /// detector's, so each applies the same baseline. `None` in one process.
    pub(super) epoch_exchange: Option<Box<EpochExchange>>,
}

/// See [`Engine::share_epochs`]: called with the epoch just opened and this
/// process's contributions (exchange number, contribution); returns everyone's.
pub type EpochExchange =
    dyn FnMut(Nanos, Vec<(u64, burst::Contribution)>) -> Vec<(u64, burst::Contribution)> + Send;

impl Engine {
    pub fn new(mut cfg: DetectConfig) -> Self {
        if !cfg.identity.salt_configured {
            cfg.identity.salt = identity::IdentityConfig::random_salt();
        }
        let hasher = foldhash::fast::RandomState::default();
        Engine {
            global_login: login::Global::new(&cfg.login),
            templater: crate::routes::Templater::new(cfg.templates.clone()),
            login_routes: Default::default(),
            object_users: HashMap::default(),
            stage: Stage::Inline(Box::new(Shard::new(cfg.clone(), hasher.clone()))),
            cfg,
            members: HashMap::default(),
            stable: foldhash::fast::FixedState::with_seed(0x6170_6977_6174_6368),
            hasher,
            first_ts: None,
            now: 0,
            epoch: 0,
            population: Default::default(),
            contributions: Vec::new(),
            inventory: Default::default(),
            global_episode: None,
            failed_login_clients: HashMap::default(),
            encrypted: Default::default(),
            posture: Default::default(),
            tokens: Default::default(),
            stats: Default::default(),
            epoch_exchange: None,
        }
    }

    /// Shares each epoch's population contributions with the other detector
    /// processes (`crate::nats`): the per-client half of the other shards' clients
    /// runs elsewhere, and the population baseline must still hear from all of them.
    pub fn share_epochs(&mut self, exchange: Box<EpochExchange>) {
        self.epoch_exchange = Some(exchange);
    }

    /// An engine whose per-client detectors run on `shards` threads, clients spread
    /// by key. With fewer than two shards, or when a thread cannot start, the
    /// detectors run inline; the output is the same.
    pub fn sharded(cfg: DetectConfig, shards: usize) -> Self {
        let mut e = Engine::new(cfg);
        if shards >= 2 {
            let make = |_| Shard::new(e.cfg.clone(), e.hasher.clone());
            match shards::Pool::start((0..shards).map(make).collect()) {
                Ok(pool) => e.stage = Stage::Sharded(pool),
                Err(err) => {
                    tracing::warn!(%err, "Cannot start the detection shards; detecting on one thread")
                }
            }
        }
        e
    }

    /// Detection threads (1: inline).
    pub fn shards(&self) -> usize {
        match &self.stage {
            Stage::Inline(_) => 1,
            Stage::Sharded(p) => p.len(),
        }
    }

    pub fn clients_tracked(&self) -> usize {
        self.members.len()
    }

    /// Alert episodes going on, by kind (client episodes plus the global one). With
    /// shards, client episodes are counted as of the last epoch.
    pub fn active_episodes(&self) -> Vec<(Kind, usize)> {
        let mut counts = match &self.stage {
            Stage::Inline(s) => s.episodes(self.now),
            Stage::Sharded(p) => p.episodes().clone(),
        };
        if self
            .global_episode
            .as_ref()
            .is_some_and(|e| self.now < e.last_hit.saturating_add(self.cfg.episode_gap))
        {
            *counts.entry(Kind::CredentialStuffing).or_default() += 1;
        }
        let mut v: Vec<(Kind, usize)> = counts.into_iter().collect();
        v.sort();
        v
    }

    /// Endpoints in the inventory.
    pub fn endpoints_learned(&self) -> usize {
        self.inventory.endpoints.len()
    }

    /// The inventory as an OpenAPI 3.1 document (`--endpoints FILE`): every server's
    /// endpoints, each path naming its servers. Endpoints recorded before their
    /// route was learned merge into it.
    pub fn openapi(&self) -> crate::routes::inventory::Document {
        self.openapi_of(None)
    }

    /// Writes the inventory to `path` (`--endpoints`): one document, or one per
    /// server when `path` is a directory.
    pub fn write_inventory(&self, path: &std::path::Path) -> Result<(), String> {
        self.inventory_documents(path.is_dir())
            .write(path)
            .map_err(|e| {
                format!(
                    "{}: cannot write the endpoint inventory: {e}",
                    path.display()
                )
            })
    }

    /// The inventory as `--endpoints` writes it: one document, or (`per_server`) one
    /// per server, the most requested servers first.
    pub fn inventory_documents(&self, per_server: bool) -> crate::routes::inventory::Documents {
        use crate::routes::inventory::Documents;
        if !per_server {
            return Documents::One(self.openapi());
        }
        Documents::PerServer(
            self.inventory
                .servers()
                .into_iter()
                .map(|s| (s, self.openapi_of(Some(s))))
                .collect(),
        )
    }

    fn openapi_of(&self, server: Option<(IpAddr, u16)>) -> crate::routes::inventory::Document {
        let pinned = self.cfg.spec.is_some();
        self.inventory.to_openapi(
            |p| {
                if pinned {
                    p.to_string()
                } else {
                    self.templater.lookup(p)
                }
            },
            self.now,
            server,
        )
    }

    /// Whether per-client judging runs on shard threads (then [`Engine::judge`]
    /// takes the exchange itself rather than a borrow).
    pub fn is_sharded(&self) -> bool {
        matches!(self.stage, Stage::Sharded(_))
    }

    /// Judges one exchange; alerts are appended to `out` (with shards, alerts of
    /// earlier exchanges can arrive here; [`Engine::finish`] hands over the rest).
    /// Returns the exchange's endpoint (method plus learned template) and client.
    pub fn observe(&mut self, ex: &Exchange, out: &mut Vec<Alert>) -> Option<(String, ClientId)> {
        let r = self.route(ex, out)?;
        let labels = (r.endpoint.to_string(), r.id);
        self.judge(r, std::borrow::Cow::Borrowed(ex), out);
        Some(labels)
    }

    /// The global half for one exchange, in order: its template, client, inventory
    /// and global-login state. `None` for an exchange without a request.
    pub fn route(&mut self, ex: &Exchange, out: &mut Vec<Alert>) -> Option<Routed> {
        let method = ex.method.as_deref()?;
        let ip = identity::client_ip(ex, &self.cfg.trusted_proxies);
        let id = identity::client_id(ex, ip, &self.cfg.identity);
        let client_hash = self.stable.hash_one(id);
        let uri = ex.uri.as_deref().unwrap_or("/");
        // Cut once at the query: the templater, the spec and the observation share it.
        let target = crate::routes::without_query(uri);
        let query = uri.get(target.len() + 1..).unwrap_or("");
        // Routed as servers route it: `/api/%6cogin` is `/api/login`.
        let normalized = crate::routes::normalized(crate::routes::without_authority(target));
        let target: &str = &normalized;
        let (template, outside_spec) = self.template(ex, method, target, client_hash);
        let gql = graphql_of(ex, method, uri, query);
        let mut obs = Obs::cut(ex, Some(template), target)?;
        if let Some(g) = &gql {
            // One `POST /graphql`, seen per operation.
            if let Some(label) = g.label() {
                obs.endpoint = format!("{} {label}", obs.endpoint).into();
            }
            obs.graphql = Some(g);
        }
        self.stats.exchanges += 1;
        let seq = self.stats.exchanges;
        if seq.is_multiple_of(BUDGET_CHECK) {
            self.hold_flood_to_budget(out);
        }
        let learning_end = self.clock(obs.ts, out);
        let clients_known = self.member(id, obs.ts);
        let endpoint_hash = self.stable.hash_one(obs.endpoint.as_bytes());
        let path_hash = self.stable.hash_one(obs.path.as_bytes());
        let (attempt, global, extra_attempts) = self.logins(&obs, id, client_hash, endpoint_hash);
        let (objects, others_objects) = self.objects(&obs, client_hash);
        let usage = usage(ex, &obs, endpoint_hash, client_hash, &self.stable);
        let cfg = &self.cfg;
        let seen = unusual_endpoint::inventory(
            &cfg.unusual_endpoint,
            &mut self.inventory,
            &obs,
            usage,
            outside_spec,
            (learning_end - cfg.learning_period / 2, learning_end),
        );
        self.stats.endpoints_evicted = self.inventory.evicted;
        let mut global = self
            .global_episode(&obs, global)
            .map(|a| Box::new([*a]) as Box<[Alert]>);
        if let Some(login::Attempt { failed: false, .. }) = attempt {
            self.tokens.login(&self.cfg.token_misuse, obs.ts, ip);
        }
        // A credential the server accepted: refused ones are attempts, the login
        // detectors' business.
        if (ex.request_headers.authorization.is_some() || ex.request_headers.api_key.is_some())
            && obs.status.is_some_and(|s| !matches!(s, 401 | 403 | 407))
        {
            self.tokens(ex, &obs, ip, learning_end, &mut global);
        }
        Some(Routed {
            seq,
            id,
            ip,
            template: obs.template,
            endpoint: obs.endpoint,
            client_hash,
            endpoint_hash,
            path_hash,
            path_len: obs.path.len(),
            query_at: u32::try_from(uri.len() - query.len()).unwrap_or(0)
                * u32::from(!query.is_empty()),
            // A prefix of the target is passed by its length.
            normalized: (!std::ptr::eq(obs.path.as_ptr(), uri.as_ptr())).then(|| obs.path.into()),
            learning_end,
            attempt,
            extra_attempts,
            seen,
            clients_known,
            objects,
            others_objects,
            global,
        })
    }

    /// The exchange's path template: the spec's route when a spec is pinned (and
    /// whether the exchange is outside it), else the learned one.
    fn template(
        &mut self,
        ex: &Exchange,
        method: &str,
        target: &str,
        client_hash: u64,
    ) -> (Text, Option<bool>) {
        use crate::routes::spec::Match;
        let (template, outside_spec) = match self.cfg.spec.as_deref() {
            Some(spec) => match spec.route(method, crate::routes::without_authority(target)) {
                Match::Route(t) => (t.into(), Some(false)),
                Match::UndeclaredMethod(t) => (t.into(), Some(true)),
                Match::Outside => (
                    self.templater.template_cut(ex, target, client_hash),
                    Some(true),
                ),
            },
            None => (self.templater.template_cut(ex, target, client_hash), None),
        };
        self.stats.templates_evicted = self.templater.evicted;
        (crate::routes::capped(template), outside_spec)
    }

    /// A flood inside one second of packet time is held to the budget too.
    fn hold_flood_to_budget(&mut self, out: &mut Vec<Alert>) {
        let bytes = match &mut self.stage {
            Stage::Inline(shard) => shard.bytes,
            Stage::Sharded(pool) => {
                let got = pool.barrier(self.now, false, out);
                self.contributions.extend(got.contributions);
                got.bytes
            }
        };
        self.hold_to_budget(bytes);
    }

    /// Packet time reached `ts`: a new epoch is opened when one is due. Returns when
    /// learning ends.
    fn clock(&mut self, ts: Nanos, out: &mut Vec<Alert>) -> Nanos {
        self.now = self.now.max(ts);
        if self.now / EPOCH > self.epoch {
            self.epoch = self.now / EPOCH;
            self.next_epoch(out);
        }
        let mut first = *self.first_ts.get_or_insert(ts);
        if state::in_future(first, ts) {
            // A corrupt state file: learning would never end.
            tracing::warn!(
                first_ts = first,
                packet_ts = ts,
                "The state file's learning clock starts after this packet; learning starts now"
            );
            first = ts;
            self.first_ts = Some(first);
        }
        first.saturating_add(self.cfg.learning_period)
    }

    /// The client is tracked (the least recently seen make room). Returns how many
    /// clients were tracked before it.
    fn member(&mut self, id: ClientId, ts: Nanos) -> usize {
        if self.members.len() >= self.cfg.max_clients && !self.members.contains_key(&id) {
            self.evict();
        }
        let clients_known = self.members.len();
        let last_seen = self.members.entry(id).or_insert(ts);
        *last_seen = state::not_after(*last_seen, ts).max(ts);
        clients_known
    }

    /// The login attempt the exchange is, if any, and what it adds to the failures
    /// spread over many clients (a global finding when they cross the threshold).
    fn logins(
        &mut self,
        obs: &Obs<'_>,
        id: ClientId,
        client_hash: u64,
        endpoint_hash: u64,
    ) -> (
        Option<login::Attempt>,
        Option<super::Finding>,
        Option<Box<[u64]>>,
    ) {
        let cfg = &self.cfg;
        let hasher = &self.hasher;
        let attempt = login::attempt(
            &cfg.login,
            &mut self.login_routes,
            obs,
            endpoint_hash,
            |b: &[u8]| hasher.hash_one(b),
        );
        let attempt = attempt.map(|(a, name)| {
            if let Some(n) = name {
                self.templater.note_value(&n);
            }
            a
        });
        let Some(a) = attempt else {
            return (None, None, None);
        };
        // Every attempt past the first of a GraphQL request, one username each.
        let extra = obs
            .graphql
            .filter(|g| g.attempts.len() > 1)
            .map(|g| login::user_keys(&g.attempts[1..], |b: &[u8]| hasher.hash_one(b)));
        if a.failed {
            if self.failed_login_clients.len() >= 4 * cfg.max_clients {
                self.failed_login_clients.clear();
            }
            self.failed_login_clients.insert(client_hash, id);
        }
        let names = &self.failed_login_clients;
        let global = login::observe_global(
            &cfg.login,
            &mut self.global_login,
            obs,
            client_hash,
            a,
            &|h| names.get(&h).map(ClientId::key),
        );
        (attempt, global, extra)
    }

    /// Keyed hashes of the object values in the path, and whether one of them was
    /// first used by another client.
    fn objects(&mut self, obs: &Obs<'_>, client_hash: u64) -> (Ids, bool) {
        let mut objects = Ids::default();
        for v in object_enumeration::ids(obs.path, &obs.template) {
            objects.push(self.hasher.hash_one(&*crate::routes::percent_decoded(v)));
        }
        let mut others_objects = false;
        for o in objects.as_slice() {
            if self.object_users.len() >= self.cfg.object_users {
                self.object_users.clear();
            }
            let first = *self.object_users.entry(*o).or_insert(client_hash);
            others_objects |= first != client_hash;
        }
        (objects, others_objects)
    }

    /// A TLS connection's record (its handshake; with `closed`, its end), judged on
    /// what connections alone show ([`super::encrypted`]). Its alerts follow the
    /// exchanges judged before it, on either stage.
    pub fn encrypted(&mut self, ex: &Exchange, out: &mut Vec<Alert>) {
        if ex.tls.is_none() {
            return;
        }
        self.now = self.now.max(ex.ts);
        let ip = identity::client_ip(ex, &self.cfg.trusted_proxies);
        let id = identity::client_id(ex, ip, &self.cfg.identity);
        let id_hash = self.stable.hash_one(id);
        let mut raised = Vec::new();
        if let Some(s) = ex.tls.as_deref().filter(|s| s.closed.is_none()) {
            self.posture.tls(&self.cfg.posture, ex, s, &mut raised);
            self.stats.posture_suppressed = self.posture.suppressed;
            self.stats.posture_today = self.posture.today;
            self.stats.posture_seen = self.posture.seen;
        }
        self.encrypted
            .observe(&self.cfg, ex, id, id_hash, &mut raised);
        self.stats.encrypted_evicted = self.encrypted.evicted;
        self.raise(raised, out);
    }

    /// Posture findings on one exchange (`endpoint`: its endpoint when routed),
    /// to be raised with [`Self::raise`] after the exchange's client alerts.
    /// `routed`: its endpoint and query string when routed.
    pub fn posture(&mut self, ex: &Exchange, routed: Option<(&str, &str)>) -> Vec<Alert> {
        let mut raised = Vec::new();
        self.posture
            .exchange(&self.cfg.posture, ex, routed, &mut raised);
        self.stats.posture_suppressed = self.posture.suppressed;
        self.stats.posture_today = self.posture.today;
        self.stats.posture_seen = self.posture.seen;
        raised
    }

    /// Alerts of the global half: written now inline, or after the client alerts of
    /// the exchanges judged so far when shards judge.
    pub fn raise(&mut self, raised: Vec<Alert>, out: &mut Vec<Alert>) {
        match &mut self.stage {
            Stage::Inline(_) => out.extend(raised),
            Stage::Sharded(pool) => {
                let seq = self.stats.exchanges;
                for a in raised {
                    pool.global(seq, a);
                }
            }
        }
    }

    /// The distributed-stuffing alert a global finding raises, once per episode
    /// and cooldown; the episode ends after a quiet gap.
    fn global_episode(
        &mut self,
        obs: &Obs<'_>,
        global: Option<super::Finding>,
    ) -> Option<Box<Alert>> {
        let cfg = &self.cfg;
        let mut alert = None;
        if let Some(f) = global {
            if let Some(report) = next_report(cfg, self.global_episode, obs.ts) {
                let e = self.global_episode.get_or_insert(Episode::new(obs.ts));
                if report == 1 {
                    e.start = obs.ts;
                }
                e.last_hit = obs.ts;
                e.last_report = obs.ts;
                e.reports = report;
                let start = e.start;
                alert = Some(Box::new(make_alert(
                    obs,
                    None,
                    f,
                    Vec::new(),
                    report,
                    start,
                )));
            } else if let Some(e) = self.global_episode.as_mut() {
                e.last_hit = obs.ts;
            }
        }
        if self
            .global_episode
            .is_some_and(|e| obs.ts >= e.last_hit.saturating_add(cfg.episode_gap))
        {
            self.global_episode = None;
        }
        alert
    }

    /// Token misuse: the request's principal and address (global: a principal's
    /// addresses span every shard's clients).
    #[cold]
    fn tokens(
        &mut self,
        ex: &Exchange,
        obs: &Obs<'_>,
        ip: IpAddr,
        learning_end: Nanos,
        global: &mut Option<Box<[Alert]>>,
    ) {
        let Some(principal) = identity::principal(ex, self.cfg.identity.salt) else {
            return;
        };
        let mut raised = Vec::new();
        self.tokens.observe(
            &self.cfg.token_misuse,
            self.cfg.cooldown,
            obs.ts,
            ip,
            principal,
            obs.ts < learning_end,
            &mut raised,
        );
        self.stats.tokens_evicted = self.tokens.evicted;
        if raised.is_empty() {
            return;
        }
        let mut all: Vec<Alert> = global.take().map(Vec::from).unwrap_or_default();
        for r in raised {
            let key = match r.principal {
                Some((kind, h)) => ClientId::Principal(kind, h).key(),
                None => identity::client_key(ip),
            };
            all.push(make_alert(
                obs,
                Some((ip, key)),
                r.finding,
                Vec::new(),
                1,
                obs.ts,
            ));
        }
        *global = Some(all.into_boxed_slice());
    }

    /// The per-client half for a routed exchange: inline, or queued for its shard.
    #[inline]
    pub fn judge(
        &mut self,
        mut r: Routed,
        ex: std::borrow::Cow<'_, Exchange>,
        out: &mut Vec<Alert>,
    ) {
        match &mut self.stage {
            Stage::Inline(shard) => {
                let global = r.global.take();
                shard.judge(&mut r, &ex, out);
                if let Some(g) = global {
                    out.extend(g);
                }
            }
            Stage::Sharded(pool) => {
                pool.judge(r, ex.into_owned());
                if pool.due() {
                    // Alerts only: contributions wait for their epoch.
                    let got = pool.barrier(self.now, false, out);
                    self.contributions.extend(got.contributions);
                }
            }
        }
    }

    /// Applies the population contributions of the epoch that ended, and holds the
    /// clients to their share of the memory budget.
    fn next_epoch(&mut self, out: &mut Vec<Alert>) {
        let bytes = match &mut self.stage {
            Stage::Inline(shard) => {
                self.contributions.append(&mut shard.contributions);
                shard.bytes
            }
            Stage::Sharded(pool) => {
                let got = pool.barrier(self.now, false, out);
                self.contributions.extend(got.contributions);
                got.bytes
            }
        };
        self.hold_to_budget(bytes);
        if let Some(x) = self.epoch_exchange.as_mut() {
            let mine = std::mem::take(&mut self.contributions);
            self.contributions = x(self.epoch, mine);
        }
        // Exchange order, whichever shard judged them.
        self.contributions.sort_by_key(|(seq, _)| *seq);
        for (_, x) in self.contributions.drain(..) {
            self.population.add(x);
        }
        match &mut self.stage {
            Stage::Inline(shard) => shard.population = self.population.clone(),
            Stage::Sharded(pool) => pool.set_population(&self.population),
        }
    }

    /// Time passed without exchanges (live capture on a quiet wire): episodes that
    /// went quiet end, so the active-episode gauges fall back. Alerts the shards
    /// finished meanwhile go to `out`.
    pub fn advance(&mut self, now: Nanos, out: &mut Vec<Alert>) {
        self.now = self.now.max(now);
        match &mut self.stage {
            Stage::Inline(shard) => shard.now = shard.now.max(self.now),
            Stage::Sharded(pool) => {
                // Contributions wait for the epoch an exchange opens.
                let got = pool.barrier(self.now, false, out);
                self.contributions.extend(got.contributions);
            }
        }
    }

    /// Hands over every alert still on its way from the shards.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if let Stage::Sharded(pool) = &mut self.stage {
            let got = pool.barrier(self.now, false, out);
            self.contributions.extend(got.contributions);
        }
    }

    /// Counts alerts produced by [`Engine::observe`] (kept separate so callers that
    /// filter alerts count what they write).
    pub fn count(&mut self, a: &Alert) {
        *self
            .stats
            .alerts
            .entry((a.finding.kind, a.finding.severity))
            .or_default() += 1;
    }

    /// Clients past their share of the memory budget (`bytes`: what they hold, as
    /// the shards measured it at an epoch, the same with any number of shards):
    /// the least recently seen go until an eighth of the share is free again.
    fn hold_to_budget(&mut self, bytes: usize) {
        self.stats.client_bytes = bytes as u64;
        let budget = self.cfg.client_bytes;
        if budget == 0 || (bytes as u64) <= budget || self.members.is_empty() {
            return;
        }
        let each = (bytes / self.members.len()).max(1) as u64;
        let n = (bytes as u64 - budget / 8 * 7).div_ceil(each) as usize;
        self.evict_n(n.min(self.members.len()));
        self.stats.client_bytes = (bytes as u64).saturating_sub(n as u64 * each);
        self.stats.clients_over_budget += 1;
        release_freed_memory();
    }

    fn evict(&mut self) {
        self.evict_n(crate::lru::batch(self.cfg.max_clients));
    }

    fn evict_n(&mut self, n: usize) {
        for k in crate::lru::oldest(&self.members, n, |t| *t) {
            self.members.remove(&k);
            match &mut self.stage {
                Stage::Inline(shard) => shard.forget(&k),
                Stage::Sharded(pool) => pool.evict(self.stable.hash_one(k), k),
            }
            self.stats.clients_evicted += 1;
        }
    }
}

/// What the inventory records of one exchange.
fn usage<'a>(
    ex: &'a Exchange,
    obs: &'a Obs<'_>,
    endpoint_hash: u64,
    client_hash: u64,
    stable: &foldhash::fast::FixedState,
) -> crate::routes::inventory::Use<'a> {
    let headers = &ex.request_headers;
    let principal = headers
        .authorization
        .as_deref()
        .or(headers.api_key.as_deref())
        .map(|c| stable.hash_one(c.as_bytes()));
    let location = ex
        .response_headers
        .as_ref()
        .and_then(|h| h.location.as_deref());
    crate::routes::inventory::Use {
        ts: obs.ts,
        endpoint: &obs.endpoint,
        endpoint_hash,
        client_hash,
        principal,
        status: obs.status,
        request_type: headers.content_type.as_deref(),
        response_type: ex
            .response_headers
            .as_ref()
            .and_then(|h| h.content_type.as_deref()),
        server: (ex.server_ip, ex.server_port),
        slash_redirect: matches!(obs.status, Some(300..=399))
            && location.is_some_and(|l| {
                let l = crate::routes::path_of(l);
                l.len() == obs.path.len() + 1 && l.ends_with('/') && l.starts_with(obs.path)
            }),
        sensitive: ex.sensitive.counts(),
    }
}

/// Hands what evicted clients freed back to the system: glibc's allocator keeps
/// freed memory in its arenas otherwise, and the process would stay at its
/// high-water mark after every flood. Runs only when clients were evicted for the
/// budget (at most once a second of packet time).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
