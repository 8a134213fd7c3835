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
use crate::tls::keylog::{KEY_WAIT, KEY_WAIT_BYTES};
use crate::tls::{ClientHello, KeyLog, Reader, Session};

/// The decrypted streams: the record layer and the HTTP read from it.
#[derive(Debug)]
struct Decrypted {
    records: Decryptor,
    http: Connection,
    gate: Gate,
}

/// Whether the records go to the decryptor as they come, or wait for their secrets.
#[derive(Debug, Default)]
enum Gate {
    /// The hellos are not read yet: nothing needs a secret.
    #[default]
    Unchecked,
    /// Records go through (the secrets were there, or are not coming).
    Open,
    /// The key file is followed and this connection's secrets are not in it yet:
    /// its bytes wait, bounded in time and size ([`KEY_WAIT`], [`KEY_WAIT_BYTES`]).
    Waiting(Box<Waiting>),
}

#[derive(Debug)]
struct Waiting {
    held: Vec<Held>,
    bytes: usize,
    /// Packet time of the first byte held.
    since: Nanos,
    /// The key log's generation when last looked at.
    generation: u64,
}

/// What happened to the connection while it waited, in order.
#[derive(Debug)]
enum Held {
    Data(bool, Nanos, Vec<u8>),
    Gap(bool, u64),
    End(bool, Nanos),
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
    /// Whether the connection waited for its secrets, and they came.
    key_wait: Option<bool>,
    /// An established handshake's start and who (server name, JA4): what
    /// [`Connection`]'s count of the unreadable rest needs, kept once written.
    tail: Option<(Nanos, Option<ClientHello>)>,
}

impl TlsConn {
    /// `body_prefix`: the request-body bytes the decrypted HTTP keeps, and
    /// `sensitive_prefix` the response-body bytes it scans, as the connection's own.
    pub(super) fn new(
        endpoints: Endpoints,
        ts: Nanos,
        keylog: Option<&Arc<KeyLog>>,
        body_prefix: usize,
        sensitive_prefix: usize,
    ) -> TlsConn {
        TlsConn {
            endpoints,
            reader: Some(Reader::new(ts)),
            session: None,
            written: false,
            hellos: None,
            key_wait: None,
            tail: None,
            decrypted: keylog.map(|k| {
                let mut http = Connection::new(endpoints, false);
                http.set_body_prefix_limit(body_prefix);
                http.set_sensitive_prefix(sensitive_prefix);
                Box::new(Decrypted {
                    records: Decryptor::new(Arc::clone(k)),
                    http,
                    gate: Gate::Unchecked,
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
            + self.decrypted.as_ref().map_or(0, |d| {
                let held = match &d.gate {
                    Gate::Waiting(w) => w.bytes,
                    _ => 0,
                };
                d.records.buffered() + d.http.buffered() + held
            })
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
        if self.decrypted.is_some() {
            if self.hellos.is_none() {
                self.hellos = self.reader.as_ref().and_then(|r| r.session().hellos());
            }
            if self.waits(ts) {
                self.hold(Held::Data(from_client, ts, data.to_vec()), ts, out);
            } else {
                self.decrypt(from_client, data, ts, out);
            }
        }
        self.progress(out);
    }

    /// Records to the decryptor, their application data to the inner HTTP.
    fn decrypt(&mut self, from_client: bool, data: &[u8], ts: Nanos, out: &mut Vec<Exchange>) {
        let Some(d) = self.decrypted.as_deref_mut() else {
            return;
        };
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

    /// Whether what comes now waits for the connection's secrets: decided once the
    /// hellos are read, when the key file is followed and its secrets are not there.
    fn waits(&mut self, ts: Nanos) -> bool {
        let Some(d) = self.decrypted.as_deref_mut() else {
            return false;
        };
        match d.gate {
            Gate::Open => false,
            Gate::Waiting(_) => true,
            Gate::Unchecked => {
                let Some(h) = self.hellos else {
                    return false;
                };
                let log = d.records.keylog();
                let tls13 = h.version == 0x0304;
                if !log.following()
                    || crate::tls::decrypt::suite(h.version, h.cipher).is_none()
                    || log.has_all(&h.client_random, tls13)
                {
                    d.gate = Gate::Open;
                    return false;
                }
                d.gate = Gate::Waiting(Box::new(Waiting {
                    held: Vec::new(),
                    bytes: 0,
                    since: ts,
                    generation: log.generation(),
                }));
                true
            }
        }
    }

    /// Holds what happened while waiting, then lets everything through once the
    /// secrets are there, the wait is over or too much is held.
    fn hold(&mut self, what: Held, ts: Nanos, out: &mut Vec<Exchange>) {
        if let Some(Gate::Waiting(w)) = self.decrypted.as_deref_mut().map(|d| &mut d.gate) {
            if let Held::Data(_, _, b) = &what {
                w.bytes += b.len();
            }
            w.held.push(what);
        }
        self.release(ts, false, out);
    }

    /// Ends the wait when the secrets arrived, the wait is over, too much is held,
    /// or `now` (the connection ends): what was held goes through in order.
    fn release(&mut self, ts: Nanos, now: bool, out: &mut Vec<Exchange>) {
        let Some(d) = self.decrypted.as_deref_mut() else {
            return;
        };
        let Gate::Waiting(w) = &mut d.gate else {
            return;
        };
        let log = d.records.keylog();
        let generation = log.generation();
        let arrived = (generation != w.generation || now)
            && self
                .hellos
                .is_some_and(|h| log.has_all(&h.client_random, h.version == 0x0304));
        w.generation = generation;
        let over = ts.saturating_sub(w.since) > KEY_WAIT || w.bytes > KEY_WAIT_BYTES;
        if !(arrived || over || now) {
            return;
        }
        let Gate::Waiting(w) = std::mem::replace(&mut d.gate, Gate::Open) else {
            return;
        };
        self.key_wait = Some(arrived);
        for h in w.held {
            match h {
                Held::Data(from_client, ts, data) => self.decrypt(from_client, &data, ts, out),
                Held::Gap(from_client, len) => self.gap_now(from_client, len),
                Held::End(from_client, ts) => self.end_now(from_client, ts, out),
            }
            // The record goes before the exchanges, as when nothing waited.
            self.progress(out);
        }
    }

    /// Whether the connection still waits for its secrets at packet time `now`: it
    /// does until they are all logged or the wait is over.
    pub(super) fn waits_for_keys(&self, now: Nanos) -> bool {
        let Some(Gate::Waiting(w)) = self.decrypted.as_deref().map(|d| &d.gate) else {
            return false;
        };
        let Some(d) = self.decrypted.as_deref() else {
            return false;
        };
        now.saturating_sub(w.since) <= KEY_WAIT
            && !self.hellos.is_some_and(|h| {
                d.records
                    .keylog()
                    .has_all(&h.client_random, h.version == 0x0304)
            })
    }

    /// Bytes were lost in one direction (the record waits for the next bytes or the
    /// end).
    pub(super) fn gap(&mut self, from_client: bool, len: u64) {
        if let Some(r) = self.reader.as_mut() {
            r.gap(from_client);
        }
        match self.decrypted.as_deref_mut().map(|d| &mut d.gate) {
            Some(Gate::Waiting(w)) => w.held.push(Held::Gap(from_client, len)),
            _ => self.gap_now(from_client, len),
        }
    }

    fn gap_now(&mut self, from_client: bool, len: u64) {
        if let Some(d) = self.decrypted.as_deref_mut() {
            d.records.gap(from_client);
            d.http.gap(from_client, len);
        }
    }

    /// One direction closed.
    pub(super) fn end(&mut self, from_client: bool, ts: Nanos, out: &mut Vec<Exchange>) {
        if let Some(Gate::Waiting(_)) = self.decrypted.as_deref().map(|d| &d.gate) {
            self.hold(Held::End(from_client, ts), ts, out);
            self.progress(out);
        } else {
            self.end_now(from_client, ts, out);
        }
    }

    fn end_now(&mut self, from_client: bool, ts: Nanos, out: &mut Vec<Exchange>) {
        if let Some(d) = self.decrypted.as_deref_mut() {
            let first = out.len();
            d.http.end(from_client, ts, out);
            mark(out, first);
        }
    }

    /// The connection is over: the record (if not yet written), then whatever the
    /// decrypted HTTP still holds.
    pub(super) fn flush(&mut self, out: &mut Vec<Exchange>) {
        self.release(0, true, out);
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
            session.key_wait = self.key_wait;
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
