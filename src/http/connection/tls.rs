//! The TLS side of a [`Connection`]: the handshake read into the connection's one
//! TLS record and, with a key log (`--tls-keylog`), the records decrypted and their
//! application data read as HTTP by an inner connection with the same endpoints, its
//! exchanges marked [`Exchange::decrypted`].
//!
//! Without a key log the record is written as soon as the handshake is read, and
//! the connection is then done (nothing more is reassembled). With one, the record
//! waits until decryption has an outcome (the first encrypted record, or the end),
//! so that it says how decrypting went, and the connection is read to its end.

use std::sync::Arc;

use super::{Connection, Endpoints};
use crate::http::Exchange;
use crate::time::Nanos;
use crate::tls::decrypt::Decryptor;
use crate::tls::{ClientHello, KeyLog, Reader, Session};

/// The decrypted streams: the record layer and the HTTP read from it.
#[derive(Debug)]
struct Decrypted {
    records: Decryptor,
    http: Connection,
}

/// A connection that turned out to be TLS.
#[derive(Debug)]
pub(super) struct TlsConn {
    endpoints: Endpoints,
    /// The handshake, until it is read.
    reader: Option<Reader>,
    /// The finished summary, while it waits for decryption's outcome.
    session: Option<Session>,
    /// The record is written.
    written: bool,
    /// What the hellos said, kept once both were read (decryption needs them after
    /// the handshake's summary is gone).
    hellos: Option<crate::tls::decrypt::Hellos>,
    decrypted: Option<Box<Decrypted>>,
    /// An established handshake's start and who (server name, JA4): what
    /// [`Connection`]'s count of the unreadable rest needs, kept once written.
    tail: Option<(Nanos, Option<ClientHello>)>,
}

impl TlsConn {
    /// `body_prefix`: the request-body bytes the decrypted HTTP keeps, as the
    /// connection's own.
    pub(super) fn new(
        endpoints: Endpoints,
        ts: Nanos,
        keylog: Option<&Arc<KeyLog>>,
        body_prefix: usize,
    ) -> TlsConn {
        TlsConn {
            endpoints,
            reader: Some(Reader::new(ts)),
            session: None,
            written: false,
            hellos: None,
            tail: None,
            decrypted: keylog.map(|k| {
                let mut http = Connection::new(endpoints, false);
                http.set_body_prefix_limit(body_prefix);
                Box::new(Decrypted {
                    records: Decryptor::new(Arc::clone(k)),
                    http,
                })
            }),
        }
    }

    /// What follows the record when nothing is decrypted: for an established
    /// handshake, its start and client (server name and JA4 only).
    pub(super) fn into_tail(self) -> Option<(Nanos, Option<ClientHello>)> {
        self.tail
    }

    /// Nothing more to do: the record is written and nothing is being decrypted.
    pub(super) fn finished(&self) -> bool {
        self.written && self.decrypted.is_none()
    }

    pub(super) fn buffered(&self) -> usize {
        self.reader.as_ref().map_or(0, Reader::buffered)
            + self
                .decrypted
                .as_ref()
                .map_or(0, |d| d.records.buffered() + d.http.buffered())
    }

    pub(super) fn shed(&mut self) {
        if let Some(d) = self.decrypted.as_mut() {
            d.http.shed();
        }
    }

    /// Bytes from one side, in stream order.
    pub(super) fn data(
        &mut self,
        from_client: bool,
        data: &[u8],
        ts: Nanos,
        out: &mut Vec<Exchange>,
    ) {
        if let Some(r) = self.reader.as_mut() {
            r.data(from_client, data);
        }
        if let Some(d) = self.decrypted.as_deref_mut() {
            if self.hellos.is_none() {
                self.hellos = self.reader.as_ref().and_then(|r| r.session().hellos());
            }
            let hellos = self.hellos;
            let first = out.len();
            let http = &mut d.http;
            d.records
                .data(from_client, data, hellos.as_ref(), &mut |plain| {
                    if from_client {
                        http.client_data(plain, ts, out);
                    } else {
                        http.server_data(plain, ts, out);
                    }
                });
            mark(out, first);
        }
        self.progress(out);
    }

    /// Bytes were lost in one direction (the record waits for the next bytes or the
    /// end).
    pub(super) fn gap(&mut self, from_client: bool, len: u64) {
        if let Some(r) = self.reader.as_mut() {
            r.gap(from_client);
        }
        if let Some(d) = self.decrypted.as_deref_mut() {
            d.records.gap(from_client);
            d.http.gap(from_client, len);
        }
    }

    /// One direction closed.
    pub(super) fn end(&mut self, from_client: bool, ts: Nanos, out: &mut Vec<Exchange>) {
        if let Some(d) = self.decrypted.as_deref_mut() {
            let first = out.len();
            d.http.end(from_client, ts, out);
            mark(out, first);
        }
    }

    /// The connection is over: the record (if not yet written), then whatever the
    /// decrypted HTTP still holds.
    pub(super) fn flush(&mut self, out: &mut Vec<Exchange>) {
        if let Some(r) = self.reader.take() {
            self.session = Some(r.finish());
        }
        self.write(out);
        if let Some(mut d) = self.decrypted.take() {
            let first = out.len();
            d.http.flush(out);
            mark(out, first);
        }
    }

    /// The handshake read, decryption decided: the record is written; a failed
    /// decryption lets go of its state.
    fn progress(&mut self, out: &mut Vec<Exchange>) {
        if self.reader.as_ref().is_some_and(Reader::is_done)
            && let Some(r) = self.reader.take()
        {
            self.session = Some(r.finish());
        }
        let decided = self
            .decrypted
            .as_ref()
            .is_none_or(|d| d.records.outcome().is_some());
        if decided && self.session.is_some() {
            self.write(out);
        }
        if self.written
            && self.decrypted.as_ref().is_some_and(|d| d.records.failed())
            && let Some(mut d) = self.decrypted.take()
        {
            let first = out.len();
            d.http.flush(out);
            mark(out, first);
        }
    }

    /// Writes the record (once).
    fn write(&mut self, out: &mut Vec<Exchange>) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        if let Some(d) = self.decrypted.as_deref_mut() {
            session.decryption = d.records.outcome();
            if session.certificates.is_empty() {
                session.certificates = std::mem::take(&mut d.records.certificates);
            }
        }
        self.written = true;
        if session.established() {
            let client = session.client.as_ref().map(|c| ClientHello {
                sni: c.sni.clone(),
                ja4: c.ja4.clone(),
                ..Default::default()
            });
            self.tail = Some((session.start, client));
        }
        let e = &self.endpoints;
        out.push(Exchange {
            ts: session.start,
            client_ip: e.client_ip,
            client_port: e.client_port,
            server_ip: e.server_ip,
            server_port: e.server_port,
            tls: Some(Box::new(session)),
            ..Exchange::vacant()
        });
    }
}

/// Marks the exchanges from `first` on as read from decrypted TLS.
fn mark(out: &mut [Exchange], first: usize) {
    for e in out.iter_mut().skip(first) {
        e.decrypted = true;
    }
}
