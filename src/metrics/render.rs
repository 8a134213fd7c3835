//! The text exposition (Prometheus 0.0.4) of every metric, and its OpenMetrics 1.0
//! form for scrapers that ask for it.

use std::fmt::Write as _;

use super::counters::{CLASSES, EndpointMetrics, HttpMetrics, LATENCY_BUCKETS, METHODS};
use crate::decode::DecodeError;
use crate::detect::{DetectStats, Kind};
use crate::http::ParseError;
use crate::pipeline::PipelineStats;

fn label_escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn header(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

pub(super) fn one(
    s: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
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
        "apiwatch_build_info{{version=\"{}\",revision=\"{}\",rustc=\"{}\",features=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        crate::cli::revision(),
        label_escape(env!("APIWATCH_RUSTC_VERSION")),
        crate::cli::features()
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
        "apiwatch_tcp_fins_disregarded_total",
        "counter",
        "FINs undone because the peer acknowledged data sent after them (spoofed or lost FINs).",
        f.streams.fins_disregarded,
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
        "apiwatch_tls_connections_total",
        "counter",
        "TLS connections whose handshake was read, by negotiated version (unknown: no ServerHello seen).",
    );
    for (i, v) in crate::tls::VERSION_LABELS.iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_tls_connections_total{{version=\"{v}\"}} {}",
            http.tls.by_version[i]
        );
    }
    header(
        &mut s,
        "apiwatch_tls_suites_total",
        "counter",
        "TLS connections by the class of their negotiated cipher suite: aead_forward_secret, cbc_forward_secret, static_key_exchange (no forward secrecy), weak (NULL, RC4, DES, 3DES, export, MD5, anonymous), unknown (no ServerHello seen).",
    );
    for (i, c) in crate::tls::SUITE_CLASSES.iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_tls_suites_total{{class=\"{c}\"}} {}",
            http.tls.by_suite_class[i]
        );
    }
    header(
        &mut s,
        "apiwatch_tls_handshakes_total",
        "counter",
        "TLS handshakes by how they ended: established, alert, cut (larger than the 64 KiB read per direction), malformed, incomplete.",
    );
    for o in crate::tls::Outcome::ALL {
        let _ = writeln!(
            s,
            "apiwatch_tls_handshakes_total{{outcome=\"{}\"}} {}",
            o.label(),
            http.tls.by_outcome[o.index()]
        );
    }
    header(
        &mut s,
        "apiwatch_tls_decryption_total",
        "counter",
        "TLS connections read with a key log (--tls-keylog), by outcome: decrypted, no_key (no secret for its client random), unsupported_suite (CCM, 3DES, Camellia..., TLS 1.1 or older), bad_record (a record that does not authenticate), midstream (encrypted records without the hellos).",
    );
    for o in crate::tls::decrypt::Outcome::ALL {
        let _ = writeln!(
            s,
            "apiwatch_tls_decryption_total{{outcome=\"{}\"}} {}",
            o.label(),
            http.tls.by_decryption[o.index()]
        );
    }
    header(
        &mut s,
        "apiwatch_tls_key_waits_total",
        "counter",
        "TLS connections whose secrets were not in the followed key file (--tls-keylog in live capture) at their handshake and that held their records for them, by outcome: arrived (decrypted late), gave_up (3 s or 256 KiB passed, read without them).",
    );
    for (i, o) in ["arrived", "gave_up"].iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_tls_key_waits_total{{outcome=\"{o}\"}} {}",
            http.tls.key_waits[i]
        );
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
    let h2 = &f.http.h2;
    header(
        &mut s,
        "apiwatch_http2_connections_total",
        "counter",
        "Connections read as cleartext HTTP/2, by how they started: prior_knowledge (the client preface first) or upgrade (Upgrade: h2c answered 101). Counted when a connection ends, as every HTTP/2 counter.",
    );
    for st in crate::http::h2::Start::ALL {
        let _ = writeln!(
            s,
            "apiwatch_http2_connections_total{{start=\"{}\"}} {}",
            st.label(),
            h2.connections[st.index()]
        );
    }
    header(
        &mut s,
        "apiwatch_http2_streams_total",
        "counter",
        "HTTP/2 streams opened (requests and server pushes); each becomes one exchange.",
    );
    let _ = writeln!(s, "apiwatch_http2_streams_total {}", h2.streams);
    header(
        &mut s,
        "apiwatch_http2_stream_resets_total",
        "counter",
        "HTTP/2 streams ended by RST_STREAM (their exchanges are incomplete).",
    );
    let _ = writeln!(s, "apiwatch_http2_stream_resets_total {}", h2.resets);
    header(
        &mut s,
        "apiwatch_http2_problems_total",
        "counter",
        "HTTP/2 events that cost information, by reason: hpack_error, header_block_too_large, header_list_too_large, too_many_streams, malformed_frame, gap, bad_preface, midstream (a connection picked up mid-stream whose first segment is HTTP/2 frames: not decoded).",
    );
    for p in crate::http::h2::Problem::ALL {
        let _ = writeln!(
            s,
            "apiwatch_http2_problems_total{{reason=\"{}\"}} {}",
            p.label(),
            h2.problems[p.index()]
        );
    }
    header(
        &mut s,
        "apiwatch_http2_connections_undecodable_total",
        "counter",
        "HTTP/2 connections whose header decoding was lost in a direction (an HPACK table that can no longer be followed): their later streams carry no headers from that side.",
    );
    let _ = writeln!(
        s,
        "apiwatch_http2_connections_undecodable_total {}",
        h2.undecodable
    );
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
        "apiwatch_findings",
        "gauge",
        "Posture findings (scope api) reported this UTC day, by kind: distinct (server, route, kind, credential kind or reason).",
    );
    for (i, k) in crate::posture::KINDS.iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_findings{{kind=\"{}\"}} {}",
            k.name(),
            detect.posture_today[i]
        );
    }
    header(
        &mut s,
        "apiwatch_finding_observations_total",
        "counter",
        "Exchanges (TLS connections for weak_tls and certificate_expiry) that showed a posture finding's weakness, reported or already known that day, by kind.",
    );
    for (i, k) in crate::posture::KINDS.iter().enumerate() {
        let _ = writeln!(
            s,
            "apiwatch_finding_observations_total{{kind=\"{}\"}} {}",
            k.name(),
            detect.posture_seen[i]
        );
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
    let per_label = || {
        per_endpoint
            .slots
            .iter()
            .map(|(e, c)| (label_escape(e), c))
            .chain([("other".to_string(), &per_endpoint.other)])
    };
    type Pick = fn(&super::counters::Slot) -> u64;
    for (name, help, pick) in [
        (
            "apiwatch_endpoint_requests_total",
            "Requests per endpoint template (the busiest templates; the rest as other).",
            (|c| c.requests) as Pick,
        ),
        (
            "apiwatch_endpoint_errors_total",
            "Requests answered 4xx or 5xx per endpoint template (as for requests).",
            |c| c.errors,
        ),
    ] {
        header(&mut s, name, "counter", help);
        for (e, c) in per_label() {
            let _ = writeln!(s, "{name}{{endpoint=\"{e}\"}} {}", pick(c));
        }
    }
    header(
        &mut s,
        "apiwatch_sensitive_values_total",
        "counter",
        "Sensitive values (email, card, iban, national_id) counted in response bodies per endpoint template (labelled as for requests; a series appears with its first value). The values themselves are never kept.",
    );
    for (e, c) in per_label() {
        for (kind, n) in crate::sensitive::KINDS.iter().zip(c.sensitive) {
            if n > 0 {
                let _ = writeln!(
                    s,
                    "apiwatch_sensitive_values_total{{endpoint=\"{e}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
    }
    header(
        &mut s,
        "apiwatch_sensitive_responses_total",
        "counter",
        "Responses with at least one sensitive value per endpoint template (labelled as for requests; a series appears with its first response).",
    );
    for (e, c) in per_label() {
        if c.sensitive_responses > 0 {
            let _ = writeln!(
                s,
                "apiwatch_sensitive_responses_total{{endpoint=\"{e}\"}} {}",
                c.sensitive_responses
            );
        }
    }
    header(
        &mut s,
        "apiwatch_sensitive_scans_total",
        "counter",
        "Response bodies by what the sensitive-value scan made of them: scanned (up to exposure.sensitive_prefix bytes), compressed (a content coding: not scanned) or not_text (a binary type, or a control byte in the body: not scanned past it).",
    );
    for (label, n) in crate::sensitive::Outcome::LABELS
        .iter()
        .zip(http.sensitive_scans)
    {
        let _ = writeln!(
            s,
            "apiwatch_sensitive_scans_total{{outcome=\"{label}\"}} {n}"
        );
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
        "apiwatch_memory_bytes",
        "gauge",
        "Memory held by a table: clients with their detector windows as measured at the last epoch; connections as their count times the measured peak per connection.",
    );
    for (table, n) in [
        ("clients", detect.client_bytes),
        ("flows", p.active_flows as u64 * crate::flow::FLOW_BYTES),
    ] {
        let _ = writeln!(s, "apiwatch_memory_bytes{{table=\"{table}\"}} {n}");
    }
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
        ("encrypted_clients", detect.encrypted_evicted),
        ("posture_findings", detect.posture_suppressed),
        ("token_misuse", detect.tokens_evicted),
    ] {
        let _ = writeln!(s, "apiwatch_evictions_total{{table=\"{table}\"}} {n}");
    }
    super::process::metrics(&mut s);
    s
}

/// The same exposition in OpenMetrics 1.0 text: counter families are named without
/// `_total` (their samples keep it), `untyped` is `unknown`, and `# EOF` ends it.
pub fn openmetrics(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|r| r.split_once(' '))
        .filter(|(_, kind)| kind.trim() == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((tag, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let family = if counters.contains(name) {
                    name.strip_suffix("_total").unwrap_or(name)
                } else {
                    name
                };
                let tail = if tag == "# TYPE " && tail == "untyped" {
                    "unknown"
                } else {
                    tail
                };
                let _ = writeln!(out, "{tag}{family} {tail}");
            }
            None if line.is_empty() => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("# EOF\n");
    out
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
        let found = crate::sensitive::Counts([2, 1, 0, 0]);
        for i in 0..12 {
            per.request("GET /api/users/{id}", Some(404), i % 3, Some(&found));
            // One client's route, or one with a token in it, never gets a label.
            per.request("GET /api/mine", Some(200), 7, None);
            per.request(
                "GET /s/AbCdEfGhIjKlMnOp123456789",
                Some(200),
                i,
                Some(&found),
            );
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
        // Sensitive values count under the same label values.
        assert!(text.contains(
            "apiwatch_sensitive_values_total{endpoint=\"GET /api/users/{id}\",kind=\"email\"} 4"
        ));
        assert!(
            text.contains("apiwatch_sensitive_values_total{endpoint=\"other\",kind=\"card\"} 22")
        );
        assert!(!text.contains("kind=\"iban\""));
        assert!(text.contains("apiwatch_sensitive_responses_total{endpoint=\"other\"} 22"));
        assert!(text.contains("apiwatch_sensitive_scans_total{outcome=\"scanned\"} 0"));
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
}
