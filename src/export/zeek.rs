//! Exchanges as Zeek's http.log writes them in JSON (`LogAscii::use_json`): Zeek's
//! field names and types (`ts` in epoch seconds, `uid`, `id.orig_h`, ...,
//! `status_code`), unset optional fields omitted as Zeek omits them. Filebeat's Zeek
//! module and other http.log readers take these lines as they are. The `uid` is
//! derived from the connection's `flow_id`, so alerts join these records.

use serde::Serialize;

use crate::export::eve::zeek_uid;
use crate::http::Exchange;
use crate::identity;

#[derive(Serialize)]
struct Record<'a> {
    ts: f64,
    uid: String,
    #[serde(rename = "id.orig_h")]
    orig_h: String,
    #[serde(rename = "id.orig_p")]
    orig_p: u16,
    #[serde(rename = "id.resp_h")]
    resp_h: String,
    #[serde(rename = "id.resp_p")]
    resp_p: u16,
    trans_depth: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    request_body_len: u64,
    response_body_len: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    tags: [&'static str; 0],
}

/// One exchange as a Zeek http.log JSON line (without the newline).
pub fn record(e: &Exchange) -> String {
    let rec = Record {
        ts: (e.ts / 1000) as f64 / 1e6,
        uid: zeek_uid(e.flow.id),
        orig_h: identity::normalise(e.client_ip).to_string(),
        orig_p: e.client_port,
        resp_h: identity::normalise(e.server_ip).to_string(),
        resp_p: e.server_port,
        trans_depth: e.trans_depth,
        method: e.method.as_deref(),
        host: e.request_headers.host.as_deref(),
        uri: e.uri.as_deref().map(crate::redact::redact_uri),
        version: e.version.as_deref(),
        user_agent: e.request_headers.user_agent.as_deref(),
        request_body_len: e.request_body_len,
        response_body_len: e.response_body_len.unwrap_or(0),
        status_code: e.status,
        tags: [],
    };
    serde_json::to_string(&rec).unwrap_or_default()
}
