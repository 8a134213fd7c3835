//! Alerts as Suricata EVE `alert` records (valid against Suricata 8's
//! `etc/schema.json`, a copy of which the tests check every alert against), with
//! what is ours under `alert.context.apiwatch`, where the schema allows extra data.
//! Fields that do not apply are omitted, never null. A client alert names the
//! connection of the exchange that raised it (`flow_id`, `community_id`, `tx_id`,
//! `flow`), so it joins that exchange's record in any exchange-log form; a global
//! alert (spread over many clients) names no source, and lists the contributors'
//! addresses in `alert.context.apiwatch.client_ips`. No secret is written: the URL is
//! redacted like the exchange log's, samples carry templated paths only, usernames
//! never appear.

use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::detect::Alert;
use crate::export::eve::{self, Input};
use crate::identity;
use crate::time::iso_utc_eve;

/// Removes null members, recursively: EVE omits what does not apply.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The addresses among client keys (`ip:10.0.0.1`; `ip:2001:db8::/64` gives its
/// network address); principals (`bearer:...`) have none.
fn key_ip(key: &str) -> Option<IpAddr> {
    let (_, rest) = key.split_once(':')?;
    rest.split('/').next()?.parse().ok()
}

/// Serialises one alert as an EVE line (without the newline).
pub fn to_json(a: &Alert, input: Option<&Input>) -> String {
    let f = &a.finding;
    let kind = f.kind;
    // Clientless: a global alert (many clients) or a posture finding (`api`).
    let global = a.client_ip.is_none();
    let api = kind.is_posture();
    let [tactic_id, tactic, technique_id, technique] = kind.mitre();
    let client_ips: Option<Vec<String>> = f.clients.as_ref().map(|keys| {
        keys.iter()
            .filter_map(|k| key_ip(k))
            .map(|ip| identity::normalise(ip).to_string())
            .collect()
    });
    let mut context = json!({
        "kind": kind.name(),
        "scope": if api { "api" } else if global { "global" } else { "client" },
        "server": if api { a.host.as_deref() } else { None },
        "client_ip": a.client_ip.map(|ip| identity::normalise(ip).to_string()),
        "client": a.client_key,
        "clients": f.clients,
        "client_ips": client_ips.filter(|v| !v.is_empty()),
        "endpoint": f.endpoint,
        "summary": f.summary,
        "evidence": f.evidence,
        "samples": a.samples,
        "report": a.report,
        "episode_start": iso_utc_eve(a.episode_start),
    });
    strip_nulls(&mut context);
    let mut http = serde_json::to_value(eve::Http {
        hostname: a.host.as_deref().map(eve::hostname),
        http_port: a.server_port,
        url: a.uri.as_deref().map(crate::redact::redact_uri),
        http_method: a.method.as_deref(),
        status: a.status,
        ..eve::Http::default()
    })
    .unwrap_or(Value::Null);
    if global {
        // The exchange that tipped a global alert is one of many: its URL and status
        // say nothing about the others.
        if let Value::Object(m) = &mut http {
            m.retain(|k, _| k == "hostname" || k == "http_port" || k == "http_method");
        }
    }
    let mut rec = Map::new();
    rec.insert("timestamp".into(), iso_utc_eve(a.ts).into());
    let src = (a.conn_ip, a.client_port);
    let dest = (a.server_ip, a.server_port);
    if !global && a.flow.id != 0 {
        rec.insert("flow_id".into(), a.flow.id.into());
    }
    if let Ok(Value::Object(m)) = serde_json::to_value(Input::fields(input)) {
        rec.extend(m);
    }
    rec.insert("event_type".into(), "alert".into());
    if !global {
        rec.insert(
            "src_ip".into(),
            identity::normalise(src.0).to_string().into(),
        );
        rec.insert("src_port".into(), src.1.into());
    }
    rec.insert(
        "dest_ip".into(),
        identity::normalise(dest.0).to_string().into(),
    );
    rec.insert("dest_port".into(), dest.1.into());
    rec.insert("proto".into(), "TCP".into());
    if !global {
        rec.insert("community_id".into(), eve::community_id(src, dest).into());
    }
    // Judged on a TLS connection, not an exchange: no transaction, no HTTP.
    let encrypted = a.tls;
    rec.insert(
        "app_proto".into(),
        if encrypted { "tls" } else { "http" }.into(),
    );
    if !global && !encrypted {
        rec.insert("tx_id".into(), a.trans_depth.saturating_sub(1).into());
    }
    rec.insert("direction".into(), "to_server".into());
    rec.insert(
        "alert".into(),
        json!({
            "action": "allowed",
            "gid": 1,
            "signature_id": kind.signature_id(),
            "rev": 1,
            // One text per signature id, as Suricata keeps it: the endpoint and
            // the numbers are in the context.
            "signature": kind.signature(),
            "category": kind.category(),
            "severity": f.severity,
            "metadata": {
                "mitre_tactic_id": [tactic_id],
                "mitre_tactic_name": [tactic],
                "mitre_technique_id": [technique_id],
                "mitre_technique_name": [technique],
            },
            "context": {"apiwatch": context},
        }),
    );
    if encrypted {
        if let Some(sni) = a.host.as_deref() {
            rec.insert("tls".into(), json!({ "sni": sni }));
        }
    } else {
        rec.insert("http".into(), http);
    }
    if !global && a.flow.id != 0 {
        let flow = eve::Flow {
            pkts_toserver: a.flow.pkts_toserver,
            pkts_toclient: a.flow.pkts_toclient,
            start: iso_utc_eve(a.flow.start),
            src_ip: identity::normalise(src.0).to_string(),
            dest_ip: identity::normalise(dest.0).to_string(),
            src_port: src.1,
            dest_port: dest.1,
        };
        if let Ok(v) = serde_json::to_value(flow) {
            rec.insert("flow".into(), v);
        }
    }
    // `to_string` (Display) goes through a formatter per fragment: several times
    // slower than writing into the String directly.
    serde_json::to_string(&Value::Object(rec)).unwrap_or_default()
}

/// A JSON-lines file of alerts.
pub struct AlertLog {
    out: io::BufWriter<Box<dyn Write + Send>>,
    pub written: u64,
    /// Named on every alert (`pcap_filename` / `in_iface`).
    pub input: Option<Input>,
}

impl AlertLog {
    pub fn new(w: Box<dyn Write + Send>, input: Option<Input>) -> Self {
        AlertLog {
            out: io::BufWriter::new(w),
            written: 0,
            input,
        }
    }

    /// Writes one alert and flushes it: alerts are rare and someone may be waiting
    /// on them (`tcpdump -w - | apiwatch -r - --alerts -`).
    pub fn write(&mut self, a: &Alert) -> io::Result<()> {
        self.out
            .write_all(to_json(a, self.input.as_ref()).as_bytes())?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
