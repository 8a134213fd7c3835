//! The short human summary a replay prints on stderr.

use std::fmt::Write;
use std::time::Duration;

use crate::decode::DecodeError;
use crate::detect::{DetectStats, Kind};
use crate::http::ParseError;
use crate::pipeline::PipelineStats;
use crate::time::iso_utc_z;

/// Renders the end-of-run summary (replay or live capture).
pub fn render(
    p: &PipelineStats,
    detect: &DetectStats,
    clients: usize,
    exchanges: u64,
    elapsed: Duration,
    warnings: &[String],
) -> String {
    let c = &p.capture;
    let f = &p.flows;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut s = String::new();
    let _ = writeln!(s, "apiwatch summary");
    let _ = writeln!(
        s,
        "  packets     {} ({} bytes on the wire, {} TCP segments, {} not TCP, {} dropped by the kernel)",
        c.packets, c.bytes, c.tcp_segments, c.not_tcp, c.kernel_drops
    );
    if let (Some(a), Some(b)) = (c.first_ts, c.last_ts) {
        let _ = writeln!(
            s,
            "  capture     {} .. {} ({:.3} s of packet time)",
            iso_utc_z(a),
            iso_utc_z(b),
            b.saturating_sub(a) as f64 / 1e9
        );
    }
    let _ = writeln!(
        s,
        "  flows       {} TCP connections ({} picked up midstream, {} timed out, {} evicted, {} half-open evicted)",
        f.created, f.midstream_pickups, f.timed_out, f.evicted, f.half_open_evicted
    );
    let _ = writeln!(
        s,
        "  http        {} exchanges ({} requests, {} responses, {} connections not HTTP)",
        exchanges, f.http.requests, f.http.responses, f.http.connections_not_http
    );
    let _ = writeln!(
        s,
        "  tcp         {} gaps ({} bytes missing), {} retransmitted bytes, {} out-of-order segments, {} buffer-budget sheds",
        f.streams.gaps,
        f.streams.gap_bytes,
        f.streams.retransmitted_bytes,
        f.streams.out_of_order_segments,
        f.buffers_shed
    );
    let perr: Vec<String> = ParseError::ALL
        .iter()
        .filter(|e| f.http.parse_errors[e.index()] > 0)
        .map(|e| format!("{}={}", e.label(), f.http.parse_errors[e.index()]))
        .collect();
    let derr: Vec<String> = DecodeError::ALL
        .iter()
        .filter(|e| c.decode_errors[e.index()] > 0)
        .map(|e| {
            let (l, r) = e.labels();
            format!("{l}/{r}={}", c.decode_errors[e.index()])
        })
        .collect();
    let _ = writeln!(
        s,
        "  problems    http parse errors: {}; decode errors: {}",
        if perr.is_empty() {
            "none".into()
        } else {
            perr.join(" ")
        },
        if derr.is_empty() {
            "none".into()
        } else {
            derr.join(" ")
        }
    );
    let by_kind: Vec<String> = Kind::ALL
        .iter()
        .filter_map(|k| {
            let n: u64 = detect
                .alerts
                .iter()
                .filter(|((kk, _), _)| kk == k)
                .map(|(_, n)| n)
                .sum();
            (n > 0).then(|| format!("{}={n}", k.name()))
        })
        .collect();
    let total: u64 = detect.alerts.values().sum();
    let _ = writeln!(
        s,
        "  alerts      {total}{} ({clients} clients tracked, {} evicted)",
        if by_kind.is_empty() {
            String::new()
        } else {
            format!(": {}", by_kind.join(" "))
        },
        detect.clients_evicted
    );
    for w in warnings {
        let _ = writeln!(s, "  warning     {w}");
    }
    let _ = writeln!(
        s,
        "  rate        {:.3} s, {:.0} packets/s, {:.3} Gbit/s",
        elapsed.as_secs_f64(),
        c.packets as f64 / secs,
        c.bytes as f64 * 8.0 / secs / 1e9
    );
    s
}
