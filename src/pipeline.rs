//! One worker's packet path: decode → flow table → TCP reassembly → HTTP → exchanges.
//! No I/O and no clock here: packets and their capture times go in, exchanges come out.

use crate::capture::{Nanos, Packet};
use crate::decode::{DecodeError, Decoded, Decoder};
use crate::flow::{FlowConfig, FlowTable};
use crate::http::Exchange;

/// Capture-level counters.
#[derive(Debug, Default, Clone)]
pub struct CaptureStats {
    pub packets: u64,
    /// Bytes on the wire (original frame lengths).
    pub bytes: u64,
    /// Bytes actually captured.
    pub captured_bytes: u64,
    pub decode_errors: [u64; DecodeError::ALL.len()],
    pub not_tcp: u64,
    pub tcp_segments: u64,
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
}

impl CaptureStats {
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }
}

/// The packet-to-exchange pipeline of one worker.
pub struct Pipeline {
    decoder: Decoder,
    pub flows: FlowTable,
    pub stats: CaptureStats,
    logged: u32,
}

impl Pipeline {
    pub fn new(cfg: FlowConfig) -> Self {
        Pipeline {
            decoder: Decoder::new(),
            flows: FlowTable::new(cfg),
            stats: CaptureStats::default(),
            logged: 0,
        }
    }

    /// Processes one captured frame; completed exchanges are appended to `out`.
    pub fn packet(&mut self, p: &Packet<'_>, out: &mut Vec<Exchange>) {
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += p.orig_len.max(p.data.len() as u32) as u64;
        s.captured_bytes += p.data.len() as u64;
        s.first_ts.get_or_insert(p.ts);
        s.last_ts = Some(s.last_ts.map_or(p.ts, |t| t.max(p.ts)));
        match self.decoder.decode(p.linktype, p.data, p.ts) {
            Ok(Decoded::Tcp(seg)) => {
                self.stats.tcp_segments += 1;
                self.flows.segment(&seg, p.ts, out);
            }
            Ok(Decoded::Reassembled(dg)) => match self.decoder.decode_datagram(&dg, p.ts) {
                Ok(Decoded::Tcp(seg)) => {
                    self.stats.tcp_segments += 1;
                    self.flows.segment(&seg, p.ts, out);
                }
                Ok(_) => self.stats.not_tcp += 1,
                Err(e) => self.decode_error(e, p.linktype),
            },
            Ok(Decoded::FragmentHeld) => {}
            Ok(Decoded::NotTcp) => self.stats.not_tcp += 1,
            Err(e) => self.decode_error(e, p.linktype),
        }
    }

    fn decode_error(&mut self, e: DecodeError, linktype: u32) {
        self.stats.decode_errors[e.index()] += 1;
        let bit = 1u32 << e.index();
        if self.logged & bit == 0 {
            self.logged |= bit;
            let (layer, reason) = e.labels();
            tracing::warn!(
                layer,
                reason,
                linktype,
                "Packet could not be decoded; further ones are only counted"
            );
        }
    }

    /// End of input: every open connection is finished.
    pub fn finish(&mut self, out: &mut Vec<Exchange>) {
        self.flows.flush_all(out);
    }
}
