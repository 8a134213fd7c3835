//! HTTP/1.x over reassembled TCP streams: the message reader ([`parser`]), request /
//! response pairing per connection ([`connection`]) and the resulting [`Exchange`].

pub mod connection;
pub mod h2;
pub mod parser;

use std::net::IpAddr;

use crate::time::Nanos;
pub use connection::{Connection, HttpStats};
pub use parser::{Headers, ParseError};

/// A header or start-line value: strings up to 24 bytes (methods, most targets,
/// hosts, media types) are held inline, so a head costs no allocation per field.
pub type Text = compact_str::CompactString;

/// Default bytes of each request body kept for detectors (login forms, JSON).
pub const DEFAULT_BODY_PREFIX: usize = 2048;

/// One request and its response, as Zeek's http.log has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// First packet of the request (of the response when no request was seen).
    pub ts: Nanos,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    /// Position on the connection, from 1.
    pub trans_depth: u32,
    pub method: Option<Text>,
    pub uri: Option<Text>,
    pub version: Option<Text>,
    pub request_headers: Headers,
    pub request_body_len: u64,
    /// A bounded prefix of the request body (never written out).
    pub request_body_prefix: Vec<u8>,
    /// What the whole request body said about credentials (read as it streamed by;
    /// `None` without a body). Never written out.
    pub body_credentials: Option<crate::credentials::Credentials>,
    /// A bounded prefix of the response body (never written out).
    pub response_body_prefix: Vec<u8>,
    pub status: Option<u16>,
    /// The final response's reason phrase as sent, at most [`parser::MAX_REASON`]
    /// bytes (`None` without a response head).
    pub status_msg: Option<Text>,
    /// The final response's HTTP version (`version` is the request's when there
    /// was one).
    pub response_version: Option<Text>,
    /// The last interim 1xx response before the final one (100 Continue, 102
    /// Processing...): its code and reason phrase. Boxed: rare, and the record is
    /// moved whole per exchange.
    pub interim: Option<Box<(u16, Text)>>,
    pub response_headers: Option<Headers>,
    pub response_body_len: Option<u64>,
    /// First byte of the response.
    pub response_ts: Option<Nanos>,
    /// Something went wrong with this exchange (gap, truncation, limit).
    pub incomplete: bool,
    /// The connection it travelled on (stamped by the flow table).
    pub flow: FlowInfo,
    /// Set on the one record a TLS connection gets instead of exchanges: its
    /// handshake summary. Such a record has no request or response; it is written to
    /// the exchange log and counted, never judged (see [`Exchange::is_tls`]).
    pub tls: Option<Box<crate::tls::Session>>,
    /// Read from a TLS connection's records decrypted with a key log
    /// (`--tls-keylog`); judged like any other exchange.
    pub decrypted: bool,
    /// An HTTP/2 exchange's stream (and gRPC call); `None` for HTTP/1. Boxed: one
    /// pointer on every HTTP/1 record.
    pub h2: Option<Box<h2::StreamInfo>>,
    /// Sensitive values counted in the response body's prefix (e-mail addresses,
    /// card numbers, IBANs, SSNs; see [`crate::sensitive`]): counts only, never the
    /// values, and never written to the exchange log.
    pub sensitive: crate::sensitive::Found,
    /// The principals worked out where the secrets were seen, for an exchange read
    /// back from a sensor that sealed them before publishing (`apiwatch detect`);
    /// `None` everywhere else. Identity uses these instead of the sealed values.
    pub sealed: Option<Box<crate::identity::Sealed>>,
}

/// What an exchange's record says about its TCP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlowInfo {
    /// A 53-bit connection id (exact in any JSON reader), the same on every exchange
    /// of the connection and for every run over the same capture; 0: unknown.
    pub id: u64,
    /// The connection's first packet (its SYN when one was seen).
    pub start: Nanos,
    /// Packets client to server and server to client, up to this exchange.
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
}

impl Exchange {
    /// Whether this is a TLS connection's record, not an HTTP exchange.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The status detectors judge: the response's, except that a gRPC call that
    /// failed as UNAUTHENTICATED, PERMISSION_DENIED or NOT_FOUND reads as 401, 403
    /// or 404 (gRPC answers those with `:status` 200; [`Self::status`] keeps it).
    /// A GraphQL request answered 200 with `errors` reads as 403: the lookup was
    /// refused (a BOLA walk's misses are such answers).
    #[inline]
    pub fn judged_status(&self) -> Option<u16> {
        match self.h2.as_deref() {
            None if self.body_credentials.as_ref().is_some_and(|c| c.graphql) => {
                graphql_status(self.status, &self.response_body_prefix)
            }
            None => self.status,
            Some(h) => h
                .grpc
                .as_ref()
                .and_then(h2::grpc::Grpc::as_http_status)
                .or(self.status),
        }
    }

    /// Request start to response start.
    pub fn response_time_ns(&self) -> Option<u64> {
        self.response_ts.map(|r| r.saturating_sub(self.ts))
    }

    /// A record with nothing in it (nothing allocated): unspecified addresses, no
    /// request, no response.
    pub fn vacant() -> Exchange {
        let unspecified = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        Exchange {
            ts: 0,
            client_ip: unspecified,
            client_port: 0,
            server_ip: unspecified,
            server_port: 0,
            trans_depth: 0,
            method: None,
            uri: None,
            version: None,
            request_headers: Headers::default(),
            request_body_len: 0,
            request_body_prefix: Vec::new(),
            body_credentials: None,
            response_body_prefix: Vec::new(),
            status: None,
            status_msg: None,
            response_version: None,
            interim: None,
            response_headers: None,
            response_body_len: None,
            response_ts: None,
            incomplete: false,
            flow: FlowInfo::default(),
            tls: None,
            decrypted: false,
            sensitive: Default::default(),
            sealed: None,
            h2: None,
        }
    }

    /// Moves the record out, leaving a [`Self::vacant`] one in its place: for the
    /// consumer that needs to own what it was lent.
    pub fn take(&mut self) -> Exchange {
        std::mem::replace(self, Exchange::vacant())
    }
}

/// Exchanges made by hand for the unit tests of every layer above HTTP.
/// The status a GraphQL answer is judged by: 403 for a 200 that carries `errors`.
#[cold]
fn graphql_status(status: Option<u16>, body: &[u8]) -> Option<u16> {
    match status {
        Some(200) if memchr::memmem::find(body, b"\"errors\"").is_some() => Some(403),
        s => s,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::net::{IpAddr, Ipv4Addr};

    use super::Exchange;
    use crate::time::Nanos;

    /// A GET-or-whatever exchange from client `10.0.0.{client}` to `10.9.9.9:80`.
    pub fn exchange(
        ts: Nanos,
        client: u8,
        method: &str,
        uri: &str,
        status: Option<u16>,
    ) -> Exchange {
        Exchange {
            ts,
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, client)),
            client_port: 40000,
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
            server_port: 80,
            trans_depth: 1,
            method: Some(method.into()),
            uri: Some(uri.into()),
            version: Some("1.1".into()),
            request_headers: Default::default(),
            request_body_len: 0,
            request_body_prefix: Vec::new(),
            body_credentials: None,
            response_body_prefix: Vec::new(),
            status,
            status_msg: None,
            response_version: None,
            interim: None,
            response_headers: None,
            response_body_len: Some(0),
            response_ts: Some(ts + 1_000_000),
            incomplete: false,
            flow: Default::default(),
            tls: None,
            decrypted: false,
            sensitive: Default::default(),
            sealed: None,
            h2: None,
        }
    }
}
