//! The short summary a run ends with on stderr: lines of the log format
//! (`crate::logging`), each a section (`msg="Summary: packets"`, ...) with its
//! numbers as fields, written whatever `--log.level` says (`-q` turns it off).

use tracing::Level;

use crate::decode::DecodeError;
use crate::detect::{DetectStats, Kind};
use crate::http::ParseError;
use crate::logging::Value;
use crate::pipeline::PipelineStats;
use crate::time::iso_utc_z;

/// One summary line: level, message and fields.
pub type Line = (Level, String, Vec<(&'static str, Value)>);

/// What the summary reports about the run besides the counters.
#[derive(Debug, Default)]
pub struct RunInfo<'a> {
    pub clients: usize,
    pub exchanges: u64,
    /// TLS connections with a handshake record.
    pub tls_connections: u64,
    /// Wall time the rate is measured over (reading to the last output written;
    /// `--web.linger` is not in it).
    pub elapsed: std::time::Duration,
    pub warnings: &'a [String],
    /// The signal that stopped the run before the end of its input.
    pub interrupted: Option<&'static str>,
}

/// The end-of-run summary (replay or live capture), line by line.
pub fn lines(p: &PipelineStats, detect: &DetectStats, run: &RunInfo<'_>) -> Vec<Line> {
    let c = &p.capture;
    let f = &p.flows;
    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let mut out: Vec<Line> = Vec::new();
    let mut add = |level: Level, section: &str, fields: Vec<(&'static str, Value)>| {
        out.push((level, format!("Summary: {section}"), fields));
    };
    let mut first = vec![
        ("packets", c.packets.into()),
        ("wire_bytes", c.bytes.into()),
        ("tcp_segments", c.tcp_segments.into()),
        ("not_tcp", c.not_tcp.into()),
        ("kernel_drops", c.kernel_drops.into()),
    ];
    match run.interrupted {
        Some(sig) => {
            first.push(("interrupted", sig.into()));
            add(
                Level::WARN,
                &format!("packets (interrupted by {sig}: the input was not read to its end)"),
                first,
            );
        }
        None => add(Level::INFO, "packets", first),
    }
    if let (Some(a), Some(b)) = (c.first_ts, c.last_ts) {
        add(
            Level::INFO,
            "capture",
            vec![
                ("first", iso_utc_z(a).into()),
                ("last", iso_utc_z(b).into()),
                ("packet_time_s", (b.saturating_sub(a) as f64 / 1e9).into()),
            ],
        );
    }
    add(
        Level::INFO,
        "flows",
        vec![
            ("tcp_connections", f.created.into()),
            ("midstream", f.midstream_pickups.into()),
            ("timed_out", f.timed_out.into()),
            ("evicted", f.evicted.into()),
            ("half_open_evicted", f.half_open_evicted.into()),
        ],
    );
    add(
        Level::INFO,
        "http",
        vec![
            ("exchanges", run.exchanges.into()),
            ("tls_connections", run.tls_connections.into()),
            ("requests", f.http.requests.into()),
            ("responses", f.http.responses.into()),
            ("connections_not_http", f.http.connections_not_http.into()),
            (
                "http2_connections",
                f.http.h2.connections.iter().sum::<u64>().into(),
            ),
            ("http2_streams", f.http.h2.streams.into()),
        ],
    );
    add(
        Level::INFO,
        "tcp",
        vec![
            ("gaps", f.streams.gaps.into()),
            ("gap_bytes", f.streams.gap_bytes.into()),
            ("retransmitted_bytes", f.streams.retransmitted_bytes.into()),
            (
                "out_of_order_segments",
                f.streams.out_of_order_segments.into(),
            ),
            ("buffer_sheds", f.buffers_shed.into()),
        ],
    );
    let perr: Vec<String> = ParseError::ALL
        .iter()
        .filter(|e| f.http.parse_errors[e.index()] > 0)
        .map(|e| format!("{}={}", e.label(), f.http.parse_errors[e.index()]))
        .collect();
    let h2err: Vec<String> = crate::http::h2::Problem::ALL
        .iter()
        .filter(|p| f.http.h2.problems[p.index()] > 0)
        .map(|p| format!("{}={}", p.label(), f.http.h2.problems[p.index()]))
        .collect();
    let derr: Vec<String> = DecodeError::ALL
        .iter()
        .filter(|e| c.decode_errors[e.index()] > 0)
        .map(|e| {
            let (l, r) = e.labels();
            format!("{l}/{r}={}", c.decode_errors[e.index()])
        })
        .collect();
    let none_or = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(" ")
        }
    };
    add(
        Level::INFO,
        "problems",
        vec![
            ("http_parse_errors", none_or(perr).into()),
            ("http2_problems", none_or(h2err).into()),
            ("decode_errors", none_or(derr).into()),
        ],
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
    add(
        Level::INFO,
        "alerts",
        vec![
            ("alerts", total.into()),
            ("by_kind", none_or(by_kind).into()),
            ("clients_tracked", run.clients.into()),
            ("clients_evicted", detect.clients_evicted.into()),
        ],
    );
    for w in run.warnings {
        add(Level::WARN, "warning", vec![("warning", w.as_str().into())]);
    }
    add(
        Level::INFO,
        "rate (wall time from the first read to the last output written)",
        vec![
            ("seconds", run.elapsed.as_secs_f64().into()),
            (
                "packets_per_s",
                ((c.packets as f64 / secs).round() as u64).into(),
            ),
            ("gbit_per_s", (c.bytes as f64 * 8.0 / secs / 1e9).into()),
        ],
    );
    out
}

/// Writes the summary on stderr in the log format.
pub fn emit(p: &PipelineStats, detect: &DetectStats, run: &RunInfo<'_>) {
    for (level, msg, fields) in lines(p, detect, run) {
        crate::logging::emit(level, &msg, &fields);
    }
}
