//! Alerts as JSON lines shaped like Suricata's EVE `alert` records, with what is ours
//! under `apiwatch` (DESIGN.md). No secret is written: the URL is redacted like the
//! exchange log's, samples carry templated paths only, usernames never appear.

use std::io::{self, Write};

use serde_json::json;

use crate::detect::Alert;
use crate::export::exchange_log::redact_uri;
use crate::identity;
use crate::time::iso_utc_eve;

/// Serialises one alert as a JSON line.
pub fn to_json(a: &Alert) -> String {
    let f = &a.finding;
    let kind = f.kind;
    let target = match &f.endpoint {
        Some(e) => format!(" against {e}"),
        None => String::new(),
    };
    let src_ip = a.client_ip.map(identity::normalise);
    let v = json!({
        "timestamp": iso_utc_eve(a.ts),
        "event_type": "alert",
        "src_ip": src_ip.map(|ip| ip.to_string()),
        "src_port": a.client_port,
        "dest_ip": identity::normalise(a.server_ip).to_string(),
        "dest_port": a.server_port,
        "proto": "TCP",
        "app_proto": "http",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": kind.signature_id(),
            "rev": 1,
            "signature": format!("APIWATCH {}{target}", kind.describe()),
            "category": kind.category(),
            "severity": f.severity,
        },
        "http": {
            "hostname": a.host,
            "url": a.uri.as_deref().map(redact_uri),
            "http_method": a.method,
            "status": a.status,
        },
        "apiwatch": {
            "kind": kind.name(),
            "scope": if a.client_ip.is_some() { "client" } else { "global" },
            "client_ip": src_ip.map(|ip| ip.to_string()),
            "client": a.client_key,
            "clients": f.clients,
            "endpoint": f.endpoint,
            "summary": f.summary,
            "evidence": f.evidence,
            "samples": a.samples,
            "report": a.report,
            "episode_start": iso_utc_eve(a.episode_start),
        },
    });
    v.to_string()
}

/// A JSON-lines file of alerts.
pub struct AlertLog {
    out: io::BufWriter<Box<dyn Write + Send>>,
    pub written: u64,
}

impl AlertLog {
    pub fn new(w: Box<dyn Write + Send>) -> Self {
        AlertLog {
            out: io::BufWriter::new(w),
            written: 0,
        }
    }

    /// Writes one alert and flushes it: alerts are rare and someone may be waiting
    /// on them (`tcpdump -w - | apiwatch -r - --alerts -`).
    pub fn write(&mut self, a: &Alert) -> io::Result<()> {
        self.out.write_all(to_json(a).as_bytes())?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
