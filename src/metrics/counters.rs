//! Exchange-level counters kept beside the pipeline: methods, status classes,
//! latency, and the busiest endpoint templates.

use crate::http::Exchange;

/// Upper bounds (seconds) of the response latency histogram.
pub(super) const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Methods with their own label value; the rest are `other`.
pub(super) const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other",
];
/// Status classes; `none` is an exchange without a response.
pub(super) const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Exchange-level counters the pipeline's own statistics do not have.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    pub(super) by_method_class: [[u64; CLASSES.len()]; METHODS.len()],
    pub(super) latency_buckets: [u64; LATENCY_BUCKETS.len()],
    pub(super) latency_count: u64,
    pub(super) latency_sum: f64,
    /// Response bodies by what the sensitive-value scan made of them
    /// ([`crate::sensitive::Outcome::LABELS`]).
    pub(super) sensitive_scans: [u64; crate::sensitive::Outcome::LABELS.len()],
    /// TLS connections' records (they come down the same stream as exchanges).
    pub tls: TlsMetrics,
}

/// TLS connections by negotiated version and by how their handshake ended.
#[derive(Debug, Clone, Default)]
pub struct TlsMetrics {
    pub(super) by_version: [u64; crate::tls::VERSION_LABELS.len()],
    pub(super) by_outcome: [u64; crate::tls::Outcome::ALL.len()],
    pub(super) by_suite_class: [u64; crate::tls::SUITE_CLASSES.len()],
    /// With `--tls-keylog`: connections by how decrypting them went.
    pub(super) by_decryption: [u64; crate::tls::decrypt::Outcome::ALL.len()],
    /// With a followed key file: connections that waited for their secrets, by
    /// whether they came (arrived, gave_up).
    pub(super) key_waits: [u64; 2],
}

impl TlsMetrics {
    /// Counts one TLS connection's record.
    pub fn record(&mut self, s: &crate::tls::Session) {
        let v = crate::tls::version_label(s.server.as_ref().map(|h| h.version));
        if let Some(i) = crate::tls::VERSION_LABELS.iter().position(|l| *l == v) {
            self.by_version[i] += 1;
        }
        self.by_outcome[s.outcome.index()] += 1;
        let class = crate::tls::suite_class(s.server.as_ref().map(|h| h.cipher));
        if let Some(i) = crate::tls::SUITE_CLASSES.iter().position(|l| *l == class) {
            self.by_suite_class[i] += 1;
        }
        if let Some(d) = s.decryption {
            self.by_decryption[d.index()] += 1;
        }
        if let Some(arrived) = s.key_wait {
            self.key_waits[usize::from(!arrived)] += 1;
        }
    }
}

impl HttpMetrics {
    /// Counts one exchange (cheap: two array increments and a bucket search).
    pub fn exchange(&mut self, e: &Exchange) {
        let m = e
            .method
            .as_deref()
            .and_then(|m| METHODS[..7].iter().position(|k| k.eq_ignore_ascii_case(m)))
            .unwrap_or(7);
        let c = match e.status {
            Some(s @ 100..=599) => (s / 100 - 1) as usize,
            _ => 5,
        };
        self.by_method_class[m][c] += 1;
        if let Some(i) = e.sensitive.outcome.index() {
            self.sensitive_scans[i] += 1;
        }
        if let Some(ns) = e.response_time_ns() {
            let secs = ns as f64 / 1e9;
            self.latency_count += 1;
            self.latency_sum += secs;
            if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
                self.latency_buckets[i] += 1;
            }
        }
    }
}

/// Per-endpoint-template counters for the busiest templates. A template gets its own
/// label value once `SLOT_CLIENTS` distinct clients used it `SLOT_AFTER` times while
/// slots are free, and keeps it; everything else counts under `other`. A template
/// with a segment that looks like a credential never gets one: label values are
/// routes many clients share, never one client's literal token. Series never move
/// between label values, so every counter stays monotonic, and the label set stays
/// bounded. Sensitive values found in responses count under the same label values.
#[derive(Debug, Clone, Default)]
pub struct EndpointMetrics {
    pub(super) slots: std::collections::BTreeMap<String, Slot>,
    pub(super) other: Slot,
    /// Requests and the first distinct clients of templates without a slot yet.
    pending: std::collections::HashMap<String, (u64, Vec<u64>), foldhash::fast::RandomState>,
}

/// One label value's counters.
#[derive(Debug, Clone, Default)]
pub(super) struct Slot {
    pub(super) requests: u64,
    /// Answered 4xx or 5xx.
    pub(super) errors: u64,
    /// Sensitive values in responses, by kind ([`crate::sensitive::KINDS`]).
    pub(super) sensitive: [u64; 4],
    /// Responses with at least one sensitive value.
    pub(super) sensitive_responses: u64,
}

impl Slot {
    #[inline]
    fn add(&mut self, err: bool, sensitive: Option<&crate::sensitive::Counts>) {
        self.requests += 1;
        self.errors += u64::from(err);
        if let Some(c) = sensitive {
            self.sensitive_responses += 1;
            for (t, n) in self.sensitive.iter_mut().zip(c.0) {
                *t += u64::from(n);
            }
        }
    }
}

/// Templates with their own label value.
pub const ENDPOINT_SLOTS: usize = 20;
const SLOT_AFTER: u64 = 10;
const SLOT_CLIENTS: usize = 3;
const PENDING_MAX: usize = 10_000;

impl EndpointMetrics {
    /// Counts a request to `endpoint` (method plus learned template) by `client` (a
    /// hash of the client key), with the sensitive values its response showed.
    pub fn request(
        &mut self,
        endpoint: &str,
        status: Option<u16>,
        client: u64,
        sensitive: Option<&crate::sensitive::Counts>,
    ) {
        let err = matches!(status, Some(400..=599));
        if let Some(c) = self.slots.get_mut(endpoint) {
            c.add(err, sensitive);
            return;
        }
        self.other.add(err, sensitive);
        if self.slots.len() >= ENDPOINT_SLOTS {
            return;
        }
        // Looked up before inserting: the key is copied only for a new template.
        let (n, clients) = match self.pending.get_mut(endpoint) {
            Some(p) => p,
            None => {
                if self.pending.len() >= PENDING_MAX {
                    self.pending.clear();
                }
                self.pending.entry(endpoint.to_string()).or_default()
            }
        };
        *n += 1;
        if clients.len() < SLOT_CLIENTS && !clients.contains(&client) {
            clients.push(client);
        }
        if *n >= SLOT_AFTER
            && clients.len() >= SLOT_CLIENTS
            && !endpoint
                .split(['/', ' '])
                .any(crate::redact::looks_like_secret)
        {
            self.pending.remove(endpoint);
            self.slots.insert(endpoint.to_string(), Slot::default());
        }
    }
}
