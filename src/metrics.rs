//! Prometheus metrics: counters kept beside the pipeline, rendered into the text
//! exposition format, and served by a small HTTP server on its own thread.
//!
//! The packet path never touches the server: the replay loop renders a fresh
//! exposition about once a second (wall time) into a shared buffer, and scrapes read
//! that buffer. Names follow DESIGN.md and Prometheus conventions (one `apiwatch_`
//! prefix, base units, `_total` on counters, help on every metric). No label ever
//! carries a client address, username, key or raw path.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::decode::DecodeError;
use crate::detect::{DetectStats, Kind};
use crate::http::{Exchange, ParseError};
use crate::pipeline::PipelineStats;
use crate::webconfig::WebConfig;

/// Upper bounds (seconds) of the response latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Methods with their own label value; the rest are `other`.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other",
];
/// Status classes; `none` is an exchange without a response.
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Exchange-level counters the pipeline's own statistics do not have.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    by_method_class: [[u64; CLASSES.len()]; METHODS.len()],
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
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
/// bounded.
#[derive(Debug, Clone, Default)]
pub struct EndpointMetrics {
    slots: std::collections::BTreeMap<String, [u64; 2]>,
    other: [u64; 2],
    /// Requests and the first distinct clients of templates without a slot yet.
    pending: std::collections::HashMap<String, (u64, Vec<u64>)>,
}

/// Templates with their own label value.
pub const ENDPOINT_SLOTS: usize = 20;
const SLOT_AFTER: u64 = 10;
const SLOT_CLIENTS: usize = 3;
const PENDING_MAX: usize = 10_000;

impl EndpointMetrics {
    /// Counts a request to `endpoint` (method plus learned template) by `client` (a
    /// hash of the client key).
    pub fn request(&mut self, endpoint: &str, status: Option<u16>, client: u64) {
        let err = u64::from(matches!(status, Some(400..=599)));
        if let Some(c) = self.slots.get_mut(endpoint) {
            c[0] += 1;
            c[1] += err;
            return;
        }
        self.other[0] += 1;
        self.other[1] += err;
        if self.slots.len() >= ENDPOINT_SLOTS {
            return;
        }
        if self.pending.len() >= PENDING_MAX && !self.pending.contains_key(endpoint) {
            self.pending.clear();
        }
        let (n, clients) = self.pending.entry(endpoint.to_string()).or_default();
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
            self.slots.insert(endpoint.to_string(), [0, 0]);
        }
    }
}

fn label_escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What a scrape shows, as rendered text.
#[derive(Clone, Default)]
pub struct Exposition(Arc<Mutex<String>>);

impl Exposition {
    pub fn set(&self, text: String) {
        if let Ok(mut g) = self.0.lock() {
            *g = text;
        }
    }

    pub fn get(&self) -> String {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

fn header(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

fn one(s: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(s, name, kind, help);
    let _ = writeln!(s, "{name} {value}");
}

/// Detection state shown as gauges.
#[derive(Debug, Clone, Default)]
pub struct DetectGauges {
    pub clients: usize,
    pub endpoints: usize,
    pub episodes: Vec<(Kind, usize)>,
}

/// Renders every metric.
pub fn render(
    p: &PipelineStats,
    http: &HttpMetrics,
    per_endpoint: &EndpointMetrics,
    detect: &DetectStats,
    g: &DetectGauges,
) -> String {
    let (clients, endpoints) = (g.clients, g.endpoints);
    let mut s = String::with_capacity(8192);
    let c = &p.capture;
    let f = &p.flows;
    one(
        &mut s,
        "apiwatch_up",
        "gauge",
        "1 while apiwatch is running.",
        1,
    );
    header(
        &mut s,
        "apiwatch_build_info",
        "gauge",
        "Build information; the value is always 1.",
    );
    let _ = writeln!(
        s,
        "apiwatch_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    one(
        &mut s,
        "apiwatch_capture_packets_total",
        "counter",
        "Packets read from the capture.",
        c.packets,
    );
    one(
        &mut s,
        "apiwatch_capture_bytes_total",
        "counter",
        "Bytes on the wire of the packets read.",
        c.bytes,
    );
    one(
        &mut s,
        "apiwatch_capture_kernel_drops_total",
        "counter",
        "Packets the kernel dropped before apiwatch saw them (live capture only).",
        c.kernel_drops,
    );
    one(
        &mut s,
        "apiwatch_capture_kernel_queue_freezes_total",
        "counter",
        "Times the kernel froze a capture ring because it was full (live capture only).",
        c.kernel_freezes,
    );
    header(
        &mut s,
        "apiwatch_decode_errors_total",
        "counter",
        "Packets that could not be decoded, by layer and reason.",
    );
    for e in DecodeError::ALL {
        let (layer, reason) = e.labels();
        let _ = writeln!(
            s,
            "apiwatch_decode_errors_total{{layer=\"{layer}\",reason=\"{reason}\"}} {}",
            c.decode_errors[e.index()]
        );
    }
    one(
        &mut s,
        "apiwatch_tcp_sessions_active",
        "gauge",
        "TCP connections being tracked.",
        p.active_flows,
    );
    one(
        &mut s,
        "apiwatch_tcp_sessions_limit",
        "gauge",
        "TCP connections the sensor may track at once (all workers; the oldest idle ones are evicted past it).",
        f.capacity,
    );
    header(
        &mut s,
        "apiwatch_worker_tcp_segments_total",
        "counter",
        "TCP segments each flow worker processed (how evenly fanout spreads the load).",
    );
    for (i, (segments, _)) in p.workers.iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_worker_tcp_segments_total{{worker=\"{i}\"}} {segments}"
        );
    }
    header(
        &mut s,
        "apiwatch_worker_tcp_sessions_active",
        "gauge",
        "TCP connections each flow worker tracks.",
    );
    for (i, (_, active)) in p.workers.iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_worker_tcp_sessions_active{{worker=\"{i}\"}} {active}"
        );
    }
    one(
        &mut s,
        "apiwatch_tcp_sessions_total",
        "counter",
        "TCP connections seen.",
        f.created,
    );
    one(
        &mut s,
        "apiwatch_tcp_reassembly_gaps_total",
        "counter",
        "Holes in reassembled TCP streams (data the sensor never saw).",
        f.streams.gaps,
    );
    one(
        &mut s,
        "apiwatch_tcp_reassembly_gap_bytes_total",
        "counter",
        "Bytes missing in reassembled TCP streams.",
        f.streams.gap_bytes,
    );
    one(
        &mut s,
        "apiwatch_tcp_midstream_pickups_total",
        "counter",
        "TCP connections picked up without their handshake.",
        f.midstream_pickups,
    );
    header(
        &mut s,
        "apiwatch_http_exchanges_total",
        "counter",
        "HTTP exchanges reconstructed, by method and status class.",
    );
    for (mi, m) in METHODS.iter().enumerate() {
        for (ci, cl) in CLASSES.iter().enumerate() {
            let _ = writeln!(
                s,
                "apiwatch_http_exchanges_total{{method=\"{m}\",status_class=\"{cl}\"}} {}",
                http.by_method_class[mi][ci]
            );
        }
    }
    header(
        &mut s,
        "apiwatch_http_parse_errors_total",
        "counter",
        "HTTP parse problems, by reason (counted when a connection ends).",
    );
    for e in ParseError::ALL {
        let _ = writeln!(
            s,
            "apiwatch_http_parse_errors_total{{reason=\"{}\"}} {}",
            e.label(),
            f.http.parse_errors[e.index()]
        );
    }
    header(
        &mut s,
        "apiwatch_http_response_latency_seconds",
        "histogram",
        "Time from the first request byte to the first response byte.",
    );
    let mut cum = 0u64;
    for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
        cum += http.latency_buckets[i];
        let _ = writeln!(
            s,
            "apiwatch_http_response_latency_seconds_bucket{{le=\"{b}\"}} {cum}"
        );
    }
    let _ = writeln!(
        s,
        "apiwatch_http_response_latency_seconds_bucket{{le=\"+Inf\"}} {}",
        http.latency_count
    );
    let _ = writeln!(
        s,
        "apiwatch_http_response_latency_seconds_sum {}",
        http.latency_sum
    );
    let _ = writeln!(
        s,
        "apiwatch_http_response_latency_seconds_count {}",
        http.latency_count
    );
    header(
        &mut s,
        "apiwatch_alerts_total",
        "counter",
        "Alerts raised, by kind and severity.",
    );
    for k in Kind::ALL {
        for sev in 1..=3u8 {
            let n = detect.alerts.get(&(k, sev)).copied().unwrap_or(0);
            let _ = writeln!(
                s,
                "apiwatch_alerts_total{{kind=\"{}\",severity=\"{sev}\"}} {n}",
                k.name()
            );
        }
    }
    header(
        &mut s,
        "apiwatch_alert_episodes_active",
        "gauge",
        "Alert episodes going on, by kind.",
    );
    for k in Kind::ALL {
        let n = g
            .episodes
            .iter()
            .find(|(kk, _)| *kk == k)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            s,
            "apiwatch_alert_episodes_active{{kind=\"{}\"}} {n}",
            k.name()
        );
    }
    for (i, name, help) in [
        (
            0,
            "apiwatch_endpoint_requests_total",
            "Requests per endpoint template (the busiest templates; the rest as other).",
        ),
        (
            1,
            "apiwatch_endpoint_errors_total",
            "Requests answered 4xx or 5xx per endpoint template (as for requests).",
        ),
    ] {
        header(&mut s, name, "counter", help);
        let slots = per_endpoint
            .slots
            .iter()
            .map(|(e, c)| (label_escape(e), c[i]));
        for (e, n) in slots.chain([("other".to_string(), per_endpoint.other[i])]) {
            let _ = writeln!(s, "{name}{{endpoint=\"{e}\"}} {n}");
        }
    }
    one(
        &mut s,
        "apiwatch_clients_tracked",
        "gauge",
        "Clients with a baseline in memory.",
        clients,
    );
    one(
        &mut s,
        "apiwatch_endpoints_learned",
        "gauge",
        "Endpoints in the inventory.",
        endpoints,
    );
    header(
        &mut s,
        "apiwatch_evictions_total",
        "counter",
        "Entries evicted from a full table, by table.",
    );
    for (table, n) in [
        ("flows", f.evicted),
        ("half_open", f.half_open_evicted),
        ("fragments", c.fragments_evicted),
        ("stream_buffers", f.buffers_shed),
        ("clients", detect.clients_evicted),
        ("endpoints", detect.endpoints_evicted),
        ("templates", detect.templates_evicted),
    ] {
        let _ = writeln!(s, "apiwatch_evictions_total{{table=\"{table}\"}} {n}");
    }
    process_metrics(&mut s);
    s
}

/// The kernel's page size (4 KiB on x86-64, 16 or 64 KiB on some ARM kernels).
fn page_size() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as f64 } else { 4096.0 }
}

/// `process_*` metrics from /proc, as client libraries export them.
fn process_metrics(s: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (num(11) + num(12)) / ticks; // utime + stime
    let rss_pages = num(21);
    one(
        s,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
    one(
        s,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        rss_pages * page_size(),
    );
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        one(
            s,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count(),
        );
    }
    if let (Ok(up), Some(start)) = (
        std::fs::read_to_string("/proc/uptime"),
        f.get(19).and_then(|v| v.parse::<f64>().ok()),
    ) {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
            - up.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        one(
            s,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            (boot + start / ticks).round(),
        );
    }
}

/// Snapshots of the exposition on packet time, for `--openmetrics-out`: a replay's
/// metrics with their real timestamps, for `promtool tsdb create-blocks-from
/// openmetrics`. Memory grows with the capture's duration (one snapshot per
/// `every` of packet time, about 12 KB each).
#[derive(Debug, Default)]
pub struct Backfill {
    every: u64,
    next: Option<u64>,
    snapshots: Vec<(u64, String)>,
}

impl Backfill {
    pub fn new(every: u64) -> Self {
        Backfill {
            every,
            ..Default::default()
        }
    }

    /// Whether a snapshot is due at packet time `ts`.
    pub fn due(&self, ts: u64) -> bool {
        self.next.is_none_or(|n| ts >= n)
    }

    pub fn push(&mut self, ts: u64, exposition: String) {
        if self.snapshots.last().is_some_and(|(t, _)| *t >= ts) {
            return;
        }
        self.next = Some(ts.saturating_add(self.every));
        self.snapshots.push((ts, exposition));
    }

    /// The snapshots as one OpenMetrics text: each family once (HELP, TYPE, then
    /// its samples in time order), `# EOF` at the end. Process metrics are left
    /// out: they describe the replaying process, not the capture's timeline.
    pub fn to_openmetrics(&self) -> String {
        // Family → (help, type, series in first-seen order with their samples).
        type Series = Vec<(String, String)>;
        let mut order: Vec<String> = Vec::new();
        let mut families: std::collections::HashMap<String, (String, String, Series)> =
            Default::default();
        for (ts, text) in &self.snapshots {
            let secs = *ts as f64 / 1e9;
            let mut current = String::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                    current = name.to_string();
                    if !families.contains_key(name) {
                        order.push(name.to_string());
                        families.insert(
                            name.to_string(),
                            (help.to_string(), String::new(), Vec::new()),
                        );
                    }
                } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let kind = rest.split_whitespace().nth(1).unwrap_or("untyped");
                    if let Some(f) = families.get_mut(&current) {
                        f.1 = kind.to_string();
                    }
                } else if !line.is_empty() && !current.starts_with("process_") {
                    if let Some(f) = families.get_mut(&current) {
                        // One series' points stay together (OpenMetrics does not
                        // interleave them); a histogram is one series of buckets.
                        let key = if f.1 == "histogram" {
                            String::new()
                        } else {
                            line.rsplit_once(' ').map_or(line, |(k, _)| k).to_string()
                        };
                        let sample = format!("{line} {secs:.3}\n");
                        match f.2.iter_mut().find(|(k, _)| *k == key) {
                            Some((_, v)) => v.push_str(&sample),
                            None => f.2.push((key, sample)),
                        }
                    }
                }
            }
        }
        let mut out = String::new();
        for name in order {
            let (help, kind, samples) = &families[&name];
            if name.starts_with("process_") {
                continue;
            }
            let family = if kind == "counter" {
                name.strip_suffix("_total").unwrap_or(&name)
            } else {
                &name
            };
            let _ = writeln!(out, "# HELP {family} {help}");
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for (_, points) in samples {
                out.push_str(points);
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

const LANDING: &str = "<html><head><title>apiwatch</title></head><body><h1>apiwatch</h1>\
<p>Passive API-traffic anomaly detector.</p><p><a href=\"METRICS\">Metrics</a></p></body></html>\n";

/// Serves `/metrics` (or `path`) and a landing page at `/` on `addr` from a
/// background thread, with TLS and basic auth when `web` asks for them. Returns the
/// bound address (useful with port 0).
pub fn serve(
    addr: &str,
    path: &str,
    exposition: Exposition,
    web: WebConfig,
) -> std::io::Result<std::net::SocketAddr> {
    // `:PORT` is every address, IPv6 and IPv4 alike (a dual-stack socket, as Go's
    // `:PORT` in exporter-toolkit); IPv4 only where the host has no IPv6.
    let listener = match addr.strip_prefix(':') {
        Some(port) => TcpListener::bind(format!("[::]:{port}"))
            .or_else(|_| TcpListener::bind(format!("0.0.0.0:{port}")))?,
        None => TcpListener::bind(addr)?,
    };
    let local = listener.local_addr()?;
    let path = path.to_string();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = match &web.tls {
                    Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                        // A client that does not speak TLS fails the handshake and is dropped.
                        Ok(conn) => handle(
                            rustls::StreamOwned::new(conn, stream),
                            &path,
                            &exposition,
                            &web,
                        ),
                        Err(_) => continue,
                    },
                    None => handle(stream, &path, &exposition, &web),
                };
            }
        })?;
    Ok(local)
}

fn handle(
    mut stream: impl Read + Write,
    path: &str,
    exposition: &Exposition,
    web: &WebConfig,
) -> std::io::Result<()> {
    // The request head, bounded.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = target.split('?').next().unwrap_or("");
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let (status, ctype, body) = if !web.admits(authorization.as_deref()) {
        (
            "401 Unauthorized",
            "text/plain; charset=utf-8",
            "unauthorized\n".to_string(),
        )
    } else {
        match (method, target) {
            ("GET" | "HEAD", t) if t == path => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                exposition.get(),
            ),
            ("GET" | "HEAD", "/") => (
                "200 OK",
                "text/html; charset=utf-8",
                LANDING.replace("METRICS", path),
            ),
            ("GET" | "HEAD", _) => (
                "404 Not Found",
                "text/plain; charset=utf-8",
                "not found\n".to_string(),
            ),
            _ => (
                "405 Method Not Allowed",
                "text/plain; charset=utf-8",
                "method not allowed\n".to_string(),
            ),
        }
    };
    let challenge = if status.starts_with("401") {
        "WWW-Authenticate: Basic realm=\"apiwatch\"\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{challenge}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_help_and_types_are_complete() {
        let p = PipelineStats::default();
        let mut http = HttpMetrics::default();
        let mut e = crate::detect::tests::exchange(0, 1, "GET", "/", Some(404));
        e.response_ts = Some(3_000_000);
        http.exchange(&e);
        let mut per = EndpointMetrics::default();
        for i in 0..12 {
            per.request("GET /api/users/{id}", Some(404), i % 3);
            // One client's route, or one with a token in it, never gets a label.
            per.request("GET /api/mine", Some(200), 7);
            per.request("GET /s/AbCdEfGhIjKlMnOp123456789", Some(200), i);
        }
        let text = render(
            &p,
            &http,
            &per,
            &DetectStats::default(),
            &DetectGauges::default(),
        );
        // The first 10 requests count as other, then the template has its own series.
        assert!(
            text.contains("apiwatch_endpoint_requests_total{endpoint=\"GET /api/users/{id}\"} 2")
        );
        assert!(!text.contains("/api/mine") && !text.contains("AbCdEf"));
        assert!(text.contains("apiwatch_endpoint_errors_total{endpoint=\"other\"} 10"));
        assert!(
            text.contains("apiwatch_http_exchanges_total{method=\"GET\",status_class=\"4xx\"} 1")
        );
        assert!(text.contains("apiwatch_http_response_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("apiwatch_http_response_latency_seconds_bucket{le=\"0.0025\"} 0"));
        // Every sample belongs to a metric with HELP and TYPE.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split_whitespace().next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
                assert!(
                    declared.contains(name) || declared.contains(base),
                    "{name} has no TYPE"
                );
            }
        }
    }

    #[test]
    fn backfill_groups_each_series_in_time_order_with_one_header_per_family() {
        let mut b = Backfill::new(10);
        assert!(b.due(0));
        for (ts, v) in [(1_000_000_000u64, 1), (2_000_000_000, 5)] {
            b.push(ts, format!("# HELP x_total X.\n# TYPE x_total counter\nx_total{{a=\"1\"}} {v}\nx_total{{a=\"2\"}} {}\n# HELP process_open_fds F.\n# TYPE process_open_fds gauge\nprocess_open_fds 9\n", v * 2));
        }
        let om = b.to_openmetrics();
        assert_eq!(
            om,
            "# HELP x X.\n# TYPE x counter\nx_total{a=\"1\"} 1 1.000\nx_total{a=\"1\"} 5 2.000\nx_total{a=\"2\"} 2 1.000\nx_total{a=\"2\"} 10 2.000\n# EOF\n"
        );
    }

    #[test]
    fn server_answers_scrapes_with_a_content_type() {
        let exp = Exposition::default();
        exp.set("apiwatch_up 1\n".into());
        let addr = serve("127.0.0.1:0", "/metrics", exp, WebConfig::default()).unwrap();
        let get = |path: &str| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out).unwrap();
            out
        };
        let m = get("/metrics");
        assert!(m.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(m.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(m.ends_with("apiwatch_up 1\n"));
        assert!(get("/").contains("href=\"/metrics\""));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn a_bare_port_listens_on_ipv6_and_ipv4() {
        let exp = Exposition::default();
        exp.set("apiwatch_up 1\n".into());
        let addr = serve(":0", "/metrics", exp, WebConfig::default()).unwrap();
        // Where the host has IPv6 the listener must be the dual-stack one: an
        // IPv4-only bind would make the `::1` check below vacuous.
        let host_has_ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
        assert_eq!(addr.is_ipv6(), host_has_ipv6, "{addr}");
        for host in ["127.0.0.1", "::1"] {
            let target = std::net::SocketAddr::new(host.parse().unwrap(), addr.port());
            match std::net::TcpStream::connect(target) {
                Ok(mut s) => {
                    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut out = String::new();
                    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
                    assert!(out.ends_with("apiwatch_up 1\n"), "{host}");
                }
                // A host without IPv6 (then the listener is IPv4 only).
                Err(_) if host == "::1" && !host_has_ipv6 => {}
                Err(e) => panic!("{host}: {e}"),
            }
        }
    }
}
