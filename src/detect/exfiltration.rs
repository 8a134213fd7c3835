//! `data_exfiltration`: a client taking far more data than it usually does. Two
//! signals, each against the client's own baseline and the population's:
//!
//! - **paging**: one collection route walked page after page (`page`, `offset`,
//!   `cursor`... parameters, by the conventions APIs use), many more distinct pages
//!   in a window than the client (and clients in general) usually reads, to the end
//!   of the collection (a last page much smaller than the others, an empty one, or
//!   an error past it) or twice as far as the threshold;
//! - **volume**: response bytes in a minute ten times the client's usual minute and
//!   ten times the population's, above an absolute floor.
//!
//! A client whose normal work is a full sync has that in its own baseline; a user
//! who reads the first pages of a list, a health checker and a steady heavy reader
//! do not come near either threshold.

use serde_json::json;

use super::window::{Ewma, intervals_ended};
use super::{Finding, Kind, Novelty, Obs, round};
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.data_exfiltration]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// The span pages are counted over.
    pub paging_window: Nanos,
    /// Never a walk below this many distinct pages of one route in the window.
    pub min_pages: u64,
    /// A walk is at least this multiple of the client's usual pages per window and
    /// of the population's.
    pub page_factor: f64,
    /// The span response bytes are counted over.
    pub volume_window: Nanos,
    /// Response bytes are at least this multiple of the client's usual and of the
    /// population's...
    pub volume_factor: f64,
    /// ...and at least this many bytes in the window.
    pub min_bytes: u64,
    /// Finished windows of history before the client's own usual volume is trusted
    /// (before, only the population's counts).
    pub min_history: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            paging_window: 600 * SEC,
            min_pages: 8,
            page_factor: 3.0,
            volume_window: 60 * SEC,
            volume_factor: 10.0,
            min_bytes: 1 << 20,
            min_history: 3,
        }
    }
}

/// Routes walked at once per client (the least recently paged is dropped).
const MAX_WALKS: usize = 4;
/// Distinct pages remembered per walk (2 KiB: a client's walks stay within what
/// the memory budget assumes a client holds, whatever cursors it sends; far more
/// than a walk needs to be judged).
const MAX_PAGES: usize = 256;

/// One collection route being paged by a client.
#[derive(Debug, Clone, Default)]
struct Walk {
    endpoint: u64,
    start: Nanos,
    last: Nanos,
    /// Keyed hashes of the page parameters' values, sorted.
    pages: Vec<u64>,
    /// The numeric page values seen (page number or offset), lowest and highest.
    first_page: Option<u64>,
    last_page: Option<u64>,
    /// The largest and the last page's response body.
    max_len: u64,
    bytes: u64,
    reached_end: bool,
}

/// Per-client state.
#[derive(Debug, Clone, Default)]
pub struct State {
    walks: Vec<Walk>,
    /// When the first of the walks' windows ends (looked at only while there are
    /// walks).
    walks_end: Nanos,
    /// The most distinct pages a finished window of this client's walked.
    pub usual_pages: Ewma,
    /// Response bytes: the current interval, and the usual per interval.
    interval_start: Nanos,
    interval_bytes: u64,
    pub usual_bytes: Ewma,
    /// The last two intervals (a sliding view across the boundary).
    previous_bytes: u64,
    /// Bytes below which the client's own usual rules out a finding (10× it, once
    /// learned; set when an interval ends): one comparison per exchange.
    own_floor: u64,
}

impl State {
    pub fn heap_bytes(&self) -> usize {
        self.walks.capacity() * std::mem::size_of::<Walk>()
            + self
                .walks
                .iter()
                .map(|w| w.pages.capacity() * 8)
                .sum::<usize>()
    }
}

/// What clients in general take: the population side of both signals.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Population {
    pub pages: Ewma,
    pub bytes: Ewma,
}

/// What a client adds to the population when a window of its closes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Contribution {
    Pages(f64),
    Bytes(f64),
}

impl Population {
    pub fn add(&mut self, c: Contribution) {
        match c {
            Contribution::Pages(x) => self.pages.update(x, 0.01),
            Contribution::Bytes(x) => self.bytes.update(x, 0.01),
        }
    }

    pub fn sanitize(&mut self) -> bool {
        self.pages.sanitize() | self.bytes.sanitize()
    }
}

/// Query parameters that name a page by the conventions APIs use (page numbers,
/// offsets, opaque cursors and continuation tokens); compared without case, with
/// `page[...]` (JSON:API) and its percent-encoded form.
const PAGE_PARAMS: &[&str] = &[
    "page",
    "pagenumber",
    "page_number",
    "pageno",
    "pageindex",
    "page_index",
    "offset",
    "skip",
    "start",
    "startindex",
    "start_index",
    "cursor",
    "after",
    "before",
    "next",
    "next_token",
    "nexttoken",
    "nextpagetoken",
    "pagetoken",
    "page_token",
    "marker",
    "continuation",
    "continuationtoken",
    "continuation_token",
    "starting_after",
    "ending_before",
    "since_id",
    "max_id",
    "from",
    "$skip",
    "$skiptoken",
];

/// The page an exchange asks for: a keyed hash of its paging parameters' names and
/// values, and the value when it is a number. `None`: not a paged request.
pub fn page_of(query: &str, hash: &dyn Fn(&[u8]) -> u64) -> Option<(u64, Option<u64>)> {
    let mut found: Option<(u64, Option<u64>)> = None;
    // A byte walk: no searcher set-up per request.
    for pair in query.as_bytes().split(|&b| b == b'&') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (k, v) = (&pair[..eq], &pair[eq + 1..]);
        if v.is_empty() || !is_page_param(k) {
            continue;
        }
        let h = hash(pair);
        let n = std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        found = Some(match found {
            Some((prev, pn)) => (prev ^ h.rotate_left(17), pn.or(n)),
            None => (h, n),
        });
    }
    found
}

fn is_page_param(k: &[u8]) -> bool {
    // JSON:API's `page[number]`, `page[offset]`, `page[cursor]`... (not `page[size]`).
    let inner = k
        .strip_prefix(b"page%5B")
        .or_else(|| k.strip_prefix(b"page%5b"))
        .and_then(|r| r.strip_suffix(b"%5D").or_else(|| r.strip_suffix(b"%5d")))
        .or_else(|| k.strip_prefix(b"page[").and_then(|r| r.strip_suffix(b"]")));
    if let Some(inner) = inner {
        return ["number", "offset", "cursor", "after", "before"]
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(inner));
    }
    k.len() <= 20
        && PAGE_PARAMS
            .iter()
            .any(|p| p.len() == k.len() && p.as_bytes().eq_ignore_ascii_case(k))
}

/// A response that says the collection ended: an error past the last page, or a
/// page much smaller than the walk's largest (the last, partial page, or an empty
/// list).
fn ends_walk(status: Option<u16>, len: u64, max_len: u64) -> bool {
    match status {
        Some(400..=499) => true,
        Some(200..=299) => max_len >= 64 && len * 2 < max_len,
        _ => false,
    }
}

/// Observes one exchange of a client; a finding when it is taking far more than
/// usual. `query`: the request's query string; `contribute`: what the client adds
/// to the population (a window of its ended).
#[allow(clippy::too_many_arguments)]
pub fn observe(
    cfg: &Config,
    st: &mut State,
    pop: &Population,
    obs: &Obs<'_>,
    query: &str,
    endpoint_hash: u64,
    hash: &dyn Fn(&[u8]) -> u64,
    contribute: &mut Vec<Contribution>,
    evidence: &dyn Fn() -> bool,
) -> Option<Finding> {
    let ts = obs.ts;
    let len = obs.ex.response_body_len.unwrap_or(0);
    let volume = volume(cfg, st, pop, ts, len, contribute, evidence);
    let paging = if query.is_empty() || obs.template.ends_with('}') {
        None
    } else {
        page_of(query, hash).and_then(|page| {
            paging(
                cfg,
                st,
                pop,
                obs,
                endpoint_hash,
                page,
                len,
                contribute,
                evidence,
            )
        })
    };
    // Walks whose window is over end; each closed walk is a window of this client's.
    if !st.walks.is_empty() && ts >= st.walks_end {
        let mut i = 0;
        while i < st.walks.len() {
            if ts >= st.walks[i].start.saturating_add(cfg.paging_window) {
                let w = st.walks.swap_remove(i);
                close(st, &w, contribute);
            } else {
                i += 1;
            }
        }
        st.walks_end = ends(&st.walks, cfg);
    }
    paging.or(volume)
}

/// When the first walk's window ends.
fn ends(walks: &[Walk], cfg: &Config) -> Nanos {
    walks
        .iter()
        .map(|w| w.start.saturating_add(cfg.paging_window))
        .min()
        .unwrap_or(Nanos::MAX)
}

/// A walk's window is over: its pages join the client's usual and the population's.
fn close(st: &mut State, w: &Walk, contribute: &mut Vec<Contribution>) {
    let n = w.pages.len() as f64;
    st.usual_pages.update(n, 0.2);
    contribute.push(Contribution::Pages(n));
}

#[allow(clippy::too_many_arguments)]
fn paging(
    cfg: &Config,
    st: &mut State,
    pop: &Population,
    obs: &Obs<'_>,
    endpoint_hash: u64,
    (page, number): (u64, Option<u64>),
    len: u64,
    contribute: &mut Vec<Contribution>,
    evidence: &dyn Fn() -> bool,
) -> Option<Finding> {
    let ts = obs.ts;
    let at = match st.walks.iter().position(|w| w.endpoint == endpoint_hash) {
        Some(i) => i,
        None => {
            if st.walks.len() >= MAX_WALKS
                && let Some(oldest) = (0..st.walks.len()).min_by_key(|&i| st.walks[i].last)
            {
                let w = st.walks.swap_remove(oldest);
                close(st, &w, contribute);
            }
            st.walks.push(Walk {
                endpoint: endpoint_hash,
                start: ts,
                ..Walk::default()
            });
            st.walks_end = ends(&st.walks, cfg);
            st.walks.len() - 1
        }
    };
    let w = &mut st.walks[at];
    w.last = ts;
    w.bytes = w.bytes.saturating_add(len);
    if let Err(i) = w.pages.binary_search(&page)
        && w.pages.len() < MAX_PAGES
    {
        w.pages.insert(i, page);
    }
    if let Some(n) = number {
        w.first_page = Some(w.first_page.map_or(n, |f| f.min(n)));
        w.last_page = Some(w.last_page.map_or(n, |l| l.max(n)));
    }
    if ends_walk(obs.status, len, w.max_len) && w.pages.len() > 1 {
        w.reached_end = true;
    }
    w.max_len = w.max_len.max(len);
    let pages = w.pages.len() as u64;
    let own = st.usual_pages.mean;
    let others = if pop.pages.samples >= 10 {
        pop.pages.mean
    } else {
        0.0
    };
    let threshold = (cfg.min_pages as f64)
        .max(cfg.page_factor * own)
        .max(cfg.page_factor * others)
        .ceil();
    let w = &st.walks[at];
    let far = (pages as f64) >= 2.0 * threshold;
    if (pages as f64) < threshold || !(w.reached_end || far) {
        return None;
    }
    if !evidence() {
        return Some(Finding::bare(Kind::DataExfiltration, 2));
    }
    let secs = (ts.saturating_sub(w.start) / SEC).max(1);
    let mut ev = json!({
        "reason": "paging",
        "pages": pages,
        "reached_end": w.reached_end,
        "response_bytes": w.bytes,
        "duration_s": secs,
        "window_s": cfg.paging_window / SEC,
        "client_usual_pages": round(own),
        "population_usual_pages": round(others),
        "threshold": threshold,
    });
    if let (Some(f), Some(l)) = (w.first_page, w.last_page) {
        ev["first_page"] = json!(f);
        ev["last_page"] = json!(l);
    }
    Some(Finding {
        kind: Kind::DataExfiltration,
        endpoint: Some(obs.endpoint.to_string()),
        summary: format!(
            "{pages} pages of {} in {secs}s{} ({} bytes), usually {own:.0} pages",
            obs.endpoint,
            if w.reached_end { ", to the end" } else { "" },
            w.bytes
        ),
        evidence: ev,
        severity: 2,
        clients: None,
        novelty: Novelty::Kind(1),
    })
}

fn volume(
    cfg: &Config,
    st: &mut State,
    pop: &Population,
    ts: Nanos,
    len: u64,
    contribute: &mut Vec<Contribution>,
    evidence: &dyn Fn() -> bool,
) -> Option<Finding> {
    if st.interval_start == 0 || super::state::in_future(st.interval_start, ts) {
        st.interval_start = ts;
    }
    let ended = intervals_ended(st.interval_start, cfg.volume_window, ts);
    if ended > 0 {
        let bytes = st.interval_bytes as f64;
        st.usual_bytes.update(bytes, 0.1);
        if bytes > 0.0 {
            contribute.push(Contribution::Bytes(bytes));
        }
        // Idle intervals after it: a few count as zero.
        for _ in 0..(ended - 1).min(3) {
            st.usual_bytes.update(0.0, 0.1);
        }
        st.previous_bytes = if ended == 1 { st.interval_bytes } else { 0 };
        st.interval_bytes = 0;
        st.interval_start += ended * cfg.volume_window;
        st.own_floor = if st.usual_bytes.samples >= cfg.min_history {
            (cfg.volume_factor * st.usual_bytes.mean) as u64
        } else {
            0
        };
    }
    st.interval_bytes = st.interval_bytes.saturating_add(len);
    let most = st.interval_bytes.saturating_add(st.previous_bytes);
    if len == 0 || most < cfg.min_bytes || most < st.own_floor {
        return None;
    }
    // The current interval plus the part of the previous one still within a window.
    let into = ts.saturating_sub(st.interval_start) as f64 / cfg.volume_window.max(1) as f64;
    let observed = st.interval_bytes + (st.previous_bytes as f64 * (1.0 - into.min(1.0))) as u64;
    if observed < cfg.min_bytes {
        return None;
    }
    let own = (st.usual_bytes.samples >= cfg.min_history).then_some(st.usual_bytes.mean);
    let others = (pop.bytes.samples >= 10).then_some(pop.bytes.mean);
    let basis = match (own, others) {
        (Some(o), Some(p)) => o.max(p),
        (Some(o), None) => o,
        (None, Some(p)) => p,
        // Nothing learned about anyone yet.
        (None, None) => return None,
    };
    let threshold = (cfg.volume_factor * basis).max(cfg.min_bytes as f64);
    if (observed as f64) < threshold {
        return None;
    }
    if !evidence() {
        return Some(Finding::bare(Kind::DataExfiltration, 2));
    }
    let secs = cfg.volume_window / SEC;
    Some(Finding {
        kind: Kind::DataExfiltration,
        endpoint: None,
        summary: format!(
            "{observed} response bytes in {secs}s, usually {:.0} (client) and {:.0} (population)",
            own.unwrap_or(0.0),
            others.unwrap_or(0.0)
        ),
        evidence: json!({
            "reason": "volume",
            "response_bytes": observed,
            "window_s": secs,
            "client_usual_bytes": own.map(round),
            "population_usual_bytes": others.map(round),
            "threshold": round(threshold),
        }),
        severity: 2,
        clients: None,
        novelty: Novelty::Kind(2),
    })
}

#[cfg(test)]
mod tests;
